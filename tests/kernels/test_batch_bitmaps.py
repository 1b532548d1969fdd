"""The engine's gather with its non-zero bitmaps (fastnn_gather_bitmaps) against _reference.batch_bitmaps."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import dense as C


def _data(n, i, density, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, i)).astype(np.float32)
    x[rng.random((n, i)) >= density] = 0
    return x


@pytest.mark.parametrize("n_in", [1, 7, 8, 9, 63, 64, 65, 100, 784])
@pytest.mark.parametrize("batch", [1, 5, 32, 63, 64, 65, 130])
@pytest.mark.parametrize("density", [0.0, 0.2, 0.5, 1.0])
def test_matches_twin(n_in, batch, density):
    x = _data(300, n_in, density, seed=n_in * 1000 + batch)
    rows = np.random.default_rng(batch).integers(0, 300, batch)
    want = R.batch_bitmaps(x, rows)
    for parts in (1, 2, 3):  # the engine's threads each own whole 64-feature words
        got = C.batch_bitmaps(x, rows, n_threads=parts)
        for g, w, name in zip(got[:3], want[:3], ("xb", "rowbits", "featmask")):
            assert g.shape == w.shape, name
            np.testing.assert_array_equal(g, w, err_msg=f"{name}, {parts} part(s)")
        assert got[3] == want[3], f"non-zeros, {parts} part(s)"


def test_special_values():
    """NaN counts as non-zero (as C's x != 0), -0.0 as zero; the copy keeps every bit."""
    x = np.zeros((3, 70), np.float32)
    x[0, 3], x[1, 69], x[2, 10], x[2, 11], x[2, 12] = np.nan, -0.0, np.inf, -1e-30, 1e-45
    got, want = C.batch_bitmaps(x), R.batch_bitmaps(x)
    np.testing.assert_array_equal(got[0].view(np.uint32), x.view(np.uint32))
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])
    assert got[1][1, 1] == 0 and got[1][0, 0] == 1 << 3
    assert got[3] == want[3] == 4  # NaN, inf, -1e-30 and the denormal 1e-45


def test_rows_out_of_range():
    with pytest.raises(ValueError, match=r"rows must be in \[0, 4\)"):
        C.batch_bitmaps(np.ones((4, 8), np.float32), np.array([0, 4]))
