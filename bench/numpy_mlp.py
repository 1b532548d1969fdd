"""A careful pure-NumPy MLP trainer: the baseline fastnn is measured against.

The same float32 maths as fastnn and Keras 3, written the way a strong engineer
would write it in NumPy, so that a speed-up over it means something:

* every weight and bias lives in ONE float32 arena (``params``) and every
  gradient in a second arena with the same layout, so an optimizer update is a
  handful of whole-buffer ufunc calls, not one call per tensor;
* per-batch work writes into buffers allocated once per batch size
  (``np.take(..., out=)``, ``np.matmul(..., out=)``, in-place ufuncs); the
  weight gradients are written straight into the gradient arena by the GEMM,
  so nothing needs zeroing;
* the last activation is fused into the loss: softmax + cross-entropy gives
  ``dlogits = (softmax(z) - y) / B`` in place in the logits buffer (the
  log-sum-exp is taken after subtracting the row max);
* optimizers follow Keras 3's update rules (keras/src/optimizers/adam.py,
  rmsprop.py, sgd.py): Adam with the bias correction folded into the step size
  and epsilon outside the square root, RMSprop with epsilon inside it;
* weights start glorot-uniform, biases at zero (Keras' Dense defaults);
* each epoch draws a fresh permutation, runs ``ceil(N / batch_size)`` batches
  (the last one short) and then evaluates the validation data in 4,096-row
  chunks, as ``fit(..., validation_data=...)`` does.

Dimension legend: B rows in a batch, I inputs, O units of a layer, K classes,
N parameters in the arena.

Only NumPy is imported here, so a process running this trainer pays for
NumPy alone (the benchmark measures each implementation's peak RSS).
"""
import numpy as np

# Rows per chunk in evaluate/predict (the batch size does not change results).
EVAL_ROWS = 4096

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "mse")


def glorot_uniform(rng, fan_in, fan_out, dtype=np.float32):
    # Keras GlorotUniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)).
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


# --------------------------------------------------------------------------- optimizers
# Each works on the flat parameter arena w (N,) and gradient arena g (N,), with
# one scratch buffer (N,) so no step allocates.
class SGD:
    def __init__(self, size, learning_rate=0.01):
        self.learning_rate = np.float32(learning_rate)
        self.tmp = np.empty(size, np.float32)

    def update(self, w, g):
        np.multiply(g, self.learning_rate, out=self.tmp)
        w -= self.tmp


class RMSprop:
    """Keras 3: v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps)."""

    def __init__(self, size, learning_rate=0.001, rho=0.9, epsilon=1e-7):
        self.learning_rate = np.float32(learning_rate)
        self.rho = np.float32(rho)
        self.one_minus_rho = np.float32(1.0 - rho)
        self.epsilon = np.float32(epsilon)
        self.v = np.zeros(size, np.float32)
        self.tmp = np.empty(size, np.float32)

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
        w -= tmp


class Adam:
    """Keras 3: alpha = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1);
    v += (g^2 - v)(1 - b2); w -= alpha m / (sqrt(v) + eps)."""

    def __init__(self, size, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.learning_rate = learning_rate
        self.beta_1, self.beta_2 = beta_1, beta_2
        self.one_minus_b1 = np.float32(1.0 - beta_1)
        self.one_minus_b2 = np.float32(1.0 - beta_2)
        self.epsilon = np.float32(epsilon)
        self.m = np.zeros(size, np.float32)
        self.v = np.zeros(size, np.float32)
        self.tmp = np.empty(size, np.float32)
        self.iterations = 0

    def update(self, w, g):
        self.iterations += 1
        t = self.iterations
        alpha = np.float32(self.learning_rate * np.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t))
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


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


# --------------------------------------------------------------------------- buffers
class _Buffers:
    """Everything one forward/backward pass over up to ``rows`` rows writes."""

    def __init__(self, rows, input_dim, units, n_outputs, y_shape, y_dtype, backward):
        self.rows = rows
        self.x = np.empty((rows, input_dim), np.float32)                  # (B, I)
        self.acts = [np.empty((rows, u), np.float32) for u in units]      # (B, O_l)
        self.y = np.empty((rows,) + y_shape, y_dtype)                     # (B,) or (B, K)
        self.labels = np.empty(rows, np.intp)                              # (B,) class ids for accuracy
        self.pred = np.empty(rows, np.intp)                                # (B,) argmax
        self.hit = np.empty(rows, np.bool_)                                # (B,)
        self.rowmax = np.empty((rows, 1), np.float32)                      # (B, 1)
        self.rowsum = np.empty((rows, 1), np.float32)                      # (B, 1)
        self.arange = np.arange(rows)
        if backward:
            # dA of every hidden layer's output, and its ReLU mask.
            self.deltas = [np.empty((rows, u), np.float32) for u in units[:-1]]
            self.masks = [np.empty((rows, u), np.bool_) for u in units[:-1]]


