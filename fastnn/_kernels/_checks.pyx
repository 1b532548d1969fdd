"""Input checks shared by the kernel wrappers (see _checks.pxd)."""
import numpy as np

from fastnn.utils.validation import describe, shape_str


cdef object float_array(str owner, str name, object x, int ndim, object dtype=None):
    """x as a C-contiguous float32/float64 array of `ndim` dims (a copy only if needed).

    dtype None accepts either float dtype; otherwise x must have exactly `dtype`.
    ndim -1 accepts any number of dimensions >= 1.
    """
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if dtype is None:
        if arr.dtype != np.float32 and arr.dtype != np.float64:
            raise ValueError(f"{owner}: argument `{name}` must be a float32 or float64 array; "
                             f"received {describe(x)}.")
    elif arr.dtype != dtype:
        raise ValueError(f"{owner}: argument `{name}` must have dtype {np.dtype(dtype).name} "
                         f"(the dtype of the other inputs); received {describe(x)}.")
    if (ndim >= 0 and arr.ndim != ndim) or arr.ndim < 1:
        raise ValueError(f"{owner}: argument `{name}` must be a {ndim if ndim >= 0 else 'N'}-D array; "
                         f"received {describe(x)}.")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


cdef object same_shape(str owner, str name, object x, tuple shape, object dtype):
    """x as a C-contiguous array of exactly `shape`, converted to `dtype` if it is
    another real numeric dtype (labels may be int or float64 for float32 logits)."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{owner}: argument `{name}` must be a numeric array; received {describe(x)}.")
    if arr.shape != shape:
        raise ValueError(f"{owner}: argument `{name}` must have shape {shape_str(shape)}; "
                         f"received {describe(x)}.")
    if arr.dtype != dtype or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=dtype)
    return arr


cdef object finite_labels(str owner, str name, object y):
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{owner}: argument `{name}` must be finite; received {describe(y)} "
                         "containing NaN or inf.")
    return y


cdef object class_ids(str owner, str name, object y, Py_ssize_t B, Py_ssize_t K):
    """1-D labels -> C-contiguous intp class ids in [0, K).

    Integer dtypes, or floats holding whole numbers (Keras accepts float labels
    for the sparse losses); anything else, or an id outside [0, K), raises.
    """
    arr = y if isinstance(y, np.ndarray) else np.asarray(y)
    if arr.shape != (B,):
        raise ValueError(f"{owner}: argument `{name}` (class ids) must have shape {shape_str((B,))}; "
                         f"received {describe(y)}.")
    if arr.dtype.kind == "f":
        finite_labels(owner, name, arr)
        if B and not (arr == np.floor(arr)).all():
            raise ValueError(f"{owner}: argument `{name}` holds class ids but has non-integer values; "
                             f"received {describe(y)}.")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{owner}: argument `{name}` must hold integer class ids; received {describe(y)}.")
    if B:
        lo = arr.min()
        hi = arr.max()
        if lo < 0 or hi >= K:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{owner}: argument `{name}` holds class ids that must be in [0, {K}) for "
                             f"{K} classes; received an id of {bad!r}.")
    if arr.dtype != np.intp or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.intp)
    return arr


cdef object out_array(str owner, str name, object out, tuple shape, object dtype):
    """A fresh array, or `out` if it is a writeable C-contiguous array of that shape and dtype."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{owner}: argument `{name}` must be a NumPy array or None; received {describe(out)}.")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"{owner}: argument `{name}` must be an array of shape {shape_str(shape)} and "
                         f"dtype {np.dtype(dtype).name}; received {describe(out)}.")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{owner}: argument `{name}` must be a writeable C-contiguous array; "
                         f"received a {'read-only' if not out.flags.writeable else 'non-contiguous'} "
                         f"{describe(out)}.")
    return out


cdef object inplace_array(str owner, str name, object a, Py_ssize_t n, object dtype):
    """A buffer updated in place: writeable, C-contiguous, `n` elements, `dtype`."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{owner}: argument `{name}` must be a NumPy array updated in place; "
                         f"received {describe(a)}.")
    if a.dtype != dtype or a.size != n:
        raise ValueError(f"{owner}: argument `{name}` must be a {np.dtype(dtype).name} array of "
                         f"{n} elements (like the parameters); received {describe(a)}.")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{owner}: argument `{name}` is updated in place and must be a writeable "
                         f"C-contiguous array; received {describe(a)}.")
    return a


cdef double real_number(str owner, str name, object value) except? -1:
    if isinstance(value, (str, bytes)):  # float("0.5") would accept a string silently
        raise ValueError(f"{owner}: argument `{name}` must be a real number; received {describe(value)}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: argument `{name}` must be a real number; received {describe(value)}.")
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{owner}: argument `{name}` must be finite; received {describe(value)}.")
    return v
