"""Random engine plans with their arenas and data, for the engine-vs-twin tests.

``random_case(rng, **choices)`` draws a model the way a user could build one (any order of dense,
activation, BatchNormalization, Dropout and permute ops, frozen or trained, regularized or not), a loss
that fits its output, an optimizer, metrics, data and sample weights. Everything is drawn from `rng`,
so a failing case can be rebuilt from its seed.
"""
from dataclasses import dataclass, field

import numpy as np

from fastnn._kernels import _engine_plan as P

ELEMENTWISE = ("linear", "relu", "sigmoid", "tanh")
# issue 14's activations (exponential left out: stacked, it overflows float32), with parameters as layers give them
NEW_ELEMENTWISE = ("elu", "selu", "gelu", ("gelu", True), "silu", "softplus", "softsign", "leaky_relu",
                   ("leaky_relu", 0.3), "relu6", "hard_sigmoid", "hard_silu", ("elu", 0.5), ("relu", 0.1, 3.0, 0.0),
                   ("relu", 0.0, None, 0.5))
OPTIMIZERS = (("sgd", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "nesterov": True}),
              ("rmsprop", {}), ("rmsprop", {"momentum": 0.5, "centered": True}), ("adam", {}),
              ("adam", {"amsgrad": True}), ("adadelta", {}), ("adagrad", {}), ("adamax", {}), ("nadam", {}),
              ("lion", {}),
              # Keras 3's base-optimizer options: clipping, decoupled weight decay (AdamW), accumulation, schedules
              ("sgd", {"momentum": 0.9, "clipnorm": 0.5}), ("rmsprop", {"global_clipnorm": 0.5}),
              ("adam", {"clipvalue": 0.05}), ("nadam", {"gradient_accumulation_steps": 2}),
              ("adam", {"weight_decay": 0.05, "gradient_accumulation_steps": 3, "clipnorm": 1.0}),
              ("adamax", {"global_clipnorm": 0.3, "gradient_accumulation_steps": 2}),
              ("sgd", {"schedule": ("cosine", (0.1, 5, 0.1, 1.0, 0.2, 2))}),
              ("lion", {"schedule": ("exponential", (0.01, 2, 0.5, 0.0)), "weight_decay": 0.1}),
              ("adagrad", {"schedule": ("piecewise", (2, 1, 3, 0.1, 0.05, 0.01)), "clipvalue": 0.1}))


@dataclass
class Case:
    plan: dict
    n_params: int
    X: np.ndarray
    y: np.ndarray
    sample_weight: object
    batch_size: int
    n_batches: int
    params0: np.ndarray
    lr: float
    uniforms: list = field(default_factory=list)

    def arenas(self):
        dtype = self.plan["dtype"]
        slots = [np.zeros(self.n_params, dtype) for _ in range(4)]
        if self.plan["optimizer"][0] == "adagrad":
            slots[0][...] = 0.1  # Keras' initial_accumulator_value
        return self.params0.copy(), np.zeros(self.n_params, dtype), slots


def _pick(rng, acts):
    return acts[int(rng.integers(len(acts)))]


