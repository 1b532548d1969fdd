#!/usr/bin/env python
"""Micro-benchmark of the sparse (CSR) kernels on the IMDB tutorial's shapes.

    FASTNN_DATA_DIR=/path/to/datasets python bench/bench_sparse.py [--threads 1,2] [--repeats 7]
        [--output results.jsonl] [--synthetic]

Shapes: S = 25,000 training reviews multi-hot encoded over I = 10,000 words (imdb.load_data(
num_words=10000); about 130 distinct words per review), the tutorial's first layer Dense(16,
relu) (O = 16), batches of 512 rows taken from a random permutation, float32. Without the real
data (or with --synthetic) the reviews are drawn from a Zipf law with IMDB's mean length.

What is timed (STYLE.md habit 15: results are checked against the reference first):

* csr_dense_forward / csr_dense_backward: microseconds per batch, the minimum over repeats of
  the mean over one epoch's 49 batches, for the compiled kernels with each --threads value, the
  NumPy reference (_reference) and, for context, scipy (``X[rows] @ W``, ``X[rows].T @ dZ``);
  plus the sparse layer's share of an epoch: 49 forward + 49 backward training batches and
  49 forward validation batches over the 25,000 test reviews.
* multi_hot of 50,000 reviews (train + test): seconds and bytes of the CSR result, against the
  tutorial's ``vectorize_sequences`` (np.zeros((n, 10000)) float64 + a Python loop). The loop is
  run on a 2,000-review slice and extrapolated linearly to 50,000 (its 4 GB array would not fit
  here); the output says so.

One JSON line per measurement (asv-style names ``time_*`` and ``params``) on stdout and in
--output, then a Markdown table.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import JsonLines, environment, setup_threads  # noqa: E402


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated n_threads values (default 1,2)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default=None, help="also append the JSON lines to this file")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic reviews even if IMDB is there")
    return parser.parse_args()


ARGS = parse()
THREADS = [int(t) for t in ARGS.threads.split(",")]
# Thread variables go into the environment before NumPy is imported; the kernels also get
# n_threads explicitly, so this sets the default (multi_hot) and sizes the BLAS pool.
setup_threads(max(THREADS))

import numpy as np  # noqa: E402

try:
    import fastnn  # noqa: F401  (installed, or on PYTHONPATH)
except ImportError:  # running from a source checkout built with --inplace
    sys.path.insert(1, os.path.join(HERE, os.pardir))

NUM_WORDS = 10000
UNITS = 16
BATCH = 512
LOOP_SLICE = 2000
# Other processes' CPU use (in cores) above which the output warns that timings are disturbed.
BUSY_CORES = 0.15


def timer(fn, repeats, warmup=1):
    """Minimum over ``repeats`` runs of fn() (seconds), after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def interleaved_timer(fns, repeats, warmup=1):
    """{name: minimum seconds} for several functions timed in turn, ``repeats`` rounds, so that
    a burst of load from other processes hits all of them rather than one."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


class OtherLoad:
    """CPU cores used by OTHER processes while the block runs (/proc/stat minus this process)."""

    def __enter__(self):
        self._start = (_busy_seconds(), _own_seconds(), time.perf_counter())
        return self

    def __exit__(self, *exc):
        busy, own, wall = (b - a for b, a in zip((_busy_seconds(), _own_seconds(), time.perf_counter()),
                                                 self._start))
        self.cores = max(0.0, (busy - own) / wall) if wall > 0 and busy == busy else float("nan")
        return False


def _busy_seconds():
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    except (OSError, ValueError, IndexError):
        return float("nan")


def _own_seconds():
    t = os.times()
    return t.user + t.system


def load_reviews(synthetic):
    """(train, test): lists of token-id lists as imdb.load_data(num_words=10000) returns, and the source."""
    if not synthetic:
        for base in (os.environ.get("FASTNN_DATA_DIR"), "/work/shared/datasets"):
            if base and os.path.isfile(os.path.join(base, "imdb", "imdb.npz")):
                os.environ["FASTNN_DATA_DIR"] = base
                from fastnn.datasets import imdb

                (x_train, _), (x_test, _) = imdb.load_data(num_words=NUM_WORDS)
                return list(x_train), list(x_test), f"imdb.load_data(num_words={NUM_WORDS}) from {base}"
    rng = np.random.default_rng(0)

    def draw(n):
        lengths = np.maximum(rng.geometric(1 / 234.0, n), 1)
        words = np.minimum(rng.zipf(1.3, int(lengths.sum())) + 2, NUM_WORDS - 1)
        return [w.tolist() for w in np.split(words, np.cumsum(lengths)[:-1])]

    return draw(25000), draw(25000), "synthetic Zipf(1.3) reviews, mean length 234"


def vectorize_sequences(sequences, dimension=NUM_WORDS):
    """The tutorial's loop (Deep Learning with Python, chapter 4), verbatim."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        results[i, sequence] = 1.
    return results


