"""Kernel benchmarks: compiled kernels vs their NumPy twin (_reference), per shape and thread count.

    python bench/bench_kernels.py --threads 2 [--output results.jsonl] [--quick] [--only engine]

Every benchmark checks that the compiled result agrees with the reference
BEFORE it is timed (STYLE.md habit 15), then times both (warm-up, minimum of
N perf_counter runs) and prints one JSON line per (benchmark, params):
name (asv-like ``time_*``), params, seconds per call for each, speedup.

``time_engine_train_epoch`` is the end-to-end engine: one epoch of Engine.train_steps
on MNIST-shaped data (the real MNIST files if FASTNN_DATA_DIR or
../shared/datasets has them, random otherwise), compiled vs reference, with
microseconds per step; "mnist-mlp-bn-dropout" is the same model with
BatchNormalization and Dropout(0.2) after the hidden layer (issue 4's tutorial;
its uniforms drawn beforehand, as the trainer does, and not timed).
``time_activation_elementwise`` is tanh / sigmoid per element (activation_forward on one thread) for
each clone of csrc/fastnn_math.h (activations._math_isa caps it; a build without that hook is timed as
"libm", glibc's scalar tanhf/expf).
``time_engine_toy_call`` is the per-call overhead of a
1-unit model, ``time_engine_predict_one`` a single-sample predict.

``time_gemm`` is csrc/fastnn_gemm.h alone (one call, one thread) per clone
(dense._gemm_isa) against NumPy's matmul on one BLAS thread, in GFLOP/s, for the
three products of a dense layer: X W (forward), X^T G (weight gradient, A read
through strides) and G W^T (input gradient, W^T materialised). The clones are
checked against NumPy and against each other (bit for bit) first. ``gemm_peak``
is the machine's GEMM peak (bench/common.py gemm_peak_gflops) on 1 and on
--threads BLAS threads.
"""
import argparse
import gzip
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (JsonLines, environment, gemm_peak_gflops, numpy_blas_threads, setup_threads,  # noqa: E402
                    timeit)


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=None, help="threads (default: fastnn's default)")
    p.add_argument("--output", default=None, help="append JSON lines to this file")
    p.add_argument("--quick", action="store_true", help="fewer repeats and fewer MLP steps")
    p.add_argument("--only", default=None, help="run benchmarks whose name contains this")
    p.add_argument("--data", choices=("auto", "real", "random"), default="auto",
                   help="MNIST data for the MLP benchmarks (auto: real if found)")
    return p.parse_args()


ARGS = parse()
setup_threads(ARGS.threads)

import numpy as np  # noqa: E402

try:
    import fastnn  # noqa: F401  (installed, or on PYTHONPATH)
except ImportError:  # running from a source checkout built with --inplace
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import fastnn._config as config  # noqa: E402
from fastnn._kernels import _reference as R  # noqa: E402
from fastnn._kernels import activations, dense, losses, metrics, optim  # noqa: E402
from fastnn._kernels import engine as engine_module  # noqa: E402
from fastnn._kernels import _reference_engine as R_ENGINE  # noqa: E402

if ARGS.threads:
    config.set_num_threads(ARGS.threads)
THREADS = sorted({1, config.get_num_threads()})
REPEAT = 5 if ARGS.quick else 20
OUT = JsonLines(ARGS.output)
RNG = np.random.default_rng(0)


def check(a, b, dtype, what):
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            check(x, y, dtype, what)
        return
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               err_msg=what, **tol)