def random_case(rng, dtype=None, depth=None, max_width=24, batch_size=None, rows=None, loss=None, csr=False,
                zero_fraction=None, bn=None, dropout=None, frozen=None, regularize=None, weights=None,
                optimizer=None, new_acts=None, prelu=None):
    dtype = np.dtype(dtype or rng.choice([np.float32, np.float64]))
    depth = int(depth or rng.integers(1, 5))
    n_inputs = int(rng.integers(1, 150)) if not csr else int(rng.integers(64, 200))
    ops, regs = [], []
    offset = 0
    width = n_inputs
    allow = lambda flag, p: (rng.random() < p) if flag is None else flag  # noqa: E731
    acts = ELEMENTWISE + NEW_ELEMENTWISE if allow(new_acts, 0.5) else ELEMENTWISE

    def bn_op(w):
        nonlocal offset
        c = w
        if w % 2 == 0 and rng.random() < 0.3:
            c = w // 2  # statistics over groups of channels, as on (batch, 2, w/2) data
        g = offset if rng.random() < 0.8 else -1
        offset += c if g >= 0 else 0
        b = offset if rng.random() < 0.8 else -1
        offset += c if b >= 0 else 0
        mm, mv = offset, offset + c
        offset += 2 * c
        return ("bn", w, c, g, b, mm, mv, float(rng.choice([0.0, 0.5, 0.99])), 1e-3, not allow(frozen, 0.2))

    if allow(bn, 0.15):
        ops.append(bn_op(width))
    for layer in range(depth):
        last = layer == depth - 1
        units = int(rng.integers(1, max_width)) if not last else int(rng.integers(1, 6))
        act = _pick(rng, acts + ("softmax",)) if not last else "linear"
        w_off = offset
        offset += width * units
        b_off = offset if rng.random() < 0.85 else -1
        offset += units if b_off >= 0 else 0
        trained = not allow(frozen, 0.15)
        ops.append(("dense", width, units, w_off, b_off, act, trained))
        if trained and allow(regularize, 0.3):
            regs.append((w_off, width * units, float(rng.choice([0.0, 1e-3])), float(rng.choice([0.0, 1e-2]))))
        width = units
        if not last:
            if allow(bn, 0.3):
                ops.append(bn_op(width))
            if rng.random() < 0.2:
                ops.append(("act", width, _pick(rng, acts), width))
            if allow(prelu, 0.1):
                c = width // 2 if width % 2 == 0 and rng.random() < 0.3 else width
                ops.append(("prelu", width, c, offset, not allow(frozen, 0.2)))
                offset += c
            if allow(dropout, 0.3):
                ops.append(("dropout", width, float(rng.choice([0.1, 0.5]))))
            if rng.random() < 0.1:
                ops.append(("permute", width, rng.permutation(width)))
    K = width
    loss = loss or str(rng.choice(["softmax_xent", "sigmoid_bxent", "xent", "bxent", "mse", "mae"]))
    fold = False
    if loss in ("softmax_xent", "xent"):
        if loss == "xent" or rng.random() < 0.7:
            ops.append(("act", K, "softmax", K))
            fold = loss == "softmax_xent"
    elif loss in ("sigmoid_bxent", "bxent"):
        if loss == "bxent" or rng.random() < 0.7:
            ops.append(("act", K, "sigmoid", K))
            fold = loss == "sigmoid_bxent"
    elif rng.random() < 0.3:
        ops.append(("act", K, _pick(rng, acts + ("log_softmax",)), K))
    if fold and rng.random() < 0.5 and ops[-2][0] == "dense" and ops[-2][5] == "linear":
        d = ops[-2]  # fold the activation into the last dense op instead
        ops[-2:] = [d[:5] + (ops[-1][2],) + d[6:]]
    rows = int(rows or rng.integers(1, 80))
    batch_size = int(batch_size or rng.integers(1, 68))
    if csr:
        import scipy.sparse as sp

        dense = (rng.random((rows, n_inputs)) < 0.05) * rng.random((rows, n_inputs))
        X = sp.csr_matrix(dense.astype(np.float32))
    else:
        X = rng.standard_normal((rows, n_inputs)).astype(dtype)
        zf = zero_fraction if zero_fraction is not None else float(rng.choice([0.0, 0.5, 0.8]))
        X[rng.random(X.shape) < zf] = 0
    sparse_labels = loss in ("softmax_xent", "xent") and rng.random() < 0.6 and K > 1
    if sparse_labels:
        y = rng.integers(0, K, rows)
    elif loss in ("softmax_xent", "xent"):
        y = np.eye(K, dtype=dtype)[rng.integers(0, K, rows)]
    elif loss in ("sigmoid_bxent", "bxent"):
        y = rng.integers(0, 2, (rows, K)).astype(dtype)
    else:
        y = rng.standard_normal((rows, K)).astype(dtype)
    if K == 1 and loss in ("softmax_xent", "xent") and sparse_labels:
        y = np.zeros(rows, np.intp)
    metrics = ()
    if loss in ("softmax_xent", "xent"):
        metrics = ("sparse_categorical_accuracy",) if y.ndim == 1 else ("categorical_accuracy", "mse")
    elif loss in ("sigmoid_bxent", "bxent"):
        metrics = ("binary_accuracy",)
    else:
        metrics = ("mae",)
    k = int(rng.integers(len(OPTIMIZERS)))
    opt = OPTIMIZERS[k if optimizer is None else optimizer]
    plan = dict(dtype=dtype, n_inputs=n_inputs, ops=tuple(ops), loss=(loss, fold), metrics=metrics,
                optimizer=opt, regularizers=tuple(regs))
    n_params = max(offset, 1)
    params0 = (rng.standard_normal(n_params) * 0.3).astype(dtype)
    for op in ops:  # moving variances must be positive
        if op[0] == "bn":
            params0[op[6]:op[6] + op[2]] = rng.random(op[2]) + 0.5
    sw = None
    if allow(weights, 0.3):
        sw = rng.random(rows) * 2
    n_batches = max(1, -(-rows // batch_size))
    case = Case(plan, n_params, X, y, sw, batch_size, n_batches, params0, float(rng.choice([0.01, 0.1])))
    widths = [op[1] for op in ops if op[0] == "dropout"]
    case.uniforms = [rng.random((rows, w)).astype(dtype) for w in widths]
    return case


def check_plan_valid(case):
    P.check_plan(case.plan, *case.arenas()[:2], case.arenas()[2], case.batch_size)
