"""Shared benchmark helpers: thread setup, timer, environment capture, JSON lines.

Import this module BEFORE numpy (``setup_threads`` must run before any BLAS
library is loaded, or its thread pool is already sized):

    from common import setup_threads
    setup_threads(args.threads)
    import numpy as np

Timing follows STYLE.md habit 15: warm-up calls, then the minimum of N
``perf_counter`` runs (the minimum is the least noisy estimate of the cost on
a shared machine; the median is reported too).

``gemm_peak_gflops(dtype, n_threads)`` is the machine's measured GEMM peak (NumPy's
matmul of large squares), the yardstick of the "% of peak" targets; ``numpy_blas_threads``
pins NumPy's own BLAS pool (not scipy's) for a block of code.
"""
import contextlib
import ctypes
import json
import os
import platform
import sys
import time
import warnings

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FASTNN_NUM_THREADS")


def setup_threads(n):
    """Set every thread-count variable to n (None: leave them). Call before importing numpy."""
    if "numpy" in sys.modules:
        raise RuntimeError("bench.common.setup_threads must run before numpy is imported")
    if n is not None:
        for var in _THREAD_VARS:
            os.environ[var] = str(int(n))


def timeit(fn, repeat=20, warmup=3, number=1, min_time=None):
    """Run fn() `warmup` times, then `repeat` timed runs of `number` calls each.

    Returns {"min": s, "median": s, "repeat": r, "number": number} in seconds per call.
    With min_time, `number` grows until one run takes at least min_time seconds.
    """
    for _ in range(warmup):
        fn()
    if min_time is not None:
        while True:
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            if time.perf_counter() - t0 >= min_time or number >= 1 << 20:
                break
            number *= 2
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t0) / number)
    runs.sort()
    return {"min": runs[0], "median": runs[len(runs) // 2], "repeat": repeat, "number": number}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def environment():
    """Machine and software facts recorded with every result."""
    env = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": load_average(),
        "thread_env": {v: os.environ.get(v) for v in _THREAD_VARS},
    }
    try:
        import numpy
        import scipy

        env["numpy"] = numpy.__version__
        env["scipy"] = scipy.__version__
    except ImportError:
        pass
    try:
        import fastnn._config as config

        info = config.build_info()
        env.update({"fastnn": info["version"], "kernels_backend": info["kernels_backend"],
                    "openmp": info["openmp_runtime"], "threads": info["num_threads"],
                    "blas": info["blas"]["name"], "compile_args": info["compile_args"]})
    except Exception as exc:  # report, do not fail the benchmark
        env["fastnn_error"] = repr(exc)
    return env


class JsonLines:
    """Writes one JSON object per line to stdout and, optionally, a file."""

    def __init__(self, path=None, echo=True):
        self.path = path
        self.echo = echo
        self._file = open(path, "a") if path else None

    def write(self, record):
        line = json.dumps(record, sort_keys=True, default=float)
        if self.echo:
            print(line, flush=True)
        if self._file:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self):
        if self._file:
            self._file.close()


# ----------------------------------------------------------------------------- NumPy's BLAS pool
_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads", "MKL_Set_Num_Threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
            "openblas_get_num_threads", "MKL_Get_Max_Threads")


def _numpy_blas_pool():
    """(set, get) ctypes functions of the BLAS NumPy itself loaded (Linux), or None.

    NumPy bundles its own OpenBLAS, distinct from scipy's that fastnn._config caps, so the
    pool is found among the loaded libraries (what threadpoolctl does, without depending on it).
    """
    import numpy  # noqa: F401  (loads its BLAS)

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "blas" in line.lower() or "mkl" in line.lower()})
    except OSError:
        return None
    for path in paths:
        if "numpy" not in path and "openblas" not in path.lower():
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in zip(_SETTERS, _GETTERS):
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                return setter, getter
    return None


@contextlib.contextmanager
def numpy_blas_threads(n):
    """Run a block with NumPy's BLAS on n threads (None: leave it); warns if it cannot be set."""
    pool = _numpy_blas_pool() if n is not None else None
    if n is not None and pool is None:
        warnings.warn(f"cannot set NumPy's BLAS threads to {n}; measuring with its current pool "
                      "(call setup_threads before importing numpy)", RuntimeWarning, stacklevel=3)
    previous = pool[1]() if pool else None
    if pool:
        pool[0](int(n))
    try:
        yield
    finally:
        if pool:
            pool[0](previous)


_PEAKS = {}


def gemm_peak_gflops(dtype, n_threads, n=None, repeat=5):
    """The machine's GEMM peak in GFLOP/s: NumPy's matmul of two n x n matrices of `dtype`
    (default n: 2048, 1536 for float64) on n_threads BLAS threads, best of `repeat` after a
    warm-up call. Cached per (dtype, n_threads, n) for the process (it takes ~1 s)."""
    import numpy as np

    dtype = np.dtype(dtype)
    n = n or (2048 if dtype == np.float32 else 1536)
    key = (dtype.name, n_threads, n)
    if key not in _PEAKS:
        rng = np.random.default_rng(0)
        a = rng.random((n, n)).astype(dtype)
        b = rng.random((n, n)).astype(dtype)
        c = np.empty((n, n), dtype)
        with numpy_blas_threads(n_threads):
            t = timeit(lambda: np.matmul(a, b, out=c), repeat=repeat, warmup=1)
        _PEAKS[key] = 2.0 * n ** 3 / t["min"] / 1e9
    return _PEAKS[key]


def system_busy_seconds():
    """CPU seconds all processes have used since boot (/proc/stat), or None off Linux. The difference
    over a timed run, minus the run's own CPU time, is what other processes took meanwhile."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # up to steal; guest is inside user


def source_tree_env(env, here):
    """``env`` with PYTHONPATH starting at the source tree beside the benchmark (``here``: bench/) when that
    tree has an in-place build, or when no fastnn is installed: the code beside the script is measured,
    not an older fastnn left in site-packages. Prints which."""
    import glob
    import importlib.util

    root = os.path.dirname(here)
    built = glob.glob(os.path.join(root, "fastnn", "_kernels", "*.so")) + glob.glob(
        os.path.join(root, "fastnn", "_kernels", "*.pyd"))
    if built or (importlib.util.find_spec("fastnn") is None and os.path.isdir(os.path.join(root, "fastnn"))):
        env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])))
        print(f"# measuring the source tree {root}" + ("" if built else " (not built: NumPy fallback)"),
              file=sys.stderr)
    return env

