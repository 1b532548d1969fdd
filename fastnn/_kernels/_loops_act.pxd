# Activations by code: the ACT_* identifiers, their parsing from Keras' names, and the per-element maths
# (value and derivative, float64) of the activations added for issue 14. _loops.pxd runs them over rows and
# ranges for the per-op kernels and the engine alike.
from libc.math cimport exp

from fastnn._kernels._typedefs cimport floating

cdef extern from "fastnn_math.h" nogil:
    # csrc/fastnn_math.h: vectorized, the same bits on every clone and for an element alone or in an array
    void fastnn_tanh_f32(float* out, const float* x, Py_ssize_t n)
    void fastnn_tanh_f64(double* out, const double* x, Py_ssize_t n)
    void fastnn_sigmoid_f32(float* out, const float* x, Py_ssize_t n)
    void fastnn_sigmoid_f64(double* out, const double* x, Py_ssize_t n)
    int fastnn_math_isa()
    int fastnn_math_set_isa(int level)

# ---------------------------------------------------------------- identifiers
cdef enum:
    # the first 17 in _engine_plan.ACTIVATIONS' order (act_parse relies on it)
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_SIGMOID = 2
    ACT_TANH = 3
    ACT_SOFTMAX = 4
    ACT_ELU = 5
    ACT_SELU = 6
    ACT_GELU = 7            # gelu(approximate=False): the erf form
    ACT_SILU = 8            # silu / swish
    ACT_SOFTPLUS = 9
    ACT_SOFTSIGN = 10
    ACT_LEAKY_RELU = 11
    ACT_RELU6 = 12
    ACT_HARD_SIGMOID = 13
    ACT_EXPONENTIAL = 14
    ACT_LOG_SOFTMAX = 15
    ACT_HARD_SILU = 16
    ACT_GELU_TANH = 17      # gelu(approximate=True)
    ACT_RELU_EX = 18        # relu(negative_slope, max_value, threshold) other than the defaults


cdef inline int act_parse(object activation, double* p, str owner="activation") except -1:
    """Keras activation -> ACT_*, its parameters into p[0:3] (zeros when it has none).

    ``activation`` is a name or (name, *params) (_engine_plan.act_spec, which raises the ValueError).
    p: leaky_relu (negative_slope), elu (alpha), relu (negative_slope, max_value or inf, threshold)."""
    from fastnn._kernels._engine_plan import ACTIVATIONS, act_spec
    name, params = act_spec(owner, activation)
    p[0] = p[1] = p[2] = 0
    if name == "relu":
        if params == (0.0, None, 0.0):
            return ACT_RELU
        p[0] = params[0]
        p[1] = float("inf") if params[1] is None else params[1]
        p[2] = params[2]
        return ACT_RELU_EX
    if name == "gelu":
        return ACT_GELU_TANH if params[0] else ACT_GELU
    if name in ("leaky_relu", "elu"):
        p[0] = params[0]
    return ACTIVATIONS.index(name)


cdef inline bint act_is_row(int act) noexcept nogil:
    """softmax and log_softmax work on whole rows; every other activation elementwise."""
    return act == ACT_SOFTMAX or act == ACT_LOG_SOFTMAX


cdef inline bint act_needs_x(int act) noexcept nogil:
    """The activation's derivative is computed from its INPUT (gelu and silu cannot be from the output);
    relu, sigmoid, tanh, softmax and log_softmax use their output."""
    return act >= ACT_ELU and act != ACT_LOG_SOFTMAX


# The transcendental activations added for issue 14 (elu, selu, gelu, softplus, exponential; relu with
# parameters) are computed per element in float64 with libm and rounded once to the dtype, as their twin in
# _reference.py computes them in float64 with NumPy: the same formula in the same order, so float32 results
# are the twin's bits but for a last-place libm difference (silu and gelu's tanh form: act_vec_range; the
# piecewise-linear ones: in the dtype, act_fwd_range). Derivatives come from the activation's INPUT.
cdef extern from "<math.h>" nogil:
    double erfc(double x)
    double expm1(double x)
    double log1p(double x)
    double fabs(double x)
    double log(double x)

cdef inline double act_p(const double* ap, int i, double default) noexcept nogil:
    """Parameter i of an activation, or Keras' default when the caller has none (a name)."""
    return default if ap == NULL else ap[i]


cdef inline double sigmoid1(double x) noexcept nogil:
    """Stable in both tails (exp only sees -|x|); NaN stays NaN."""
    cdef double e
    if x >= 0:
        return 1 / (1 + exp(-x))
    e = exp(x)
    return e / (1 + e)


