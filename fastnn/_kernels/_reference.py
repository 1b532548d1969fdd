"""Pure-NumPy twin of every fastnn kernel.

This module is the oracle: every compiled kernel in ``fastnn._kernels`` has a
function (or class) here with the same name, parameters and defaults, and the
tests require the two to agree. ``FASTNN_KERNELS=reference`` runs the whole
framework on it, and ``bench/`` uses it as the "careful NumPy" baseline.

Dimension legend
    B   rows in a batch          I   input features of a dense layer
    O   units of a dense layer   K   classes / output units of the loss
    N   elements of a flat parameter buffer (the arena)

Conventions
    * Inputs first, then ``out=None`` buffers, then ``n_threads=None``
      (ignored here; the compiled kernels use it).
    * ``*_backward`` kernels that produce parameter gradients ACCUMULATE
      (``+=``) into buffers the caller has zeroed.
    * Loss ``*_backward`` kernels return ``(loss_sum, grad)``: the sum over the
      batch of per-sample losses (a Python float, accumulated in float64) and
      the gradient of ``scale * loss_sum`` with respect to their input.
    * Activations are named by their Keras strings (``_engine_plan.ACTIVATIONS``), or
      ``(name, *params)`` for those with parameters (``_engine_plan.act_spec``).
"""
import math
import re

import numpy as np

from fastnn._kernels._optim_scalars import (adamax_correction, check_iteration, check_schedule, check_step,
                                               nadam_scalars)

# Argument checks and messages shared with the compiled kernels, which import them from _argchecks too.
from fastnn._kernels._argchecks import (UNPICKLE_ARGUMENT_ERROR, UNPICKLE_FRAME_ERROR, byte_view,
                                        check_multi_hot_args, check_random_f32, describe_array, flatten_array,
                                        sequence_list, sequence_tokens, token_range_error, unpickle_error)
from fastnn._kernels._engine_plan import ACTIVATIONS, LOSSES, METRICS, OPTIMIZERS  # noqa: F401 (one list of each)
from fastnn._kernels._engine_plan import act_needs_x, act_spec

# keras.backend.epsilon(): the clip used by cross-entropies on probabilities
# (K3 backend/config.py:10; K3 backend/numpy/nn.py:860-930).
EPSILON = 1e-7


def _out(out, shape, dtype, owner, name):
    """A fresh array, or ``out``: a buffer the caller gives must be writeable and C-contiguous, as the
    compiled kernels require (they write through a pointer); the twin refuses the same buffers, with the
    same words (issue 15)."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if isinstance(out, np.ndarray) and not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"{owner}: argument `{name}` must be a writeable C-contiguous array; received a "
                         f"{'read-only' if not out.flags.writeable else 'non-contiguous'} {describe_array(out)}.")
    return out


def _inplace(owner, name, a, how="updated"):
    """A buffer the kernel updates in place (gradients, optimizer slots, moving statistics): refused,
    as by the compiled kernels, unless writeable and C-contiguous. None passes (optional buffers)."""
    if isinstance(a, np.ndarray) and not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError(f"{owner}: argument `{name}` is {how} in place and must be a writeable C-contiguous "
                         f"array; received {describe_array(a)}.")
    return a


def _sigmoid(x):
    # Stable in both tails: exp() only ever sees -|x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _softmax(z):
    # Subtract the row max before exp (overflow-safe); normalise in float64. (initial=-inf: rows of no
    # columns give an empty result, as the compiled kernel, instead of a reduction error; issue 15.)
    shifted = z - z.max(axis=1, keepdims=True, initial=-np.inf)
    e = np.exp(shifted.astype(np.float64))
    return (e / e.sum(axis=1, keepdims=True)).astype(z.dtype)


def _log_softmax64(z):
    z64 = z.astype(np.float64)
    with np.errstate(invalid="ignore"):  # a row with NaN or +inf is NaN, as in the compiled log_softmax_rows
        shifted = z64 - z64.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# --------------------------------------------------------------------------- activations
_SELU_SCALE, _SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
_SQRT1_2, _INV_SQRT_2PI, _GELU_C = 0.70710678118654752440, 0.39894228040143267794, 0.79788456080286535588


def _act_params(activation):
    """(name, params, code-like key) of an activation as the compiled kernels read it (_loops.pxd act_parse)."""
    name, params = act_spec("activation", activation)
    if name == "gelu":
        return ("gelu_tanh" if params[0] else "gelu"), params
    if name == "relu" and params != (0.0, None, 0.0):
        return "relu_ex", params
    return name, params


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _relu_ex64(x, params):
    """Keras 3's relu(x, negative_slope, max_value, threshold) and its derivative (_loops.pxd relu_ex1)."""
    ns, mx, th = params
    above = x > th
    y = np.where(above, x, np.where(np.isnan(x), x, 0.0))
    g = above.astype(np.float64)
    if mx is not None:
        g = np.where((y < 0) | (y > mx), 0.0, g)
        y = np.where(y < 0, 0.0, np.where(y > mx, mx, y))
    if ns != 0:
        below = x < th
        y = np.where(below, y - ns * (th - x), y)
        g = np.where(below, g + ns, g)
    return y, g


def _act64(x, name, params):
    """elu, selu, gelu, silu, softplus, exponential and relu with parameters on float64 values (the compiled
    act_fwd1 and act_vec_range, formula for formula); the others: _act_in_dtype."""
    if name == "elu":
        return np.where(x > 0, x, params[0] * np.expm1(x))
    if name == "selu":
        return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x))
    if name == "gelu":
        return 0.5 * x * _erfc(-x * _SQRT1_2)
    if name == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(_GELU_C * (x + 0.044715 * x * x * x)))
    if name == "silu":
        return x * _sigmoid64(x)
    if name == "softplus":
        return np.where(x > 0, x, 0.0) + np.log1p(np.exp(-np.abs(x)))
    if name == "exponential":
        return np.exp(x)
    return _relu_ex64(x, params)[0]


