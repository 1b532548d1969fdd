"""unpickle_int_lists: compiled ``fastnn._kernels.unpickle`` vs its twin in ``_reference``; both vs pickle.

Valid pickles of lists of lists of ints (protocols 2 and 3, every batching and int-opcode case)
must give what ``pickle.loads`` gives; invalid, truncated and randomly corrupted bytes must give
the same ValueError from both implementations (never a crash or a read past the end).
"""
import pickle

import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import unpickle as C

KERNELS = [C.unpickle_int_lists, R.unpickle_int_lists]


def as_lists(lengths, tokens):
    bounds = np.concatenate(([0], np.cumsum(lengths))).tolist()
    return [tokens[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]


def parse_both(data, start):
    """The compiled result, after checking that it equals the reference's (result or error)."""
    try:
        expected = R.unpickle_int_lists(data, start)
    except ValueError as e:
        with pytest.raises(ValueError) as info:
            C.unpickle_int_lists(data, start)
        assert str(info.value) == str(e)
        raise
    lengths, tokens, end = C.unpickle_int_lists(data, start)
    assert lengths.dtype == np.int64 and tokens.dtype == np.int32
    assert end == expected[2]
    np.testing.assert_array_equal(lengths, expected[0])
    np.testing.assert_array_equal(tokens, expected[1])
    return lengths, tokens, end


def list_cases():
    rng = np.random.default_rng(7)
    edges = [0, 1, 255, 256, 65535, 65536, -1, -256, 2**31 - 1, -2**31]  # BININT1 / BININT2 / BININT bounds
    return {
        "empty": [],
        "one empty list": [[]],
        "lone items (APPEND)": [[5]],
        "two items": [[1, 2], [3, 4]],
        "opcode edges": [edges, edges[::-1], []],
        "batches of 1000": [list(range(n)) for n in (999, 1000, 1001, 2000, 2001)],
        "1001 lists, some lone": [[i] * (i % 3) for i in range(1001)],
        "LONG_BINPUT memo": [rng.integers(-70000, 70000, rng.integers(0, 40)).tolist() for _ in range(600)],
        "FRAMEs inside (protocol 4)": [rng.integers(-70000, 70000, rng.integers(0, 3000)).tolist() for _ in range(90)],
    }


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("case", list(list_cases()))
def test_matches_pickle(case, protocol):
    obj = list_cases()[case]
    data = pickle.dumps(obj, protocol=protocol)
    if case.startswith("FRAMEs") and protocol >= 4:
        assert data.count(b"\x95") > 5
    start = data.index(b"]")
    lengths, tokens, end = parse_both(data, start)
    assert as_lists(lengths, tokens) == obj
    assert data[end:] == b"."  # just past the list: the STOP that follows it


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "uint8", "readonly uint8", "int8"])
def test_byte_buffers(kind):
    data = b"xyz" + pickle.dumps([[1, 300], [70000]], protocol=3)
    buf = {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(data),
           "uint8": np.frombuffer(data, np.uint8).copy(), "readonly uint8": np.frombuffer(data, np.uint8),
           "int8": np.frombuffer(data, np.int8)}[kind]
    lengths, tokens, end = parse_both(buf, data.index(b"]"))
    assert as_lists(lengths, tokens) == [[1, 300], [70000]] and data[end:] == b"."


def test_frames_and_memoize_anywhere_after_the_first_opcode():
    frame = b"\x95" + bytes(8)  # FRAME of length 0
    # [[1, 2, 3], [4]]: a MARK batch holding a list made of a MARK batch and a lone int, then a lone list
    opcodes = [b"]", b"\x94", b"(", b"]", b"\x94", b"(", b"K\x01", b"K\x02", b"e", b"K\x03", b"a", b"e",
               b"]", b"K\x04", b"a", b"a", b"t"]
    data = frame.join(opcodes)
    lengths, tokens, end = parse_both(data, 0)
    assert as_lists(lengths, tokens) == [[1, 2, 3], [4]] and data[end:] == b"t"


def test_the_list_may_end_the_data():
    data = pickle.dumps([[1], [2, 3]], protocol=3)[:-1]  # without the STOP
    assert parse_both(data, data.index(b"]"))[2] == len(data)