def bench(name, params, compiled, reference, dtype=np.float32, compare=True, steps=None):
    if ARGS.only and ARGS.only not in name:
        return
    if compare:
        check(compiled(), reference(), dtype, f"{name} {params}")  # results agree BEFORE timing
    tc = timeit(compiled, repeat=REPEAT, min_time=0.02)
    tr = timeit(reference, repeat=max(3, REPEAT // 4), min_time=0.02)
    rec = {"name": name, "params": params, "compiled_s": tc["min"], "compiled_median_s": tc["median"],
           "reference_s": tr["min"], "speedup": tr["min"] / tc["min"]}
    if steps:
        rec["compiled_us_per_step"] = tc["min"] / steps * 1e6
        rec["reference_us_per_step"] = tr["min"] / steps * 1e6
    OUT.write(rec)


def kernels():
    for dtype in (np.float32, np.float64):
        dn = np.dtype(dtype).name
        for (B, I, O) in ((32, 784, 128), (32, 784, 100), (128, 784, 512), (32, 128, 10)):
            X = RNG.random((B, I)).astype(dtype)
            W = (RNG.standard_normal((I, O)) * 0.05).astype(dtype)
            b = RNG.standard_normal(O).astype(dtype)
            dZ = RNG.standard_normal((B, O)).astype(dtype)
            out = np.empty((B, O), dtype)
            for nt in THREADS:
                p = {"shape": [B, I, O], "dtype": dn, "threads": nt}
                bench("time_dense_forward", p, lambda: dense.dense_forward(X, W, b, "relu", out=out, n_threads=nt),
                      lambda: R.dense_forward(X, W, b, "relu"), dtype)
                dW, db = np.zeros_like(W), np.zeros_like(b)
                bench("time_dense_backward", p,
                      lambda: dense.dense_backward(dZ, X, W, dW, db, n_threads=nt),
                      lambda: R.dense_backward(dZ, X, W, dW, db), dtype, compare=False)
        for (B, K) in ((32, 10), (4096, 100)):
            z = (RNG.standard_normal((B, K)) * 3).astype(dtype)
            y = RNG.integers(0, K, B)
            for nt in THREADS:
                p = {"shape": [B, K], "dtype": dn, "threads": nt}
                bench("time_softmax_xent_backward", p, lambda: losses.softmax_xent_backward(z, y, 1 / B, n_threads=nt),
                      lambda: R.softmax_xent_backward(z, y, 1 / B), dtype)
                bench("time_activation_forward_softmax", p,
                      lambda: activations.activation_forward(z, "softmax", n_threads=nt),
                      lambda: R.activation_forward(z, "softmax"), dtype)
                bench("time_metric_sum_sparse_categorical_accuracy", p,
                      lambda: metrics.metric_sum(z, y, "sparse_categorical_accuracy", n_threads=nt),
                      lambda: R.metric_sum(z, y, "sparse_categorical_accuracy"), dtype)
        for N in (101770, 407050):
            w = RNG.standard_normal(N).astype(dtype)
            g = RNG.standard_normal(N).astype(dtype)
            m, v = np.zeros(N, dtype), np.zeros(N, dtype)
            for nt in THREADS:
                p = {"N": N, "dtype": dn, "threads": nt}
                bench("time_adam_update", p,
                      lambda: optim.adam_update(w, g, m, v, None, 1e-3, 0.9, 0.999, 1e-7, 10, n_threads=nt),
                      lambda: R.adam_update(w, g, m, v, None, 1e-3, 0.9, 0.999, 1e-7, 10), dtype, compare=False)
                bench("time_rmsprop_update", p,
                      lambda: optim.rmsprop_update(w, g, v, None, None, 1e-3, 0.9, n_threads=nt),
                      lambda: R.rmsprop_update(w, g, v, None, None, 1e-3, 0.9), dtype, compare=False)
        Xs = RNG.random((60000, 784)).astype(dtype)
        idx = RNG.integers(0, 60000, 128)
        for nt in THREADS:
            bench("time_gather_rows", {"shape": [60000, 784], "rows": 128, "dtype": dn, "threads": nt},
                  lambda: dense.gather_rows(Xs, idx, n_threads=nt), lambda: R.gather_rows(Xs, idx), dtype)


def math_isas():
    """The clones of csrc/fastnn_math.h this CPU runs, or ["libm"] before they existed."""
    if not hasattr(activations, "_math_isa"):
        return ["libm"]
    found = [isa for isa in ("portable", "avx2", "avx512") if activations._math_isa(isa) == isa]
    activations._math_isa("avx512")  # back to the CPU's best
    return found


def elementwise():
    """ns per element of tanh / sigmoid on one thread, per clone; checked against NumPy first."""
    if ARGS.only and ARGS.only not in "time_activation_elementwise":
        return
    isas = math_isas()
    for dtype in (np.float32, np.float64):
        for N in (16384, 1 << 20):  # a 64 x 256 layer (in L1/L2), and a large buffer
            X = (RNG.standard_normal(N) * 3).astype(dtype)
            out = np.empty_like(X)
            for act in ("tanh", "sigmoid"):
                ref = R.activation_forward(X, act)
                tr = timeit(lambda: R.activation_forward(X, act, out=out), repeat=REPEAT, min_time=0.02)
                for isa in isas:
                    if isa != "libm":
                        activations._math_isa(isa)
                    check(activations.activation_forward(X, act, out=out, n_threads=1), ref, dtype, act)
                    tc = timeit(lambda: activations.activation_forward(X, act, out=out, n_threads=1),
                                repeat=REPEAT, min_time=0.02)
                    OUT.write({"name": "time_activation_elementwise",
                               "params": {"activation": act, "dtype": np.dtype(dtype).name, "N": N, "isa": isa,
                                          "threads": 1},
                               "compiled_ns_per_element": tc["min"] / N * 1e9,
                               "compiled_median_ns_per_element": tc["median"] / N * 1e9,
                               "reference_ns_per_element": tr["min"] / N * 1e9, "speedup": tr["min"] / tc["min"]})
    if "libm" not in isas:
        activations._math_isa("avx512")  # back to the CPU's best


def mnist():
    """(X float32 (60000, 784) in [0, 1], y intp, source)."""
    if ARGS.data != "random":
        for base in filter(None, (os.environ.get("FASTNN_DATA_DIR"),
                                  os.path.join(os.getcwd(), os.pardir, "shared", "datasets"),
                                  os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared",
                                               "datasets"))):
            d = os.path.join(base, "mnist")
            try:
                with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")) as f:
                    X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255
                with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz")) as f:
                    y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.intp)
                return X, y, "mnist"
            except OSError:
                continue
        if ARGS.data == "real":
            raise SystemExit("real MNIST not found (set FASTNN_DATA_DIR)")
    X = RNG.random((60000, 784), dtype=np.float32)
    return X, RNG.integers(0, 10, 60000).astype(np.intp), "random"


