#!/usr/bin/env python
"""IMDB sentiment benchmark (the Keras tutorial): fastnn vs a dense NumPy trainer vs PyTorch.

    FASTNN_DATA_DIR=/work/shared/datasets python bench/bench_imdb.py [--threads 2]
        [--epochs 20 | --quick] [--impls fastnn,numpy,torch] [--output results.jsonl]

Workload ``imdb-mlp``: ``imdb.load_data(num_words=10000)``, multi-hot 10000 ->
Dense(16, relu) -> Dense(16, relu) -> Dense(1, sigmoid), rmsprop (Keras
defaults: lr 1e-3, rho 0.9, eps 1e-7 inside the sqrt), binary cross-entropy,
batch 512, 20 epochs (``--quick``: 5), validation on the 25,000 test reviews
after every epoch.

Every implementation (and each vectorizer) runs in its own subprocess with the
thread variables set in its environment before NumPy/torch is imported
(``common.setup_threads``), ``PYTHONPATH`` pointing at this source tree:

* fastnn: the tutorial code (``fastnn.utils.multi_hot`` -> scipy CSR, Sequential,
  compile('rmsprop', 'binary_crossentropy', ['accuracy']), fit(batch_size=512,
  validation_data=...)); a callback times each epoch (on_epoch_begin -> on_epoch_end,
  so the validation pass is inside).
* numpy: dense float32 (25000, 10000) multi-hot matrices, preallocated buffers,
  ``np.matmul(out=)``, fused sigmoid+BCE gradient, Keras RMSprop, glorot-uniform,
  a shuffle per epoch, validation per epoch.
* torch (when importable): dense float32 tensors, eager nn.Sequential,
  BCEWithLogitsLoss, torch.optim.RMSprop(lr=1e-3, alpha=0.9, eps=1e-7) -- torch adds
  eps *outside* the sqrt, Keras inside; at these gradient sizes the difference is tiny.

``sec_per_epoch`` is the median of epochs 2..N. ``rss_mb`` is the child's
``ru_maxrss``. The vectorization rows time turning the 50,000 reviews into a
multi-hot matrix: ``fastnn.utils.multi_hot`` (CSR float32, min of 3) vs the
tutorial's loop into a float64 ``np.zeros`` (one run; on 5,000 reviews and
extrapolated x10 if memory is short -- the row says so). Their ``rss_delta_mb`` is
the peak RSS growth during vectorizing.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from common import environment, setup_threads, system_busy_seconds  # noqa: E402  (common imports no numpy)

TAG = "@@BENCH_RESULT@@ "
NUM_WORDS = 10000
BATCH = 512
SEED = 1234
MIN_FINAL_ACC = 0.83   # the tutorial ends at ~0.85-0.87 (it overfits after epoch ~4)


def _emit(rec):
    print(TAG + json.dumps(rec, default=float), flush=True)


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# --------------------------------------------------------------------------- child jobs
def child_prepare(out_dir):
    """Load IMDB once through fastnn, save the CSR pieces so numpy/torch start without fastnn."""
    import numpy as np
    import fastnn
    from fastnn.datasets import imdb

    (xtr, ytr), (xte, yte) = imdb.load_data(num_words=NUM_WORDS)
    for name, seqs, y in (("train", xtr, ytr), ("test", xte, yte)):
        m = fastnn.utils.multi_hot(seqs, NUM_WORDS)
        np.save(os.path.join(out_dir, f"{name}_indptr.npy"), m.indptr)
        np.save(os.path.join(out_dir, f"{name}_indices.npy"), m.indices)
        np.save(os.path.join(out_dir, f"{name}_y.npy"), np.asarray(y, dtype=np.float32))


def _dense(data_dir, name):
    import numpy as np

    indptr = np.load(os.path.join(data_dir, f"{name}_indptr.npy"))
    indices = np.load(os.path.join(data_dir, f"{name}_indices.npy"))
    n = len(indptr) - 1
    x = np.zeros((n, NUM_WORDS), dtype=np.float32)
    x[np.repeat(np.arange(n), np.diff(indptr)), indices] = 1.0
    return x, np.load(os.path.join(data_dir, f"{name}_y.npy"))


def child_fastnn(args):
    import numpy as np
    import fastnn
    from fastnn.datasets import imdb

    fastnn.set_num_threads(args.threads)
    # seeds Python, NumPy and fastnn's global generator (the glorot init and fit's shuffle): without
    # it the epoch-4 accuracy varied 0.870-0.888 between runs
    fastnn.utils.set_random_seed(args.seed)
    (train_data, train_labels), (test_data, test_labels) = imdb.load_data(num_words=NUM_WORDS)
    x_train = fastnn.utils.multi_hot(train_data, NUM_WORDS)
    x_test = fastnn.utils.multi_hot(test_data, NUM_WORDS)
    y_train = np.asarray(train_labels).astype("float32")
    y_test = np.asarray(test_labels).astype("float32")

    model = fastnn.Sequential([
        fastnn.layers.Dense(16, activation="relu", input_shape=(NUM_WORDS,)),
        fastnn.layers.Dense(16, activation="relu"),
        fastnn.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])

    times, accs = [], []

    class EpochTimer(fastnn.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)
            accs.append(float(logs["val_accuracy"]))

    model.fit(x_train, y_train, epochs=args.epochs, batch_size=BATCH,
              validation_data=(x_test, y_test), verbose=0, callbacks=[EpochTimer()])
    return times, accs, fastnn.__version__


def child_numpy(args):
    import numpy as np

    x_train, y_train = _dense(args.data_dir, "train")
    x_test, y_test = _dense(args.data_dir, "test")
    rng = np.random.default_rng(args.seed)
    f32 = np.float32
    sizes = [(NUM_WORDS, 16), (16, 16), (16, 1)]
    W = [rng.uniform(-1, 1, s).astype(f32) * f32(np.sqrt(6.0 / sum(s))) for s in sizes]
    b = [np.zeros(s[1], f32) for s in sizes]
    params = W + b
    vel = [np.zeros_like(p) for p in params]
    grads = [np.empty_like(p) for p in params]
    lr, rho, eps = f32(1e-3), f32(0.9), f32(1e-7)
    tmp = [np.empty_like(p) for p in params]

    n = len(x_train)
    B = BATCH
    xb_full = np.empty((B, NUM_WORDS), f32)
    yb_full = np.empty((B, 1), f32)
    buf = {k: np.empty((B, w), f32) for k, w in (("z1", 16), ("z2", 16), ("z3", 1), ("d1", 16), ("d2", 16))}

    def step(xb, yb, m):
        z1, z2, z3 = buf["z1"][:m], buf["z2"][:m], buf["z3"][:m]
        d1, d2 = buf["d1"][:m], buf["d2"][:m]
        np.matmul(xb, W[0], out=z1); z1 += b[0]; np.maximum(z1, 0, out=z1)
        np.matmul(z1, W[1], out=z2); z2 += b[1]; np.maximum(z2, 0, out=z2)
        np.matmul(z2, W[2], out=z3); z3 += b[2]
        # fused sigmoid + binary cross-entropy gradient: d(mean BCE)/dz3 = (sigmoid(z3) - y) / m
        np.negative(z3, out=z3); np.exp(z3, out=z3); z3 += 1; np.reciprocal(z3, out=z3)
        z3 -= yb; z3 *= f32(1.0 / m)
        np.matmul(z2.T, z3, out=grads[2]); np.sum(z3, axis=0, out=grads[5])
        np.matmul(z3, W[2].T, out=d2); d2 *= (z2 > 0)
        np.matmul(z1.T, d2, out=grads[1]); np.sum(d2, axis=0, out=grads[4])
        np.matmul(d2, W[1].T, out=d1); d1 *= (z1 > 0)
        np.matmul(xb.T, d1, out=grads[0]); np.sum(d1, axis=0, out=grads[3])
        for p, g, v, t in zip(params, grads, vel, tmp):   # Keras RMSprop: p -= lr*g/sqrt(v+eps)
            v *= rho; np.multiply(g, g, out=t); t *= (1 - rho); v += t
            np.add(v, eps, out=t); np.sqrt(t, out=t); np.divide(g, t, out=t); t *= lr; p -= t

    def val_accuracy():
        correct = 0
        for s in range(0, len(x_test), 5000):
            h = np.maximum(x_test[s:s + 5000] @ W[0] + b[0], 0)
            h = np.maximum(h @ W[1] + b[1], 0)
            z = (h @ W[2] + b[2])[:, 0]
            correct += int(np.sum((z > 0) == (y_test[s:s + 5000] > 0.5)))  # sigmoid(z) > 0.5
        return correct / len(x_test)

    times, accs = [], []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        for s in range(0, n, B):
            idx = perm[s:s + B]
            m = len(idx)
            xb, yb = xb_full[:m], yb_full[:m]
            np.take(x_train, idx, axis=0, out=xb)
            np.take(y_train, idx, out=yb[:, 0])
            step(xb, yb, m)
        accs.append(val_accuracy())
        times.append(time.perf_counter() - t0)
    return times, accs, np.__version__


def child_torch(args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr = _dense(args.data_dir, "train")
    xte, yte = _dense(args.data_dir, "test")
    x_train, y_train = torch.from_numpy(xtr), torch.from_numpy(ytr).unsqueeze(1)
    x_test, y_test = torch.from_numpy(xte), torch.from_numpy(yte)
    model = torch.nn.Sequential(torch.nn.Linear(NUM_WORDS, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    for mod in model:
        if isinstance(mod, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(mod.weight)
            torch.nn.init.zeros_(mod.bias)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = len(x_train)
    times, accs = [], []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for s in range(0, n, BATCH):
            idx = perm[s:s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            z = model(x_test)[:, 0]
            accs.append(float(((z > 0) == (y_test > 0.5)).float().mean()))
        times.append(time.perf_counter() - t0)
    return times, accs, torch.__version__


def child_vectorize(args):
    """Time 50,000 reviews -> multi-hot: fastnn.utils.multi_hot or the tutorial's loop."""
    import numpy as np
    from fastnn.datasets import imdb

    (xtr, _), (xte, _) = imdb.load_data(num_words=NUM_WORDS)
    seqs = list(xtr) + list(xte)
    rec = {"n_reviews": len(seqs)}
    rss0 = _peak_rss_mb()
    if args.child == "vec-fastnn":
        import fastnn

        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = fastnn.utils.multi_hot(seqs, NUM_WORDS)
            runs.append(time.perf_counter() - t0)
            nbytes = out.data.nbytes + out.indices.nbytes + out.indptr.nbytes
            del out
        rec.update(seconds=min(runs), seconds_runs=runs, output_mb=nbytes / 2**20, measured_on=len(seqs))
    else:
        need = len(seqs) * NUM_WORDS * 8
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        sub = seqs if avail > 2 * need else seqs[:5000]

        def vectorize_sequences(sequences, dimension=NUM_WORDS):   # the tutorial's code
            results = np.zeros((len(sequences), dimension))
            for i, sequence in enumerate(sequences):
                results[i, sequence] = 1.
            return results

        t0 = time.perf_counter()
        out = vectorize_sequences(sub)
        t = time.perf_counter() - t0
        scale = len(seqs) / len(sub)
        rec.update(seconds=t * scale, measured_on=len(sub), extrapolated=scale != 1,
                   output_mb=out.nbytes * scale / 2**20)
    rec["rss_delta_mb"] = _peak_rss_mb() - rss0
    return rec


