"""unpickle_int_lists: compiled parser vs twin on pickles of random lists of lists of ints (protocols 2-5,
every int width, empty lists, batches past 1000), and on the same pickles truncated, with a byte changed
or inserted: the same arrays, or the same ValueError with the same message."""
import pickle

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import given, strategies as st  # noqa: E402

from ._props import SEEDS, THREADS, compiled, prop_settings, same_outcome, twin  # noqa: E402

KERNELS = ("unpickle_int_lists",)
INT = st.one_of(st.integers(0, 255), st.integers(0, 65535), st.integers(-2**31, 2**31 - 1))
LISTS = st.one_of(st.lists(st.lists(INT, max_size=12), max_size=12),
                  st.lists(st.lists(st.integers(0, 9), min_size=990, max_size=1010), max_size=2),  # APPENDS batches
                  st.integers(995, 1005).map(lambda n: [[k % 7] for k in range(n)]))  # (distinct lists: a
# repeated one would be pickled as a memo reference, BINGET, which imdb.npz never holds and both refuse)


def _start(blob):
    """Offset of the outer EMPTY_LIST: after PROTO, and after FRAME for protocols 4 and 5."""
    return 11 if blob[2] == 0x95 else 2


def _compare(data, start, n_threads):
    got, want = same_outcome(lambda: compiled("unpickle_int_lists")(data, start, n_threads=n_threads),
                             lambda: twin("unpickle_int_lists")(data, start))
    if isinstance(want, Exception):
        assert str(got) == str(want)
        return
    assert got[2] == want[2]
    for g, w in zip(got[:2], want[:2]):
        assert g.dtype == w.dtype and np.array_equal(g, w)


@prop_settings()
@given(lists=LISTS, protocol=st.integers(2, 5), form=st.sampled_from(["bytes", "bytearray", "memoryview", "uint8"]),
       suffix=st.booleans(), n_threads=THREADS)
def test_pickles_parse_as_in_the_twin(lists, protocol, form, suffix, n_threads):
    blob = pickle.dumps(lists, protocol=protocol)
    if suffix:  # what follows the list in imdb.npz's object array
        blob += b"\x85R."
    data = {"bytes": blob, "bytearray": bytearray(blob), "memoryview": memoryview(blob),
            "uint8": np.frombuffer(blob, np.uint8)}[form]
    _compare(data, _start(blob), n_threads)
    if not suffix:
        lengths, tokens, _ = compiled("unpickle_int_lists")(data, _start(blob))
        assert lengths.tolist() == [len(s) for s in lists] and tokens.tolist() == [v for s in lists for v in s]


@prop_settings()
@given(lists=LISTS, protocol=st.integers(2, 5), mutation=st.sampled_from(["truncate", "change", "insert", "start"]),
       seed=SEEDS, n_threads=THREADS)
def test_damaged_pickles_fail_as_in_the_twin(lists, protocol, mutation, seed, n_threads):
    rng = np.random.default_rng(seed)
    blob = bytearray(pickle.dumps(lists, protocol=protocol))
    start = _start(blob)
    at = int(rng.integers(start, len(blob) + 1))
    if mutation == "truncate":
        blob = blob[:at]
    elif mutation == "change" and at < len(blob):
        blob[at] = int(rng.choice([0x5D, 0x28, 0x65, 0x61, 0x4B, 0x4D, 0x4A, 0x95, 0x71, 0x8A, rng.integers(256)]))
    elif mutation == "insert":
        blob[at:at] = bytes([int(rng.integers(256))])
    else:
        start = int(rng.integers(-2, len(blob) + 3))
    _compare(bytes(blob), start, n_threads)


@prop_settings(0.3)
@given(step=st.integers(2, 3))
def test_a_non_contiguous_buffer_is_refused_by_both(step):
    data = np.frombuffer(pickle.dumps([[1, 2]], protocol=2) * 3, np.uint8)[::step]
    for kernel in (compiled, twin):
        with pytest.raises(ValueError, match="C-contiguous bytes-like"):
            kernel("unpickle_int_lists")(data, 2)
