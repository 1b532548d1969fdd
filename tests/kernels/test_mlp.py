"""mlp.pyx (the fused MLP engine) against _reference.MLP: 10 training steps, evaluate, predict."""
import contextlib

import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import mlp as C
from fastnn._kernels._openmp import HAVE_OPENMP  # without it every call runs on one thread


@contextlib.contextmanager
def engine_settings(density=None, parallel_work=None, split=None):
    """Set the engine's module-level knobs (None: leave one as it is) and restore them afterwards."""
    previous = C._sparse_max_density(density), C._engine_parallel_work(parallel_work), C._first_layer_split(split)
    try:
        yield
    finally:
        C._sparse_max_density(previous[0])
        C._engine_parallel_work(previous[1])
        C._first_layer_split(previous[2])


OPTIMIZERS = [
    ("sgd", {}, 0),
    ("sgd", {"momentum": 0.9}, 1),
    ("sgd", {"momentum": 0.9, "nesterov": True}, 1),
    ("rmsprop", {"rho": 0.9, "epsilon": 1e-7}, 1),
    ("rmsprop", {"rho": 0.9, "epsilon": 1e-7, "momentum": 0.5, "centered": True}, 3),
    ("adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}, 2),
    ("adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": True}, 3),
    ("adadelta", {"rho": 0.95, "epsilon": 1e-7}, 2),
]
LR = {"sgd": 0.05, "rmsprop": 1e-3, "adam": 1e-3, "adadelta": 1.0}


def build(sizes, acts, bias=True, seed=0, gap=0):
    """Layer specs in one arena (optionally with `gap` unused floats between layers)."""
    rng = np.random.default_rng(seed)
    layers, off = [], 0
    for (i, o), act in zip(zip(sizes[:-1], sizes[1:]), acts):
        w_off = off
        off += i * o
        b_off = off if bias else -1
        off += o if bias else 0
        off += gap
        layers.append((i, o, w_off, b_off, act))
    params = (rng.standard_normal(off) * 0.2).astype(np.float32)
    return params, layers


def data(S, I, K, loss, seed=1, density=0.25):
    rng = np.random.default_rng(seed)
    X = rng.random((S, I)).astype(np.float32)
    X[rng.random((S, I)) > density] = 0  # image-like sparsity
    if loss == "softmax_xent":
        y = rng.integers(0, K, S)
    elif loss == "softmax_onehot":
        y = np.eye(K, dtype=np.float32)[rng.integers(0, K, S)]
    elif loss == "sigmoid_bxent":
        y = (rng.random((S, K)) > 0.5).astype(np.float32)
    else:
        y = rng.standard_normal((S, K)).astype(np.float32)
    return X, y, rng.permutation(S)


def make_pair(params, layers, loss, metrics, opt, hyper, n_slots, batch_size, n_threads=None):
    out = []
    for mod in (C, R):
        p = params.copy()
        width = {"sgd": n_slots, "rmsprop": 3, "adam": 3, "adadelta": 2}[opt]
        slots = [np.zeros_like(p) for _ in range(n_slots)] + [None] * (width - n_slots)
        if opt == "rmsprop" and n_slots == 3 and not hyper.get("momentum"):
            slots[1] = None
        kwargs = {"n_threads": n_threads} if mod is C else {}
        out.append(mod.MLP(p, np.zeros_like(p), layers, loss, metrics, opt, slots, hyper, batch_size, **kwargs))
    return out


def run_pair(compiled, reference, X, y, order, steps, lr):
    res = []
    for m in (compiled, reference):
        res.append(m.train_steps(X, y, order, 0, steps, 0, lr))
    return res


def assert_same_training(rc, rr, mc, mr):
    (lc, mc_sums, nc), (lr_, mr_sums, nr) = rc, rr
    assert nc == nr
    np.testing.assert_allclose(lc, lr_, rtol=2e-5)
    np.testing.assert_allclose(mc_sums, mr_sums, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(mc.params, mr.params, rtol=1e-4, atol=2e-5)
    for sc, sr in zip(mc.slots, mr.slots):
        if sc is not None:
            np.testing.assert_allclose(sc, sr, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("opt,hyper,n_slots", OPTIMIZERS, ids=[f"{o[0]}{i}" for i, o in enumerate(OPTIMIZERS)])
@pytest.mark.parametrize("n_threads", (1, 2))
def test_ten_steps_match_reference_per_optimizer(opt, hyper, n_slots, n_threads):
    params, layers = build([300, 64, 10], ["relu", "softmax"])
    X, y, order = data(310, 300, 10, "softmax_xent")  # 10 batches of 32: the last has 22 rows
    mc, mr = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], opt, hyper, n_slots,
                       32, n_threads)
    rc, rr = run_pair(mc, mr, X, y, order, 10, LR[opt])
    assert rc[2] == 310
    assert_same_training(rc, rr, mc, mr)


LOSS_CASES = [
    ("softmax_xent", "softmax_xent", ["relu", "softmax"], ["sparse_categorical_accuracy"]),
    ("softmax_xent", "softmax_xent", ["tanh", "linear"], []),
    ("softmax_onehot", "softmax_xent", ["relu", "softmax"], ["categorical_accuracy", "mse"]),
    ("sigmoid_bxent", "sigmoid_bxent", ["relu", "sigmoid"], ["binary_accuracy"]),
    ("sigmoid_bxent", "sigmoid_bxent", ["sigmoid", "linear"], ["mae"]),
    ("mse", "mse", ["relu", "linear"], ["mae"]),
    ("mse", "mse", ["tanh", "softmax"], ["categorical_accuracy"]),
    ("mae", "mae", ["relu", "sigmoid"], ["mse", "binary_accuracy"]),
]


