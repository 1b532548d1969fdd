#!/usr/bin/env python
"""A grid of MLPs beyond the tutorials: fastnn vs the NumPy baseline vs PyTorch eager.

    python bench/bench_shapes.py [--threads 2] [--only SUBSTRING] [--impls fastnn,numpy,torch]
                                 [--epochs 5] [--json results.jsonl] [--quick]

The issue "One fast path for every model" asks for it. One run prints:

1. the machine (CPU model from lscpu, avx512f yes/no, threads, load average) and
   its measured GEMM peak, float32 and float64 (``common.gemm_peak_gflops``: a
   large square NumPy matmul at the thread count, best of several after warm-up);
2. one row per grid model (``grid.GRID``: depths 1-5, widths 8-2048, batches
   16-1024, relu/tanh/sigmoid, every optimizer, 0/50/80% zero inputs, float32
   and float64, BatchNormalization/Dropout/L2/sample weights, softmax, sigmoid
   and MSE losses): seconds per epoch, samples/s, GFLOP/s, % of the peak, the
   speed-ups over NumPy and PyTorch, and each implementation's final training
   loss (all three start from the same weights on the same data: losses far
   apart are flagged with "!");
3. the feature-cost table: the same model with and without L2, sample
   weights, Precision/Recall, ``use_bias=False`` + BatchNormalization +
   Activation, and float64 instead of float32 (fastnn alone, both in one
   process, alternating);
4. the train_on_batch rows: a Python loop of ``train_on_batch`` against
   ``fit``, per step;
5. a summary of the targets, each checked as PASS/FAIL (the process never
   fails on a FAIL: it is a measurement, not a test).

Targets (the issue): every grid model >= 2x PyTorch and >= 2x NumPy; compute-bound
models (``grid.Model.compute_bound``) >= 60% of the measured float32 GEMM peak
over the whole epoch (float64 models: of the float64 peak); a feature costs
<= 1.3x (float64 vs float32: <= 2.2x); train_on_batch <= 1.5x fit per step.

Every (model, implementation) runs in its own subprocess whose thread variables
(OMP/OpenBLAS/MKL/FASTNN ... _NUM_THREADS) are set before NumPy or torch is
imported; the child also calls ``fastnn.set_num_threads`` / ``torch.set_num_threads``.
Timing: median seconds/epoch over epochs 2..N (epoch 1 is warm-up), each epoch
timed from before its shuffle to after its last step (fastnn: a callback's
on_epoch_begin/on_epoch_end); no validation. FLOPs: ``grid.py``'s docstring.
fastnn is driven through its public Keras API only (``grid.build_keras``), so
the benchmark measures whatever path fastnn takes internally.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import grid  # noqa: E402  (standard library only: numpy is not imported yet)
from common import (JsonLines, cpu_model, load_average, setup_threads, source_tree_env,  # noqa: E402
                    system_busy_seconds)

IMPLS = ("fastnn", "numpy", "torch")
RESULT_TAG = "@@SHAPES_RESULT@@ "
CHILD_TIMEOUT = 900
LOSS_SPREAD = 0.25      # relative spread of the final losses above which a row is flagged
BUSY_CORES = 0.15       # other processes' CPU use during a fit (cores) above which a row is marked (!)
PAIR_ROUNDS = 2         # alternating rounds in a feature-cost / train_on_batch child


def thread_env(n):
    n = str(n)
    return {v: n for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "FASTNN_NUM_THREADS")}


def machine():
    """CPU model (lscpu, else /proc/cpuinfo), avx512f, usable CPUs."""
    model = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                     None)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            avx512 = " avx512f" in f.read()
    except OSError:
        avx512 = None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model or cpu_model(), "avx512f": avx512, "cpus": cpus, "platform": platform.platform()}


# --------------------------------------------------------------------------- child: trainers
class FastnnTrainer:
    """fastnn through its public Keras API, timed by an epoch callback."""

    def __init__(self, model, threads):
        import fastnn as keras

        self.keras = keras
        set_threads = getattr(keras, "set_num_threads", None) or keras.config.set_num_threads
        set_threads(threads)
        keras.utils.set_random_seed(grid.SEED)
        self.net = grid.build_keras(model, keras)
        self.net.set_weights(grid.initial_weights(model))

    def fit(self, x, y, epochs, batch_size, epoch_begin, epoch_end, sample_weight=None):
        keras = self.keras

        class EpochTimer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                epoch_begin(epoch)

            def on_epoch_end(self, epoch, logs=None):
                epoch_end(epoch, logs)

        history = self.net.fit(x, y, batch_size=batch_size, epochs=epochs, sample_weight=sample_weight, verbose=0,
                               shuffle=True, callbacks=[EpochTimer()])
        return history.history


def make_trainer(impl, model, threads):
    if impl == "fastnn":
        return FastnnTrainer(model, threads)
    kwargs = dict(seed=grid.SEED, batch_norm=model.batch_norm, dropout=model.dropout, l2=model.l2,
                  dtype=model.dtype)
    args = (model.inputs, model.layers, model.loss, model.optimizer, model.opt_args)
    if impl == "numpy":
        from numpy_mlp import NumpyMLP

        trainer = NumpyMLP(*args, **kwargs)
    else:
        import torch

        torch.set_num_threads(threads)
        from torch_mlp import TorchMLP

        trainer = TorchMLP(*args, **kwargs)
    trainer.set_weights(grid.initial_weights(model))
    return trainer


def timed_fit(trainer, model, data, epochs):
    """Fit ``epochs`` epochs; (per-epoch seconds, history, CPU cores other processes used meanwhile)."""
    x, y, sw = data
    times, mark = [], {}

    def begin(epoch):
        mark["t"] = time.perf_counter()

    def end(epoch, logs):
        times.append(time.perf_counter() - mark["t"])

    busy0, own0, t0 = system_busy_seconds(), time.process_time(), time.perf_counter()
    history = trainer.fit(x, y, epochs=epochs, batch_size=model.batch, epoch_begin=begin, epoch_end=end,
                          sample_weight=sw)
    wall = time.perf_counter() - t0
    other = None
    if busy0 is not None and wall >= 0.5:
        other = max(0.0, (system_busy_seconds() - busy0) - (time.process_time() - own0)) / wall
    return times, history, other


def _versions(impl):
    import numpy as np

    out = {"python": platform.python_version(), "numpy": np.__version__}
    if impl == "fastnn":
        import fastnn

        out["fastnn"] = fastnn.__version__
        out["fastnn_file"] = os.path.dirname(fastnn.__file__)
    if impl == "torch":
        import torch

        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    return out


def _median_after_warmup(times):
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


def child_grid(job):
    model = grid.Model(**dict(job["model"], hidden=tuple(job["model"]["hidden"])))
    data = grid.make_data(model)
    trainer = make_trainer(job["impl"], model, job["threads"])
    times, history, other = timed_fit(trainer, model, data, job["epochs"])
    return {"epoch_sec": times, "sec_per_epoch": _median_after_warmup(times), "loss": history["loss"][-1],
            "loss_history": history["loss"], "accuracy": history.get("accuracy", [None])[-1],
            "other_cpu_cores": other, "versions": _versions(job["impl"])}


def child_pair(job):
    """Feature cost: base and variant alternately in one process, min over rounds of each median."""
    models = [grid.Model(**dict(m, hidden=tuple(m["hidden"]))) for m in job["models"]]
    trainers = [make_trainer("fastnn", m, job["threads"]) for m in models]
    datas = [grid.make_data(m) for m in models]     # the same arrays (variant: cast / weights added)
    best = [float("inf")] * len(models)
    out = {"epoch_sec": [], "loss": [], "other_cpu_cores": 0.0}
    for _ in range(job.get("rounds", PAIR_ROUNDS)):
        for i, (m, trainer) in enumerate(zip(models, trainers)):
            times, history, other = timed_fit(trainer, m, datas[i], job["epochs"])
            best[i] = min(best[i], _median_after_warmup(times))
            out["epoch_sec"].append([m.name, times])
            out["loss"].append([m.name, history["loss"][-1]])
            out["other_cpu_cores"] = max(out["other_cpu_cores"], other or 0.0)
    return dict(out, sec_per_epoch=best, versions=_versions("fastnn"))


def child_train_on_batch(job):
    """Per step: fit(epochs) against a Python loop of train_on_batch over the same batches."""
    import numpy as np

    model = grid.Model(**dict(job["model"], hidden=tuple(job["model"]["hidden"])))
    x, y, sw = grid.make_data(model)
    fit_trainer = make_trainer("fastnn", model, job["threads"])
    tob_net = make_trainer("fastnn", model, job["threads"]).net
    rng = np.random.default_rng(grid.SEED)
    steps, b = model.steps, model.batch
    fit_best = tob_best = float("inf")
    losses = {}
    busy0, own0, t0 = system_busy_seconds(), time.process_time(), time.perf_counter()
    for _ in range(job.get("rounds", PAIR_ROUNDS)):
        times, history, _ = timed_fit(fit_trainer, model, (x, y, sw), job["epochs"])
        fit_best = min(fit_best, _median_after_warmup(times) / steps)
        losses["fit"] = history["loss"][-1]
        times = []
        for _ in range(job["epochs"]):
            t0 = time.perf_counter()
            order = rng.permutation(model.rows)
            for s in range(steps):
                idx = order[s * b:(s + 1) * b]
                loss = tob_net.train_on_batch(x[idx], y[idx], sample_weight=None if sw is None else sw[idx])
            times.append(time.perf_counter() - t0)
        tob_best = min(tob_best, _median_after_warmup(times) / steps)
        losses["train_on_batch_last_batch"] = float(loss[0] if isinstance(loss, list) else loss)
    other = None
    if busy0 is not None:
        other = max(0.0, system_busy_seconds() - busy0 - (time.process_time() - own0)) / (time.perf_counter() - t0)
    return {"fit_sec_per_step": fit_best, "tob_sec_per_step": tob_best, "loss": losses, "other_cpu_cores": other,
            "versions": _versions("fastnn")}


def child_peak(job):
    from common import gemm_peak_gflops

    n = job["n"]
    return {"float32": gemm_peak_gflops("float32", None, n=n), "float64": gemm_peak_gflops("float64", None, n=n),
            "n": n}


CHILDREN = {"grid": child_grid, "pair": child_pair, "tob": child_train_on_batch, "peak": child_peak}


def run_child(job_json):
    job = json.loads(job_json)
    setup_threads(job["threads"])
    try:
        result = CHILDREN[job["kind"]](job)
    except Exception as exc:  # noqa: BLE001 - reported in the table, never fatal
        import traceback

        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(RESULT_TAG + json.dumps(result, default=float), flush=True)


# --------------------------------------------------------------------------- parent
def wait_for_idle(max_wait, threshold=0.1, window=1.0):
    """Wait up to ``max_wait`` s until other processes use < ``threshold`` cores over ``window`` s."""
    start = time.perf_counter()
    while max_wait > 0:
        b0 = system_busy_seconds()
        if b0 is None:
            return
        time.sleep(window)
        if (system_busy_seconds() - b0) / window < threshold or time.perf_counter() - start >= max_wait:
            return


SOURCE_ENV = None  # os.environ, made to import the source tree beside this script when it is built (main)


def spawn(job, threads, wait_idle=0):
    wait_for_idle(wait_idle)
    env = dict(SOURCE_ENV, **thread_env(threads))
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(job)], env=env,
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {CHILD_TIMEOUT} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"child exited {proc.returncode}: " + " | ".join(tail)}


def torch_importable():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def verdict(ok):
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def fmt_s(sec):
    if sec is None:
        return "-"
    return f"{sec * 1e3:.1f} ms" if sec < 1 else f"{sec:.2f} s"


def fmt_x(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x"


def run_grid(models, args):
    """[(model, {impl: child result})]: every (model, impl) in its own child; progress on stderr."""
    results = []
    for model in models:
        res = {}
        for impl in args.impls:
            job = {"kind": "grid", "model": model.to_dict(), "impl": impl, "threads": args.threads,
                   "epochs": args.epochs}
            res[impl] = spawn(job, args.threads, args.wait_idle)
            print(f"# {model.name}/{impl}: " + (res[impl].get("error") or fmt_s(res[impl]["sec_per_epoch"])),
                  file=sys.stderr, flush=True)
        results.append((model, res))
    return results


def _grid_rows(results, args, peak, out):
    print("\n## Grid models\n")
    print("| model | shape (I-...-K, act, optimizer, batch, zeros, dtype, loss, +flags) | fastnn s/epoch | "
          "samples/s | GFLOP/s | % peak | NumPy s/epoch | torch s/epoch | vs NumPy | vs torch | "
          "final loss fastnn / NumPy / torch | >=2x NumPy | >=2x torch | >=60% peak |")
    print("|" + "---|" * 14)
    rows = []
    for model, res in results:
        row = summarize_model(model, res, peak, args)
        rows.append(row)
        print(row["line"])
        for impl in res:
            out.write(dict(row["records"][impl]))
    return rows


def summarize_model(model, res, peak, args):
    """The table row, the targets and the JSON records of one model's results (impl -> child result)."""
    sec = {i: r.get("sec_per_epoch") for i, r in res.items()}
    f = sec.get("fastnn")
    gflops = {i: model.flops_per_epoch / s / 1e9 if s else None for i, s in sec.items()}
    pk = peak.get(model.dtype)
    pct = {i: 100.0 * g / pk if g and pk else None for i, g in gflops.items()}
    vs = {i: sec[i] / f if f and sec.get(i) else None for i in ("numpy", "torch")}
    ok_np = None if vs["numpy"] is None else vs["numpy"] >= 2.0
    ok_t = None if vs["torch"] is None else vs["torch"] >= 2.0
    ok_peak = None if not model.compute_bound or pct.get("fastnn") is None else pct["fastnn"] >= 60.0
    losses = {i: r.get("loss") for i, r in res.items()}
    present = [v for v in losses.values() if v is not None]
    spread = (max(present) - min(present)) / max(abs(min(present)), 0.05) if len(present) > 1 else 0.0

    def secs(impl):
        r = res.get(impl)
        return "-" if r is None else "ERROR" if "error" in r else fmt_s(r["sec_per_epoch"])

    busy = max((r.get("other_cpu_cores") or 0.0 for r in res.values()), default=0.0)
    cells = [model.name + (" (!)" if busy > BUSY_CORES else ""), model.describe(), secs("fastnn"),
             f"{model.rows / f:,.0f}" if f else "-", f"{gflops['fastnn']:.1f}" if f else "-",
             f"{pct['fastnn']:.1f}%" if f and pct["fastnn"] else "-", secs("numpy"), secs("torch"),
             fmt_x(vs["numpy"]), fmt_x(vs["torch"]),
             " / ".join("-" if losses.get(i) is None else f"{losses[i]:.4f}" for i in IMPLS)
             + (" !" if spread > LOSS_SPREAD else ""),
             verdict(ok_np), verdict(ok_t), verdict(ok_peak) if model.compute_bound else "n/a"]
    records = {}
    for impl, r in res.items():
        records[impl] = {"name": "time_shapes_epoch", "benchmark": "bench_shapes.time_shapes_epoch",
                         "params": {"model": model.name, "impl": impl, "threads": args.threads},
                         "model": model.to_dict(), "threads": args.threads, "cpu": args.machine["cpu"],
                         "samples_per_sec": model.rows / sec[impl] if sec[impl] else None, "gflops": gflops[impl],
                         "pct_peak": pct[impl], "flops_per_epoch": model.flops_per_epoch, "loss_spread": spread,
                         **r}
        if impl == "fastnn":
            records[impl].update({"speedup_vs_numpy": vs["numpy"], "speedup_vs_torch": vs["torch"],
                                  "ok_2x_numpy": ok_np, "ok_2x_torch": ok_t, "compute_bound": model.compute_bound,
                                  "ok_60pct_peak": ok_peak})
    return {"model": model, "line": "| " + " | ".join(cells) + " |", "ok_numpy": ok_np, "ok_torch": ok_t,
            "ok_peak": ok_peak, "vs": vs, "pct": pct.get("fastnn"), "spread": spread, "busy": busy, "records": records,
            "error": any("error" in r for r in res.values())}


