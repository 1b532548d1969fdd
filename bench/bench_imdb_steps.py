#!/usr/bin/env python
"""IMDB training steps, kernel level: the fused engine on CSR input vs the layer path's kernels.

    FASTNN_DATA_DIR=/work/shared/datasets python bench/bench_imdb_steps.py --threads 1
    FASTNN_DATA_DIR=/work/shared/datasets python bench/bench_imdb_steps.py --threads 2

One process, the IMDB training matrix (``multi_hot(num_words=10000)``, CSR float32), the
tutorial's 10000-16-16-1 model, batch 512, rmsprop, 48 steps over a fixed permutation:

* ``engine step``: ``Engine.train_steps`` on the CSR matrix (whole steps: forward of the 3
  layers, loss, backward, RMSprop over all 160,305 parameters; docs/engine.md, "Input").
* ``layer kernels``: what the layer path runs for the first layer per step, without Python or
  the two small layers: ``csr_dense_forward`` + zeroing dW + ``csr_dense_backward`` (the
  read-modify-write scatter) + ``rmsprop_update`` over the arena. The layer path adds ~190 us of
  Python and small kernels per step on top of this.
* ``evaluate 25k``: ``Engine.evaluate`` on the 25,000 test reviews (fit's validation pass).

Times are the minimum over 9 repeats (after one warm-up) of wall and CPU (process) time; on a
shared machine the CPU time of a 1-thread run is the steadier figure.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import setup_threads  # noqa: E402  (sets the thread variables before numpy loads)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args()
    setup_threads(args.threads)
    sys.path.insert(0, os.path.dirname(HERE))
    import numpy as np

    import fastnn
    import fastnn._kernels as K
    from fastnn._kernels import engine as C
    from fastnn.datasets import imdb

    fastnn.set_num_threads(args.threads)
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)
    X, Xt = fastnn.utils.multi_hot(x_train, 10000), fastnn.utils.multi_hot(x_test, 10000)
    y = np.asarray(y_train, np.float32).reshape(-1, 1)
    yt = np.asarray(y_test, np.float32).reshape(-1, 1)
    rng = np.random.default_rng(0)
    sizes, ops, off = [10000, 16, 16, 1], [], 0
    for (i, o), act in zip(zip(sizes[:-1], sizes[1:]), ["relu", "relu", "sigmoid"]):
        ops.append(("dense", i, o, off, off + i * o, act, True))
        off += i * o + o
    params = (rng.standard_normal(off) * 0.05).astype(np.float32)
    plan = dict(dtype=np.float32, n_inputs=10000, ops=ops, loss=("sigmoid_bxent", True), metrics=("binary_accuracy",),
                optimizer=("rmsprop", {}), regularizers=())
    model = C.Engine(plan, params, np.zeros_like(params), [np.zeros_like(params), None, None], 512)
    model._force_threads = args.threads
    order = rng.permutation(X.shape[0]).astype(np.intp)
    steps, nt = 48, args.threads
    W, b = params[:160000].reshape(10000, 16), params[160000:160016]
    dW, v, g = np.zeros_like(W), np.zeros(off, np.float32), np.zeros(off, np.float32)
    G = rng.standard_normal((512, 16)).astype(np.float32)

    def engine():
        model.train_steps(X, y, order, 0, steps, 0, 1e-3)

    def layer_kernels():
        for s in range(steps):
            rows = order[s * 512:(s + 1) * 512]
            K.csr_dense_forward(X.indptr, X.indices, X.data, W, b, "relu", rows=rows, n_threads=nt)
            dW[...] = 0
            K.csr_dense_backward(X.indptr, X.indices, X.data, G, dW, None, rows=rows, n_threads=nt)
            K.rmsprop_update(params, g, v, None, None, 1e-3, 0.9, 0.0, 1e-7, False, n_threads=nt)

    def evaluate():
        model.evaluate(Xt, yt)

    print(f"# imdb steps, {nt} thread(s), load {os.getloadavg()}")
    cases = (("engine step", engine, steps), ("layer kernels (first layer + rmsprop)", layer_kernels, steps),
             ("evaluate 25k", evaluate, 1))
    for name, fn, per in cases:
        fn()
        wall = cpu = float("inf")
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        unit = "us/step" if per > 1 else "us"
        print(f"{name}: wall {wall / per * 1e6:.0f} {unit}, cpu {cpu / per * 1e6:.0f} {unit}")


if __name__ == "__main__":
    main()
