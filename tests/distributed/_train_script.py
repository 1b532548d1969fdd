"""Run by tests/distributed/test_data_parallel.py under mpirun (and alone, for P=1): trains one small model
per case and writes, per case and rank, its weights, History, evaluate and predict results to
OUT_CASE_rank{r}.npz.

    python _train_script.py OUT CASE[,CASE...] [auto|presharded]
"""
import json
import sys

import numpy as np

import fastnn as keras
from fastnn import distribution


def data(case):
    rng = np.random.default_rng(5)
    n = {"odd": 203}.get(case, 240)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    y = keras.utils.to_categorical((x[:, :3].sum(axis=1) > 0).astype(np.int64) + (x[:, 3] > 0.5), 3)
    if case == "csr":
        import scipy.sparse as sp
        x = np.where(rng.random(x.shape) < 0.3, np.abs(x), 0).astype(np.float32)
        x = np.concatenate([x] * 6, axis=1)  # 72 features: the CSR path's first layer
        return sp.csr_matrix(x), y
    return x, y


def model_for(case, features):
    keras.utils.set_random_seed(1234)
    layers = [keras.layers.Input((features,)), keras.layers.Dense(16, activation="relu",
                                                                   kernel_regularizer=keras.regularizers.L2(1e-3))]
    if case in ("dropout", "odd"):
        layers.append(keras.layers.Dropout(0.3))
    if case == "bn":
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(3, activation="softmax"))
    model = keras.Sequential(layers)
    optimizer = {"sgd": keras.optimizers.SGD(0.1, momentum=0.9), "rmsprop": "rmsprop"}.get(case, "adam")
    metrics = ["accuracy", keras.metrics.AUC(name="auc")] if case != "bn" else ["accuracy"]
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=metrics)
    return model


def main():
    out, cases = sys.argv[1], sys.argv[2].split(",")
    mode = sys.argv[3] if len(sys.argv) > 3 else "auto"
    distribution.initialize()
    distribution.set_distribution(distribution.DataParallel(auto_shard_dataset=mode == "auto", timeout=60))
    for case in cases:
        run(f"{out}_{case}", case, mode)


def run(out, case, mode):
    rank, size = distribution.process_id(), distribution.num_processes()
    x, y = data(case)
    batch = {"odd": 37}.get(case, 32)
    sw = np.linspace(0.5, 1.5, x.shape[0]) if case == "weights" else None
    model = model_for(case, x.shape[1])
    if rank:  # the other ranks start from other weights and generators: fit broadcasts rank 0's
        keras.utils.set_random_seed(99 + rank)
        model.set_weights([w + 0.5 for w in model.get_weights()])
    val = (x[:50], y[:50])
    if mode == "presharded":
        parts = np.array_split(np.arange(x.shape[0]), size)
        x, y = x[parts[rank]], y[parts[rank]]
        sw = None if sw is None else sw[parts[rank]]
    history = model.fit(x, y, batch_size=batch, epochs=2, sample_weight=sw, validation_data=val, verbose=0)
    ev = model.evaluate(val[0], val[1], verbose=0, return_dict=True)
    pred = model.predict(val[0], verbose=0)
    np.savez(f"{out}_rank{rank}.npz", weights=np.concatenate([w.ravel() for w in model.get_weights()]),
             pred=pred, history=json.dumps(history.history), evaluate=json.dumps(ev))


if __name__ == "__main__":
    main()
