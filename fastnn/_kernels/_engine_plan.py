"""The training engine's plan: what a model is, as the engine (compiled or NumPy twin) runs it.

Both ``engine.pyx`` and its twin ``_reference_engine.py`` take the same plan and check it
with ``check_plan`` here, so their errors are the same. ``fastnn.models.engine_plan`` builds
plans from Keras-shaped models; nothing here knows about layers.

A plan is a dict:

    dtype       np.float32 or np.float64: the arena's, the inputs' and every buffer's dtype
    n_inputs    I0, the features of one (flattened) input row
    ops         a chain of ops, each reading the previous op's output (the first reads the batch):
        ("dense", I, O, w_off, b_off, act, train)
                Y = act(X @ W + b); W = params[w_off : w_off + I*O] as (I, O), b at b_off (-1: none);
                act is elementwise or a row activation (softmax, log_softmax); train: W and b get gradients
                and updates. An activation is a name (ACTIVATIONS) or (name, *params) (act_spec)
        ("act", n, act, group)
                an activation; softmax and log_softmax normalise each run of ``group`` features (group == n:
                the row)
        ("prelu", n, C, alpha_off, train)
                PReLU: y = x if x > 0 else alpha * x, alpha = params[alpha_off : alpha_off + C], feature j of a
                row using alpha[j % C] (n = G * C: alpha shared by G groups, Keras' shared_axes over every
                axis but the last; C == n: one alpha per feature); train: alpha gets gradients and updates
        ("bn", n, C, gamma_off, beta_off, mm_off, mv_off, momentum, epsilon, train)
                BatchNormalization of the last axis, C channels (n = G * C: G groups of C features per
                row, statistics over rows and groups); gamma/beta offsets -1 when absent; train: batch
                statistics, moving statistics updated, gamma/beta trained -- else (frozen, inference)
                the moving statistics are used and nothing is updated
        ("dropout", n, rate)
                inverted dropout in training (uniforms from the caller), the identity otherwise
        ("permute", n, perm)
                out[:, j] = in[:, perm[j]]: Flatten of channels-first data
    loss        (name, fuse_last): name in LOSSES; fuse_last: the last op's softmax/sigmoid is folded
                into a softmax_xent/sigmoid_bxent loss, which then reads its pre-activation
    metrics     per-sample mean metrics computed on the model's outputs, each a name in METRICS or
                (name, threshold, weighted): binary_accuracy's threshold (default 0.5); weighted: its
                per-row values are summed times the sample weights (compile's weighted_metrics)
    optimizer   (kind, hyper): kind in OPTIMIZERS, hyper its Keras hyper-parameters and COMMON_HYPER's
                (Keras 3 base optimizer: weight_decay, clipnorm, clipvalue, global_clipnorm -- 0 for off --,
                gradient_accumulation_steps -- 0 for off --, decay_excluded: arena offsets of trained weights
                weight decay skips, schedule: None or (name, params) of a built-in learning-rate schedule,
                _optim_scalars.SCHEDULES)
    regularizers ((offset, size, l1, l2), ...): penalties l1*sum|w| + l2*sum(w^2) of arena ranges,
                added to the loss and their gradients to the updates

The optimizer updates exactly the weights of ops with ``train`` (a dense op's kernel and bias, a
batch-norm op's gamma and beta, a prelu op's alpha); moving statistics change only through their op.
"""
import numbers

import numpy as np

from fastnn._kernels._argchecks import describe_array as describe
from fastnn._kernels._optim_scalars import check_schedule

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "silu", "softplus", "softsign",
               "leaky_relu", "relu6", "hard_sigmoid", "exponential", "log_softmax", "hard_silu")
ROW_ACTIVATIONS = ("softmax", "log_softmax")  # normalise each row (run of `group` features), not elementwise
# Keras 3's defaults of the activations that take parameters (keras/src/activations/activations.py):
# relu(x, negative_slope=0.0, max_value=None, threshold=0.0), leaky_relu(x, negative_slope=0.2),
# elu(x, alpha=1.0), gelu(x, approximate=False)
ACT_PARAMS = {"relu": ("negative_slope", "max_value", "threshold"), "leaky_relu": ("negative_slope",),
              "elu": ("alpha",), "gelu": ("approximate",)}
