"""The models of ``bench_shapes.py``: a grid of MLPs beyond the Keras tutorials.

Each ``Model`` is one row: layer widths, activation, optimizer and its Keras
arguments, batch size, input features and their fraction of exact zeros,
dtype, the BatchNormalization / Dropout / L2 / sample-weight flags, the loss,
and the rows of one epoch (chosen so that an epoch takes roughly 0.2-2 s for
fastnn on a 2-core machine). ``GRID`` is the issue's grid ("One fast path for
every model"), ``QUICK`` the smoke run's three tiny models, ``FEATURE_PAIRS``
the feature-cost pairs (the same base model with and without one feature) and
``TRAIN_ON_BATCH`` the models whose ``train_on_batch`` loop is compared with
``fit``.

Data are synthetic and fixed by the seed: Gaussian inputs with the model's
fraction of exact zeros, labels from a random teacher network (a tanh layer
of 32 units, then a linear map), so the classes are learnable and a falling
loss means something; per-sample weights are uniform in [0.25, 1.75].

FLOP convention: a Dense layer with I inputs and O units costs 2 B I O flops
forward for B rows, and twice that backward (input and weight gradients), so
an epoch of ``rows`` samples is ``6 * rows * sum(I * O)`` flops
(``Model.flops_per_epoch``), whatever the zeros in the inputs, the
activations, normalizations and optimizer updates (not counted). GFLOP/s is
that over the measured seconds: an *effective* rate, comparable across
implementations of the same model.

Importing this module imports nothing but the standard library (NumPy is
imported inside the functions that need it), so a benchmark can set its
thread variables after reading the grid.
"""
import dataclasses
import zlib
from dataclasses import dataclass, field

SEED = 1234
CE = "sparse_categorical_crossentropy"
LOSS_SHORT = {CE: "sparse-CE", "categorical_crossentropy": "CE", "binary_crossentropy": "binary-CE", "mse": "mse"}
FINAL_ACTIVATION = {CE: "softmax", "categorical_crossentropy": "softmax", "binary_crossentropy": "sigmoid",
                    "mse": "linear"}


