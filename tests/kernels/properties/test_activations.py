"""activation_forward / activation_backward (every activation, with parameters) and prelu_forward / prelu_backward:
compiled vs twin over random shapes, layouts, specials, threads."""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import example, given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled,  # noqa: E402
                     prop_settings, rows_cols, twin, values)

KERNELS = ("activation_forward", "activation_backward", "prelu_forward", "prelu_backward")
ACTIVATIONS = st.sampled_from(["linear", "relu", "sigmoid", "tanh", "softmax"])
# sigmoid and tanh are vector approximations within 2 ulp (tests/kernels/test_math.py)
RTOL = {np.float32: 1e-6, np.float64: 1e-14}


def _shape(act, rc, extra):
    """softmax works on rows of a 2-D array; the elementwise ones on any shape."""
    if act == "softmax" or extra == 0:
        return rc
    return (rc[0],) + (2,) * (extra - 1) + (rc[1],) if extra > 1 else (rc[0] * rc[1],)


@prop_settings()
@given(act=ACTIVATIONS, rc=rows_cols(), extra=st.integers(0, 2), dtype=DTYPES, layout=LAYOUT,
       special=st.sampled_from([0.0, 0.05, 0.5]), seed=SEEDS, n_threads=THREADS, use_out=st.booleans())
@example(act="relu", rc=(3, 8), extra=0, dtype=np.float32, layout="C", special=0.5, seed=0, n_threads=1,
         use_out=False)  # issue 15: the compiled ReLU turned NaN into 0
def test_activation_forward(act, rc, extra, dtype, layout, special, seed, n_threads, use_out):
    rng = np.random.default_rng(seed)
    X = arrange(values(rng, _shape(act, rc, extra), dtype, special, scale=4.0), layout)
    out = np.empty(X.shape, dtype) if use_out else None
    with np.errstate(all="ignore"):
        want = twin("activation_forward")(X, act)
    got = compiled("activation_forward")(X, act, out=out, n_threads=n_threads)
    if use_out:
        assert got is out
    assert_same(got, want, dtype, rtol=RTOL[dtype], atol=RTOL[dtype], what=f"{act} forward")


@prop_settings(0.5)
@given(act=ACTIVATIONS, rc=rows_cols(), dtype=DTYPES, seed=SEEDS, n_threads=THREADS)
@example(act="softmax", rc=(3, 0), dtype=np.float32, seed=0, n_threads=1)  # issue 15: the twin raised on 0 columns
def test_activation_forward_in_place(act, rc, dtype, seed, n_threads):
    """``out`` may be ``X`` itself (the layers apply activations in place)."""
    X = values(np.random.default_rng(seed), rc, dtype, 0.05, scale=4.0)
    with np.errstate(all="ignore"):
        want = twin("activation_forward")(X.copy(), act)
    got = compiled("activation_forward")(X, act, out=X, n_threads=n_threads)
    assert got is X
    assert_same(got, want, dtype, rtol=RTOL[dtype], atol=RTOL[dtype], what=f"{act} in place")


@prop_settings()
@given(act=ACTIVATIONS, rc=rows_cols(), extra=st.integers(0, 2), dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT),
       special=st.sampled_from([0.0, 0.05, 0.5]), from_forward=st.booleans(), seed=SEEDS, n_threads=THREADS)
def test_activation_backward(act, rc, extra, dtype, layouts, special, from_forward, seed, n_threads):
    rng = np.random.default_rng(seed)
    shape = _shape(act, rc, extra)
    # softmax's backward sums dY * Y over a row: no finfo.max there, whose overflow would depend on the
    # order of the sum rather than on the kernel
    extreme = act != "softmax"
    dY = values(rng, shape, dtype, special, extreme=extreme)
    if from_forward:  # Y as the layers pass it: the forward output
        with np.errstate(all="ignore"):
            Y = twin("activation_forward")(values(rng, shape, dtype, special, scale=4.0), act)
    else:
        Y = values(rng, shape, dtype, special, extreme=extreme, low=-0.5, high=1.5)
    dY, Y = arrange(dY, layouts[0]), arrange(Y, layouts[1])
    with np.errstate(all="ignore"):
        want = twin("activation_backward")(dY, Y, act)
    got = compiled("activation_backward")(dY, Y, act, n_threads=n_threads)
    assert_same(got, want, dtype, rtol=RTOL[dtype] * 10, atol=RTOL[dtype], what=f"{act} backward")


