"""random.pyx (PCG64 float32 uniforms) against _reference: the same numbers and generator state as NumPy."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import random as C


def draw_both(seed, shape, warmup):
    """Fill `shape` from two generators in the same state (after `warmup` float32 draws, odd counts
    leaving half a 64-bit output buffered), compiled and twin; return both arrays and generators."""
    gens = [np.random.default_rng(seed) for _ in range(2)]
    for g in gens:
        g.random(warmup, dtype=np.float32)
    outs = [np.full(shape, -1.0, np.float32) for _ in range(2)]
    for mod, g, out in zip((C, R), gens, outs):
        assert mod.generator_random_f32(g, out) is out
    return outs, gens


@pytest.mark.parametrize("shape", [(0,), (1,), (2,), (3,), (7, 5), (48, 128), (100001,)])
@pytest.mark.parametrize("warmup", [0, 1, 4, 9])
def test_same_numbers_and_state_as_numpy(shape, warmup):
    (c, r), (gc, gr) = draw_both(123 + warmup, shape, warmup)
    np.testing.assert_array_equal(c, r)
    assert gc.bit_generator.state == gr.bit_generator.state
    # what follows is the same too: float32, float64 and integers
    np.testing.assert_array_equal(gc.random(5, dtype=np.float32), gr.random(5, dtype=np.float32))
    np.testing.assert_array_equal(gc.random(3), gr.random(3))
    np.testing.assert_array_equal(gc.integers(0, 1 << 40, 4), gr.integers(0, 1 << 40, 4))


def test_values_in_unit_interval_on_24_bit_grid():
    (c, _), _ = draw_both(7, (200000,), 0)
    assert c.min() >= 0.0 and c.max() < 1.0
    np.testing.assert_array_equal(c * 2.0 ** 24, np.floor(c * 2.0 ** 24))


def test_other_bit_generators_take_numpys_draw():
    gens = [np.random.Generator(np.random.MT19937(5)) for _ in range(2)]
    out = [np.empty(11, np.float32) for _ in range(2)]
    C.generator_random_f32(gens[0], out[0])
    gens[1].random(dtype=np.float32, out=out[1])
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("mod", [C, R], ids=["compiled", "reference"])
def test_bad_input(mod):
    with pytest.raises(TypeError, match="argument `generator` must be a numpy.random.Generator; received"):
        mod.generator_random_f32(np.random.RandomState(0), np.empty(3, np.float32))
    with pytest.raises(TypeError, match="argument `out` must be a writeable C-contiguous float32 array"):
        mod.generator_random_f32(np.random.default_rng(0), np.empty(3, np.float64))
    with pytest.raises(TypeError, match="argument `out` must be a writeable C-contiguous float32 array"):
        mod.generator_random_f32(np.random.default_rng(0), np.empty((4, 4), np.float32)[:, ::2])
