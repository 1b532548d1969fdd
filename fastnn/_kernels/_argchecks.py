"""Argument checks and message builders shared by compiled kernels and their NumPy twins.

A compiled kernel and its twin in ``_reference`` must reject the same arguments with the
same messages. Rather than one importing the other (a compiled module would then depend
on the oracle it is tested against), both import the checks from here. Pure Python and
NumPy only: this module imports nothing else from fastnn.
"""
import numpy as np


def describe(value):
    """A bad argument as the messages show it: its repr, cut at 60 characters, and its type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} (of type {type(value).__name__})"


# --------------------------------------------------------------------------- random (uniforms)
def check_random_f32(generator, out):
    """generator_random_f32's argument checks."""
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator_random_f32: argument `generator` must be a numpy.random.Generator; "
                        f"received {describe(generator)}.")
    if not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.c_contiguous
            and out.flags.writeable):
        raise TypeError(f"generator_random_f32: argument `out` must be a writeable C-contiguous float32 "
                        f"array; received {describe(out)}.")


# --------------------------------------------------------------------------- arrays
def describe_array(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return describe(value)


# --------------------------------------------------------------------------- multi-hot CSR
def check_multi_hot_args(lengths, tokens, num_tokens):
    owner = "multi_hot_csr"
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) or not (
            0 < num_tokens <= np.iinfo(np.int32).max):
        raise ValueError(f"{owner}: argument `num_tokens` must be an integer in [1, 2**31 - 1]; "
                         f"received {num_tokens!r}.")
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError(f"{owner}: argument `lengths` must be a 1-D integer array (S,); received an array "
                         f"of shape {lengths.shape} and dtype {lengths.dtype}.")
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise ValueError(f"{owner}: argument `tokens` must be a 1-D integer array (T,); received an array "
                         f"of shape {tokens.shape} and dtype {tokens.dtype}.")
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"{owner}: argument `lengths` must be >= 0; sequence {int(np.argmin(lengths))} "
                         f"has length {lengths.min()}.")
    if int(lengths.sum(dtype=np.int64)) != tokens.shape[0]:
        raise ValueError(f"{owner}: the sum of `lengths` ({int(lengths.sum(dtype=np.int64))}) must equal the "
                         f"number of tokens ({tokens.shape[0]}).")


def token_range_error(seq, value, num_tokens):
    return ValueError(f"multi_hot_csr: sequence {seq} contains the token id {value}, outside [0, {num_tokens}) "
                      f"for num_tokens={num_tokens}.")


# --------------------------------------------------------------------------- flatten_sequences
# The compiled kernel reads lists of exact Python ints itself and sends everything else
# (NumPy scalars, whole floats, arrays, other iterables) through these.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
NESTED_HINT = "expected a list of sequences of integer token ids, as imdb.load_data returns"


def sequence_list(owner, sequences):
    """The sequences as a list (ValueError/TypeError for things that are not a collection of them)."""
    if isinstance(sequences, np.ndarray):  # object array
        if sequences.ndim != 1:
            raise ValueError(f"{owner}: argument `sequences` must be a 1-D object array of sequences; received "
                             f"an object array of shape {sequences.shape}.")
        return list(sequences)
    if isinstance(sequences, (list, tuple)):
        return sequences
    if isinstance(sequences, (str, bytes, dict)) or not hasattr(sequences, "__iter__"):
        raise TypeError(f"{owner}: argument `sequences` must be a list of sequences of token ids or a 2-D "
                        f"integer array; received {describe(sequences)}.")
    return list(sequences)


def sequence_tokens(owner, seq, s):
    """Sequence ``s`` as a 1-D int64 array."""
    if type(seq) is list or type(seq) is tuple:
        if all(type(v) is int for v in seq):
            try:
                return np.fromiter(seq, dtype=np.int64, count=len(seq))
            except OverflowError:
                pass  # token_id names the value
        return np.array([token_id(owner, v, s) for v in seq], dtype=np.int64)
    if isinstance(seq, np.ndarray):
        if seq.ndim != 1:
            if seq.ndim == 0:
                raise TypeError(f"{owner}: sequence {s} is the scalar {describe(seq)}, not a sequence of token "
                                f"ids; {NESTED_HINT}.")
            raise ValueError(f"{owner}: sequence {s} is nested more than one level deep (an array of shape "
                             f"{seq.shape}); {NESTED_HINT}.")
        if seq.dtype == object:
            return np.array([token_id(owner, v, s) for v in seq], dtype=np.int64)
        return array_tokens(owner, seq, s)
    if isinstance(seq, (str, bytes, dict)) or not hasattr(seq, "__iter__"):
        raise TypeError(f"{owner}: sequence {s} is {describe(seq)}, not a sequence of token ids; {NESTED_HINT}.")
    return sequence_tokens(owner, list(seq), s)


