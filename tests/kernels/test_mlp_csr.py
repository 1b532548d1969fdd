"""mlp.pyx with scipy CSR input (the IMDB bag-of-words path, csrc/fastnn_csr_batch.h) against
_reference.MLP, against the engine on the same matrix given dense, and across thread counts."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._kernels import mlp as C

from .test_mlp import LR, OPTIMIZERS, assert_same_training, build, make_pair


@pytest.fixture(autouse=True)
def team_always():
    """Run every call on the requested team, however small the step (the engine otherwise keeps
    small steps on one thread)."""
    previous = C._engine_parallel_work(0)
    yield
    C._engine_parallel_work(previous)


def csr_data(S, I, seed=1, density=0.05, index_dtype=np.int32, binary=True):
    """A CSR matrix with an empty row, a row with a single entry, a full row and a column that
    every row holds (as IMDB's start token), plus float labels for a sigmoid output."""
    rng = np.random.default_rng(seed)
    X = sp.random(S, I, density=density, format="csr", dtype=np.float32, random_state=seed).tolil()
    X[:, 1] = 1.0
    X[0, :] = 0.0                               # empty row
    X[1, :] = 0.0
    X[1, I - 1] = 0.5                           # a single entry, in the last feature
    X[2, :] = rng.random(I).astype(np.float32) + 0.1  # every feature
    X = sp.csr_matrix(X, dtype=np.float32)
    if binary:
        X.data[:] = 1.0
        X.data[X.indptr[2]:X.indptr[3]] = rng.random(I).astype(np.float32) + 0.1
    X.sort_indices()
    X.indptr = X.indptr.astype(index_dtype)
    X.indices = X.indices.astype(index_dtype)
    y = (rng.random((S, 1)) > 0.5).astype(np.float32)
    return X, y, rng.permutation(S)


IMDB_LIKE = ([300, 16, 16, 1], ["relu", "relu", "sigmoid"])


@pytest.mark.parametrize("index_dtype", (np.int32, np.int64), ids=("int32", "int64"))
@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("opt,hyper,n_slots", [OPTIMIZERS[k] for k in (0, 3, 5, 7)],
                         ids=("sgd", "rmsprop", "adam", "adadelta"))
def test_steps_match_reference(opt, hyper, n_slots, n_threads, index_dtype):
    params, layers = build(*IMDB_LIKE, seed=3)
    X, y, order = csr_data(150, 300, index_dtype=index_dtype)
    assert X.indices.dtype == index_dtype
    mc, mr = make_pair(params, layers, "sigmoid_bxent", ["binary_accuracy"], opt, hyper, n_slots, 32,
                       n_threads)
    rc = mc.train_steps(X, y, order, 0, 5, 0, LR[opt])
    rr = mr.train_steps(X, y, order, 0, 5, 0, LR[opt])
    assert_same_training(rc, rr, mc, mr)
    for mode in ("evaluate", "predict"):
        args = (X, y, 40) if mode == "evaluate" else (X, 40)
        out_c, out_r = getattr(mc, mode)(*args), getattr(mr, mode)(*args)
        if mode == "evaluate":
            np.testing.assert_allclose(out_c[0], out_r[0], rtol=1e-5)
            np.testing.assert_array_equal(out_c[1], out_r[1])
        else:
            np.testing.assert_allclose(out_c, out_r, rtol=1e-5, atol=1e-6)


def test_rows_of_w_without_entries_still_get_the_optimizer_update():
    """Keras' RMSprop decays every slot every step: a feature absent from the batch moves too
    (zero gradient, v *= rho), exactly as in the reference (no lazy updates)."""
    params, layers = build(*IMDB_LIKE, seed=4)
    X, y, order = csr_data(64, 300, density=0.01)
    X = X[3:]  # no full row: many features have no entry
    y, order = y[3:], np.random.default_rng(0).permutation(61)
    mc, mr = make_pair(params, layers, "sigmoid_bxent", [], "rmsprop", OPTIMIZERS[3][1], 1, 32, 2)
    mc.slots[0][:] = mr.slots[0][:] = 1.0
    mc.train_steps(X, y, order, 0, 2, 0, 1e-3)
    mr.train_steps(X, y, order, 0, 2, 0, 1e-3)
    unused = np.setdiff1d(np.arange(300), X.indices)
    assert unused.size > 10
    v = mc.slots[0][:300 * 16].reshape(300, 16)
    np.testing.assert_allclose(v[unused], 0.81, rtol=1e-6)  # decayed twice by rho = 0.9
    np.testing.assert_allclose(mc.slots[0], mr.slots[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n_threads", (1, 2))
def test_same_as_dense_input(n_threads):
    params, layers = build(*IMDB_LIKE, seed=5)
    X, y, order = csr_data(200, 300, binary=False)
    adam = OPTIMIZERS[5][1]
    m_csr, _ = make_pair(params, layers, "sigmoid_bxent", [], "adam", adam, 2, 64, n_threads)
    m_dense, _ = make_pair(params, layers, "sigmoid_bxent", [], "adam", adam, 2, 64, n_threads)
    r_csr = m_csr.train_steps(X, y, order, 0, 4, 0, 1e-3)
    r_dense = m_dense.train_steps(X.toarray(), y, order, 0, 4, 0, 1e-3)
    np.testing.assert_allclose(r_csr[0], r_dense[0], rtol=1e-5)
    np.testing.assert_allclose(m_csr.params, m_dense.params, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m_csr.evaluate(X, y, 64)[0], m_dense.evaluate(X.toarray(), y, 64)[0],
                               rtol=1e-5)


@pytest.mark.parametrize("index_dtype", (np.int32, np.int64), ids=("int32", "int64"))
def test_bitwise_the_same_for_any_thread_count(index_dtype):
    params, layers = build([500, 24, 16, 1], ["relu", "relu", "sigmoid"], seed=6)
    X, y, order = csr_data(300, 500, seed=7, index_dtype=index_dtype, binary=False)
    runs = []
    for n_threads in (1, 2, 2, 3):
        m, _ = make_pair(params, layers, "sigmoid_bxent", ["binary_accuracy"], "rmsprop", OPTIMIZERS[3][1], 1,
                         64, n_threads)
        res = m.train_steps(X, y, order, 0, 5, 0, 1e-3)
        runs.append((res[0], m.params.copy(), m.evaluate(X, y, 50)[0], m.predict(X, 50)))
    for loss, p, ev, pred in runs[1:]:
        assert loss == runs[0][0]
        np.testing.assert_array_equal(p, runs[0][1])
        assert ev == runs[0][2]
        np.testing.assert_array_equal(pred, runs[0][3])


def unsorted_rows(X, seed=0):
    """The same matrix with every row's stored values in a random order (still a valid CSR)."""
    X = X.copy()
    rng = np.random.default_rng(seed)
    for r in range(X.shape[0]):
        k0, k1 = X.indptr[r], X.indptr[r + 1]
        perm = k0 + rng.permutation(k1 - k0)
        X.indices[k0:k1], X.data[k0:k1] = X.indices[perm], X.data[perm]
    X.has_sorted_indices = False
    return X


@pytest.mark.parametrize("index_dtype", (np.int32, np.int64), ids=("int32", "int64"))
def test_rows_with_unsorted_indices(index_dtype):
    """Rows whose indices are not sorted take the tested scatter (no binary search): the same
    training as the reference, and bitwise the same on 1, 2 and 3 threads."""
    params, layers = build([500, 24, 16, 1], ["relu", "relu", "sigmoid"], seed=12)
    X, y, order = csr_data(300, 500, seed=13, index_dtype=index_dtype, binary=False)
    Xu = unsorted_rows(X)
    assert (np.diff(Xu.indices[Xu.indptr[2]:Xu.indptr[3]]) < 0).any()
    runs = []
    for n_threads in (1, 2, 3):
        mc, mr = make_pair(params, layers, "sigmoid_bxent", [], "rmsprop", OPTIMIZERS[3][1], 1, 64, n_threads)
        assert mc._csr_meta(mc._inputs("test", Xu))[0] is False
        rc = mc.train_steps(Xu, y, order, 0, 4, 0, 1e-3)
        rr = mr.train_steps(Xu, y, order, 0, 4, 0, 1e-3)
        assert_same_training(rc, rr, mc, mr)
        runs.append((rc[0], mc.params.copy()))
    for loss, p in runs[1:]:
        assert loss == runs[0][0]
        np.testing.assert_array_equal(p, runs[0][1])
    # against the same rows sorted: the same sums per kernel row, the forward in another order
    ms, _ = make_pair(params, layers, "sigmoid_bxent", [], "rmsprop", OPTIMIZERS[3][1], 1, 64, 2)
    assert ms._csr_meta(ms._inputs("test", X))[0] is True
    ms.train_steps(X, y, order, 0, 4, 0, 1e-3)
    np.testing.assert_allclose(ms.params, runs[0][1], rtol=1e-5, atol=1e-6)


def test_split_costs_count_each_feature():
    """MLP._csr_meta: whether rows are sorted (a row may start below the previous row's end), and
    the cumulative cost of kernel rows 0..f (expected values per batch + CSR_ROW_COST)."""
    X = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]], np.float32))
    params, layers = build([4, 2], ["sigmoid"], seed=0)
    m, _ = make_pair(params, layers, "sigmoid_bxent", [], "sgd", {}, 0, 2)
    rows_sorted, cum = m._csr_meta(m._inputs("test", X))
    assert rows_sorted is True
    counts = np.array([1, 2, 1, 1]) * 2 / 4  # values per feature x batch_size / rows
    np.testing.assert_allclose(cum, np.cumsum(counts + C.CSR_ROW_COST))
    flipped = sp.csr_matrix((np.ones(2, np.float32), np.array([3, 1]), np.array([0, 2])), shape=(1, 4))
    assert m._csr_meta(m._inputs("test", flipped))[0] is False


