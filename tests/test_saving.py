"""Saving and loading: round trips, exact resumption of training, atomic writes, refusing bad files."""
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import optimizers
from fastnn.layers import Activation, Dense, Flatten, Input
from fastnn.models import Sequential, load_model
from fastnn.saving import file_format as ff
from fastnn.utils.rng_utils import global_rng, set_random_seed

_PACKAGE_PARENT = str(Path(fastnn.__file__).resolve().parent.parent)


@pytest.fixture(autouse=True)
def _fresh_session():
    fastnn.backend.clear_session()
    set_random_seed(0)
    yield
    fastnn.backend.clear_session()


def _data(n=64, features=8, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    return x, np.argmax(x[:, :classes], axis=1)


def _model(dtype="float32", hidden=16, optimizer="adam", compile=True):
    model = Sequential([Dense(hidden, activation="relu", input_shape=(8,), dtype=dtype),
                        Dense(3, activation="softmax", dtype=dtype)])
    if compile:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(wa, wb))


def _fit(model, x, y, epochs, shuffle=False, initial_epoch=0):
    return model.fit(x, y, epochs=epochs, batch_size=16, shuffle=shuffle, initial_epoch=initial_epoch,
                     verbose=0).history


def _subprocess(script, *args, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_PARENT,
                                                                     os.environ.get("PYTHONPATH")])))
    # Run from the imported package's parent: `python -c` puts the working directory first on
    # sys.path, and from a source checkout that would import the unbuilt source tree instead.
    kwargs.setdefault("cwd", _PACKAGE_PARENT)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _rewrite(path, replace=None, drop=()):
    """Rewrite the zip at ``path`` with some members replaced ({name: bytes}) or dropped."""
    replace = dict(replace or {})
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if name not in drop}
    members.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _edit_config(path, edit):
    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read(ff.CONFIG))
    edit(config)
    _rewrite(path, {ff.CONFIG: json.dumps(config).encode()})