def token_id(owner, v, s):
    """int(v) for a token id of sequence ``s``; TypeError/ValueError naming the sequence otherwise."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{owner}: sequence {s} contains the boolean {v!r}; token ids must be integers.")
    if isinstance(v, (int, np.integer)):
        v = int(v)
    elif isinstance(v, (float, np.floating)):
        if not (np.isfinite(v) and float(v).is_integer()):
            raise ValueError(f"{owner}: sequence {s} contains the non-integer value {float(v)!r}; token ids must "
                             "be integers.")
        v = int(v)
    elif isinstance(v, (list, tuple, np.ndarray)):
        raise ValueError(f"{owner}: sequence {s} is nested more than one level deep (it contains "
                         f"{describe(v)}); {NESTED_HINT}.")
    else:
        raise TypeError(f"{owner}: sequence {s} contains {describe(v)}; token ids must be integers.")
    if not INT64_MIN <= v <= INT64_MAX:
        raise ValueError(f"{owner}: sequence {s} contains the token id {v}, which does not fit in int64.")
    return v


def array_tokens(owner, arr, first):
    """A numeric array of token ids (1-D: sequence ``first``; 2-D: rows first, first+1, ...) as int64."""
    kind = arr.dtype.kind
    where = f"sequence {first}" if arr.ndim == 1 else "argument `sequences`"
    if kind == "b":
        raise TypeError(f"{owner}: {where} is a boolean array; token ids must be integers.")
    if kind not in "iuf":
        raise TypeError(f"{owner}: {where} must hold integer token ids; received an array of dtype {arr.dtype}.")
    if kind == "f" or (kind == "u" and arr.dtype.itemsize == 8):
        with np.errstate(invalid="ignore"):
            ok = (arr >= INT64_MIN) & (arr < 2.0**63 if kind == "f" else arr <= INT64_MAX)
            if kind == "f":
                ok &= np.isfinite(arr) & (arr == np.floor(arr))
        if not ok.all():
            flat = int(np.argmin(ok.reshape(-1)))
            s = first + (flat // arr.shape[1] if arr.ndim == 2 else 0)
            v = arr.reshape(-1)[flat].item()
            if kind == "f" and not (np.isfinite(v) and float(v).is_integer()):
                raise ValueError(f"{owner}: sequence {s} contains the non-integer value {v!r}; token ids must be "
                                 "integers.")
            raise ValueError(f"{owner}: sequence {s} contains the token id {v}, which does not fit in int64.")
    return arr.astype(np.int64)


def flatten_array(owner, arr):
    if arr.ndim != 2:
        hint = ("a 1-D array is one sequence: pass [seq], or a 2-D array (S, L)" if arr.ndim == 1
                else "nesting deeper than one level is not supported")
        raise ValueError(f"{owner}: argument `sequences` must be a 2-D array (S, L) of token ids or a list of "
                         f"sequences; received an array of shape {arr.shape} ({hint}).")
    tokens = array_tokens(owner, arr, 0).reshape(-1)
    return np.full(arr.shape[0], arr.shape[1], dtype=np.int64), tokens


# --------------------------------------------------------------------------- pickled int lists (IMDB)
# Error codes: unpickle.pyx's parser reports these numbers (its E_* enum), the twin raises them
# directly, and unpickle_error turns both into the same message.
UNPICKLE_EXPECTED = {
    1: "EMPTY_LIST (b']') starting the list",
    2: "EMPTY_LIST (b']') or APPENDS (b'e') inside the list's MARK batch",
    3: "BININT1/BININT2/BININT (b'K', b'M', b'J') or APPENDS (b'e') inside a sequence's MARK batch",
    4: "APPEND (b'a') after a lone item",
}
UNPICKLE_ARGUMENT_ERROR = 5
UNPICKLE_FRAME_ERROR = 6


def unpickle_error(code, pos, data):
    owner = "unpickle_int_lists"
    n = len(data)
    if code == UNPICKLE_ARGUMENT_ERROR:
        opcode = bytes(data[pos:pos + 1])
        return ValueError(f"{owner}: the argument of opcode {opcode!r} at byte {pos} runs past the end of "
                          f"the data ({n} bytes).")
    if code == UNPICKLE_FRAME_ERROR:
        length = int.from_bytes(data[pos + 1:pos + 9], "little")
        return ValueError(f"{owner}: the FRAME at byte {pos} announces {length} bytes, but only "
                          f"{n - pos - 9} follow.")
    found = "the end of the data" if pos >= n else f"opcode {bytes(data[pos:pos + 1])!r}"
    return ValueError(f"{owner}: byte {pos}: expected {UNPICKLE_EXPECTED[code]}; found {found}.")


def byte_view(owner, data, start):
    """``data`` as a 1-D memoryview of unsigned bytes, and ``start`` checked against it."""
    try:
        view = memoryview(data).cast("B")
    except TypeError:
        raise ValueError(f"{owner}: argument `data` must be a C-contiguous bytes-like object (bytes, "
                         f"bytearray, memoryview, uint8 array); received {describe(data)}.") from None
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start <= len(view):
        raise ValueError(f"{owner}: argument `start` must be an integer in [0, {len(view)}] (the length of "
                         f"`data`); received {describe(start)}.")
    return view, int(start)
