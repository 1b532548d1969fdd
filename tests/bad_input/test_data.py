"""Bad arguments and data to fit, evaluate, predict and the *_on_batch methods: each raises a clear error that
names the argument, what was expected and what was received (tests/bad_input/_harness.py runs the cases)."""
import datetime

import numpy as np
import pytest

from fastnn import Sequential
from fastnn.layers import Dense, Flatten, Input

from bad_input._harness import check, ids

N, F, C = 12, 4, 3
X = np.random.default_rng(0).random((N, F)).astype(np.float32)
Y = np.arange(N) % C
ONEHOT = np.eye(C, dtype=np.float32)[Y]


def _model(loss="sparse_categorical_crossentropy", units=C, activation="softmax", shape=(F,), **compile_kwargs):
    model = Sequential([Input(shape), Dense(units, activation=activation)])
    model.compile(optimizer="sgd", loss=loss, **compile_kwargs)
    return model


def fit(x=X, y=Y, model=None, **kwargs):
    return (model or _model()).fit(x, y, **{"verbose": 0, **kwargs})


def evaluate(x=X, y=Y, model=None, **kwargs):
    return (model or _model()).evaluate(x, y, **{"verbose": 0, **kwargs})


def predict(x=X, **kwargs):
    return _model().predict(x, **{"verbose": 0, **kwargs})


def _with(array, index, value):
    array = np.array(array, dtype=np.result_type(array, type(value)))
    array[index] = value
    return array