@dataclass(frozen=True)
class Model:
    name: str
    inputs: int                      # I of the first layer
    hidden: tuple                    # units of each hidden Dense layer
    activation: str = "relu"         # of every hidden layer
    optimizer: str = "adam"          # "sgd", "rmsprop", "adam", "adadelta"
    opt_args: dict = field(default_factory=dict)   # Keras argument names
    batch: int = 32
    zeros: float = 0.0               # fraction of exact zeros in the inputs
    dtype: str = "float32"
    batch_norm: bool = False         # BatchNormalization after every hidden activation
    dropout: float = 0.0             # Dropout(rate) after every hidden layer (after the BN)
    l2: float = 0.0                  # kernel_regularizer=l2(l2) on every Dense
    sample_weight: bool = False      # fit(..., sample_weight=w)
    loss: str = CE
    outputs: int = 10
    rows: int = 8192                 # samples per epoch
    # fastnn-only variants, for the feature-cost pairs:
    bn_idiom: bool = False           # Dense(use_bias=False) -> BatchNormalization -> Activation per hidden layer
    precision_recall: bool = False   # compile(metrics=["accuracy", Precision(), Recall()])

    @property
    def widths(self):
        return (self.inputs,) + tuple(self.hidden) + (self.outputs,)

    @property
    def layers(self):
        """[(units, activation)] as numpy_mlp.NumpyMLP / torch_mlp.TorchMLP take them."""
        return [(u, self.activation) for u in self.hidden] + [(self.outputs, FINAL_ACTIVATION[self.loss])]

    @property
    def macs_per_row(self):
        w = self.widths
        return sum(i * o for i, o in zip(w[:-1], w[1:]))

    @property
    def flops_per_epoch(self):
        return 6 * self.rows * self.macs_per_row

    @property
    def compute_bound(self):
        """Every Dense layer reads >= 256 features and every hidden one has >= 256 units, batch >= 64
        (the output layer's units are the classes: not counted)."""
        return min(self.widths[:-1]) >= 256 and self.batch >= 64

    @property
    def steps(self):
        return -(-self.rows // self.batch)

    def describe(self):
        opt = self.optimizer + "".join(f" {k}={v}" for k, v in self.opt_args.items()).replace("=True", "")
        flags = [f for f, on in (("bn", self.batch_norm), (f"dropout {self.dropout}", self.dropout),
                                 (f"l2 {self.l2}", self.l2), ("sw", self.sample_weight),
                                 ("bias=False+BN+Act", self.bn_idiom), ("P/R", self.precision_recall)) if on]
        return (f"{'-'.join(map(str, self.widths))} {self.activation} {opt} b{self.batch} "
                f"z{self.zeros:g} f{self.dtype[-2:]} {LOSS_SHORT[self.loss]}" + (" +" + ",".join(flags) if flags else ""))

    def to_dict(self):
        return dataclasses.asdict(self)


def _m(name, inputs, hidden, **kw):
    return Model(name=name, inputs=inputs, hidden=tuple(hidden), **kw)


SGDM = {"momentum": 0.9}
NESTEROV = {"momentum": 0.9, "nesterov": True}
ADADELTA = {"learning_rate": 1.0}

# Rows per epoch: ~0.2-2 s for fastnn at 2 threads on the 2-vCPU machine of bench/README.md (measured
# before the engine rewrite: models on fastnn's layer-by-layer path got fewer rows).
GRID = [
    # depth 1
    _m("d1-w8-b16-sgd", 32, [8], optimizer="sgd", batch=16, rows=524288),
    _m("d1-w64-b32-momentum-tanh", 64, [64], activation="tanh", optimizer="sgd", opt_args=SGDM, zeros=0.5,
       rows=131072),
    _m("d1-w512-b16-momentum", 784, [512], optimizer="sgd", opt_args=SGDM, batch=16, zeros=0.8, rows=16384),
    _m("d1-w2048-b256-adam", 784, [2048], batch=256, zeros=0.8, rows=8192),
    _m("d1-w128-b32-sgd-f64", 784, [128], optimizer="sgd", zeros=0.8, dtype="float64", rows=16384),
    _m("d1-w256-b1024-rmsprop-f64", 256, [256], optimizer="rmsprop", batch=1024, dtype="float64", rows=32768),
    # depth 2
    _m("d2-w256-b64-nesterov", 256, [256, 256], optimizer="sgd", opt_args=NESTEROV, batch=64, rows=32768),
    # issue 14's activations on the relu row above's shape (the issue: each within 1.3x of relu)
    *[_m(f"d2-w256-b64-nesterov-{act}", 256, [256, 256], activation=act, optimizer="sgd", opt_args=NESTEROV,
         batch=64, rows=32768) for act in ("gelu", "silu", "elu", "leaky_relu")],
    _m("d2-w32-b16-rmsprop-sigmoid", 64, [32, 32], activation="sigmoid", optimizer="rmsprop", batch=16,
       zeros=0.5, rows=262144),
    _m("d2-w512-b128-adam-bn", 784, [512, 512], batch=128, zeros=0.8, batch_norm=True, rows=16384),
    _m("d2-w1024-b64-adadelta", 784, [1024, 1024], optimizer="adadelta", opt_args=ADADELTA, batch=64,
       zeros=0.5, rows=4096),
    _m("d2-w8-b1024-adam-sigmoid", 16, [8, 8], activation="sigmoid", batch=1024, rows=1048576),
    _m("d2-w128-b32-adam-l2", 784, [128, 128], zeros=0.5, l2=1e-4, rows=16384),
    _m("d2-w256-b128-rmsprop-sw", 256, [256, 256], optimizer="rmsprop", batch=128, sample_weight=True,
       rows=32768),
    _m("d2-w256-b64-adam-f64", 256, [256, 256], batch=64, dtype="float64", rows=16384),
    # depth 3
    _m("d3-w128-b32-adam-dropout", 784, [128, 128, 128], zeros=0.8, dropout=0.2, rows=32768),
    _m("d3-w1024-b512-sgd", 1024, [1024, 1024, 1024], optimizer="sgd", batch=512, rows=4096),
    _m("d3-w16-b64-adadelta-tanh", 16, [16, 16, 16], activation="tanh", optimizer="adadelta", opt_args=ADADELTA,
       batch=64, rows=262144),
    _m("d3-w64-b128-nesterov-tanh-bn", 64, [64, 64, 64], activation="tanh", optimizer="sgd", opt_args=NESTEROV,
       batch=128, batch_norm=True, rows=65536),
    _m("d3-w512-b256-adam-everything", 784, [512, 512, 512], batch=256, zeros=0.8, batch_norm=True, dropout=0.2,
       l2=1e-4, sample_weight=True, rows=8192),
    # depth 4
    _m("d4-w256-b1024-adam", 512, [256, 256, 256, 256], batch=1024, rows=32768),
    _m("d4-pyramid-b128-rmsprop", 784, [1024, 512, 256, 128], optimizer="rmsprop", batch=128, zeros=0.5,
       rows=8192),
    _m("d4-w32-b16-adadelta-sigmoid-dropout", 32, [32, 32, 32, 32], activation="sigmoid", optimizer="adadelta",
       opt_args=ADADELTA, batch=16, dropout=0.1, rows=131072),
    # depth 5
    _m("d5-w64-b32-adam", 128, [64] * 5, rows=131072),
    _m("d5-w2048-1024-512-b256-momentum", 1024, [2048, 2048, 1024, 1024, 512], optimizer="sgd", opt_args=SGDM,
       batch=256, rows=1024),
    # other losses
    _m("binary-d2-w64-b64-rmsprop", 256, [64, 64], optimizer="rmsprop", batch=64, zeros=0.8,
       loss="binary_crossentropy", outputs=1, rows=131072),
    _m("binary-d2-w16-b512-rmsprop-sw", 1000, [16, 16], optimizer="rmsprop", batch=512, zeros=0.8,
       loss="binary_crossentropy", outputs=1, sample_weight=True, rows=65536),
    _m("mse-d2-w64-b32-adam-tanh", 32, [64, 64], activation="tanh", loss="mse", outputs=1, rows=131072),
    _m("mse-d3-w256-b256-momentum", 256, [256, 256, 256], optimizer="sgd", opt_args=SGDM, batch=256,
       loss="mse", outputs=4, rows=32768),
    _m("onehot-d2-w128-b64-adam", 784, [128, 64], batch=64, zeros=0.5, loss="categorical_crossentropy",
       rows=49152),
]

QUICK = [
    _m("quick-softmax-bn-dropout", 64, [32, 32], zeros=0.5, batch_norm=True, dropout=0.2, rows=2048),
    _m("quick-binary-f64-l2-sw", 32, [16], activation="tanh", optimizer="rmsprop", batch=16, dtype="float64",
       l2=1e-4, sample_weight=True, loss="binary_crossentropy", outputs=1, rows=1024),
    _m("quick-mse-nesterov-sigmoid", 16, [8, 8, 8], activation="sigmoid", optimizer="sgd", opt_args=NESTEROV,
       batch=64, loss="mse", outputs=2, rows=2048),
]

# Feature-cost pairs: (feature, base, variant, the largest ratio the issue allows).
FEATURES = (
    ("l2", {"l2": 1e-4}, 1.3),
    ("sample_weight", {"sample_weight": True}, 1.3),
    ("precision_recall", {"precision_recall": True}, 1.3),
    ("bias=False+BN+Act", {"bn_idiom": True}, 1.3),
    ("float64", {"dtype": "float64"}, 2.2),
)
PAIR_BASES = [
    # The MNIST tutorial's shape (one-hot labels: Precision/Recall compare outputs with labels elementwise).
    _m("mnist-mlp", 784, [128], zeros=0.8, loss="categorical_crossentropy", rows=60000),
    _m("wide-2x512", 784, [512, 512], optimizer="rmsprop", batch=128, zeros=0.5,
       loss="categorical_crossentropy", rows=16384),
]
QUICK_PAIR_BASES = [_m("tiny-pair", 64, [32, 32], loss="categorical_crossentropy", rows=2048)]


def feature_pairs(bases):
    """[(pair name, feature, base, variant, limit)] for every base and feature."""
    out = []
    for base in bases:
        for feature, change, limit in FEATURES:
            variant = dataclasses.replace(base, name=f"{base.name}+{feature}", **change)
            out.append((f"{base.name}:{feature}", feature, base, variant, limit))
    return out


FEATURE_PAIRS = feature_pairs(PAIR_BASES)
QUICK_FEATURE_PAIRS = feature_pairs(QUICK_PAIR_BASES)
TRAIN_ON_BATCH = PAIR_BASES
QUICK_TRAIN_ON_BATCH = QUICK_PAIR_BASES


def find(name):
    for m in GRID + QUICK + PAIR_BASES + QUICK_PAIR_BASES + [p[3] for p in FEATURE_PAIRS + QUICK_FEATURE_PAIRS]:
        if m.name == name:
            return m
    raise KeyError(name)


# --------------------------------------------------------------------------- data and weights
def _rng(model, seed, stream):
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(model.name.split("+")[0].encode()), stream])