@pytest.mark.parametrize("labels,loss,acts,metrics", LOSS_CASES, ids=[f"{c[0]}-{c[2][1]}" for c in LOSS_CASES])
@pytest.mark.parametrize("density", (0.0, 1.0), ids=("dense-path", "sparse-path"))
def test_ten_steps_match_reference_per_loss(labels, loss, acts, metrics, density):
    with engine_settings(density=density):
        params, layers = build([100, 48, 6], acts, seed=2)
        X, y, order = data(95, 100, 6, labels, seed=3)  # batches of 10: the last has 5 rows
        mc, mr = make_pair(params, layers, loss, metrics, "adam", OPTIMIZERS[5][1], 2, 10, 2)
        rc, rr = run_pair(mc, mr, X, y, order, 10, 1e-2)
        assert_same_training(rc, rr, mc, mr)
        for batch_size in (7, 200):
            ec, er = mc.evaluate(X, y, batch_size), mr.evaluate(X, y, batch_size)
            np.testing.assert_allclose(ec[0], er[0], rtol=1e-5)
            np.testing.assert_allclose(ec[1], er[1], rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(mc.predict(X, batch_size), mr.predict(X, batch_size), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_threads", (1, 2))
def test_sparse_and_dense_paths_are_bitwise_the_same(n_threads):
    """The bitmask kernels and the GEMM sum the same products in the same order, so the density
    threshold changes speed, never a bit."""
    runs = []
    for density in (0.0, 1.0):
        with engine_settings(density=density):
            params, layers = build([100, 48, 6], ["relu", "softmax"], seed=2)
            X, y, order = data(95, 100, 6, "softmax_xent", seed=3)
            mc, _ = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                              OPTIMIZERS[5][1], 2, 10, n_threads)
            losses = mc.train_steps(X, y, order, 0, 10, 0, 1e-2)
            runs.append((mc.params.copy(), losses[0], mc.evaluate(X, y, 7)[0], mc.predict(X, 7)))
    for dense, sparse in zip(*runs):
        np.testing.assert_array_equal(dense, sparse)


@pytest.mark.parametrize("n_threads", (1, 2))
def test_batches_switch_between_in_place_sparse_and_copied_dense(n_threads):
    """In one call, sparse batches are read where they lie in X (no copy) and dense ones are copied
    for the GEMMs: the same bits as every batch on either path, 1 and 2 threads."""
    params, layers = build([100, 48, 6], ["relu", "softmax"], seed=6)
    X, y, _ = data(120, 100, 6, "softmax_xent", seed=7, density=0.1)
    X[60:] = np.random.default_rng(8).random((60, 100)).astype(np.float32) + 0.1  # dense rows
    order = np.concatenate([np.arange(0, 60), np.arange(60, 120)])[::-1].copy()  # dense batches first
    runs = []
    for density in (None, 0.0, 1.0):  # the default threshold: both kinds of batch in one call
        with engine_settings(density=density, parallel_work=0):
            mc, _ = make_pair(params, layers, "softmax_xent", [], "adam", OPTIMIZERS[5][1], 2, 20, n_threads)
            losses = mc.train_steps(X, y, order, 0, 6, 0, 1e-2)
            runs.append((mc.params.copy(), losses[0]))
    for p, loss in runs[1:]:
        np.testing.assert_array_equal(p, runs[0][0])
        assert loss == runs[0][1]


@pytest.mark.parametrize("n_threads", (1, 2))
def test_deep_stacks_no_bias_gaps_and_hidden_softmax(n_threads):
    """Three+ layers (barriers between hidden layers), no biases, unused arena gaps, a softmax hidden layer."""
    for sizes, acts, bias in (([20, 300, 300, 3], ["tanh", "sigmoid", "softmax"], True),
                              ([70, 40, 30, 5], ["softmax", "relu", "linear"], False)):
        params, layers = build(sizes, acts, bias=bias, seed=4, gap=3)
        X, y, order = data(64, sizes[0], sizes[-1], "mse", seed=5, density=0.9)
        mc, mr = make_pair(params, layers, "mse", ["mae"], "sgd", {"momentum": 0.9}, 1, 16, n_threads)
        rc, rr = run_pair(mc, mr, X, y, order, 4, 0.05)
        assert_same_training(rc, rr, mc, mr)
        np.testing.assert_allclose(mc.predict(X, 5), mr.predict(X, 5), rtol=1e-5, atol=1e-6)


def test_calls_resume_where_they_stopped():
    """train_steps in chunks (first_batch/iterations) equals one call."""
    params, layers = build([300, 64, 10], ["relu", "softmax"])
    X, y, order = data(310, 300, 10, "softmax_xent")
    hyper = OPTIMIZERS[5][1]
    a, _ = make_pair(params, layers, "softmax_xent", [], "adam", hyper, 2, 32)
    b, _ = make_pair(params, layers, "softmax_xent", [], "adam", hyper, 2, 32)
    la = a.train_steps(X, y, order, 0, 10, 0, 1e-3)[0]
    lb = sum(b.train_steps(X, y, order, first, 1, first, 1e-3)[0] for first in range(10))
    np.testing.assert_allclose(la, lb, rtol=1e-12)
    np.testing.assert_array_equal(a.params, b.params)


def test_reproducible_and_thread_count_independent_on_the_sparse_path():
    with engine_settings(density=1.0):
        params, layers = build([784, 128, 10], ["relu", "softmax"], seed=6)
        X, y, order = data(200, 784, 10, "softmax_xent", seed=7, density=0.2)
        runs = []
        for n_threads in (1, 2, 2):
            m, _ = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                             OPTIMIZERS[5][1], 2, 32, n_threads)
            runs.append((m.train_steps(X, y, order, 0, 7, 0, 1e-3), m.params.copy()))
        for (res, p) in runs[1:]:
            assert res[0] == runs[0][0][0]
            np.testing.assert_array_equal(p, runs[0][1])


