"""A careful pure-NumPy MLP trainer: the baseline fastnn is measured against.

The same maths as fastnn and Keras 3, written the way a strong engineer would
write it in NumPy, so that a speed-up over it means something:

* all trainable weights live in ONE arena (``params``; kernels first, then
  biases, then BatchNormalization's gamma/beta) and every gradient in a second
  arena with the same layout, so an optimizer update is a handful of
  whole-buffer ufunc calls (numpy_optim.py), and the L2 penalty and its
  gradient are one call each over the contiguous kernels;
* per-batch work writes into buffers allocated once per batch size, reached
  through views made once per row count (``_Buffers.view``): no slicing, no
  allocation and no zeroing in a step. GEMMs write with ``np.matmul(out=)``,
  the weight gradients straight into the gradient arena; bias and
  BatchNormalization sums are GEMVs with a ones vector;
* the batch gather is ``ndarray.take(idx, axis=0, out=, mode="clip")``: with
  the default ``mode="raise"`` NumPy gathers into a hidden temporary and
  copies it (``out`` "is always buffered if mode='raise'"), 9 us instead of 3
  for a 32 x 784 float32 batch here;
* the last activation is fused into the loss: softmax + cross-entropy gives
  ``dlogits = (softmax(z) - y) / B``, sigmoid + binary cross-entropy
  ``sigmoid(z) - y``, both from the logits (the log-sum-exp after subtracting
  the row max, log1p(exp(-|z|)) for the sigmoid), in place in the logits;
* hidden activations relu / tanh / sigmoid / linear, and gelu / silu / elu /
  leaky_relu (Keras 3's definitions; their derivative from the kept
  pre-activation, as fastnn's); BatchNormalization after
  a hidden layer's activation (Keras: batch mean and biased variance, moving
  statistics with momentum 0.99, epsilon 1e-3), then inverted Dropout; L2 on
  the kernels (Keras adds ``l2 sum(W^2)`` to the loss, gradient ``2 l2 W``);
  per-sample weights with Keras' "sum_over_batch_size" (``sum(w loss) / B``);
* optimizers follow Keras 3's update rules (numpy_optim.py);
* float32 or float64 throughout (``dtype``); weights start glorot-uniform,
  biases at zero (Keras' Dense defaults), or are given with ``set_weights``;
* each epoch draws a fresh permutation and runs ``ceil(N / batch_size)``
  batches (the last one short); the reported loss is Keras' (the mean over
  samples of the batch losses, penalty included).

Why the earlier version of this file was 1.3-1.6x slower than a separate
careful implementation on a 784-100-10 SGD model (bench/README.md has the
measurements): ``np.take(..., out=)`` with mode="raise" (buffered), a
``np.sum``/``np.take`` wrapper call and a fresh ``[:n]`` view of every
buffer in every step, a bias gradient by ``np.sum(axis=0)`` instead of a GEMV,
and two passes for plain SGD where one suffices.

Dimension legend: B rows in a batch, I inputs, O units of a layer, K outputs,
N parameters in the arena.

Only NumPy is imported here, so a process running this trainer pays for
NumPy alone (the benchmarks measure each implementation's peak RSS).
"""
import numpy as np

from numpy_optim import FLUSH_EVERY, make_optimizer

# Rows per chunk in evaluate/predict (the batch size does not change results).
EVAL_ROWS = 4096

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse")
HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "gelu", "silu", "elu", "leaky_relu")
FROM_INPUT = ("gelu", "silu", "elu", "leaky_relu")  # their derivative is computed from the pre-activation
FINAL_ACTIVATION = {"sparse_categorical_crossentropy": "softmax", "categorical_crossentropy": "softmax",
                    "binary_crossentropy": "sigmoid", "mse": "linear"}
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3      # Keras BatchNormalization defaults


def glorot_uniform(rng, fan_in, fan_out, dtype=np.float32):
    # Keras GlorotUniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)).
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