def _npy_bytes(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- round trips
def test_round_trip_predictions_weights_and_configs(tmp_path):
    x, y = _data()
    model = Sequential([Input(shape=(2, 4)), Flatten(), Dense(16), Activation("relu"),
                        Dense(3, kernel_initializer="he_normal", bias_initializer="ones"),
                        Activation("softmax")])
    model.compile(optimizer=optimizers.RMSprop(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["acc"])
    x3 = x.reshape(-1, 2, 4)
    _fit(model, x3, y, 2)
    path = tmp_path / "model.fastnn"
    model.save(path)
    loaded = load_model(path)

    assert _same_weights(model, loaded)
    assert np.array_equal(model.predict(x3, verbose=0), loaded.predict(x3, verbose=0))
    assert loaded.get_config() == model.get_config()
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert loaded.compiled and type(loaded.optimizer) is optimizers.RMSprop
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert type(loaded.loss) is type(model.loss) and loaded.loss.get_config() == model.loss.get_config()
    results = [m.evaluate(x3, y, verbose=0, return_dict=True) for m in (model, loaded)]
    assert results[0] == results[1]
    assert loaded.metrics_names == model.metrics_names == ["loss", "acc"]


def test_metric_and_loss_objects_round_trip(tmp_path):
    x, y = _data()
    onehot = np.eye(3, dtype=np.float32)[y]
    model = Sequential([Dense(3, input_shape=(8,))])
    loss = fastnn.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    metrics = [fastnn.metrics.CategoricalAccuracy(name="cat_acc"), fastnn.metrics.MeanSquaredError,
               "accuracy"]
    model.compile(optimizer="sgd", loss=loss, metrics=metrics)
    _fit(model, x, onehot, 1)
    model.save(tmp_path / "m.fastnn")
    loaded = load_model(tmp_path / "m.fastnn")
    assert loaded.loss.from_logits and loaded.loss.label_smoothing == pytest.approx(0.1)
    ids = loaded._metric_ids
    assert ids[0].name == "cat_acc" and ids[1] is fastnn.metrics.MeanSquaredError and ids[2] == "accuracy"
    assert _fit(loaded, x, onehot, 1) == _fit(model, x, onehot, 1)


def test_float64_model_round_trips_dtype(tmp_path):
    model = _model(dtype="float64")
    model.save(tmp_path / "m.fastnn")
    loaded = load_model(tmp_path / "m.fastnn")
    assert all(w.dtype == np.float64 for w in loaded.weights)
    assert _same_weights(model, loaded)


def test_compile_false_and_uncompiled_and_unbuilt_models(tmp_path):
    x, _ = _data()
    model = _model()
    model.save(tmp_path / "m.fastnn")
    plain = load_model(tmp_path / "m.fastnn", compile=False)
    assert not plain.compiled and plain.optimizer is None
    assert np.array_equal(plain.predict(x, verbose=0), model.predict(x, verbose=0))

    uncompiled = _model(compile=False)
    uncompiled.save(tmp_path / "u.fastnn")
    assert not load_model(tmp_path / "u.fastnn").compiled
    assert _same_weights(uncompiled, load_model(tmp_path / "u.fastnn"))

    unbuilt = Sequential([Dense(4), Dense(2)], name="later")
    unbuilt.compile(loss="mse")
    unbuilt.save(tmp_path / "unbuilt.fastnn")
    loaded = load_model(tmp_path / "unbuilt.fastnn")
    assert not loaded.built and loaded.name == "later" and loaded.get_config() == unbuilt.get_config()
    assert loaded.compiled and loaded.optimizer.iterations == 0


def test_frozen_model_stays_frozen(tmp_path):
    model = _model()
    model.trainable = False
    model.save(tmp_path / "m.fastnn")
    assert load_model(tmp_path / "m.fastnn").trainable is False


def test_loading_does_not_advance_the_global_generator(tmp_path):
    _model().save(tmp_path / "m.fastnn")
    before = global_rng().bit_generator.state
    load_model(tmp_path / "m.fastnn")
    assert global_rng().bit_generator.state == before


def test_same_model_saves_the_same_bytes(tmp_path):
    model = _model()
    model.save(tmp_path / "a.fastnn")
    model.save(tmp_path / "b.fastnn")
    assert (tmp_path / "a.fastnn").read_bytes() == (tmp_path / "b.fastnn").read_bytes()


def test_file_layout_is_the_documented_one(tmp_path):
    x, y = _data()
    model = _model()
    _fit(model, x, y, 1)
    model.save(tmp_path / "m.fastnn")
    with zipfile.ZipFile(tmp_path / "m.fastnn") as zf:
        assert sorted(zf.namelist()) == sorted(
            ["metadata.json", "config.json", "rng_state.json", "weights/0000.npy", "weights/0001.npy",
             "weights/0002.npy", "weights/0003.npy", "optimizer/iterations.npy", "optimizer/m.npy",
             "optimizer/v.npy"])
        meta = json.loads(zf.read("metadata.json"))
        assert meta["format"] == "fastnn.model" and meta["format_version"] == 1
        assert meta["fastnn_version"] == fastnn.__version__
        assert [w["name"] for w in meta["weights"]] == [w.name for w in model.weights]
        kernel = np.load(io.BytesIO(zf.read("weights/0000.npy")), allow_pickle=False)
        assert np.array_equal(kernel, model.weights[0].value)
        assert int(np.load(io.BytesIO(zf.read("optimizer/iterations.npy")))) == 4
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())


# ---------------------------------------------------------------------------- resuming training
@pytest.mark.parametrize("dtype", ["float32", "float64"])  # float32 runs the fused engine, float64 the layers
@pytest.mark.parametrize("shuffle", [False, True, "batch"])
def test_resumed_training_is_bit_identical(tmp_path, dtype, shuffle):
    x, y = _data()
    set_random_seed(7)
    reference = _model(dtype)
    full = _fit(reference, x, y, 4, shuffle)

    set_random_seed(7)
    model = _model(dtype)
    first = _fit(model, x, y, 2, shuffle)
    model.save(tmp_path / "m.fastnn")
    del model
    resumed = load_model(tmp_path / "m.fastnn")
    second = _fit(resumed, x, y, 2, shuffle)

    assert _same_weights(reference, resumed)
    assert first["loss"] + second["loss"] == full["loss"]
    assert resumed.optimizer.iterations == reference.optimizer.iterations == 16


def test_resume_after_the_generator_moved_needs_restore_rng(tmp_path):
    """In a new process the global generator is not where it was: restore_rng=True puts it back."""
    x, y = _data()
    set_random_seed(3)
    reference = _model()
    _fit(reference, x, y, 4, shuffle=True)

    set_random_seed(3)
    model = _model()
    _fit(model, x, y, 2, shuffle=True)
    model.save(tmp_path / "m.fastnn")
    set_random_seed(12345)
    resumed = load_model(tmp_path / "m.fastnn", restore_rng=True)
    _fit(resumed, x, y, 4, shuffle=True, initial_epoch=2)  # Keras' way to resume: same batches
    assert _same_weights(reference, resumed)

    set_random_seed(12345)
    other = load_model(tmp_path / "m.fastnn")
    _fit(other, x, y, 2, shuffle=True)
    assert not _same_weights(reference, other)  # different batches without the saved generator state


def test_resume_in_a_new_process(tmp_path):
    x, y = _data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    set_random_seed(5)
    reference = _model()
    _fit(reference, x, y, 4, shuffle=True)

    set_random_seed(5)
    model = _model()
    _fit(model, x, y, 2, shuffle=True)
    model.save(tmp_path / "m.fastnn")
    proc = _subprocess("""
        import sys
        import numpy as np
        from fastnn.models import load_model
        data = np.load(sys.argv[1])
        model = load_model(sys.argv[2], restore_rng=True)
        model.fit(data["x"], data["y"], epochs=2, batch_size=16, shuffle=True, verbose=0)
        model.save_weights(sys.argv[3])
    """, tmp_path / "data.npz", tmp_path / "m.fastnn", tmp_path / "out.weights.npz")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    reference_weights = reference.get_weights()
    reference.load_weights(tmp_path / "out.weights.npz")
    assert all(np.array_equal(a, b) for a, b in zip(reference_weights, reference.get_weights()))


OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.1),
    "sgd_momentum": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "sgd_nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(learning_rate=0.01),
    "rmsprop_momentum_centered": lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "adam_amsgrad": lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adadelta": lambda: optimizers.Adadelta(learning_rate=1.0),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_round_trips(tmp_path, name):
    x, y = _data()
    model = _model(optimizer=OPTIMIZERS[name]())
    _fit(model, x, y, 2)
    model.optimizer.learning_rate = model.optimizer.learning_rate / 2  # as a scheduler callback would
    model.save(tmp_path / "m.fastnn")
    loaded = load_model(tmp_path / "m.fastnn")

    opt, got = model.optimizer, loaded.optimizer
    assert type(got) is type(opt) and got.get_config() == opt.get_config()
    assert got.iterations == opt.iterations == 8
    assert [s is None for s in got.slots] == [s is None for s in opt.slots]
    for mine, theirs in zip(opt.slots, got.slots):
        if mine is not None:
            assert theirs.dtype == mine.dtype and np.array_equal(theirs, mine) and theirs.flags.writeable
    _fit(model, x, y, 1)
    _fit(loaded, x, y, 1)
    assert _same_weights(model, loaded)