@pytest.mark.parametrize("sizes,acts,loss", [
    ([200, 40, 10], ["relu", "softmax"], "softmax_xent"),          # 8+ units: fastnn's GEMM
    ([200, 24, 3], ["tanh", "sigmoid"], "sigmoid_bxent"),          # 3 units: the ordered sum
    ([200, 30, 20, 1], ["relu", "softmax", "linear"], "mse"),      # a hidden softmax, one unit
], ids=("softmax", "narrow", "hidden-softmax"))
def test_evaluate_and_predict_by_rows_any_thread_count(sizes, acts, loss, monkeypatch):
    """evaluate/predict run each thread's rows of a chunk through every layer (_infer_rows): the
    reference's values, and the same bits on 1, 2 and 3 threads and for any chunk size, with sparse
    and dense chunks mixed. Dense input runs in chunks of max(batch_size, INFER_CHUNK_ROWS) rows
    whatever the call's batch_size (which therefore changes no bit)."""
    params, layers = build(sizes, acts, seed=9)
    X, y, _ = data(101, sizes[0], sizes[-1], loss, seed=10, density=0.2)
    X[50:70] += 0.5  # dense rows: some chunks take the GEMM
    results = []
    for n_threads, chunk in ((1, 16), (2, 16), (3, 16), (2, 7), (2, 32), (2, 128)):
        monkeypatch.setattr(C, "INFER_CHUNK_ROWS", chunk)  # read when an MLP is built
        with engine_settings(parallel_work=0):
            mc, mr = make_pair(params, layers, loss, ["mae"] if loss == "mse" else [], "sgd", {}, 0, 5, n_threads)
            ev, pred = mc.evaluate(X, y, 5), mc.predict(X, 3)
            if chunk == 16:  # the call's batch_size does not matter
                again = mc.evaluate(X, y, 64)
                assert again[0] == ev[0]
                np.testing.assert_array_equal(again[1], ev[1])
                np.testing.assert_array_equal(mc.predict(X, 64), pred)
        np.testing.assert_allclose(ev[0], mr.evaluate(X, y, chunk)[0], rtol=1e-5)
        np.testing.assert_allclose(pred, mr.predict(X, chunk), rtol=1e-5, atol=1e-6)
        results.append((pred, ev))
    for pred, ev in results[1:]:
        np.testing.assert_array_equal(pred, results[0][0])
    for pred, ev in results[1:3]:  # the same chunks: the same sums of the same row losses
        assert ev[0] == results[0][1][0]
        np.testing.assert_array_equal(ev[1], results[0][1][1])


@pytest.mark.parametrize("n_threads", (1, 2))
def test_long_inference_calls_on_a_padded_kernel_give_the_bits_of_short_ones(n_threads):
    """evaluate/predict calls of C.INFER_PADDED_MIN_ROWS+ rows read the first layer's kernel from a
    copy with rows padded to 8 floats (20 units: 24): the same bits as short calls on the arena."""
    params, layers = build([100, 20, 5], ["relu", "softmax"], seed=30)
    X, y, _ = data(C.INFER_PADDED_MIN_ROWS + 77, 100, 5, "softmax_xent", seed=31, density=0.3)
    mc, mr = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "sgd", {}, 0, 32,
                       n_threads)
    whole = mc.predict(X, 32)
    parts = np.concatenate([mc.predict(X[i:i + 500], 32) for i in range(0, X.shape[0], 500)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_allclose(whole, mr.predict(X, 32), rtol=1e-5, atol=1e-6)
    loss, metrics = mc.evaluate(X, y, 32)
    np.testing.assert_allclose(loss, mr.evaluate(X, y, 32)[0], rtol=1e-5)
    assert metrics[0] == np.sum(whole.argmax(1) == y)


def test_evaluate_and_predict_by_rows_with_batch_norm_and_dropout(monkeypatch):
    """At inference BatchNormalization (moving statistics) runs on each thread's rows and Dropout is
    the identity: the reference's values, the same bits on 1, 2 and 3 threads and any chunk size."""
    params, layers = build_post([60, 24, 16, 4], ["relu", "relu", "softmax"], [("bn", "dropout"), ("bn",), ()],
                                seed=11, rate=0.3)
    X, y, order = data(90, 60, 4, "softmax_xent", seed=12, density=0.3)
    results = []
    for n_threads, chunk in ((1, 16), (2, 16), (3, 16), (2, 5), (2, 128)):
        monkeypatch.setattr(C, "INFER_CHUNK_ROWS", chunk)  # inference chunks: max(16, chunk) rows
        with engine_settings(parallel_work=0):
            mc, mr = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "sgd", {}, 0, 16,
                               n_threads)
            for m in (mc, mr):  # moving statistics away from their initial values
                m.train_steps(X, y, order, 0, 3, 0, 0.1, [np.full((48, 24), 0.5, np.float32)])
            ev, pred = mc.evaluate(X, y, chunk), mc.predict(X, chunk)
        np.testing.assert_allclose(ev[0], mr.evaluate(X, y, chunk)[0], rtol=1e-5)
        np.testing.assert_allclose(pred, mr.predict(X, chunk), rtol=1e-5, atol=1e-6)
        results.append(pred)
    for pred in results[1:]:
        np.testing.assert_array_equal(pred, results[0])


def test_predict_single_sample_and_out_buffer():
    params, layers = build([300, 64, 10], ["relu", "softmax"])
    X, _, _ = data(3, 300, 10, "softmax_xent")
    mc, mr = make_pair(params, layers, "softmax_xent", [], "sgd", {}, 0, 32)
    out = np.empty((1, 10), np.float32)
    assert mc.predict(X[:1], 32, out=out) is out
    np.testing.assert_allclose(out, mr.predict(X[:1], 32), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-5)


def test_attributes_mirror_reference():
    params, layers = build([300, 64, 10], ["relu", "softmax"])
    mc, mr = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                       OPTIMIZERS[5][1], 2, 32)
    for name in ("layers", "loss", "metrics", "optimizer", "hyper", "batch_size"):
        assert getattr(mc, name) == getattr(mr, name), name
    assert mc.params.shape == mr.params.shape