def make_data(model, seed=SEED):
    """(x (rows, inputs), y, sample weights (rows,) or None) in the model's dtype; the same arrays for
    every implementation and for every variant of a base model (the name before '+' picks them)."""
    import numpy as np

    rng = _rng(model, seed, 0)
    n, i = model.rows, model.inputs
    x = rng.standard_normal((n, i), dtype=np.float32)
    if model.zeros:
        x[rng.random((n, i), dtype=np.float32) < model.zeros] = 0.0
    # Teacher: tanh(x A) B, scaled so the tanh layer is neither linear nor saturated.
    a = rng.standard_normal((i, 32)).astype(np.float32) * np.float32(1.5 / np.sqrt(i * (1.0 - model.zeros)))
    t = np.tanh(x @ a) @ rng.standard_normal((32, max(model.outputs, 2))).astype(np.float32)
    if model.loss == "binary_crossentropy":
        y = (t[:, 0] > np.median(t[:, 0])).astype(np.float32).reshape(-1, 1)
    elif model.loss == "mse":
        y = t[:, :model.outputs]
        y = (y - y.mean(axis=0)) / y.std(axis=0)
    else:
        y = np.argmax(t, axis=1)
        if model.loss == "categorical_crossentropy":
            y = np.eye(model.outputs, dtype=np.float32)[y]
    dtype = np.dtype(model.dtype)
    x = x.astype(dtype, copy=False)
    if y.dtype.kind == "f":
        y = y.astype(dtype)
    sw = rng.uniform(0.25, 1.75, n).astype(dtype) if model.sample_weight else None
    return x, y, sw