@pytest.mark.parametrize("sizes,acts,loss,tail", [
    ([500, 24, 16, 1], ["relu", "relu", "sigmoid"], "sigmoid_bxent", True),      # IMDB's shape
    ([500, 12, 9, 3], ["relu", "tanh", "softmax"], "softmax_xent", True),       # 8+ units: fastnn's GEMM
    ([500, 40, 48, 1], ["relu", "relu", "sigmoid"], "sigmoid_bxent", False),    # too wide: by units
], ids=("imdb", "softmax", "wide"))
def test_layers_after_the_first_by_rows_or_by_units(sizes, acts, loss, tail):
    """Small layers after a CSR first layer run by rows (no thread waits while one runs them); wider
    ones by units. Either way: the reference's training, and the same bits on 1, 2 and 3 threads,
    with batches of 64 rows and a last one of 12 (4 rows per thread on 3 threads)."""
    params, layers = build(sizes, acts, seed=14)
    X, y, order = csr_data(300, 500, seed=15, binary=False)
    if loss == "softmax_xent":
        y = np.random.default_rng(1).integers(0, 3, 300)
    order = order[:268]
    runs = []
    for n_threads in (1, 2, 3):
        mc, mr = make_pair(params, layers, loss, [], "rmsprop", OPTIMIZERS[3][1], 1, 64, n_threads)
        rc = mc.train_steps(X, y, order, 0, 5, 0, 1e-3)
        assert mc._core.tail_rows is tail
        rr = mr.train_steps(X, y, order, 0, 5, 0, 1e-3)
        assert_same_training(rc, rr, mc, mr)
        ev = mc.evaluate(X, y, 50)
        pred = mc.predict(X, 50)
        np.testing.assert_allclose(pred, mr.predict(X, 50), rtol=1e-5, atol=1e-6)
        runs.append((rc[0], mc.params.copy(), ev[0], pred))
    for loss_sum, p, ev, pred in runs[1:]:
        assert loss_sum == runs[0][0]
        np.testing.assert_array_equal(p, runs[0][1])
        assert ev == runs[0][2]
        np.testing.assert_array_equal(pred, runs[0][3])