def main():
    args, threads = ARGS, THREADS

    from fastnn import _kernels as K
    from fastnn._kernels import _reference as R
    from fastnn._kernels import bag_of_words as C
    from fastnn.utils.sequence_utils import multi_hot

    train, test, source = load_reviews(args.synthetic)
    env = dict(environment(), data=source)
    env["kernels_backend"] = K.BACKEND
    out_lines = JsonLines(args.output)
    results = []

    def emit(name, params, **values):
        row = {"name": name, "params": params, **values, "env": env}
        results.append(row)
        out_lines.write(row)

    # ---------------------------------------------------------------- multi_hot, 50,000 reviews
    reviews = train + test
    n_reviews = len(reviews)
    small = reviews[:LOOP_SLICE]
    np.testing.assert_array_equal(multi_hot(small, NUM_WORDS).toarray(), vectorize_sequences(small))
    x_all = multi_hot(reviews, NUM_WORDS)
    t_multi_hot = timer(lambda: multi_hot(reviews, NUM_WORDS), max(2, args.repeats // 2))
    csr_bytes = x_all.data.nbytes + x_all.indices.nbytes + x_all.indptr.nbytes
    t_flatten = timer(lambda: C.flatten_sequences(reviews), max(2, args.repeats // 2))
    lengths, tokens = C.flatten_sequences(reviews)
    for nt in threads:
        t_csr = timer(lambda: C.multi_hot_csr(lengths, tokens, NUM_WORDS, n_threads=nt), args.repeats)
        emit("time_multi_hot_csr", {"reviews": n_reviews, "num_tokens": NUM_WORDS, "n_threads": nt,
                                    "tokens": int(tokens.shape[0])}, seconds=t_csr)
    emit("time_flatten_sequences", {"reviews": n_reviews, "tokens": int(tokens.shape[0])}, seconds=t_flatten)
    t_loop = timer(lambda: vectorize_sequences(small), 2)
    emit("time_multi_hot", {"reviews": n_reviews, "num_tokens": NUM_WORDS, "impl": "fastnn multi_hot (CSR float32)",
                            "backend": K.BACKEND}, seconds=t_multi_hot, bytes=csr_bytes, nnz=int(x_all.nnz))
    emit("time_multi_hot", {"reviews": n_reviews, "num_tokens": NUM_WORDS, "impl": "tutorial loop (dense float64)",
                            "extrapolated_from": LOOP_SLICE},
         seconds=t_loop * n_reviews / LOOP_SLICE, bytes=n_reviews * NUM_WORDS * 8,
         measured_seconds_on_slice=t_loop)

    # ---------------------------------------------------------------- forward / backward per batch
    X = x_all[:len(train)]
    X_val = x_all[len(train):]
    S = X.shape[0]
    rng = np.random.default_rng(1)
    W = (rng.standard_normal((NUM_WORDS, UNITS)) * 0.02).astype(np.float32)
    b = (rng.standard_normal(UNITS) * 0.02).astype(np.float32)
    order = rng.permutation(S).astype(np.intp)
    batches = [order[i:i + BATCH] for i in range(0, S, BATCH)]
    val_batches = [np.arange(i, min(i + BATCH, X_val.shape[0]), dtype=np.intp) for i in range(0, X_val.shape[0], BATCH)]
    dZ = (rng.standard_normal((BATCH, UNITS)) * 0.01).astype(np.float32)
    ip, ix, data = X.indptr, X.indices, X.data

    # check the results before timing anything
    rows = batches[0]
    ref_out = R.csr_dense_forward(ip, ix, data, W, b, "relu", rows=rows)
    ref_dW = np.zeros_like(W)
    ref_db = np.zeros_like(b)
    R.csr_dense_backward(ip, ix, data, dZ, ref_dW, ref_db, rows=rows)
    dense_out = np.maximum(X[rows].toarray() @ W + b, 0)
    np.testing.assert_allclose(ref_out, dense_out, rtol=1e-4, atol=1e-5)
    for nt in threads:
        out = C.csr_dense_forward(ip, ix, data, W, b, "relu", rows=rows, n_threads=nt)
        np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
        dW = np.zeros_like(W)
        db = np.zeros_like(b)
        C.csr_dense_backward(ip, ix, data, dZ, dW, db, rows=rows, n_threads=nt)
        np.testing.assert_allclose(dW, ref_dW, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(db, ref_db, rtol=1e-5, atol=1e-6)
    print(f"# results agree: compiled (n_threads={threads}) == reference == dense NumPy on a {BATCH}-row batch",
          file=sys.stderr)

    out = np.empty((BATCH, UNITS), np.float32)
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    n_b = len(batches)
    params = {"S": S, "I": NUM_WORDS, "O": UNITS, "B": BATCH, "nnz_per_row": round(X.nnz / S, 1), "dtype": "float32"}

    def compiled(nt):
        def fwd(rows_list, m=X):
            for r in rows_list:
                C.csr_dense_forward(m.indptr, m.indices, m.data, W, b, "relu", rows=r,
                                    out=out if r.shape[0] == BATCH else None, n_threads=nt)

        def bwd():
            for r in batches:
                C.csr_dense_backward(ip, ix, data, dZ[:r.shape[0]], dW, db, rows=r, n_threads=nt)
        return fwd, bwd

    def reference():
        def fwd(rows_list, m=X):
            for r in rows_list:
                R.csr_dense_forward(m.indptr, m.indices, m.data, W, b, "relu", rows=r)

        def bwd():
            for r in batches:
                R.csr_dense_backward(ip, ix, data, dZ[:r.shape[0]], dW, db, rows=r)
        return fwd, bwd

    def scipy_csr():
        def fwd(rows_list, m=X):
            for r in rows_list:
                np.maximum(m[r] @ W + b, 0)

        def bwd():
            for r in batches:
                dW[...] += X[r].T @ dZ[:r.shape[0]]
                db[...] += dZ[:r.shape[0]].sum(axis=0)
        return fwd, bwd

    impls = {("compiled", nt): compiled(nt) for nt in threads}
    impls[("reference", None)] = reference()
    impls[("scipy", None)] = scipy_csr()
    epoch = {}
    for group in ([k for k in impls if k[0] == "compiled"], [k for k in impls if k[0] != "compiled"]):
        reps = args.repeats if group[0][0] == "compiled" else 2
        fns = {}
        for key in group:
            fwd, bwd = impls[key]
            fns[key + ("fwd",)] = lambda fwd=fwd: fwd(batches)
            fns[key + ("bwd",)] = bwd
            fns[key + ("val",)] = lambda fwd=fwd: fwd(val_batches, X_val)
        with OtherLoad() as load:
            best = interleaved_timer(fns, reps)
        for key in group:
            t_fwd, t_bwd, t_val = best[key + ("fwd",)], best[key + ("bwd",)], best[key + ("val",)]
            p = dict(params, impl=key[0], n_threads=key[1])
            emit("time_csr_dense_forward", p, us_per_batch=t_fwd / n_b * 1e6, other_load_cores=round(load.cores, 2))
            emit("time_csr_dense_backward", p, us_per_batch=t_bwd / n_b * 1e6, other_load_cores=round(load.cores, 2))
            emit("time_sparse_layer_epoch", p, seconds=t_fwd + t_bwd + t_val, other_load_cores=round(load.cores, 2),
                 note="49 train forward + 49 train backward + 49 validation forward batches")
            epoch[key] = (t_fwd / n_b * 1e6, t_bwd / n_b * 1e6, t_fwd + t_bwd + t_val, load.cores)

    # ---------------------------------------------------------------- table
    print()
    print(f"Sparse kernels, IMDB shapes ({source}); S={S}, I={NUM_WORDS}, O={UNITS}, B={BATCH}, "
          f"{X.nnz / S:.1f} nnz/row, float32; {env.get('cpu')}, {env.get('cpus')} CPUs")
    print()
    print("| impl | n_threads | forward µs/batch | backward µs/batch | sparse layer s/epoch (train + val) |")
    print("|---|---|---|---|---|")
    for (impl, nt), (f, bw, e, load) in epoch.items():
        print(f"| {impl} | {nt if nt else '-'} | {f:.0f} | {bw:.0f} | {e:.4f} |")
    loads = [v[3] for v in epoch.values()]
    if max(loads) > BUSY_CORES:
        print(f"\nWARNING: other processes used up to {max(loads):.2f} cores while timing; the minimum over "
              "repeats is reported, but rerun on a quiet machine for clean numbers.")
    print()
    loop_s = t_loop * n_reviews / LOOP_SLICE
    print(f"multi_hot of {n_reviews} reviews: {t_multi_hot:.3f} s, {csr_bytes / 1e6:.1f} MB (CSR float32, "
          f"{x_all.nnz} nnz; flatten {t_flatten:.3f} s + multi_hot_csr); tutorial loop: ~{loop_s:.2f} s, "
          f"{n_reviews * NUM_WORDS * 8 / 1e9:.1f} GB (measured {t_loop:.3f} s on {LOOP_SLICE} reviews, "
          f"extrapolated x{n_reviews // LOOP_SLICE})")
    return results


if __name__ == "__main__":
    main()
