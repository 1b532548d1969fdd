"""Thread-count plumbing shared by the compiled kernels.

``HAVE_OPENMP`` is what the C compiler saw (``_OPENMP`` defined), not what
setup.py hoped for. ``effective_n_threads(None)`` is ``fastnn.get_num_threads()``.
The BLAS thread pool (scipy's OpenBLAS, whose ``sgemm`` the kernels call) is
pinned to one thread while a kernel splits a GEMM between its own threads, so
the two pools never oversubscribe the cores; the function pointers come from
``fastnn._threads`` (resolved with ctypes), and are NULL when unavailable.
"""
from fastnn.utils.validation import describe

HAVE_OPENMP = bool(FASTNN_HAVE_OPENMP)

cdef blas_set_threads_t _blas_set = NULL
cdef blas_get_threads_t _blas_get = NULL
cdef object _threads = None


cdef int _load_threads() except -1:
    """Import fastnn._threads on first use and install its BLAS thread-control
    function pointers (resolving them applies the default thread cap to BLAS,
    which a bare import should not do)."""
    global _threads
    from fastnn import _threads as threads_module
    _threads = threads_module
    set_addr, get_addr = threads_module._blas_thread_function_addresses()
    _set_blas_thread_functions(set_addr, get_addr)
    return 0


def _set_blas_thread_functions(size_t set_addr, size_t get_addr):
    """Install (or with 0, 0 remove) the BLAS set/get-num-threads functions."""
    global _blas_set, _blas_get
    if set_addr == 0 or get_addr == 0:
        _blas_set = NULL
        _blas_get = NULL
    else:
        _blas_set = <blas_set_threads_t>set_addr
        _blas_get = <blas_get_threads_t>get_addr


def blas_thread_control():
    """True when the kernels can pin the BLAS pool to one thread."""
    if _threads is None:
        _load_threads()
    return _blas_set != NULL


def openmp_max_threads():
    """omp_get_max_threads() (1 without OpenMP)."""
    return fastnn_omp_max_threads()


cdef int effective_n_threads(object n_threads) except -1:
    """n_threads (None -> fastnn.get_num_threads()), 1 when built without OpenMP."""
    global _threads
    cdef long n
    if n_threads is None:
        if _threads is None:
            _load_threads()
        n = _threads.get_num_threads()
    else:
        if _threads is None:
            _load_threads()
        if isinstance(n_threads, bool) or not hasattr(n_threads, "__index__") or n_threads < 1:
            raise ValueError("argument `n_threads` must be a positive integer or None; "
                             f"received {describe(n_threads)}.")
        n = n_threads
    if not FASTNN_HAVE_OPENMP:
        return 1
    return <int>(n if n < 4096 else 4096)


cdef int threads_for_work(int n_threads, Py_ssize_t work) noexcept nogil:
    """1 for small work (a team costs more than it saves), else n_threads."""
    if work < SERIAL_WORK_THRESHOLD or n_threads < 1:
        return 1
    return n_threads


cdef int blas_threads_begin(int n) noexcept nogil:
    """Set the BLAS pool to n threads; return the previous count (or -1)."""
    cdef int previous
    if _blas_set == NULL:
        return -1
    previous = _blas_get()
    if previous != n:
        _blas_set(n)
    return previous


cdef void blas_threads_end(int previous) noexcept nogil:
    if _blas_set != NULL and previous > 0 and _blas_get() != previous:
        _blas_set(previous)
