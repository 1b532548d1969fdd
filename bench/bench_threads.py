#!/usr/bin/env python
"""The default thread count against one thread, on an idle machine and with another process busy on a core.

    FASTNN_DATA_DIR=... python bench/bench_threads.py [--busy 0,1] [--repeats 3]

The engine chooses its thread count by timing (docs/engine.md); the target is that the default never makes a
call slower than the same call on one thread by more than 20%, idle or loaded, including calls of a few
steps. Each case runs in its own process (so every choice starts from scratch), once with fastnn's default
threads and once with ``set_num_threads(1)``, optionally while ``--busy`` spinning processes hold cores; the
report is the ratio default / one thread (min over repeats of each).

Cases: a 30-step fit, a 1875-step fit (an MNIST epoch), 200 train_on_batch calls, and an evaluate of 10,000
rows, all on the MNIST tutorial's model (784-128-10, adam, batch 32).
"""
import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
import numpy as np, fastnn as keras
import fastnn._kernels as K
K.BACKEND  # the compiled modules load on first use: not in the timed part
threads = {threads}
if threads:
    keras.set_num_threads(threads)
(x, y), (xt, yt) = keras.datasets.mnist.load_data()
x = (x.reshape(-1, 784) / 255.0).astype(np.float32); xt = (xt.reshape(-1, 784) / 255.0).astype(np.float32)
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.layers.Dense(128, activation="relu", input_shape=(784,)),
                      keras.layers.Dense(10, activation="softmax")])
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
case = {case!r}
t0 = time.perf_counter()
if case == "fit-30-steps":
    m.fit(x[:960], y[:960], epochs=1, batch_size=32, verbose=0)
elif case == "fit-epoch":
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
elif case == "train_on_batch-200":
    for i in range(200):
        m.train_on_batch(x[32 * i:32 * i + 32], y[32 * i:32 * i + 32])
else:
    m.evaluate(xt, yt, verbose=0)
print(json.dumps(time.perf_counter() - t0))
"""

CASES = ("fit-30-steps", "fit-epoch", "train_on_batch-200", "evaluate-10k")


def spin(stop):
    while not stop.is_set():
        pass


def run(case, threads):
    code = CHILD.format(repo=os.path.dirname(HERE), threads=threads, case=case)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--busy", default="0,1", help="spinning processes to run alongside, comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"# cpus {os.cpu_count()}, load {os.getloadavg()}")
    print("| busy processes | case | default s | one thread s | default / one |")
    print("|---|---|---|---|---|")
    for busy in (int(b) for b in args.busy.split(",")):
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(busy)]
        for s in spinners:
            s.start()
        time.sleep(0.5)
        try:
            for case in CASES:
                default = min(run(case, 0) for _ in range(args.repeats))
                one = min(run(case, 1) for _ in range(args.repeats))
                print(f"| {busy} | {case} | {default:.3f} | {one:.3f} | {default / one:.2f} |", flush=True)
        finally:
            stop.set()
            for s in spinners:
                s.join()


if __name__ == "__main__":
    main()
