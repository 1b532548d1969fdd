"""Finding, downloading and reading data set files (shared by the loaders).

Lookup order for every data set (first hit wins):

1. an explicit ``path`` argument (a file, or a folder holding the files);
2. the folder named by ``$FASTNN_DATA_DIR``;
3. Keras' cache, ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``;
4. fastnn's cache, ``$FASTNN_HOME/datasets`` or ``~/.fastnn/datasets``;
5. loader-specific system folders (Debian's ``/usr/share/datasets/fashion-mnist``).

Each folder is searched in its subfolder named after the data set (``mnist/``)
and then directly. If nothing is found, the files are downloaded from the URLs
Keras uses into fastnn's cache and checked against Keras' sha256 hashes. Files
found locally are *not* hash-checked: re-gzipped copies (Debian's, the shared
test copies) are byte-different but hold the same data, so instead every file
is parsed strictly (IDX magic numbers and sizes, npz member names).

The heavy standard-library modules (urllib, gzip, zipfile, pickle, ...) are
imported inside the functions that need them, so ``import fastnn.datasets``
stays cheap (docs/keras_semantics.md#import-time).
"""
import contextlib
import os
import sys
from pathlib import Path

import numpy as np

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DATA_DIR_ENV = "FASTNN_DATA_DIR"
# Seconds without progress on connect or read before a download is abandoned;
# short, so that an offline machine fails fast with the "where to put the files"
# message instead of hanging.
DOWNLOAD_TIMEOUT = 15.0

# Base names of the four IDX files of MNIST and Fashion-MNIST, by role.
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # uint8 data (type code 0x08), ndim 3 / 1


class DatasetNotFoundError(FileNotFoundError):
    """The data files are nowhere to be found and could not be downloaded."""


class DatasetFormatError(ValueError):
    """A data file is corrupt, truncated, or not what its name says."""


# --------------------------------------------------------------------------- folders
def keras_cache_dir():
    """Keras' download cache: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def fastnn_cache_dir():
    """fastnn's download cache: ``$FASTNN_HOME/datasets``, else ``~/.fastnn/datasets``."""
    home = os.environ.get("FASTNN_HOME") or os.path.join(os.path.expanduser("~"), ".fastnn")
    return Path(home) / "datasets"


def search_folders(extra_dirs=()):
    """The folders to search, in order, as ``(folder or None, label)`` pairs.

    ``folder`` is None when ``$FASTNN_DATA_DIR`` is unset; it is still listed so
    the not-found message can say so.
    """
    env = os.environ.get(DATA_DIR_ENV)
    folders = [(Path(env).expanduser() if env else None, f"${DATA_DIR_ENV}")]
    folders.append((keras_cache_dir(), "Keras' cache"))
    folders.append((fastnn_cache_dir(), "fastnn's cache"))
    folders.extend((Path(d), "system folder") for d in extra_dirs)
    return folders


def is_explicit(path):
    """True if ``path`` names a location, False if it is a bare file name.

    Like Keras, a bare name such as the default ``"mnist.npz"`` is a file name
    to look for in the search folders; anything with a directory part (or
    ``~``, ``.``, ``..``) is a location the user chose.
    """
    path = os.fspath(path)
    return bool(os.path.dirname(path)) or path in (".", "..") or path.startswith("~")


def find_file(folder, name):
    """``folder/name`` if it is a file, else None."""
    candidate = Path(folder) / name
    return candidate if candidate.is_file() else None


def find_idx_set(folder):
    """The four IDX files in ``folder`` (each gzipped or not), or None if any is missing."""
    found = {}
    for role, base in IDX_NAMES.items():
        hit = find_file(folder, base + ".gz") or find_file(folder, base)
        if hit is None:
            return None
        found[role] = hit
    return found


def locate(probe, subdir, extra_dirs=()):
    """Run ``probe(folder)`` on each search folder's ``subdir`` and then on the folder.

    Returns ``(hit, searched)``: the first non-None probe result (or None) and a
    list of human-readable lines naming every folder that was looked in.
    """
    searched = []
    for folder, label in search_folders(extra_dirs):
        if folder is None:
            searched.append(f"{label}: not set")
            continue
        note = "" if folder.is_dir() else ", does not exist"
        searched.append(f"{folder} and {folder / subdir} ({label}{note})")
        for candidate in (folder / subdir, folder):
            hit = probe(candidate) if candidate.is_dir() else None
            if hit is not None:
                return hit, searched
    return None, searched