def _act_grad64(x, name, params):
    """d act / dx of the activations _act64 computes (the compiled act_grad1)."""
    if name == "elu":
        return np.where(x > 0, 1.0, params[0] * np.exp(x))
    if name == "selu":
        return _SELU_SCALE * np.where(x > 0, 1.0, _SELU_ALPHA * np.exp(x))
    if name == "gelu":
        return 0.5 * _erfc(-x * _SQRT1_2) + x * np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    if name == "gelu_tanh":
        t = np.tanh(_GELU_C * (x + 0.044715 * x * x * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 0.134145 * x * x)
    if name == "silu":
        s = _sigmoid64(x)
        return s * (1 + x * (1 - s))
    if name == "softplus":
        return _sigmoid64(x)
    if name == "exponential":
        return np.exp(x)
    return _relu_ex64(x, params)[1]


_IN_DTYPE = ("leaky_relu", "relu6", "hard_sigmoid", "hard_silu", "softsign")


def _hard_sigmoid(x):
    y = x / 6 + 0.5  # Keras 3 backend/numpy/nn.py hard_sigmoid, in x's dtype
    return np.where(y <= 0, 0, np.where(y >= 1, 1, y)).astype(x.dtype, copy=False)


def _act_in_dtype(x, name, grad, params=()):
    """The piecewise-linear activations of issue 14 computed in x's dtype (or their derivatives), operation
    for operation as the compiled act_fwd_range / act_grad_range (and Keras, in x's dtype)."""
    t = x.dtype.type
    if name == "leaky_relu":
        a = t(params[0])
        return np.where(x > 0, t(1), a) if grad else np.where(x > 0, x, a * x)
    if name == "relu6":
        if grad:
            return np.where((x > 0) & (x < 6), t(1), t(0))
        y = np.where(x <= 0, t(0), x)
        return np.where(y >= 6, t(6), y)
    if name in ("hard_sigmoid", "hard_silu"):
        h = _hard_sigmoid(x)
        if not grad:
            return h if name == "hard_sigmoid" else x * h
        y = x / 6 + 0.5
        g = np.where((y > 0) & (y < 1), t(1.0 / 6), t(0))
        return g if name == "hard_sigmoid" else h + x * g
    if name == "softsign":
        s = np.abs(x) + 1
        return 1 / (s * s) if grad else x / s


def _erfc(x):
    from scipy.special import erfc  # scipy is a dependency (the compiled kernels' BLAS); loaded when used

    return erfc(x)


def activation_forward(X, activation, out=None, n_threads=None):
    """Y = act(X).  X (B, O) -> out (B, O).  ``activation``: a Keras name, or (name, *params) for relu
    (negative_slope, max_value, threshold), leaky_relu (negative_slope), elu (alpha), gelu (approximate)."""
    name, params = _act_params(activation)
    out = _out(out, X.shape, X.dtype, "activation_forward", "out")
    if name == "linear":
        out[...] = X
    elif name == "relu":
        np.maximum(X, 0, out=out)
    elif name == "sigmoid":
        out[...] = _sigmoid(X)
    elif name == "tanh":
        np.tanh(X, out=out)
    elif name == "softmax":
        out[...] = _softmax(X)
    elif name == "log_softmax":
        out[...] = _log_softmax64(X)
    elif name in _IN_DTYPE:
        with np.errstate(all="ignore"):
            out[...] = _act_in_dtype(X, name, False, params)
    else:
        with np.errstate(all="ignore"):  # overflow and NaN propagate as in the compiled kernel
            out[...] = _act64(X.astype(np.float64), name, params)
    return out


def activation_backward(dY, Y, activation, X=None, out=None, n_threads=None):
    """dZ from dY, the activation's OUTPUT Y and (for the activations that need it) its INPUT X.
    dY, Y, X (B, O) -> out (B, O).

    relu' = [Y > 0], sigmoid' = Y(1 - Y), tanh' = 1 - Y^2; softmax: dZ = Y * (dY - sum(dY * Y, axis=1));
    log_softmax: dZ = dY - exp(Y) * sum(dY, axis=1). Every other activation (_engine_plan.act_needs_x) reads X:
    dZ = dY * act'(X), act' in float64 rounded to the dtype once.
    """
    name, params = _act_params(activation)
    if act_needs_x(activation) and X is None:
        raise ValueError(f"activation_backward: argument `X` (the activation's input) is needed for "
                         f"{activation!r}; received None.")
    out = _out(out, dY.shape, dY.dtype, "activation_backward", "out")
    if name == "linear":
        out[...] = dY
    elif name == "relu":
        out[...] = np.where(Y > 0, dY, 0)
    elif name == "sigmoid":
        out[...] = dY * Y * (1 - Y)
    elif name == "tanh":
        out[...] = dY * (1 - Y * Y)
    elif name == "softmax":
        s = (dY.astype(np.float64) * Y).sum(axis=1, keepdims=True)
        out[...] = Y * (dY - s.astype(dY.dtype))
    elif name == "log_softmax":
        s = dY.astype(np.float64).sum(axis=1, keepdims=True).astype(dY.dtype)
        with np.errstate(all="ignore"):
            out[...] = dY - np.exp(Y.astype(np.float64)).astype(dY.dtype) * s
    elif name in _IN_DTYPE:
        with np.errstate(all="ignore"):
            out[...] = dY * _act_in_dtype(X, name, True, params)
    else:
        with np.errstate(all="ignore"):
            out[...] = dY * _act_grad64(X.astype(np.float64), name, params).astype(dY.dtype)
    return out


def _prelu_check(owner, X, alpha):
    if alpha.ndim != 1 or alpha.shape[0] == 0 or X.shape[-1] % alpha.shape[0]:
        raise ValueError(f"{owner}: argument `alpha` must be a 1-D array whose length divides the {X.shape[-1]} "
                         f"features of X; received shape {alpha.shape}.")
    return X.reshape(-1, alpha.shape[0])


def prelu_forward(X, alpha, out=None, n_threads=None):
    """Y = X where X > 0, else alpha * X (Keras PReLU).  X (B, n), alpha (C,) with C dividing n: feature j
    of a row uses alpha[j % C] -> out (B, n)."""
    flat = _prelu_check("prelu_forward", X, alpha)
    out = _out(out, X.shape, X.dtype, "prelu_forward", "out")
    with np.errstate(invalid="ignore"):
        out.reshape(flat.shape)[...] = np.where(flat > 0, flat, alpha * flat)
    return out


def prelu_backward(dY, X, alpha, dalpha, out=None, n_threads=None):
    """dX = dY where X > 0, else alpha * dY -> out (B, n), returned; dalpha (C,) += the sum over rows and
    groups of dY * min(X, 0) (float64 sums in row order; dalpha may be None)."""
    flat = _prelu_check("prelu_backward", X, alpha)
    g = dY.reshape(flat.shape)
    out = _out(out, X.shape, X.dtype, "prelu_backward", "out")
    with np.errstate(invalid="ignore"):
        if dalpha is not None:
            dalpha += (g * np.where(flat > 0, 0, flat)).sum(axis=0, dtype=np.float64).astype(dalpha.dtype)
        out.reshape(flat.shape)[...] = np.where(flat > 0, g, g * alpha)
    return out


# --------------------------------------------------------------------------- dense
def dense_forward(X, W, b, activation="linear", out=None, n_threads=None):
    """Y = act(X @ W + b).  X (B, I), W (I, O), b (O,) or None -> out (B, O)."""
    out = _out(out, (X.shape[0], W.shape[1]), X.dtype, "dense_forward", "out")
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf propagate, as in the compiled kernel
        np.matmul(X, W, out=out)
    if b is not None:
        out += b
    return activation_forward(out, activation, out=out)


def dense_backward(dZ, X, W, dW, db, dX=None, compute_dX=True, n_threads=None):
    """Gradients of a dense layer from dZ (the gradient at its pre-activation).

    dZ (B, O), X (B, I), W (I, O); accumulates dW (I, O) += X^T dZ and
    db (O,) += sum_rows(dZ) (float64 accumulation; db may be None).
    Returns dX (B, I) = dZ W^T, written to ``dX`` if given, or None when
    ``compute_dX`` is False (the first layer needs no input gradient).
    """
    _inplace("dense_backward", "dW", dW, "accumulated")
    _inplace("dense_backward", "db", db, "accumulated")
    dW += X.T @ dZ
    if db is not None:
        db += dZ.sum(axis=0, dtype=np.float64).astype(db.dtype)
    if not compute_dX:
        return None
    dX = _out(dX, X.shape, dZ.dtype, "dense_backward", "dX")
    np.matmul(dZ, W.T, out=dX)
    return dX


def gather_rows(X, index, out=None, n_threads=None):
    """out[i] = X[index[i]].  X (N, F), index (B,) intp -> out (B, F), X's dtype."""
    # row ids outside [0, N) are refused, as the compiled kernel does: np.take alone would wrap a
    # negative id to a row from the end (issue 15)
    if index.size and (index.min() < 0 or index.max() >= X.shape[0]):
        lo, hi = index.min(), index.max()
        raise ValueError(f"gather_rows: argument `index` holds row ids that must be in [0, {X.shape[0]}) for "
                         f"X of shape {tuple(X.shape)}; received a row id of {lo if lo < 0 else hi!r}.")
    out = _out(out, (index.shape[0],) + X.shape[1:], X.dtype, "gather_rows", "out")
    np.take(X, index, axis=0, out=out)
    return out


def batch_bitmaps(X, rows=None, n_threads=None):
    """The first layer's batch and its non-zero bitmaps (the engine's gather, mlp.pyx).

    X (N, I) float32, rows (B,) intp or None (all rows) -> (xb, rowbits, featmask, nnz):
    xb (B, I) = X[rows]; rowbits (B, ceil(I/64)) uint64, bit j of word w = xb[b, 64w + j] != 0;
    featmask (I, ceil(B/64)) uint64, bit r of word g = xb[64g + r, i] != 0; nnz their set bits.
    """
    xb = X if rows is None else X[rows]
    nz = xb != 0
    B, I = nz.shape
    rowbits = np.packbits(nz, axis=1, bitorder="little")
    rowbits = np.pad(rowbits, ((0, 0), (0, -I // 64 * -8 - rowbits.shape[1])))
    featmask = np.packbits(nz.T, axis=1, bitorder="little")
    featmask = np.pad(featmask, ((0, 0), (0, -B // 64 * -8 - featmask.shape[1])))
    words = [np.ascontiguousarray(bits).view("<u8").astype(np.uint64) for bits in (rowbits, featmask)]
    return np.ascontiguousarray(xb), words[0], words[1], int(np.count_nonzero(nz))


# --------------------------------------------------------------------------- dropout
# Inverted dropout (K3 backend/numpy/random.py ``dropout``): element i is kept iff U[i] < 1 - rate,
# compared in float64, and kept elements are scaled by 1 / (1 - rate); rate == 1 drops everything.
# U (uniform in [0, 1), X's shape and dtype) is drawn by the layer, so both twins see the same numbers.
def _dropout_scale(X, rate):
    return X.dtype.type(0.0 if rate >= 1.0 else 1.0 / (1.0 - float(rate)))


def dropout_forward(X, U, rate, out=None, mask=None, n_threads=None):
    """Inverted dropout.  X (N...), U (N...) uniform in [0, 1), X's dtype -> (out (N...), mask (N...) uint8).

    mask = U < 1 - rate (in float64); out = X / (1 - rate) where mask, else 0.
    """
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"dropout_forward: argument `rate` must be in [0, 1]; received {rate!r}.")
    out = _out(out, X.shape, X.dtype, "dropout_forward", "out")
    mask = _out(mask, X.shape, np.uint8, "dropout_forward", "mask")
    keep = U.astype(np.float64) < 1.0 - float(rate)
    mask[...] = keep
    out[...] = np.where(keep, X * _dropout_scale(X, rate), X.dtype.type(0))
    return out, mask


def dropout_backward(dY, mask, rate, out=None, n_threads=None):
    """dX of inverted dropout.  dY (N...), mask (N...) from dropout_forward -> out (N...) = dY / (1 - rate)
    where mask, else 0."""
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"dropout_backward: argument `rate` must be in [0, 1]; received {rate!r}.")
    out = _out(out, dY.shape, dY.dtype, "dropout_backward", "out")
    out[...] = np.where(np.asarray(mask).astype(bool), dY * _dropout_scale(dY, rate), dY.dtype.type(0))
    return out


# --------------------------------------------------------------------------- random (uniforms)
def generator_random_f32(generator, out):
    """out[...] = generator.random(dtype=np.float32) numbers, in C order, advancing the generator."""
    check_random_f32(generator, out)
    generator.random(dtype=np.float32, out=out)
    return out


# --------------------------------------------------------------------------- batch normalization
# Per-feature statistics over the rows of X (B, F) (the last axis is normalized), reduced in float64,
# two-pass, with the BIASED variance (divide by B) as K3's ``ops.moments`` and BatchNormalization use
# for both the normalization and the moving-variance update. Elementwise work is in X's dtype:
#     y  = (x - m) * a + beta,  m = float(mean), a = float(gamma / sqrt(var + eps))
#     dx = k * ((dy - mean(dy)) - xhat * mean(dy * xhat)),  k = a,  xhat = (x - m) * float(1 / sqrt(var + eps))
# (Ioffe & Szegedy 2015, sec. 3). NumPy's axis-0 sums of a C-contiguous array add rows in order, as the
# compiled loops do, so float64 results agree to the last bit.
def _bn_coefficients(mean, var, gamma, epsilon, dtype):
    """(inv_std float64, m, a) with m = float(mean), a = float(gamma * inv_std)."""
    inv_std = 1.0 / np.sqrt(var + float(epsilon))
    g = 1.0 if gamma is None else gamma.astype(np.float64)
    return inv_std, mean.astype(dtype), (g * inv_std).astype(dtype)


def _bn_normalize(out, X, mean, var, gamma, beta, epsilon):
    _, m, a = _bn_coefficients(mean, var, gamma, epsilon, X.dtype)
    if beta is None:
        out[...] = (X - m) * a
    else:
        out[...] = (X - m) * a + beta
    return out


def batch_norm_forward_train(X, gamma, beta, epsilon, out=None, mean=None, var=None, n_threads=None):
    """Normalize X with its own batch statistics.  X (B, F), gamma/beta (F,) or None ->
    (out (B, F), mean (F,) float64, var (F,) float64, biased)."""
    B, F = X.shape
    if B == 0:
        raise ValueError("batch_norm_forward_train: argument `X` must have at least one row to compute batch "
                         f"statistics; received an array of shape {X.shape}.")
    out = _out(out, X.shape, X.dtype, "batch_norm_forward_train", "out")
    mean = _out(mean, (F,), np.float64, "batch_norm_forward_train", "mean")
    var = _out(var, (F,), np.float64, "batch_norm_forward_train", "var")
    # C order, whatever X's layout: an axis-0 sum of a Fortran-ordered array is pairwise, not row by row,
    # and the statistics must not depend on the layout (issue 15)
    X64 = np.ascontiguousarray(X, dtype=np.float64)
    mean[...] = X64.sum(axis=0) / B
    var[...] = ((X64 - mean) ** 2).sum(axis=0) / B
    _bn_normalize(out, X, mean, var, gamma, beta, epsilon)
    return out, mean, var


def batch_norm_forward_infer(X, moving_mean, moving_var, gamma, beta, epsilon, out=None, n_threads=None):
    """Normalize X with fixed (moving) statistics.  X (B, F), moving_mean/moving_var (F,) X's dtype,
    gamma/beta (F,) or None -> out (B, F)."""
    out = _out(out, X.shape, X.dtype, "batch_norm_forward_infer", "out")
    return _bn_normalize(out, X, moving_mean.astype(np.float64), moving_var.astype(np.float64), gamma, beta,
                         epsilon)


def batch_norm_backward(dY, X, mean, var, gamma, epsilon, dgamma, dbeta, training=True, dX=None,
                        compute_dX=True, n_threads=None):
    """Gradients of y = gamma * (x - mean) / sqrt(var + eps) + beta.

    dY, X (B, F); mean, var (F,) float64: the batch statistics of X (training=True), or the fixed
    statistics used by the forward pass (training=False: mean and var do not depend on X);
    gamma (F,) or None. Accumulates dgamma (F,) += sum(dY * xhat) and dbeta (F,) += sum(dY)
    (float64 sums; either may be None). Returns dX (B, F), written to ``dX`` if given, or None
    when ``compute_dX`` is False.
    """
    B, F = X.shape
    dtype = X.dtype
    _inplace("batch_norm_backward", "dgamma", dgamma, "accumulated")
    _inplace("batch_norm_backward", "dbeta", dbeta, "accumulated")
    inv_std, m, k = _bn_coefficients(mean, var, gamma, epsilon, dtype)
    dY64 = np.ascontiguousarray(dY, dtype=np.float64)  # row-by-row sums whatever the layout (as above)
    s_dy = dY64.sum(axis=0)
    s_dyx = (dY64 * ((np.ascontiguousarray(X, dtype=np.float64) - mean) * inv_std)).sum(axis=0)
    if dbeta is not None:
        dbeta += s_dy.astype(dtype)
    if dgamma is not None:
        dgamma += s_dyx.astype(dtype)
    if not compute_dX:
        return None
    dX = _out(dX, X.shape, dtype, "batch_norm_backward", "dX")
    if training:
        s = inv_std.astype(dtype)
        mdy, mdyx = (s_dy / max(B, 1)).astype(dtype), (s_dyx / max(B, 1)).astype(dtype)
        dX[...] = k * ((dY - mdy) - ((X - m) * s) * mdyx)
    else:
        dX[...] = k * dY
    return dX


def batch_norm_update_moving(moving_mean, moving_var, mean, var, momentum, n_threads=None):
    """In place, as Keras: moving = moving * momentum + batch * (1 - momentum), computed in float64.

    moving_mean, moving_var (F,) float32/float64, updated in place; mean, var (F,) float64.
    """
    _inplace("batch_norm_update_moving", "moving_mean", moving_mean, "accumulated")
    _inplace("batch_norm_update_moving", "moving_var", moving_var, "accumulated")
    momentum = float(momentum)
    moving_mean[...] = (moving_mean.astype(np.float64) * momentum + mean * (1.0 - momentum)).astype(
        moving_mean.dtype)
    moving_var[...] = (moving_var.astype(np.float64) * momentum + var * (1.0 - momentum)).astype(moving_var.dtype)


# --------------------------------------------------------------------------- losses
def _labels_are_sparse(y_true):
    return y_true.ndim == 1


def _class_ids(y_true):
    """Sparse labels as intp ids: integer dtypes, or floats holding whole numbers (Keras accepts float
    labels for the sparse cross-entropies, and so does the compiled kernel; issue 15)."""
    return np.asarray(y_true).astype(np.intp, copy=False)


def _row_scale(scale, sample_weight):
    """``scale``, or the per-row factors ``scale * sample_weight`` as a float64 (B, 1) column.

    A weighted *_backward gives the gradient of ``scale * sum_b w_b loss_b``: Keras'
    "sum_over_batch_size" reduction with sample weights, sum(w * loss) / B
    (K3 keras/src/losses/loss.py reduce_weighted_values).
    """
    if sample_weight is None:
        return scale
    return (scale * np.asarray(sample_weight, dtype=np.float64))[:, None]


def _as_dtype(factor, dtype):
    """A scalar factor as a ``dtype`` scalar, or a (B, 1) column of factors cast to ``dtype``."""
    if np.ndim(factor) == 0:
        return dtype.type(factor)
    return factor.astype(dtype)


def _loss_sum(rows, sample_weight):
    """float64 sum of per-sample losses, each times its weight (in row order, as the compiled loop)."""
    rows = np.asarray(rows, dtype=np.float64)
    if sample_weight is None:
        return float(rows.sum())
    return float(np.cumsum(rows * np.asarray(sample_weight, dtype=np.float64))[-1]) if rows.size else 0.0


def softmax_xent_forward(logits, y_true, out=None, n_threads=None):
    """Per-sample cross-entropy of softmax(logits).

    logits (B, K); y_true int (B,) class ids, or float (B, K) (one-hot or
    soft labels).  out (B,) in logits' dtype: -sum_k y_k log softmax(z)_k.
    """
    out = _out(out, (logits.shape[0],), logits.dtype, "softmax_xent_forward", "out")
    logp = _log_softmax64(logits)
    if _labels_are_sparse(y_true):
        out[...] = -logp[np.arange(logits.shape[0]), _class_ids(y_true)]
    else:
        out[...] = -(y_true.astype(np.float64) * logp).sum(axis=1)
    return out


def softmax_xent_backward(logits, y_true, scale=1.0, dlogits=None, sample_weight=None, n_threads=None):
    """Fused softmax + cross-entropy: (loss_sum, dlogits).

    dlogits (B, K) = scale * (softmax(z) * sum_k y_k - y); loss_sum is the
    float64 sum of the per-sample losses (not scaled). With ``sample_weight``
    (B,) both are weighted per row: loss_sum = sum_b w_b loss_b and row b of
    dlogits is multiplied by w_b (the same for every *_backward below).
    """
    dlogits = _out(dlogits, logits.shape, logits.dtype, "softmax_xent_backward", "dlogits")
    loss = _loss_sum(softmax_xent_forward(logits, y_true), sample_weight)
    f = _as_dtype(_row_scale(scale, sample_weight), logits.dtype)
    p = _softmax(logits)
    if _labels_are_sparse(y_true):
        p[np.arange(logits.shape[0]), _class_ids(y_true)] -= 1
        dlogits[...] = p * f
    else:
        ysum = y_true.sum(axis=1, keepdims=True, dtype=np.float64).astype(logits.dtype)
        dlogits[...] = (p * ysum - y_true) * f
    return loss, dlogits


def _bxent_with_logits64(logits, y_true):
    # max(z, 0) - z*y + log1p(exp(-|z|)): TF's sigmoid_cross_entropy_with_logits.
    z = logits.astype(np.float64)
    return np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))


def sigmoid_bxent_forward(logits, y_true, out=None, n_threads=None):
    """Per-sample binary cross-entropy of sigmoid(logits), mean over the last axis.

    logits (B, K), y_true (B, K) float in [0, 1] -> out (B,).
    """
    out = _out(out, (logits.shape[0],), logits.dtype, "sigmoid_bxent_forward", "out")
    out[...] = _bxent_with_logits64(logits, y_true).mean(axis=1)
    return out


def sigmoid_bxent_backward(logits, y_true, scale=1.0, dlogits=None, sample_weight=None, n_threads=None):
    """Fused sigmoid + binary cross-entropy: (loss_sum, dlogits = scale * (sigmoid(z) - y) / K)."""
    dlogits = _out(dlogits, logits.shape, logits.dtype, "sigmoid_bxent_backward", "dlogits")
    loss = _loss_sum(_bxent_with_logits64(logits, y_true).mean(axis=1), sample_weight)
    k = logits.shape[1]
    dlogits[...] = (_sigmoid(logits) - y_true) * _as_dtype(_row_scale(scale, sample_weight) / k, logits.dtype)
    return loss, dlogits


def _clip_bounds(dtype):
    """[eps, 1 - eps] in the tensor's dtype, as Keras clips (K3 backend/numpy/nn.py: float32 gives
    1.0000000116860974e-07 and 0.99999988), as float64 numbers."""
    t = np.dtype(dtype).type
    return float(t(EPSILON)), float(t(1) - t(EPSILON))


def xent_forward(y_pred, y_true, out=None, n_threads=None):
    """Categorical cross-entropy of probabilities (Keras 3, from_logits=False).

    p = y_pred / sum(y_pred); p = clip(p, eps, 1 - eps); loss = -sum y log p.
    y_pred (B, K); y_true int (B,) or float (B, K) -> out (B,).
    """
    out = _out(out, (y_pred.shape[0],), y_pred.dtype, "xent_forward", "out")
    p = y_pred.astype(np.float64)
    p = np.clip(p / p.sum(axis=1, keepdims=True), *_clip_bounds(y_pred.dtype))
    y = _dense_labels(y_true, y_pred.shape[1])
    out[...] = -(y * np.log(p)).sum(axis=1)
    return out


def _dense_labels(y_true, k):
    if _labels_are_sparse(y_true):
        y = np.zeros((y_true.shape[0], k))
        y[np.arange(y_true.shape[0]), _class_ids(y_true)] = 1
        return y
    return y_true.astype(np.float64)


def xent_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, d(scale * loss_sum)/d y_pred) for ``xent_forward``.

    With S = sum(y_pred), q = y_pred / S and m the mask of q inside the clip:
    d/dp_j = (sum_i y_i m_i - y_j m_j / q_j) / S.
    """
    dy_pred = _out(dy_pred, y_pred.shape, y_pred.dtype, "xent_backward", "dy_pred")
    loss = _loss_sum(xent_forward(y_pred, y_true), sample_weight)
    p = y_pred.astype(np.float64)
    s = p.sum(axis=1, keepdims=True)
    q = p / s
    lo, hi = _clip_bounds(y_pred.dtype)
    m = (q > lo) & (q < hi)
    y = _dense_labels(y_true, y_pred.shape[1])
    g = ((y * m).sum(axis=1, keepdims=True) - np.where(m, y / np.where(m, q, 1), 0)) / s
    dy_pred[...] = g * _row_scale(scale, sample_weight)
    return loss, dy_pred


def bxent_forward(y_pred, y_true, out=None, n_threads=None):
    """Binary cross-entropy of probabilities (Keras 3): clip p to [eps, 1-eps],
    -[y log p + (1 - y) log(1 - p)], mean over the last axis.  (B, K) -> out (B,)."""
    out = _out(out, (y_pred.shape[0],), y_pred.dtype, "bxent_forward", "out")
    p = np.clip(y_pred.astype(np.float64), *_clip_bounds(y_pred.dtype))
    y = y_true.astype(np.float64)
    out[...] = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
    return out


def bxent_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, gradient) for ``bxent_forward``; zero gradient where the clip is active."""
    dy_pred = _out(dy_pred, y_pred.shape, y_pred.dtype, "bxent_backward", "dy_pred")
    loss = _loss_sum(bxent_forward(y_pred, y_true), sample_weight)
    p = y_pred.astype(np.float64)
    y = y_true.astype(np.float64)
    lo, hi = _clip_bounds(y_pred.dtype)
    inside = (p > lo) & (p < hi)
    pc = np.clip(p, lo, hi)
    g = np.where(inside, (pc - y) / (pc * (1 - pc)), 0) / y_pred.shape[1]
    dy_pred[...] = g * _row_scale(scale, sample_weight)
    return loss, dy_pred


def mse_forward(y_pred, y_true, out=None, n_threads=None):
    """Mean squared error over the last axis.  (B, K) -> out (B,)."""
    out = _out(out, (y_pred.shape[0],), y_pred.dtype, "mse_forward", "out")
    d = y_pred.astype(np.float64) - y_true
    out[...] = (d * d).mean(axis=1)
    return out


def mse_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, scale * 2 (y_pred - y_true) / K)."""
    dy_pred = _out(dy_pred, y_pred.shape, y_pred.dtype, "mse_backward", "dy_pred")
    loss = _loss_sum(mse_forward(y_pred, y_true), sample_weight)
    f = 2.0 * _row_scale(scale, sample_weight) / y_pred.shape[1]
    dy_pred[...] = (y_pred - y_true) * _as_dtype(f, y_pred.dtype)
    return loss, dy_pred


def mae_forward(y_pred, y_true, out=None, n_threads=None):
    """Mean absolute error over the last axis.  (B, K) -> out (B,)."""
    out = _out(out, (y_pred.shape[0],), y_pred.dtype, "mae_forward", "out")
    out[...] = np.abs(y_pred.astype(np.float64) - y_true).mean(axis=1)
    return out


def mae_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, scale * sign(y_pred - y_true) / K), with sign(0) = 0."""
    dy_pred = _out(dy_pred, y_pred.shape, y_pred.dtype, "mae_backward", "dy_pred")
    loss = _loss_sum(mae_forward(y_pred, y_true), sample_weight)
    f = _row_scale(scale, sample_weight) / y_pred.shape[1]
    dy_pred[...] = np.sign(y_pred - y_true) * _as_dtype(f, y_pred.dtype)
    return loss, dy_pred


# --------------------------------------------------------------------------- metrics
def metric_forward(y_pred, y_true, metric, threshold=0.5, out=None, n_threads=None):
    """Per-sample value of a metric, float64 (B,).

    metric: "binary_accuracy" (mean over K of [y_pred > threshold] == [y_true > 0.5], the threshold
    rounded to y_pred's dtype as Keras compares), "categorical_accuracy" (argmax == argmax),
    "sparse_categorical_accuracy" (argmax == int label), "mae", "mse" (means over K, rounded to the
    dtype as mae/mse_forward).  y_pred (B, K).
    """
    out = _out(out, (y_pred.shape[0],), np.float64, "metric_forward", "out")
    if metric == "binary_accuracy":
        out[...] = ((y_pred > y_pred.dtype.type(threshold)) == (y_true > 0.5)).mean(axis=1)
    elif metric == "categorical_accuracy":
        out[...] = y_pred.argmax(axis=1) == y_true.argmax(axis=1)
    elif metric == "sparse_categorical_accuracy":
        ids = y_true[:, 0] if y_true.ndim == 2 and y_true.shape[1] == 1 else y_true
        out[...] = y_pred.argmax(axis=1) == ids
    elif metric == "mae":
        out[...] = mae_forward(y_pred, y_true)
    elif metric == "mse":
        out[...] = mse_forward(y_pred, y_true)
    else:
        raise ValueError(f"Unknown metric {metric!r}; expected one of {METRICS}")
    return out


def metric_sum(y_pred, y_true, metric, threshold=0.5, sample_weight=None, n_threads=None):
    """Sum over the batch of a per-sample metric (``metric_forward``), each times its weight when
    ``sample_weight`` (B,) is given, as a Python float (float64, rows in order)."""
    rows = metric_forward(y_pred, y_true, metric, threshold)
    return _loss_sum(rows, sample_weight)


def confusion_counts(y_true, y_pred, thresholds, sample_weight=None, counts=None, n_threads=None):
    """Confusion counts of ``y_pred > t`` against ``y_true != 0`` at every threshold t, per column.

    y_true (B, L) numeric, cast to bool as Keras does (any non-zero label is a positive);
    y_pred (B, L) float; thresholds (T,) ascending, compared in y_pred's dtype
    (K3 metrics/metrics_utils.py update_confusion_matrix_variables: ``y_pred > thresholds``);
    sample_weight (B,) or None (weights 1). counts (4, T, L) float64 [tp, fp, tn, fn] is
    ACCUMULATED (+=) and returned; a new zeroed one is made when None.

    Each element falls in bucket k = #{t : t < p} (0 for NaN); then tp[t] is the weight of
    the positives in buckets above t, and tn = (weight of all negatives) - fp: one pass over
    the data, then a reverse cumulative sum over the buckets (row order, float64).
    """
    P = np.asarray(y_pred)
    t = np.asarray(thresholds, dtype=np.float64).astype(P.dtype)
    B, L = P.shape
    T = t.shape[0]
    if counts is None:
        counts = np.zeros((4, T, L))
    _inplace("confusion_counts", "counts", counts, "accumulated")
    w = np.ones(B) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    positive = np.asarray(y_true) != 0
    bucket = np.searchsorted(t, P, side="left")
    bucket[np.isnan(P)] = 0
    for col in range(L):
        pos = np.bincount(bucket[:, col], weights=np.where(positive[:, col], w, 0.0), minlength=T + 1)
        neg = np.bincount(bucket[:, col], weights=np.where(positive[:, col], 0.0, w), minlength=T + 1)
        above_pos = np.cumsum(pos[::-1])[::-1]  # above_pos[k] = weight of positives in buckets >= k
        above_neg = np.cumsum(neg[::-1])[::-1]
        tp, fp = above_pos[1:], above_neg[1:]
        counts[0, :, col] += tp
        counts[1, :, col] += fp
        counts[2, :, col] += above_neg[0] - fp
        counts[3, :, col] += above_pos[0] - tp
    return counts


# --------------------------------------------------------------------------- regularizers
# Keras' weight penalties (K3 keras/src/regularizers/regularizers.py): L1 l1*sum|w|,
# L2 l2*sum(w^2), L1L2 both. W is any weight array (kernel or bias), flattened.
def l1_l2_forward(W, l1, l2, n_threads=None):
    """Penalty l1 * sum|W| + l2 * sum W^2 as a Python float (both sums in float64)."""
    # A zero factor adds nothing (K3 L1L2.__call__ adds each term only `if self.l1` / `if self.l2`), so an
    # infinite weight gives an infinite penalty, not 0 * inf = NaN (issue 15).
    w = np.asarray(W, dtype=np.float64).reshape(-1)
    return float((l1 * np.abs(w).sum() if l1 else 0.0) + (l2 * (w * w).sum() if l2 else 0.0))


def l1_l2_backward(W, l1, l2, dW, n_threads=None):
    """dW += l1 * sign(W) + 2 * l2 * W (in W's dtype, sign(0) = 0; a zero factor's term is left out);
    returns the penalty."""
    _inplace("l1_l2_backward", "dW", dW)
    t = W.dtype.type
    if l1 and l2:
        dW += t(l1) * np.sign(W) + t(2.0 * l2) * W
    elif l1:
        dW += t(l1) * np.sign(W)
    elif l2:
        dW += t(2.0 * l2) * W
    return l1_l2_forward(W, l1, l2)


# --------------------------------------------------------------------------- optimizers
# Flat in-place updates over one parameter buffer w (N,) and its gradient g (N,),
# with Keras 3's update rules (K3 keras/src/optimizers/*.py update_step).
def sgd_update(w, g, m, learning_rate, momentum=0.0, nesterov=False, n_threads=None):
    """m = momentum*m - lr*g; w += m (nesterov: w += momentum*m - lr*g).
    With momentum == 0: w -= lr*g, and m may be None."""
    _inplace("sgd_update", "w", w)
    _inplace("sgd_update", "m", m)
    lr = w.dtype.type(learning_rate)
    if momentum == 0:
        w -= lr * g
        return
    mu = w.dtype.type(momentum)
    m *= mu
    m -= lr * g
    if nesterov:
        w += mu * m - lr * g
    else:
        w += m


def rmsprop_update(w, g, v, mom, mg, learning_rate, rho=0.9, momentum=0.0, epsilon=1e-7,
                   centered=False, n_threads=None):
    """v = rho v + (1-rho) g^2; denominator = v (- mg^2 if centered, mg = rho mg + (1-rho) g) + eps;
    inc = lr g / sqrt(denominator); w -= inc, or with momentum mom = momentum mom + inc; w -= mom.
    ``mom`` may be None when momentum == 0, ``mg`` when not centered."""
    for name, a in (("w", w), ("v", v), ("mom", mom), ("mg", mg)):
        _inplace("rmsprop_update", name, a)
    t = w.dtype.type
    v *= t(rho)
    v += t(1 - rho) * g * g
    if centered:
        mg *= t(rho)
        mg += t(1 - rho) * g
        denominator = v - mg * mg + t(epsilon)
    else:
        denominator = v + t(epsilon)
    inc = t(learning_rate) * g / np.sqrt(denominator)
    if momentum > 0:
        mom *= t(momentum)
        mom += inc
        w -= mom
    else:
        w -= inc


def adam_update(w, g, m, v, vhat, learning_rate, beta_1, beta_2, epsilon, iteration,
                amsgrad=False, n_threads=None):
    """Keras 3 Adam with t = iteration (1-based): alpha = lr sqrt(1-b2^t)/(1-b1^t);
    m += (g-m)(1-b1); v += (g^2-v)(1-b2); (amsgrad: vhat = max(vhat, v), use vhat);
    w -= alpha m / (sqrt(v) + eps).  ``vhat`` may be None unless amsgrad."""
    for name, a in (("w", w), ("m", m), ("v", v), ("vhat", vhat)):
        _inplace("adam_update", name, a)
    t = w.dtype.type
    alpha = learning_rate * np.sqrt(1.0 - beta_2**iteration) / (1.0 - beta_1**iteration)
    m += (g - m) * t(1 - beta_1)
    v += (g * g - v) * t(1 - beta_2)
    if amsgrad:
        np.maximum(vhat, v, out=vhat)
        w -= t(alpha) * m / (np.sqrt(vhat) + t(epsilon))
    else:
        w -= t(alpha) * m / (np.sqrt(v) + t(epsilon))


def adadelta_update(w, g, accum_grad, accum_delta, learning_rate, rho=0.95, epsilon=1e-7, n_threads=None):
    """a = rho a + (1-rho) g^2; delta = -sqrt(d + eps) / sqrt(a + eps) g;
    d = rho d + (1-rho) delta^2; w += lr delta."""
    for name, a in (("w", w), ("accum_grad", accum_grad), ("accum_delta", accum_delta)):
        _inplace("adadelta_update", name, a)
    t = w.dtype.type
    accum_grad *= t(rho)
    accum_grad += t(1 - rho) * g * g
    delta = -np.sqrt(accum_delta + t(epsilon)) / np.sqrt(accum_grad + t(epsilon)) * g
    accum_delta *= t(rho)
    accum_delta += t(1 - rho) * delta * delta
    w += t(learning_rate) * delta


def adagrad_update(w, g, accumulator, learning_rate, epsilon=1e-7, n_threads=None):
    """accumulator += g^2; w -= lr g / sqrt(accumulator + eps) (the accumulator starts at Keras'
    initial_accumulator_value, 0.1)."""
    for name, a in (("w", w), ("accumulator", accumulator)):
        _inplace("adagrad_update", name, a)
    t = w.dtype.type
    accumulator += g * g
    w -= t(learning_rate) * g / np.sqrt(accumulator + t(epsilon))


def adamax_update(w, g, m, u, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=1,
                  n_threads=None):
    """Keras 3 Adamax, t = iteration: m += (g - m)(1 - b1); u = max(b2 u, |g|);
    w -= lr m / ((1 - b1^t)(u + eps))."""
    for name, a in (("w", w), ("m", m), ("u", u)):
        _inplace("adamax_update", name, a)
    iteration = check_iteration("adamax_update", iteration)
    t = w.dtype.type
    bc = t(adamax_correction(float(beta_1), iteration))
    m += (g - m) * t(1 - beta_1)
    np.maximum(t(beta_2) * u, np.abs(g), out=u)
    w -= t(learning_rate) * m / (bc * (u + t(epsilon)))


def nadam_update(w, g, m, v, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=1,
                 n_threads=None):
    """Keras 3 Nadam, t = iteration: u_t = b1 (1 - 0.5 0.96^t); m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    m_hat = u_{t+1} m / (1 - prod u_1..u_{t+1}) + (1 - u_t) g / (1 - prod u_1..u_t);
    w -= m_hat lr / (sqrt(v / (1 - b2^t)) + eps)."""
    for name, a in (("w", w), ("m", m), ("v", v)):
        _inplace("nadam_update", name, a)
    iteration = check_iteration("nadam_update", iteration)
    t = w.dtype.type
    ut1, d1, cu, d2, bc2 = (t(k) for k in nadam_scalars(float(beta_1), float(beta_2), iteration))
    m += (g - m) * t(1 - beta_1)
    v += (g * g - v) * t(1 - beta_2)
    m_hat = ut1 * m / d1 + cu * g / d2
    w -= m_hat * t(learning_rate) / (np.sqrt(v / bc2) + t(epsilon))


def lion_update(w, g, m, learning_rate, beta_1=0.9, beta_2=0.99, n_threads=None):
    """Keras 3 Lion: w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g."""
    for name, a in (("w", w), ("m", m)):
        _inplace("lion_update", name, a)
    t = w.dtype.type
    s = m * t(beta_1) + g * t(1.0 - beta_1)
    # Keras 3 lion.py takes ops.sign, and sign(NaN) is NaN: a NaN moment or gradient poisons the weight
    # (a comparison-built sign, (s > 0) - (s < 0), would give 0 and hide it)
    w -= t(learning_rate) * np.sign(s)
    m *= t(beta_2)
    m += g * t(1.0 - beta_2)


# --------------------------------------------------------------------------- learning-rate schedules
# Keras 3 keras/src/optimizers/schedules/learning_rate_schedule.py, as parameter tuples (the engine plan's
# "schedule"; layouts in _schedules.pxd), in float64 with Python's math (the C twin's libm). Where Python
# raises (math.pow(0, -1), math.log(-1), x / 0, math.floor(nan)), these helpers return what C returns, as
# Keras' ops do: +-inf at a pole or an overflow, NaN outside the domain (a negative decay_rate to a fractional
# power, a shrinking t_mul's restarts past the sum of all its periods).
def _pow(x, y):
    try:
        return math.pow(x, y)
    except (OverflowError, ValueError):
        pass
    if x < 0 and y != math.floor(y):
        return math.nan
    # a pole (0 to a negative power) or an overflow: negative only for a negative base and an odd exponent
    return -math.inf if math.copysign(1.0, x) < 0 and math.fmod(y, 2.0) != 0 else math.inf


def _log(x):
    if x > 0 or math.isnan(x):
        return math.log(x)
    return -math.inf if x == 0 else math.nan


def _div(a, b):
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _floor(x):
    return float(math.floor(x)) if math.isfinite(x) else x


def _ceil(x):
    return float(math.ceil(x)) if math.isfinite(x) else x


def _cos(x):
    return math.cos(x) if math.isfinite(x) else math.nan


def _cosine(step, decay_steps, alpha, start):
    cosine_decayed = 0.5 * (1.0 + _cos(math.pi * (step / decay_steps)))
    return start * ((1.0 - alpha) * cosine_decayed + alpha)


def learning_rate_at(schedule, params, step):
    """The learning rate of the built-in schedule ``schedule`` (a name of SCHEDULES) with parameters
    ``params`` at the 0-based optimizer step ``step``, as a float."""
    check_schedule("learning_rate_at", schedule, params)
    p = [float(x) for x in params]
    step = check_step("learning_rate_at", step)
    if schedule in ("exponential", "inverse_time"):
        q = step / p[1]
        if p[3] != 0:
            q = _floor(q)
        return p[0] * _pow(p[2], q) if schedule == "exponential" else _div(p[0], 1.0 + p[2] * q)
    if schedule == "piecewise":
        n = int(p[0])
        for i in range(n):
            if step <= p[1 + i]:
                return p[1 + n + i]
        return p[1 + 2 * n]
    if schedule == "polynomial":
        ds = p[1]
        if p[4] != 0:
            ds = ds * (1.0 if step == 0 else _ceil(step / ds))
        elif step > ds:
            step = ds
        return (p[0] - p[2]) * _pow(1.0 - _div(step, ds), p[3]) + p[2]
    if schedule == "cosine":
        if p[3] == 0:
            return _cosine(min(step, p[1]), p[1], p[2], p[0])
        step = min(step, p[1] + p[5])
        if step < p[5]:
            return (p[4] - p[0]) * (step / p[5]) + p[0]
        return _cosine(step - p[5], p[1], p[2], p[4])
    q = step / p[1]
    t_mul = p[2]
    if t_mul == 1.0:
        i_restart = _floor(q)
        q = q - i_restart
    else:
        i_restart = _floor(_log(1.0 - q * (1.0 - t_mul)) / math.log(t_mul))
        sum_r = (1.0 - _pow(t_mul, i_restart)) / (1.0 - t_mul)
        q = _div(q - sum_r, _pow(t_mul, i_restart))
    return p[0] * ((1.0 - p[4]) * (0.5 * _pow(p[3], i_restart) * (1.0 + _cos(math.pi * q))) + p[4])


# --------------------------------------------------------------------------- sparse (CSR) inputs
# Multi-hot / bag-of-words inputs (the IMDB tutorial's 10000-dim 0/1 vectors) reach the first
# Dense layer as a CSR matrix X, given by the three arrays scipy.sparse.csr_matrix holds.
#
#   S  rows of X          I  columns of X (= the layer's input dim)    O  units
#   B  selected rows      nnz stored values of X                       T  tokens of all sequences
#
# The row ``rows[i]`` of X holds the values data[k] at columns indices[k] for k in
# [indptr[rows[i]], indptr[rows[i] + 1]). Both kernels add their terms one at a time in that
# order (i ascending, then k ascending), exactly as the compiled twin does, so float32
# results are equal to the last bit, or within an ulp or two where the compiler contracts.

# Bound on the stored values expanded at once (the (nnz, O) product buffers), so a
# whole-data-set call (predict) needs tens of MB, not gigabytes.
_CSR_CHUNK_NNZ = 1 << 17


def _csr_bounds(owner, indptr, indices, rows):
    """(starts, ends) (B,) of the selected rows; ValueError for anything out of range."""
    n_rows = indptr.shape[0] - 1
    rows = np.arange(n_rows) if rows is None else np.asarray(rows, dtype=np.intp)
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"{owner}: argument `rows` must hold row ids in [0, {n_rows}); received "
                         f"ids from {rows.min()} to {rows.max()}.")
    starts, ends = indptr[rows].astype(np.int64), indptr[rows + 1].astype(np.int64)
    if starts.size and ((starts < 0).any() or (ends < starts).any() or ends.max() > indices.shape[0]):
        raise ValueError(f"{owner}: argument `indptr` must be non-decreasing with values in "
                         f"[0, {indices.shape[0]}] (nnz); received a malformed indptr.")
    return starts, ends