FIT_ARGS = [
    ("fit/batch_size zero", lambda: fit(batch_size=0), ValueError, r"`batch_size`.*positive.*received 0"),
    ("fit/batch_size negative", lambda: fit(batch_size=-8), ValueError, r"`batch_size`.*received -8"),
    ("fit/batch_size float", lambda: fit(batch_size=8.5), ValueError, r"`batch_size`.*received 8\.5"),
    ("fit/batch_size string", lambda: fit(batch_size="32"), ValueError, r"`batch_size`.*received '32'"),
    ("fit/batch_size bool", lambda: fit(batch_size=True), ValueError, r"`batch_size`.*received True"),
    ("fit/epochs negative", lambda: fit(epochs=-1), ValueError, r"`epochs`.*non-negative.*received -1"),
    ("fit/epochs float", lambda: fit(epochs=2.5), ValueError, r"`epochs`.*received 2\.5"),
    ("fit/epochs string", lambda: fit(epochs="3"), ValueError, r"`epochs`.*received '3'"),
    ("fit/epochs None", lambda: fit(epochs=None), ValueError, r"`epochs`.*received None"),
    ("fit/initial_epoch negative", lambda: fit(initial_epoch=-1), ValueError, r"`initial_epoch`.*received -1"),
    ("fit/validation_freq zero", lambda: fit(validation_freq=0), ValueError, r"`validation_freq`.*received 0"),
    ("fit/verbose 3", lambda: fit(verbose=3), ValueError, r"`verbose`.*received 3"),
    ("fit/verbose string", lambda: fit(verbose="loud"), ValueError, r"`verbose`.*'loud'"),
    ("fit/shuffle string", lambda: fit(shuffle="yes"), ValueError, r"`shuffle`.*'yes'"),
    ("fit/validation_split one", lambda: fit(validation_split=1.0), ValueError,
     r"`validation_split`.*\(0, 1\).*1\.0"),
    ("fit/validation_split negative", lambda: fit(validation_split=-0.2), ValueError,
     r"`validation_split`.*-0\.2"),
    ("fit/validation_split string", lambda: fit(validation_split="0.2"), ValueError,
     r"`validation_split`.*'0\.2'"),
    ("fit/validation_split too small", lambda: fit(X[:1], Y[:1], validation_split=0.5), ValueError,
     r"1 samples.*not sufficient.*validation_split=0\.5"),
    ("fit/validation_data wrong length", lambda: fit(validation_data=(X, Y, None, None)), ValueError,
     r"`validation_data`.*tuple"),
    ("fit/validation_data a dict", lambda: fit(validation_data={"x": X}), ValueError, r"`validation_data`"),
    ("fit/validation_data an array", lambda: fit(validation_data=X), ValueError, r"`validation_data`"),
    ("fit/validation_data wrong features", lambda: fit(validation_data=(X[:, :2], Y)), ValueError,
     r"expects input of shape \(None, 4\); received \(12, 2\)"),
    ("fit/validation_data mismatched", lambda: fit(validation_data=(X, Y[:5])), ValueError,
     r"x sizes: 12, y sizes: 5"),
    ("fit/validation_data NaN labels", lambda: fit(validation_data=(X, _with(Y, 2, np.nan))), ValueError,
     r"validation_data y.*NaN"),
    ("fit/class_weight a list", lambda: fit(class_weight=[1.0, 2.0, 3.0]), ValueError,
     r"`class_weight` must be a dict"),
    ("fit/class_weight missing class", lambda: fit(class_weight={0: 1.0, 1: 2.0}), ValueError,
     r"no weight for the class\(es\) \[2\]"),
    ("fit/class_weight negative", lambda: fit(class_weight={0: 1.0, 1: -2.0, 2: 1.0}), ValueError,
     r"non-negative.*-2\.0 for class 1"),
    ("fit/class_weight string key", lambda: fit(class_weight={"0": 1.0, 1: 1.0, 2: 1.0}), ValueError,
     r"keys must be integer.*'0'"),
    ("fit/class_weight and sample_weight", lambda: fit(class_weight={0: 1, 1: 1, 2: 1}, sample_weight=np.ones(N)),
     ValueError, r"`class_weight` and `sample_weight` at the same time"),
    ("fit/sample_weight wrong length", lambda: fit(sample_weight=np.ones(N - 1)), ValueError,
     r"sample_weight sizes: 11"),
    ("fit/sample_weight negative", lambda: fit(sample_weight=_with(np.ones(N), 3, -1.0)), ValueError,
     r"`sample_weight` must be non-negative.*-1 at sample 3"),
    ("fit/sample_weight NaN", lambda: fit(sample_weight=_with(np.ones(N), 4, np.nan)), ValueError,
     r"`sample_weight` contains NaN.*sample 4"),
    ("fit/sample_weight 2-D", lambda: fit(sample_weight=np.ones((N, 2))), ValueError,
     r"one weight per sample.*\(12, 2\)"),
    ("fit/sample_weight strings", lambda: fit(sample_weight=np.array(["1"] * N)), ValueError,
     r"`sample_weight` must be numeric"),
    ("fit/steps_per_epoch", lambda: fit(steps_per_epoch=3), ValueError, r"`steps_per_epoch` is not supported"),
    ("fit/unknown kwarg", lambda: fit(epoch=3), TypeError, r"Unrecognized keyword arguments.*epoch"),
    ("fit/callbacks not a list", lambda: fit(callbacks="history"), (TypeError, ValueError), r"callbacks"),
    ("fit/callbacks holds a string", lambda: fit(callbacks=["early_stopping"]), (TypeError, ValueError),
     r"callback.*'early_stopping'"),
    ("evaluate/batch_size zero", lambda: evaluate(batch_size=0), ValueError, r"`batch_size`.*received 0"),
    ("evaluate/steps", lambda: evaluate(steps=2), ValueError, r"`steps` is not supported"),
    ("evaluate/unknown kwarg", lambda: evaluate(return_dicts=True), TypeError, r"return_dicts"),
    ("evaluate/sample_weight wrong length", lambda: evaluate(sample_weight=np.ones(3)), ValueError,
     r"sample_weight sizes: 3"),
    ("predict/batch_size negative", lambda: predict(batch_size=-1), ValueError, r"`batch_size`.*received -1"),
    ("predict/verbose 5", lambda: predict(verbose=5), ValueError, r"`verbose`.*received 5"),
    ("predict/unknown kwarg", lambda: predict(X, batchsize=4), TypeError, r"batchsize"),
]

