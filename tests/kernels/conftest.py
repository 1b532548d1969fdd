"""Fixtures and helpers local to the kernel tests (compiled kernels vs the NumPy twin)."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R

DTYPES = (np.float32, np.float64)
N_THREADS = (1, 2)
LAYOUTS = ("contiguous", "strided", "readonly")


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture(params=N_THREADS, ids=lambda n: f"threads{n}")
def n_threads(request):
    return request.param


@pytest.fixture(params=LAYOUTS)
def layout(request):
    return request.param


def arrange(a, layout):
    """The same values as ``a`` in the given memory layout (a fresh array)."""
    a = np.array(a, copy=True)
    if layout == "strided":  # every other element of a wider array: not C-contiguous
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype) if a.ndim else a
        wide[..., ::2] = a
        out = wide[..., ::2]
        assert not out.flags.c_contiguous or out.size <= 1
        return out
    if layout == "readonly":
        a.setflags(write=False)
    return a


def tol(dtype):
    """Compiled vs reference: float32 rtol=1e-5 atol=1e-6, float64 rtol=1e-12."""
    return {"rtol": 1e-5, "atol": 1e-6} if np.dtype(dtype) == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def assert_twin(actual, expected, dtype, err_msg=""):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, err_msg
    if actual.dtype.kind == "f":
        assert actual.dtype == np.dtype(dtype), err_msg
    np.testing.assert_allclose(actual, expected, err_msg=err_msg, **tol(dtype))


def fd_gradient(f, x, eps=1e-4):
    """4th-order central differences of the scalar f() w.r.t. the float64 array x (perturbed in place)."""
    flat = x.reshape(-1)
    grad = np.zeros(x.size)
    for i in range(flat.size):
        orig = flat[i]
        vals = []
        for step in (2.0, 1.0, -1.0, -2.0):
            flat[i] = orig + step * eps
            vals.append(float(f()))
        flat[i] = orig
        grad[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * eps)
    return grad.reshape(x.shape)


@pytest.fixture
def reference():
    return R