def test_optimizer_that_never_stepped_round_trips(tmp_path):
    model = _model()
    model.save(tmp_path / "m.fastnn")
    loaded = load_model(tmp_path / "m.fastnn")
    assert loaded.optimizer.iterations == 0 and loaded.optimizer.slots is None


# ---------------------------------------------------------------------------- weights only, configs
def test_save_weights_and_load_weights(tmp_path):
    x, y = _data()
    model = _model()
    _fit(model, x, y, 1)
    model.save_weights(tmp_path / "w.weights.npz")
    other = _model()
    assert not _same_weights(model, other)
    other.load_weights(tmp_path / "w.weights.npz")
    assert _same_weights(model, other)
    assert np.array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    # A weights file is a plain .npz too.
    with np.load(tmp_path / "w.weights.npz") as npz:
        assert np.array_equal(npz["weights/0001"], model.weights[1].value)
    # load_weights also takes the weights of a full model file.
    model.save(tmp_path / "m.fastnn")
    third = _model()
    third.load_weights(tmp_path / "m.fastnn")
    assert _same_weights(model, third)


def test_load_weights_into_a_different_architecture_fails_and_changes_nothing(tmp_path):
    _model().save_weights(tmp_path / "w.weights.npz")
    wider = _model(hidden=17)
    before = wider.get_weights()
    with pytest.raises(ValueError, match=r"w\.weights\.npz.*shape \(8, 16\).*shape \(8, 17\)"):
        wider.load_weights(tmp_path / "w.weights.npz")
    assert all(np.array_equal(a, b) for a, b in zip(before, wider.get_weights()))
    deeper = Sequential([Dense(16, input_shape=(8,)), Dense(16), Dense(3)])
    with pytest.raises(ValueError, match="holds 4 weight arrays but the model .* has 6"):
        deeper.load_weights(tmp_path / "w.weights.npz")
    with pytest.raises(ValueError, match="has not been built"):
        Sequential([Dense(3)]).load_weights(tmp_path / "w.weights.npz")
    with pytest.raises(ValueError, match="has not been built"):
        Sequential([Dense(3)]).save_weights(tmp_path / "x.weights.npz")
    with pytest.raises(ValueError, match="weights file.*load_weights"):
        load_model(tmp_path / "w.weights.npz")