DATA = [
    ("x/None", lambda: fit(x=None), ValueError, r"`x` is required; received None"),
    ("y/None", lambda: fit(y=None), ValueError, r"`y` is required; received None"),
    ("x/strings", lambda: fit(x=np.full((N, F), "a")), ValueError, r"`x` must be numeric.*<U1"),
    ("x/string list", lambda: fit(x=[["a", "b", "c", "d"]] * N), ValueError, r"`x` must be numeric"),
    ("y/strings", lambda: fit(y=np.array(["cat", "dog", "eel"] * 4)), ValueError, r"`y` must be numeric.*<U3"),
    ("x/ragged list", lambda: fit(x=[[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]] * 6), ValueError,
     r"`x` is a ragged nested list: row \[1\] has 2 elements where row \[0\] has 4"),
    ("y/ragged list", lambda: fit(y=[[1, 0, 0], [1, 0]] * 6, model=_model("categorical_crossentropy")),
     ValueError, r"`y` .*ragged"),
    ("predict/ragged list", lambda: predict([[1.0, 2.0, 3.0, 4.0], [1.0]]), ValueError, r"`x` .*ragged"),
    ("x/object array of arrays", lambda: fit(x=np.array([np.zeros(F), np.zeros(2)], dtype=object), y=Y[:2]),
     ValueError, r"`x` .*(ragged|numeric)"),
    ("x/dict", lambda: fit(x={"input": X}), ValueError, r"`x` must be numeric.*dict"),
    ("x/scalar", lambda: fit(x=3.0, y=1), ValueError, r"`x` must have a batch dimension.*scalar"),
    ("x/empty", lambda: fit(x=np.zeros((0, F)), y=np.zeros(0)), ValueError, r"`x` to be non-empty.*\(0, 4\)"),
    ("predict/empty", lambda: predict(np.zeros((0, F))), ValueError, r"`x` to be non-empty"),
    ("x/complex", lambda: fit(x=X.astype(np.complex64)), ValueError, r"`x` must be numeric.*complex64"),
    ("x/datetimes", lambda: fit(x=np.full((N, F), datetime.datetime(2020, 1, 1))), ValueError,
     r"`x` must be numeric"),
    ("x/wrong features", lambda: fit(x=X[:, :3]), ValueError,
     r"Dense 'dense.*' expects input of shape \(None, 4\); received \(12, 3\)"),
    ("x/images into Dense", lambda: fit(x=np.zeros((N, 2, 2), np.float32)), ValueError,
     r"expects input of shape \(None, 4\); received \(12, 2, 2\)\. Add a Flatten layer first"),
    ("x/wrong rank for Flatten model", lambda: Sequential([Flatten(input_shape=(2, 2)), Dense(C)]).predict(X),
     ValueError, r"expects input of shape \(None, 2, 2\); received \(12, 4\)"),
    ("predict/wrong features", lambda: predict(np.zeros((3, 7))), ValueError,
     r"expects input of shape \(None, 4\); received \(3, 7\)"),
    ("evaluate/wrong features", lambda: evaluate(x=np.zeros((N, 5))), ValueError,
     r"expects input of shape \(None, 4\); received \(12, 5\)"),
    ("x/NaN", lambda: fit(x=_with(X, (5, 1), np.nan)), ValueError, r"`x` contains NaN.*sample 5"),
    ("x/inf", lambda: fit(x=_with(X, (7, 0), np.inf)), ValueError, r"`x` contains NaN or infinity.*sample 7"),
    ("predict/NaN", lambda: predict(_with(X, (2, 2), np.nan)), ValueError, r"`x` contains NaN.*sample 2"),
    ("y/NaN labels", lambda: fit(y=_with(Y, 3, np.nan)), ValueError, r"`y` contains NaN.*sample 3"),
    ("y/inf targets mse", lambda: fit(y=_with(np.zeros((N, C)), (1, 1), np.inf), model=_model("mse")),
     ValueError, r"`y` contains NaN or infinity"),
    ("lengths/x longer", lambda: fit(y=Y[:10]), ValueError, r"x sizes: 12, y sizes: 10"),
    ("lengths/y longer", lambda: fit(x=X[:5]), ValueError, r"x sizes: 5, y sizes: 12"),
    ("lengths/evaluate", lambda: evaluate(x=X[:4]), ValueError, r"x sizes: 4, y sizes: 12"),
    ("labels/class id too large", lambda: fit(y=_with(Y, 4, C)), ValueError,
     r"label value of 3 .*valid range of \[0, 2\] for a model with 3 output units"),
    ("labels/negative class id", lambda: fit(y=_with(Y, 6, -1)), ValueError, r"label value of -1 .*valid range"),
    ("labels/fractional class id", lambda: fit(y=_with(Y.astype(float), 1, 0.5)), ValueError,
     r"must be integer class ids.*non-integer values"),
    ("labels/huge class id", lambda: fit(y=_with(Y, 0, 10 ** 12)), ValueError, r"label value of 1e\+12 .*valid range"),
    ("labels/int labels with categorical CE", lambda: fit(model=_model("categorical_crossentropy")), ValueError,
     r"integer class ids.*sparse_categorical_crossentropy"),
    ("labels/one-hot wrong width", lambda: fit(y=np.eye(4)[Y], model=_model("categorical_crossentropy")),
     ValueError, r"\(12, 4\).*\(None, 3\)"),
    ("labels/one-hot with sparse CE", lambda: fit(y=ONEHOT[:, :2]), ValueError, r"sparse_categorical"),
    ("labels/binary CE out of range", lambda: fit(y=np.full((N, 1), 2.0), model=_model("binary_crossentropy",
                                                                                         1, "sigmoid")),
     ValueError, r"targets must be in \[0, 1\].*2\.0"),
    ("labels/mse wrong width", lambda: fit(y=np.zeros((N, 5)), model=_model("mse")), ValueError,
     r"targets of shape \(12, 5\) do not match the model output shape \(None, 3\)"),
    ("labels/bool x is fine but string y", lambda: fit(x=X > 0.5, y=np.array(list("abcabcabcabc"))), ValueError,
     r"`y` must be numeric"),
    ("train_on_batch/mismatched", lambda: _model().train_on_batch(X, Y[:3]), ValueError, r"x sizes: 12, y sizes: 3"),
    ("test_on_batch/NaN x", lambda: _model().test_on_batch(_with(X, (0, 0), np.nan), Y), ValueError,
     r"`x` contains NaN"),
    ("predict_on_batch/strings", lambda: _model().predict_on_batch(np.full((2, F), "x")), ValueError,
     r"`x` must be numeric"),
    ("call/wrong features", lambda: _model()(np.zeros((2, 9), np.float32)), ValueError,
     r"expects input of shape \(None, 4\); received \(2, 9\)"),
    ("x/zero features", lambda: Sequential([Dense(C)]).predict(np.zeros((N, 0))), ValueError,
     r"`x` must have at least one feature per sample; received array of shape \(12, 0\)"),
    ("x/too large for float32", lambda: fit(x=_with(X.astype(np.float64), (3, 1), 1e300)), ValueError,
     r"`x` holds values too large for float32 \(beyond 3\.403e\+38; first at sample 3\)"),
    ("predict/too large for float32", lambda: predict(np.full((2, F), -1e39)), ValueError,
     r"`x` holds values too large for float32"),
    ("y/too large for float32", lambda: fit(y=np.full((N, C), 1e300), model=_model("mse")), ValueError,
     r"`y` holds values too large for float32 \(beyond .*first at sample 0\)"),
    ("x/float16 NaN", lambda: predict(_with(X.astype(np.float16), (1, 1), np.nan)), ValueError,
     r"`x` contains NaN"),
]

CASES = FIT_ARGS + DATA


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_data_and_call_arguments(case):
    check(case)