def test_bad_input():
    params, layers = build([300, 64, 10], ["relu", "softmax"])
    X, y, order = data(64, 300, 10, "softmax_xent")
    m, _ = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "sgd", {}, 0, 32)
    with pytest.raises(ValueError, match="`X` must be a float32 array.*float64"):
        m.train_steps(X.astype(np.float64), y, order, 0, 1, 0, 0.1)
    with pytest.raises(ValueError, match="`X` must have shape \\(None, 300\\).*\\(64, 299\\)"):
        m.train_steps(X[:, :299], y, order, 0, 1, 0, 0.1)
    bad = y.copy()
    bad[order[3]] = 10
    with pytest.raises(ValueError, match="`y` holds class ids that must be in \\[0, 10\\).*10"):
        m.train_steps(X, bad, order, 0, 1, 0, 0.1)
    with pytest.raises(ValueError, match="`order` holds row ids that must be in \\[0, 64\\)"):
        m.train_steps(X, y, order + 1, 0, 2, 0, 0.1)
    with pytest.raises(ValueError, match="batches 1..2 of 32 rows need more than the 64 rows"):
        m.train_steps(X, y, order, 1, 2, 0, 0.1)
    with pytest.raises(ValueError, match="`learning_rate` must be finite"):
        m.train_steps(X, y, order, 0, 1, 0, float("nan"))
    with pytest.raises(ValueError, match="`y` must have shape \\(64, 10\\)"):
        m.train_steps(X, np.zeros((64, 3), np.float32), order, 0, 1, 0, 0.1)
    with pytest.raises(TypeError, match="`params` must be a float32 NumPy array.*float64"):
        C.MLP(params.astype(np.float64), np.zeros(params.size), layers, "softmax_xent", [], "sgd", [], {}, 32)
    with pytest.raises(ValueError, match="Unknown loss 'hinge'"):
        C.MLP(params, np.zeros_like(params), layers, "hinge", [], "sgd", [], {}, 32)
    with pytest.raises(ValueError, match="layer 1 has I=63 inputs but layer 0 has O=64"):
        C.MLP(params, np.zeros_like(params), [layers[0], (63, 10, 0, -1, "softmax")], "softmax_xent", [],
              "sgd", [], {}, 32)
    with pytest.raises(ValueError, match="needs hyper\\['beta_1'\\]"):
        C.MLP(params, np.zeros_like(params), layers, "softmax_xent", [], "adam",
              [np.zeros_like(params)] * 2, {"beta_2": 0.9, "epsilon": 1e-7}, 32)
    with pytest.raises(ValueError, match="needs a final activation of 'softmax'"):
        C.MLP(params, np.zeros_like(params), [layers[0], layers[1][:4] + ("relu",)], "softmax_xent", [], "sgd",
              [], {}, 32)


# --------------------------------------------------------------------------- BatchNormalization / Dropout ops
def build_post(sizes, acts, posts, seed=0, momentum=0.9, epsilon=1e-3, rate=0.3):
    """Layer specs whose hidden layers carry post ops: per layer a tuple of "bn" (gamma and beta),
    "bn-scale" (gamma only: center=False), "bn-center" (beta only), "bn-none", or "dropout"."""
    rng = np.random.default_rng(seed)
    layers, off, moving_var = [], 0, []
    for (i, o), act, names in zip(zip(sizes[:-1], sizes[1:]), acts, posts):
        w_off, b_off = off, off + i * o
        off += i * o + o
        post = []
        for name in names:
            if name == "dropout":
                post.append(("dropout", rate))
                continue
            offsets = []
            for present in ("scale" in name or name == "bn", "center" in name or name == "bn", True, True):
                offsets.append(off if present else -1)
                off += o if present else 0
            moving_var.append((offsets[3], o))
            post.append(("batch_norm", *offsets, momentum, epsilon))
        layers.append((i, o, w_off, b_off, act) + ((tuple(post),) if post else ()))
    params = (rng.standard_normal(off) * 0.2).astype(np.float32)
    for start, o in moving_var:
        params[start:start + o] = rng.uniform(0.5, 2.0, o)  # a positive moving variance
    return params, layers


def uniforms_for(layers, rows, seed=9):
    rng = np.random.default_rng(seed)
    return [rng.random((rows, spec[1]), dtype=np.float32) for spec in layers
            for op in (spec[5] if len(spec) > 5 else ()) if op[0] == "dropout"]


POST_CASES = {
    "bn-dropout": [("bn", "dropout"), ()],
    "dropout-bn": [("dropout", "bn"), ()],
    "bn": [("bn",), ()],
    "dropout": [("dropout",), ()],
    "bn-no-center": [("bn-scale", "dropout"), ()],
    "bn-no-scale": [("bn-center",), ()],
    "bn-neither": [("bn-none", "dropout"), ()],
}


