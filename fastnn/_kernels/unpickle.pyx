"""Pickled lists of ints (IMDB's object arrays) read without unpickling them
(compiled twin of the "pickled int lists" section of _reference, which gives the grammar).

Dimension legend
    N    bytes of the pickle       S    lists (sequences)       T    ints in all lists

Why: unpickling imdb.npz's x_train makes one Python int per token, ~6M per split at ~32 bytes
each, and was most of the IMDB tutorial's peak memory (issue 3). This parser writes the ints
into one int32 array instead, executes nothing from the file, and allocates nothing per token.

Two passes over the bytes: the first checks the grammar and counts S and T, the second fills the
exactly-sized outputs. Both run without the GIL; the second also checks it stays within the
counts, so a buffer changed by another thread in between cannot make it write out of bounds.
"""
import numpy as np

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

from fastnn._kernels._argchecks import byte_view, unpickle_error  # the same checks and messages as the twin

# Opcodes of pickle protocols 2-5 (Lib/pickle.py).
cdef enum:
    EMPTY_LIST = 0x5D   # ]
    MARK = 0x28         # (
    APPENDS = 0x65      # e
    APPEND = 0x61       # a
    BINPUT = 0x71       # q  u1
    LONG_BINPUT = 0x72  # r  u4
    MEMOIZE = 0x94      #    (protocol 4)
    FRAME = 0x95        #    u8 (protocol 4)
    BININT1 = 0x4B      # K  u1
    BININT2 = 0x4D      # M  u2
    BININT = 0x4A       # J  i4

# Error codes: _argchecks.unpickle_error turns them into messages (its UNPICKLE_EXPECTED,
# UNPICKLE_ARGUMENT_ERROR and UNPICKLE_FRAME_ERROR use the same numbers).
cdef enum:
    E_LIST = 1          # no EMPTY_LIST where the list starts
    E_OUTER_BATCH = 2   # neither a list nor APPENDS inside the outer MARK batch
    E_INNER_BATCH = 3   # neither an int nor APPENDS inside a sequence's MARK batch
    E_APPEND = 4        # a lone item not followed by APPEND
    E_ARGUMENT = 5      # an opcode's argument runs past the end
    E_FRAME = 6         # a FRAME announces more bytes than follow
    E_CHANGED = 7       # pass 2 disagrees with pass 1: the buffer changed in between


cdef struct Parser:
    const unsigned char* d
    Py_ssize_t n        # bytes
    int64_t* lengths    # (S,) or NULL in the counting pass
    int32_t* tokens     # (T,) or NULL in the counting pass
    Py_ssize_t cap_S    # sizes of lengths and tokens (pass 2)
    Py_ssize_t cap_T
    Py_ssize_t S        # lists and ints seen so far
    Py_ssize_t T
    int err             # 0 or an error code, with its byte offset in err_pos
    Py_ssize_t err_pos


cdef inline Py_ssize_t fail(Parser* p, int code, Py_ssize_t pos) noexcept nogil:
    p.err = code
    p.err_pos = pos
    return pos


cdef inline Py_ssize_t skip_frames(Parser* p, Py_ssize_t pos) noexcept nogil:
    """Step over FRAME opcodes (buffering hints, PEP 3154) at pos."""
    cdef uint64_t length
    cdef int k
    while pos < p.n and p.d[pos] == FRAME:
        if pos + 9 > p.n:
            return fail(p, E_ARGUMENT, pos)
        length = 0
        for k in range(8):
            length |= (<uint64_t>p.d[pos + 1 + k]) << (8 * k)
        if length > <uint64_t>(p.n - pos - 9):
            return fail(p, E_FRAME, pos)
        pos += 9
    return pos


cdef inline Py_ssize_t skip_memo(Parser* p, Py_ssize_t pos) noexcept nogil:
    """pos is just past an EMPTY_LIST: step over its optional memo put."""
    cdef Py_ssize_t width = 0
    pos = skip_frames(p, pos)
    if p.err or pos >= p.n:
        return pos
    if p.d[pos] == BINPUT:
        width = 2
    elif p.d[pos] == LONG_BINPUT:
        width = 5
    elif p.d[pos] == MEMOIZE:
        width = 1
    if pos + width > p.n:
        return fail(p, E_ARGUMENT, pos)
    return pos + width


cdef inline Py_ssize_t read_int(Parser* p, Py_ssize_t pos, int code) noexcept nogil:
    """The int opcode at pos into tokens[T] (pass 2); error ``code`` if it is no int opcode."""
    cdef const unsigned char* a = p.d + pos + 1
    cdef int32_t value
    cdef unsigned char op = p.d[pos]
    cdef Py_ssize_t width
    if op == BININT1:
        width = 1
    elif op == BININT2:
        width = 2
    elif op == BININT:
        width = 4
    else:
        return fail(p, code, pos)
    if pos + 1 + width > p.n:
        return fail(p, E_ARGUMENT, pos)
    if p.tokens != NULL:
        if p.T >= p.cap_T:
            return fail(p, E_CHANGED, pos)
        if width == 1:
            value = a[0]
        elif width == 2:
            value = a[0] | (<int32_t>a[1] << 8)
        else:  # little-endian two's complement, assembled unsigned (no signed-shift overflow)
            value = <int32_t>(<uint32_t>a[0] | (<uint32_t>a[1] << 8) | (<uint32_t>a[2] << 16)
                              | (<uint32_t>a[3] << 24))
        p.tokens[p.T] = value
    p.T += 1
    return pos + 1 + width