def locate_explicit(title, path, probe, subdir, wanted):
    """Resolve a user-given ``path``: an existing file, or a folder ``probe`` finds files in."""
    path = Path(os.fspath(path)).expanduser()
    if path.is_file():
        return ("file", path)
    if path.is_dir():
        for candidate in (path / subdir, path):
            hit = probe(candidate) if candidate.is_dir() else None
            if hit is not None:
                return hit
        raise DatasetNotFoundError(
            f"{title}: argument `path` is the folder {path}, but it holds no {title} files. "
            f"Looked for {wanted} in {path / subdir} and in {path}."
        )
    raise DatasetNotFoundError(
        f"{title}: argument `path` is {str(path)!r}, which does not exist. Pass an existing file or "
        f"a folder holding {wanted}, or leave `path` at its default to search ${DATA_DIR_ENV}, "
        "Keras' and fastnn's caches (and download if needed)."
    )


def not_found_error(title, wanted, searched, subdir, download_error, hint=""):
    """The error raised when nothing was found and the download failed."""
    lines = [
        f"{title}: could not find the data files, and downloading them failed.",
        f"Looked for {wanted} in:",
    ]
    lines += [f"  {i}. {entry}" for i, entry in enumerate(searched, 1)]
    lines.append(f"Download failed: {download_error}")
    lines.append(
        "To fix this, put the files into one of these folders, e.g. "
        f"`export {DATA_DIR_ENV}=/path/to/datasets` with the files in /path/to/datasets/{subdir}/, "
        "or pass `path=` to load_data(); "
        "or connect to the internet and call load_data() again to download them."
    )
    if hint:
        lines.append(hint)
    return DatasetNotFoundError("\n".join(lines))


def obtain(title, path, probe, subdir, wanted, downloads, download_subdir="", extra_dirs=(), hint=""):
    """Find a data set's files, or download them; return what ``probe`` returns.

    ``probe(folder)`` looks for the files in one folder and returns a handle
    (e.g. ``("file", Path)`` or ``("idx", {...})``) or None. ``path`` is the
    user's argument: a location (see :func:`is_explicit`) is used alone, a bare
    file name is what ``probe`` looks for in the search folders. ``downloads``
    lists ``(remote name, local name, sha256)`` triples: ``ORIGIN + remote
    name`` is saved as ``fastnn_cache_dir() / download_subdir / local name``
    when nothing is found (files already there are kept).
    """
    if path is not None and is_explicit(path):
        return locate_explicit(title, path, probe, subdir, wanted)
    hit, searched = locate(probe, subdir, extra_dirs)
    if hit is not None:
        return hit
    target = fastnn_cache_dir() / download_subdir
    try:
        for remote, local, sha256 in downloads:
            url, dest = ORIGIN + remote, target / local
            if not dest.is_file():
                download(url, dest, sha256)
    except download_errors() as e:
        raise not_found_error(title, wanted, searched, subdir, f"{url} -> {dest}: {e}", hint) from e
    hit = probe(target)
    if hit is None:  # pragma: no cover - the download wrote exactly what probe looks for
        raise DatasetNotFoundError(f"{title}: downloaded into {target}, but cannot find the files there.")
    return hit


# --------------------------------------------------------------------------- download
def fetch(url, out, timeout):
    """Copy the body of ``url`` into the binary file ``out``.

    The only function in fastnn that touches the network; tests replace it.
    """
    import shutil
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "fastnn"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        shutil.copyfileobj(response, out, 1 << 20)