def test_get_config_from_config():
    seeded = fastnn.initializers.GlorotNormal(seed=1)
    model = Sequential([Input(shape=(8,)),
                        Dense(5, activation="tanh", kernel_initializer=seeded, dtype="float64"),
                        Dense(2, use_bias=False, dtype="float64")], name="net")
    config = model.get_config()
    rebuilt = Sequential.from_config(config)
    assert rebuilt.built and rebuilt.name == "net" and rebuilt.get_config() == config
    assert np.array_equal(rebuilt.weights[0].value, model.weights[0].value)  # seeded initializer
    assert rebuilt.layers[0].dtype == np.float64
    from_json = Sequential.from_config(json.loads(json.dumps(config)))
    assert from_json.get_config() == config
    unbuilt = Sequential([Dense(2)])
    assert not Sequential.from_config(unbuilt.get_config()).built


def test_from_config_refuses_unknown_classes_and_keys():
    config = _model(compile=False).get_config()
    config["layers"][0]["class_name"] = "Lambda"
    with pytest.raises(ValueError, match="unknown layer class 'Lambda'.*Dense"):
        Sequential.from_config(config)
    config = _model(compile=False).get_config()
    config["layers"][0]["config"]["kernel_initializer"] = {"class_name": "os.system", "config": {}}
    with pytest.raises(ValueError, match="unknown initializer class 'os.system'"):
        Sequential.from_config(config)
    config = _model(compile=False).get_config()
    config["layers"][0]["config"]["units"] = -3
    with pytest.raises(ValueError, match="units"):
        Sequential.from_config(config)
    with pytest.raises(ValueError, match="unrecognized key"):
        Sequential.from_config(dict(config, extra=1))


