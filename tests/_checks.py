"""Shared numerical checks for the tests: compiled vs reference, and gradients vs finite differences.

* ``numerical_gradient``: 4th-order central differences in float64
  (sklearn ``numerical_derivative``, thinc ``numeric_gradient``).
* ``check_layer_gradients``: a stand-alone float64 layer's ``backward`` (dX and
  every weight's ``.grad``) against finite differences of ``sum(call(x) * R)``.
* ``assert_close``: ``np.testing.assert_allclose`` with per-dtype defaults
  (float32 ``rtol=1e-5, atol=1e-6``; float64 ``rtol=1e-12``).
"""
import numpy as np

# Per-dtype tolerances for "the same computation, possibly in another order" (a few float32 ulps;
# float64 close to its rounding).
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 0.0},
}


def assert_close(actual, expected, rtol=None, atol=None, dtype=None, err_msg=""):
    """Assert ``actual`` ~= ``expected`` elementwise (shapes must match exactly).

    Tolerances default by ``dtype`` (or ``actual``'s dtype if it is float32/64;
    float32 otherwise): float32 rtol=1e-5 atol=1e-6, float64 rtol=1e-12 atol=0.
    Explicit ``rtol``/``atol`` override the defaults.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if dtype is None:
        dtype = actual.dtype if actual.dtype in TOLERANCES else np.float32
    tol = TOLERANCES[np.dtype(dtype)]
    rtol = tol["rtol"] if rtol is None else rtol
    atol = tol["atol"] if atol is None else atol
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}. {err_msg}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)


def numerical_gradient(f, x, eps=1e-4):
    """Gradient of the scalar ``f(x)`` w.r.t. the float64 array ``x`` by 4th-order central differences.

    df/dx_i ~= (-f(x + 2h e_i) + 8 f(x + h e_i) - 8 f(x - h e_i) + f(x - 2h e_i)) / (12 h),
    with error O(h^4). ``x`` is perturbed IN PLACE (and restored), so ``f`` may
    ignore its argument and read ``x`` through a view, e.g. a layer weight.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 ndarray (perturbed in place); got {type(x)} "
                        f"{getattr(x, 'dtype', None)}")
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs an array whose reshape(-1) is a view (contiguous)")
    grad = np.zeros(x.shape, dtype=np.float64)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        values = []
        for step in (2.0, 1.0, -1.0, -2.0):
            flat[i] = orig + step * eps
            values.append(float(f(x)))
        flat[i] = orig
        f2p, f1p, f1m, f2m = values
        gflat[i] = (-f2p + 8.0 * f1p - 8.0 * f1m + f2m) / (12.0 * eps)
    return grad


def check_layer_gradients(layer, x, eps=1e-5, rtol=1e-6, atol=1e-8, seed=0):
    """Check a built float64 layer's ``backward`` against finite differences.

    The scalar is ``sum(layer.call(x) * R)`` for a fixed random ``R``, so the
    upstream gradient is ``R``. Checks dX (``backward``'s return) and every
    weight's ``.grad``; ``backward`` accumulates into ``.grad``, so the grads
    are zeroed first. Returns ``(dX, {weight name: grad})`` for further checks.
    """
    if layer.dtype != np.float64:
        raise ValueError(f"check_layer_gradients needs a float64 layer; got {layer.dtype}")
    x = np.array(x, dtype=np.float64, copy=True)
    y = layer(x)  # builds (if needed) and checks the input shape
    if not layer.built:
        raise ValueError("check_layer_gradients: the layer did not build")
    R = np.random.default_rng(seed).standard_normal(np.shape(y))

    def objective(_):
        return float(np.sum(np.asarray(layer.call(x), dtype=np.float64) * R))

    for w in layer.weights:
        w.grad[...] = 0
    layer.call(x)
    dX = layer.backward(R.copy())
    analytic = {w.name: w.grad.copy() for w in layer.weights}

    numeric_dX = numerical_gradient(objective, x, eps)
    assert dX is not None, f"{layer.name}: backward returned None for dX"
    assert_close(dX, numeric_dX, rtol=rtol, atol=atol, err_msg=f"{layer.name}: dX")
    for w in layer.weights:
        assert w.value.dtype == np.float64
        numeric = numerical_gradient(objective, w.value, eps)
        assert_close(analytic[w.name], numeric, rtol=rtol, atol=atol, err_msg=f"{layer.name}: d {w.name}")
    return dX, analytic


def use_reference_engine(model):
    """Run `model`'s fit/evaluate/predict on the engine's NumPy twin instead of the compiled engine: the
    oracle the compiled runs are compared with (as FASTNN_KERNELS=reference does for a whole process)."""
    from fastnn import _kernels

    model._runner.engine_class = _kernels.twin("Engine")
    model._runner.invalidate()
    return model
