"""The PyTorch side of the benchmarks: eager ``nn.Sequential`` on CPU tensors.

Written the way a PyTorch user would write the Keras models, with the same
maths as fastnn and the NumPy baseline (numpy_mlp.py, same constructor) where
PyTorch allows it:

* glorot-uniform weights and zero biases (Keras' Dense defaults, not
  PyTorch's kaiming-uniform), or weights given with ``set_weights`` in Keras'
  order; float32 or float64 (``dtype``);
* the last activation is fused into the loss: ``nn.CrossEntropyLoss`` on
  logits (one-hot float targets for categorical cross-entropy),
  ``nn.BCEWithLogitsLoss`` for a sigmoid unit, ``nn.MSELoss`` for a linear
  output; with sample weights the per-sample losses (``reduction="none"``)
  are weighted and divided by the batch size, Keras' "sum_over_batch_size";
* BatchNormalization is ``nn.BatchNorm1d(eps=1e-3, momentum=0.01)`` (Keras'
  momentum 0.99 in PyTorch's convention); its training step is Keras' (batch
  mean, biased variance); only its *running* variance differs (PyTorch keeps
  the unbiased one), which matters at inference only. Dropout is
  ``nn.Dropout`` (inverted, as Keras');
* L2 on the kernels (Keras ``l2(l)``: loss ``+ l sum(W^2)``, gradient ``2 l W``)
  is the optimizer's ``weight_decay=2 l`` on a parameter group of the kernels
  alone: the same gradient, for one fused pass instead of an autograd graph
  over every kernel. The reported loss adds ``l sum(W^2)`` once per batch,
  under ``no_grad``, as Keras reports it;
* optimizers with Keras' hyper-parameters: ``SGD(lr, momentum, nesterov)``
  (PyTorch's momentum buffer is Keras' divided by -lr: the same steps at a
  constant rate), ``RMSprop(alpha=rho, eps, momentum)``, ``Adam(betas, eps)``,
  ``Adadelta(lr, rho, eps)``, each with ``fused=True`` where PyTorch 2.13 has a
  fused CPU kernel (SGD, Adam), else its default (foreach) implementation.
  Two known differences remain: PyTorch's RMSprop adds epsilon OUTSIDE the
  square root (Keras 3: inside), and its Adam adds epsilon to the
  bias-corrected sqrt(v_hat) (Keras: to sqrt(v), i.e. "epsilon hat"); with
  eps = 1e-7 both shift results by ~1e-3 relative at most in these runs;
* ``torch.set_flush_denormal(True)``: optimizer slots whose gradient stays 0 decay into
  float32's denormal range after ~800 steps and then cost a microcode assist per operation
  (a 784-128-10 Adam epoch ran 1.6x slower after 3 epochs here); fastnn flushes them to
  zero, and so does a careful PyTorch user (numpy_optim.py does it for the NumPy baseline);
* no DataLoader: each epoch draws a permutation and slices the index tensor
  (``X[idx]``), ``zero_grad(set_to_none=True)``; loss and accuracy are
  accumulated as tensors (no ``.item()`` sync per step).

Only imported when torch is importable; torch is never a dependency of fastnn.
"""
import numpy as np
import torch
from torch import nn

EVAL_ROWS = 4096
_FUSED_CPU = ("sgd", "adam")      # torch.optim classes with a fused CPU implementation in 2.13


def _optimizer(name, groups, kwargs):
    kwargs = dict(kwargs or {})
    extra = {"fused": True} if name in _FUSED_CPU else {}
    if name == "adam":
        if kwargs.get("amsgrad"):
            raise ValueError("amsgrad is not used by the benchmarks")
        return torch.optim.Adam(groups, lr=kwargs.get("learning_rate", 0.001),
                                betas=(kwargs.get("beta_1", 0.9), kwargs.get("beta_2", 0.999)),
                                eps=kwargs.get("epsilon", 1e-7), **extra)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=kwargs.get("learning_rate", 0.001), alpha=kwargs.get("rho", 0.9),
                                   eps=kwargs.get("epsilon", 1e-7), momentum=kwargs.get("momentum", 0.0),
                                   centered=kwargs.get("centered", False))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=kwargs.get("learning_rate", 0.01), momentum=kwargs.get("momentum", 0.0),
                               nesterov=kwargs.get("nesterov", False), **extra)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=kwargs.get("learning_rate", 0.001), rho=kwargs.get("rho", 0.95),
                                    eps=kwargs.get("epsilon", 1e-7))
    raise ValueError(f"unknown optimizer {name!r}")


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU,
                "elu": nn.ELU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}  # Keras 3's defaults


