"""The four batch-normalization kernels: compiled vs twin. Statistics are float64 sums over rows in row
order in both, so NaN/inf in a column must poison exactly that column's outputs and statistics."""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import example, given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled, dim,  # noqa: E402
                     prop_settings, twin, values)

KERNELS = ("batch_norm_forward_train", "batch_norm_forward_infer", "batch_norm_backward",
           "batch_norm_update_moving")
SHAPES = st.one_of(st.tuples(st.integers(1, 40), dim(40)), st.tuples(st.integers(1, 40), dim(40)),
                   st.tuples(st.integers(200, 500), st.integers(30, 80)))  # several threads
SPECIAL = st.sampled_from([0.0, 0.0, 0.01, 0.3])
EPS = st.sampled_from([1e-3, 1e-5, 0.0, 0.1])


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


def _params(rng, F, dtype, special, with_gamma, with_beta):
    gamma = values(rng, (F,), dtype, special / 4, extreme=False) if with_gamma else None
    beta = values(rng, (F,), dtype, special / 4, extreme=False) if with_beta else None
    return gamma, beta


@prop_settings()
@given(shape=SHAPES, dtype=DTYPES, layout=LAYOUT, special=SPECIAL, eps=EPS, gb=st.tuples(st.booleans(), st.booleans()),
       constant=st.booleans(), seed=SEEDS, n_threads=THREADS)
@example(shape=(200, 30), dtype=np.float64, layout="F", special=0.0, eps=0.0, gb=(False, False), constant=True,
         seed=0, n_threads=1)  # issue 15: the twin's statistics depended on X's layout (pairwise sums for F order)
def test_batch_norm_forward_train(shape, dtype, layout, special, eps, gb, constant, seed, n_threads):
    rng = np.random.default_rng(seed)
    B, F = shape
    X = values(rng, shape, dtype, special, extreme=False, scale=3.0) + dtype(rng.normal() * 5)
    if constant and F:  # a column with no variance: eps alone keeps it finite
        X[:, 0] = X[0, 0]
        if eps == 0 and F == 1:
            # then out = (x - mean) / sqrt(var) divides rounding noise by rounding noise: +-1 or NaN depending
            # on the order of the mean's sum, which NumPy takes pairwise for a single column
            eps = 1e-3
    X = arrange(X, layout)
    gamma, beta = _params(rng, F, dtype, special, *gb)
    with np.errstate(all="ignore"):
        out_w, mean_w, var_w = twin("batch_norm_forward_train")(X, gamma, beta, eps)
        out_g, mean_g, var_g = compiled("batch_norm_forward_train")(X, gamma, beta, eps, n_threads=n_threads)
    assert_same(mean_g, mean_w, np.float64, rtol=1e-12, atol=1e-12, what="mean")
    assert_same(var_g, var_w, np.float64, rtol=1e-10, atol=1e-12, what="var")
    assert_same(out_g, out_w, dtype, what="out", **_tol(dtype))


@prop_settings(0.3)
@given(F=dim(9), dtype=DTYPES)
def test_batch_norm_forward_train_needs_a_row(F, dtype):
    for kernel in (compiled, twin):
        with pytest.raises(ValueError, match="at least one row"):
            kernel("batch_norm_forward_train")(np.zeros((0, F), dtype), None, None, 1e-3)


@prop_settings()
@given(shape=st.one_of(st.tuples(dim(40), dim(40)), st.tuples(st.integers(200, 500), st.integers(70, 90))),
       dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT), special=SPECIAL, eps=EPS,
       gb=st.tuples(st.booleans(), st.booleans()), seed=SEEDS, n_threads=THREADS)
def test_batch_norm_forward_infer(shape, dtype, layouts, special, eps, gb, seed, n_threads):
    rng = np.random.default_rng(seed)
    B, F = shape
    X = arrange(values(rng, shape, dtype, special, scale=3.0), layouts[0])
    mm = arrange(values(rng, (F,), dtype, special / 4), layouts[1])
    mv = np.abs(values(rng, (F,), dtype, special / 4, extreme=False)) + dtype(0.1)
    gamma, beta = _params(rng, F, dtype, special, *gb)
    with np.errstate(all="ignore"):
        want = twin("batch_norm_forward_infer")(X, mm, mv, gamma, beta, eps)
        got = compiled("batch_norm_forward_infer")(X, mm, mv, gamma, beta, eps, n_threads=n_threads)
    assert_same(got, want, dtype, what="out", **_tol(dtype))


@prop_settings()
@given(shape=SHAPES, dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT), special=SPECIAL, eps=EPS,
       with_gamma=st.booleans(), training=st.booleans(), accumulators=st.sampled_from(["both", "dgamma", "none"]),
       compute_dX=st.booleans(), seed=SEEDS, n_threads=THREADS)
