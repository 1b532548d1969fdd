"""csrc/fastnn_math.h (vectorized tanh and sigmoid) through activation_forward: ulp error against
higher-precision NumPy, special values, every clone bit for bit against the portable one, and an
element computed alone giving the bits it gets inside an array (the engine relies on a row's
outputs not depending on the other rows).

Float32 is checked against float64 NumPy, float64 against long double (x86's 64-bit mantissa).
Development also ran every one of the 2^32 float32 inputs through each clone (bench/README.md).
"""
import numpy as np
import pytest

from fastnn._kernels import activations as C
from fastnn._kernels import dense as D
from fastnn._kernels import losses as L

ACTS = ("tanh", "sigmoid")
# The accuracy target; measured maxima (tanh / sigmoid): float32 1.42 / 1.43 over all 2^32 inputs,
# float64 1.44 / 1.43 on 50M samples (tools/check_math.c), 1.40 / 1.40 and 1.38 / 1.33 on these inputs.
ULP_BOUND = {np.float32: 2.0, np.float64: 2.0}
WIDE = {np.float32: np.float64, np.float64: np.longdouble}
LONGDOUBLE_OK = np.finfo(np.longdouble).nmant >= 63


@pytest.fixture
def isas():
    """The clones this CPU runs (the portable one always); the cap is restored afterwards."""
    found = [isa for isa in ("portable", "avx2", "avx512") if C._math_isa(isa) == isa]
    yield found
    C._math_isa("avx512")


def _reference(x, activation):
    """The activation in the wider type (float64 for float32 input, long double for float64)."""
    w = x.astype(WIDE[x.dtype.type])
    if activation == "tanh":
        return np.tanh(w)
    e = np.exp(-np.abs(w))  # stable on both tails
    return np.where(w >= 0, 1 / (1 + e), e / (1 + e))


def _ulps(y, ref, dtype):
    """|y - ref| in units in the last place of dtype at ref (gradual underflow included)."""
    fi = np.finfo(dtype)
    _, e = np.frexp(ref)  # |ref| in [2^(e-1), 2^e)
    lowest = fi.minexp - fi.nmant
    ulp = np.ldexp(np.ones_like(ref), np.maximum(e - 1 - fi.nmant, lowest))
    return np.abs(y.astype(ref.dtype) - ref) / ulp


def _bits_sweep(dtype, n):
    """n values spread evenly over the bit patterns of every finite value of dtype, both signs."""
    if dtype == np.float32:
        bits = np.linspace(0, 0x7F7FFFFF, n // 2, dtype=np.uint64).astype(np.uint32)
    else:
        bits = np.linspace(0, 0x7FEFFFFFFFFFFFFF, n // 2, dtype=np.float64).astype(np.uint64)
    x = bits.view(dtype)
    return np.concatenate([x, -x])


def _inputs(dtype, rng):
    """The whole range (by bit pattern), dense sweeps where the formulas change or round to the ends,
    and random values of the sizes activations see."""
    sat, low = (9.2, 105.0) if dtype == np.float32 else (20.0, 746.0)
    parts = [_bits_sweep(dtype, 1_000_000),
             np.linspace(-1, 1, 200_001),                     # the odd polynomial and around 0
             np.linspace(0.5, 0.625, 50_001),                 # tanh's switch at 9/16
             np.linspace(-sat, sat, 200_001),                 # tanh up to saturation
             np.linspace(-low, low, 200_001),                 # sigmoid down to exp underflowing
             np.linspace(-low, -low + 30, 50_001),            # sigmoid's gradual underflow
             rng.standard_normal(200_000) * 3]
    return np.concatenate([p.astype(dtype) for p in parts])


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=("float32", "float64"))
def test_ulp_error(activation, dtype, rng):
    if dtype == np.float64 and not LONGDOUBLE_OK:
        pytest.skip("long double is not wider than double here")
    x = _inputs(dtype, rng)
    y = C.activation_forward(x, activation)
    with np.errstate(over="ignore", under="ignore"):
        err = _ulps(y, _reference(x, activation), dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= ULP_BOUND[dtype], f"{activation}({x[worst]!r}) = {y[worst]!r}: {err[worst]:.3f} ulp"


@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=("float32", "float64"))
def test_special_values(dtype):
    fi = np.finfo(dtype)
    tiny = fi.smallest_subnormal
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, fi.max, -fi.max, tiny, -tiny, fi.tiny * 3,
                  30.0, -30.0], dtype)
    t = C.activation_forward(x, "tanh")
    s = C.activation_forward(x, "sigmoid")
    np.testing.assert_array_equal(t, [0, 0, 1, -1, np.nan, np.nan, 1, -1, tiny, -tiny, fi.tiny * 3, 1, -1])
    assert not np.signbit(t[0]) and np.signbit(t[1])  # tanh(-0) = -0
    np.testing.assert_array_equal(s[[0, 1, 2, 3, 6, 7, 8, 9]], [0.5, 0.5, 1, 0, 1, 0, 0.5, 0.5])
    assert np.isnan(s[4]) and np.isnan(s[5])
    # exp underflows gradually: sigmoid of a large negative value is a denormal, not 0
    deep = np.array([-95.0 if dtype == np.float32 else -740.0], dtype)
    sd = C.activation_forward(deep, "sigmoid")
    assert 0 < sd[0] < fi.tiny
    np.testing.assert_allclose(sd, np.exp(deep.astype(WIDE[dtype])), rtol=0, atol=tiny)  # a denormal ulp