@pytest.mark.parametrize("case", list(POST_CASES))
@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("density", (0.0, 1.0), ids=("dense-path", "sparse-path"))
def test_post_ops_ten_steps_match_reference(case, n_threads, density):
    with engine_settings(density=density, parallel_work=0):  # a team of 2 where possible
        params, layers = build_post([100, 128, 6], ["relu", "softmax"], POST_CASES[case], seed=2)
        # batches of 32 (with 2 threads, each owns half the hidden units); the last has 22 rows
        X, y, order = data(310, 100, 6, "softmax_xent", seed=3)
        # The bias before a BatchNormalization has a gradient of ~0 (the normalization removes the
        # batch mean): rounding noise of 1e-9 that Adam with epsilon=1e-7 turns into full-size steps,
        # different in each twin. A larger epsilon keeps the noise from being amplified.
        hyper = dict(OPTIMIZERS[5][1], epsilon=1e-3)
        mc, mr = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam", hyper, 2,
                           32, n_threads)
        U = uniforms_for(layers, 310)
        rc = mc.train_steps(X, y, order, 0, 10, 0, 1e-2, U)
        rr = mr.train_steps(X, y, order, 0, 10, 0, 1e-2, U)
        assert_same_training(rc, rr, mc, mr)
        for batch_size in (29, 200):  # (few chunks: a team's barriers are slow on a busy machine)
            ec, er = mc.evaluate(X, y, batch_size), mr.evaluate(X, y, batch_size)
            np.testing.assert_allclose(ec[0], er[0], rtol=1e-5)
            np.testing.assert_allclose(ec[1], er[1], rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(mc.predict(X, batch_size), mr.predict(X, batch_size), rtol=1e-5,
                                       atol=1e-6)


@pytest.mark.parametrize("n_threads", (1, 2))
def test_post_ops_in_deep_stacks_with_gaps_and_float_labels(n_threads):
    """Ops after several hidden layers (both orders), teams of 2 on the wide layers, arena gaps, mse."""
    with engine_settings(parallel_work=0):
        params, layers = build_post([60, 160, 96, 5], ["tanh", "relu", "linear"],
                                    [("dropout", "bn"), ("bn-scale", "dropout"), ()], seed=4, momentum=0.5)
        gap = np.zeros(7, np.float32)  # unused floats at the end of the arena are updated as gaps
        params = np.concatenate([params, gap + 0.5])
        X, y, order = data(150, 60, 5, "mse", seed=5, density=0.9)
        for opt, hyper, n_slots, lr in (OPTIMIZERS[1] + (0.05,), OPTIMIZERS[4] + (1e-3,),
                                        OPTIMIZERS[7] + (1.0,)):
            mc, mr = make_pair(params, layers, "mse", ["mae"], opt, hyper, n_slots, 32, n_threads)
            U = uniforms_for(layers, 128, seed=11)
            rc = mc.train_steps(X, y, order, 0, 4, 0, lr, U)
            rr = mr.train_steps(X, y, order, 0, 4, 0, lr, U)
            assert_same_training(rc, rr, mc, mr)
            np.testing.assert_allclose(mc.predict(X, 64), mr.predict(X, 64), rtol=1e-5, atol=2e-6)


def test_moving_statistics_follow_keras_and_are_not_trained():
    """moving = moving * momentum + batch * (1 - momentum) with the batch's biased variance, whatever the
    optimizer does; their optimizer slots stay zero."""
    params, layers = build_post([20, 8, 3], ["relu", "softmax"], [("bn",), ()], seed=1, momentum=0.8)
    X, y, order = data(16, 20, 3, "softmax_xent", seed=2, density=0.9)
    m, _ = make_pair(params, layers, "softmax_xent", [], "adam", OPTIMIZERS[5][1], 2, 16)
    i, o, w_off, b_off, _, ((_, g_off, be_off, mm_off, mv_off, momentum, eps),) = layers[0]
    before = m.params.copy()
    hidden = np.maximum(X[order] @ before[w_off:w_off + i * o].reshape(i, o) + before[b_off:b_off + o], 0)
    m.train_steps(X, y, order, 0, 1, 0, 0.1)
    h64 = hidden.astype(np.float64)
    for off, batch_stat in ((mm_off, h64.mean(0)), (mv_off, h64.var(0))):
        np.testing.assert_allclose(m.params[off:off + o], before[off:off + o] * 0.8 + batch_stat * 0.2,
                                   rtol=1e-5, atol=1e-6)
    for slot in m.slots[:2]:
        assert not slot[mm_off:mm_off + 2 * o].any()
    assert not np.array_equal(m.params[g_off:g_off + 2 * o], before[g_off:g_off + 2 * o])  # gamma, beta train


def test_dropout_uses_the_given_uniforms():
    """U >= 1 - rate drops a unit for that row: dropping every unit leaves the first layer and the
    normalization untouched (no gradient reaches them); keeping every unit scales it by 1 / (1 - rate)."""
    params, layers = build_post([20, 8, 3], ["relu", "softmax"], [("bn", "dropout"), ()], seed=1, rate=0.25)
    X, y, order = data(16, 20, 3, "softmax_xent", seed=2, density=0.9)
    first = slice(0, layers[0][3] + 8 + 16)  # kernel, bias, gamma, beta of the hidden layer
    for model in make_pair(params, layers, "softmax_xent", [], "sgd", {}, 0, 8):
        model.train_steps(X, y, order, 0, 2, 0, 0.5, [np.full((16, 8), 0.75, np.float32)])
        np.testing.assert_array_equal(model.params[first], params[first])
        assert not np.array_equal(model.params, params)  # the last layer still learns (its bias)
    params, layers = build_post([20, 8, 3], ["relu", "softmax"], [("dropout",), ()], seed=1, rate=0.25)
    plain = [spec[:5] for spec in layers]
    scaled = params.copy()
    scaled[plain[1][2]:plain[1][3]] /= np.float32(0.75)  # what the last layer sees of kept units
    for module in (C, R):
        m = module.MLP(params.copy(), np.zeros_like(params), layers, "softmax_xent", [], "sgd", [], {}, 16)
        loss = m.train_steps(X, y, order, 0, 1, 0, 0.0, [np.zeros((16, 8), np.float32)])[0]
        ref = module.MLP(scaled, np.zeros_like(params), plain, "softmax_xent", [], "sgd", [], {}, 16)
        np.testing.assert_allclose(loss, ref.evaluate(X, y, 16)[0], rtol=1e-5)
        np.testing.assert_array_equal(m.predict(X, 16), module.MLP(params, np.zeros_like(params), plain,
                                                                     "softmax_xent", [], "sgd", [], {},
                                                                     16).predict(X, 16))  # inference: none


def test_post_ops_calls_resume_where_they_stopped():
    """Chunks of train_steps, each with its rows' uniforms, equal one call."""
    params, layers = build_post([100, 48, 6], ["relu", "softmax"], [("bn", "dropout"), ()], seed=3)
    X, y, order = data(95, 100, 6, "softmax_xent", seed=4)
    U = uniforms_for(layers, 95)
    a, _ = make_pair(params, layers, "softmax_xent", [], "adam", OPTIMIZERS[5][1], 2, 10)
    b, _ = make_pair(params, layers, "softmax_xent", [], "adam", OPTIMIZERS[5][1], 2, 10)
    la = a.train_steps(X, y, order, 0, 10, 0, 1e-3, U)[0]
    lb = 0.0
    for first, n in ((0, 3), (3, 6), (9, 1)):
        rows = slice(first * 10, min((first + n) * 10, 95))
        lb += b.train_steps(X, y, order, first, n, first, 1e-3, [u[rows] for u in U])[0]
    np.testing.assert_allclose(la, lb, rtol=1e-12)
    np.testing.assert_array_equal(a.params, b.params)


def test_post_ops_reproducible_and_thread_count_independent():
    """The ops work per unit, so the split of units between threads changes nothing (sparse path)."""
    with engine_settings(density=1.0, parallel_work=0):
        params, layers = build_post([784, 128, 10], ["relu", "softmax"], [("bn", "dropout"), ()], seed=6)
        X, y, order = data(200, 784, 10, "softmax_xent", seed=7, density=0.2)
        U = uniforms_for(layers, 6 * 32)
        runs = []
        for n_threads in (1, 2, 2):
            m, _ = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                             OPTIMIZERS[5][1], 2, 32, n_threads)
            runs.append((m.train_steps(X, y, order, 0, 6, 0, 1e-3, U), m.params.copy(), m.predict(X, 64)))
        for res, p, pred in runs[1:]:
            assert res[0] == runs[0][0][0]
            np.testing.assert_array_equal(p, runs[0][1])
            np.testing.assert_array_equal(pred, runs[0][2])


