"""The fastnn file container: a ZIP archive of JSON documents and ``.npy`` arrays.

This is fastnn's own format. It is *not* Keras' ``.keras`` archive (which holds
an HDF5 ``model.weights.h5``) nor Keras 2's HDF5 ``.h5`` file: Keras cannot read
it and fastnn cannot read those. It is meant to be simple to inspect and to
read without fastnn: ``unzip -l``, ``json.load`` and ``np.load`` are enough.

File names: so that Keras tutorial code runs unchanged, fastnn also writes this
format under Keras' names -- models as ``.keras`` (or ``.h5``/``.hdf5``) as well
as ``.fastnn``, weights as ``.weights.h5`` as well as ``.weights.npz``. The
content decides how a file is read, never the name: a genuine Keras ``.keras``
archive or HDF5 file is recognised and refused with an explanation.

Two kinds of file share the container:

``<name>.fastnn`` (``model.save`` / ``fastnn.models.load_model``)::

    metadata.json          {"format": "fastnn.model", "format_version": 1,
                            "fastnn_version": "0.1.0", "numpy_version": "2.4.6",
                            "weights": [{"name": "dense/kernel", "shape": [784, 10],
                                         "dtype": "float32"}, ...]}
    config.json            {"model": {"class_name": "Sequential", "config": {...}},
                            "compile_config": null | {
                                "optimizer": {"class_name": "Adam", "config": {...}},
                                "loss": null | {"class_name": "...", "config": {...}},
                                "metrics": ["accuracy", {"class_name": "...", "config": {...}}, ...]}}
    rng_state.json         fastnn's global generator (``bit_generator.state``) at save time
    weights/0000.npy ...   one array per entry of ``model.weights``, in that order
    optimizer/iterations.npy   0-d int64: optimizer steps taken
    optimizer/<slot>.npy       1-D, one value per parameter of the model's arena, for each
                               optimizer slot in use (Adam ``m``/``v``[/``vhat``], RMSprop
                               ``velocity``[/``momentum``/``average_gradient``], SGD
                               ``momentum``, Adadelta ``accumulated_grad``/``accumulated_delta``)

``<name>.weights.npz`` (``model.save_weights`` / ``model.load_weights``): ``metadata.json``
with ``"format": "fastnn.weights"`` and the ``weights/NNNN.npy`` arrays. Being a zip of
``.npy`` files it is also a valid ``.npz``: ``np.load(path)["weights/0000"]`` reads it.

Details that make files portable and reproducible: entries are stored uncompressed
(weights do not compress) with a fixed 1980-01-01 timestamp, so the same model (and
generator state) gives the same bytes; arrays are little-endian, C-ordered ``.npy`` (format 1.0/2.0) written
with ``allow_pickle=False``; JSON is UTF-8 without NaN/Infinity.

Writes are atomic: the archive is written to ``.<name>.<host>.<pid>.<random>.tmp`` in the
target's directory, flushed and fsync'ed, then ``os.replace``'d over the target (and the
directory fsync'ed), so a process killed mid-save leaves the previous file intact and a
stray ``.tmp`` file beside it, which the next save of the same target on the same host
removes once its process is provably gone (no process with that pid). A save that fails (a full disk, a
read-only directory) raises an ``OSError`` that names the target, not the temporary file, and says that the
previous file is intact.

Reading never executes anything from the file: JSON is parsed with ``json``, ``.npy``
headers with NumPy's literal-only parser, object dtypes are refused before any data is
read, member sizes are checked before reading, and classes are looked up by name in
fastnn's own registry (``fastnn.saving.serialization``). Every problem raises a
``ValueError`` naming the file and what is wrong.
"""
import errno
import hashlib
import json
import os
import re
import secrets
import socket
import zipfile

import numpy as np

from fastnn._version import __version__
from fastnn.utils.validation import shape_str

