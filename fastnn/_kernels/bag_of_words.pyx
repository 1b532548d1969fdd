"""Token sequences to the CSR rows of a multi-hot matrix (the IMDB tutorial's bag of words): the compiled
twin of _reference.flatten_sequences and _reference.multi_hot_csr.

Dimension legend
    S    sequences (rows)    T    tokens of all sequences    num_tokens  the vocabulary (columns)

flatten_sequences    Python lists or tuples of ints -> (lengths (S,), tokens (T,)) int64, read without a
                     Python int per token; the first bad sequence (a non-int, a negative id) is named.
multi_hot_csr        (lengths, tokens) -> (indptr (S+1,), indices) int32 of the rows' distinct ids,
                     sorted. Sequences are split statically between threads; each thread owns a
                     private bitmap (and sort scratch), counts its rows' distinct ids (pass 1),
                     then, after a serial prefix sum, writes them sorted (pass 2).
"""
import numpy as np

from cython.parallel cimport parallel, prange
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memcpy, memset

from fastnn._kernels._argchecks import (check_multi_hot_args, flatten_array, sequence_list, sequence_tokens,
                                        token_id, token_range_error)  # the same checks and messages as the twin

from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work

cdef extern from "fastnn_kernels.h" nogil:
    int fastnn_ctz64(uint64_t m)
    ptrdiff_t fastnn_popcount_masks(const uint64_t* mask, ptrdiff_t n)

cdef enum:
    # Largest per-thread bitmap of multi_hot_csr, in 64-bit words (512 KB); rows whose ids
    # span more words than that (or than ~4 per token) are sorted instead.
    MAX_BITMAP_WORDS = 65536


# ---------------------------------------------------------------- multi-hot encoding
cdef int _cmp_int64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*>a)[0], y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef Py_ssize_t _unique_row(int32_t* out, const int64_t* tok, Py_ssize_t L, int64_t num_tokens,
                            uint64_t* bits, Py_ssize_t n_words, int64_t* scratch) noexcept nogil:
    """Number of distinct ids in tok[0:L], written sorted to out unless out is NULL;
    -1 if one is outside [0, num_tokens).

    Rows whose ids span few 64-bit words (the IMDB case: num_words=10000 is 157 words) set
    bits in the thread's bitmap and read them back in order, O(L + span); others are sorted
    (qsort, O(L log L)). The bitmap is all zeros again on return.
    """
    cdef Py_ssize_t j, w, n = 0, span
    cdef int64_t lo, hi, base, t
    cdef uint64_t m
    if L == 0:
        return 0
    lo = tok[0]
    hi = lo
    for j in range(1, L):
        lo = tok[j] if tok[j] < lo else lo
        hi = tok[j] if tok[j] > hi else hi
    if lo < 0 or hi >= num_tokens:
        return -1
    base = lo >> 6
    span = <Py_ssize_t>((hi >> 6) - base + 1)
    if span <= n_words and span <= 4 * L + 64:
        for j in range(L):
            t = tok[j] - (base << 6)
            bits[t >> 6] |= (<uint64_t>1) << (t & 63)
        if out == NULL:
            n = fastnn_popcount_masks(bits, span)
            memset(bits, 0, span * sizeof(uint64_t))
            return n
        for w in range(span):
            m = bits[w]
            if m == 0:
                continue
            bits[w] = 0
            while m:
                out[n] = <int32_t>(((base + w) << 6) + fastnn_ctz64(m))
                n += 1
                m &= m - 1
        return n
    memcpy(scratch, tok, L * sizeof(int64_t))
    qsort(scratch, L, sizeof(int64_t), _cmp_int64)
    for j in range(L):
        if j == 0 or scratch[j] != scratch[j - 1]:
            if out != NULL:
                out[n] = <int32_t>scratch[j]
            n += 1
    return n