def _act_from_input(act, z, out):
    """out = act(z) for FROM_INPUT activations (Keras 3: gelu's erf form, silu, elu alpha 1, leaky_relu 0.2)."""
    if act == "gelu":
        from scipy.special import erfc  # 0.5 z (1 + erf(z / sqrt 2)) without cancellation

        np.multiply(z, -np.sqrt(0.5, dtype=z.dtype), out=out)
        erfc(out, out=out)
        out *= z
        out *= 0.5
    elif act == "silu":
        np.copyto(out, z)
        _sigmoid_(out)
        out *= z
    elif act == "elu":
        np.expm1(z, out=out)
        np.copyto(out, z, where=z > 0)
    else:
        np.multiply(z, 0.2, out=out)
        np.maximum(out, z, out=out)


def _grad_from_input(act, z, tmp):
    """tmp = act'(z) for FROM_INPUT activations."""
    if act == "gelu":
        from scipy.special import erfc

        np.multiply(z, -np.sqrt(0.5, dtype=z.dtype), out=tmp)
        erfc(tmp, out=tmp)
        tmp *= 0.5
        tmp += z * np.exp(-0.5 * z * z) * (1 / np.sqrt(2 * np.pi))
    elif act == "silu":
        np.copyto(tmp, z)
        _sigmoid_(tmp)
        tmp += tmp * z * (1 - tmp)
    elif act == "elu":
        np.exp(z, out=tmp)
        tmp[z > 0] = 1
    else:
        np.copyto(tmp, np.where(z > 0, 1, 0.2).astype(tmp.dtype))


def _sigmoid_(a):
    """In place: a = 1 / (1 + exp(-a)) (exp overflows to inf for a << 0, giving exactly 0)."""
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1
    np.reciprocal(a, out=a)


class _Buffers:
    """Everything one forward/backward pass over up to ``rows`` rows writes, and ``view(n)``: the same
    arrays cut to n rows, made once per n (a step then slices nothing)."""

    def __init__(self, model, rows, y_shape, y_dtype, train):
        dt, units, hidden = model.dtype, model.units, len(model.units) - 1
        self.rows = rows
        self.x = np.empty((rows, model.input_dim), dt)                   # (B, I)
        self.y = np.empty((rows,) + y_shape, y_dtype)                     # (B,) ids or (B, K)
        self.labels = np.empty(rows, np.intp)                             # (B,) class ids (accuracy)
        self.pred = np.empty(rows, np.intp)                               # (B,)
        self.hit = np.empty(rows, np.bool_)                               # (B,)
        self.weight = np.empty(rows, dt)                                  # (B,) sample weights
        self.row_scale = np.empty((rows, 1), dt)                          # (B, 1) weight / B
        self.rowmax = np.empty((rows, 1), dt)                             # (B, 1)
        self.rowsum = np.empty((rows, 1), dt)                             # (B, 1)
        self.rowloss = np.empty((rows, 1), dt)                            # (B, 1)
        self.ones = np.ones(rows, dt)                                     # (B,) for column sums (GEMV)
        self.arange = np.arange(rows)
        self.a = [np.empty((rows, u), dt) for u in units]                 # (B, O) Dense outputs, activated
        self.bn_out = [np.empty((rows, u), dt) if model.batch_norm else None for u in units[:hidden]]
        self.xhat = [np.empty((rows, u), dt) if model.batch_norm and train else None for u in units[:hidden]]
        dropout = model.dropout > 0 and train
        self.keep = [np.empty((rows, u), dt) if dropout else None for u in units[:hidden]]   # scaled mask
        self.kept = [np.empty((rows, u), np.bool_) if dropout else None for u in units[:hidden]]
        self.drop_out = [np.empty((rows, u), dt) if dropout else None for u in units[:hidden]]
        if train:
            self.dh = [np.empty((rows, u), dt) for u in units[:hidden]]  # gradient at a layer's output
            self.tmp = [np.empty((rows, u), dt) for u in units[:hidden]]
            self.relu = [np.empty((rows, u), np.bool_) for u in units[:hidden]]
            self.z = [np.empty((rows, u), dt) if a in FROM_INPUT else None
                      for u, a in zip(units[:hidden], model.activations)]  # pre-activations kept
        # What each Dense layer reads: the input, or the layer below's last output.
        self.inp = [self.x] + [d if d is not None else b if b is not None else a
                               for a, b, d in zip(self.a, self.bn_out, self.drop_out)]
        self._views = {}

    def view(self, n):
        if n == self.rows:
            return self
        if n not in self._views:
            v = object.__new__(_Buffers)
            for key, value in self.__dict__.items():
                if isinstance(value, np.ndarray):
                    value = value[:n]
                elif isinstance(value, list):
                    value = [None if a is None else a[:n] for a in value]
                setattr(v, key, value)
            v.rows, v._views = n, {}
            self._views[n] = v
        return self._views[n]


