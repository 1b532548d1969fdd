"""The engine's documented behaviours, one at a time, on hand-built plans (compiled and twin alike):
CSR input, BatchNormalization's moving statistics, dropout's uniforms, frozen ops, regularizers, the
row chunks of inference, and the errors bad arguments get."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._kernels import _reference_engine as RE
from fastnn._kernels import engine as CE

ENGINES = (CE.Engine, RE.Engine)
IDS = ("compiled", "twin")


def _plan(ops, loss=("sigmoid_bxent", True), metrics=(), optimizer=("sgd", {}), n_inputs=None, dtype=np.float32,
          regularizers=()):
    return dict(dtype=dtype, n_inputs=n_inputs or ops[0][1], ops=tuple(ops), loss=loss, metrics=metrics,
                optimizer=optimizer, regularizers=regularizers)


def _arenas(n, dtype=np.float32, seed=0):
    params = (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(dtype)
    return params, np.zeros(n, dtype), [np.zeros(n, dtype) for _ in range(3)]


def _csr(rows, cols, density=0.05, seed=0, index_dtype=np.int32):
    rng = np.random.default_rng(seed)
    X = sp.random(rows, cols, density=density, format="csr", dtype=np.float32, random_state=seed)
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    return X, rng.integers(0, 2, (rows, 1)).astype(np.float32)


IMDB_LIKE = [("dense", 300, 16, 0, 4800, "relu", True), ("dense", 16, 1, 4816, 4832, "sigmoid", True)]


@pytest.mark.parametrize("index_dtype", (np.int32, np.int64), ids=("int32", "int64"))
@pytest.mark.parametrize("threads", (1, 2, 3))
def test_csr_input_with_unsorted_rows_matches_the_twin_and_dense_input(index_dtype, threads):
    X, y = _csr(90, 300, index_dtype=index_dtype)
    for r in range(0, 90, 3):  # reverse the indices of every third row: unsorted rows
        a, b = X.indptr[r], X.indptr[r + 1]
        X.indices[a:b] = X.indices[a:b][::-1].copy()
        X.data[a:b] = X.data[a:b][::-1].copy()
    plan = _plan(IMDB_LIKE, optimizer=("adam", {}))
    order = np.random.default_rng(1).permutation(90)
    results = []
    for Engine, x in ((CE.Engine, X), (RE.Engine, X), (CE.Engine, X.toarray())):
        params, grads, slots = _arenas(4833)
        e = Engine(plan, params, grads, slots, 32)
        if Engine is CE.Engine:
            e._force_threads = threads
        loss = e.train_steps(x, y, order, 0, 3, 0, 0.01)[0]
        results.append((params, loss, e.predict(x)))
    for params, loss, pred in results[1:]:
        np.testing.assert_allclose(params, results[0][0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(loss, results[0][1], rtol=1e-5)
        np.testing.assert_allclose(pred, results[0][2], rtol=1e-5, atol=1e-6)


def test_csr_kernel_rows_without_values_still_get_the_optimizer_update():
    """Keras' RMSprop decays every slot every step: a feature absent from the batch moves too (zero gradient,
    v *= rho), no lazy updates."""
    X, y = _csr(61, 300, density=0.01, seed=3)
    plan = _plan(IMDB_LIKE, optimizer=("rmsprop", {}))
    params, grads, slots = _arenas(4833)
    slots[0][:] = 1.0
    CE.Engine(plan, params, grads, slots, 32).train_steps(X, y, np.arange(61), 0, 2, 0, 1e-3)
    unused = np.setdiff1d(np.arange(300), X.indices)
    assert unused.size > 10
    np.testing.assert_allclose(slots[0][:4800].reshape(300, 16)[unused], 0.81, rtol=1e-6)  # rho = 0.9, twice


@pytest.mark.parametrize("Engine", ENGINES, ids=IDS)
def test_moving_statistics_follow_keras_and_are_not_trained(Engine):
    """moving = moving * momentum + batch * (1 - momentum) with the batch's biased variance; the optimizer
    trains gamma and beta only; a frozen op (train=False) changes nothing and normalizes with the moving
    statistics."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((16, 20)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    ops = [("dense", 20, 8, 0, 160, "relu", True), ("bn", 8, 8, 168, 176, 184, 192, 0.8, 1e-3, True),
           ("dense", 8, 3, 200, 224, "softmax", True)]
    plan = _plan(ops, loss=("softmax_xent", True), optimizer=("adam", {}))
    params, grads, slots = _arenas(227)
    params[192:200] = 1.0
    before = params.copy()
    hidden = np.maximum(X @ before[:160].reshape(20, 8) + before[160:168], 0).astype(np.float64)
    Engine(plan, params, grads, slots, 16).train_steps(X, y, np.arange(16), 0, 1, 0, 0.1)
    np.testing.assert_allclose(params[184:192], before[184:192] * 0.8 + hidden.mean(0) * 0.2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params[192:200], before[192:200] * 0.8 + hidden.var(0) * 0.2, rtol=1e-5, atol=1e-6)
    assert not slots[0][184:200].any() and not slots[1][184:200].any()
    assert not np.array_equal(params[168:184], before[168:184])  # gamma and beta trained
    frozen = [ops[0], ops[1][:9] + (False,), ops[2]]
    params2, grads2, slots2 = _arenas(227)
    params2[192:200] = 1.5
    before2 = params2.copy()
    Engine(_plan(frozen, loss=("softmax_xent", True)), params2, grads2, slots2, 16).train_steps(
        X, y, np.tile(np.arange(16), 2), 0, 2, 0, 0.1)
    np.testing.assert_array_equal(params2[168:200], before2[168:200])
    assert not np.array_equal(params2[:168], before2[:168])  # the gradient flows through to the first layer


