"""Run by tests/distributed/test_data_parallel.py under mpirun: one kind of misuse per run. It prints
``rank R: ERROR <message>`` for an exception fit raised (the test reads the messages), or writes files for
the rank-0-only checks.

    python _misuse_script.py CASE DIR
"""
import os
import sys
import time

import numpy as np

import fastnn as keras
from fastnn import distribution


def main():
    case, folder = sys.argv[1], sys.argv[2]
    distribution.initialize()
    timeout = 3 if case == "hang" else 60
    distribution.set_distribution(distribution.DataParallel(auto_shard_dataset=case != "presharded", timeout=timeout))
    rank = distribution.process_id()
    rng = np.random.default_rng(0)
    n = 100 + (rank * 37 if case == "presharded" else 0)
    x, y = rng.normal(size=(n, 6)).astype(np.float32), rng.normal(size=(n, 1)).astype(np.float32)
    units = 8 + (rank if case == "model" else 0)
    model = keras.Sequential([keras.layers.Input((6,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    batch = 1 if case == "batch" else 20
    if case == "hang" and rank == 1:
        time.sleep(60)  # never reaches fit: the others' collective times out
    if case == "dies" and rank == 1:
        os._exit(7)  # a crashed rank
    if case == "raises" and rank == 1:
        raise RuntimeError("a bug on rank 1 only")  # uncaught: initialize()'s hook aborts the job
    callbacks = []
    if case == "writes":
        callbacks = [keras.callbacks.ModelCheckpoint(os.path.join(folder, "ckpt.keras"))]
    try:
        model.fit(x, y, batch_size=batch, epochs=2, verbose=1 if case == "writes" else 0, callbacks=callbacks)
    except ValueError as exc:
        print(f"rank {rank}: ERROR {exc}", flush=True)
        return
    if case == "writes":
        model.save(os.path.join(folder, f"model_saved_by_rank{rank}.keras"))
        model.save_weights(os.path.join(folder, f"weights_saved_by_rank{rank}.weights.h5"))
    print(f"rank {rank}: done", flush=True)


if __name__ == "__main__":
    main()