cdef Py_ssize_t read_sequence(Parser* p, Py_ssize_t pos) noexcept nogil:
    """The inner list whose EMPTY_LIST is at pos: its ints into tokens, its length into lengths[S]."""
    cdef Py_ssize_t first = p.T
    cdef const unsigned char* d = p.d
    cdef Py_ssize_t n = p.n
    pos = skip_memo(p, pos + 1)
    while not p.err:
        pos = skip_frames(p, pos)
        if p.err or pos >= n:
            break
        if d[pos] == MARK:
            pos += 1
            while True:
                pos = skip_frames(p, pos)
                if p.err:
                    return pos
                if pos >= n:
                    return fail(p, E_INNER_BATCH, pos)
                if d[pos] == APPENDS:
                    pos += 1
                    break
                pos = read_int(p, pos, E_INNER_BATCH)
                if p.err:
                    return pos
        elif d[pos] == BININT1 or d[pos] == BININT2 or d[pos] == BININT:
            pos = read_int(p, pos, E_INNER_BATCH)
            if not p.err:
                pos = skip_frames(p, pos)
            if p.err:
                return pos
            if pos >= n or d[pos] != APPEND:
                return fail(p, E_APPEND, pos)
            pos += 1
        else:
            break
    if p.err:
        return pos
    if p.lengths != NULL:
        if p.S >= p.cap_S:
            return fail(p, E_CHANGED, pos)
        p.lengths[p.S] = p.T - first
    p.S += 1
    return pos


cdef Py_ssize_t parse(Parser* p, Py_ssize_t pos) noexcept nogil:
    """The outer list whose EMPTY_LIST is at pos; returns the offset just past it."""
    cdef const unsigned char* d = p.d
    cdef Py_ssize_t n = p.n
    if pos >= n or d[pos] != EMPTY_LIST:
        return fail(p, E_LIST, pos)
    pos = skip_memo(p, pos + 1)
    while not p.err:
        pos = skip_frames(p, pos)
        if p.err or pos >= n:
            break
        if d[pos] == MARK:
            pos += 1
            while True:
                pos = skip_frames(p, pos)
                if p.err:
                    return pos
                if pos < n and d[pos] == APPENDS:
                    pos += 1
                    break
                if pos >= n or d[pos] != EMPTY_LIST:
                    return fail(p, E_OUTER_BATCH, pos)
                pos = read_sequence(p, pos)
                if p.err:
                    return pos
        elif d[pos] == EMPTY_LIST:
            pos = read_sequence(p, pos)
            if not p.err:
                pos = skip_frames(p, pos)
            if p.err:
                return pos
            if pos >= n or d[pos] != APPEND:
                return fail(p, E_APPEND, pos)
            pos += 1
        else:
            break
    return pos


def unpickle_int_lists(data, start=0, n_threads=None):
    """The pickled list of lists of ints at ``data[start:]``, without unpickling it.

    data (N,) bytes-like, holding the list's EMPTY_LIST opcode at ``start``. Returns
    ``(lengths (S,) int64, tokens (T,) int32, end)``: list s is
    ``tokens[sum(lengths[:s]) : sum(lengths[:s + 1])]``, and ``end`` is the offset just past the
    outer list. ValueError names the byte offset of anything outside the grammar (including
    data that ends inside the list). ``n_threads``
    is accepted for uniformity; parsing is sequential.
    """
    view, first = byte_view("unpickle_int_lists", data, start)
    cdef const unsigned char[::1] d = view
    cdef Py_ssize_t begin = first
    cdef Parser p
    cdef Py_ssize_t end
    cdef int64_t no_length   # targets for empty outputs: never written (cap 0)
    cdef int32_t no_token
    p.d = &d[0] if d.shape[0] else NULL
    p.n = d.shape[0]
    p.lengths = NULL
    p.tokens = NULL
    p.S = p.T = p.err = p.err_pos = 0
    with nogil:
        end = parse(&p, begin)
    if p.err:
        raise unpickle_error(p.err, p.err_pos, view)
    lengths = np.empty(p.S, dtype=np.int64)                                        # OUT (S,)
    tokens = np.empty(p.T, dtype=np.int32)                                         # OUT (T,)
    cdef int64_t[::1] L = lengths
    cdef int32_t[::1] tok = tokens
    p.cap_S, p.cap_T = p.S, p.T
    p.lengths = &L[0] if p.S else &no_length  # non-NULL selects pass 2
    p.tokens = &tok[0] if p.T else &no_token
    p.S = p.T = 0
    with nogil:
        end = parse(&p, begin)
    if p.err or p.S != p.cap_S or p.T != p.cap_T:
        raise ValueError("unpickle_int_lists: the contents of `data` changed while it was being parsed.")
    return lengths, tokens, end