def _mixed(dtype, n, rng):
    """Values of every kind: normal draws at several scales, special values, random bit patterns."""
    itype = np.uint32 if dtype == np.float32 else np.uint64
    x = np.concatenate([rng.standard_normal(n) * s for s in (0.1, 1, 4, 40)]).astype(dtype)
    raw = rng.integers(0, np.iinfo(itype).max, n, dtype=itype, endpoint=True).view(dtype)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 0.5625, -0.5625, 9.125, 20.0], dtype)
    return np.concatenate([x, raw, special])


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=("float32", "float64"))
def test_every_clone_gives_the_portable_bits(activation, dtype, isas, rng):
    x = _mixed(dtype, 50_000, rng)
    results = {}
    for isa in isas:
        assert C._math_isa(isa) == isa
        results[isa] = C.activation_forward(x, activation, n_threads=1)
    for isa in isas[1:]:
        np.testing.assert_array_equal(results[isa].view(np.uint8), results["portable"].view(np.uint8),
                                      err_msg=isa)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=("float32", "float64"))
def test_alone_equals_inside_an_array(activation, dtype, isas, rng):
    """Each element's bits do not depend on its position, the array's length or the other elements
    (whole vectors, the padded tail, a single element, on every clone and with threads)."""
    x = _mixed(dtype, 60, rng)
    for isa in isas:
        C._math_isa(isa)
        full = C.activation_forward(x, activation, n_threads=1).view(np.uint8)
        alone = np.concatenate([C.activation_forward(x[i:i + 1], activation) for i in range(x.size)])
        alone = alone.view(np.uint8)
        np.testing.assert_array_equal(alone, full, err_msg=isa)
        for start, stop in ((1, 18), (3, 40), (5, 6), (7, 100)):  # every offset and tail length
            part = C.activation_forward(x[start:stop], activation).view(np.uint8)
            np.testing.assert_array_equal(part, full.reshape(x.size, -1)[start:stop].reshape(-1), err_msg=isa)
    big = _mixed(dtype, 20_000, rng)
    np.testing.assert_array_equal(C.activation_forward(big, activation, n_threads=2).view(np.uint8),
                                  C.activation_forward(big, activation, n_threads=1).view(np.uint8))


@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=("float32", "float64"))
def test_kernels_share_the_activation_bits(dtype, rng):
    """Dense's fused bias + activation and the fused sigmoid + cross-entropy's probabilities are the
    activation kernel's bits (csrc/fastnn_kernels.h's scalar sigmoid calls the same code)."""
    X = rng.standard_normal((33, 20)).astype(dtype)
    W = rng.standard_normal((20, 37)).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    Z = D.dense_forward(X, W, b, "linear")
    for activation in ACTS:
        fused = D.dense_forward(X, W, b, activation)
        np.testing.assert_array_equal(fused, C.activation_forward(Z, activation))
    K = Z.shape[1]
    _, grad = L.sigmoid_bxent_backward(Z, np.zeros_like(Z), scale=K)  # (sigmoid(z) - 0) * K / K
    np.testing.assert_array_equal(grad, C.activation_forward(Z, "sigmoid"))


def test_math_isa_hook():
    best = C._math_isa()
    assert best in ("portable", "avx2", "avx512")
    assert C._math_isa("portable") == "portable"
    C._math_isa("avx512")
    assert C._math_isa() == best
    with pytest.raises(ValueError, match="`level` must be one of"):
        C._math_isa("sse2")