def test_custom_classes_are_refused_when_saving(tmp_path):
    class MyDense(Dense):
        pass

    model = Sequential([MyDense(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="MyDense is not one of them"):
        model.save(tmp_path / "m.fastnn")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- paths and extensions
@pytest.mark.parametrize("name, match", [
    ("m", r"Please add a `\.keras` extension .*e\.g\. '.*m\.keras'.*Received: filepath="),
    ("m.npz", r"Please add a `\.keras` extension .*e\.g\. '.*m\.keras'"),
    ("m.weights.npz", r"save_weights"),
    ("m.weights.h5", r"is a weights file name\. Use `model\.save_weights"),
])
def test_save_rejects_other_extensions(tmp_path, name, match):
    with pytest.raises(ValueError, match=match):
        _model().save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["w.h5", "w.npz", "w.fastnn", "w.keras"])
def test_save_weights_rejects_other_extensions(tmp_path, name):
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5` \(Keras' name\) or `\.weights\.npz`"):
        _model().save_weights(tmp_path / name)


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.hdf5"])
def test_keras_model_file_names_hold_the_fastnn_format(tmp_path, name):
    """Tutorial code (`model.save('my_model.keras')`) runs unchanged; the file is fastnn's own format."""
    model = _model()
    x, y = _data()
    _fit(model, x, y, epochs=1)
    model.save(tmp_path / name)
    model.save(tmp_path / "same.fastnn")
    assert (tmp_path / name).read_bytes() == (tmp_path / "same.fastnn").read_bytes()
    loaded = load_model(tmp_path / name)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_weights_file_name_holds_the_fastnn_format(tmp_path):
    model = _model()
    model.save_weights(tmp_path / "w.weights.h5")
    with zipfile.ZipFile(tmp_path / "w.weights.h5") as zf:
        assert json.loads(zf.read("metadata.json"))["format"] == "fastnn.weights"
    other = _model()
    other.load_weights(tmp_path / "w.weights.h5")
    assert _same_weights(model, other)


def test_regularizers_round_trip(tmp_path):
    model = Sequential([Dense(4, input_shape=(3,), kernel_regularizer="l1_l2", bias_regularizer="l2"), Dense(2)])
    model.compile("sgd", "mse")
    model.save(tmp_path / "r.keras")
    loaded = load_model(tmp_path / "r.keras")
    assert loaded.layers[0].kernel.regularizer.get_config() == {"l1": 0.01, "l2": 0.01}
    assert loaded.layers[0].bias.regularizer.get_config() == {"l2": 0.01}
    assert loaded.losses == pytest.approx(model.losses)


def test_overwrite_false(tmp_path):
    path = tmp_path / "m.fastnn"
    first = _model()
    first.save(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _model().save(path, overwrite=False)
    first.save_weights(tmp_path / "w.weights.npz")
    with pytest.raises(FileExistsError):
        _model().save_weights(tmp_path / "w.weights.npz", overwrite=False)
    assert _same_weights(first, load_model(path))
    second = _model()
    second.save(path)  # overwrite=True is the default
    assert _same_weights(second, load_model(path))
    second.save(tmp_path / "new.fastnn", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fastnn", "new.fastnn", "w.weights.npz"]


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="File not found"):
        load_model(tmp_path / "missing.fastnn")
    with pytest.raises(TypeError, match="filepath"):
        _model().save(42)
    with pytest.raises(FileNotFoundError, match="directory .* does not exist"):
        _model().save(tmp_path / "nowhere" / "m.fastnn")
    (tmp_path / "d.fastnn").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        load_model(tmp_path / "d.fastnn")
    with pytest.raises(ValueError, match="is a directory"):
        _model().save(tmp_path / "d.fastnn")


# ---------------------------------------------------------------------------- atomic writes
def test_save_killed_mid_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "big.fastnn"
    old = Sequential([Dense(512, input_shape=(512,)), Dense(512), Dense(10)])
    old.compile(optimizer="adam", loss="mse")
    old.save(path)
    proc = _subprocess("""
        import sys, time
        from fastnn.models import load_model
        from fastnn.saving import file_format as ff
        model = load_model(sys.argv[1])
        model.set_weights([w + 1 for w in model.get_weights()])
        write = ff._write_npy
        def slow_write(zf, name, array):
            write(zf, name, array)
            if name == ff.weight_member(2):
                print("writing", flush=True)
                time.sleep(120)
        ff._write_npy = slow_write
        model.save(sys.argv[1])
        print("finished", flush=True)
    """, path)
    try:
        line = proc.stdout.readline()
        assert line == "writing\n", proc.stderr.read()
        partial = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(partial) == 1 and partial[0].name.startswith(".big.fastnn.")
        assert partial[0].stat().st_size > 0
        proc.kill()  # SIGKILL: no cleanup runs in the child
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode != 0
    loaded = load_model(path)
    assert _same_weights(old, loaded)
    with pytest.raises(ValueError, match="not a fastnn file|truncated or corrupt"):
        load_model(partial[0])  # the half-written temporary file is refused, not misread
    loaded.save(path)  # the next save of the target removes the killed save's temporary file
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert _same_weights(old, load_model(path))


def test_only_provably_stale_temporaries_are_removed(tmp_path):
    """A temporary file of this host whose process is gone goes; one of a live process (maybe saving now),
    of another host, of another target, or of another name form stays."""
    from fastnn.saving import file_format as ff

    path = tmp_path / "m.fastnn"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    host = ff._host()
    names = {f".m.fastnn.{host}.{dead.stdout.strip()}.0123456789ab.tmp": False,   # its process is gone
             f".m.fastnn.{host}.{os.getppid()}.0123456789ab.tmp": True,            # a live process
             f".m.fastnn.elsewhere.{dead.stdout.strip()}.0123456789ab.tmp": True,   # another host
             f".other.fastnn.{host}.{dead.stdout.strip()}.0123456789ab.tmp": True,  # another target
             ".m.fastnn.0123456789ab.tmp": True}                                    # no pid in the name
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    _model().save(path)
    assert {name: (tmp_path / name).exists() for name in names} == names


def test_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.fastnn"
    old = _model()
    old.save(path)

    def failing_write(zf, name, array):
        raise OSError("disk full")

    monkeypatch.setattr(ff, "_write_npy", failing_write)
    with pytest.raises(OSError, match="disk full"):
        _model().save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.fastnn"]
    monkeypatch.undo()
    assert _same_weights(old, load_model(path))


def test_saved_file_gets_normal_permissions(tmp_path):
    _model().save(tmp_path / "m.fastnn")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "m.fastnn").stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------------- bad files
@pytest.fixture
def saved(tmp_path):
    x, y = _data()
    model = _model()
    _fit(model, x, y, 1)
    path = tmp_path / "m.fastnn"
    model.save(path)
    return path


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.1, 10])
def test_truncated_file(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(ValueError, match=r"Cannot load '.*m\.fastnn': the zip archive is truncated"):
        load_model(saved)


def test_corrupted_byte_fails_the_crc_check(saved):
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("weights/0000.npy")
    data = bytearray(saved.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="member `weights/0000.npy` fails its CRC check"):
        load_model(saved)


def test_random_bytes_and_empty_files(tmp_path):
    path = tmp_path / "m.fastnn"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="not a fastnn file"):
        load_model(path)
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(5000))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_model(path)


def test_foreign_files(tmp_path):
    """Genuine Keras files, whatever their name, get a clear error instead of a crash."""
    hdf5 = b"\x89HDF\r\n\x1a\n" + bytes(100)
    for name in ("m.fastnn", "keras2_model.h5", "keras.weights.h5"):
        (tmp_path / name).write_bytes(hdf5)
    for name in ("m.fastnn", "keras2_model.h5"):
        with pytest.raises(ValueError, match=r"it is an HDF5 file, written by Keras \(or h5py\), not by fastnn"):
            load_model(tmp_path / name)
    with pytest.raises(ValueError, match=r"HDF5 file, written by Keras .*`\.weights\.h5`"):
        _model().load_weights(tmp_path / "keras.weights.h5")
    path = tmp_path / "keras3_model.keras"
    with zipfile.ZipFile(path, "w") as zf:  # what Keras 3 writes
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"\x89HDF")
    with pytest.raises(ValueError, match="it is a Keras 3 `.keras` archive, written by Keras, not by fastnn"):
        load_model(path)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastnn file: the zip has no `metadata.json`"):
        load_model(tmp_path / "plain.npz")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"format": "something.else", "format_version": 1}))
    with pytest.raises(ValueError, match="format 'something.else'"):
        load_model(path)


def test_zip_without_the_members(saved):
    _rewrite(saved, drop={"config.json", "rng_state.json"})
    with pytest.raises(ValueError, match="required member.*config.json.*missing"):
        load_model(saved)
    with zipfile.ZipFile(saved, "w"):
        pass  # an empty zip
    with pytest.raises(ValueError, match="no `metadata.json`"):
        load_model(saved)


def test_missing_weight_or_optimizer_members(saved):
    _rewrite(saved, drop={"weights/0003.npy"})
    with pytest.raises(ValueError, match="lists 4 weight arrays but the archive holds"):
        load_model(saved)


def test_missing_optimizer_member(saved):
    _rewrite(saved, drop={"optimizer/v.npy"})
    with pytest.raises(ValueError, match=r"slots \['m'\], but Adam with its saved config uses \['m', 'v'\]"):
        load_model(saved)
    assert load_model(saved, compile=False).built  # architecture and weights are still readable


def test_unexpected_member(saved):
    _rewrite(saved, {"../evil.py": b"print('hi')"})
    with pytest.raises(ValueError, match="members a fastnn file never has: `../evil.py`"):
        load_model(saved)


def test_newer_format_version(saved):
    with zipfile.ZipFile(saved) as zf:
        meta = json.loads(zf.read("metadata.json"))
    meta["format_version"] = 99
    _rewrite(saved, {"metadata.json": json.dumps(meta).encode()})
    with pytest.raises(ValueError, match="newer fastnn.*format version 99.*Upgrade"):
        load_model(saved)


@pytest.mark.parametrize("where, class_name, match", [
    ("layer", "Lambda", "unknown layer class 'Lambda'"),
    ("initializer", "builtins.eval", "unknown initializer class 'builtins.eval'"),
    ("optimizer", "Evil", "unknown optimizer class 'Evil'"),
    ("loss", "CustomLoss", "unknown loss class 'CustomLoss'"),
    ("model", "Functional", "unknown model class 'Functional'"),
])
def test_config_naming_an_unknown_class(saved, where, class_name, match):
    def edit(config):
        if where == "layer":
            config["model"]["config"]["layers"][1]["class_name"] = class_name
        elif where == "initializer":
            config["model"]["config"]["layers"][1]["config"]["kernel_initializer"]["class_name"] = class_name
        elif where == "model":
            config["model"]["class_name"] = class_name
        else:
            config["compile_config"][where]["class_name"] = class_name

    _edit_config(saved, edit)
    with pytest.raises(ValueError, match=rf"Cannot load '.*m\.fastnn'.*{match}"):
        load_model(saved)


def test_config_with_bad_values(saved):
    _edit_config(saved, lambda c: c["model"]["config"]["layers"][0]["config"].update(units="many"))
    with pytest.raises(ValueError, match="Cannot load.*cannot rebuild the layer.*units"):
        load_model(saved)
    _rewrite(saved, {"config.json": b"{not json"})
    with pytest.raises(ValueError, match="`config.json` is not valid JSON"):
        load_model(saved)


def test_config_that_no_longer_matches_the_weights(saved):
    _edit_config(saved, lambda c: c["model"]["config"]["layers"][0]["config"].update(units=17))
    with pytest.raises(ValueError, match=r"weight 0 .*shape \(8, 16\).*shape \(8, 17\)"):
        load_model(saved)


def test_array_with_the_wrong_shape_or_dtype(saved):
    _rewrite(saved, {"weights/0001.npy": _npy_bytes(np.zeros(16, dtype=np.float64))})
    with pytest.raises(ValueError, match=r"weights/0001.npy.*dtype float64; the model expects .*float32"):
        load_model(saved)
    _rewrite(saved, {"weights/0001.npy": _npy_bytes(np.zeros(15, dtype=np.float32))})
    with pytest.raises(ValueError, match=r"weights/0001.npy.*shape \(15,\)"):
        load_model(saved)
    _rewrite(saved, {"weights/0001.npy": b"\x93NUMPY garbage"})
    with pytest.raises(ValueError, match=r"weights/0001.npy.*not a valid .npy"):
        load_model(saved)
    _rewrite(saved, {"weights/0001.npy": _npy_bytes(np.zeros(16, dtype=np.float32))[:-8]})
    with pytest.raises(ValueError, match=r"weights/0001.npy.*truncated"):
        load_model(saved)


class _Payload:
    """Unpickling this creates the directory ``path`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("member", ["weights/0000.npy", "optimizer/iterations.npy", "optimizer/m.npy"])
def test_pickled_object_array_is_refused_not_executed(saved, tmp_path, member):
    marker = tmp_path / "executed"
    evil = _npy_bytes(np.array([_Payload(str(marker))], dtype=object), allow_pickle=True)
    # The payload is live: unpickling it does create the marker.
    np.load(io.BytesIO(evil), allow_pickle=True)
    assert marker.exists()
    marker.rmdir()

    _rewrite(saved, {member: evil})
    with pytest.raises(ValueError, match=rf"`{member}`.*Python object array.*never unpickle"):
        load_model(saved)
    assert not marker.exists()
    if member.startswith("weights/"):
        with pytest.raises(ValueError, match="object array"):
            _model().load_weights(saved)
        assert not marker.exists()