@example(shape=(8, 18), dtype=np.float32, layouts=("C", "F"), special=0.3, eps=0.001, with_gamma=False,
         training=False, accumulators="both", compute_dX=False, seed=43, n_threads=1)  # issue 15: the same, for dY
def test_batch_norm_backward(shape, dtype, layouts, special, eps, with_gamma, training, accumulators, compute_dX,
                             seed, n_threads):
    rng = np.random.default_rng(seed)
    B, F = shape
    X = values(rng, shape, dtype, special, extreme=False, scale=2.0)
    dY = values(rng, shape, dtype, special, extreme=False)
    with np.errstate(all="ignore"):
        _, mean, var = twin("batch_norm_forward_train")(X, None, None, eps)
    if not training:  # fixed statistics, not those of X
        mean = rng.normal(size=F)
        var = rng.random(F) + 0.1
    gamma = values(rng, (F,), dtype, special / 4, extreme=False) if with_gamma else None
    X, dY = arrange(X, layouts[0]), arrange(dY, layouts[1])
    dg0, db0 = values(rng, (F,), dtype), values(rng, (F,), dtype)
    acc = {"both": (True, True), "dgamma": (True, False), "none": (False, False)}[accumulators]
    dgc, dgr = (dg0.copy(), dg0.copy()) if acc[0] else (None, None)
    dbc, dbr = (db0.copy(), db0.copy()) if acc[1] else (None, None)
    with np.errstate(all="ignore"):
        want = twin("batch_norm_backward")(dY, X, mean, var, gamma, eps, dgr, dbr, training=training,
                                           compute_dX=compute_dX)
        got = compiled("batch_norm_backward")(dY, X, mean, var, gamma, eps, dgc, dbc, training=training,
                                              compute_dX=compute_dX, n_threads=n_threads)
    tol = _tol(dtype)
    sums = dict(rtol=tol["rtol"], atol=tol["atol"] * max(B, 1))
    if acc[0]:
        assert_same(dgc, dgr, dtype, what="dgamma", **sums)
    if acc[1]:
        assert_same(dbc, dbr, dtype, what="dbeta", **sums)
    if compute_dX:
        assert_same(got, want, dtype, what="dX", **sums)
    else:
        assert got is None and want is None


@prop_settings()
@given(F=st.one_of(dim(60), st.integers(5000, 40000)), dtype=DTYPES, special=SPECIAL,
       momentum=st.sampled_from([0.0, 0.5, 0.99, 1.0]), seed=SEEDS, n_threads=THREADS)
def test_batch_norm_update_moving(F, dtype, special, momentum, seed, n_threads):
    rng = np.random.default_rng(seed)
    mm, mv = values(rng, (F,), dtype, special), np.abs(values(rng, (F,), dtype, special))
    mean, var = values(rng, (F,), np.float64, special), np.abs(values(rng, (F,), np.float64, special))
    c = [mm.copy(), mv.copy()]
    r = [mm.copy(), mv.copy()]
    with np.errstate(all="ignore"):
        twin("batch_norm_update_moving")(*r, mean, var, momentum)
        compiled("batch_norm_update_moving")(*c, mean, var, momentum, n_threads=n_threads)
    assert_same(c[0], r[0], dtype, rtol=0, atol=0, what="moving_mean")
    assert_same(c[1], r[1], dtype, rtol=0, atol=0, what="moving_var")


@prop_settings(0.3)
@given(F=st.integers(2, 9), dtype=DTYPES, layout=st.sampled_from(["strided", "reversed", "readonly"]),
       which=st.sampled_from(["dgamma", "dbeta", "dX", "out", "moving_mean", "moving_var"]))
def test_a_buffer_that_cannot_be_written_in_place_is_refused_by_both(F, dtype, layout, which):
    b = dict(dgamma=np.zeros(F, dtype), dbeta=np.zeros(F, dtype), dX=np.zeros((3, F), dtype),
             out=np.zeros((3, F), dtype), moving_mean=np.zeros(F, dtype), moving_var=np.ones(F, dtype))
    b[which] = arrange(b[which], layout)
    X = np.ones((3, F), dtype)
    if which == "out":
        both_refuse("batch_norm_forward_train", "out", X, None, None, 1e-3, out=b["out"])
        both_refuse("batch_norm_forward_infer", "out", X, b["moving_mean"], b["moving_var"], None, None, 1e-3,
                    out=b["out"])
    elif which.startswith("moving"):
        both_refuse("batch_norm_update_moving", which, b["moving_mean"], b["moving_var"], np.zeros(F), np.ones(F),
                    0.9)
    else:
        both_refuse("batch_norm_backward", which, X, X, np.zeros(F), np.ones(F), None, 1e-3, b["dgamma"],
                    b["dbeta"], dX=b["dX"])
