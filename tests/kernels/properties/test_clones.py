"""The SIMD clones behind the kernels (private hooks, not kernels of the twin): csrc/fastnn_gemm.h through
dense._gemm, csrc/fastnn_math.h (tanh, sigmoid) through activation_forward, csrc/fastnn_reduce.h (the
regularizers' sums) through l1_l2_*. Every clone the CPU runs, on either GEMM path, must give the portable
clone's bits over random shapes, strides and special values; _gemm must also agree with NumPy's product
within its rounding bound, with NaN and infinities where NumPy's sums put them."""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import given, strategies as st  # noqa: E402

from fastnn._kernels import activations as A  # noqa: E402
from fastnn._kernels import dense as D  # noqa: E402
from fastnn._kernels import regularizers as G  # noqa: E402

from ._props import DTYPES, SEEDS, assert_same, dim, prop_settings, values  # noqa: E402

KERNELS = ()  # no kernel of the twin: the hooks below are the clones' own
ISAS = ("portable", "avx2", "avx512")


def _clones(hook):
    """The clones this CPU runs, by capping the hook at each; the cap is restored to the best."""
    try:
        return [isa for isa in ISAS if hook(isa) == isa]
    finally:
        hook("avx512")


@pytest.fixture(autouse=True)
def _restore_hooks():
    yield
    D._gemm_isa("avx512")
    D._gemm_path("auto")
    A._math_isa("avx512")
    G._reduce_isa("avx512")


def _a_view(rng, A0, form):
    """A (M, K) as the GEMM may see it: C order, transposed storage (X^T), or a strided block."""
    if form == "C":
        return A0
    if form == "T":
        return np.ascontiguousarray(A0.T).T
    wide = np.zeros((A0.shape[0] * 2 + 1, A0.shape[1] * 3 + 2), A0.dtype)
    wide[1::2, 2::3] = A0
    return wide[1::2, 2::3]


@prop_settings(0.5)
@given(M=dim(30), N=st.one_of(dim(40), st.integers(90, 140)), K=st.one_of(dim(40), st.integers(250, 300)),
       dtype=DTYPES, form=st.sampled_from(["C", "T", "strided"]), beta=st.sampled_from([0, 1]),
       wide_c=st.booleans(), special=st.sampled_from([0.0, 0.0, 0.02]), seed=SEEDS)
def test_gemm_clones_and_paths_agree_bit_for_bit_and_with_numpy(M, N, K, dtype, form, beta, wide_c, special, seed):
    rng = np.random.default_rng(seed)
    A0 = values(rng, (M, K), dtype, special, extreme=False)
    B = values(rng, (K, N), dtype, special, extreme=False)
    C0 = values(rng, (M, N + (5 if wide_c else 0)), dtype)  # ldc > N: a column block of a wider C
    Av = _a_view(rng, A0, form)
    results = []
    for isa in _clones(D._gemm_isa):
        for path in ("direct", "blocked"):
            D._gemm_isa(isa)
            D._gemm_path(path)
            C = C0.copy()
            D._gemm(Av, B, C[:, :N], beta)
            results.append((isa, path, C))
    D._gemm_isa("avx512")
    D._gemm_path("auto")
    for isa, path, C in results[1:]:
        assert C.tobytes() == results[0][2].tobytes(), f"{isa}/{path} differs from {results[0][:2]}"
    with np.errstate(all="ignore"):
        want = A0.astype(np.float64) @ B.astype(np.float64) + (C0[:, :N] if beta else 0)
        bound = (np.nan_to_num(np.abs(A0.astype(np.float64)), posinf=0)
                 @ np.nan_to_num(np.abs(B.astype(np.float64)), posinf=0) + np.abs(C0[:, :N]))
    got = results[0][2]
    assert_same(got[:, :N], want.astype(dtype), dtype, rtol=1e-6, atol=1e-30, bound=bound, what="_gemm")
    assert got[:, N:].tobytes() == C0[:, N:].tobytes()  # nothing written beyond the block


@prop_settings(0.5)
@given(n=st.one_of(dim(70), st.integers(500, 3000)), act=st.sampled_from(["tanh", "sigmoid"]), dtype=DTYPES,
       special=st.sampled_from([0.0, 0.1, 0.5]), scale=st.sampled_from([1.0, 10.0, 100.0]), seed=SEEDS)
def test_math_clones_agree_bit_for_bit(n, act, dtype, special, scale, seed):
    X = values(np.random.default_rng(seed), (n,), dtype, special, scale=scale)
    outs = []
    for isa in _clones(A._math_isa):
        A._math_isa(isa)
        outs.append((isa, A.activation_forward(X, act, n_threads=1).tobytes()))
    assert len({bits for _, bits in outs}) == 1, [isa for isa, _ in outs]


@prop_settings(0.5)
@given(n=st.one_of(dim(70), st.integers(4000, 9000)), dtype=DTYPES, special=st.sampled_from([0.0, 0.1, 0.5]),
       l1=st.sampled_from([0.0, 0.01]), l2=st.sampled_from([0.0, 0.02]), seed=SEEDS)
def test_reduce_clones_agree_bit_for_bit(n, dtype, special, l1, l2, seed):
    rng = np.random.default_rng(seed)
    W = values(rng, (n,), dtype, special, extreme=False)
    dW0 = values(rng, (n,), dtype)
    outs = []
    for isa in _clones(G._reduce_isa):
        G._reduce_isa(isa)
        dW = dW0.copy()
        with np.errstate(all="ignore"):
            penalty = G.l1_l2_backward(W, l1, l2, dW, n_threads=1)
        outs.append((isa, np.float64(penalty).tobytes(), dW.tobytes()))
    assert len({o[1:] for o in outs}) == 1, [o[0] for o in outs]
