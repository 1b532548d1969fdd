"""A compiled model as the training engine sees it: ``build_plan`` turns a Sequential's layers, loss, metrics,
optimizer and regularizers into the engine's plan (``fastnn._kernels._engine_plan`` documents its format).

Each layer class maps to engine ops through one function in ``_LAYER_OPS``; adding a layer to the engine
means adding its ops there (and the ops to the engine, docs/engine.md). Layers that do nothing to a row-major
batch (Flatten of channels-last data, Dropout(0)) give no op.
"""
import math

import numpy as np

from fastnn.layers.activation import Activation
from fastnn.layers.batch_normalization import BatchNormalization
from fastnn.layers.dense import Dense
from fastnn.layers.dropout import Dropout
from fastnn.layers.elu import ELU
from fastnn.layers.flatten import Flatten
from fastnn.layers.leaky_relu import LeakyReLU
from fastnn.layers.prelu import PReLU
from fastnn.layers.relu import ReLU
from fastnn.layers.softmax import Softmax


def _features(shape):
    return math.prod(shape[1:]) if len(shape) > 1 else 1


def _dense_ops(layer, ctx):
    trained = ctx["trainable"] and layer.trainable
    w_off = ctx["offset"](layer.kernel)
    b_off = ctx["offset"](layer.bias) if layer.use_bias else -1
    if trained:
        for weight, off in ((layer.kernel, w_off), (layer.bias, b_off)):
            if weight is not None:
                ctx["regularize"](weight, off)
    return [("dense", layer.kernel.shape[0], layer.units, w_off, b_off, layer.activation_name, trained)]


def _activation_ops(layer, ctx):
    shape = layer.input_shape
    return [("act", _features(shape), layer.activation_spec, shape[-1])]


def _prelu_ops(layer, ctx):
    trained = ctx["trainable"] and layer.trainable
    off = ctx["offset"](layer.alpha)
    if trained:
        ctx["regularize"](layer.alpha, off)
    return [("prelu", _features(layer.input_shape), layer.channels, off, trained)]


def _batch_norm_ops(layer, ctx):
    shape = layer.input_shape
    offsets = [-1 if w is None else ctx["offset"](w)
               for w in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)]
    # A frozen layer normalizes with its moving statistics in training too (Keras 3), and learns nothing.
    return [("bn", _features(shape), shape[-1], *offsets, layer.momentum, layer.epsilon,
             ctx["trainable"] and layer.trainable)]


def _dropout_ops(layer, ctx):
    if layer.rate == 0:
        return []
    ctx["dropouts"].append(layer)
    return [("dropout", _features(layer.input_shape), layer.rate)]


def _flatten_ops(layer, ctx):
    shape = layer.input_shape
    if layer.data_format != "channels_first" or len(shape) <= 2:
        return []  # a row-major batch is already flat
    # Keras moves the channel axis last before flattening: output feature j reads input feature perm[j]
    dims = tuple(shape[1:])
    perm = np.arange(int(np.prod(dims))).reshape(dims)
    return [("permute", perm.size, np.ascontiguousarray(np.moveaxis(perm, 0, -1).reshape(-1), dtype=np.intp))]


_LAYER_OPS = {Dense: _dense_ops, Activation: _activation_ops, BatchNormalization: _batch_norm_ops,
              Dropout: _dropout_ops, Flatten: _flatten_ops, ReLU: _activation_ops, LeakyReLU: _activation_ops,
              ELU: _activation_ops, Softmax: _activation_ops, PReLU: _prelu_ops}


def _loss_spec(loss, last_op):
    """(engine loss name, fold): a cross-entropy on the matching softmax/sigmoid reads its logits (Keras'
    TensorFlow path), from_logits reads the outputs as logits, anything else reads the outputs. A model
    compiled without a loss (or not compiled) gets one it never uses: it only predicts."""
    if loss is None:
        return "mse", False
    if loss.fused_activation is None:
        return loss.kernel, False
    if loss.from_logits:
        return loss.logits_kernel, False
    act = last_op[5] if last_op[0] == "dense" else (last_op[2] if last_op[0] == "act" else None)
    whole_row = last_op[0] == "dense" or last_op[3] == last_op[1]
    if act == loss.fused_activation and whole_row:
        return loss.logits_kernel, True
    return loss.kernel, False


def build_plan(model, loss, metrics, optimizer, weighted=()):
    """(plan, the Dropout layers of the dropout ops in order, custom regularizers) for a built Sequential
    model (``weighted``: per metric, whether it is one of compile's weighted_metrics). L1/L2 penalties run in
    the engine; a Regularizer subclass with its own penalty is returned as
    (weight, regularizer) pairs for the engine's gradient hook."""
    regs, custom = [], []

    def regularize(weight, off):
        reg = weight.regularizer
        if reg is None:
            return
        try:
            l1, l2 = reg._factors()
        except NotImplementedError:  # its own __call__ and backward
            custom.append((weight, reg))
            return
        if l1 or l2:
            regs.append((off, weight.value.size, float(l1), float(l2)))

    ctx = {"offset": model.weight_offset, "trainable": model.trainable, "regularize": regularize, "dropouts": []}
    ops = []
    for layer in model.layers:
        make = _LAYER_OPS.get(type(layer))
        if make is None:
            raise ValueError(f"Layer '{layer.name}' of type {type(layer).__name__} has no engine ops.")
        ops += make(layer, ctx)
    n_inputs = _features(model.input_shape)
    if not ops:  # a model of Flatten layers only: the engine still needs one op to run
        ops = [("act", n_inputs, "linear", n_inputs)]
    plan = dict(dtype=model._params.dtype, n_inputs=n_inputs, ops=tuple(ops), loss=_loss_spec(loss, ops[-1]),
                metrics=tuple((m.kernel, m.threshold, bool(w)) for m, w in
                              zip(metrics, tuple(weighted) + (False,) * (len(metrics) - len(weighted)))
                              if m.kernel is not None),
                optimizer=("sgd", {}) if optimizer is None else (optimizer.kind, optimizer.engine_hyper(model)),
                regularizers=tuple(regs))
    return plan, ctx["dropouts"], custom


def plan_key(plan):
    """A hashable summary of a plan (its permutations by content)."""
    ops = plan["ops"]
    if any(op[0] == "permute" for op in ops):
        ops = tuple(tuple(f.tobytes() if isinstance(f, np.ndarray) else f for f in op) for op in ops)
    return (np.dtype(plan["dtype"]).name, plan["n_inputs"], ops, plan["loss"], plan["metrics"],
            (plan["optimizer"][0], tuple(sorted(plan["optimizer"][1].items()))), plan["regularizers"])