@prop_settings(0.3)
@given(act=ACTIVATIONS, rc=rows_cols(), dtype=DTYPES, layout=st.sampled_from(["F", "strided", "readonly"]))
def test_a_refused_out_buffer_is_named(act, rc, dtype, layout):
    """``out`` must be a writeable C-contiguous array: anything else is refused by name by both."""
    X = np.ones(rc, dtype)
    out = arrange(np.zeros(rc, dtype), layout)
    if out.flags.c_contiguous and out.flags.writeable:
        return  # (an F-ordered row or column is also C-contiguous)
    both_refuse("activation_forward", "out", X, act, out=out)
    both_refuse("activation_backward", "out", X, X, act, out=out)


# issue 14's activations, with Keras' parameters: their backward reads the input X (gelu, silu, ... cannot be
# differentiated from their output); the transcendental ones go through float64 and are rounded once
PARAMETRIZED = st.sampled_from(["elu", "selu", "gelu", ("gelu", True), "silu", "softplus", "softsign", "leaky_relu",
                                ("leaky_relu", 0.3), "relu6", "hard_sigmoid", "hard_silu", "exponential",
                                "log_softmax", ("elu", 0.5), ("relu", 0.1, 3.0, 0.0), ("relu", 0.0, None, 0.5)])


@prop_settings()
@given(act=PARAMETRIZED, rc=rows_cols(), dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT),
       special=st.sampled_from([0.0, 0.05, 0.5]), seed=SEEDS, n_threads=THREADS)
def test_parametrized_activations_forward_and_backward(act, rc, dtype, layouts, special, seed, n_threads):
    rng = np.random.default_rng(seed)
    # no finfo.max in dY: a derivative a few ulp apart then overflows on one side only. The derivatives of
    # silu and gelu's tanh form use the vectorized sigmoid/tanh (2 ulp, tests/kernels/test_math.py) inside
    # 1 + tanh(u)-like sums that cancel in the tails, hence the looser float64 tolerance.
    X = arrange(values(rng, rc, dtype, special, scale=4.0, extreme=False), layouts[0])
    dY = arrange(values(rng, rc, dtype, special, extreme=False), layouts[1])
    if act in ("silu", ("gelu", True)):
        # their derivatives' tails (|x| > ~7) are cancellation noise of order 1e-15 whose exact value depends on
        # the tanh/sigmoid's last ulp (0 in the twin, -5e-15 compiled at x = -7.2): compared with dY = 1, where
        # that noise is within the tolerance; a NaN or inf dY times it would give NaN on one side only
        dY = np.ones_like(dY)
    with np.errstate(all="ignore"):
        Y = twin("activation_forward")(X, act)
        want = twin("activation_backward")(dY, Y, act, X=X)
    got_y = compiled("activation_forward")(X, act, n_threads=n_threads)
    assert_same(got_y, Y, dtype, rtol=RTOL[dtype], atol=RTOL[dtype], what=f"{act} forward")
    got = compiled("activation_backward")(dY, Y, act, X=X, n_threads=n_threads)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert_same(got, want, dtype, rtol=tol, atol=tol, what=f"{act} backward")


@prop_settings()
@given(rc=rows_cols(), groups=st.integers(1, 3), dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT),
       special=st.sampled_from([0.0, 0.05, 0.5]), with_dalpha=st.booleans(), seed=SEEDS, n_threads=THREADS)
def test_prelu_forward_and_backward(rc, groups, dtype, layouts, special, with_dalpha, seed, n_threads):
    rng = np.random.default_rng(seed)
    B, C = rc[0], max(rc[1], 1)  # (a PReLU has at least one channel; alpha of length 0 is refused)
    X = arrange(values(rng, (B, C * groups), dtype, special, scale=4.0), layouts[0])
    dY = arrange(values(rng, (B, C * groups), dtype, special), layouts[1])
    alpha = values(rng, (C,), dtype, special / 2)
    with np.errstate(all="ignore"):
        want = twin("prelu_forward")(X, alpha)
    got = compiled("prelu_forward")(X, alpha, n_threads=n_threads)
    assert_same(got, want, dtype, rtol=0, atol=0, what="prelu forward")
    da_c = np.zeros(C, dtype) if with_dalpha else None
    da_t = np.zeros(C, dtype) if with_dalpha else None
    with np.errstate(all="ignore"):
        want = twin("prelu_backward")(dY, X, alpha, da_t)
    got = compiled("prelu_backward")(dY, X, alpha, da_c, n_threads=n_threads)
    assert_same(got, want, dtype, rtol=0, atol=0, what="prelu backward dX")
    if with_dalpha:  # float64 sums of products in the dtype, in row order on both sides
        assert_same(da_c, da_t, dtype, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * max(B, 1), what="prelu dalpha")