def file_sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url, dest, sha256, timeout=None):
    """Download ``url`` to ``dest`` atomically, verifying its sha256; return ``dest``.

    The body goes to a temporary file next to ``dest`` that is renamed over it
    (``os.replace``) only once the hash matches, so an interrupted or corrupted
    transfer never leaves a file that a later call would trust. A mismatching
    file is deleted and :class:`DatasetFormatError` is raised. Network errors
    propagate as ``OSError`` (or ``http.client.HTTPException``).
    """
    import tempfile

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        print(f"Downloading data from {url}", file=sys.stderr)
        with os.fdopen(fd, "wb") as out:
            fetch(url, out, DOWNLOAD_TIMEOUT if timeout is None else timeout)
        actual = file_sha256(tmp)
        if actual != sha256:
            raise DatasetFormatError(
                f"The file downloaded from {url} is corrupt or has changed: its sha256 is {actual}, "
                f"expected {sha256}. It was deleted; try again, or download it by hand and put it "
                f"at {dest}."
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return dest


def download_errors():
    """The exception types that mean "the download did not work" (offline, HTTP error, disk)."""
    import http.client

    return (OSError, http.client.HTTPException)


# --------------------------------------------------------------------------- readers
def _open_maybe_gzip(path):
    import gzip

    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    f.seek(0)
    return f, f


def read_idx(path, ndim):
    """Read an IDX file of uint8 data with ``ndim`` dimensions (gzipped or not).

    Format (yann.lecun.com/exdb/mnist): a big-endian int32 magic number
    ``0x000008NN`` (two zero bytes, type code 0x08 = uint8, NN = ndim), then
    ``ndim`` big-endian int32 sizes, then the data in C order.
    """
    import gzip
    import zlib

    path = Path(path)
    try:
        stream, raw = _open_maybe_gzip(path)
        with raw, stream:
            header = stream.read(4)
            magic = int.from_bytes(header, "big") if len(header) == 4 else None
            if magic != _IDX_MAGIC[ndim]:
                found = "a file shorter than 4 bytes" if magic is None else f"magic number {magic:#010x}"
                raise DatasetFormatError(
                    f"{path} is not a {ndim}-D uint8 IDX file: expected magic number "
                    f"{_IDX_MAGIC[ndim]:#010x}, found {found}."
                )
            dims_raw = stream.read(4 * ndim)
            if len(dims_raw) != 4 * ndim:
                raise DatasetFormatError(f"{path} is truncated: its IDX header ends early.")
            dims = tuple(int.from_bytes(dims_raw[4 * i: 4 * i + 4], "big") for i in range(ndim))
            data = np.empty(dims, dtype=np.uint8)
            view = memoryview(data.reshape(-1))
            got = 0
            while got < data.size:
                n = stream.readinto(view[got:])
                if not n:
                    break
                got += n
            if got != data.size:
                raise DatasetFormatError(
                    f"{path} is truncated: its header announces {' x '.join(map(str, dims))} = "
                    f"{data.size} bytes of data, but only {got} follow."
                )
            # Reading one byte more also makes gzip check the CRC of the whole member.
            if stream.read(1):
                raise DatasetFormatError(
                    f"{path} is corrupt: it holds more data than its header announces "
                    f"({' x '.join(map(str, dims))})."
                )
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DatasetFormatError(f"{path} is corrupt or truncated (gzip: {e}).") from e
    return data


def read_idx_splits(files, image_shape=(28, 28), num_classes=10):
    """``(x_train, y_train), (x_test, y_test)`` from the four IDX files of :func:`find_idx_set`."""
    out = {}
    for split in ("train", "test"):
        images_path, labels_path = files[f"{split}_images"], files[f"{split}_labels"]
        x = read_idx(images_path, 3)
        y = read_idx(labels_path, 1)
        if x.shape[1:] != tuple(image_shape):
            raise DatasetFormatError(
                f"{images_path} holds images of {x.shape[1]} x {x.shape[2]} pixels; expected "
                f"{image_shape[0]} x {image_shape[1]}."
            )
        if len(x) != len(y):
            raise DatasetFormatError(
                f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels."
            )
        if y.size and int(y.max()) >= num_classes:
            raise DatasetFormatError(
                f"{labels_path} holds the label {int(y.max())}; expected labels 0 to {num_classes - 1}."
            )
        out[split] = (x, y)
    return out["train"], out["test"]


def _safe_globals():
    # The only globals a pickled NumPy object array of lists of ints refers to.
    # np.load(allow_pickle=True) would run any callable a (planted) file names;
    # this allow-list makes loading a third-party imdb.npz safe.
    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.int64(0).__reduce__()[0]
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    return allowed


def _unpickle_object_array(path, member, body):
    import io
    import pickle

    allowed = _safe_globals()

    class _Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            try:
                return allowed[(module, name)]
            except KeyError:
                raise DatasetFormatError(
                    f"{path}: member {member} refers to {module}.{name}; fastnn only unpickles NumPy "
                    "arrays of plain Python lists and numbers, so it refuses to load this file."
                ) from None

    # The buffered reader gives the C unpickler a `peek`, so it parses from
    # memory instead of calling read() per opcode (3x faster on imdb.npz).
    # latin1: what NumPy uses for pickles written by Python 2 (numpy.load docs).
    stream = io.BufferedReader(io.BytesIO(body), 1 << 20)
    try:
        return _Unpickler(stream, encoding="latin1").load()
    except DatasetFormatError:
        raise
    except Exception as e:  # noqa: BLE001 - corrupt pickles raise anything (AttributeError, KeyError, ...)
        raise DatasetFormatError(f"{path}: member {member} is corrupt ({type(e).__name__}: {e}).") from e


def _read_header(raw):
    """(stream at the data, shape, dtype) of a .npy member; None for format versions 3+."""
    import io

    fmt = np.lib.format
    fp = io.BytesIO(raw)
    version = fmt.read_magic(fp)
    if version not in ((1, 0), (2, 0)):
        return None
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read_header(fp)
    return fp, tuple(shape), dtype


def _read_npy(path, member, raw, allow_objects):
    import io

    header = _read_header(raw)
    if header is not None and header[2].hasobject:
        fp, shape, _ = header
        if not allow_objects:
            raise DatasetFormatError(f"{path}: member {member} holds Python objects; expected numbers.")
        array = _unpickle_object_array(path, member, memoryview(raw)[fp.tell():])
        if not isinstance(array, np.ndarray) or array.shape != shape:
            raise DatasetFormatError(f"{path}: member {member} does not match its .npy header.")
        return array
    return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)