class TorchMLP:
    """Same constructor and methods as ``numpy_mlp.NumpyMLP``."""

    def __init__(self, input_dim, layers, loss, optimizer, optimizer_kwargs=None, seed=0, flatten=False,
                 batch_norm=False, dropout=0.0, l2=0.0, use_bias=True, dtype="float32"):
        torch.manual_seed(seed)
        torch.set_flush_denormal(True)
        self.loss_name = loss
        self.dtype = getattr(torch, np.dtype(dtype).name)
        self.np_dtype = np.dtype(dtype)
        self.l2 = float(l2)
        modules = [nn.Flatten()] if flatten else []
        fan_in = input_dim
        self.linears, self.norms = [], []
        for i, (units, activation) in enumerate(layers):
            linear = nn.Linear(fan_in, units, bias=use_bias, dtype=self.dtype)
            nn.init.xavier_uniform_(linear.weight)
            if use_bias:
                nn.init.zeros_(linear.bias)
            self.linears.append(linear)
            modules.append(linear)
            if i < len(layers) - 1:
                if activation in _ACTIVATIONS:
                    modules.append(_ACTIVATIONS[activation]())
                if batch_norm:
                    norm = nn.BatchNorm1d(units, eps=1e-3, momentum=0.01, dtype=self.dtype)
                    self.norms.append(norm)
                    modules.append(norm)
                if dropout:
                    modules.append(nn.Dropout(dropout))
            fan_in = units
        self.softmax_output = layers[-1][1] == "softmax"
        self.model = nn.Sequential(*modules)
        cls = {"mse": nn.MSELoss, "binary_crossentropy": nn.BCEWithLogitsLoss}.get(loss, nn.CrossEntropyLoss)
        # "mean" over all elements is Keras' mean over the outputs, then over the batch.
        self.loss_fn, self.loss_per_sample = cls(), cls(reduction="none")
        self.kernels = [linear.weight for linear in self.linears]
        others = [p for p in self.model.parameters() if all(p is not k for k in self.kernels)]
        groups = [{"params": self.kernels, "weight_decay": 2.0 * self.l2}, {"params": others, "weight_decay": 0.0}]
        self.optimizer = _optimizer(optimizer, [g for g in groups if g["params"]], optimizer_kwargs)
        self.generator = torch.Generator().manual_seed(seed)

    # ------------------------------------------------------------------ weights (Keras order)
    def _weight_tensors(self):
        """(tensor, transposed) pairs in Keras' get_weights order."""
        out = []
        for i, linear in enumerate(self.linears):
            out.append((linear.weight, True))
            if linear.bias is not None:
                out.append((linear.bias, False))
            if i < len(self.norms):
                norm = self.norms[i]
                out += [(norm.weight, False), (norm.bias, False), (norm.running_mean, False),
                        (norm.running_var, False)]
        return out

    def get_weights(self):
        return [(t.detach().numpy().T if tr else t.detach().numpy()).copy() for t, tr in self._weight_tensors()]

    def set_weights(self, weights):
        with torch.no_grad():
            for (t, tr), w in zip(self._weight_tensors(), weights):
                w = np.asarray(w, self.np_dtype)
                t.copy_(torch.from_numpy(np.ascontiguousarray(w.T if tr else w)))

    # ------------------------------------------------------------------ data
    def _targets(self, Y):
        """(loss targets, class ids for accuracy or None) as tensors."""
        Y = np.asarray(Y)
        if self.loss_name == "binary_crossentropy":
            Y = torch.from_numpy(np.ascontiguousarray(Y.reshape(-1, 1), self.np_dtype))
            return Y, (Y[:, 0] > 0.5).long()
        if self.loss_name == "mse":
            return torch.from_numpy(np.ascontiguousarray(Y.reshape(Y.shape[0], -1), self.np_dtype)), None
        if Y.ndim == 1:
            Y = torch.from_numpy(np.asarray(Y, np.int64))
            return Y, Y
        Y = torch.from_numpy(np.ascontiguousarray(Y, self.np_dtype))
        return Y, Y.argmax(dim=1)

    def _inputs(self, X):
        return torch.from_numpy(np.ascontiguousarray(X.reshape(X.shape[0], -1), self.np_dtype))

    def _batch_loss(self, out, yb, wb):
        """Keras' batch loss: sum over the batch of (weighted) per-sample losses / batch size."""
        if wb is None:
            return self.loss_fn(out, yb)
        per = self.loss_per_sample(out, yb)
        if per.dim() > 1:
            per = per.mean(dim=1)          # mse / bce: the mean over the outputs is the per-sample loss
        return (per * wb).sum() / per.shape[0]

    def _correct(self, out, labels):
        if self.loss_name == "binary_crossentropy":
            return ((out[:, 0] > 0).long() == labels).sum()
        return (out.argmax(dim=1) == labels).sum()

    def fit(self, X, Y, epochs, batch_size, validation_data=None, shuffle=True, epoch_begin=None,
            epoch_end=None, sample_weight=None):
        X = self._inputs(X)
        Y, L = self._targets(Y)
        W = None if sample_weight is None else torch.from_numpy(
            np.ascontiguousarray(sample_weight, self.np_dtype).reshape(-1))
        n = X.shape[0]
        history = {}
        model, opt = self.model, self.optimizer
        model.train()
        for epoch in range(epochs):
            if epoch_begin is not None:
                epoch_begin(epoch)
            order = torch.randperm(n, generator=self.generator) if shuffle else torch.arange(n)
            loss_sum = torch.zeros((), dtype=torch.float64)
            correct = torch.zeros((), dtype=torch.int64)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                out = model(X[idx])
                loss = self._batch_loss(out, Y[idx], None if W is None else W[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                with torch.no_grad():
                    if self.l2:   # the penalty of the weights the step starts from, as Keras reports it
                        loss = loss + self.l2 * sum((k * k).sum() for k in self.kernels)
                    loss_sum += loss.detach() * idx.shape[0]
                    if L is not None:
                        correct += self._correct(out, L[idx])
                opt.step()
            logs = {"loss": float(loss_sum) / n}
            if L is not None:
                logs["accuracy"] = int(correct) / n
            if validation_data is not None:
                logs.update({"val_" + k: v for k, v in self.evaluate(*validation_data).items()})
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            if epoch_end is not None:
                epoch_end(epoch, logs)
        return history

    def evaluate(self, X, Y):
        X = self._inputs(X)
        Y, L = self._targets(Y)
        n = X.shape[0]
        loss_sum, correct = 0.0, 0
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, n, EVAL_ROWS):
                out = self.model(X[start:start + EVAL_ROWS])
                loss_sum += float(self._batch_loss(out, Y[start:start + EVAL_ROWS], None)) * out.shape[0]
                if L is not None:
                    correct += int(self._correct(out, L[start:start + EVAL_ROWS]))
            if self.l2:
                loss_sum += n * float(self.l2 * sum((k * k).sum() for k in self.kernels))
        self.model.train()
        result = {"loss": loss_sum / n}
        if L is not None:
            result["accuracy"] = correct / n
        return result

    def predict(self, X):
        self.model.eval()
        with torch.inference_mode():
            out = self.model(self._inputs(np.asarray(X)))
            if self.softmax_output:
                out = torch.softmax(out, dim=1)
            elif self.loss_name == "binary_crossentropy":
                out = torch.sigmoid(out)
        self.model.train()
        return out.numpy()