@pytest.mark.parametrize("Engine", ENGINES, ids=IDS)
def test_dropout_uses_the_given_uniforms(Engine):
    """U >= 1 - rate drops a unit: dropping every unit cuts the gradient to the first layer; keeping every
    unit scales it by 1 / (1 - rate); at inference dropout is the identity."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((16, 20)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    ops = [("dense", 20, 8, 0, 160, "relu", True), ("dropout", 8, 0.25), ("dense", 8, 3, 168, 192, "softmax", True)]
    plan = _plan(ops, loss=("softmax_xent", True))
    params, grads, slots = _arenas(195)
    before = params.copy()
    e = Engine(plan, params, grads, slots, 16)
    e.train_steps(X, y, np.tile(np.arange(16), 2), 0, 2, 0, 0.5, uniforms=[np.full((32, 8), 0.75, np.float32)])
    np.testing.assert_array_equal(params[:168], before[:168])
    assert not np.array_equal(params[168:], before[168:])
    params[:] = before
    loss = e.train_steps(X, y, np.arange(16), 0, 1, 0, 0.0, uniforms=[np.zeros((16, 8), np.float32)])[0]
    scaled = before.copy()
    scaled[168:192] /= np.float32(0.75)
    plain = _plan([ops[0], ops[2]], loss=("softmax_xent", True))
    np.testing.assert_allclose(loss, Engine(plain, scaled, grads.copy(), slots, 16).evaluate(X, y)[0], rtol=1e-5)
    np.testing.assert_array_equal(e.predict(X), Engine(plain, before.copy(), grads.copy(), slots, 16).predict(X))


@pytest.mark.parametrize("Engine", ENGINES, ids=IDS)
def test_regularizers_add_their_penalty_and_gradient(Engine):
    """Keras: the loss is sum(w * loss) / n plus l1 sum|W| + l2 sum W^2 of the weights the step starts from;
    the gradient gets l1 sign(W) + 2 l2 W."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((8, 4)).astype(np.float64)
    y = rng.standard_normal((8, 1))
    ops = [("dense", 4, 1, 0, 4, "linear", True)]
    regs = ((0, 4, 0.1, 0.2),)
    params, grads, slots = _arenas(5, np.float64)
    W, b = params[:4].copy(), params[4]
    e = Engine(_plan(ops, loss=("mse", False), dtype=np.float64, regularizers=regs), params, grads, slots, 8)
    loss = e.train_steps(X, y, np.arange(8), 0, 1, 0, 0.1)[0]
    err = X @ W + b - y[:, 0]
    penalty = 0.1 * np.abs(W).sum() + 0.2 * (W * W).sum()
    assert loss == pytest.approx((err ** 2).sum() + 8 * penalty, rel=1e-12)
    grad = 2 * X.T @ err / 8 + 0.1 * np.sign(W) + 0.4 * W
    np.testing.assert_allclose(params[:4], W - 0.1 * grad, rtol=1e-12)


