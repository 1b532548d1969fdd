"""The thread count: the one knob for fastnn's kernels and scipy's BLAS pool.

    fastnn.set_num_threads(n)   (re-exported by fastnn._config and fastnn)
    fastnn.get_num_threads()

The default thread count is the number of CPUs this process may use: its CPU
affinity mask (``os.sched_getaffinity``) capped by a cgroup CPU quota
(containers: ``cpu.max`` / ``cpu.cfs_quota_us``), or ``FASTNN_NUM_THREADS``.
Oversubscribing a container's quota is the classic way to make a small MLP
several times slower (docs/keras_semantics.md#threads).

The compiled kernels (``_kernels/_openmp.pyx``) read the count and the BLAS
thread functions from here, and ``fastnn._config`` reports them; this module
imports no other part of fastnn at import time, so neither import comes back.
"""
import ctypes
import math
import os

_num_threads = None  # None until first asked: then the default below


def _cgroup_cpu_limit():
    """CPUs allowed by a cgroup quota (v2 cpu.max or v1 cfs quota), or None."""
    candidates = [("/sys/fs/cgroup/cpu.max", None),
                  ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
                  ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")]
    for quota_path, period_path in candidates:
        try:
            with open(quota_path) as f:
                fields = f.read().split()
            if period_path is None:
                quota, period = fields[0], fields[1]
            else:
                with open(period_path) as f:
                    quota, period = fields[0], f.read().split()[0]
            if quota in ("max", "-1"):
                return None
            quota, period = int(quota), int(period)
            if quota > 0 and period > 0:
                return max(1, math.ceil(quota / period))
        except (OSError, ValueError, IndexError):
            continue
    return None


def _usable_cpus():
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        n = min(n, limit)
    return max(1, n)


def _default_num_threads():
    env = os.environ.get("FASTNN_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"FASTNN_NUM_THREADS must be a positive integer; received {env!r}")
        return n
    return _usable_cpus()


def get_num_threads():
    """Threads the kernels use when called with ``n_threads=None``."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_num_threads()
        _set_blas_threads(_num_threads)
    return _num_threads


def set_num_threads(n):
    """Set the number of threads for fastnn's kernels and cap scipy's BLAS pool to it.

    ``None`` restores the default (usable CPUs or ``FASTNN_NUM_THREADS``).
    """
    global _num_threads
    if n is None:
        n = _default_num_threads()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        from .utils.validation import describe
        raise ValueError(f"set_num_threads: argument `n` must be a positive integer or None; "
                         f"received {describe(n)}.")
    _num_threads = int(n)
    _set_blas_threads(_num_threads)


# ----------------------------------------------------------------------------- BLAS
# The kernels call scipy's BLAS (scipy.linalg.cython_blas). Its OpenBLAS has a
# thread pool of its own; fastnn pins it to 1 thread while a kernel splits a
# GEMM between OpenMP threads, and caps it to get_num_threads() otherwise.
# threadpoolctl is not a dependency, so the set/get functions are found with
# ctypes: dlsym on cython_blas' handle also searches the libraries it links
# (the BLAS), whatever their symbol prefix.
_BLAS_SETTERS = (("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                 ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                 ("openblas_set_num_threads", "openblas_get_num_threads"),
                 ("openblas_set_num_threads64_", "openblas_get_num_threads64_"))
_blas_functions = None


def _blas_thread_functions():
    """(set, get) ctypes functions of scipy's BLAS thread pool, or None."""
    global _blas_functions
    if _blas_functions is None:
        _blas_functions = ()
        try:
            import scipy.linalg.cython_blas as cython_blas

            handle = ctypes.CDLL(cython_blas.__file__)
            for set_name, get_name in _BLAS_SETTERS:
                setter = getattr(handle, set_name, None)
                getter = getattr(handle, get_name, None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _blas_functions = (setter, getter)
                    break
        except (ImportError, OSError):
            pass
    return _blas_functions or None


def _blas_thread_function_addresses():
    """C addresses of (set, get) for the compiled kernels; (0, 0) if unavailable."""
    get_num_threads()  # applies the default cap once
    functions = _blas_thread_functions()
    if functions is None:
        return 0, 0
    return tuple(ctypes.cast(f, ctypes.c_void_p).value for f in functions)


def _set_blas_threads(n):
    functions = _blas_thread_functions()
    if functions is not None:
        functions[0](int(n))
