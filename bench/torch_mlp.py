"""The PyTorch side of the training benchmark: eager ``nn.Sequential`` on float32 CPU tensors.

Written the way a PyTorch user would write the Keras tutorials' models, with
the same maths as fastnn and the NumPy baseline where PyTorch allows it:

* glorot-uniform weights and zero biases (Keras' Dense defaults, not
  PyTorch's kaiming-uniform);
* the softmax is fused into the loss (``nn.CrossEntropyLoss`` on logits; with
  one-hot float targets for categorical cross-entropy), mse is ``nn.MSELoss``;
* ``torch.optim.Adam(eps=1e-7)``, ``RMSprop(alpha=0.9, eps=1e-7)``, ``SGD`` with
  Keras' default hyper-parameters. Two small known differences: PyTorch's Adam
  adds epsilon to the bias-corrected sqrt(v), and its RMSprop adds epsilon
  outside the square root (Keras 3 puts it inside);
* no DataLoader: each epoch draws a permutation and slices the index tensor
  (``X[idx]``), ``zero_grad(set_to_none=True)``, validation in 4,096-row chunks
  under ``torch.inference_mode()``.

Only imported by ``bench_training.py`` when torch is importable; torch is never a
dependency of fastnn.
"""
import numpy as np
import torch
from torch import nn

EVAL_ROWS = 4096


def _optimizer(name, params, kwargs):
    kwargs = dict(kwargs or {})
    if name == "adam":
        return torch.optim.Adam(params, lr=kwargs.get("learning_rate", 0.001),
                                betas=(kwargs.get("beta_1", 0.9), kwargs.get("beta_2", 0.999)),
                                eps=kwargs.get("epsilon", 1e-7))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=kwargs.get("learning_rate", 0.001),
                                   alpha=kwargs.get("rho", 0.9), eps=kwargs.get("epsilon", 1e-7))
    if name == "sgd":
        return torch.optim.SGD(params, lr=kwargs.get("learning_rate", 0.01))
    raise ValueError(f"unknown optimizer {name!r}")


class TorchMLP:
    """Same constructor and methods as ``numpy_mlp.NumpyMLP``."""

    def __init__(self, input_dim, layers, loss, optimizer, optimizer_kwargs=None, seed=0, flatten=False):
        torch.manual_seed(seed)
        self.loss_name = loss
        modules = [nn.Flatten()] if flatten else []
        fan_in = input_dim
        self.linears = []
        for i, (units, activation) in enumerate(layers):
            linear = nn.Linear(fan_in, units)
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
            self.linears.append(linear)
            modules.append(linear)
            last = i == len(layers) - 1
            if activation == "relu" and not last:
                modules.append(nn.ReLU())
            fan_in = units
        self.softmax_output = layers[-1][1] == "softmax"
        self.model = nn.Sequential(*modules)
        self.loss_fn = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
        self.optimizer = _optimizer(optimizer, self.model.parameters(), optimizer_kwargs)
        self.generator = torch.Generator().manual_seed(seed)

    def get_weights(self):
        out = []
        for linear in self.linears:
            out += [linear.weight.detach().numpy().T.copy(), linear.bias.detach().numpy().copy()]
        return out

    def set_weights(self, weights):
        with torch.no_grad():
            for i, linear in enumerate(self.linears):
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights[2 * i].T)))
                linear.bias.copy_(torch.from_numpy(np.asarray(weights[2 * i + 1])))

    @staticmethod
    def _labels(Y):
        if Y.ndim == 1:
            return Y
        if Y.shape[1] > 1:
            return Y.argmax(dim=1)
        return None

    @staticmethod
    def _targets(Y):
        if Y.ndim == 1:
            return torch.from_numpy(np.asarray(Y, np.int64))
        return torch.from_numpy(np.asarray(Y, np.float32))

    def fit(self, X, Y, epochs, batch_size, validation_data=None, shuffle=True, epoch_begin=None,
            epoch_end=None):
        X = torch.from_numpy(X)
        Y = self._targets(Y)
        L = self._labels(Y)
        if validation_data is not None:
            validation_data = (torch.from_numpy(validation_data[0]), self._targets(validation_data[1]))
        n = X.shape[0]
        history = {}
        model, opt, loss_fn = self.model, self.optimizer, self.loss_fn
        model.train()
        for epoch in range(epochs):
            if epoch_begin is not None:
                epoch_begin(epoch)
            order = torch.randperm(n, generator=self.generator) if shuffle else torch.arange(n)
            loss_sum = torch.zeros((), dtype=torch.float64)
            correct = torch.zeros((), dtype=torch.int64)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                xb, yb = X[idx], Y[idx]
                out = model(xb)
                loss = loss_fn(out, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    loss_sum += loss.detach() * idx.shape[0]
                    if L is not None:
                        correct += (out.argmax(dim=1) == L[idx]).sum()
            logs = {"loss": float(loss_sum) / n}
            if L is not None:
                logs["accuracy"] = int(correct) / n
            if validation_data is not None:
                val = self._evaluate(*validation_data)
                logs.update({"val_" + k: v for k, v in val.items()})
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            if epoch_end is not None:
                epoch_end(epoch, logs)
        return history

    def _evaluate(self, X, Y):
        L = self._labels(Y)
        n = X.shape[0]
        loss_sum, correct = 0.0, 0
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, n, EVAL_ROWS):
                out = self.model(X[start:start + EVAL_ROWS])
                yb = Y[start:start + EVAL_ROWS]
                loss_sum += float(self.loss_fn(out, yb)) * out.shape[0]
                if L is not None:
                    correct += int((out.argmax(dim=1) == L[start:start + EVAL_ROWS]).sum())
        self.model.train()
        result = {"loss": loss_sum / n}
        if L is not None:
            result["accuracy"] = correct / n
        return result

    def evaluate(self, X, Y):
        return self._evaluate(torch.from_numpy(X), self._targets(Y))

    def predict(self, X):
        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.asarray(X, np.float32)))
            if self.softmax_output:
                out = torch.softmax(out, dim=1)
            return out.numpy()