cdef inline double act_fwd1(double x, int act, const double* ap) noexcept nogil:
    """elu, selu, gelu, softplus, exponential and relu with parameters on one value (float64; the other
    activations of issue 14: act_fwd_range); NaN in, NaN out (as Keras' formulas)."""
    cdef double t
    if act == ACT_ELU:  # Keras ops.elu: x if x > 0 else alpha * (exp(x) - 1); expm1 is exact near 0
        return x if x > 0 else act_p(ap, 0, 1.0) * expm1(x)
    if act == ACT_SELU:  # Klambauer et al. 2017's constants, as Keras ops.selu
        return 1.0507009873554804934193349852946 * (x if x > 0 else 1.6732632423543772848170429916717 * expm1(x))
    if act == ACT_GELU:  # 0.5 x (1 + erf(x / sqrt 2)) written with erfc (tf.nn.gelu): no cancellation for x << 0
        return 0.5 * x * erfc(-x * 0.70710678118654752440)
    if act == ACT_SOFTPLUS:  # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow
        return (x if x > 0 else 0) + log1p(exp(-fabs(x)))
    if act == ACT_EXPONENTIAL:
        return exp(x)
    if act == ACT_RELU_EX:
        return relu_ex1(x, ap, &t)
    return x


cdef inline double relu_ex1(double x, const double* ap, double* grad) noexcept nogil:
    """Keras 3's relu(x, negative_slope, max_value, threshold) (activations.py ReLU.static_call): x where
    x > threshold (x > 0 when threshold == 0), else 0; clipped to [0, max_value] when one is given; minus
    negative_slope * max(threshold - x, 0). *grad: its derivative. NaN stays NaN (Keras: x * (x > t))."""
    cdef double ns = ap[0], mx = ap[1], th = ap[2], y = x
    grad[0] = 1
    if not x > th:
        y = x if x != x else 0
        grad[0] = 0
    if mx < 1e308:  # a max_value: clip(y, 0, max_value)
        if y < 0:
            y = 0
            grad[0] = 0
        elif y > mx:
            y = mx
            grad[0] = 0
    if ns != 0 and x < th:
        y = y - ns * (th - x)
        grad[0] += ns
    return y


cdef inline double act_grad1(double x, int act, const double* ap) noexcept nogil:
    """d act / dx at x, for the activations act_fwd1 computes (float64)."""
    cdef double s, t, y
    if act == ACT_ELU:
        return 1 if x > 0 else act_p(ap, 0, 1.0) * exp(x)
    if act == ACT_SELU:
        return 1.0507009873554804934193349852946 * (1 if x > 0 else 1.6732632423543772848170429916717 * exp(x))
    if act == ACT_GELU:  # Phi(x) + x phi(x)
        return 0.5 * erfc(-x * 0.70710678118654752440) + x * exp(-0.5 * x * x) * 0.39894228040143267794
    if act == ACT_SOFTPLUS:
        return sigmoid1(x)
    if act == ACT_EXPONENTIAL:
        return exp(x)
    if act == ACT_RELU_EX:
        relu_ex1(x, ap, &s)
        return s
    return 1


# ---------------------------------------------------------------- over ranges
# One loop per activation (not a switch per element). elu, selu, gelu, softplus, exponential and relu with
# parameters go through act_fwd1 / act_grad1 (float64, libm, rounded once). The others are computed in the
# dtype, as Keras computes them in x's dtype, and their twin (_reference._act_in_dtype) does the same
# operations: the piecewise-linear ones (leaky_relu, relu6, hard_sigmoid, hard_silu, softsign) in loops
# that compile to branch-free vector code (through act_fwd1 in float64, leaky_relu cost 4 ns per element
# on random signs: mispredicted branches). silu and gelu(approximate=True) are float64 around
# fastnn_math.h's vectorized float64 sigmoid and tanh (8.8 and 19 ns per element with libm).
cdef enum:
    ACT_CHUNK = 256  # elements per vectorized sigmoid/tanh call into a stack buffer (out may be X)