def _read_int_lists(path, member, raw):
    """A 1-D object array of lists of ints as ``(lengths (S,) int64, tokens (T,) int32 or int64)``.

    np.save pickles such an array (protocol 3; 2 from Python 2). The fast path reads the
    pickle's data list with the ``unpickle_int_lists`` kernel: no Python int per token (issue 3:
    unpickling imdb.npz's 12M tokens made ~400 MB at the peak) and nothing from the file is run.
    Any other layout goes through the allow-listed unpickler, with the same result.
    """
    header = _read_header(raw)
    if header is None or not header[2].hasobject or len(header[1]) != 1:
        found = ("a .npy format version other than 1.0 and 2.0" if header is None
                 else f"an array of shape {header[1]} and dtype {header[2]}")
        raise DatasetFormatError(
            f"{path}: member {member} must be a 1-D object array of sequences; found {found}."
        )
    fp, (n,), _ = header
    parsed = _int_lists_without_unpickling(path, member, raw, fp.tell(), n)
    if parsed is not None:
        return parsed
    import itertools
    import operator

    array = _unpickle_object_array(path, member, memoryview(raw)[fp.tell():])
    if not isinstance(array, np.ndarray) or array.shape != (n,):
        raise DatasetFormatError(f"{path}: member {member} does not match its .npy header.")
    try:
        lengths = np.fromiter(map(len, array), dtype=np.int64, count=n)
        tokens = np.fromiter(map(operator.index, itertools.chain.from_iterable(array)), dtype=np.int64,
                             count=int(lengths.sum()))
    except (TypeError, ValueError, OverflowError) as e:
        raise DatasetFormatError(f"{path}: member {member} holds sequences that are not lists of integers "
                                 f"({e}).") from e
    return lengths, tokens


