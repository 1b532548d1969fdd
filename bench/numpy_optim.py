"""Keras 3 optimizers for the NumPy baseline, as whole-arena in-place ufunc calls.

Each optimizer updates the flat parameter arena ``w`` (N,) from the gradient
arena ``g`` (N,) in place, with one scratch buffer, so a step allocates
nothing. The update rules and defaults are Keras 3's (keras/src/optimizers/
sgd.py, rmsprop.py, adam.py, adadelta.py;
docs/keras_semantics.md#optimizers-defaults-and-update-rules), the same as
``fastnn/_kernels/_reference.py``'s ``*_update``:

* SGD: ``m = mu m - lr g; w += m`` (nesterov: ``w += mu m - lr g``); plain: ``w -= lr g``;
* RMSprop: ``v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps)`` (eps INSIDE the
  square root), with momentum ``mom = mu mom + that; w -= mom``;
* Adam: ``alpha = lr sqrt(1 - b2^t) / (1 - b1^t)``; ``m += (g - m)(1 - b1)``;
  ``v += (g^2 - v)(1 - b2)``; ``w -= alpha m / (sqrt(v) + eps)`` (eps outside);
* Adadelta: ``a = rho a + (1 - rho) g^2; d = -sqrt(u + eps) / sqrt(a + eps) g;
  u = rho u + (1 - rho) d^2; w += lr d``.

Denormals: a slot whose gradient stays exactly 0 (a unit inactive for a whole batch, an
input feature that is always 0) decays geometrically (Adam's m, RMSprop's v and momentum
buffers by 0.9 a step) into float32's denormal range after ~800 steps, where every
arithmetic operation on it takes a microcode assist: a 784-128-10 Adam epoch ran 5x slower
after 3 epochs here (also PyTorch's). fastnn runs its threads with flush-to-zero, so these
values are 0 there; ``flush_denormals`` (the trainer calls it every FLUSH_EVERY steps) sets
them to 0 too, for a fraction of a pass per step.

``grad_scale``: SGD (plain or with momentum) only ever needs ``-lr g``, so it asks
the trainer to fold ``-lr`` into the loss gradient it back-propagates (the
gradient arena then holds ``-lr g``); that saves one pass over the arena per
step. Every other optimizer has ``grad_scale = 1``. All scalars are in the
arena's dtype, so float32 maths never silently widens to float64.

Dimension legend: N parameters in the arena.
"""
import numpy as np

FLUSH_EVERY = 32       # steps between two flush_denormals calls


class _Optimizer:
    slots = ()      # the state arrays (N,) that persist from step to step

    def flush_denormals(self):
        """Set the slots' denormal values (|x| < the dtype's smallest normal) to 0."""
        for slot in self.slots:
            mask = np.abs(slot) < np.finfo(slot.dtype).tiny
            slot[mask] = 0


class SGD(_Optimizer):
    def __init__(self, size, dtype=np.float32, learning_rate=0.01, momentum=0.0, nesterov=False):
        t = np.dtype(dtype).type
        self.grad_scale = -float(learning_rate)      # the arena holds -lr g
        self.momentum = t(momentum)
        self.nesterov = bool(nesterov)
        self.m = np.zeros(size, dtype) if momentum else None   # (N,)
        self.tmp = np.empty(size, dtype) if momentum and nesterov else None
        self.slots = [self.m] if momentum else []

    def update(self, w, g):
        if self.m is None:
            w += g                                    # w -= lr g
            return
        m = self.m
        m *= self.momentum
        m += g                                        # m = mu m - lr g
        if self.nesterov:
            np.multiply(m, self.momentum, out=self.tmp)
            w += self.tmp
            w += g                                    # w += mu m - lr g
        else:
            w += m


