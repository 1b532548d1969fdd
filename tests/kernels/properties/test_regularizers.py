"""l1_l2_forward / l1_l2_backward: compiled vs twin (float64 sums in different orders: compared within
their rounding bound)."""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import example, given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled, dim,  # noqa: E402
                     prop_settings, twin, values)

KERNELS = ("l1_l2_forward", "l1_l2_backward")
SHAPES = st.one_of(st.tuples(dim(40)), st.tuples(dim(30), dim(30)), st.tuples(st.integers(100, 300), dim(80)))
FACTORS = st.sampled_from([0.0, 1e-4, 0.01, 0.5])


def _bound(W, l1, l2):
    w = np.abs(W.astype(np.float64))
    w = w[np.isfinite(w)]
    return l1 * w.sum() + l2 * (w * w).sum()


@prop_settings()
@given(shape=SHAPES, dtype=DTYPES, layout=LAYOUT, l1=FACTORS, l2=FACTORS, special=st.sampled_from([0.0, 0.05, 0.4]),
       seed=SEEDS, n_threads=THREADS)
@example(shape=(30, 30), dtype=np.float32, layout="C", l1=0.0, l2=0.5, special=0.4, seed=5, n_threads=1)
def test_l1_l2_forward(shape, dtype, layout, l1, l2, special, seed, n_threads):
    W = arrange(values(np.random.default_rng(seed), shape, dtype, special, extreme=False), layout)
    with np.errstate(all="ignore"):
        want = twin("l1_l2_forward")(W, l1, l2)
    got = compiled("l1_l2_forward")(W, l1, l2, n_threads=n_threads)
    assert isinstance(got, float)
    assert_same(np.float64(got), np.float64(want), np.float64, rtol=1e-12, atol=0,
                bound=_bound(W, l1, l2) * W.size ** 0.5, what="penalty")


@prop_settings()
@given(shape=SHAPES, dtype=DTYPES, layout=LAYOUT, l1=FACTORS, l2=FACTORS, special=st.sampled_from([0.0, 0.05, 0.4]),
       seed=SEEDS, n_threads=THREADS)
@example(shape=(3, 11), dtype=np.float32, layout="C", l1=0.0, l2=0.0, special=0.05, seed=2, n_threads=1)
@example(shape=(30, 30), dtype=np.float64, layout="C", l1=0.01, l2=0.0, special=0.4, seed=5, n_threads=1)
# issue 15: a zero factor times an infinite weight gave NaN (twin: both factors 0; both twins: L1 alone)
def test_l1_l2_backward(shape, dtype, layout, l1, l2, special, seed, n_threads):
    rng = np.random.default_rng(seed)
    W = arrange(values(rng, shape, dtype, special, extreme=False), layout)
    dW0 = values(rng, shape, dtype, special / 4)
    dWc, dWr = dW0.copy(), dW0.copy()
    with np.errstate(all="ignore"):
        want = twin("l1_l2_backward")(W, l1, l2, dWr)
    got = compiled("l1_l2_backward")(W, l1, l2, dWc, n_threads=n_threads)
    assert_same(np.float64(got), np.float64(want), np.float64, rtol=1e-12, atol=0,
                bound=_bound(W, l1, l2) * W.size ** 0.5, what="penalty")
    assert_same(dWc, dWr, dtype, what="dW")


@prop_settings(0.3)
@given(shape=st.tuples(st.integers(1, 9), st.integers(2, 9)), dtype=DTYPES,
       layout=st.sampled_from(["F", "strided", "reversed", "readonly"]))
def test_a_refused_gradient_buffer_is_named(shape, dtype, layout):
    dW = arrange(np.zeros(shape, dtype), layout)
    if dW.flags.c_contiguous and dW.flags.writeable:
        return
    both_refuse("l1_l2_backward", "dW", np.ones(shape, dtype), 0.1, 0.1, dW)