FORMAT_VERSION = 1
MODEL_FORMAT = "fastnn.model"
WEIGHTS_FORMAT = "fastnn.weights"
MODEL_EXTENSION = ".fastnn"
WEIGHTS_EXTENSION = ".weights.npz"
# Keras' names, accepted too (the content is fastnn's format whatever the name).
MODEL_EXTENSIONS = (MODEL_EXTENSION, ".keras", ".h5", ".hdf5")
WEIGHTS_EXTENSIONS = (WEIGHTS_EXTENSION, ".weights.h5")

METADATA = "metadata.json"
CONFIG = "config.json"
RNG_STATE = "rng_state.json"
ITERATIONS = "optimizer/iterations.npy"
REQUIRED_MEMBERS = {MODEL_FORMAT: (METADATA, CONFIG, RNG_STATE), WEIGHTS_FORMAT: (METADATA,)}

_MEMBER_PATTERN = re.compile(r"(metadata\.json|config\.json|rng_state\.json|weights/\d{4,}\.npy"
                             r"|optimizer/[a-z][a-z0-9_]*\.npy)")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_MAX_JSON_BYTES = 64 << 20
# Room for an .npy header (NumPy caps it at 10000 bytes unless told otherwise).
_MAX_NPY_HEADER = 10000 + 128
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def weight_member(index):
    return f"weights/{index:04d}.npy"


def slot_member(name):
    return f"optimizer/{name}.npy"


# ---------------------------------------------------------------------------- paths
def check_save_path(filepath, kind):
    """Return ``filepath`` as a str; raise if it is not a path with the right extension."""
    path = _as_path(filepath, "save_weights" if kind == WEIGHTS_FORMAT else "save")
    if kind == MODEL_FORMAT:
        if path.endswith(WEIGHTS_EXTENSIONS):
            raise ValueError(f"Invalid filepath extension for saving a model: {path!r} is a weights file "
                             f"name. Use `model.save_weights({path!r})` to save only the weights, or give "
                             "the model file the `.keras` extension.")
        if not path.endswith(MODEL_EXTENSIONS):
            raise ValueError("Invalid filepath extension for saving. Please add a `.keras` extension (Keras' "
                             f"name; `{MODEL_EXTENSION}`, `.h5` and `.hdf5` work too), e.g. "
                             f"{_suggest(path, '.keras')!r}. fastnn writes its own zip format under any of "
                             f"these names. Received: filepath={path!r}")
    elif not path.endswith(WEIGHTS_EXTENSIONS):
        raise ValueError(f"The filename must end in `.weights.h5` (Keras' name) or `{WEIGHTS_EXTENSION}`, e.g. "
                         f"{_suggest(path, '.weights.h5')!r}; fastnn writes its own weights format (a zip of "
                         f".npy arrays) under either name. Received: filepath={path!r}")
    if os.path.isdir(path):
        raise ValueError(f"Cannot save to {path!r}: it is a directory.")
    return path


def _as_path(filepath, owner):
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{owner}: argument `filepath` must be a str or os.PathLike; received "
                        f"{type(filepath).__name__}.")
    path = os.fspath(filepath)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if "\0" in path:  # the OS refuses it with "embedded null byte", naming neither the argument nor the path
        raise ValueError(f"{owner}: argument `filepath` contains a null character; received {path!r}.")
    return path


def _suggest(path, extension):
    stem = path
    for ext in (".weights.h5", ".weights.npz", ".keras", ".fastnn", ".hdf5", ".h5", ".npz", ".tf"):
        if stem.endswith(ext):
            stem = stem[:-len(ext)]
            break
    return stem + extension


# ---------------------------------------------------------------------------- writing
def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.dtype):
        return value.name
    raise TypeError(f"value {value!r} of type {type(value).__name__} cannot be saved in a fastnn file "
                    "(configs must be made of JSON types)")


def _json_bytes(document):
    text = json.dumps(document, indent=1, sort_keys=True, allow_nan=False, default=_json_default)
    return text.encode("utf-8")


def _zip_info(name):
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _write_npy(zf, name, array):
    """Write one array as ``name`` (an ``.npy`` member)."""
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise TypeError(f"cannot save {name}: object arrays are not allowed in fastnn files")
    with zf.open(_zip_info(name), "w", force_zip64=array.nbytes > (1 << 30)) as out:
        np.lib.format.write_array(out, array, allow_pickle=False)


