"""The twelve loss kernels (six losses, forward and fused backward): compiled vs twin.

Predictions carry NaN, infinities and extreme values (the twin propagates them; so must the kernel);
labels must be finite (the compiled kernels refuse NaN/inf labels by name: tested below), sparse labels
are class ids of any integer dtype or whole floats, and sample weights and scale are finite.
"""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import example, given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled, dim,  # noqa: E402
                     prop_settings, twin, values)

LOSSES = ("softmax_xent", "sigmoid_bxent", "xent", "bxent", "mse", "mae")
KERNELS = ("softmax_xent_forward", "softmax_xent_backward", "sigmoid_bxent_forward", "sigmoid_bxent_backward",
           "xent_forward", "xent_backward", "bxent_forward", "bxent_backward", "mse_forward", "mse_backward",
           "mae_forward", "mae_backward")
assert KERNELS == tuple(f"{loss}_{d}" for loss in LOSSES for d in ("forward", "backward"))
SPARSE_OK = ("softmax_xent", "xent")
SHAPES = st.one_of(st.tuples(dim(40), st.integers(1, 12)), st.tuples(dim(40), st.integers(1, 12)),
                   st.tuples(st.integers(150, 400), st.integers(8, 20)))  # past the threading threshold


def _inputs(loss, shape, dtype, special, sparse, label_dtype, rng):
    B, K = shape
    if loss in ("xent", "bxent"):
        # probabilities: xent divides by the row's sum, which a -huge would cancel in an order-dependent way
        P = values(rng, shape, dtype, special, extreme=False, low=0.0, high=1.0, nonnegative=True)
        P[rng.random(shape) < 0.1] = 0  # the clip at eps and 1 - eps
        if loss == "bxent":
            P[rng.random(shape) < 0.1] = 1
    else:
        P = values(rng, shape, dtype, special, scale=5.0)
    if sparse:
        y = rng.integers(0, K, B).astype(label_dtype)
    elif loss in ("softmax_xent", "xent"):
        y = rng.dirichlet(np.ones(K), B) if rng.random() < 0.5 else np.eye(K)[rng.integers(0, K, B)]
    elif loss in ("sigmoid_bxent", "bxent"):
        y = rng.integers(0, 2, shape).astype(np.float64)
        y[rng.random(shape) < 0.2] = 0.3  # soft labels
    else:
        y = values(rng, shape, np.float64, scale=3.0)
    if not sparse:
        y = y.astype(label_dtype if label_dtype != "intp" else dtype)
    return P, y


CASE = dict(loss=st.sampled_from(LOSSES), shape=SHAPES, dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT),
            special=st.sampled_from([0.0, 0.0, 0.05, 0.4]), sparse=st.booleans(),
            label_dtype=st.sampled_from(["intp", "i4", "u1", "f4", "f8"]), seed=SEEDS, n_threads=THREADS)


def _draw(loss, shape, dtype, layouts, special, sparse, label_dtype, seed):
    sparse = sparse and loss in SPARSE_OK
    P, y = _inputs(loss, shape, dtype, special, sparse, label_dtype, np.random.default_rng(seed))
    return arrange(P, layouts[0]), arrange(y, layouts[1])


def _rows_tol(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@prop_settings()
@given(**CASE)
@example(loss="softmax_xent", shape=(4, 3), dtype=np.float32, layouts=("C", "C"), special=0.0, sparse=True,
         label_dtype="f4", seed=0, n_threads=1)  # issue 15: the twin failed on whole-float class ids
def test_loss_forward(loss, shape, dtype, layouts, special, sparse, label_dtype, seed, n_threads):
    P, y = _draw(loss, shape, dtype, layouts, special, sparse, label_dtype, seed)
    with np.errstate(all="ignore"):
        want = twin(f"{loss}_forward")(P, y)
        got = compiled(f"{loss}_forward")(P, y, n_threads=n_threads)  # (a loss past finfo.max warns)
    assert_same(got, want, dtype, what=f"{loss}_forward", **_rows_tol(dtype))


@prop_settings()
@given(weighted=st.booleans(), scale=st.sampled_from([1.0, 0.5, 1 / 3, 1e-3, 7.0]), **CASE)
@example(weighted=False, scale=1.0, loss="mae", shape=(2, 3), dtype=np.float32, layouts=("C", "C"), special=0.4,
         sparse=False, label_dtype="f4", seed=3, n_threads=1)  # issue 15: mae's gradient was 0 where NaN
@example(weighted=True, scale=0.5, loss="xent", shape=(4, 3), dtype=np.float64, layouts=("C", "C"), special=0.0,
         sparse=True, label_dtype="f8", seed=0, n_threads=1)  # issue 15: the same, for xent
def test_loss_backward(weighted, scale, loss, shape, dtype, layouts, special, sparse, label_dtype, seed, n_threads):
    P, y = _draw(loss, shape, dtype, layouts, special, sparse, label_dtype, seed)
    rng = np.random.default_rng(seed + 1)
    sw = rng.random(shape[0]) * 2 if weighted else None
    if weighted and shape[0]:
        sw[rng.random(shape[0]) < 0.2] = 0
    with np.errstate(all="ignore"):
        loss_w, grad_w = twin(f"{loss}_backward")(P, y, scale, sample_weight=sw)
        loss_g, grad_g = compiled(f"{loss}_backward")(P, y, scale, sample_weight=sw, n_threads=n_threads)
    assert isinstance(loss_g, float)
    tol = _rows_tol(dtype)
    assert_same(np.float64(loss_g), np.float64(loss_w), np.float64, rtol=tol["rtol"] * 10,
                atol=tol["atol"] * max(shape[0], 1), what=f"{loss}_backward loss_sum")
    assert_same(grad_g, grad_w, dtype, what=f"{loss}_backward gradient", **tol)


@prop_settings(0.3)
@given(loss=st.sampled_from(LOSSES), shape=st.tuples(st.integers(1, 6), st.integers(1, 5)), dtype=DTYPES,
       bad=st.sampled_from([np.nan, np.inf, -np.inf]), seed=SEEDS)
def test_non_finite_labels_are_refused_by_name(loss, shape, dtype, bad, seed):
    P, y = _inputs(loss, shape, dtype, 0.0, False, "f8", np.random.default_rng(seed))
    y = y.astype(dtype)
    y.flat[seed % y.size] = bad
    for kernel in (compiled(f"{loss}_forward"), compiled(f"{loss}_backward")):
        with pytest.raises(ValueError, match="`y_true` must be finite"):
            kernel(P, y)


@prop_settings(0.3)
@given(loss=st.sampled_from(LOSSES), shape=st.tuples(dim(6), st.integers(1, 5)), dtype=DTYPES,
       layout=st.sampled_from(["F", "strided", "readonly"]))
def test_a_buffer_that_cannot_be_written_in_place_is_refused_by_both(loss, shape, dtype, layout):
    P, y = _inputs(loss, shape, dtype, 0.0, False, "f8", np.random.default_rng(0))
    name = "dlogits" if loss.startswith(("softmax", "sigmoid")) else "dy_pred"
    grad, out = arrange(np.zeros(shape, dtype), layout), arrange(np.zeros(shape[0], dtype), layout)
    if not (grad.flags.c_contiguous and grad.flags.writeable):
        both_refuse(f"{loss}_backward", name, P, y, 1.0, grad)
    if not (out.flags.c_contiguous and out.flags.writeable):
        both_refuse(f"{loss}_forward", "out", P, y, out)
