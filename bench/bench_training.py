#!/usr/bin/env python
"""End-to-end training benchmark: fastnn vs a careful NumPy trainer vs PyTorch.

    FASTNN_DATA_DIR=/path/to/datasets python bench/bench_training.py [--quick]
        [--workloads mnist-mlp,mnist-wide,fashion-mlp,toy-regression]
        [--impls fastnn,numpy,torch] [--threads 2[,1]] [--epochs N]
        [--output results.jsonl] [--no-check]

Each (workload, implementation, threads) runs in its own subprocess, so peak RSS
(``ru_maxrss``) is per implementation and the thread settings (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, FASTNN_NUM_THREADS) are in the
environment before NumPy or torch is imported; the child then also calls
``torch.set_num_threads`` / ``fastnn.set_num_threads``. PyTorch runs when it is
importable (the output says when it is skipped).

Order of a run (STYLE habit 15: check the results, then time them):

1. the data sets are read once with ``fastnn.datasets.*.load_data()`` and
   saved as .npy files in a temporary folder, so every implementation starts
   from the same uint8 arrays without importing fastnn;
2. equivalence check: for every workload, fastnn and the NumPy baseline (and
   torch, for information) start from the SAME weights and train a few
   unshuffled steps; their weights must agree (the baseline does the same maths);
3. the timed runs: ``sec_per_epoch`` is the median of epochs 2..N, each epoch
   timed from before its shuffle to after its validation pass; the final test
   accuracy (toy: ``predict(5.0)``) is checked against the expected range and a
   failing row is flagged, never dropped;
4. micro-measures: ``predict`` on one sample (min over many calls) in each
   timed child, and the import time of each library (fresh interpreter, min of
   several);
5. one JSON line per result (stdout, and ``--output``), then Markdown tables.

bench/common.py (shared timer/env capture) did not exist when this was
written, so the few helpers needed live here.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import source_tree_env, system_busy_seconds  # noqa: E402  (standard library only until called)
RESULT_TAG = "@@BENCH_RESULT@@ "
IMPLS = ("fastnn", "numpy", "torch")
SEED = 1234

# --------------------------------------------------------------------------- workloads
# Keras tutorial models. `layers` is what the NumPy/torch trainers build; the
# fastnn side is written out as tutorial code in `_fastnn_model` below.
WORKLOADS = {
    "mnist-mlp": dict(
        dataset="mnist", input_shape=(28, 28), layers=[(128, "relu"), (10, "softmax")],
        optimizer="adam", optimizer_kwargs={}, loss="sparse_categorical_crossentropy",
        batch_size=32, epochs=5, validation="test", min_accuracy=0.97, quick_min_accuracy=0.88),
    "mnist-wide": dict(
        dataset="mnist", input_shape=(784,), layers=[(512, "relu"), (10, "softmax")],
        optimizer="rmsprop", optimizer_kwargs={}, loss="categorical_crossentropy",
        batch_size=128, epochs=5, validation="test", min_accuracy=0.97, quick_min_accuracy=0.88),
    "fashion-mlp": dict(
        dataset="fashion_mnist", input_shape=(28, 28), layers=[(100, "relu"), (10, "softmax")],
        optimizer="sgd", optimizer_kwargs={"learning_rate": 0.01}, loss="sparse_categorical_crossentropy",
        # 0.84 is the tutorial's final *validation* accuracy; on the test set all three implementations
        # land at 0.836-0.838 after 5 epochs (validation 0.846-0.849), so the test check is 0.83.
        batch_size=32, epochs=5, validation="split", min_accuracy=0.83, quick_min_accuracy=0.65),
    "toy-regression": dict(
        dataset="toy", input_shape=(1,), layers=[(1, "linear")], optimizer="sgd", optimizer_kwargs={},
        loss="mse", batch_size=32, epochs=500, validation=None, target=9.0, tolerance=0.05),
}
QUICK = dict(n_train=10000, n_test=2000, epochs=3, import_repeats=3)
FULL = dict(import_repeats=7)
PREDICT_CALLS = 300
# Other processes' CPU use during a fit (in cores) above which the row is flagged.
BUSY_CORES = 0.15
BUSY_CORES_WAIT = 0.10
BUSY_RETRIES = 2


def _fastnn_model(name, keras):
    """The model exactly as a Keras tutorial writes it (with `import fastnn as keras`)."""
    if name == "mnist-mlp":
        model = keras.Sequential([
            keras.layers.Flatten(input_shape=(28, 28)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    elif name == "mnist-wide":
        model = keras.Sequential([
            keras.layers.Dense(512, activation="relu", input_shape=(28 * 28,)),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    elif name == "fashion-mlp":
        model = keras.Sequential([
            keras.layers.Flatten(input_shape=(28, 28)),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    elif name == "toy-regression":
        model = keras.Sequential([keras.layers.Dense(units=1, input_shape=[1])])
        model.compile(optimizer="sgd", loss="mean_squared_error")
    else:
        raise ValueError(name)
    return model


# --------------------------------------------------------------------------- environment
def thread_env(n_threads):
    """Environment variables that fix every library's thread count (set before import)."""
    n = str(n_threads)
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "BLIS_NUM_THREADS": n, "VECLIB_MAXIMUM_THREADS": n, "NUMEXPR_NUM_THREADS": n,
            "FASTNN_NUM_THREADS": n}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def peak_rss_mb():
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def wait_for_idle(max_wait, threshold=BUSY_CORES_WAIT, window=1.0):
    """Wait (up to ``max_wait`` s) until other processes use under ``threshold`` cores over
    ``window`` s; returns the seconds waited. On a shared machine this keeps a timed run
    from starting while a build or a test suite holds the cores."""
    start = time.perf_counter()
    while True:
        b0 = system_busy_seconds()
        if b0 is None:
            return 0.0
        time.sleep(window)
        if (system_busy_seconds() - b0) / window < threshold or time.perf_counter() - start >= max_wait:
            return time.perf_counter() - start