def test_post_ops_bad_input():
    params, layers = build_post([30, 8, 3], ["relu", "softmax"], [("bn", "dropout"), ()], seed=1)
    X, y, order = data(20, 30, 3, "softmax_xent")
    m, r = make_pair(params, layers, "softmax_xent", [], "sgd", {}, 0, 8)
    for model in (m, r):
        with pytest.raises(ValueError, match="`uniforms` must hold one array per dropout op \\(1\\); "
                                             "received 0"):
            model.train_steps(X, y, order, 0, 2, 0, 0.1)
        with pytest.raises(ValueError, match="`uniforms\\[0\\]` must be a float32 array of shape "
                                             "\\(16, 8\\)"):
            model.train_steps(X, y, order, 0, 2, 0, 0.1, [np.zeros((20, 8), np.float32)])
        with pytest.raises(ValueError, match="`uniforms\\[0\\]` must be a float32 array of shape \\(4, 8\\)"):
            model.train_steps(X, y, order, 2, 1, 0, 0.1, [np.zeros((4, 8), np.float64)])
    hidden, last = layers
    bn, drop = hidden[5]

    def make(specs, n=params.size):
        p = np.zeros(n, np.float32)
        return C.MLP(p, np.zeros_like(p), specs, "softmax_xent", [], "sgd", [], {}, 8)

    with pytest.raises(ValueError, match="layer 1 cannot take post ops"):
        make([hidden, last + ((drop,),)])
    with pytest.raises(ValueError, match="layer 0 cannot take post ops"):
        make([hidden[:4] + ("softmax", (bn,)), last])
    with pytest.raises(ValueError, match="unknown or repeated post op"):
        make([hidden[:5] + ((drop, drop),), last])
    with pytest.raises(ValueError, match="unknown or repeated post op"):
        make([hidden[:5] + ((("layer_norm", 0.1),),), last])
    with pytest.raises(ValueError, match="argument `rate` must be a number in \\[0.0, 1.0\\]; received 1.5"):
        make([hidden[:5] + ((("dropout", 1.5),),), last])
    with pytest.raises(ValueError, match="argument `momentum` must be a number in \\[0.0, 1.0\\]"):
        make([hidden[:5] + ((bn[:5] + (-0.1, 1e-3),),), last])
    with pytest.raises(ValueError, match="layers overlap in the parameter arena"):
        make([hidden[:5] + ((bn[:3] + (hidden[3],) + bn[4:],),), last])
    with pytest.raises(ValueError, match="does not fit in a parameter arena"):
        make([hidden[:5] + ((bn[:4] + (params.size - 3,) + bn[5:],),), last])
    with pytest.raises(ValueError, match="expected \\('dropout', rate\\)"):
        make([hidden[:5] + ((("dropout",),),), last])