def _csr_positions(starts, ends):
    """(k, i): the positions k of the selected rows' stored values, in order, and the batch row i of each."""
    counts = ends - starts
    total = int(counts.sum())
    i = np.repeat(np.arange(counts.shape[0]), counts)
    first = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(first - starts, counts), i


def _csr_chunks(starts, ends):
    """Row ranges [r0, r1) of the selection holding about _CSR_CHUNK_NNZ stored values each."""
    cum = np.cumsum(ends - starts)
    r0 = 0
    while r0 < starts.shape[0]:
        base = cum[r0 - 1] if r0 else 0
        r1 = max(r0 + 1, int(np.searchsorted(cum, base + _CSR_CHUNK_NNZ, side="right")))
        yield r0, r1
        r0 = r1


def _csr_check_indices(owner, indices, k, n_cols):
    cols = indices[k]
    if cols.size and (cols.min() < 0 or cols.max() >= n_cols):
        bad = cols.min() if cols.min() < 0 else cols.max()
        raise ValueError(f"{owner}: argument `indices` must hold column ids in [0, {n_cols}) "
                         f"(the rows of W); received a column id of {bad}.")
    return cols


def csr_dense_forward(indptr, indices, data, W, b, activation="linear", rows=None, out=None, n_threads=None):
    """out = act(X[rows] @ W + b) for the CSR matrix X = (indptr (S+1,), indices (nnz,), data (nnz,)).

    W (I, O), b (O,) or None, rows (B,) intp or None (all S rows, in order) -> out (B, O), W's dtype.
    Each output row starts at 0 and adds data[k] * W[indices[k]] for k in CSR order, then b.
    """
    owner = "csr_dense_forward"
    starts, ends = _csr_bounds(owner, indptr, indices, rows)
    out = _out(out, (starts.shape[0], W.shape[1]), W.dtype, "csr_dense_forward", "out")
    out[...] = 0
    for r0, r1 in _csr_chunks(starts, ends):
        k, i = _csr_positions(starts[r0:r1], ends[r0:r1])
        cols = _csr_check_indices(owner, indices, k, W.shape[0])
        # np.add.at is unbuffered and applies the terms in array order: the kernel's order.
        np.add.at(out, i + r0, data[k, None].astype(W.dtype, copy=False) * W[cols])
    if b is not None:
        out += b
    return activation_forward(out, activation, out=out)