@pytest.mark.parametrize("chunk", (7, 16, 128))
def test_inference_bits_do_not_depend_on_the_chunk_or_threads(chunk, monkeypatch):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 100)).astype(np.float32)
    X[rng.random(X.shape) < 0.7] = 0
    y = rng.integers(0, 10, 300)
    ops = [("dense", 100, 40, 0, 4000, "relu", True), ("bn", 40, 40, 4040, 4080, 4120, 4160, 0.9, 1e-3, True),
           ("dense", 40, 10, 4200, 4600, "softmax", True)]
    plan = _plan(ops, loss=("softmax_xent", True), metrics=("sparse_categorical_accuracy",))
    params, grads, slots = _arenas(4610)
    params[4160:4200] = 1.0
    reference = CE.Engine(plan, params, grads, slots, 32)
    want, want_eval = reference.predict(X), reference.evaluate(X, y)
    monkeypatch.setitem(CE.TUNABLES, "infer_chunk_rows", chunk)
    for threads in (1, 2, 3):
        e = CE.Engine(plan, params, grads, slots, 4)
        e._force_threads = threads
        assert e.predict(X).tobytes() == want.tobytes()
        loss, metrics = e.evaluate(X, y)
        assert loss == want_eval[0] and metrics.tobytes() == want_eval[1].tobytes()


@pytest.mark.parametrize("Engine", ENGINES, ids=IDS)
def test_bad_arguments_name_the_argument_and_change_nothing(Engine):
    ops = [("dense", 20, 8, 0, 160, "relu", True), ("dense", 8, 3, 168, 192, "softmax", True)]
    plan = _plan(ops, loss=("softmax_xent", True), metrics=("sparse_categorical_accuracy",))
    params, grads, slots = _arenas(195)
    X = np.ones((10, 20), np.float32)
    y = np.zeros(10, np.intp)
    e = Engine(plan, params, grads, slots, 4)
    before = params.copy()
    cases = [
        ((X.astype(np.float64), y), r"`X` must be a float32 array"),
        ((X[:, :19], y), r"`X` must have shape \(None, 20\)"),
        ((X, np.full(10, 3)), r"class ids that must be in \[0, 3\).*3"),
        ((X, y[:9]), r"`y` must have 10 rows"),
        ((X, np.zeros((10, 3), np.float32)), r"'sparse_categorical_accuracy' needs int class ids"),
    ]
    for (x_, y_), message in cases:
        with pytest.raises(ValueError, match=message):
            e.train_steps(x_, y_, np.arange(10), 0, 1, 0, 0.1)
    with pytest.raises(ValueError, match=r"`order` holds row ids that must be in \[0, 10\)"):
        e.train_steps(X, y, np.arange(10) + 1, 0, 3, 0, 0.1)
    with pytest.raises(ValueError, match=r"batches 0..3 of 4 rows need more than the 10 rows"):
        e.train_steps(X, y, np.arange(10), 0, 4, 0, 0.1)
    with pytest.raises(ValueError, match=r"`sample_weight` must hold one number per row"):
        e.train_steps(X, y, np.arange(10), 0, 1, 0, 0.1, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match=r"`learning_rate` must be a number"):
        e.train_steps(X, y, np.arange(10), 0, 1, 0, float("nan"))
    np.testing.assert_array_equal(params, before)
    with pytest.raises(TypeError, match=r"`params` must be a float32 NumPy array"):
        Engine(plan, params.astype(np.float64), grads, slots, 4)
    with pytest.raises(ValueError, match=r"op 1 \(dense\) reads 7 features but the op before it gives 8"):
        Engine(_plan([ops[0], ("dense", 7, 3, 168, 189, "softmax", True)]), params, grads, slots, 4)
    with pytest.raises(ValueError, match="ops overlap in the parameter arena"):
        Engine(_plan([ops[0], ("dense", 8, 3, 100, 192, "softmax", True)]), params, grads, slots, 4)
    with pytest.raises(ValueError, match="can fold the last op's activation only when it is 'sigmoid'"):
        Engine(_plan(ops, loss=("sigmoid_bxent", True)), params, grads, slots, 4)
    with pytest.raises(ValueError, match=r"`uniforms` must hold one array per dropout op"):
        Engine(_plan([ops[0], ("dropout", 8, 0.5), ops[1]], loss=("softmax_xent", True)), params, grads, slots,
               4).train_steps(X, y, np.arange(10), 0, 1, 0, 0.1)