def aligned(n):
    raw = np.zeros(n + 16, np.float32)
    off = ((-raw.ctypes.data) % 64) // 4
    return raw[off:off + n]


def make_engine(module, hidden, batch, opt, hyper, n_threads, seed=1, regularized=False):
    """The engine (compiled ``engine`` or its twin ``R_ENGINE``) of 784 -> hidden (relu) -> 10 (softmax);
    ``regularized``: BatchNormalization and Dropout(0.2) after the hidden layer (gamma, beta, moving mean
    and variance at the end of the arena)."""
    rng = np.random.default_rng(seed)
    w2 = 784 * hidden + hidden
    N = w2 + hidden * 10 + 10
    bn = N
    N += 4 * hidden if regularized else 0
    params = aligned(N)
    params[:] = rng.standard_normal(N).astype(np.float32) * 0.05
    slots = [aligned(N), aligned(N), None] if opt == "adam" else [aligned(N), None, None]
    ops = [("dense", 784, hidden, 0, 784 * hidden, "relu", True)]
    if regularized:
        params[bn:bn + hidden] = 1  # gamma
        params[bn + 3 * hidden:] = 1  # moving variance
        ops += [("bn", hidden, hidden, bn, bn + hidden, bn + 2 * hidden, bn + 3 * hidden, 0.99, 1e-3, True),
                ("dropout", hidden, 0.2)]
    ops.append(("dense", hidden, 10, w2, w2 + hidden * 10, "softmax", True))
    plan = dict(dtype=np.float32, n_inputs=784, ops=ops, loss=("softmax_xent", True),
                metrics=("sparse_categorical_accuracy",), optimizer=(opt, hyper), regularizers=())
    engine = module.Engine(plan, params, aligned(N), slots, batch)
    if n_threads and module is engine_module:
        engine._force_threads = n_threads  # this many threads, not the measured choice
    return engine