def csr_dense_backward(indptr, indices, data, dZ, dW, db, rows=None, n_threads=None):
    """Weight and bias gradients of ``csr_dense_forward`` (the sparse layer is the first: no dX).

    dZ (B, O) the gradient at the pre-activation. ACCUMULATES dW (I, O): dW[indices[k]] +=
    data[k] * dZ[i] for every k of row rows[i], i then k ascending; db (O,) += sum_rows(dZ)
    (float64 accumulation; db may be None).
    """
    owner = "csr_dense_backward"
    _inplace(owner, "dW", dW)
    _inplace(owner, "db", db)
    starts, ends = _csr_bounds(owner, indptr, indices, rows)
    k_all = []
    for r0, r1 in _csr_chunks(starts, ends):  # check every index before dW is touched
        k, i = _csr_positions(starts[r0:r1], ends[r0:r1])
        _csr_check_indices(owner, indices, k, dW.shape[0])
        k_all.append((k, i + r0))
    for k, i in k_all:
        np.add.at(dW, indices[k], data[k, None].astype(dW.dtype, copy=False) * dZ[i])
    if db is not None:
        db += dZ.sum(axis=0, dtype=np.float64).astype(db.dtype)


def multi_hot_csr(lengths, tokens, num_tokens, n_threads=None):
    """CSR structure of the multi-hot encoding of S token sequences.

    lengths (S,) int, tokens (T,) int64: sequence s is tokens[sum(lengths[:s]) : sum(lengths[:s+1])].
    Returns (indptr (S+1,) int64, indices (nnz,) int32): row s holds the distinct tokens of
    sequence s, sorted. ValueError names the first sequence holding an id outside [0, num_tokens).
    """
    lengths = np.asarray(lengths)
    tokens = np.asarray(tokens)
    check_multi_hot_args(lengths, tokens, num_tokens)
    bad = (tokens < 0) | (tokens >= num_tokens)
    if bad.any():
        first = int(np.argmax(bad))
        seq = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        raise token_range_error(seq, int(tokens[first]), num_tokens)
    n_seqs = lengths.shape[0]
    seq_of = np.repeat(np.arange(n_seqs, dtype=np.int64), lengths)
    keys = np.sort(seq_of * num_tokens + tokens.astype(np.int64))  # by sequence, then id
    # drop repeats by hand: np.unique is hash-based in NumPy 2.4 and ~100x slower here
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys
    indptr = np.zeros(n_seqs + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // num_tokens, minlength=n_seqs), out=indptr[1:])
    return indptr, (keys % num_tokens).astype(np.int32)


def flatten_sequences(sequences, n_threads=None):
    """(lengths (S,) int64, tokens (T,) int64): the token-id sequences laid end to end.

    ``sequences`` is a list, tuple or 1-D object array of sequences (lists, tuples, 1-D arrays
    or other iterables of token ids; Keras' ``imdb.load_data`` output), or a 2-D integer array
    (S, L). Ids are Python or NumPy integers, or floats holding whole numbers. TypeError for
    non-numbers and booleans, ValueError for fractions, NaN, nesting deeper than one level and
    ids beyond int64, each naming the sequence. Not range-checked: that is multi_hot_csr's job.
    """
    owner = "flatten_sequences"
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        return flatten_array(owner, sequences)
    seqs = sequence_list(owner, sequences)
    parts = [sequence_tokens(owner, seq, s) for s, seq in enumerate(seqs)]
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return lengths, tokens.astype(np.int64, copy=False)


# --------------------------------------------------------------------------- pickled int lists (IMDB)
# imdb.npz stores each split as a NumPy object array of lists of ints, i.e. as a pickle.
# Unpickling it makes one Python int per token (12M of them: load_data peaked at ~370 MB,
# issue 3); this kernel reads the data list's opcodes straight into a flat int32 array, and
# never executes anything from the file. It accepts exactly what pickle protocols 2-5 write
# for a list of lists of ints (Lib/pickle.py save_list/_batch_appends: items in batches of
# 1000, MARK ... APPENDS, a lone last item as item APPEND; the memo put after EMPTY_LIST;
# protocol 4's FRAME opcodes, PEP 3154, between any two opcodes after the first):
#
#   outer := EMPTY_LIST memo? ( MARK inner* APPENDS | inner APPEND )*
#   inner := EMPTY_LIST memo? ( MARK int* APPENDS | int APPEND )*
#   memo  := BINPUT u1 | LONG_BINPUT u4 | MEMOIZE  (the memo index is not needed: no BINGET)
#   int   := BININT1 u1 | BININT2 u2 | BININT i4   (little-endian; LONG1 etc. are refused)
#   FRAME u8 (frame length, which must not run past the data) may precede any opcode but the first.
#
# The outer list ends at the first opcode that cannot continue it (the array state's TUPLE).
#
#   S  lists        T  ints in all lists        N  bytes of the pickle
_EMPTY_LIST, _MARK, _APPENDS, _APPEND = 0x5D, 0x28, 0x65, 0x61  # ] ( e a
_MEMO_WIDTH = {0x71: 2, 0x72: 5, 0x94: 1}  # BINPUT, LONG_BINPUT, MEMOIZE: bytes with the argument
_FRAME = 0x95
_INT_OPCODES = {0x4B: (1, False), 0x4D: (2, False), 0x4A: (4, True)}  # K M J: (argument bytes, signed)
_INT_RUN = re.compile(rb"(?:K.|M..|J....)*", re.DOTALL)
def unpickle_int_lists(data, start=0, n_threads=None):
    """The pickled list of lists of ints at ``data[start:]``, without unpickling it.

    data (N,) bytes-like, holding the list's EMPTY_LIST opcode at ``start`` (grammar above).
    Returns ``(lengths (S,) int64, tokens (T,) int32, end)``: list s is
    ``tokens[sum(lengths[:s]) : sum(lengths[:s + 1])]``, and ``end`` is the offset just past
    the outer list. ValueError names the byte offset of anything outside the grammar
    (including data that ends inside the list). ``n_threads`` is accepted for uniformity;
    parsing is sequential.
    """
    import array
    import pickle

    view, pos = byte_view("unpickle_int_lists", data, start)
    n = len(view)
    lengths, tokens = [], array.array("i")

    def frames(pos):  # step over FRAME opcodes
        while pos < n and view[pos] == _FRAME:
            if pos + 9 > n:
                raise unpickle_error(UNPICKLE_ARGUMENT_ERROR, pos, view)
            if int.from_bytes(view[pos + 1:pos + 9], "little") > n - pos - 9:
                raise unpickle_error(UNPICKLE_FRAME_ERROR, pos, view)
            pos += 9
        return pos

    def memo(pos):  # pos: just past an EMPTY_LIST
        pos = frames(pos)
        if pos < n and view[pos] in _MEMO_WIDTH:
            if pos + _MEMO_WIDTH[view[pos]] > n:
                raise unpickle_error(UNPICKLE_ARGUMENT_ERROR, pos, view)
            pos += _MEMO_WIDTH[view[pos]]
        return pos

    def one_int(pos, code):
        if view[pos] not in _INT_OPCODES:
            raise unpickle_error(code, pos, view)
        width, signed = _INT_OPCODES[view[pos]]
        if pos + 1 + width > n:
            raise unpickle_error(UNPICKLE_ARGUMENT_ERROR, pos, view)
        tokens.append(int.from_bytes(view[pos + 1:pos + 1 + width], "little", signed=signed))
        return pos + 1 + width

    def inner(pos):  # pos: at the sequence's EMPTY_LIST
        first = len(tokens)
        pos = memo(pos + 1)
        while True:
            pos = frames(pos)
            if pos >= n:
                break
            if view[pos] == _MARK:
                pos += 1
                while True:
                    pos = frames(pos)
                    # a run of complete BININT* opcodes and nothing else, so pickle may decode it
                    end = _INT_RUN.match(view, pos).end()
                    if end == pos:
                        break
                    tokens.extend(pickle.loads(b"(" + bytes(view[pos:end]) + b"l."))
                    pos = end
                if pos >= n or view[pos] != _APPENDS:
                    if pos < n:
                        one_int(pos, 3)  # raises: an unexpected opcode, or an int cut off by the end
                    raise unpickle_error(3, pos, view)
                pos += 1
            elif view[pos] in _INT_OPCODES:
                pos = frames(one_int(pos, 3))
                if pos >= n or view[pos] != _APPEND:
                    raise unpickle_error(4, pos, view)
                pos += 1
            else:
                break
        lengths.append(len(tokens) - first)
        return pos

    if pos >= n or view[pos] != _EMPTY_LIST:
        raise unpickle_error(1, pos, view)
    pos = memo(pos + 1)
    while True:
        pos = frames(pos)
        if pos >= n:
            break
        if view[pos] == _MARK:
            pos += 1
            while True:
                pos = frames(pos)
                if pos < n and view[pos] == _APPENDS:
                    break
                if pos >= n or view[pos] != _EMPTY_LIST:
                    raise unpickle_error(2, pos, view)
                pos = inner(pos)
            pos += 1
        elif view[pos] == _EMPTY_LIST:
            pos = frames(inner(pos))
            if pos >= n or view[pos] != _APPEND:
                raise unpickle_error(4, pos, view)
            pos += 1
        else:
            break
    return np.array(lengths, dtype=np.int64), np.frombuffer(tokens, dtype=np.intc).astype(np.int32), pos