def _int_lists_without_unpickling(path, member, raw, body, n):
    """The fast path of :func:`_read_int_lists`; None if the pickle at ``raw[body:]`` is laid out otherwise.

    An object array pickles as ``_reconstruct(ndarray, ...)`` and a BUILD with the state
    ``(version, shape, dtype, is_fortran, data list)``; the data list is the first EMPTY_LIST.
    The kernel reads that list. The rest of the pickle, with the list replaced by n Nones, goes
    through the allow-listed unpickler, which must return an object array of exactly those
    Nones: so the header is checked as before, and the list read is the array's data.
    """
    from fastnn import _kernels as K

    if raw[body:body + 1] != b"\x80" or raw[body + 1:body + 2] not in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return None  # PROTO 2-5: np.save writes 3 or 4 (NumPy 2.x), NumPy under Python 2 wrote 2
    try:
        head, start = _opcodes_without_frames(raw, body, stop_at="]")
        if start is None:
            return None
        lengths, tokens, end = K.unpickle_int_lists(raw, start)
        if lengths.shape[0] != n:
            return None
        tail, _ = _opcodes_without_frames(raw, end, stop_at=None)
    except ValueError:  # bytes that genops or the kernel cannot read
        return None
    if tail is None:
        return None
    stand_in = head + b"](" + b"N" * n + b"e" + tail
    try:
        array = _unpickle_object_array(path, member, stand_in)
    except Exception:  # noqa: BLE001 - the general unpickler, run next, reports it (or succeeds)
        return None
    if not (isinstance(array, np.ndarray) and array.dtype == object and array.shape == (n,)
            and array.tolist().count(None) == n):
        return None
    return lengths, tokens


def _opcodes_without_frames(raw, first, stop_at):
    """The pickle opcodes from ``raw[first]`` up to the first ``stop_at`` opcode, or through STOP.

    Returns ``(opcodes, offset of stop_at or None)``. The opcodes are returned as bytes without
    their FRAMEs: those only tell the unpickler how far to read ahead (PEP 3154), and cannot stay
    in a pickle whose data list was left out. Through STOP (the part after the data list), the
    bytes are None if a memo GET occurs: it could refer to the memo entries left out with the list.
    Decoding opcodes with pickletools runs nothing; it raises ValueError for malformed bytes.
    """
    import io
    import pickletools

    stream = io.BytesIO(raw)
    stream.seek(first)
    pieces, keep = [], first
    for opcode, _, pos in pickletools.genops(stream):
        if opcode.code == stop_at:
            return b"".join(pieces) + raw[keep:pos], pos
        if opcode.name == "FRAME":
            pieces.append(raw[keep:pos])
            keep = stream.tell()
        elif stop_at is None and opcode.name.endswith("GET"):
            return None, None
    return b"".join(pieces) + raw[keep:stream.tell()], None


def read_npz(path, keys, allow_objects=False, int_lists=()):
    """Read the arrays ``keys`` from the ``.npz`` file ``path`` into a dict.

    Each member is read whole and then parsed: ``np.load`` unpickles object
    arrays straight from the zip stream, which takes ~3 s for imdb.npz against
    ~0.5 s this way. Object arrays go through an allow-listed unpickler. The
    members named in ``int_lists`` must be 1-D object arrays of lists of ints;
    they come back as ``(lengths, tokens)`` pairs (:func:`_read_int_lists`).
    """
    import pickle
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [k for k in keys if f"{k}.npy" not in names]
            if missing:
                have = sorted(n[:-4] for n in names if n.endswith(".npy"))
                raise DatasetFormatError(
                    f"{path} lacks the arrays {missing}; it holds {have}, expected {list(keys)}."
                )
            out = {}
            for k in keys:
                member, raw = f"{k}.npy", archive.read(f"{k}.npy")
                out[k] = (_read_int_lists(path, member, raw) if k in int_lists
                          else _read_npy(path, member, raw, allow_objects))
            return out
    except zipfile.BadZipFile as e:
        raise DatasetFormatError(f"{path} is not a valid .npz file ({e}).") from e
    except (ValueError, EOFError, pickle.UnpicklingError) as e:
        if isinstance(e, DatasetFormatError):
            raise
        raise DatasetFormatError(f"{path} is corrupt ({type(e).__name__}: {e}).") from e


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while building many containers.

    Building IMDB's 50k lists of 12M ints triggers repeated full collections
    that walk every list item (CPython's allocation-count thresholds), roughly
    doubling the load time; nothing built here can form a reference cycle.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