@pytest.mark.parametrize("data, start, message", [
    (b"", 0, r"byte 0: expected EMPTY_LIST .* found the end of the data"),
    (b"(]e", 0, r"byte 0: expected EMPTY_LIST \(b'\]'\) starting the list; found opcode b'\('"),
    (b"](K\x01e", 0, r"byte 2: expected EMPTY_LIST \(b'\]'\) or APPENDS \(b'e'\) inside the list's MARK "
                     r"batch; found opcode b'K'"),
    (b"](](K\x01X\x01\x00\x00\x00ae", 0, r"byte 6: expected BININT1/BININT2/BININT .* found opcode b'X'"),
    (b"](](K\x01", 0, r"byte 6: expected BININT1.* found the end of the data"),
    (b"](]K\x01K\x02", 0, r"byte 5: expected APPEND \(b'a'\) after a lone item; found opcode b'K'"),
    (b"]]K\x01e", 0, r"byte 4: expected APPEND .* found opcode b'e'"),
    (b"](", 0, r"byte 2: expected EMPTY_LIST .* found the end of the data"),
    (b"]r\x00\x00", 0, r"the argument of opcode b'r' at byte 1 runs past the end of the data \(4 bytes\)"),
    (b"](]q", 0, r"opcode b'q' at byte 3 runs past"),
    (b"](](J\x01\x02\x03", 0, r"opcode b'J' at byte 4 runs past the end of the data \(8 bytes\)"),
    (b"](](M\x01", 0, r"opcode b'M' at byte 4 runs past"),
    (b"](]K", 0, r"opcode b'K' at byte 3 runs past"),
    (pickle.dumps([[2**31]], protocol=3), 2, r"byte 8: expected APPEND .* found opcode b'\\x8a'"),  # LONG1
    (b"]\x95\x64" + bytes(7) + b"(]\x94e", 0, r"the FRAME at byte 1 announces 100 bytes, but only 4 follow\.$"),
    (b"](]\x95\x01" + bytes(6), 0, r"opcode b'\\x95' at byte 3 runs past the end"),
    (b"](]\x94(K\x01\x95\x00", 0, r"opcode b'\\x95' at byte 7 runs past the end"),
])
def test_errors_name_the_byte(data, start, message):
    for kernel in KERNELS:
        with pytest.raises(ValueError, match=r"^unpickle_int_lists: .*" + message):
            kernel(data, start)
    with pytest.raises(ValueError):
        parse_both(data, start)  # and the same message from both


@pytest.mark.parametrize("data, start, message", [
    ([1, 2], 0, "must be a C-contiguous bytes-like object"),
    ("](e", 0, "must be a C-contiguous bytes-like object"),
    (np.zeros(8, np.uint8)[::2], 0, "must be a C-contiguous bytes-like object"),
    (b"]", -1, r"argument `start` must be an integer in \[0, 1\]"),
    (b"]", 2, r"argument `start` must be an integer in \[0, 1\]"),
    (b"]", 0.0, "argument `start`"),
    (b"]", True, "argument `start`"),
])
def test_bad_arguments(data, start, message):
    for kernel in KERNELS:
        with pytest.raises(ValueError, match=message):
            kernel(data, start)


def test_corrupted_bytes_agree_with_the_reference():
    """Random truncations, byte changes, insertions and deletions: same result or same error, no crash."""
    rng = np.random.default_rng(11)
    # distinct list objects: a repeated one would be pickled as a memo reference (BINGET)
    base = pickle.dumps([list(s) for s in [[1, 300, 70000, -5], [], [9], list(range(30))] * 3], protocol=3)
    alphabet = np.frombuffer(b"]()eaqrKMJ.\x8aX\x00\xff", np.uint8)
    outcomes = []
    for _ in range(1000):
        data = bytearray(base)
        for _ in range(rng.integers(1, 4)):
            kind = rng.integers(4)
            at = int(rng.integers(0, len(data) + 1))
            value = int(rng.choice(alphabet) if rng.random() < 0.7 else rng.integers(256))
            if kind == 0:
                data[at:at + 1] = bytes([value])
            elif kind == 1:
                data.insert(at, value)
            elif kind == 2:
                del data[at:at + 1]
            else:
                del data[at:]
        start = min(2 if rng.random() < 0.9 else int(rng.integers(0, 4)), len(data))  # the list is at 2
        try:
            parse_both(bytes(data), start)
            outcomes.append("parsed")
        except ValueError:
            outcomes.append("error")
    assert outcomes.count("parsed") > 20 and outcomes.count("error") > 20


def test_the_real_file_matches_the_reference(imdb_data_dir):
    import zipfile

    with zipfile.ZipFile(imdb_data_dir / "imdb" / "imdb.npz") as archive:
        data = archive.read("x_test.npy")
    lengths, tokens, end = parse_both(data, data.index(b"]"))
    assert lengths.shape == (25000,) and int(lengths.sum()) == tokens.shape[0]
    assert data[end:].endswith(b"b.")  # the array state's tuple and BUILD, then STOP
