"""Data-parallel step time and allreduce time (issue 16), and a scaling model for real clusters.

    mpirun -n 1 python bench/bench_distributed.py [--quick]
    mpirun -n 2 python bench/bench_distributed.py
    mpirun -n 4 --oversubscribe python bench/bench_distributed.py   # oversubscribed on 2 cores: labelled so

Per process count P it fits the MNIST MLP (784-128-10, Adam) for a few epochs' steps at global batch B and
reports, from rank 0, ms per step and the time of the fixed-order allreduce of the gradient buffer alone
(timed separately, the same call the gradient hook makes). Then it prints the model
    step(P) = compute(B / P) + 2 (P - 1) / P * bytes / bandwidth + 2 (P - 1) * latency
for 10 and 100 Gbit/s and P = 8, 32, 128, with compute per row measured here. Run it only on a quiet
machine; --quick is a smoke run (fewer rows and steps), not a measurement.
"""
import argparse
import json
import os
import time

import numpy as np

import fastnn as keras
from fastnn import distribution

LATENCY = 20e-6  # seconds per message, a typical TCP/Ethernet MPI latency (an assumption, not measured here)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    distribution.initialize()
    distribution.set_distribution(distribution.DataParallel())
    rank, size = distribution.process_id(), distribution.num_processes()
    rows = 4096 if args.quick else 60000
    rng = np.random.default_rng(0)
    x = rng.random((rows, 784), dtype=np.float32)
    y = rng.integers(0, 10, rows)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.layers.Input((784,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:args.batch_size * 4], y[:args.batch_size * 4], batch_size=args.batch_size, verbose=0)  # warm-up
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
    steps = -(-rows // args.batch_size)
    step = (time.perf_counter() - start) / steps
    reduce_s = None
    n = model._params.shape[0]
    dp = distribution.distribution()
    if dp.collectives is not None:
        buf = np.ones(n, np.float32)
        repeats = 20 if args.quick else 200
        dp.collectives.allreduce_sum(buf, buf)
        start = time.perf_counter()
        for _ in range(repeats):
            dp.collectives.allreduce_sum(buf, buf)
        reduce_s = (time.perf_counter() - start) / repeats
    if rank:
        return
    cores = len(os.sched_getaffinity(0))
    label = f"P={size}" + (" (oversubscribed)" if size > cores else "")
    print(json.dumps({"name": "time_dp_step", "params": {"P": size, "batch": args.batch_size, "quick": args.quick},
                      "label": label, "ms_per_step": round(step * 1e3, 3),
                      "allreduce_ms": None if reduce_s is None else round(reduce_s * 1e3, 3),
                      "gradient_bytes": 4 * n}))
    compute_per_row = (step - (reduce_s or 0.0)) * size / args.batch_size  # seconds of compute per row
    print(f"\nscaling model (compute {compute_per_row * 1e6:.2f} us/row measured here, {4 * n / 1e6:.2f} MB gradients,"
          f" {LATENCY * 1e6:.0f} us latency assumed): efficiency = compute / (compute + allreduce)")
    print("| Gbit/s | hosts | global batch for >= 80% efficiency |")
    print("|---|---|---|")
    for gbit in (10, 100):
        for hosts in (8, 32, 128):
            comm = 2 * (hosts - 1) / hosts * 4 * n / (gbit * 1e9 / 8) + 2 * (hosts - 1) * LATENCY
            # compute(B / hosts) >= 4 * comm  <=>  B >= 4 * comm * hosts / compute_per_row
            print(f"| {gbit} | {hosts} | {int(np.ceil(4 * comm * hosts / compute_per_row))} |")


if __name__ == "__main__":
    main()