def test_batch_with_only_empty_rows_and_short_last_batch():
    params, layers = build(*IMDB_LIKE, seed=8)
    X = sp.csr_matrix((37, 300), dtype=np.float32)
    y = np.ones((37, 1), np.float32)
    mc, mr = make_pair(params, layers, "sigmoid_bxent", [], "adam", OPTIMIZERS[5][1], 2, 16, 2)
    order = np.arange(37)
    rc = mc.train_steps(X, y, order, 0, 3, 0, 1e-3)  # 16 + 16 + 5 rows
    rr = mr.train_steps(X, y, order, 0, 3, 0, 1e-3)
    assert rc[2] == 37
    assert_same_training(rc, rr, mc, mr)


def test_calls_resume_and_matrix_changes_between_calls():
    params, layers = build(*IMDB_LIKE, seed=9)
    X, y, order = csr_data(100, 300)
    X2, y2, order2 = csr_data(120, 300, seed=11, density=0.2)  # more stored values per batch
    mc, mr = make_pair(params, layers, "sigmoid_bxent", [], "sgd", {}, 0, 32, 2)
    for m in (mc, mr):
        m.train_steps(X, y, order, 0, 2, 0, 0.05)
        m.train_steps(X2, y2, order2, 1, 3, 2, 0.05)
        m.train_steps(X, y, order, 2, 2, 5, 0.05)
    np.testing.assert_allclose(mc.params, mr.params, rtol=1e-4, atol=2e-5)