def _own_cpu_seconds():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _torch_importable():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _emit(result):
    print(RESULT_TAG + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- child: data
def _prepare_data(directory, datasets):
    """Read each data set once through fastnn's loaders; save uint8 .npy files."""
    import numpy as np
    from fastnn.datasets import fashion_mnist, mnist

    loaders = {"mnist": mnist, "fashion_mnist": fashion_mnist}
    for name in datasets:
        (x_train, y_train), (x_test, y_test) = loaders[name].load_data()
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        for key, value in arrays.items():
            np.save(os.path.join(directory, f"{name}_{key}.npy"), value)


def _fastnn_on_path():
    import importlib.util

    return importlib.util.find_spec("fastnn") is not None


def _load(job):
    """The workload's arrays, identical for every implementation (float32 x / 255)."""
    import numpy as np

    w = WORKLOADS[job["workload"]]
    if w["dataset"] == "toy":
        xs = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0], dtype=np.float32).reshape(-1, 1)
        return {"x_train": xs, "y_train": 2 * xs - 1}
    d = {}
    for key in ("x_train", "y_train", "x_test", "y_test"):
        d[key] = np.load(os.path.join(job["data_dir"], f"{w['dataset']}_{key}.npy"))
    if job.get("n_train"):
        d["x_train"], d["y_train"] = d["x_train"][:job["n_train"]], d["y_train"][:job["n_train"]]
        d["x_test"], d["y_test"] = d["x_test"][:job["n_test"]], d["y_test"][:job["n_test"]]
    for key in ("x_train", "x_test"):
        x = d[key].astype(np.float32)
        x /= 255.0
        d[key] = x.reshape((x.shape[0],) + w["input_shape"])
    for key in ("y_train", "y_test"):
        y = d[key].astype(np.intp)
        d[key] = np.eye(10, dtype=np.float32)[y] if w["loss"] == "categorical_crossentropy" else y
    return d