cdef int _multi_hot_pass(int32_t* out, int64_t* counts, const int64_t* indptr, const int64_t* offsets,
                         const int64_t* tok, Py_ssize_t S, int64_t num_tokens, Py_ssize_t max_len,
                         int nt) noexcept nogil:
    """Pass 1 (out NULL): counts[s] = distinct ids of sequence s (-1 if out of range).
    Pass 2: write them sorted to out[indptr[s]:indptr[s+1]]. Returns 1 if scratch ran out."""
    cdef Py_ssize_t s, n_words = min((num_tokens + 63) // 64, <int64_t>MAX_BITMAP_WORDS)
    cdef Py_ssize_t n_oom = 0
    cdef uint64_t* bits = NULL
    cdef int64_t* scratch = NULL
    cdef Py_ssize_t n = 0
    with parallel(num_threads=nt):
        # thread-private scratch, allocated inside the parallel region: each thread has its own
        bits = <uint64_t*>calloc(n_words, sizeof(uint64_t))
        scratch = <int64_t*>malloc(max(max_len, 1) * sizeof(int64_t))
        for s in prange(S, schedule="static"):
            if bits == NULL or scratch == NULL:
                n_oom += 1
                continue
            n = _unique_row(NULL if out == NULL else out + indptr[s], tok + offsets[s],
                            offsets[s + 1] - offsets[s], num_tokens, bits, n_words, scratch)
            if out == NULL:
                counts[s] = n
        free(bits)
        free(scratch)
    return n_oom > 0


def multi_hot_csr(lengths, tokens, num_tokens, n_threads=None):
    """CSR structure of the multi-hot encoding of S token sequences.

    lengths (S,) int, tokens (T,) int64: sequence s is tokens[sum(lengths[:s]) : sum(lengths[:s+1])].
    Returns (indptr (S+1,) int64, indices (nnz,) int32): row s holds the distinct tokens of
    sequence s, sorted. ValueError names the first sequence holding an id outside [0, num_tokens).
    """
    lengths = lengths if isinstance(lengths, np.ndarray) else np.asarray(lengths)   # IN (S,)
    tokens = tokens if isinstance(tokens, np.ndarray) else np.asarray(tokens)       # IN (T,)
    check_multi_hot_args(lengths, tokens, num_tokens)
    cdef int64_t n_tok = num_tokens
    cdef Py_ssize_t S = lengths.shape[0]
    tokens = np.ascontiguousarray(tokens, dtype=np.int64)
    offsets = np.zeros(S + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    indptr = np.zeros(S + 1, dtype=np.int64)                                       # OUT (S+1,)
    cdef int64_t[::1] tok_v = tokens
    cdef int64_t[::1] off_v = offsets
    cdef int64_t[::1] ptr_v = indptr
    cdef Py_ssize_t max_len = int(lengths.max()) if S else 0
    cdef int nt = threads_for_work(effective_n_threads(n_threads), tokens.shape[0] * 4)
    cdef const int64_t* tok_p = &tok_v[0] if tokens.shape[0] else NULL
    cdef int oom
    if S == 0:
        return indptr, np.zeros(0, dtype=np.int32)
    with nogil:
        oom = _multi_hot_pass(NULL, &ptr_v[1], &ptr_v[0], &off_v[0], tok_p, S, n_tok, max_len, nt)
    if oom:
        raise MemoryError(f"multi_hot_csr: could not allocate the per-thread scratch for num_tokens={num_tokens}.")
    counts = indptr[1:]
    if counts.min() < 0:
        seq = int(np.argmax(counts < 0))
        row = tokens[offsets[seq]:offsets[seq + 1]]
        raise token_range_error(seq, int(row[np.argmax((row < 0) | (row >= n_tok))]), num_tokens)
    np.cumsum(counts, out=counts)
    indices = np.empty(int(indptr[S]), dtype=np.int32)                             # OUT (nnz,)
    cdef int32_t[::1] ind_v = indices
    if indices.shape[0]:
        with nogil:
            oom = _multi_hot_pass(&ind_v[0], NULL, &ptr_v[0], &off_v[0], tok_p, S, n_tok, max_len, nt)
        if oom:
            raise MemoryError(f"multi_hot_csr: could not allocate the per-thread scratch for "
                              f"num_tokens={num_tokens}.")
    return indptr, indices


# ---------------------------------------------------------------- flattening token sequences
cdef int _fill_list(int64_t* out, list seq, Py_ssize_t n, Py_ssize_t s, str owner) except -1:
    """out[0:n] = the token ids of the Python list ``seq`` (sequence s).

    The fast path is a C loop over exact Python ints (what imdb.load_data returns): a type
    pointer compare and PyLong_AsLongLongAndOverflow per token, about 15x faster than
    np.fromiter over itertools.chain. Anything else goes through _argchecks.token_id, which
    accepts NumPy integers and whole floats and raises the shared error messages.
    """
    cdef Py_ssize_t j
    cdef int overflow
    cdef long long v
    cdef object item
    if len(seq) != n:
        raise RuntimeError(f"{owner}: sequence {s} changed size while it was read.")
    for j in range(n):
        item = seq[j]
        if type(item) is int:
            v = PyLong_AsLongLongAndOverflow(item, &overflow)
            if overflow == 0:
                out[j] = v
                continue
        out[j] = token_id(owner, item, s)
        if len(seq) != n:  # Python code ran (a custom int type): the list must still be intact
            raise RuntimeError(f"{owner}: sequence {s} changed size while it was read.")
    return 0


cdef int _fill_tuple(int64_t* out, tuple seq, Py_ssize_t n, Py_ssize_t s, str owner) except -1:
    """As _fill_list, for a tuple."""
    cdef Py_ssize_t j
    cdef int overflow
    cdef long long v
    cdef object item
    for j in range(n):
        item = seq[j]
        if type(item) is int:
            v = PyLong_AsLongLongAndOverflow(item, &overflow)
            if overflow == 0:
                out[j] = v
                continue
        out[j] = token_id(owner, item, s)
    return 0


def flatten_sequences(sequences, n_threads=None):
    """(lengths (S,) int64, tokens (T,) int64): the token-id sequences laid end to end.

    ``sequences`` is a list, tuple or 1-D object array of sequences (lists, tuples, 1-D arrays
    or other iterables of token ids; Keras' ``imdb.load_data`` output), or a 2-D integer array
    (S, L). Ids are Python or NumPy integers, or floats holding whole numbers. TypeError for
    non-numbers and booleans, ValueError for fractions, NaN, nesting deeper than one level and
    ids beyond int64, each naming the sequence. Not range-checked: that is multi_hot_csr's job.
    ``n_threads`` is accepted for uniformity; this loop holds the GIL (it reads Python objects).
    """
    owner = "flatten_sequences"
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        return flatten_array(owner, sequences)
    seqs = sequence_list(owner, sequences)
    cdef Py_ssize_t S = len(seqs), s, pos = 0, T = 0
    lengths = np.empty(S, dtype=np.int64)                                          # OUT (S,)
    cdef int64_t[::1] L = lengths
    converted = {}  # s -> int64 array, for sequences that are not lists or tuples
    first_error = None
    cdef Py_ssize_t n_seqs = S
    for s in range(S):
        seq = seqs[s]
        if type(seq) is list or type(seq) is tuple:
            L[s] = len(seq)
        else:
            try:
                arr = sequence_tokens(owner, seq, s)
            except (TypeError, ValueError) as exc:
                # the error named is the first in sequence order, as in the twin: the lists before
                # sequence s are read (and may raise) first, below (issue 15)
                first_error, n_seqs = exc, s
                break
            converted[s] = arr
            L[s] = arr.shape[0]
        T += L[s]
    tokens = np.empty(T, dtype=np.int64)                                           # OUT (T,)
    cdef int64_t[::1] tok = tokens
    for s in range(n_seqs):
        if L[s] == 0:
            continue
        seq = seqs[s]
        if converted and s in converted:
            tokens[pos:pos + L[s]] = converted[s]
        elif type(seq) is list:
            _fill_list(&tok[pos], <list>seq, L[s], s, owner)
        else:
            _fill_tuple(&tok[pos], <tuple>seq, L[s], s, owner)
        pos += L[s]
    if first_error is not None:
        raise first_error
    return lengths, tokens