@pytest.mark.parametrize("units", (100, 128, 7))
@pytest.mark.parametrize("density", (0.0, 1.0))  # dense GEMMs / bitmask kernels
@pytest.mark.parametrize("opt,hyper,n_slots", [OPTIMIZERS[0], OPTIMIZERS[5]], ids=["sgd", "adam"])
def test_first_layer_splits_match_reference_and_each_other_bitwise(units, density, opt, hyper, n_slots):
    # "cols": each thread owns units; "rows": batch rows in the forward, input features in the
    # gradient + update; "blocks": units, with the kernel and slots copied into per-thread column
    # blocks for the call and back. Every element is summed in the same order in all of them, so
    # all their runs are bitwise equal (and the arena holds the trained kernel and slots after a call).
    # "features" sums the first layer in two halves of its features and adds them: other bits, the
    # same on any thread count; "auto" picks it for 16..104 units on every thread count.
    with engine_settings(density=density, parallel_work=0):
        params, layers = build([300, units, 10], ["relu", "softmax"], seed=3)
        X, y, order = data(330, 300, 10, "softmax_xent", seed=4, density=0.3)  # last batch: 10 rows
        groups = {"features": [], "sequential": []}
        for split, n_threads in (("cols", 1), ("cols", 2), ("rows", 2), ("blocks", 2), ("features", 1),
                                 ("features", 2), ("features", 3), ("auto", 1), ("auto", 2)):
            C._first_layer_split(split)
            mc, mr = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], opt, hyper,
                               n_slots, 32, n_threads)
            rc, rr = run_pair(mc, mr, X, y, order, 11, LR[opt])
            layout = mc._core.layout()
            if split == "features" or (split == "auto" and 16 <= units <= 104):
                assert layout == "features" and 16 <= mc._core.half_split <= 300 - 16
            elif split != "auto" and units != 7 and HAVE_OPENMP:
                assert layout == split
            assert_same_training(rc, rr, mc, mr)
            ev = mc.evaluate(X, y, 64)
            groups["features" if layout == "features" else "sequential"].append((rc[0], mc.params.copy(), ev))
        for runs in groups.values():
            for loss, p, ev in runs[1:]:
                assert loss == runs[0][0]
                np.testing.assert_array_equal(p, runs[0][1])
                assert ev == runs[0][2]


@pytest.mark.parametrize("density", (0.0, 1.0))
def test_auto_column_blocks_on_long_calls_equal_one_thread_bitwise(density):
    # a call of >= 16 steps with the first layer shared runs on column blocks ("auto", more units than
    # the feature halves take); the kernel and the Adam slots are copied back into the arena, and a
    # second call resumes from them
    with engine_settings(density=density, parallel_work=0, split="auto"):
        params, layers = build([200, 128, 10], ["relu", "softmax"], seed=5)
        X, y, order = data(32 * 20 + 17, 200, 10, "softmax_xent", seed=6, density=0.3)
        runs = []
        for n_threads in (1, 2):
            mc, _ = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                              OPTIMIZERS[5][1], 2, 32, n_threads)
            first = mc.train_steps(X, y, order, 0, 18, 0, 1e-3)
            assert mc._core.layout() == ("blocks" if n_threads == 2 and HAVE_OPENMP else "cols")
            second = mc.train_steps(X, y, order, 18, 3, 18, 1e-3)
            assert mc._core.layout() == "cols"  # 3 steps: not worth the copies
            runs.append((first[0], second[0], mc.params.copy(), [s.copy() for s in mc.slots if s is not None]))
        assert runs[0][:2] == runs[1][:2]
        np.testing.assert_array_equal(runs[0][2], runs[1][2])
        for a, b in zip(runs[0][3], runs[1][3]):
            np.testing.assert_array_equal(a, b)