class NumpyMLP:
    """A stack of dense layers trained on float32 with a fused output loss.

    Args:
        input_dim: I, features per sample (inputs of any shape are flattened).
        layers: [(units, activation)], hidden activations "relu" or "linear",
            the last one "softmax" (with a cross-entropy) or "linear" (mse).
        loss: one of LOSSES.
        optimizer: "sgd", "rmsprop" or "adam"; ``optimizer_kwargs`` its
            hyper-parameters (Keras names and defaults).
        seed: for the initial weights and the epoch permutations.
    """

    def __init__(self, input_dim, layers, loss, optimizer, optimizer_kwargs=None, seed=0):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; received {loss!r}")
        self.input_dim = int(input_dim)
        self.units = [int(u) for u, _ in layers]
        self.activations = [a for _, a in layers]
        self.loss = loss
        final = self.activations[-1]
        if loss == "mse" and final != "linear":
            raise ValueError("mse expects a linear output layer")
        if loss != "mse" and final != "softmax":
            raise ValueError("cross-entropy expects a softmax output layer")
        if any(a not in ("relu", "linear") for a in self.activations[:-1]):
            raise ValueError("hidden activations must be 'relu' or 'linear'")

        # One arena: W0, b0, W1, b1, ...; layers hold views.
        fans = [self.input_dim] + self.units
        sizes = []
        for fan_in, fan_out in zip(fans[:-1], fans[1:]):
            sizes += [fan_in * fan_out, fan_out]
        self.params = np.zeros(sum(sizes), np.float32)                   # (N,)
        self.grads = np.zeros_like(self.params)                           # (N,)
        self.W, self.b, self.dW, self.db = [], [], [], []
        offset = 0
        for fan_in, fan_out in zip(fans[:-1], fans[1:]):
            for arena, ws, bs in ((self.params, self.W, self.b), (self.grads, self.dW, self.db)):
                ws.append(arena[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out))
                bs.append(arena[offset + fan_in * fan_out:offset + fan_in * fan_out + fan_out])
            offset += fan_in * fan_out + fan_out

        self.rng = np.random.default_rng(seed)
        for W in self.W:
            W[...] = glorot_uniform(self.rng, *W.shape)
        self.optimizer = OPTIMIZERS[optimizer](self.params.size, **(optimizer_kwargs or {}))
        self._train_buffers = None
        self._eval_buffers = None

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        out = []
        for W, b in zip(self.W, self.b):
            out += [W.copy(), b.copy()]
        return out

    def set_weights(self, weights):
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            W[...] = weights[2 * i]
            b[...] = weights[2 * i + 1]

    # ------------------------------------------------------------------ passes
    def _buffers(self, kind, rows, y):
        current = self._train_buffers if kind == "train" else self._eval_buffers
        y_shape, y_dtype = y.shape[1:], y.dtype
        stale = current is None or current.rows < rows
        if stale or current.y.shape[1:] != y_shape or current.y.dtype != y_dtype:
            current = _Buffers(rows, self.input_dim, self.units, self.units[-1], y_shape, y_dtype,
                               backward=kind == "train")
            if kind == "train":
                self._train_buffers = current
            else:
                self._eval_buffers = current
        return current

    def _forward(self, x, buf, n):
        """Fills buf.acts[l][:n]; the last layer stops at its pre-activation (logits)."""
        a = x
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            z = buf.acts[l][:n]
            np.matmul(a, W, out=z)
            z += b
            if l < last and self.activations[l] == "relu":
                np.maximum(z, 0, out=z)
            a = z
        return a

    def _loss_and_grad(self, z, y, labels, buf, n, scale):
        """Loss sum (float64) and correct count of a batch; if ``scale`` is not None,
        overwrite z (B, K) with d(scale * loss_sum)/dz in place."""
        correct = 0
        if self.loss == "mse":
            # Keras mse: mean over K, here K = outputs; loss_sum sums the per-sample means.
            k = z.shape[1]
            z -= y
            loss = float(np.einsum("ij,ij->", z, z, dtype=np.float64)) / k
            if scale is not None:
                z *= np.float32(2.0 * scale / k)
            return loss, correct
        # Accuracy first (argmax of logits = argmax of softmax).
        pred, hit = buf.pred[:n], buf.hit[:n]
        np.argmax(z, axis=1, out=pred)
        np.equal(pred, labels, out=hit)
        correct = int(np.count_nonzero(hit))
        # Fused softmax + cross-entropy: log-sum-exp after subtracting the row max.
        m, s = buf.rowmax[:n], buf.rowsum[:n]
        np.max(z, axis=1, keepdims=True, out=m)
        z -= m
        if self.loss == "sparse_categorical_crossentropy":
            z_true = z[buf.arange[:n], y]                    # (B,) shifted logit of the label
            np.exp(z, out=z)
            np.sum(z, axis=1, keepdims=True, out=s)
            loss = float(np.log(s).sum(dtype=np.float64) - z_true.sum(dtype=np.float64))
            if scale is not None:
                z /= s
                z[buf.arange[:n], y] -= 1.0
                z *= np.float32(scale)
        else:  # one-hot (or soft) labels whose rows sum to 1
            z_true = np.einsum("ij,ij->", z, y, dtype=np.float64)
            np.exp(z, out=z)
            np.sum(z, axis=1, keepdims=True, out=s)
            loss = float(np.log(s).sum(dtype=np.float64) - z_true)
            if scale is not None:
                z /= s
                z -= y
                z *= np.float32(scale)
        return loss, correct

    def _train_batch(self, X, Y, L, idx):
        n = idx.shape[0]
        buf = self._buffers("train", n, Y)
        x, y, labels = buf.x[:n], buf.y[:n], buf.labels[:n]
        np.take(X, idx, axis=0, out=x)
        np.take(Y, idx, axis=0, out=y)
        if L is not None:
            np.take(L, idx, axis=0, out=labels)
        dz = self._forward(x, buf, n)
        loss, correct = self._loss_and_grad(dz, y, labels, buf, n, 1.0 / n)
        for l in range(len(self.W) - 1, -1, -1):
            a_prev = x if l == 0 else buf.acts[l - 1][:n]
            np.matmul(a_prev.T, dz, out=self.dW[l])          # overwrite: no zeroing needed
            np.sum(dz, axis=0, out=self.db[l])
            if l == 0:
                break
            da = buf.deltas[l - 1][:n]
            np.matmul(dz, self.W[l].T, out=da)
            if self.activations[l - 1] == "relu":
                mask = buf.masks[l - 1][:n]
                np.greater(a_prev, 0, out=mask)
                np.multiply(da, mask, out=da)
            dz = da
        self.optimizer.update(self.params, self.grads)
        return loss, correct

    # ------------------------------------------------------------------ public API
    @staticmethod
    def _labels(Y):
        """Class ids for accuracy: the labels themselves, or argmax of one-hot rows (once)."""
        if Y.ndim == 1:
            return Y.astype(np.intp, copy=False)
        if Y.shape[1] > 1:
            return np.argmax(Y, axis=1)
        return None

    def fit(self, X, Y, epochs, batch_size, validation_data=None, shuffle=True, epoch_begin=None,
            epoch_end=None):
        """Train; returns a Keras-like history dict. ``epoch_begin(epoch)`` and
        ``epoch_end(epoch, logs)`` (after the epoch's validation) are the benchmark's timer."""
        X = X.reshape(X.shape[0], -1)
        if X.dtype != np.float32 or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, np.float32)
        L = self._labels(Y)
        n = X.shape[0]
        history = {}
        for epoch in range(epochs):
            if epoch_begin is not None:
                epoch_begin(epoch)
            order = self.rng.permutation(n) if shuffle else np.arange(n)
            loss_sum, correct = 0.0, 0
            for start in range(0, n, batch_size):
                loss, hits = self._train_batch(X, Y, L, order[start:start + batch_size])
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
        """{"loss": mean loss, "accuracy": ...} over all rows, in EVAL_ROWS chunks."""
        X = X.reshape(X.shape[0], -1)
        L = self._labels(Y)
        n = X.shape[0]
        loss_sum, correct = 0.0, 0
        for start in range(0, n, EVAL_ROWS):
            stop = min(n, start + EVAL_ROWS)
            rows = stop - start
            buf = self._buffers("eval", min(n, EVAL_ROWS), Y)
            z = self._forward(X[start:stop], buf, rows)
            labels = L[start:stop] if L is not None else buf.labels[:rows]
            loss, hits = self._loss_and_grad(z, Y[start:stop], labels, buf, rows, None)
            loss_sum += loss
            correct += hits
        out = {"loss": loss_sum / n}
        if L is not None:
            out["accuracy"] = correct / n
        return out

    def predict(self, X):
        """Model outputs (softmax probabilities or linear values), (S, K)."""
        a = np.asarray(X, np.float32).reshape(len(X), -1)
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            a = a @ W
            a += b
            if l < last and self.activations[l] == "relu":
                np.maximum(a, 0, out=a)
        if self.activations[-1] == "softmax":
            a -= a.max(axis=1, keepdims=True)
            np.exp(a, out=a)
            a /= a.sum(axis=1, keepdims=True)
        return a

