"""Cache-line-aligned allocation for the parameter, gradient and optimizer-state arenas.

NumPy only guarantees 16-byte alignment. The kernels split work on fixed column
blocks and OpenBLAS picks code paths (and so rounding) by pointer alignment, so
an arena that starts at a different offset in another process can give other
bits; 64-byte alignment also keeps two threads' column ranges off one cache line.
"""
import numpy as np

ALIGNMENT = 64


def aligned_empty(shape, dtype=np.float32):
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    offset = (-raw.ctypes.data) % ALIGNMENT
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype=np.float32):
    out = aligned_empty(shape, dtype)
    out[...] = 0
    return out


def aligned_copy(array, dtype=None):
    """A 64-byte-aligned C-contiguous copy of ``array`` (cast to ``dtype`` if given)."""
    array = np.asarray(array)
    out = aligned_empty(array.shape, dtype or array.dtype)
    out[...] = array
    return out


def predictions_2d(y_pred, rows_of_last_axis=False):
    """Model outputs as a C-contiguous 2-D float array (float32 unless already float32/float64).

    (B,) becomes (B, 1). Higher ranks become (B, -1), or with ``rows_of_last_axis``
    (-1, last): one row per position, as Keras' functional losses reduce over the last axis.
    """
    y_pred = np.asarray(y_pred)
    dtype = y_pred.dtype if y_pred.dtype in (np.float32, np.float64) else np.float32
    if y_pred.ndim <= 1:
        shaped = y_pred.reshape(-1, 1)
    elif rows_of_last_axis:
        shaped = y_pred.reshape(-1, y_pred.shape[-1])
    else:
        shaped = y_pred.reshape(y_pred.shape[0], -1)
    return np.ascontiguousarray(shaped, dtype=dtype)