def _half_split_rule(X, order, I):
    """MLP._core's choice of the feature halves, restated: the multiple of 16 in [16, I - 16] that
    shares the non-zeros of evenly spaced rows (at most 4096) most evenly."""
    rows = np.sort(order[::max(1, len(order) // 4096)])
    before = np.cumsum(np.count_nonzero(X[rows], axis=0))
    ends = np.arange(16, I - 15, 16)
    return int(ends[np.argmin(np.abs(2 * before[ends - 1] - before[-1]))])


@pytest.mark.parametrize("density", (None, 0.0, 1.0))  # batches of both kinds, GEMMs, bitmask kernels
def test_feature_halves_give_the_same_bits_on_any_thread_count_and_split_by_non_zeros(density):
    # "auto" sums a first layer of 16..104 units on dense input in two halves of its features
    # (Fashion-MNIST's 784-100): thread h sums half h of every row, each thread adds the halves of
    # its rows, and thread h takes the gradient + update of half h's kernel rows. The split point,
    # chosen from the non-zeros of the model's first training call and then kept, is part of the
    # arithmetic: the same bits on 1, 2 and 3 threads, in one call or in several, with a last layer
    # by rows (right after the halves are added) or a hidden layer after the first. Calls of 16+
    # steps copy the kernel and slots into a block with padded rows and back (_blocks_copy), shorter
    # ones work in the arena: the same bits.
    rng = np.random.default_rng(20)
    for sizes, acts in (([300, 100, 10], ["relu", "softmax"]), ([300, 40, 24, 10], ["tanh", "relu", "softmax"])):
        params, layers = build(sizes, acts, seed=21)
        X, y, order = data(32 * 20 + 9, 300, 10, "softmax_xent", seed=22, density=0.4)
        X[:, 120:] *= rng.random((X.shape[0], 180)) < 0.25  # fewer non-zeros after feature 120
        X[40:80] = rng.random((40, 300)).astype(np.float32) + 0.1  # dense rows: some dense batches
        expected_split = _half_split_rule(X, order, 300)
        assert 16 <= expected_split < 150
        runs = []
        with engine_settings(density=density, parallel_work=0, split="auto"):
            for n_threads, pieces in ((1, (21,)), (2, (21,)), (3, (21,)), (2, (5, 7, 9))):
                mc, mr = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                                   OPTIMIZERS[5][1], 2, 32, n_threads)
                loss, first = 0.0, 0
                for steps in pieces:
                    loss += mc.train_steps(X, y, order, first, steps, first, 1e-3)[0]
                    assert mc._core.layout() == "features" and mc._core.half_split == expected_split
                    first += steps
                if n_threads == 2 and len(pieces) == 1:  # against the NumPy reference trainer
                    rr = mr.train_steps(X, y, order, 0, 21, 0, 1e-3)
                    np.testing.assert_allclose(loss, rr[0], rtol=2e-5)
                    np.testing.assert_allclose(mc.params, mr.params, rtol=1e-4, atol=2e-5)
                runs.append((loss if len(pieces) == 1 else None, mc.params.copy(), mc.evaluate(X, y, 64),
                             [s.copy() for s in mc.slots[:2]]))
        for loss, p, ev, slots in runs[1:]:
            assert loss is None or loss == runs[0][0]
            np.testing.assert_array_equal(p, runs[0][1])
            assert ev == runs[0][2]
            for a, b in zip(slots, runs[0][3]):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("density", (0.0, 1.0))
def test_deep_stacks_are_bitwise_the_same_on_one_and_two_threads(density):
    # hidden layers wider than 16 units take their input gradient through W^T and the fixed-order GEMM
    # (not a split BLAS call), so a team of 2 computes every bit as one thread does: the engine may
    # pick its team size call by call without changing a seeded run
    with engine_settings(density=density, parallel_work=0):
        params, layers = build([300, 64, 48, 10], ["relu", "tanh", "softmax"], seed=8)
        X, y, order = data(32 * 20 + 3, 300, 10, "softmax_xent", seed=9, density=0.3)
        runs = []
        for n_threads in (1, 2):
            mc, _ = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                              OPTIMIZERS[5][1], 2, 32, n_threads)
            res = mc.train_steps(X, y, order, 0, 21, 0, 1e-3)
            runs.append((res[0], mc.params.copy(), mc.evaluate(X, y, 64)))
        assert runs[0][0] == runs[1][0] and runs[0][2] == runs[1][2]
        np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_long_calls_in_timed_pieces_give_the_same_bits_as_one_call():
    # a call of >= 2 * ADAPT_STEPS steps on a team runs in pieces, each on the team or on one thread;
    # parameters, slots, the loss sum and the metric sums are bitwise those of one thread in one call,
    # including with Dropout (its uniforms are sliced per piece)
    with engine_settings(parallel_work=0):
        params, layers = build([100, 40, 10], ["relu", "softmax"], seed=10)
        layers[0] = layers[0] + ((("dropout", 0.25),),)
        steps = 2 * C.ADAPT_STEPS + 37
        X, y, order = data(16 * steps, 100, 10, "softmax_xent", seed=11, density=0.5)
        U = [np.random.default_rng(12).random((16 * steps, 40), dtype=np.float32)]
        runs = []
        for n_threads in (1, 2, 2):
            mc, _ = make_pair(params, layers, "softmax_xent", ["sparse_categorical_accuracy"], "adam",
                              OPTIMIZERS[5][1], 2, 16, n_threads)
            res = mc.train_steps(X, y, order, 0, steps, 0, 1e-3, U)
            runs.append((res[0], res[1].tolist(), res[2], mc.params.copy(), [s.copy() for s in mc.slots[:2]]))
        for run in runs[1:]:
            assert run[:3] == runs[0][:3]
            np.testing.assert_array_equal(run[3], runs[0][3])
            for a, b in zip(run[4], runs[0][4]):
                np.testing.assert_array_equal(a, b)
        assert runs[0][2] == 16 * steps


@pytest.mark.parametrize("density", (0.0, 1.0))
def test_a_four_unit_share_of_a_layer_is_bitwise_its_columns_of_the_whole(density):
    # 20 units split 16 + 4 ("cols"): thread 1's 4-unit block takes the GEMM's narrow edge path,
    # thread 0 alone computes those columns in a 16 + overlapping 8 tiling
    with engine_settings(density=density, parallel_work=0, split="cols"):
        params, layers = build([800, 20, 10], ["relu", "softmax"], seed=12)
        X, y, order = data(32 * 6, 800, 10, "softmax_xent", seed=13, density=0.3)
        runs = []
        for n_threads in (1, 2):
            mc, mr = make_pair(params, layers, "softmax_xent", [], "sgd", {}, 0, 32, n_threads)
            rc, rr = run_pair(mc, mr, X, y, order, 6, 0.05)
            assert_same_training(rc, rr, mc, mr)
            runs.append((rc[0], mc.params.copy()))
        assert runs[0][0] == runs[1][0]
        np.testing.assert_array_equal(runs[0][1], runs[1][1])
