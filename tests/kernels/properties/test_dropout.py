"""dropout_forward / dropout_backward and generator_random_f32: compiled vs twin, bit for bit (dropout
only compares and scales; the uniforms are the generator's own numbers)."""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled, dim,  # noqa: E402
                     prop_settings, twin, values)

KERNELS = ("dropout_forward", "dropout_backward", "generator_random_f32")
SHAPES = st.one_of(st.lists(dim(30), min_size=1, max_size=3), st.tuples(st.integers(200, 700), dim(70)).map(list))
RATES = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), st.floats(0, 1))


@prop_settings()
@given(shape=SHAPES, dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT), rate=RATES,
       special=st.sampled_from([0.0, 0.05, 0.4]), seed=SEEDS, n_threads=THREADS)
def test_dropout_forward(shape, dtype, layouts, rate, special, seed, n_threads):
    rng = np.random.default_rng(seed)
    X = arrange(values(rng, shape, dtype, special), layouts[0])
    U = rng.random(shape).astype(dtype)
    U[rng.random(shape) < 0.1] = dtype(1 - rate)  # exactly at the keep threshold
    U = arrange(U, layouts[1])
    with np.errstate(all="ignore"):
        out_w, mask_w = twin("dropout_forward")(X, U, rate)
    out_g, mask_g = compiled("dropout_forward")(X, U, rate, n_threads=n_threads)
    assert mask_g.dtype == np.uint8 and np.array_equal(mask_g, mask_w)
    assert_same(out_g, out_w, dtype, rtol=0, atol=0, what="dropout out")


@prop_settings()
@given(shape=SHAPES, dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT), rate=RATES, bool_mask=st.booleans(),
       special=st.sampled_from([0.0, 0.05, 0.4]), seed=SEEDS, n_threads=THREADS)
def test_dropout_backward(shape, dtype, layouts, rate, bool_mask, special, seed, n_threads):
    rng = np.random.default_rng(seed)
    dY = arrange(values(rng, shape, dtype, special), layouts[0])
    mask = arrange((rng.random(shape) < 0.6).astype(bool if bool_mask else np.uint8), layouts[1])
    with np.errstate(all="ignore"):
        want = twin("dropout_backward")(dY, mask, rate)
    got = compiled("dropout_backward")(dY, mask, rate, n_threads=n_threads)
    assert_same(got, want, dtype, rtol=0, atol=0, what="dropout dX")


@prop_settings(0.3)
@given(rate=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda r: not 0 <= r <= 1),
                      st.just(float("nan"))))
def test_a_rate_outside_0_1_is_refused_by_both(rate):
    X = np.ones(3)
    for kernel in (compiled, twin):
        with pytest.raises(ValueError, match="`rate`"):
            kernel("dropout_forward")(X, X, rate)
        with pytest.raises(ValueError, match="`rate`"):
            kernel("dropout_backward")(X, np.ones(3, np.uint8), rate)


@prop_settings()
@given(shape=st.lists(dim(40), max_size=3), seed=SEEDS, draws=st.integers(1, 3),
       bit_generator=st.sampled_from(["PCG64", "Philox", "SFC64"]))
def test_generator_random_f32(shape, seed, draws, bit_generator):
    make = lambda: np.random.Generator(getattr(np.random, bit_generator)(seed))  # noqa: E731
    gc, gr = make(), make()
    for _ in range(draws):
        got = compiled("generator_random_f32")(gc, np.empty(shape, np.float32))
        want = twin("generator_random_f32")(gr, np.empty(shape, np.float32))
        assert got.tobytes() == want.tobytes()
    assert repr(gc.bit_generator.state) == repr(gr.bit_generator.state)  # both advanced alike


@prop_settings(0.3)
@given(layout=st.sampled_from(["F", "strided", "reversed", "readonly"]), dtype=st.sampled_from(["f4", "f8"]))
def test_generator_random_f32_refuses_the_same_out_as_the_twin(layout, dtype):
    out = arrange(np.zeros((3, 4), dtype), layout)
    if dtype == "f4" and out.flags.c_contiguous and out.flags.writeable:
        return
    for kernel in (compiled, twin):
        with pytest.raises(TypeError, match="`out`"):
            kernel("generator_random_f32")(np.random.default_rng(0), out)


@prop_settings(0.3)
@given(shape=st.tuples(st.integers(1, 6), st.integers(2, 5)), dtype=DTYPES,
       layout=st.sampled_from(["F", "strided", "reversed", "readonly"]), which=st.sampled_from(["out", "mask"]))
def test_a_buffer_that_cannot_be_written_in_place_is_refused_by_both(shape, dtype, layout, which):
    bad = arrange(np.zeros(shape, dtype if which == "out" else np.uint8), layout)
    if bad.flags.c_contiguous and bad.flags.writeable:
        return
    X = np.ones(shape, dtype)
    both_refuse("dropout_forward", which, X, X / 2, 0.5, **{which: bad})
    if which == "out":
        both_refuse("dropout_backward", "out", X, np.ones(shape, np.uint8), 0.5, out=bad)