def test_bad_csr_input():
    params, layers = build(*IMDB_LIKE, seed=10)
    X, y, order = csr_data(64, 300)
    m, _ = make_pair(params, layers, "sigmoid_bxent", [], "sgd", {}, 0, 32)
    before = m.params.copy()
    with pytest.raises(ValueError, match="float32 CSR matrix.*float64"):
        m.train_steps(X.astype(np.float64), y, order, 0, 1, 0, 0.1)
    with pytest.raises(ValueError, match="float32 CSR matrix.*csc"):
        m.train_steps(X.tocsc(), y, order, 0, 1, 0, 0.1)
    with pytest.raises(ValueError, match=r"shape \(None, 300\).*\(64, 299\)"):
        m.train_steps(X[:, :299], y, order, 0, 1, 0, 0.1)
    bad = X.copy()
    bad.indices[5] = 300
    with pytest.raises(ValueError, match=r"column ids that must be in \[0, 300\).*300"):
        m.train_steps(bad, y, order, 0, 1, 0, 0.1)
    bad = X.copy()
    bad.indices[5] = -1
    with pytest.raises(ValueError, match=r"column ids that must be in \[0, 300\).*-1"):
        m.evaluate(bad, y, 32)
    bad = X.copy()
    bad.indptr[3] = bad.indptr[4] + 1
    with pytest.raises(ValueError, match="malformed `indptr`"):
        m.predict(bad, 32)
    bad = X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        m.train_steps(bad, y, order, 0, 1, 0, 0.1)
    with pytest.raises(ValueError, match=r"`order` holds row ids that must be in \[0, 64\)"):
        m.train_steps(X, y, order + 1, 0, 2, 0, 0.1)
    np.testing.assert_array_equal(m.params, before)


SHAPES = {
    "softmax-5-units": ([300, 5, 3], ["relu", "softmax"], "softmax_xent", False),   # O < 8: scalar loops
    "37-units": ([300, 37, 1], ["tanh", "sigmoid"], "sigmoid_bxent", False),        # O % 8 != 0
    "single-layer": ([300, 1], ["sigmoid"], "sigmoid_bxent", False),                # first layer = last
    "mse": ([300, 16, 1], ["relu", "linear"], "mse", False),
    "batch-norm-after-first": ([300, 16, 8, 1], ["relu", "relu", "sigmoid"], "sigmoid_bxent", True),
}


@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("case", list(SHAPES))
def test_other_shapes_losses_and_post_ops(case, n_threads):
    sizes, acts, loss, batch_norm = SHAPES[case]
    params, layers = build(sizes, acts, seed=2)
    if batch_norm:  # gamma, beta, moving mean, moving variance after the arena
        n, o = params.shape[0], sizes[1]
        ones, zeros = np.ones(o, np.float32), np.zeros(o, np.float32)
        params = np.concatenate([params, ones, zeros, zeros, ones])
        layers[0] = layers[0] + ((("batch_norm", n, n + o, n + 2 * o, n + 3 * o, 0.99, 1e-3),),)
    X, y, order = csr_data(150, 300, binary=False)
    if loss == "softmax_xent":
        y = np.random.default_rng(0).integers(0, 3, 150)
    elif loss == "mse":
        y = np.random.default_rng(0).standard_normal((150, 1)).astype(np.float32)
    mc, mr = make_pair(params, layers, loss, [], "adam", OPTIMIZERS[5][1], 2, 32, n_threads)
    rc = mc.train_steps(X, y, order, 0, 5, 0, 1e-2)
    rr = mr.train_steps(X, y, order, 0, 5, 0, 1e-2)
    assert_same_training(rc, rr, mc, mr)
    np.testing.assert_allclose(mc.evaluate(X, y, 40)[0], mr.evaluate(X, y, 40)[0], rtol=1e-5)