def run_pairs(pairs, args):
    results = []
    for pair in pairs:
        name, _, base, variant, _ = pair
        job = {"kind": "pair", "models": [base.to_dict(), variant.to_dict()], "threads": args.threads,
               "epochs": args.epochs}
        results.append((pair, spawn(job, args.threads, args.wait_idle)))
        print(f"# pair {name}: " + (results[-1][1].get("error") or "done"), file=sys.stderr, flush=True)
    return results


def _pair_rows(results, args, out):
    print("\n## Feature cost (fastnn alone; base and variant alternate in one process, best of "
          f"{PAIR_ROUNDS} rounds)\n")
    print("| pair | base | base s/epoch | with feature s/epoch | ratio | limit | ok | final loss base / with |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for (name, feature, base, variant, limit), r in results:
        if "error" in r:
            print(f"| {name} | {base.describe()} | ERROR | ERROR | - | {limit}x | - | {r['error'][:80]} |")
            rows.append({"name": name, "ok": None, "ratio": None, "limit": limit, "error": True})
            continue
        b, v = r["sec_per_epoch"]
        ratio = v / b
        loss = dict(r["loss"])
        mark = " (!)" if (r.get("other_cpu_cores") or 0) > BUSY_CORES else ""
        print(f"| {name}{mark} | {base.describe()} | {fmt_s(b)} | {fmt_s(v)} | {ratio:.2f}x | {limit}x | "
              f"{verdict(ratio <= limit)} | {loss[base.name]:.4f} / {loss[variant.name]:.4f} |", flush=True)
        rows.append({"name": name, "ok": ratio <= limit, "ratio": ratio, "limit": limit})
        out.write({"name": "ratio_feature_cost", "benchmark": "bench_shapes.ratio_feature_cost",
                   "params": {"pair": name, "feature": feature, "threads": args.threads}, "base": base.to_dict(),
                   "variant": variant.to_dict(), "sec_per_epoch_base": b, "sec_per_epoch_variant": v,
                   "ratio": ratio, "limit": limit, "ok": ratio <= limit, "threads": args.threads,
                   "cpu": args.machine["cpu"], **{k: v for k, v in r.items() if k != "sec_per_epoch"}})
    return rows


def run_tob(models, args):
    results = []
    for model in models:
        r = spawn({"kind": "tob", "model": model.to_dict(), "threads": args.threads, "epochs": args.epochs},
                  args.threads, args.wait_idle)
        results.append((model, r))
        print(f"# train_on_batch {model.name}: " + (r.get("error") or "done"), file=sys.stderr, flush=True)
    return results


def _tob_rows(results, args, out, limit=1.5):
    print("\n## train_on_batch in a Python loop vs fit, per step (fastnn)\n")
    print("| model | fit ms/step | train_on_batch ms/step | ratio | limit | ok |")
    print("|---|---|---|---|---|---|")
    rows = []
    for model, r in results:
        if "error" in r:
            print(f"| {model.name} | ERROR | ERROR | - | {limit}x | {r['error'][:80]} |")
            rows.append({"name": model.name, "ok": None, "ratio": None, "limit": limit, "error": True})
            continue
        ratio = r["tob_sec_per_step"] / r["fit_sec_per_step"]
        mark = " (!)" if (r.get("other_cpu_cores") or 0) > BUSY_CORES else ""
        print(f"| {model.name}{mark} ({model.describe()}) | {r['fit_sec_per_step'] * 1e3:.3f} | "
              f"{r['tob_sec_per_step'] * 1e3:.3f} | {ratio:.2f}x | {limit}x | {verdict(ratio <= limit)} |", flush=True)
        rows.append({"name": model.name, "ok": ratio <= limit, "ratio": ratio, "limit": limit})
        out.write({"name": "ratio_train_on_batch", "benchmark": "bench_shapes.ratio_train_on_batch",
                   "params": {"model": model.name, "threads": args.threads}, "model": model.to_dict(),
                   "ratio": ratio, "limit": limit, "ok": ratio <= limit, "threads": args.threads,
                   "cpu": args.machine["cpu"], **r})
    return rows


def _summary(grid_rows, pair_rows, tob_rows):
    print("\n## Targets\n")

    def line(title, items):
        checked = [i for i in items if i[1] is not None]
        fails = [i[0] for i in checked if not i[1]]
        print(f"- {title}: {len(checked) - len(fails)}/{len(checked)} PASS"
              + (f"; FAIL: {', '.join(fails)}" if fails else ""))

    line("grid model >= 2x NumPy", [(r["model"].name + f" ({fmt_x(r['vs']['numpy'])})", r["ok_numpy"])
                                    for r in grid_rows])
    line("grid model >= 2x PyTorch", [(r["model"].name + f" ({fmt_x(r['vs']['torch'])})", r["ok_torch"])
                                      for r in grid_rows])
    line("compute-bound model >= 60% of peak", [(r["model"].name + f" ({r['pct']:.0f}%)" if r["pct"] else
                                                 r["model"].name, r["ok_peak"]) for r in grid_rows])
    line("a feature costs <= 1.3x (float64 <= 2.2x)", [(r["name"] + f" ({fmt_x(r['ratio'])})", r["ok"])
                                                      for r in pair_rows])
    line("train_on_batch <= 1.5x fit per step", [(r["name"] + f" ({fmt_x(r['ratio'])})", r["ok"]) for r in tob_rows])
    flagged = [r["model"].name for r in grid_rows if r["spread"] > LOSS_SPREAD]
    errors = [r["model"].name for r in grid_rows if r["error"]] + [r["name"] for r in pair_rows + tob_rows
                                                                     if r.get("error")]
    busy = [r["model"].name for r in grid_rows if r["busy"] > BUSY_CORES]
    if busy:
        print(f"- rows marked (!): other processes used > {BUSY_CORES} cores during a fit, so their timings are "
              f"not comparable: {', '.join(busy)}")
    if flagged:
        print(f"- final losses more than {LOSS_SPREAD:.0%} apart (check the implementations): {', '.join(flagged)}")
    if errors:
        print(f"- ERRORS (see stderr): {', '.join(errors)}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="", help="run only the models / pairs whose name contains this")
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 5; --quick: 2)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 tiny models, 2 epochs, all impls, < 60 s")
    p.add_argument("--json", default=None, help="append JSON lines (one per result) to this file")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="shared machines: before each child, wait up to SECONDS for other processes to go quiet")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return run_child(args.child)
    global SOURCE_ENV
    SOURCE_ENV = source_tree_env(dict(os.environ), HERE)
    args.epochs = args.epochs or (2 if args.quick else 5)
    args.impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    bad = [i for i in args.impls if i not in IMPLS]
    if bad:
        p.error(f"unknown --impls {bad}; choose from {IMPLS}")
    if "torch" in args.impls and not torch_importable():
        print("NOTE: torch is not importable here: the PyTorch column is skipped "
              "(pip install torch==2.13.0 to include it).")
        args.impls.remove("torch")
    args.machine = machine()
    out = JsonLines(args.json, echo=False)
    load0 = load_average()
    m = args.machine
    print(f"Machine: {m['cpu']}; avx512f: {'yes' if m['avx512f'] else 'no'}; {m['cpus']} usable CPUs; "
          f"threads {args.threads}; load average before {load0}")
    peak_job = {"kind": "peak", "threads": args.threads, "n": 1024 if args.quick else 2048}
    peak = spawn(peak_job, args.threads, args.wait_idle)
    if "error" in peak:
        print(f"GEMM peak: ERROR {peak['error']}")
    else:
        print(f"Measured GEMM peak (NumPy matmul {peak['n']}^3, {args.threads} threads, best of 5): "
              f"float32 {peak['float32']:.1f} GFLOP/s, float64 {peak['float64']:.1f} GFLOP/s", flush=True)
    models = grid.QUICK if args.quick else grid.GRID
    pairs = grid.QUICK_FEATURE_PAIRS if args.quick else grid.FEATURE_PAIRS
    tob = grid.QUICK_TRAIN_ON_BATCH if args.quick else grid.TRAIN_ON_BATCH
    fastnn = "fastnn" in args.impls
    t0 = time.perf_counter()
    grid_results = run_grid([mm for mm in models if args.only in mm.name], args)
    pair_results = run_pairs([pp for pp in pairs if args.only in pp[0]], args) if fastnn else []
    tob_results = run_tob([mm for mm in tob if args.only in mm.name], args) if fastnn else []
    # The peak is the machine's: a busy neighbour can only lower a measurement, so it is measured again
    # after the runs and the higher of the two is the reference of the "% peak" column.
    again = spawn(peak_job, args.threads, args.wait_idle)
    peaks = [p for p in (peak, again) if "error" not in p]
    best = {d: max(p[d] for p in peaks) for d in ("float32", "float64")} if peaks else {}
    if "error" not in again:
        print(f"GEMM peak measured again after the runs: float32 {again['float32']:.1f}, float64 "
              f"{again['float64']:.1f} GFLOP/s; % peak below is against the higher of the two measurements")
    for p in peaks:
        out.write({"name": "track_gemm_peak_gflops", "params": {"threads": args.threads}, **p, **m})
    grid_rows = _grid_rows(grid_results, args, best, out) if grid_results else []
    pair_rows = _pair_rows(pair_results, args, out) if pair_results else []
    tob_rows = _tob_rows(tob_results, args, out) if tob_results else []
    _summary(grid_rows, pair_rows, tob_rows)
    print(f"\nLoad average before {load0}, after {load_average()}; {time.perf_counter() - t0:.0f} s; "
          f"epochs {args.epochs} (median of epochs 2..{args.epochs}); impls {','.join(args.impls)}")
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