def metadata(kind, weights):
    """The ``metadata.json`` document for ``weights`` (a list of ``Weight``)."""
    return {"format": kind, "format_version": FORMAT_VERSION, "fastnn_version": __version__,
            "numpy_version": np.__version__,
            "weights": [{"name": w.name, "shape": list(w.shape), "dtype": w.dtype.name} for w in weights]}


def write_archive(path, documents, arrays, overwrite=True):
    """Atomically write a zip of JSON ``documents`` ({name: obj}) and ``arrays`` ([(name, array)]).

    The file appears at ``path`` complete or not at all. ``overwrite=False`` raises
    ``FileExistsError`` if ``path`` exists (Keras 3 asks on the terminal instead).
    """
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it.")
    # Serialize the JSON first: a config that cannot be saved fails before any file is created.
    encoded = {name: _json_bytes(doc) for name, doc in documents.items()}
    directory = check_directory(path)
    _remove_stale_temps(directory, os.path.basename(path))
    existed = os.path.lexists(path)
    try:
        tmp, fd = _create_temp(directory, os.path.basename(path))
    except OSError as exc:
        raise _save_error(path, exc, existed) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", allowZip64=True) as zf:
                for name, data in encoded.items():
                    zf.writestr(_zip_info(name), data)
                for name, array in arrays:
                    _write_npy(zf, name, array)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path, overwrite)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            raise _save_error(path, exc, existed) from exc
        raise
    _fsync_directory(directory)


def check_directory(path):
    """The directory ``path`` goes in, made absolute; raise if it is missing, saying what is there instead
    (a regular file where a directory should be is not "a directory that does not exist")."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(directory):
        return directory
    ancestor = directory
    while not os.path.lexists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
    if os.path.lexists(ancestor) and not os.path.isdir(ancestor):
        raise NotADirectoryError(f"Cannot save to {path!r}: {ancestor!r} is a file, not a directory, so the "
                                 "file cannot be created under it. Choose another path, or move that file.")
    raise FileNotFoundError(f"Cannot save to {path!r}: the directory {directory!r} does not exist.")


def _save_error(path, exc, existed):
    """The OSError of a failed save, naming the target (not the temporary file the OS names) and what became
    of the file already there: the write goes to a temporary file that replaces the target only once
    complete, so the old file is always intact."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        what = "the disk is full"
    elif exc.errno == errno.ENAMETOOLONG:
        what = "the file name is too long for the file system"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        what = f"the directory {os.path.dirname(os.path.abspath(path))!r} is not writable"
    else:
        what = "writing it failed"
    kept = ("The previous file at that path is intact (it is replaced only by a complete new file)."
            if existed else "No file was created.")
    message = f"Cannot save to {path!r}: {what} ({reason}). {kept}"
    return OSError(exc.errno, message) if exc.errno is not None else type(exc)(message)