cdef inline void act_vec_range(floating* out, const floating* dY, const floating* X, Py_ssize_t n0,
                               Py_ssize_t n1, int act, bint grad) noexcept nogil:
    """silu or gelu(approximate=True) over [n0, n1): out = act(X), or (grad) out = dY * act'(X), in float64
    around fastnn_math.h's vectorized float64 sigmoid / tanh, rounded once (as act_fwd1 for the others;
    in the dtype, 1 + tanh(u) and 1 - tanh(u)^2 lose all their digits in the tails)."""
    cdef double s[ACT_CHUNK]
    cdef double xs[ACT_CHUNK]
    cdef Py_ssize_t c = n0, k, m
    cdef double x, t
    while c < n1:
        m = min(<Py_ssize_t>ACT_CHUNK, n1 - c)
        for k in range(m):
            xs[k] = X[c + k]
        if act == ACT_SILU:
            fastnn_sigmoid_f64(s, xs, m)
            if grad:
                for k in range(m):
                    out[c + k] = dY[c + k] * <floating>(s[k] * (1 + xs[k] * (1 - s[k])))
            else:
                for k in range(m):
                    out[c + k] = <floating>(xs[k] * s[k])
        else:
            for k in range(m):
                x = xs[k]
                s[k] = 0.79788456080286535588 * (x + 0.044715 * x * x * x)
            fastnn_tanh_f64(s, s, m)
            if grad:
                for k in range(m):
                    x = xs[k]
                    t = s[k]
                    out[c + k] = dY[c + k] * <floating>(0.5 * (1 + t) + 0.5 * x * (1 - t * t)
                                                        * 0.79788456080286535588 * (1 + 0.134145 * x * x))
            else:
                for k in range(m):
                    out[c + k] = <floating>(0.5 * xs[k] * (1 + s[k]))
        c += m


cdef inline floating hard_sigmoid_f(floating x) noexcept nogil:
    """Keras 3's hard sigmoid in the dtype: x / 6 + 0.5 clipped to [0, 1]; NaN stays NaN."""
    cdef floating y = x / 6 + <floating>0.5
    y = 0 if y <= 0 else y
    return 1 if y >= 1 else y


cdef inline void act_fwd_range(floating* out, const floating* X, Py_ssize_t n0, Py_ssize_t n1, int act,
                               const double* ap) noexcept nogil:
    """out[n] = act(X[n]) for the activations of issue 14; out may be X."""
    cdef Py_ssize_t n
    cdef floating x, y, a
    if act == ACT_LEAKY_RELU:
        a = <floating>act_p(ap, 0, 0.2)
        for n in range(n0, n1):
            x = X[n]
            y = 1 if x > 0 else a  # x * 1 is x: the bits of (x if x > 0 else a x), as a blend of two
            out[n] = x * y         # constants (GCC kept the select of x and a x a mispredicted branch)
    elif act == ACT_RELU6:
        for n in range(n0, n1):
            x = X[n]
            y = 0 if x <= 0 else x
            out[n] = 6 if y >= 6 else y
    elif act == ACT_HARD_SIGMOID:
        for n in range(n0, n1):
            out[n] = hard_sigmoid_f(X[n])
    elif act == ACT_HARD_SILU:
        for n in range(n0, n1):
            out[n] = X[n] * hard_sigmoid_f(X[n])
    elif act == ACT_SOFTSIGN:
        for n in range(n0, n1):
            x = X[n]
            out[n] = x / (abs(x) + 1)
    elif act == ACT_SILU or act == ACT_GELU_TANH:
        act_vec_range(out, <floating*>NULL, X, n0, n1, act, False)
    else:
        for n in range(n0, n1):
            out[n] = <floating>act_fwd1(X[n], act, ap)


cdef inline void act_grad_range(floating* out, const floating* dY, const floating* X, Py_ssize_t n0,
                                Py_ssize_t n1, int act, const double* ap) noexcept nogil:
    """out[n] = dY[n] * act'(X[n]) for act_needs_x activations; out may be dY."""
    cdef Py_ssize_t n
    cdef floating x, y, g, a, sixth = <floating>(1.0 / 6)
    if act == ACT_LEAKY_RELU:
        a = <floating>act_p(ap, 0, 0.2)
        for n in range(n0, n1):
            g = 1 if X[n] > 0 else a
            out[n] = dY[n] * g
    elif act == ACT_RELU6:
        for n in range(n0, n1):
            x = X[n]
            g = 1 if x > 0 else 0
            g = g if x < 6 else 0
            out[n] = dY[n] * g
    elif act == ACT_HARD_SIGMOID or act == ACT_HARD_SILU:
        for n in range(n0, n1):
            x = X[n]
            y = x / 6 + <floating>0.5
            g = sixth if y > 0 else 0
            g = g if y < 1 else 0
            if act == ACT_HARD_SILU:
                g = hard_sigmoid_f(x) + x * g
            out[n] = dY[n] * g
    elif act == ACT_SOFTSIGN:
        for n in range(n0, n1):
            y = abs(X[n]) + 1
            out[n] = dY[n] * (1 / (y * y))
    elif act == ACT_SILU or act == ACT_GELU_TANH:
        act_vec_range(out, dY, X, n0, n1, act, True)
    else:
        for n in range(n0, n1):
            out[n] = dY[n] * <floating>act_grad1(X[n], act, ap)
