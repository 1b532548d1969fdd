"""Bad arguments to Sequential, the layers, compile and the optimizers: each raises a clear error that names the
argument and what was received (tests/bad_input/_harness.py runs the cases)."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import Sequential, layers, optimizers, regularizers
from fastnn.layers import Dense, Dropout, Flatten, Input

from bad_input._harness import check, check_isolated, ids, run_isolated


def _built():
    return Sequential([Input((4,)), Dense(3, activation="softmax")])


def _compiled(**kwargs):
    model = _built()
    model.compile(**{"optimizer": "sgd", "loss": "sparse_categorical_crossentropy", **kwargs})
    return model


SEQUENTIAL = [
    ("sequential/layers not a list", lambda: Sequential(42), TypeError, r"`layers` must be a list.*42"),
    ("sequential/a string layer", lambda: Sequential(["dense"]), TypeError, r"must be an instance of class Layer"),
    ("sequential/a class instead of an instance", lambda: Sequential([Dense]), TypeError,
     r"must be an instance of class Layer"),
    ("sequential/duplicate names", lambda: Sequential([Dense(3, name="d", input_shape=(2,)), Dense(3, name="d")]),
     ValueError, r"unique names"),
    ("sequential/InputLayer not first", lambda: Sequential([Dense(3), Input((4,))]), ValueError,
     r"InputLayer can only be the first layer"),
    ("sequential/unknown kwarg", lambda: Sequential([], foo=1), TypeError, r"foo"),
    ("sequential/pop empty", lambda: Sequential().pop(), TypeError, r"no layers"),
    ("sequential/get_layer missing", lambda: _built().get_layer("nope"), ValueError, r"No such layer: nope"),
    ("sequential/build without shape", lambda: Sequential([Dense(3)]).build(), ValueError,
     r"cannot be built without an input shape"),
    ("sequential/build with no layers", lambda: Sequential().build((None, 3)), ValueError, r"no layers"),
    ("sequential/build shape a string", lambda: Sequential([Dense(3)]).build("784"), ValueError,
     r"build: argument `input_shape` must be a tuple of positive integers.*'784'"),
    ("sequential/build without the batch dimension", lambda: Sequential([Dense(3)]).build((784,)), ValueError,
     r"`input_shape` must include the batch dimension, e.g. \(None, 784\); received \(784,\)"),
    ("sequential/build with a fractional dimension", lambda: Sequential([Dense(3)]).build((None, 2.5)),
     ValueError, r"`input_shape` must be a tuple of positive integers.*\(None, 2\.5\)"),
    ("sequential/set_weights before build", lambda: Sequential([Dense(3)]).set_weights([]), ValueError,
     r"not yet been built"),
    ("sequential/set_weights wrong count", lambda: _built().set_weights([np.zeros((4, 3))]), ValueError,
     r"expects 2 weight arrays; received 1"),
    ("sequential/set_weights wrong shape", lambda: _built().set_weights([np.zeros((3, 4)), np.zeros(3)]),
     ValueError, r"expected shape \(4, 3\), received \(3, 4\)"),
    ("sequential/set_weights strings", lambda: _built().set_weights([np.full((4, 3), "a"), np.zeros(3)]),
     ValueError, r"weight 'dense.*/kernel': expected a numeric array of shape \(4, 3\).*<U1"),
    ("sequential/set_weights ragged", lambda: _built().set_weights([[[1, 2, 3], [1, 2]], np.zeros(3)]),
     ValueError, r"weight 'dense.*/kernel' is a ragged nested list: row \[1\] has 2 elements"),
    ("sequential/set_weights None", lambda: _built().set_weights([None, np.zeros(3)]), ValueError,
     r"numeric.*None"),
    ("sequential/set_weights NaN warns", lambda: _built().set_weights([np.full((4, 3), np.nan), np.zeros(3)]),
     UserWarning, r"weight 'dense.*/kernel' holds 12 NaN or infinite entries of 12"),
    ("sequential/set_weights too large for float32", lambda: _built().set_weights([np.full((4, 3), 1e300),
                                                                                  np.zeros(3)]),
     UserWarning, r"holds 12 NaN or infinite entries.*1e\+300 is too large for float32 and becomes inf"),
    ("sequential/count_params unbuilt", lambda: Sequential([Dense(3)]).count_params(), ValueError,
     r"not yet been built"),
    ("sequential/predict unbuilt without data shape", lambda: Sequential([Dense(3)]).predict(None), ValueError,
     r"`x` is required"),
]

LAYERS = [
    ("dense/units zero", lambda: Dense(0), ValueError, r"`units`.*positive.*received 0"),
    ("dense/units negative", lambda: Dense(-3), ValueError, r"`units`.*received -3"),
    ("dense/units float", lambda: Dense(2.5), ValueError, r"`units`.*received 2\.5"),
    ("dense/units string", lambda: Dense("10"), ValueError, r"`units`.*received '10'"),
    ("dense/units None", lambda: Dense(None), ValueError, r"`units`.*received None"),
    ("dense/units bool", lambda: Dense(True), ValueError, r"`units`.*received True"),
    ("dense/activation unknown", lambda: Dense(3, activation="relu6x"), ValueError,
     r"activation.*'relu6x'.*Expected one of"),
    ("dense/activation a number", lambda: Dense(3, activation=3), ValueError, r"activation.*3"),
    ("dense/initializer unknown", lambda: Dense(3, kernel_initializer="glorot"), ValueError,
     r"initializer.*'glorot'"),
    ("dense/bias initializer a number", lambda: Dense(3, bias_initializer=1.5), ValueError, r"initializer.*1\.5"),
    ("dense/regularizer unknown", lambda: Dense(3, kernel_regularizer="l3"), ValueError, r"regularizer.*'l3'"),
    ("dense/unknown kwarg", lambda: Dense(3, unitz=4), TypeError, r"unitz"),
    ("dense/input_shape a string", lambda: Dense(3, input_shape="784"), (TypeError, ValueError),
     r"input_shape"),
    ("dense/input_shape negative", lambda: Dense(3, input_shape=(-4,)), ValueError, r"input_shape.*-4"),
    ("dense/input_dim zero", lambda: Dense(3, input_dim=0), ValueError, r"input_dim.*0"),
    ("dense/dtype unknown", lambda: Dense(3, dtype="float8"), (TypeError, ValueError), r"dtype.*float8"),
    ("dense/dtype integer", lambda: Dense(3, dtype="int32"), (TypeError, ValueError), r"dtype.*int32"),
    ("dense/name not a string", lambda: Dense(3, name=5), (TypeError, ValueError), r"name"),
    ("dropout/rate above one", lambda: Dropout(1.5), ValueError, r"`rate`.*1\.5"),
    ("dropout/rate negative", lambda: Dropout(-0.1), ValueError, r"`rate`.*-0\.1"),
    ("dropout/rate a list", lambda: Dropout([0.5]), ValueError, r"`rate`.*\[0\.5\]"),
    ("dropout/rate string", lambda: Dropout("0.5"), ValueError, r"`rate`.*'0\.5'"),
    ("dropout/rate NaN", lambda: Dropout(math.nan), ValueError, r"`rate`.*nan"),
    ("dropout/seed string", lambda: Dropout(0.5, seed="x"), (TypeError, ValueError), r"seed"),
    ("dropout/noise_shape bad", lambda: Dropout(0.5, noise_shape="x"), (TypeError, ValueError), r"noise_shape"),
    ("batchnorm/momentum above one", lambda: layers.BatchNormalization(momentum=1.5), ValueError,
     r"`momentum`.*1\.5"),
    ("batchnorm/epsilon negative", lambda: layers.BatchNormalization(epsilon=-1.0), ValueError,
     r"`epsilon`.*-1\.0"),
    ("batchnorm/axis a string", lambda: layers.BatchNormalization(axis="x"), (TypeError, ValueError), r"axis"),
    ("flatten/data_format unknown", lambda: Flatten(data_format="nchw"), ValueError, r"data_format.*'nchw'"),
    ("input/negative dimension", lambda: Input((-1,)), ValueError, r"shape.*-1"),
    ("input/shape a string", lambda: Input("abc"), (TypeError, ValueError), r"shape"),
    ("activation/unknown", lambda: layers.Activation("sigmoidal"), ValueError, r"'sigmoidal'"),
    ("regularizers/l2 negative", lambda: regularizers.L2(-0.1), ValueError, r"l2.*-0\.1"),
    ("regularizers/l1 string", lambda: regularizers.L1("a"), ValueError, r"l1.*'a'"),
]

COMPILE = [
    ("compile/optimizer unknown", lambda: _compiled(optimizer="adamw2"), ValueError, r"optimizer.*'adamw2'"),
    ("compile/optimizer a number", lambda: _compiled(optimizer=0.01), ValueError, r"optimizer.*0\.01"),
    ("compile/optimizer a loss object", lambda: _compiled(optimizer=fastnn.losses.MeanSquaredError()),
     ValueError, r"optimizer identifier.*MeanSquaredError"),
    ("compile/loss unknown", lambda: _compiled(loss="cross_entropy"), ValueError, r"loss.*'cross_entropy'"),
    ("compile/loss a number", lambda: _compiled(loss=3), ValueError, r"loss.*3"),
    ("compile/metric unknown", lambda: _compiled(metrics=["acuracy"]), ValueError, r"metric.*'acuracy'"),
    ("compile/metrics a number", lambda: _compiled(metrics=5), ValueError, r"`metrics`.*5"),
    ("compile/metrics a dict", lambda: _compiled(metrics={"out": "accuracy"}), ValueError, r"`metrics`"),
    ("compile/metric None inside", lambda: _compiled(metrics=[None]), ValueError, r"metric.*None"),
    ("compile/loss_weights", lambda: _compiled(loss_weights=[1.0]), ValueError, r"`loss_weights`"),
    ("compile/weighted_metrics a number", lambda: _compiled(weighted_metrics=5), ValueError,
     r"`weighted_metrics`.*5"),
    ("compile/weighted_metric unknown", lambda: _compiled(weighted_metrics=["acuracy"]), ValueError,
     r"metric.*'acuracy'"),
    ("compile/unknown kwarg", lambda: _compiled(optimiser="sgd"), TypeError, r"optimiser"),
    ("compile/fit before compile", lambda: _built().fit(np.zeros((4, 4)), np.zeros(4)), RuntimeError,
     r"compile\(\)"),
    ("compile/evaluate before compile", lambda: _built().evaluate(np.zeros((4, 4)), np.zeros(4)), RuntimeError,
     r"compile\(\)"),
    ("compile/train_on_batch before compile", lambda: _built().train_on_batch(np.zeros((4, 4)), np.zeros(4)),
     RuntimeError, r"compile\(\)"),
    ("compile/no loss then fit", lambda: _compiled(loss=None).fit(np.zeros((4, 4)), np.zeros(4), verbose=0),
     ValueError, r"without a loss"),
]

OPTIMIZERS = [
    ("sgd/learning_rate negative", lambda: optimizers.SGD(learning_rate=-0.1), ValueError,
     r"learning_rate.*-0\.1"),
    ("sgd/learning_rate string", lambda: optimizers.SGD(learning_rate="fast"), (TypeError, ValueError),
     r"learning_rate.*'fast'"),
    ("sgd/learning_rate NaN", lambda: optimizers.SGD(learning_rate=math.nan), ValueError, r"learning_rate.*nan"),
    ("sgd/learning_rate inf", lambda: optimizers.SGD(learning_rate=math.inf), ValueError, r"learning_rate.*inf"),
    ("sgd/momentum negative", lambda: optimizers.SGD(momentum=-0.5), ValueError, r"momentum.*-0\.5"),
    ("sgd/momentum above one", lambda: optimizers.SGD(momentum=1.5), ValueError, r"momentum.*1\.5"),
    ("sgd/unknown kwarg", lambda: optimizers.SGD(momentun=0.9), ValueError, r"not recognized.*momentun"),
    ("sgd/use_ema unsupported", lambda: optimizers.SGD(use_ema=True), ValueError, r"use_ema.*not supported"),
    ("sgd/two clips", lambda: optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0), ValueError,
     r"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set"),
    ("sgd/negative clipnorm", lambda: optimizers.SGD(clipnorm=-1.0), ValueError,
     r"`clipnorm` must be None or a non-negative number; received -1.0"),
    ("adam/beta_1 one", lambda: optimizers.Adam(beta_1=1.0), ValueError, r"beta_1.*1\.0"),
    ("adam/beta_2 negative", lambda: optimizers.Adam(beta_2=-0.1), ValueError, r"beta_2.*-0\.1"),
    ("adam/epsilon negative", lambda: optimizers.Adam(epsilon=-1e-7), ValueError, r"epsilon.*-1e-07"),
    ("adam/amsgrad a string", lambda: optimizers.Adam(amsgrad="yes"), (TypeError, ValueError), r"amsgrad"),
    ("rmsprop/rho above one", lambda: optimizers.RMSprop(rho=1.2), ValueError, r"rho.*1\.2"),
    ("rmsprop/momentum string", lambda: optimizers.RMSprop(momentum="0.9"), (TypeError, ValueError),
     r"momentum.*'0\.9'"),
    ("adadelta/rho negative", lambda: optimizers.Adadelta(rho=-1), ValueError, r"rho.*-1"),
    ("optimizers/get unknown", lambda: optimizers.get("adamax9"), ValueError, r"'adamax9'"),
    ("optimizers/learning_rate set to string later", lambda: setattr(optimizers.Adam(), "learning_rate", "x"),
     (TypeError, ValueError), r"learning_rate.*'x'"),
]

def _huge(units, features):
    """A model whose weights cannot be allocated. The address space is capped first (64 GiB, far above what
    the child uses), so that a kernel that overcommits memory refuses too instead of killing the process."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (64 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return Sequential([Input((features,)), Dense(units)])


# Run in a child process: a failed huge allocation must not take the test run with it.
ISOLATED = [
    ("dense/units beyond memory", lambda: _huge(10 ** 12, 4), MemoryError,
     r"Dense 'dense.*': its weight `kernel` of shape \(4, 1000000000000\) needs 14,901\.2 GiB.*Check `units`"),
    ("dense/input beyond memory", lambda: _huge(10 ** 4, 10 ** 8), MemoryError,
     r"weight `kernel` of shape \(100000000, 10000\) needs 3,725\.3 GiB"),
]

CASES = SEQUENTIAL + LAYERS + COMPILE + OPTIMIZERS


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_model_arguments(case):
    check(case)


@pytest.fixture(scope="module")
def isolated_results(tmp_path_factory):
    return run_isolated(__name__, "ISOLATED", ISOLATED, tmp_path_factory.mktemp("model"))


@pytest.mark.parametrize("case", ISOLATED, ids=ids(ISOLATED))
def test_model_arguments_that_could_exhaust_memory(case, isolated_results):
    check_isolated(case, isolated_results)
