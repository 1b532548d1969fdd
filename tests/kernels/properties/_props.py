"""Shared strategies and checks for the property tests: every compiled kernel against its NumPy twin.

Hypothesis draws the shapes (0, 1, odd and larger), the dtype, the memory layout of each input,
the special values sprinkled in (NaN, +-inf, huge, tiny, subnormal, -0.0) and the thread count
(1, 2, 3); the values themselves come from a NumPy generator seeded by hypothesis, so an example
stays cheap and a failure is rebuilt from the printed arguments. The number of examples comes from
the hypothesis profile (tests/conftest.py: "ci" by default, "long" for local fuzzing).
"""
import functools

import numpy as np
from hypothesis import settings, strategies as st

from fastnn import _kernels

DTYPES = st.sampled_from([np.float32, np.float64])
THREADS = st.integers(1, 3)
# C: a fresh C-contiguous array; F: Fortran order; strided: every other column of a wider array;
# reversed: negative strides; readonly: C-contiguous with setflags(write=False).
LAYOUTS = ("C", "F", "strided", "reversed", "readonly")
LAYOUT = st.sampled_from(LAYOUTS)
SEEDS = st.integers(0, 2**32 - 1)


def examples(fraction=1.0):
    """A share of the profile's examples, for tests whose examples cost more than most."""
    return max(1, int(settings.default.max_examples * fraction))


def prop_settings(fraction=1.0):
    return settings(max_examples=examples(fraction))


@functools.lru_cache(maxsize=None)
def _compiled_namespace():
    return _kernels._load_compiled()


def compiled(name):
    """The compiled kernel `name` (whatever FASTNN_KERNELS selects for the framework)."""
    return _compiled_namespace()[name]


def twin(name):
    return _kernels.twin(name)


def dim(max_size=40):
    """A dimension: often an edge (0, 1, 2, 3, 5, 7), else anything up to max_size."""
    return st.one_of(st.sampled_from((0, 1, 2, 3, 5, 7)), st.integers(0, max_size))


def rows_cols(max_rows=40, max_cols=40, big_rows=300, big_cols=70):
    """(rows, cols), sometimes large enough for the kernels to use several threads."""
    small = st.tuples(dim(max_rows), dim(max_cols))
    big = st.tuples(st.integers(big_rows // 2, big_rows), st.integers(big_cols // 2, big_cols))
    return st.one_of(small, small, small, big)


# ----------------------------------------------------------------------------------- values
def _pool(dtype, extreme):
    fi = np.finfo(dtype)
    huge = float(fi.max) if extreme else (1e15 if dtype == np.float32 else 1e150)
    return np.array([np.nan, np.inf, -np.inf, huge, -huge, fi.tiny, -fi.tiny, fi.smallest_subnormal,
                     -fi.smallest_subnormal, -0.0, 0.0, 1.0, -1.0], dtype=dtype)


def values(rng, shape, dtype, special=0.0, extreme=True, scale=1.0, low=None, high=None, nonnegative=False):
    """Random values of `shape`: standard normal * scale (or uniform in [low, high)); a `special`
    fraction replaced by NaN, inf, huge (finfo.max when `extreme`, else a value whose sums of
    products cannot overflow), tiny, subnormal and signed zeros (only the non-negative ones, and NaN,
    when `nonnegative`: probabilities)."""
    if low is not None:
        a = rng.uniform(low, high, shape)
    else:
        a = rng.standard_normal(shape) * scale
    a = a.astype(dtype)
    if special and a.size:
        pick = rng.random(shape) < special
        pool = _pool(dtype, extreme)
        if nonnegative:
            pool = pool[~(pool < 0) & ~np.signbit(pool)]
        a[pick] = pool[rng.integers(0, pool.size, int(pick.sum()))]
    return a


def arrange(a, layout):
    """The same values as `a` in a memory layout (a fresh array, or a view of one)."""
    a = np.array(a, copy=True)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if layout == "reversed" and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    if layout == "readonly":
        a.setflags(write=False)
    return a


def contiguous_writeable(a):
    return a.flags.c_contiguous and a.flags.writeable


# ----------------------------------------------------------------------------------- checks
def tolerance(dtype):
    """Compiled vs twin, per dtype (STYLE.md habit 3; float64 a little looser for vector exp/tanh)."""
    return (1e-5, 1e-6) if np.dtype(dtype) == np.float32 else (1e-12, 1e-13)


def assert_same(got, want, dtype=None, rtol=None, atol=None, bound=None, what=""):
    """Shapes (and float dtypes) equal; NaN exactly where the twin has NaN, +-inf where it has +-inf;
    finite values within rtol * |want| + atol (+ eps * 4 * bound, the rounding bound of a sum of products
    whose absolute terms add up to `bound`)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != twin's {want.shape}"
    if want.dtype.kind == "f":
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != twin's {want.dtype}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    dtype = np.dtype(dtype or want.dtype)
    r, a = tolerance(dtype)
    rtol = r if rtol is None else rtol
    atol = a if atol is None else atol
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_g, nan_w), (
        f"{what}: NaN at {np.argwhere(nan_g & ~nan_w)[:5].tolist()} where the twin has none, missing at "
        f"{np.argwhere(nan_w & ~nan_g)[:5].tolist()}")
    inf_g, inf_w = np.where(np.isinf(got), np.sign(got), 0), np.where(np.isinf(want), np.sign(want), 0)
    assert np.array_equal(inf_g, inf_w), (
        f"{what}: infinities differ at {np.argwhere(inf_g != inf_w)[:5].tolist()}: "
        f"{got[inf_g != inf_w][:5]} vs twin {want[inf_g != inf_w][:5]}")
    with np.errstate(all="ignore"):
        _check_finite(got, want, dtype, rtol, atol, bound, what)


def _check_finite(got, want, dtype, rtol, atol, bound, what):
    finite = np.isfinite(want)
    limit = rtol * np.abs(want.astype(np.float64)) + atol
    if bound is not None:
        b = np.broadcast_to(np.asarray(bound, dtype=np.float64), want.shape)
        limit = limit + 4 * float(np.finfo(dtype).eps) * np.where(np.isfinite(b), b, 0)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = finite & ~(err <= limit)
    assert not bad.any(), (f"{what}: {int(bad.sum())} values differ, e.g. at {np.argwhere(bad)[:3].tolist()}: "
                           f"{got[bad][:3]} vs twin {want[bad][:3]} (limit {limit[bad][:3]})")


def same_outcome(run_compiled, run_twin):
    """Call both; if either raises, both must raise the same exception class. Returns (got, want) or
    (exc_compiled, exc_twin)."""
    try:
        got = run_compiled()
    except Exception as exc:  # noqa: BLE001 (compared below)
        got = exc
    try:
        want = run_twin()
    except Exception as exc:  # noqa: BLE001
        want = exc
    if isinstance(got, Exception) or isinstance(want, Exception):
        assert type(got) is type(want), f"compiled gave {got!r}, the twin {want!r}"
    return got, want


def both_refuse(name, argument, *args, **kwargs):
    """The compiled kernel and its twin both refuse a buffer they would write (out, an accumulator, an
    optimizer slot) that is not a writeable C-contiguous array, with a ValueError naming it."""
    for kernel in (compiled(name), twin(name)):
        try:
            kernel(*args, **kwargs)
        except ValueError as exc:
            message = str(exc)
            assert message.startswith(f"{name}: argument `{argument}`"), message
            assert "writeable C-contiguous" in message, message
        else:
            raise AssertionError(f"{kernel.__module__}.{name} accepted a {argument} it cannot write in place")