def engine_benchmarks():
    X, y, source = mnist()
    adam = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    workloads = (("mnist-mlp", 128, 32, "adam", adam, y, False),
                 ("mnist-mlp-bn-dropout", 128, 32, "adam", adam, y, True),
                 ("fashion-shape", 100, 32, "sgd", {}, y, False),
                 ("mnist-wide", 512, 128, "rmsprop", {"rho": 0.9, "epsilon": 1e-7}, y, False))
    for name, hidden, batch, opt, hyper, labels, reg in workloads:
        order = np.random.default_rng(2).permutation(X.shape[0])
        steps = X.shape[0] // batch
        if ARGS.quick:
            steps //= 10
        U = [np.random.default_rng(3).random((steps * batch, hidden), dtype=np.float32)] if reg else None
        for nt in THREADS:
            p = {"workload": name, "data": source, "batch": batch, "steps": steps, "threads": nt}
            if ARGS.only and ARGS.only not in "time_engine_train_epoch":
                continue
            # agreement first: 5 steps from the same weights
            a = make_engine(engine_module, hidden, batch, opt, hyper, nt, regularized=reg)
            r = make_engine(R_ENGINE, hidden, batch, opt, hyper, nt, regularized=reg)
            u5 = [u[:5 * batch] for u in U] if reg else None
            ra = a.train_steps(X, labels, order, 0, 5, 0, 1e-3, uniforms=u5)
            rr = r.train_steps(X, labels, order, 0, 5, 0, 1e-3, uniforms=u5)
            check(ra[0], rr[0], np.float32, name)
            np.testing.assert_allclose(a.params, r.params, rtol=1e-3, atol=1e-4, err_msg=name)
            c = make_engine(engine_module, hidden, batch, opt, hyper, nt, regularized=reg)
            tc = timeit(lambda: c.train_steps(X, labels, order, 0, steps, 0, 1e-3, uniforms=U),
                        repeat=3 if ARGS.quick else 5, warmup=1)
            ref_steps = max(20, steps // 20)
            ref = make_engine(R_ENGINE, hidden, batch, opt, hyper, nt, regularized=reg)
            u_ref = [u[:ref_steps * batch] for u in U] if reg else None
            tr = timeit(lambda: ref.train_steps(X, labels, order, 0, ref_steps, 0, 1e-3, uniforms=u_ref), repeat=3,
                        warmup=1)
            OUT.write({"name": "time_engine_train_epoch", "params": p,
                       "compiled_s_per_epoch": tc["min"] * (X.shape[0] // batch) / steps,
                       "compiled_us_per_step": tc["min"] / steps * 1e6,
                       "compiled_median_us_per_step": tc["median"] / steps * 1e6,
                       "reference_us_per_step": tr["min"] / ref_steps * 1e6,
                       "speedup": (tr["min"] / ref_steps) / (tc["min"] / steps)})
    # per-call overhead of a 1-unit model (the toy regression) and a one-sample predict
    if not ARGS.only or ARGS.only in "time_engine_toy_call time_engine_predict_one":
        toy_plan = dict(dtype=np.float32, n_inputs=1, ops=[("dense", 1, 1, 0, 1, "linear", True)], loss=("mse", False),
                        metrics=(), optimizer=("sgd", {}), regularizers=())
        toy = engine_module.Engine(toy_plan, np.zeros(2, np.float32), np.zeros(2, np.float32), [], 32)
        xs = np.arange(-1, 5, dtype=np.float32).reshape(6, 1)
        ys = 2 * xs - 1
        order6 = np.arange(6)
        t = timeit(lambda: toy.train_steps(xs, ys, order6, 0, 1, 0, 0.01), repeat=REPEAT, min_time=0.05)
        pr = R_ENGINE.Engine(toy_plan, np.zeros(2, np.float32), np.zeros(2, np.float32), [], 32)
        trf = timeit(lambda: pr.train_steps(xs, ys, order6, 0, 1, 0, 0.01), repeat=5, min_time=0.05)
        OUT.write({"name": "time_engine_toy_call", "params": {"model": "Dense(1) on 6 samples, sgd, mse"},
                   "compiled_us": t["min"] * 1e6, "reference_us": trf["min"] * 1e6,
                   "speedup": trf["min"] / t["min"]})
        m = make_engine(engine_module, 128, 32, "adam", workloads[0][4], None)
        r = make_engine(R_ENGINE, 128, 32, "adam", workloads[0][4], None)
        x1 = X[:1].copy()
        check(m.predict(x1), r.predict(x1), np.float32, "predict")
        t = timeit(lambda: m.predict(x1), repeat=REPEAT, min_time=0.05)
        tr = timeit(lambda: r.predict(x1), repeat=5, min_time=0.05)
        OUT.write({"name": "time_engine_predict_one", "params": {"model": "mnist-mlp"}, "compiled_us": t["min"] * 1e6,
                   "reference_us": tr["min"] * 1e6, "speedup": tr["min"] / t["min"]})


# (form, M, K, N): C (M, N) = A (M, K) B (K, N). XW: A = X, the forward. XtG: A = X^T with X (K, M) in
# place, the weight gradient of a batch of K rows. GWt: A = G (M rows, K units), B = W^T (K, N inputs).
GEMM_SHAPES = (("XW", 32, 784, 128), ("XW", 32, 784, 100), ("XW", 32, 128, 10), ("XW", 128, 784, 512),
               ("XW", 64, 256, 256), ("XW", 256, 1024, 1024), ("XW", 1024, 2048, 2048), ("XW", 64, 3072, 512),
               ("XtG", 784, 32, 128), ("XtG", 784, 128, 512), ("XtG", 1024, 256, 1024), ("XtG", 3072, 64, 512),
               ("GWt", 32, 128, 784), ("GWt", 128, 512, 784), ("GWt", 256, 1024, 1024), ("GWt", 64, 512, 3072))


def gemm():
    if ARGS.only and ARGS.only not in "time_gemm gemm_peak":
        return
    for dtype in (np.float32, np.float64):
        for nt in THREADS:
            OUT.write({"name": "gemm_peak", "params": {"dtype": np.dtype(dtype).name, "threads": nt},
                       "gflops": gemm_peak_gflops(dtype, nt)})
    isas = [isa for isa in ("avx2", "avx512") if dense._gemm_isa(isa) == isa]
    try:
        for dtype in (np.float32, np.float64):
            utype = np.uint32 if dtype == np.float32 else np.uint64
            for form, M, K, N in GEMM_SHAPES:
                A = RNG.standard_normal((K, M)).astype(dtype).T if form == "XtG" else \
                    RNG.standard_normal((M, K)).astype(dtype)
                B = RNG.standard_normal((K, N)).astype(dtype)
                C, Cn = np.empty((M, N), dtype), np.empty((M, N), dtype)
                expected = A.astype(np.float64) @ B.astype(np.float64)
                # a sum of K rounded terms is within K u sum_k |a_ik b_kj| of the exact one (Higham 3.1);
                # in float64 NumPy's own product may be that far off too, hence 2 K u
                bound = (1 if dtype == np.float32 else 2) * K * np.finfo(dtype).eps / 2 * \
                    (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
                first = None
                for isa in isas:  # agreement first: with NumPy, and clone with clone bit for bit
                    dense._gemm_isa(isa)
                    out = dense._gemm(A, B, np.empty((M, N), dtype))
                    if not (np.abs(out - expected) <= bound).all():
                        raise AssertionError(f"time_gemm {form} {M}x{K}x{N} {isa}: error above K u |A||B|")
                    first = out if first is None else first
                    if not np.array_equal(out.view(utype), first.view(utype)):
                        raise AssertionError(f"time_gemm {form} {M}x{K}x{N}: {isa} differs from {isas[0]}")
                flop = 2.0 * M * N * K
                repeat = 5 if ARGS.quick or flop > 2e9 else REPEAT
                with numpy_blas_threads(1):
                    tn = timeit(lambda: np.matmul(A, B, out=Cn), repeat=repeat, min_time=0.02)
                for isa in isas:
                    dense._gemm_isa(isa)
                    tc = timeit(lambda: dense._gemm(A, B, C), repeat=repeat, min_time=0.02)
                    OUT.write({"name": "time_gemm",
                               "params": {"form": form, "shape": [M, K, N], "dtype": np.dtype(dtype).name,
                                          "isa": isa, "threads": 1},
                               "compiled_s": tc["min"], "compiled_median_s": tc["median"], "reference_s": tn["min"],
                               "compiled_gflops": flop / tc["min"] / 1e9, "numpy_gflops": flop / tn["min"] / 1e9,
                               "speedup": tn["min"] / tc["min"]})
    finally:
        dense._gemm_isa("avx512")


def main():
    OUT.write({"name": "environment", **environment()})
    gemm()
    kernels()
    elementwise()
    engine_benchmarks()
    OUT.close()


if __name__ == "__main__":
    main()