ACT_DEFAULTS = {"relu": (0.0, None, 0.0), "leaky_relu": (0.2,), "elu": (1.0,), "gelu": (False,)}
LOSSES = ("softmax_xent", "sigmoid_bxent", "xent", "bxent", "mse", "mae")
FUSED_ACTIVATION = {"softmax_xent": "softmax", "sigmoid_bxent": "sigmoid"}
METRICS = ("binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "mae", "mse")
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adadelta", "adagrad", "adamax", "nadam", "lion")
OP_KINDS = ("dense", "act", "bn", "dropout", "permute", "prelu")
MAX_METRICS = 8
HYPER = {"sgd": {"momentum": 0.0, "nesterov": False},
         "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
         "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
         "adadelta": {"rho": 0.95, "epsilon": 1e-7},
         "adagrad": {"epsilon": 1e-7},
         "adamax": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
         "nadam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
         "lion": {"beta_1": 0.9, "beta_2": 0.99}}
COMMON_HYPER = {"weight_decay": 0.0, "clipnorm": 0.0, "clipvalue": 0.0, "global_clipnorm": 0.0,
                "gradient_accumulation_steps": 0, "decay_excluded": (), "schedule": None}
_OWNER = "Engine"


def check_int(owner, name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{owner}: `{name}` must be an integer >= {low}; received {describe(value)}.")
    return int(value)


def check_real(owner, name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{owner}: `{name}` must be a number in [{low}, {high}]; received {describe(value)}.")
    return float(value)


def act_spec(owner, act):
    """(name, params) of an activation: a name from ACTIVATIONS, or a tuple (name, *params) for one that takes
    parameters (ACT_PARAMS, in Keras' order; missing trailing ones take Keras' defaults), e.g.
    ("relu", 0.1, 6.0, 0.0), ("leaky_relu", 0.3), ("elu", 0.5), ("gelu", True). Raises ValueError naming the
    valid forms."""
    name, params = (act, ()) if isinstance(act, str) else \
        (act[0], tuple(act[1:])) if isinstance(act, tuple) and act and isinstance(act[0], str) else (None, ())
    if name not in ACTIVATIONS:
        raise ValueError(f"{owner}: Unknown activation {act!r}; expected one of {ACTIVATIONS}, or a tuple (name, "
                         f"*parameters) for one of {tuple(ACT_PARAMS)}.")
    names = ACT_PARAMS.get(name, ())
    if len(params) > len(names):
        raise ValueError(f"{owner}: activation {name!r} takes the parameters {names}; received {act!r}.")
    params = params + ACT_DEFAULTS.get(name, ())[len(params):]
    for pname, value in zip(names, params):
        ok = (isinstance(value, (bool, np.bool_)) if pname == "approximate" else
              value is None if pname == "max_value" and value is None else
              isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and np.isfinite(value))
        if not ok:
            kind = "a bool" if pname == "approximate" else "a finite number" + (" or None" if pname == "max_value"
                                                                                 else "")
            raise ValueError(f"{owner}: activation {name!r}: `{pname}` must be {kind}; received {value!r}.")
    return name, tuple(bool(v) if isinstance(v, (bool, np.bool_)) else (None if v is None else float(v))
                       for v in params)


def act_name(act):
    """The name of a plan's activation (a name or a (name, *params) tuple), None if it is neither."""
    return act if isinstance(act, str) else act[0] if isinstance(act, tuple) and act else None


def act_needs_x(act):
    """Whether an activation's backward reads its INPUT (its derivative is computed from it): every one but
    linear, relu (without parameters), sigmoid, tanh, softmax and log_softmax, which use their output."""
    name, params = act_spec("activation", act)
    if name == "relu":
        return params != ACT_DEFAULTS["relu"]
    return name not in ("linear", "sigmoid", "tanh", "softmax", "log_softmax")


def _act(owner, act):
    act_spec(owner, act)
    return act


def op_width(op):
    """Features of an op's output."""
    return op[2] if op[0] == "dense" else op[1]


def op_input_width(op):
    return op[1]


def op_weights(op):
    """[(name, offset, size, trained)] of the arena ranges an op reads (absent ones left out)."""
    kind = op[0]
    if kind == "dense":
        _, i, o, w_off, b_off, _, train = op
        out = [("kernel", w_off, i * o, train)]
        if b_off >= 0:
            out.append(("bias", b_off, o, train))
        return out
    if kind == "bn":
        _, _, c, g_off, b_off, mm_off, mv_off, _, _, train = op
        out = [(name, off, c, train) for name, off in (("gamma", g_off), ("beta", b_off)) if off >= 0]
        return out + [("moving_mean", mm_off, c, False), ("moving_variance", mv_off, c, False)]
    if kind == "prelu":
        return [("alpha", op[3], op[2], op[4])]
    return []


def _check_op(owner, k, op, width):
    if not isinstance(op, tuple) or not op or op[0] not in OP_KINDS:
        raise ValueError(f"{owner}: op {k} must be a tuple starting with one of {OP_KINDS}; received {op!r}.")
    where = f"{owner} op {k} ({op[0]})"
    kind = op[0]
    sizes = {"dense": 7, "act": 4, "bn": 10, "dropout": 3, "permute": 3, "prelu": 5}
    if len(op) != sizes[kind]:
        raise ValueError(f"{where}: expected {sizes[kind]} fields; received {op!r}.")
    n_in = check_int(where, "inputs", op[1], 1)
    if n_in != width:
        raise ValueError(f"{where} reads {n_in} features but the op before it gives {width}.")
    if kind == "dense":
        check_int(where, "units", op[2], 1)
        check_int(where, "w_offset", op[3], 0)
        check_int(where, "b_offset", op[4], -1)
        _act(where, op[5])
    elif kind == "act":
        _act(where, op[2])
        group = check_int(where, "group", op[3], 1)
        if n_in % group:
            raise ValueError(f"{where}: `group` {group} must divide the {n_in} features.")
    elif kind == "bn":
        c = check_int(where, "channels", op[2], 1)
        if n_in % c:
            raise ValueError(f"{where}: {c} channels must divide the {n_in} features.")
        for name, value, low in zip(("gamma_offset", "beta_offset", "moving_mean_offset", "moving_variance_offset"),
                                    op[3:7], (-1, -1, 0, 0)):
            check_int(where, name, value, low)
        check_real(where, "momentum", op[7], 0.0, 1.0)
        check_real(where, "epsilon", op[8], 0.0, np.inf)
    elif kind == "dropout":
        check_real(where, "rate", op[2], 0.0, 1.0)
    elif kind == "prelu":
        c = check_int(where, "channels", op[2], 1)
        if n_in % c:
            raise ValueError(f"{where}: {c} channels must divide the {n_in} features.")
        check_int(where, "alpha_offset", op[3], 0)
    else:
        perm = np.asarray(op[2])
        if perm.shape != (n_in,) or perm.dtype.kind not in "iu" or not np.array_equal(np.sort(perm), np.arange(n_in)):
            raise ValueError(f"{where}: `perm` must be a permutation of range({n_in}); received {describe(op[2])}.")
    return op_width(op)


def check_arena(owner, name, a, n, dtype):
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        raise TypeError(f"{owner}: argument `{name}` must be a {np.dtype(dtype).name} NumPy array like the "
                        f"plan's dtype; received {describe(a)}.")
    if a.ndim != 1 or (n >= 0 and a.shape[0] != n):
        raise ValueError(f"{owner}: argument `{name}` must be a 1-D array of {n if n >= 0 else 'N'} elements; "
                         f"received {describe(a)}.")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{owner}: argument `{name}` is updated in place and must be a writeable C-contiguous "
                         f"array; received {describe(a)}.")
    return a


def needed_slots(optimizer):
    """Which of the optimizer's four state buffers a configuration uses (the fourth: the accumulated
    gradient of gradient_accumulation_steps)."""
    kind, hyper = optimizer
    acc = bool(hyper.get("gradient_accumulation_steps", 0))
    if kind == "sgd":
        return (hyper.get("momentum", 0.0) != 0, False, False, acc)
    if kind == "rmsprop":
        return (True, hyper.get("momentum", 0.0) > 0, bool(hyper.get("centered", False)), acc)
    if kind == "adam":
        return (True, True, bool(hyper.get("amsgrad", False)), acc)
    if kind in ("adagrad", "lion"):
        return (True, False, False, acc)
    return (True, True, False, acc)


def _check_common(owner, hyper):
    """COMMON_HYPER's values: non-negative finite factors, an accumulation of 0 or >= 2 steps, one clip."""
    for name in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
        hyper[name] = check_real(owner, name, hyper[name], 0.0, np.finfo(np.float64).max)
    if sum(hyper[name] > 0 for name in ("clipnorm", "clipvalue", "global_clipnorm")) > 1:
        raise ValueError(f"{owner}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set; received "
                         f"{ {k: hyper[k] for k in ('clipnorm', 'clipvalue', 'global_clipnorm')} }.")
    steps = check_int(owner, "gradient_accumulation_steps", hyper["gradient_accumulation_steps"], 0)
    if steps == 1:
        raise ValueError(f"{owner}: `gradient_accumulation_steps` must be 0 (off) or an integer >= 2; received 1.")
    hyper["decay_excluded"] = tuple(check_int(owner, "decay_excluded offset", o, 0) for o in hyper["decay_excluded"])
    if hyper["schedule"] is not None:
        name, params = hyper["schedule"]
        hyper["schedule"] = (name, check_schedule(owner, name, params))
    return hyper


def check_learning_rate(owner, learning_rate, n_batches):
    """(lr, None) for a number, or (0.0, rates) for (n_batches,) per-step rates."""
    if isinstance(learning_rate, np.ndarray):
        rates = np.ascontiguousarray(learning_rate, dtype=np.float64)
        if rates.shape != (n_batches,) or not np.isfinite(rates).all() or (rates < 0).any():
            raise ValueError(f"{owner}: argument `learning_rate` as an array must hold one finite, non-negative "
                             f"rate per step ({n_batches}); received {describe(learning_rate)}.")
        return 0.0, rates
    return check_real(owner, "learning_rate", learning_rate, 0.0, np.inf), None


def _check_metric(owner, metric):
    """A plan's metric as (name, threshold, weighted)."""
    spec = (metric, 0.5, False) if isinstance(metric, str) else tuple(metric) if isinstance(metric, tuple) else ()
    if len(spec) != 3 or spec[0] not in METRICS or isinstance(spec[1], bool) \
            or not isinstance(spec[1], numbers.Real) or not np.isfinite(spec[1]) or not isinstance(spec[2], bool):
        raise ValueError(f"{owner}: each of `metrics` must be a name from {METRICS} or (name, finite threshold, "
                         f"weighted bool); received {metric!r}.")
    return spec[0], float(spec[1]), spec[2]


def metric_names(plan):
    return [m if isinstance(m, str) else m[0] for m in plan["metrics"]]


def check_plan(plan, params, grads, slots, batch_size, owner=_OWNER):
    """Validate a plan against its arenas; return (plan with defaults filled, slots as a 3-tuple)."""
    if not isinstance(plan, dict):
        raise ValueError(f"{owner}: argument `plan` must be a dict; received {describe(plan)}.")
    missing = {"dtype", "n_inputs", "ops", "loss", "metrics", "optimizer", "regularizers"} - set(plan)
    if missing:
        raise ValueError(f"{owner}: the plan lacks {sorted(missing)}.")
    dtype = np.dtype(plan["dtype"])
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{owner}: the plan's dtype must be float32 or float64; received {dtype}.")
    n = check_arena(owner, "params", params, -1, dtype).shape[0]
    check_arena(owner, "grads", grads, n, dtype)
    check_int(owner, "batch_size", batch_size, 1)
    width = check_int(owner, "n_inputs", plan["n_inputs"], 1)
    ops = tuple(tuple(op) for op in plan["ops"])
    if not ops:
        raise ValueError(f"{owner}: the plan must hold at least one op; received none.")
    used = np.zeros(n, np.int8)
    for k, op in enumerate(ops):
        width = _check_op(owner, k, op, width)
        for name, off, size, _ in op_weights(op):
            if off + size > n:
                raise ValueError(f"{owner} op {k} ({op[0]}): its {name} [{off}, {off + size}) does not fit in a "
                                 f"parameter arena of {n} elements.")
            used[off:off + size] += 1
    if (used > 1).any():
        raise ValueError(f"{owner}: ops overlap in the parameter arena; each weight needs its own range.")
    loss = tuple(plan["loss"])
    if len(loss) != 2 or loss[0] not in LOSSES:
        raise ValueError(f"{owner}: `loss` must be (name, fuse_last) with a name in {LOSSES}; received {loss!r}.")
    if loss[1]:
        last = ops[-1]
        act = last[5] if last[0] == "dense" else (last[2] if last[0] == "act" else None)
        if FUSED_ACTIVATION.get(loss[0]) != act_name(act) or (last[0] == "act" and last[3] != last[1]):
            raise ValueError(f"{owner}: loss {loss[0]!r} can fold the last op's activation only when it is "
                             f"{FUSED_ACTIVATION.get(loss[0])!r} over the whole row; the last op is {last!r}.")
    metrics = tuple(_check_metric(owner, m) for m in plan["metrics"])
    if len(metrics) > MAX_METRICS:
        raise ValueError(f"{owner}: `metrics` must be at most {MAX_METRICS} metrics; received {len(metrics)}.")
    kind, hyper = plan["optimizer"]
    if kind not in OPTIMIZERS:
        raise ValueError(f"{owner}: unknown optimizer {kind!r}; expected one of {OPTIMIZERS}.")
    hyper = {**HYPER[kind], **COMMON_HYPER, **dict(hyper)}
    unknown = set(hyper) - set(HYPER[kind]) - set(COMMON_HYPER)
    if unknown:
        raise ValueError(f"{owner}: optimizer {kind!r} takes {sorted(HYPER[kind])} and {sorted(COMMON_HYPER)}; "
                         f"received {sorted(unknown)}.")
    hyper = _check_common(owner, hyper)
    regs = tuple(tuple(r) for r in plan["regularizers"])
    for off, size, l1, l2 in regs:
        check_int(owner, "regularizer offset", off, 0)
        check_int(owner, "regularizer size", size, 1)
        if off + size > n or l1 < 0 or l2 < 0:
            raise ValueError(f"{owner}: a regularizer ({off}, {size}, {l1}, {l2}) must cover arena elements "
                             f"of {n} with non-negative factors.")
    slots = tuple(slots) + (None,) * (4 - len(tuple(slots)))
    for k, needed in enumerate(needed_slots((kind, hyper))):
        if slots[k] is not None or needed:
            check_arena(owner, f"slots[{k}]", slots[k], n, dtype)
    plan = dict(plan, dtype=dtype, ops=ops, loss=loss, metrics=metrics, optimizer=(kind, hyper), regularizers=regs)
    return plan, slots[:4]


def trained_ranges(ops):
    """Arena ranges (offset, size) the optimizer updates, in op order."""
    return [(off, size) for op in ops for _, off, size, trained in op_weights(op) if trained]


def check_uniforms(owner, ops, uniforms, rows, dtype):
    """One (rows, n) array of the plan's dtype, uniform in [0, 1), per dropout op with rate > 0, in order."""
    widths = [op[1] for op in ops if op[0] == "dropout"]
    if not widths:
        return []
    if uniforms is None or len(uniforms) != len(widths):
        raise ValueError(f"{owner}: argument `uniforms` must hold one array per dropout op ({len(widths)}); "
                         f"received {describe(uniforms)}.")
    out = []
    for k, (u, w) in enumerate(zip(uniforms, widths)):
        if not isinstance(u, np.ndarray) or u.dtype != dtype or u.ndim != 2 or u.shape[1] != w \
                or u.shape[0] < rows or not u.flags.c_contiguous:
            raise ValueError(f"{owner}: `uniforms[{k}]` must be a C-contiguous {np.dtype(dtype).name} array of "
                             f"shape ({rows}, {w}); received {describe(u)}.")
        out.append(u)
    return out


def check_labels(owner, plan, y, S, values=True):
    """(ids, Y): int class ids (S,) for the categorical losses, or (S, K) labels of the plan's dtype.
    values=False leaves the values' checks (class ids in range, finite labels) to the caller: the compiled
    engine checks the rows a call uses in one pass (label_error gives the message)."""
    loss = plan["loss"][0]
    K = op_width(plan["ops"][-1])
    dtype = plan["dtype"]
    y = np.asarray(y)
    if y.ndim == 1 and loss in ("softmax_xent", "xent"):
        if y.shape[0] != S:
            raise ValueError(f"{owner}: argument `y` must have {S} rows like X; received {describe(y)}.")
        if y.dtype.kind not in "iu":
            if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.floor(y)).all():
                y = y.astype(np.intp)
            else:
                raise ValueError(f"{owner}: argument `y` must hold integer class ids; received {describe(y)}.")
        ids = np.ascontiguousarray(y, dtype=np.intp)
        if values and S and (ids.min() < 0 or ids.max() >= K):
            raise label_error(owner, plan, ids.min() if ids.min() < 0 else ids.max())
        bad_metrics = [m for m in metric_names(plan) if m != "sparse_categorical_accuracy"]
        if bad_metrics:
            raise ValueError(f"{owner}: metrics {bad_metrics} need labels of shape ({S}, {K}); received class ids "
                             f"{describe(y)}.")
        return ids, None
    if y.ndim == 1 and K == 1:
        y = y.reshape(-1, 1)
    if y.shape != (S, K) or y.dtype.kind not in "fiub":
        raise ValueError(f"{owner}: argument `y` must have shape ({S}, {K}); received {describe(y)}.")
    Y = np.ascontiguousarray(y, dtype=dtype)
    if values and not np.isfinite(Y).all():
        raise label_error(owner, plan, None)
    if "sparse_categorical_accuracy" in metric_names(plan):
        raise ValueError(f"{owner}: metric 'sparse_categorical_accuracy' needs int class ids of shape ({S},); "
                         f"received {describe(y)}.")
    return None, Y


def label_error(owner, plan, bad_id):
    """The error for a class id out of range (bad_id), or for a label that is NaN or inf (None)."""
    K = op_width(plan["ops"][-1])
    if bad_id is None:
        return ValueError(f"{owner}: argument `y` must be finite; received labels containing NaN or inf.")
    return ValueError(f"{owner}: argument `y` holds class ids that must be in [0, {K}) for {K} classes; "
                      f"received an id of {bad_id}.")


def order_error(owner, bad, S):
    return ValueError(f"{owner}: argument `order` holds row ids that must be in [0, {S}); received {bad}.")


def check_sample_weight(owner, sw, S):
    if sw is None:
        return None
    w = np.asarray(sw)
    if w.shape != (S,) or w.dtype.kind not in "fiub":
        raise ValueError(f"{owner}: argument `sample_weight` must hold one number per row, shape ({S},); "
                         f"received {describe(sw)}.")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{owner}: argument `sample_weight` must be finite; received {describe(sw)}.")
    return w


def check_order(owner, order, first_batch, n_batches, batch_size, S, values=True):
    """order as a C-contiguous intp array whose used ids are in [0, S); (order, rows of the call)."""
    if not isinstance(order, np.ndarray) or order.ndim != 1 or order.dtype.kind not in "iu":
        raise ValueError(f"{owner}: argument `order` must be a 1-D integer array of row ids; received "
                         f"{describe(order)}.")
    order = np.ascontiguousarray(order, dtype=np.intp)
    first_batch = check_int(owner, "first_batch", first_batch, 0)
    n_batches = check_int(owner, "n_batches", n_batches, 0)
    start = first_batch * batch_size
    stop = min((first_batch + n_batches) * batch_size, order.shape[0])
    if n_batches and start + (n_batches - 1) * batch_size >= order.shape[0]:
        raise ValueError(f"{owner}: batches {first_batch}..{first_batch + n_batches - 1} of {batch_size} rows "
                         f"need more than the {order.shape[0]} rows of `order`.")
    used = order[start:stop]
    if values and used.size and (used.min() < 0 or used.max() >= S):
        raise order_error(owner, used.min() if used.min() < 0 else used.max(), S)
    return order, first_batch, n_batches, max(0, stop - start)


def check_dense_x(owner, X, n_inputs, dtype):
    if not isinstance(X, np.ndarray) or X.dtype != dtype:
        raise ValueError(f"{owner}: argument `X` must be a {np.dtype(dtype).name} array like the parameters; "
                         f"received {describe(X)}.")
    if X.ndim != 2 or X.shape[1] != n_inputs:
        raise ValueError(f"{owner}: argument `X` must have shape (None, {n_inputs}); received {describe(X)}.")
    return np.ascontiguousarray(X)