def run_child(args):
    if args.child == "prepare":
        child_prepare(args.data_dir)
        return
    if args.child.startswith("vec-"):
        rec = child_vectorize(args)
    else:
        fn = {"fastnn": child_fastnn, "numpy": child_numpy, "torch": child_torch}[args.child]
        times, accs, version = fn(args)
        later = times[1:] or times
        rec = {"sec_per_epoch": statistics.median(later), "epoch_seconds": times,
               "val_accuracy": accs, "acc_epoch4": accs[3] if len(accs) >= 4 else None,
               "acc_final": accs[-1], "version": version}
    rec["rss_mb"] = _peak_rss_mb()
    _emit(rec)


# --------------------------------------------------------------------------- parent
def spawn(job, args):
    import resource

    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("FASTNN_DATA_DIR", "/work/shared/datasets")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FASTNN_NUM_THREADS",
                "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", job, "--threads", str(args.threads),
           "--epochs", str(args.epochs), "--data-dir", args.data_dir, "--seed", str(args.seed)]
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0, t0 = system_busy_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    other = max(0.0, (system_busy_seconds() - b0 - own) / wall)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"child {job} failed ({proc.returncode})")
    if job == "prepare":
        return None
    line = [l for l in proc.stdout.splitlines() if l.startswith(TAG)][-1]
    rec = json.loads(line[len(TAG):])
    rec.update(workload="imdb-mlp", impl=job, threads=args.threads, epochs=args.epochs, seed=args.seed,
               wall_s=wall, other_cores=round(other, 3), busy=other > 0.15)
    return rec