# --------------------------------------------------------------------------- child: trainers
class FastnnTrainer:
    """fastnn through its public Keras API, as the tutorial code does it."""

    def __init__(self, workload, seed, n_threads):
        import fastnn as keras

        self.keras = keras
        if hasattr(keras, "set_num_threads"):
            keras.set_num_threads(n_threads)
        keras.utils.set_random_seed(seed)
        self.model = _fastnn_model(workload, keras)

    def get_weights(self):
        return self.model.get_weights()

    def set_weights(self, weights):
        self.model.set_weights(weights)

    def fit(self, X, Y, epochs, batch_size, validation_data=None, validation_split=0.0, shuffle=True,
            epoch_begin=None, epoch_end=None):
        callbacks = []
        if epoch_begin is not None or epoch_end is not None:
            class EpochTimer(self.keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    if epoch_begin is not None:
                        epoch_begin(epoch)

                def on_epoch_end(self, epoch, logs=None):
                    if epoch_end is not None:
                        epoch_end(epoch, logs)

            callbacks.append(EpochTimer())
        history = self.model.fit(X, Y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                                 validation_split=validation_split, shuffle=shuffle, verbose=0,
                                 callbacks=callbacks)
        return history.history

    def evaluate(self, X, Y):
        return self.model.evaluate(X, Y, verbose=0, return_dict=True)

    def predict(self, X):
        return self.model.predict(X, verbose=0)


def _trainer(impl, workload, seed, n_threads):
    w = WORKLOADS[workload]
    if impl == "fastnn":
        return FastnnTrainer(workload, seed, n_threads)
    sys.path.insert(0, HERE)
    input_dim = 1
    for s in w["input_shape"]:
        input_dim *= s
    if impl == "numpy":
        from numpy_mlp import NumpyMLP

        return NumpyMLP(input_dim, w["layers"], w["loss"], w["optimizer"], w["optimizer_kwargs"], seed=seed)
    import torch

    torch.set_num_threads(n_threads)
    from torch_mlp import TorchMLP

    return TorchMLP(input_dim, w["layers"], w["loss"], w["optimizer"], w["optimizer_kwargs"], seed=seed,
                    flatten=len(w["input_shape"]) > 1)


def _versions(impl):
    import numpy as np

    out = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - show_config's layout is informational
        pass
    if impl == "fastnn":
        import fastnn
        from fastnn import _kernels

        out["fastnn"] = fastnn.__version__
        out["fastnn_kernels"] = _kernels.BACKEND
        try:
            from fastnn._config import build_info

            info = build_info()
            out["fastnn_openmp"] = info.get("openmp_runtime")
            out["fastnn_blas"] = (info.get("blas") or {}).get("name")
        except Exception:  # noqa: BLE001 - build_info is informational and private
            pass
        out["fastnn_file"] = os.path.dirname(fastnn.__file__)
        if hasattr(fastnn, "get_num_threads"):
            out["fastnn_threads"] = fastnn.get_num_threads()
    if impl == "torch":
        import torch

        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    return out


def _min_time(fn, calls, warmup=10):
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_child(job):
    """One timed run: train the workload with one implementation, print one result."""
    import numpy as np

    w = WORKLOADS[job["workload"]]
    impl, n_threads = job["impl"], job["threads"]
    data = _load(job)
    trainer = _trainer(impl, job["workload"], SEED, n_threads)
    epochs = job["epochs"]

    x, y = data["x_train"], data["y_train"]
    fit_kwargs = {}
    val = None
    if w["validation"] == "test":
        val = (data["x_test"], data["y_test"])
        fit_kwargs["validation_data"] = val
    elif w["validation"] == "split":
        split_at = int(len(x) * 0.8)           # Keras: the LAST 20%, taken before shuffling
        val = (x[split_at:], y[split_at:])
        if impl == "fastnn":
            fit_kwargs["validation_split"] = 0.2   # as the tutorial writes it; fastnn splits
        else:
            fit_kwargs["validation_data"] = val
            x, y = x[:split_at], y[:split_at]
    n_val = 0 if val is None else len(val[0])
    n_train = len(x) - (n_val if "validation_split" in fit_kwargs else 0)
    steps = -(-n_train // w["batch_size"])

    times, last = [], {}
    marks = {}

    def epoch_begin(epoch):
        marks["t"] = time.perf_counter()

    def epoch_end(epoch, logs):
        times.append(time.perf_counter() - marks["t"])
        last.clear()
        last.update(logs or {})

    busy0, own0 = system_busy_seconds(), _own_cpu_seconds()
    t0 = time.perf_counter()
    history = trainer.fit(x, y, epochs=epochs, batch_size=w["batch_size"], epoch_begin=epoch_begin,
                          epoch_end=epoch_end, **fit_kwargs)
    fit_sec = time.perf_counter() - t0
    busy1, own1 = system_busy_seconds(), _own_cpu_seconds()
    # CPU time other processes used during fit, in cores: contention makes the numbers meaningless.
    # /proc/stat counts in 10 ms ticks, so a fit shorter than half a second (the toy) is not judged.
    other_cores = None
    if busy0 is not None and fit_sec >= 0.5:
        other_cores = max(0.0, (busy1 - busy0) - (own1 - own0)) / fit_sec

    result = {
        "name": "time_epoch", "benchmark": "bench_training.time_epoch",
        "params": {"workload": job["workload"], "impl": impl, "threads": n_threads},
        "workload": job["workload"], "impl": impl, "threads": n_threads, "quick": job["quick"],
        "epochs": epochs, "batch_size": w["batch_size"], "n_train": n_train, "n_val": n_val,
        "sec_per_epoch": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "sec_per_epoch_min": min(times[1:]) if len(times) > 1 else times[0],
        "first_epoch_sec": times[0], "fit_sec": fit_sec, "final_loss": history["loss"][-1],
        "other_cpu_cores": other_cores,
    }
    if len(times) <= 20:
        result["epoch_sec"] = times
    else:  # the toy's 500 epochs: a summary, not 500 numbers
        result["epoch_sec_quartiles"] = statistics.quantiles(times[1:], n=4)
    # Validation alone (min of 3 evaluate calls), to split an epoch into training steps + validation.
    result["val_sec"] = _min_time(lambda: trainer.evaluate(*val), 3, warmup=1) if val is not None else 0.0
    result["steps_per_epoch"] = steps
    result["ms_per_step"] = max(0.0, result["sec_per_epoch"] - result["val_sec"]) / steps * 1e3
    result["train_samples_per_sec"] = n_train / max(1e-12, result["sec_per_epoch"] - result["val_sec"])
    if w["dataset"] == "toy":
        result["us_per_epoch"] = result["sec_per_epoch"] * 1e6
        x5 = np.array([[5.0]], dtype=np.float32)
        prediction = float(np.asarray(trainer.predict(x5)).reshape(-1)[0])
        result["prediction"] = prediction
        result["expected"] = f"predict(5.0) within {w['tolerance']} of {w['target']}"
        result["ok"] = abs(prediction - w["target"]) <= w["tolerance"]
        one = x5
    else:
        test = trainer.evaluate(data["x_test"], data["y_test"])
        result["accuracy"] = float(test["accuracy"])
        result["test_loss"] = float(test["loss"])
        result["val_accuracy"] = last.get("val_accuracy")
        full = not job["quick"] and epochs >= w["epochs"]
        threshold = w["min_accuracy"] if full else w["quick_min_accuracy"]
        result["expected"] = f"test accuracy >= {threshold}" + ("" if full else " (quick/short run)")
        result["ok"] = result["accuracy"] >= threshold
        one = data["x_test"][:1]
        # Whole-test-set predict (samples/sec of inference), min of 3.
        result["predict_test_sec"] = _min_time(lambda: trainer.predict(data["x_test"]), 3, warmup=1)
    result["predict_1_us"] = _min_time(lambda: trainer.predict(one), PREDICT_CALLS) * 1e6
    result["peak_rss_mb"] = peak_rss_mb()
    result["versions"] = _versions(impl)
    _emit(result)


# --------------------------------------------------------------------------- child: equivalence
def run_check(job):
    """Same initial weights, same unshuffled batches: fastnn and the NumPy baseline (and torch)
    must end with the same weights. Prints one result per workload × implementation."""
    import numpy as np

    for workload in job["workloads"]:
        w = WORKLOADS[workload]
        data = _load(dict(job, workload=workload, n_train=640, n_test=64))
        x, y = data["x_train"], data["y_train"]
        steps_epochs = 2
        trainers = {impl: _trainer(impl, workload, SEED, job["threads"]) for impl in job["impls"]}
        start = trainers["fastnn"].get_weights()
        ends = {}
        for impl, trainer in trainers.items():
            trainer.set_weights(start)
            trainer.fit(x, y, epochs=steps_epochs, batch_size=w["batch_size"], shuffle=False)
            ends[impl] = trainer.get_weights()
        ref = ends["numpy"]
        scale = max(float(np.abs(a).max()) for a in ref)
        for impl in job["impls"]:
            if impl == "numpy":
                continue
            diff = max(float(np.abs(a - b).max()) for a, b in zip(ends[impl], ref))
            # fastnn must do the baseline's maths; torch's Adam/RMSprop place epsilon differently.
            tolerance = 1e-4 * scale if impl == "fastnn" else 1e-2 * scale
            _emit({"name": "check_same_maths", "workload": workload, "impl": impl, "against": "numpy",
                   "steps": steps_epochs * -(-len(x) // w["batch_size"]), "max_abs_weight_diff": diff,
                   "tolerance": tolerance, "ok": diff <= tolerance, "informational": impl == "torch"})


# --------------------------------------------------------------------------- child: import time
IMPORT_SNIPPET = ("import time, resource; t = time.perf_counter(); import {module}; "
                  "d = time.perf_counter() - t; "
                  "print(d, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def measure_import(impl, env, repeats):
    module = {"fastnn": "fastnn", "numpy": "numpy", "torch": "torch"}[impl]
    best, rss = float("inf"), None
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", IMPORT_SNIPPET.format(module=module)], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        seconds, kib = float(out[-2]), int(out[-1])
        best, rss = min(best, seconds), kib / 1024
    return {"name": "time_import", "benchmark": "bench_training.time_import", "workload": "import",
            "impl": impl, "module": module, "import_ms": best * 1e3, "repeats": repeats,
            "rss_after_import_mb": rss, "params": {"impl": impl}}


# --------------------------------------------------------------------------- driver
def _run_subprocess(argv, env, label):
    """Run a child; return its tagged results (other output is passed through to stderr)."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, env=env, capture_output=True,
                          text=True)
    results = []
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            results.append(json.loads(line[len(RESULT_TAG):]))
        elif line.strip():
            print(f"[{label}] {line}", file=sys.stderr)
    for line in proc.stderr.splitlines():
        if line.strip():
            print(f"[{label}] {line}", file=sys.stderr)
    if proc.returncode != 0:
        results.append({"name": "error", "label": label, "returncode": proc.returncode,
                        "stderr_tail": proc.stderr.strip().splitlines()[-3:]})
    return results


def _format_time(seconds):
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _ratio(base, value):
    if base is None or value is None or value <= 0:
        return "-"
    return f"{base / value:.2f}×"


def _impl_label(r):
    kernels = r.get("versions", {}).get("fastnn_kernels")
    return f"fastnn ({kernels})" if kernels and kernels != "compiled" else r["impl"]


def markdown_tables(results, impls):
    lines = []
    runs = [r for r in results if r.get("name") == "time_epoch"]
    have_torch = "torch" in impls and any(r["impl"] == "torch" for r in runs)
    by_key = {(r["workload"], r["impl"], r["threads"]): r for r in runs}
    header = ["workload", "impl", "threads", "time/epoch", "ms/step", "speed-up vs NumPy"]
    if have_torch:
        header.append("speed-up vs torch")
    header += ["accuracy / predict(5)", "peak RSS MB", "predict 1 sample", "other load", "ok"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    warnings = []
    seen_rows = []
    for r in runs:
        key = (r["workload"], r["threads"])
        if key in seen_rows:
            continue
        seen_rows.append(key)
        for impl in impls:
            row = by_key.get((r["workload"], impl, r["threads"]))
            if row is None:
                continue
            base = by_key.get((r["workload"], "numpy", r["threads"]))
            torch_row = by_key.get((r["workload"], "torch", r["threads"]))
            quality = f"{row['accuracy']:.4f}" if "accuracy" in row else f"{row['prediction']:.4f}"
            cells = [row["workload"], _impl_label(row), str(row["threads"]),
                     _format_time(row["sec_per_epoch"]), f"{row['ms_per_step']:.3f}",
                     _ratio(base and base["sec_per_epoch"], row["sec_per_epoch"])]
            if have_torch:
                cells.append(_ratio(torch_row and torch_row["sec_per_epoch"], row["sec_per_epoch"]))
            other = row.get("other_cpu_cores")
            cells += [quality, f"{row['peak_rss_mb']:.0f}", _format_time(row["predict_1_us"] * 1e-6),
                      "-" if other is None else f"{other:.2f}" + (" (!)" if other > BUSY_CORES else ""),
                      "yes" if row["ok"] else "**NO**"]
            lines.append("| " + " | ".join(cells) + " |")
            if not row["ok"]:
                warnings.append(f"WARNING: {row['workload']} / {_impl_label(row)}: {quality} is outside the "
                                f"expected range ({row['expected']}).")
    imports = [r for r in results if r.get("name") == "time_import"]
    if imports:
        lines += ["", "| import | time (min) | peak RSS after import MB |", "|---|---|---|"]
        for r in imports:
            lines.append(f"| `import {r['module']}` | {r['import_ms']:.0f} ms | "
                         f"{r['rss_after_import_mb']:.0f} |")
    checks = [r for r in results if r.get("name") == "check_same_maths"]
    if checks:
        lines += ["", "| same-maths check (vs NumPy, same start weights) | max abs weight diff "
                      "| tolerance | ok |",
                  "|---|---|---|---|"]
        for r in checks:
            ok = "yes" if r["ok"] else ("no (informational)" if r["informational"] else "**NO**")
            lines.append(f"| {r['workload']} / {r['impl']}, {r['steps']} steps | "
                         f"{r['max_abs_weight_diff']:.2e} | {r['tolerance']:.1e} | {ok} |")
            if not r["ok"] and not r["informational"]:
                warnings.append(f"WARNING: {r['workload']}: fastnn's weights differ from the NumPy "
                                f"baseline's by {r['max_abs_weight_diff']:.2e} after {r['steps']} identical "
                                "steps.")
    busy = [r for r in runs if (r.get("other_cpu_cores") or 0) > BUSY_CORES]
    if busy:
        worst = max(r["other_cpu_cores"] for r in busy)
        warnings.append(f"WARNING: other processes used up to {worst:.2f} cores during {len(busy)} of the "
                        f"{len(runs)} timed fits (column 'other load'); OpenMP/BLAS threads that spin-wait "
                        "slow down a lot when cores are shared: rerun those on an idle machine.")
    for r in results:
        if r.get("name") == "error":
            tail = " / ".join(r["stderr_tail"])
            warnings.append(f"ERROR: {r['label']} exited with {r['returncode']}: {tail}")
    return "\n".join(lines), warnings


def machine_info():
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(),
            "platform": platform.platform(), "python": platform.python_version()}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--impls", default=",".join(IMPLS),
                   help="comma-separated subset of fastnn,numpy,torch (default: all; torch only if "
                        "importable)")
    p.add_argument("--threads", default=str(usable_cpus()),
                   help="thread count(s) for every library, comma-separated (default: usable CPUs)")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the epochs of the MNIST/Fashion workloads (>= 2; toy-regression keeps 500)")
    p.add_argument("--output", default=None, help="also write the JSON lines to this file (overwritten)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK['n_train']} training / {QUICK['n_test']} test samples, "
                        f"{QUICK['epochs']} epochs (under a minute with the compiled kernels)")
    p.add_argument("--no-check", action="store_true", help="skip the same-maths check before timing")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="shared machines: before each timed run wait up to SECONDS for the other processes "
                        f"to go quiet, and rerun a disturbed run (up to {BUSY_RETRIES} times, keeping the "
                        "least disturbed)")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    p.add_argument("--_check", help=argparse.SUPPRESS)
    p.add_argument("--_prepare", nargs="+", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args._child:
        return run_child(json.loads(args._child))
    if args._check:
        return run_check(json.loads(args._check))
    if args._prepare:
        return _prepare_data(args._prepare[0], args._prepare[1:])

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    threads = [int(t) for t in args.threads.split(",")]
    unknown = [w for w in workloads if w not in WORKLOADS] + [i for i in impls if i not in IMPLS]
    if unknown:
        sys.exit(f"unknown workload(s)/impl(s): {unknown}")
    if args.epochs is not None and args.epochs < 2:
        sys.exit("--epochs must be >= 2 (epoch 1 is not timed)")
    notes = []
    if "torch" in impls and not _torch_importable():
        impls.remove("torch")
        notes.append("PyTorch is not importable: the torch column is skipped.")
    elif "torch" not in impls:
        notes.append("PyTorch not requested (--impls).")

    machine = machine_info()
    print(f"# machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs, Python {machine['python']}",
          file=sys.stderr)
    for note in notes:
        print(f"# {note}", file=sys.stderr)
    results = []
    out_file = open(args.output, "w") if args.output else None

    def record(items):
        for r in items:
            if r.get("name") in ("time_epoch", "time_import", "check_same_maths"):
                r["machine"] = machine
            line = json.dumps(r)
            print(line, flush=True)
            if out_file:
                out_file.write(line + "\n")
                out_file.flush()
            results.append(r)

    with tempfile.TemporaryDirectory(prefix="fastnn-bench-") as data_dir:
        datasets = sorted({WORKLOADS[w]["dataset"] for w in workloads} - {"toy"})
        base_env = source_tree_env(dict(os.environ), HERE)
        if datasets:
            t0 = time.perf_counter()
            record(_run_subprocess(["--_prepare", data_dir] + datasets, base_env, "data"))
            print(f"# data read with fastnn.datasets in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        size = QUICK if args.quick else {}
        for n_threads in threads:
            env = dict(base_env, **thread_env(n_threads))
            if not args.no_check and "fastnn" in impls and "numpy" in impls:
                job = {"workloads": workloads, "impls": impls, "threads": n_threads, "data_dir": data_dir,
                       "quick": args.quick}
                record(_run_subprocess(["--_check", json.dumps(job)], env, "check"))
            for workload in workloads:
                w = WORKLOADS[workload]
                epochs = w["epochs"]
                if workload != "toy-regression":
                    epochs = args.epochs or size.get("epochs", epochs)
                for impl in impls:
                    job = {"workload": workload, "impl": impl, "threads": n_threads, "epochs": epochs,
                           "data_dir": data_dir, "quick": args.quick,
                           "n_train": size.get("n_train"), "n_test": size.get("n_test")}
                    label = f"{workload}/{impl}/{n_threads}"
                    best = None
                    # With --wait-idle, a run that other processes disturbed is run again (twice at most),
                    # and the least disturbed one is kept.
                    for attempt in range(1 + (BUSY_RETRIES if args.wait_idle > 0 else 0)):
                        waited = wait_for_idle(args.wait_idle) if args.wait_idle > 0 else 0.0
                        t0 = time.perf_counter()
                        items = _run_subprocess(["--_child", json.dumps(job)], env, label)
                        note = f" (after waiting {waited:.0f} s for an idle machine)" if waited >= 1.5 else ""
                        print(f"# {label} threads: {time.perf_counter() - t0:.1f} s{note}", file=sys.stderr)
                        run = next((r for r in items if r.get("name") == "time_epoch"), None)
                        if run is None:
                            best = items
                            break
                        run["attempt"] = attempt + 1
                        other = run["other_cpu_cores"]
                        if other is None or best is None or other < best[0]["other_cpu_cores"]:
                            best = [run]
                        if other is None or other <= BUSY_CORES:
                            break
                        print(f"# {label}: other processes used {run['other_cpu_cores']:.2f} cores",
                              file=sys.stderr)
                    record(best)
            repeats = (QUICK if args.quick else FULL)["import_repeats"]
            for impl in impls:
                if args.wait_idle > 0:
                    wait_for_idle(args.wait_idle)
                record([dict(measure_import(impl, env, repeats), threads=n_threads)])
    if out_file:
        out_file.close()

    table, warnings = markdown_tables(results, impls)
    print()
    print(f"Machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs; Python {machine['python']}; "
          f"threads {args.threads}{'; QUICK run' if args.quick else ''}.")
    versions = {}
    for r in results:
        versions.update(r.get("versions", {}))
    if versions:
        print("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if k != "fastnn_file"))
    for note in notes:
        print(note)
    print()
    print(table)
    if warnings:
        print()
        print("\n".join(warnings))
    return 1 if any(r.get("name") == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