def initial_weights(model, seed=SEED):
    """Keras' get_weights() order: per Dense kernel (glorot uniform) and bias (zeros), then per
    BatchNormalization gamma (ones), beta (zeros), moving mean (zeros), moving variance (ones)."""
    import numpy as np

    rng = _rng(model, seed, 1)
    dtype = np.dtype(model.dtype)
    w = model.widths
    out = []
    for l, (i, o) in enumerate(zip(w[:-1], w[1:])):
        limit = np.sqrt(6.0 / (i + o))
        out.append(rng.uniform(-limit, limit, (i, o)).astype(dtype))
        if not model.bn_idiom or l == len(w) - 2:
            out.append(np.zeros(o, dtype))
        if (model.batch_norm or model.bn_idiom) and l < len(w) - 2:
            out += [np.ones(o, dtype), np.zeros(o, dtype), np.zeros(o, dtype), np.ones(o, dtype)]
    return out


# --------------------------------------------------------------------------- fastnn
def build_keras(model, keras):
    """The model through fastnn's public Keras API (``keras`` is ``import fastnn as keras``), compiled."""
    layers = [keras.Input(shape=(model.inputs,))]
    reg = (lambda: keras.regularizers.l2(model.l2)) if model.l2 else (lambda: None)
    dt = model.dtype
    for units in model.hidden:
        if model.bn_idiom:
            layers += [keras.layers.Dense(units, use_bias=False, kernel_regularizer=reg(), dtype=dt),
                       keras.layers.BatchNormalization(dtype=dt), keras.layers.Activation(model.activation, dtype=dt)]
            continue
        layers.append(keras.layers.Dense(units, activation=model.activation, kernel_regularizer=reg(), dtype=dt))
        if model.batch_norm:
            layers.append(keras.layers.BatchNormalization(dtype=dt))
        if model.dropout:
            layers.append(keras.layers.Dropout(model.dropout, dtype=dt))
    layers.append(keras.layers.Dense(model.outputs, activation=FINAL_ACTIVATION[model.loss],
                                     kernel_regularizer=reg(), dtype=dt))
    net = keras.Sequential(layers)
    optimizer = {"sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
                 "adadelta": keras.optimizers.Adadelta}[model.optimizer](**model.opt_args)
    metrics = [] if model.loss == "mse" else ["accuracy"]
    if model.precision_recall:
        metrics += [keras.metrics.Precision(), keras.metrics.Recall()]
    net.compile(optimizer=optimizer, loss=model.loss, metrics=metrics)
    return net