class RMSprop(_Optimizer):
    def __init__(self, size, dtype=np.float32, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False):
        if centered:
            raise ValueError("the NumPy baseline does not implement RMSprop(centered=True)")
        t = np.dtype(dtype).type
        self.grad_scale = 1.0
        self.learning_rate, self.rho, self.one_minus_rho = t(learning_rate), t(rho), t(1.0 - rho)
        self.epsilon, self.momentum = t(epsilon), t(momentum)
        self.v = np.zeros(size, dtype)                               # (N,)
        self.mom = np.zeros(size, dtype) if momentum else None       # (N,)
        self.tmp = np.empty(size, dtype)
        self.slots = [self.v] + ([self.mom] if momentum else [])

    def update(self, w, g):
        v, tmp = self.v, self.tmp
        v *= self.rho
        np.multiply(g, g, out=tmp)
        tmp *= self.one_minus_rho
        v += tmp
        np.add(v, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= self.learning_rate
        if self.mom is None:
            w -= tmp
        else:
            self.mom *= self.momentum
            self.mom += tmp
            w -= self.mom


class Adam(_Optimizer):
    def __init__(self, size, dtype=np.float32, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False):
        if amsgrad:
            raise ValueError("the NumPy baseline does not implement Adam(amsgrad=True)")
        t = np.dtype(dtype).type
        self.t = t
        self.grad_scale = 1.0
        self.learning_rate, self.beta_1, self.beta_2 = float(learning_rate), float(beta_1), float(beta_2)
        self.one_minus_b1, self.one_minus_b2, self.epsilon = t(1.0 - beta_1), t(1.0 - beta_2), t(epsilon)
        self.m = np.zeros(size, dtype)      # (N,)
        self.v = np.zeros(size, dtype)      # (N,)
        self.tmp = np.empty(size, dtype)
        self.iterations = 0
        self.slots = [self.m, self.v]

    def update(self, w, g):
        self.iterations += 1
        i = self.iterations
        alpha = self.t(self.learning_rate * np.sqrt(1.0 - self.beta_2 ** i) / (1.0 - self.beta_1 ** i))
        m, v, tmp = self.m, self.v, self.tmp
        np.subtract(g, m, out=tmp)
        tmp *= self.one_minus_b1
        m += tmp
        np.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= self.one_minus_b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= alpha
        w -= tmp


class Adadelta(_Optimizer):
    def __init__(self, size, dtype=np.float32, learning_rate=0.001, rho=0.95, epsilon=1e-7):
        t = np.dtype(dtype).type
        self.grad_scale = 1.0
        self.learning_rate, self.rho, self.one_minus_rho, self.epsilon = (
            t(learning_rate), t(rho), t(1.0 - rho), t(epsilon))
        self.accum_grad = np.zeros(size, dtype)     # (N,)
        self.accum_delta = np.zeros(size, dtype)    # (N,)
        self.tmp = np.empty(size, dtype)
        self.delta = np.empty(size, dtype)
        self.slots = [self.accum_grad, self.accum_delta]

    def update(self, w, g):
        a, u, tmp, d = self.accum_grad, self.accum_delta, self.tmp, self.delta
        a *= self.rho
        np.multiply(g, g, out=tmp)
        tmp *= self.one_minus_rho
        a += tmp                                    # a = rho a + (1 - rho) g^2
        np.add(a, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.add(u, self.epsilon, out=d)
        np.sqrt(d, out=d)
        d /= tmp
        d *= g                                      # d = sqrt(u + eps) / sqrt(a + eps) g  (= -delta)
        np.multiply(d, d, out=tmp)
        tmp *= self.one_minus_rho
        u *= self.rho
        u += tmp                                    # u = rho u + (1 - rho) delta^2
        d *= self.learning_rate
        w -= d                                      # w += lr delta


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adadelta": Adadelta}


def make_optimizer(name, size, dtype=np.float32, **kwargs):
    """An optimizer over an arena of ``size`` parameters; ``kwargs`` are Keras' argument names."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}; received {name!r}")
    return OPTIMIZERS[name](size, dtype, **kwargs)