def _torch_importable():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="5 epochs")
    p.add_argument("--impls", default="fastnn,numpy,torch")
    p.add_argument("--output", default=None, help="append the JSON lines to this file")
    p.add_argument("--seed", type=int, default=SEED, help=f"seed of every implementation (default {SEED})")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.epochs is None:
        args.epochs = 5 if args.quick else 20
    if args.child:
        setup_threads(args.threads)
        run_child(args)
        return

    impls = [i for i in args.impls.split(",") if i]
    notes = []
    if "torch" in impls and not _torch_importable():
        impls.remove("torch")
        notes.append("torch is not importable: skipped")
    out = open(args.output, "a") if args.output else None
    env = environment()
    print(f"# imdb-mlp, {args.epochs} epochs, {args.threads} threads, load {os.getloadavg()}, "
          f"{env['cpu']} x{env['cpus']}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_imdb_") as tmp:
        args.data_dir = tmp
        spawn("prepare", args)
        for job in impls + ["vec-fastnn", "vec-loop"]:
            rec = spawn(job, args)
            results[job] = rec
            line = json.dumps(rec, sort_keys=True, default=float)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
    if out:
        out.close()

    # Markdown tables
    def ratio(a, b):
        return f"{b / a:.2f}×" if a and b else "–"

    ref_np = results.get("numpy", {}).get("sec_per_epoch")
    ref_t = results.get("torch", {}).get("sec_per_epoch")
    print("\n| impl | sec/epoch | speed-up vs numpy | vs torch | val acc ep4 | val acc final | peak RSS MB | other cores |")
    print("|---|---|---|---|---|---|---|---|")
    for impl in impls:
        r = results[impl]
        flag = "" if r["acc_final"] >= MIN_FINAL_ACC else " ⚠"
        a4 = f"{r['acc_epoch4']:.4f}" if r["acc_epoch4"] is not None else "–"
        print(f"| {impl} | {r['sec_per_epoch']:.3f} | {ratio(r['sec_per_epoch'], ref_np)} | "
              f"{ratio(r['sec_per_epoch'], ref_t)} | {a4} | {r['acc_final']:.4f}{flag} | "
              f"{r['rss_mb']:.0f} | {r['other_cores']:.2f}{' (busy)' if r['busy'] else ''} |")
    vf, vl = results["vec-fastnn"], results["vec-loop"]
    print("\n| vectorize 50,000 reviews | seconds | output MB | peak RSS growth MB | child peak RSS MB |")
    print("|---|---|---|---|---|")
    print(f"| fastnn.utils.multi_hot (CSR float32, min of 3) | {vf['seconds']:.3f} | {vf['output_mb']:.0f} | "
          f"{vf['rss_delta_mb']:.0f} | {vf['rss_mb']:.0f} |")
    ext = f" (on {vl['measured_on']}, ×{50000 // vl['measured_on']} extrapolated)" if vl.get("extrapolated") else ""
    print(f"| tutorial loop (dense float64){ext} | {vl['seconds']:.3f} | {vl['output_mb']:.0f} | "
          f"{vl['rss_delta_mb']:.0f} | {vl['rss_mb']:.0f} |")
    print(f"\nmulti_hot is {vl['seconds'] / vf['seconds']:.1f}× faster than the loop.")
    for n in notes:
        print(f"note: {n}")
    print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