class NumpyMLP:
    """A stack of dense layers trained with a fused output loss.

    Args:
        input_dim: I, features per sample (inputs of any shape are flattened).
        layers: [(units, activation)]: hidden activations in HIDDEN_ACTIVATIONS,
            the last one "softmax" (cross-entropies), "sigmoid" (binary
            cross-entropy, one unit) or "linear" (mse).
        loss: one of LOSSES.
        optimizer: "sgd", "rmsprop", "adam" or "adadelta"; ``optimizer_kwargs``
            its hyper-parameters (Keras names and defaults).
        seed: for the initial weights, the epoch permutations and dropout.
        batch_norm: a BatchNormalization after every hidden layer's activation.
        dropout: rate of a Dropout after every hidden layer (after the
            BatchNormalization), 0 for none.
        l2: Keras ``kernel_regularizer=l2(l2)`` on every Dense kernel, 0 for none.
        use_bias: every Dense layer has a bias.
        dtype: "float32" or "float64", for weights, data and arithmetic.
    """

    def __init__(self, input_dim, layers, loss, optimizer, optimizer_kwargs=None, seed=0, batch_norm=False,
                 dropout=0.0, l2=0.0, use_bias=True, dtype="float32"):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; received {loss!r}")
        self.input_dim = int(input_dim)
        self.units = [int(u) for u, _ in layers]
        self.activations = [a for _, a in layers]
        self.loss = loss
        if self.activations[-1] != FINAL_ACTIVATION[loss]:
            raise ValueError(f"{loss} expects a {FINAL_ACTIVATION[loss]} output layer; received "
                             f"{self.activations[-1]!r}")
        if loss == "binary_crossentropy" and self.units[-1] != 1:
            raise ValueError("binary_crossentropy expects one output unit")
        if any(a not in HIDDEN_ACTIVATIONS for a in self.activations[:-1]):
            raise ValueError(f"hidden activations must be in {HIDDEN_ACTIVATIONS}")
        self.dtype = np.dtype(dtype)
        self.batch_norm, self.dropout, self.l2, self.use_bias = bool(batch_norm), float(dropout), float(l2), use_bias
        t = self.dtype.type

        # The arena: kernels W0..WL, then biases b0..bL, then gamma/beta of each BatchNormalization.
        fans = [self.input_dim] + self.units
        shapes = [(i, o) for i, o in zip(fans[:-1], fans[1:])]
        n_kernel = sum(i * o for i, o in shapes)
        hidden = self.units[:-1]
        sizes = [n_kernel, sum(self.units) if use_bias else 0, 2 * sum(hidden) if batch_norm else 0]
        self.params = np.zeros(sum(sizes), self.dtype)          # (N,)
        self.grads = np.zeros_like(self.params)                  # (N,)
        self.kernels, self.kernel_grads = self.params[:n_kernel], self.grads[:n_kernel]
        self.W, self.dW, self.b, self.db, self.gamma, self.dgamma, self.beta, self.dbeta = ([] for _ in range(8))
        offset = 0
        for i, o in shapes:
            self.W.append(self.params[offset:offset + i * o].reshape(i, o))
            self.dW.append(self.grads[offset:offset + i * o].reshape(i, o))
            offset += i * o
        for o in self.units if use_bias else ():
            self.b.append(self.params[offset:offset + o])
            self.db.append(self.grads[offset:offset + o])
            offset += o
        for o in hidden if batch_norm else ():
            for arena, out in ((self.params, self.gamma), (self.grads, self.dgamma)):
                out.append(arena[offset:offset + o])
            for arena, out in ((self.params, self.beta), (self.grads, self.dbeta)):
                out.append(arena[offset + o:offset + 2 * o])
            offset += 2 * o
            self.gamma[-1][...] = 1
        self.moving_mean = [np.zeros(o, self.dtype) for o in hidden] if batch_norm else []
        self.moving_var = [np.ones(o, self.dtype) for o in hidden] if batch_norm else []
        self.inv_std = [np.empty(o, self.dtype) for o in hidden] if batch_norm else []
        self.bn_k = [np.empty(o, self.dtype) for o in hidden] if batch_norm else []   # gamma * inv_std
        self.bn_m = [np.empty(o, self.dtype) for o in hidden] if batch_norm else []   # scratch (O,)

        self.rng = np.random.default_rng(seed)
        self.dropout_rng = np.random.default_rng([seed, 1])
        for W in self.W:
            W[...] = glorot_uniform(self.rng, *W.shape, dtype=self.dtype)
        self.optimizer = make_optimizer(optimizer, self.params.size, self.dtype, **(optimizer_kwargs or {}))
        self.l2_grad = t(2.0 * self.l2 * self.optimizer.grad_scale)
        self.l2_tmp = np.empty(n_kernel, self.dtype) if self.l2 else None
        # Keras' rule, keep iff u < 1 - rate in float64 (as fastnn's dropout_forward): for u of this dtype that is
        # u < the smallest dtype value >= 1 - rate.
        keep_below = t(1.0 - self.dropout)
        self.keep_below = keep_below if keep_below >= 1.0 - self.dropout else np.nextafter(keep_below, t(2))
        self.inv_keep = t(1.0 / (1.0 - self.dropout)) if self.dropout < 1 else t(0)
        self._buffers = {}
        self.steps = 0

    # ------------------------------------------------------------------ weights (Keras order)
    def _weight_arrays(self):
        out = []
        for l in range(len(self.units)):
            out.append(self.W[l])
            if self.use_bias:
                out.append(self.b[l])
            if self.batch_norm and l < len(self.units) - 1:
                out += [self.gamma[l], self.beta[l], self.moving_mean[l], self.moving_var[l]]
        return out

    def get_weights(self):
        return [a.copy() for a in self._weight_arrays()]

    def set_weights(self, weights):
        arrays = self._weight_arrays()
        if len(weights) != len(arrays):
            raise ValueError(f"expected {len(arrays)} weight arrays, received {len(weights)}")
        for a, w in zip(arrays, weights):
            a[...] = w

    # ------------------------------------------------------------------ passes
    def _get_buffers(self, kind, rows, y):
        key = (kind, y.shape[1:], y.dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.rows < rows:
            buf = self._buffers[key] = _Buffers(self, rows, y.shape[1:], y.dtype, train=kind == "train")
        return buf

    def _forward(self, buf, training):
        """Fills buf.a / bn_out / drop_out; returns the last layer's pre-activation (logits)."""
        last = len(self.W) - 1
        for l, W in enumerate(self.W):
            a = buf.a[l]
            np.matmul(buf.inp[l], W, out=a)
            if self.use_bias:
                a += self.b[l]
            if l == last:
                return a
            act = self.activations[l]
            if act == "relu":
                np.maximum(a, 0, out=a)
            elif act == "tanh":
                np.tanh(a, out=a)
            elif act == "sigmoid":
                _sigmoid_(a)
            elif act in FROM_INPUT:
                z = buf.z[l] if training else np.empty_like(a)
                np.copyto(z, a)
                _act_from_input(act, z, a)
            if self.batch_norm:
                self._bn_forward(l, a, buf, training)
            if training and self.dropout > 0:
                keep, kept, h = buf.keep[l], buf.kept[l], buf.drop_out[l]
                self.dropout_rng.random(dtype=self.dtype.type, out=keep)
                np.less(keep, self.keep_below, out=kept)         # kept iff u < 1 - rate
                np.multiply(kept, self.inv_keep, out=keep)       # inverted dropout: scale the kept units
                np.multiply(buf.bn_out[l] if self.batch_norm else a, keep, out=h)
        return None

    def _bn_forward(self, l, a, buf, training):
        """BatchNormalization of a (B, O) into buf.bn_out[l] (Keras: biased batch variance in training,
        moving statistics at inference); in training keeps xhat for the backward."""
        out, inv_std, k = buf.bn_out[l], self.inv_std[l], self.bn_k[l]
        t = self.dtype.type
        if not training:
            np.add(self.moving_var[l], t(BN_EPSILON), out=inv_std)
            np.sqrt(inv_std, out=inv_std)
            np.divide(self.gamma[l], inv_std, out=k)
            np.subtract(a, self.moving_mean[l], out=out)
            out *= k
            out += self.beta[l]
            return
        n = a.shape[0]
        mean, xhat = self.bn_m[l], buf.xhat[l]
        np.matmul(buf.ones, a, out=mean)
        mean *= t(1.0 / n)
        np.subtract(a, mean, out=xhat)
        np.multiply(xhat, xhat, out=out)
        np.matmul(buf.ones, out, out=inv_std)            # sum of squared deviations
        inv_std *= t(1.0 / n)                            # biased variance
        mm, mv = self.moving_mean[l], self.moving_var[l]
        mm *= t(BN_MOMENTUM)
        mm += t(1 - BN_MOMENTUM) * mean
        mv *= t(BN_MOMENTUM)
        mv += t(1 - BN_MOMENTUM) * inv_std
        inv_std += t(BN_EPSILON)
        np.sqrt(inv_std, out=inv_std)
        np.reciprocal(inv_std, out=inv_std)
        xhat *= inv_std
        np.multiply(xhat, self.gamma[l], out=out)
        out += self.beta[l]
        np.multiply(self.gamma[l], inv_std, out=k)

    def _bn_backward(self, l, g, buf):
        """In place on g (B, O): back through BatchNormalization (Ioffe & Szegedy 2015, sec. 3):
        dx = k (dy - mean(dy) - xhat mean(dy xhat)), k = gamma / sqrt(var + eps)."""
        t = self.dtype.type
        n = g.shape[0]
        xhat, tmp, m = buf.xhat[l], buf.tmp[l], self.bn_m[l]
        dgamma, dbeta = self.dgamma[l], self.dbeta[l]
        np.matmul(buf.ones, g, out=dbeta)
        np.multiply(g, xhat, out=tmp)
        np.matmul(buf.ones, tmp, out=dgamma)
        np.multiply(dgamma, t(1.0 / n), out=m)
        np.multiply(xhat, m, out=tmp)
        np.multiply(dbeta, t(1.0 / n), out=m)
        g -= m
        g -= tmp
        g *= self.bn_k[l]

    def _loss_and_grad(self, z, buf, scale, weighted):
        """(weighted loss sum as float, correct count) of a batch; if ``scale`` is not None, overwrite the
        logits z (B, K) with scale * d(sum_b w_b loss_b)/dz in place."""
        n = z.shape[0]
        t = self.dtype.type
        y, rowloss = buf.y, buf.rowloss
        correct = 0
        if scale is not None and weighted:
            np.multiply(buf.weight[:, None], t(scale), out=buf.row_scale)
        factor = buf.row_scale if weighted else t(scale if scale is not None else 1.0)
        if self.loss == "mse":
            # Keras mse: mean over the K outputs per sample.
            k = z.shape[1]
            z -= y
            if weighted:
                np.einsum("ij,ij->i", z, z, out=rowloss[:, 0])
                loss = float(np.dot(rowloss[:, 0], buf.weight)) / k
            else:
                loss = float(np.vdot(z, z)) / k
            if scale is not None:
                z *= factor
                z *= t(2.0 / k)
            return loss, correct
        if self.loss == "binary_crossentropy":
            # From the logits: loss = max(z, 0) - z y + log1p(exp(-|z|)), gradient sigmoid(z) - y.
            hit = buf.hit
            np.greater(z[:, 0], 0, out=hit)
            np.equal(hit, buf.labels, out=hit)
            correct = int(np.count_nonzero(hit))
            r, m = rowloss, buf.rowmax
            np.abs(z, out=r)
            np.negative(r, out=r)
            np.exp(r, out=r)
            np.log1p(r, out=r)
            np.maximum(z, 0, out=m)
            r += m
            np.multiply(z, y, out=m)
            r -= m
            loss = float(np.dot(r[:, 0], buf.weight)) if weighted else float(r.sum(dtype=np.float64))
            if scale is not None:
                _sigmoid_(z)
                z -= y
                z *= factor
            return loss, correct
        # Accuracy first (argmax of logits = argmax of softmax).
        pred, hit = buf.pred, buf.hit
        np.argmax(z, axis=1, out=pred)
        np.equal(pred, buf.labels, out=hit)
        correct = int(np.count_nonzero(hit))
        # Fused softmax + cross-entropy: log-sum-exp after subtracting the row max.
        m, s = buf.rowmax, buf.rowsum
        np.max(z, axis=1, keepdims=True, out=m)
        z -= m
        if self.loss == "sparse_categorical_crossentropy":
            z_true = z[buf.arange, y]                        # (B,) shifted logit of the label
        else:  # one-hot (or soft) labels whose rows sum to 1
            z_true = np.einsum("ij,ij->i", z, y)
        np.exp(z, out=z)
        np.sum(z, axis=1, keepdims=True, out=s)
        np.log(s, out=rowloss)
        rowloss[:, 0] -= z_true
        loss = float(np.dot(rowloss[:, 0], buf.weight)) if weighted else float(rowloss.sum(dtype=np.float64))
        if scale is not None:
            z /= s
            if self.loss == "sparse_categorical_crossentropy":
                z[buf.arange, y] -= 1
            else:
                z -= y
            z *= factor
        return loss, correct

    def _train_batch(self, X, Y, L, W, idx):
        n = idx.shape[0]
        buf = self._get_buffers("train", n, Y).view(n)
        X.take(idx, axis=0, out=buf.x, mode="clip")
        Y.take(idx, axis=0, out=buf.y, mode="clip")
        if L is not None:
            L.take(idx, out=buf.labels, mode="clip")
        if W is not None:
            W.take(idx, out=buf.weight, mode="clip")
        z = self._forward(buf, training=True)
        scale = self.optimizer.grad_scale / n
        loss, correct = self._loss_and_grad(z, buf, scale, W is not None)
        g = z
        for l in range(len(self.W) - 1, -1, -1):
            np.matmul(buf.inp[l].T, g, out=self.dW[l])        # overwrite: no zeroing needed
            if self.use_bias:
                np.matmul(buf.ones, g, out=self.db[l])
            if l == 0:
                break
            dh = buf.dh[l - 1]
            np.matmul(g, self.W[l].T, out=dh)
            below = l - 1
            if self.dropout > 0:
                dh *= buf.keep[below]
            if self.batch_norm:
                self._bn_backward(below, dh, buf)
            act, a = self.activations[below], buf.a[below]
            if act == "relu":
                mask = buf.relu[below]
                np.greater(a, 0, out=mask)
                np.multiply(dh, mask, out=dh)
            elif act == "tanh":                               # 1 - a^2
                tmp = buf.tmp[below]
                np.multiply(a, a, out=tmp)
                np.subtract(1, tmp, out=tmp)
                dh *= tmp
            elif act == "sigmoid":                            # a (1 - a)
                tmp = buf.tmp[below]
                np.subtract(1, a, out=tmp)
                tmp *= a
                dh *= tmp
            elif act in FROM_INPUT:
                tmp = buf.tmp[below]
                _grad_from_input(act, buf.z[below], tmp)
                dh *= tmp
            g = dh
        if self.l2:
            # Keras adds l2 sum(W^2) of the weights the step starts from to the loss.
            loss += n * self.l2 * float(np.vdot(self.kernels, self.kernels))
            np.multiply(self.kernels, self.l2_grad, out=self.l2_tmp)
            self.kernel_grads += self.l2_tmp
        self.optimizer.update(self.params, self.grads)
        self.steps += 1
        if self.steps % FLUSH_EVERY == 0:
            self.optimizer.flush_denormals()
        return loss, correct

    # ------------------------------------------------------------------ public API
    def _targets(self, Y):
        """(loss targets in the trainer's layout, class ids for accuracy or None)."""
        Y = np.asarray(Y)
        if self.loss == "binary_crossentropy":
            Y = np.ascontiguousarray(Y.reshape(-1, 1), self.dtype)
            return Y, (Y[:, 0] > 0.5).astype(np.intp)
        if self.loss == "mse":
            return np.ascontiguousarray(Y.reshape(Y.shape[0], -1), self.dtype), None
        if Y.ndim == 1:
            Y = Y.astype(np.intp, copy=False)
            return Y, Y
        return np.ascontiguousarray(Y, self.dtype), np.argmax(Y, axis=1)

    def _inputs(self, X):
        X = X.reshape(X.shape[0], -1)
        if X.dtype != self.dtype or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, self.dtype)
        return X

    def fit(self, X, Y, epochs, batch_size, validation_data=None, shuffle=True, epoch_begin=None,
            epoch_end=None, sample_weight=None):
        """Train; returns a Keras-like history dict. ``epoch_begin(epoch)`` and
        ``epoch_end(epoch, logs)`` (after the epoch's validation) are the benchmark's timer."""
        X = self._inputs(X)
        Y, L = self._targets(Y)
        W = None if sample_weight is None else np.ascontiguousarray(sample_weight, self.dtype).reshape(-1)
        n = X.shape[0]
        history = {}
        with np.errstate(over="ignore"):   # exp(-z) of a very negative z: inf, and 1 / (1 + inf) = 0
            for epoch in range(epochs):
                if epoch_begin is not None:
                    epoch_begin(epoch)
                order = self.rng.permutation(n) if shuffle else np.arange(n)
                loss_sum, correct = 0.0, 0
                for start in range(0, n, batch_size):
                    loss, hits = self._train_batch(X, Y, L, W, order[start:start + batch_size])
                    loss_sum += loss
                    correct += hits
                logs = {"loss": loss_sum / n}
                if L is not None:
                    logs["accuracy"] = correct / n
                if validation_data is not None:
                    val = self.evaluate(*validation_data)
                    logs.update({"val_" + k: v for k, v in val.items()})
                for k, v in logs.items():
                    history.setdefault(k, []).append(v)
                if epoch_end is not None:
                    epoch_end(epoch, logs)
        return history

    def evaluate(self, X, Y):
        """{"loss": mean loss (penalty included), "accuracy": ...} over all rows, in EVAL_ROWS chunks."""
        X = self._inputs(X)
        Y, L = self._targets(Y)
        n = X.shape[0]
        loss_sum, correct = 0.0, 0
        with np.errstate(over="ignore"):
            for start in range(0, n, EVAL_ROWS):
                stop = min(n, start + EVAL_ROWS)
                buf = self._get_buffers("eval", min(n, EVAL_ROWS), Y).view(stop - start)
                buf.x[...] = X[start:stop]
                buf.y[...] = Y[start:stop]
                if L is not None:
                    buf.labels[...] = L[start:stop]
                loss, hits = self._loss_and_grad(self._forward(buf, training=False), buf, None, False)
                loss_sum += loss
                correct += hits
        out = {"loss": loss_sum / n + (self.l2 * float(np.vdot(self.kernels, self.kernels)) if self.l2 else 0.0)}
        if L is not None:
            out["accuracy"] = correct / n
        return out

    def predict(self, X):
        """Model outputs (softmax / sigmoid probabilities or linear values), (S, K)."""
        X = self._inputs(X)
        n = X.shape[0]
        dummy = np.zeros((1, 1), self.dtype)
        out = np.empty((n, self.units[-1]), self.dtype)
        with np.errstate(over="ignore"):
            for start in range(0, n, EVAL_ROWS):
                stop = min(n, start + EVAL_ROWS)
                buf = self._get_buffers("eval", min(n, EVAL_ROWS), dummy).view(stop - start)
                buf.x[...] = X[start:stop]
                z = out[start:stop]
                z[...] = self._forward(buf, training=False)
                if self.loss == "binary_crossentropy":
                    _sigmoid_(z)
                elif self.activations[-1] == "softmax":
                    z -= z.max(axis=1, keepdims=True)
                    np.exp(z, out=z)
                    z /= z.sum(axis=1, keepdims=True)
        return out