@pytest.mark.parametrize("threads", (1, 2, 3))
def test_a_grad_hook_runs_between_gradients_and_updates(threads):
    """The hook sees each step's complete gradient before any update, may change it (here: an L2 penalty added
    by hand), and its return value joins the loss; the result equals the engine's own L2 regularizer."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 100)).astype(np.float32)
    X[rng.random(X.shape) < 0.6] = 0
    y = rng.integers(0, 3, 40)
    ops = [("dense", 100, 40, 0, 4000, "relu", True), ("dense", 40, 3, 4040, 4160, "softmax", True)]
    results = []
    for regs, use_hook in (((0, 4000, 0.0, 0.01),), False), ((), True):
        params, grads, slots = _arenas(4163)
        e = CE.Engine(_plan(ops, loss=("softmax_xent", True), optimizer=("adam", {}), regularizers=regs), params,
                      grads, slots, 8)
        e._force_threads = threads
        seen = []

        def hook(step):
            seen.append(step)
            W, dW = params[:4000], grads[:4000]
            dW += np.float32(0.02) * W
            return 0.01 * float((W.astype(np.float64) ** 2).sum())

        loss = e.train_steps(X, y, np.arange(40), 0, 5, 0, 0.01, grad_hook=hook if use_hook else None)[0]
        results.append((params, loss))
        if use_hook:
            assert seen == [0, 1, 2, 3, 4] and e.steps_done == 5
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-6)


@pytest.mark.parametrize("Engine", ENGINES, ids=IDS)
def test_a_failing_grad_hook_stops_before_that_steps_update(Engine):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((40, 10)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    params, grads, slots = _arenas(33)
    e = Engine(_plan([("dense", 10, 3, 0, 30, "softmax", True)], loss=("softmax_xent", True)), params, grads,
               slots, 8)
    reference = params.copy()
    Engine(_plan([("dense", 10, 3, 0, 30, "softmax", True)], loss=("softmax_xent", True)), reference,
           np.zeros(33, np.float32), slots, 8).train_steps(X, y, np.arange(40), 0, 2, 0, 0.1)

    def hook(step):
        if step == 2:
            raise KeyError("stop")
        return 0.0

    with pytest.raises(KeyError, match="stop"):
        e.train_steps(X, y, np.arange(40), 0, 5, 0, 0.1, grad_hook=hook)
    assert e.steps_done == 2
    np.testing.assert_allclose(params, reference, rtol=1e-6)
