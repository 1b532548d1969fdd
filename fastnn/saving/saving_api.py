"""``save_model`` / ``load_model`` / ``save_weights`` / ``load_weights``.

The file format is described in ``fastnn.saving.file_format``.

What "resuming exactly as if uninterrupted" needs, and what fastnn saves for it:

* the weights, the optimizer's hyper-parameters *as they are now* (a learning rate
  changed by a callback included), its step counter ``iterations`` and its slot
  arrays (Adam's moments, ...): all saved in the model file;
* the same batches in the same order. With ``shuffle=False`` that is automatic.
  With ``shuffle=True`` (or ``'batch'``) each epoch draws a permutation from
  fastnn's global generator (``fastnn.utils.set_random_seed``), so the generator
  must also be where it was at save time. In the *same* process nothing is needed:
  ``load_model`` builds the model (which draws initial weights) without advancing
  the global generator. In a *new* process, ``load_model(path, restore_rng=True)``
  sets the global generator to the state saved with the model (this is global
  state, hence opt-in). The weights files of ``save_weights`` hold weights only;
* the same data, ``batch_size`` and ``shuffle`` setting, and the same kernels
  (``FASTNN_KERNELS``) and thread count, since other kernels or thread counts may
  round differently. The epoch numbers do not matter: ``fit(epochs=2)`` and Keras'
  ``fit(initial_epoch=2, epochs=4)`` train the same. Callback state (EarlyStopping's
  counters, History) is not saved, as in Keras.

Differences from Keras 3: the files hold fastnn's own zip format (Keras cannot
read them, and fastnn cannot read Keras' files). So that tutorial code runs
unchanged they may carry Keras' names: ``model.save("m.keras")`` (or ``.h5``,
``.hdf5``, ``.fastnn``) and ``save_weights("w.weights.h5")`` (or
``.weights.npz``) write fastnn's format; loading reads the content, and a
genuine Keras ``.keras`` archive or HDF5 file is refused with an explanation.
``overwrite=False`` raises ``FileExistsError`` instead of asking on the terminal.
"""
import numpy as np

from fastnn.utils.array_utils import aligned_copy

from fastnn.saving import file_format as ff
from fastnn.saving import serialization
from fastnn.utils.rng_utils import global_rng
from fastnn.utils.validation import describe


def _check_model(model, owner):
    if not isinstance(model, tuple(serialization.registry("model").values())):
        raise TypeError(f"{owner}: expected a fastnn model; received {describe(model)}")


def _optimizer_arrays(model):
    """[(member, array)] for the optimizer's step counter and the slots it uses."""
    if not model.compiled:
        return []
    opt = model.optimizer
    # every step, accumulating ones too (Keras' _iterations: a schedule and gradient accumulation read it)
    arrays = [(ff.ITERATIONS, np.asarray(opt._iterations, dtype=np.int64))]
    size = model.count_params() if model.built else None
    slots = opt.slots or ()
    # Slots sized for another parameter count (the model changed since the last fit) would be
    # re-zeroed by the next fit anyway, so saving none of them is equivalent.
    if size is not None and all(s is None or s.shape == (size,) for s in slots):
        arrays += [(ff.slot_member(name), slot) for name, slot in zip(opt.slot_names, slots)
                   if slot is not None]
    return arrays


def save_model(model, filepath, overwrite=True):
    """Save ``model`` (architecture, weights, compile arguments, optimizer state) in fastnn's format, to a
    file named ``.keras`` (Keras' name), ``.fastnn``, ``.h5`` or ``.hdf5``."""
    _check_model(model, "save_model")
    path = ff.check_save_path(filepath, ff.MODEL_FORMAT)
    weights = model.weights if model.built else []
    documents = {
        ff.METADATA: ff.metadata(ff.MODEL_FORMAT, weights),
        ff.CONFIG: {"model": serialization.serialize_model(model),
                    "compile_config": serialization.serialize_compile(model)},
        ff.RNG_STATE: global_rng().bit_generator.state,
    }
    arrays = [(ff.weight_member(i), w.value) for i, w in enumerate(weights)] + _optimizer_arrays(model)
    ff.write_archive(path, documents, arrays, overwrite=overwrite)


def save_weights(model, filepath, overwrite=True):
    """Save only the weights of ``model`` (in ``model.weights`` order) in fastnn's format, to a file named
    ``.weights.h5`` (Keras' name) or ``.weights.npz``."""
    _check_model(model, "save_weights")
    path = ff.check_save_path(filepath, ff.WEIGHTS_FORMAT)
    if not model.built:
        raise ValueError("You are calling `save_weights()` on a model that has not been built yet, so it has "
                         "no weights. Build it first (`build()`, `fit()` or calling it on data).")
    weights = model.weights
    ff.write_archive(path, {ff.METADATA: ff.metadata(ff.WEIGHTS_FORMAT, weights)},
                     [(ff.weight_member(i), w.value) for i, w in enumerate(weights)], overwrite=overwrite)