def _host():
    """This machine's name as it goes into temporary file names (no dots or separators)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname() or "host")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # it exists (another user's), or we cannot tell: keep its file
        return True
    return True


def _remove_stale_temps(directory, base):
    """Delete ``.<base>.<host>.<pid>.<random>.tmp`` files that a save on this host left when it was killed:
    only when no process has that pid any more (a live one may be saving right now). Files of other hosts, and
    names of any other form, are left alone."""
    prefix, host = f".{_temp_stem(base)}.", _host()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix):-len(".tmp")].split(".")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit() or int(parts[1]) == os.getpid():
            continue
        if not _pid_alive(int(parts[1])):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _temp_stem(base):
    """``base`` as it goes into temporary names: shortened (with a hash, so it stays unique) when the
    temporary name would pass the usual 255-byte limit of a file name while the target's name does not."""
    if len(base.encode("utf-8", "surrogateescape")) <= 120:
        return base
    digest = hashlib.sha1(base.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return base[:60] + "~" + digest


def _create_temp(directory, base):
    """A new file ``.<base>.<host>.<pid>.<random>.tmp`` in ``directory``; os.open applies the umask as for any
    file."""
    while True:
        tmp = os.path.join(directory, f".{_temp_stem(base)}.{_host()}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue


def _publish(tmp, path, overwrite):
    if overwrite:
        os.replace(tmp, path)
        return
    # A hard link fails if `path` appeared meanwhile, so another writer's file is never clobbered.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it.") from None
    except OSError:  # file system without hard links
        if os.path.lexists(path):
            raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it.") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _fsync_directory(directory):
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    try:
        fd = os.open(directory, os.O_RDONLY | flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- reading
class Archive:
    """A validated, open fastnn archive. Use as a context manager.

    Opening checks: the file exists and is a zip (not HDF5, not a Keras archive), the
    zip is intact (``testzip``: every member's CRC), member names are fastnn's and not
    repeated, the required members are present, and ``metadata.json`` names a format
    and version this fastnn reads. ``fail(...)`` raises a ``ValueError`` naming the file.
    """

    def __init__(self, filepath, owner="load_model"):
        self.path = _as_path(filepath, owner)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"File not found: filepath={self.path!r}.")
        if os.path.isdir(self.path):
            self.fail("it is a directory (TensorFlow SavedModel directories are not supported); expected a "
                      "file written by fastnn's `model.save` or `save_weights`")
        with open(self.path, "rb") as handle:
            head = handle.read(8)
        if not head:
            self.fail("the file is empty")
        if head.startswith(_HDF5_MAGIC):
            self.fail("it is an HDF5 file, written by Keras (or h5py), not by fastnn. fastnn reads only the "
                      "files it writes itself (its own zip format, even when named `.keras`, `.h5` or "
                      "`.weights.h5`); rebuild the model in fastnn and train it, or copy the weights over "
                      "with `set_weights`")
        if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            self.fail("it is not a fastnn file (not a zip archive)")
        try:
            self._zf = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            self.fail(f"the zip archive is truncated or corrupt ({exc})")
        try:
            self._check_structure()
        except BaseException:
            self._zf.close()
            raise

    def fail(self, what):
        raise ValueError(f"Cannot load {self.path!r}: {what.rstrip('.')}.")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if getattr(self, "_zf", None) is not None:
            self._zf.close()
            self._zf = None

    def _check_structure(self):
        infos = self._zf.infolist()
        names = [info.filename for info in infos]
        if "model.weights.h5" in names or "model.weights.npz" in names:
            self.fail("it is a Keras 3 `.keras` archive, written by Keras, not by fastnn. fastnn reads only the "
                      "files it writes itself (its own zip format, even when named `.keras`); rebuild the model "
                      "in fastnn, or copy the weights over with `set_weights`")
        if METADATA not in names:
            self.fail(f"it is not a fastnn file: the zip has no `{METADATA}` (members: {_list(names)})")
        if len(set(names)) != len(names):
            self.fail("the zip archive is corrupt: it repeats member names")
        unexpected = [n for n in names if not _MEMBER_PATTERN.fullmatch(n)]
        if unexpected:
            self.fail(f"it holds members a fastnn file never has: {_list(unexpected)}")
        if any(info.flag_bits & 0x1 for info in infos):
            self.fail("it holds encrypted members")
        try:
            bad = self._zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            self.fail(f"the zip archive is truncated or corrupt ({exc})")
        if bad is not None:
            self.fail(f"the zip archive is corrupt: member `{bad}` fails its CRC check")
        self.names = set(names)
        meta = self.read_json(METADATA)
        if not isinstance(meta, dict):
            self.fail(f"`{METADATA}` is not a JSON object")
        kind = meta.get("format")
        if kind not in REQUIRED_MEMBERS:
            self.fail(f"it is not a fastnn file: `{METADATA}` gives format {kind!r}; expected "
                      f"{MODEL_FORMAT!r} or {WEIGHTS_FORMAT!r}")
        version = meta.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int):
            self.fail(f"`{METADATA}` has no valid `format_version` (received {version!r})")
        if version > FORMAT_VERSION:
            self.fail(f"it was written by a newer fastnn ({meta.get('fastnn_version')!r}, format version "
                      f"{version}); this fastnn ({__version__}) reads format version {FORMAT_VERSION}. "
                      "Upgrade fastnn")
        if version < 1:
            self.fail(f"`{METADATA}` gives an invalid format version {version!r}")
        missing = [m for m in REQUIRED_MEMBERS[kind] if m not in self.names]
        if missing:
            self.fail(f"required member(s) {_list(missing)} are missing")
        self.kind = kind
        self.metadata = meta
        self.manifest = self._check_manifest(meta.get("weights"))

    def _check_manifest(self, manifest):
        ok = isinstance(manifest, list) and all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("dtype"), str)
            and isinstance(e.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in e["shape"])
            for e in manifest)
        if not ok:
            self.fail(f"`{METADATA}` has no valid `weights` list")
        stored = sorted(n for n in self.names if n.startswith("weights/"))
        expected = [weight_member(i) for i in range(len(manifest))]
        if stored != expected:
            self.fail(f"`{METADATA}` lists {len(manifest)} weight arrays but the archive holds "
                      f"{_list(stored) if stored else 'none'}")
        return [(e["name"], tuple(e["shape"]), e["dtype"]) for e in manifest]

    # -------------------------------------------------------------- members
    def read_json(self, name):
        info = self._info(name)
        if info.file_size > _MAX_JSON_BYTES:
            self.fail(f"`{name}` is {info.file_size} bytes, too large for a fastnn JSON member")
        try:
            data = self._zf.read(name)
            return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            self.fail(f"the zip archive is corrupt: `{name}` cannot be read ({exc})")
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            self.fail(f"`{name}` is not valid JSON ({exc})")

    def read_array(self, name, shape, dtype, what=None):
        """The array stored as ``name``, which must have exactly ``shape`` and ``dtype``.

        The ``.npy`` header is parsed (literals only) and checked before any data is read;
        object arrays, which only pickle can restore, are refused.
        """
        what = f"`{name}`" + (f" ({what})" if what else "")
        info = self._info(name)
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if info.file_size > nbytes + _MAX_NPY_HEADER:
            self.fail(f"{what} is {info.file_size} bytes, larger than an array of shape {shape_str(shape)} "
                      f"and dtype {dtype.name}")
        try:
            with self._zf.open(info) as handle:
                stored_shape, fortran, stored_dtype = _read_npy_header(handle)
                if stored_dtype.hasobject:
                    self.fail(f"{what} holds a Python object array (dtype {stored_dtype}); fastnn files hold "
                              "only numeric arrays and never unpickle data")
                if stored_shape != tuple(shape) or stored_dtype != dtype:
                    self.fail(f"{what} has shape {shape_str(stored_shape)} and dtype {stored_dtype}; the "
                              f"model expects shape {shape_str(shape)} and dtype {dtype.name}")
                data = handle.read(nbytes + 1)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            self.fail(f"the zip archive is corrupt: {what} cannot be read ({exc})")
        except _NpyError as exc:
            self.fail(f"{what} is not a valid .npy array ({exc})")
        if len(data) != nbytes:
            self.fail(f"{what} is truncated or corrupt: it holds {len(data)} data bytes; shape "
                      f"{shape_str(shape)} and dtype {dtype.name} need {nbytes}")
        order = "F" if fortran else "C"
        return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order="C")

    def has(self, name):
        return name in self.names

    def _info(self, name):
        if name not in self.names:
            self.fail(f"required member `{name}` is missing")
        return self._zf.getinfo(name)


class _NpyError(Exception):
    pass


def _read_npy_header(handle):
    """(shape, fortran_order, dtype) of an ``.npy`` stream, leaving it at the data."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise _NpyError(f"unsupported .npy format version {version}")
    except (ValueError, TypeError, SyntaxError, EOFError) as exc:
        raise _NpyError(str(exc)) from None
    return tuple(int(d) for d in shape), bool(fortran), np.dtype(dtype)


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def _list(names, limit=8):
    names = sorted(names)
    text = ", ".join(f"`{n}`" for n in names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")