def load_model(filepath, compile=True, restore_rng=False):  # noqa: A002 (Keras' argument name)
    """Rebuild a model saved by ``model.save`` / ``save_model``.

    Args:
        filepath: a file written by ``model.save`` (``.keras``, ``.fastnn``, ``.h5``: the content decides).
        compile: if True and the model was compiled when saved, compile it with the same
            optimizer (including its state), loss and metrics.
        restore_rng: if True, also set fastnn's global random generator to its state at save
            time, so that ``fit(shuffle=True)`` in a new process continues with the same
            batches as the interrupted run would have.
    """
    with ff.Archive(filepath, "load_model") as archive:
        if archive.kind != ff.MODEL_FORMAT:
            archive.fail("it is a weights file (written by `save_weights`); load it with "
                         "`model.load_weights(...)` into a model with the same architecture")
        config = archive.read_json(ff.CONFIG)
        if not isinstance(config, dict) or set(config) != {"model", "compile_config"}:
            archive.fail(f"`{ff.CONFIG}` must be an object with the keys 'model' and 'compile_config'")
        rng = global_rng()
        rng_state = rng.bit_generator.state
        try:
            model = serialization.deserialize_model(config["model"], f"`{ff.CONFIG}` model")
        except ValueError as exc:
            archive.fail(str(exc))
        finally:
            # Building drew initial weights from the global generator; put it back so that loading
            # does not change which batches the next fit(shuffle=True) draws.
            rng.bit_generator.state = rng_state
        _load_weight_values(archive, model)
        if compile and config["compile_config"] is not None:
            try:
                serialization.compile_from_config(model, config["compile_config"],
                                                  f"`{ff.CONFIG}` compile_config")
            except ValueError as exc:
                archive.fail(str(exc))
            _load_optimizer_state(archive, model)
        if restore_rng:
            _restore_rng(archive)
    return model


def load_weights(model, filepath):
    """Load weights saved by ``save_weights`` (or those of a model file from ``model.save``) into ``model``.

    Weights are matched by position in ``model.weights``; every shape and dtype must agree. The
    model is left unchanged if anything does not.
    """
    _check_model(model, "load_weights")
    if not model.built:
        raise ValueError("You are loading weights into a model that has not been built yet. Build it first "
                         "(`build((None, features))` or an `input_shape` on the first layer).")
    with ff.Archive(filepath, "load_weights") as archive:
        _load_weight_values(archive, model)


def _load_weight_values(archive, model):
    own = model.weights if model.built else []
    if len(archive.manifest) != len(own):
        archive.fail(f"it holds {len(archive.manifest)} weight arrays but the model "
                     f"'{model.name}' has {len(own)}")
    values = []
    for i, (weight, (name, shape, dtype)) in enumerate(zip(own, archive.manifest)):
        if shape != weight.shape or dtype != weight.dtype.name:
            archive.fail(f"weight {i} (`{name}` in the file) has shape {shape} and dtype {dtype}, but the "
                         f"model's weight `{weight.name}` has shape {weight.shape} and dtype "
                         f"{weight.dtype.name}")
        values.append(archive.read_array(ff.weight_member(i), weight.shape, weight.dtype, what=name))
    # Assign only once everything has been read and checked.
    for weight, value in zip(own, values):
        weight.assign(value)


def _load_optimizer_state(archive, model):
    opt = model.optimizer
    iterations = int(archive.read_array(ff.ITERATIONS, (), np.int64, what="optimizer step counter"))
    if iterations < 0:
        archive.fail(f"the optimizer step counter is negative ({iterations})")
    stored = {n[len("optimizer/"):-len(".npy")] for n in archive.names if n.startswith("optimizer/")}
    stored.discard("iterations")
    slots = None
    needed = set(opt.needed_slots())
    if stored or (not needed and model.built):
        if stored != needed:
            archive.fail(f"the optimizer state holds the slots {sorted(stored)}, but {type(opt).__name__} "
                         f"with its saved config uses {sorted(needed)}")
        if not model.built:
            archive.fail("it holds optimizer slots for a model that has no weights")
        size, dtype = model.count_params(), model.weights[0].dtype if model.weights else np.float32
        slots = tuple(aligned_copy(archive.read_array(ff.slot_member(name), (size,), dtype,
                                                      what=f"optimizer slot '{name}'"))
                      if name in stored else None for name in opt.slot_names)
    opt._iterations = iterations
    opt.slots = slots


def _restore_rng(archive):
    state = archive.read_json(ff.RNG_STATE)
    bit_generator = global_rng().bit_generator
    expected = type(bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        archive.fail(f"`{ff.RNG_STATE}` is not a saved {expected} generator state")
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        archive.fail(f"`{ff.RNG_STATE}` is not a valid {expected} generator state ({exc})")
