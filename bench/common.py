"""Shared benchmark helpers: thread setup, timer, environment capture, JSON lines.

Import this module BEFORE numpy (``setup_threads`` must run before any BLAS
library is loaded, or its thread pool is already sized):

    from common import setup_threads
    setup_threads(args.threads)
    import numpy as np

Timing follows STYLE.md habit 15: warm-up calls, then the minimum of N
``perf_counter`` runs (the minimum is the least noisy estimate of the cost on
a shared machine; the median is reported too).
"""
import json
import os
import platform
import sys
import time

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


def gemm_peak_gflops(dtype="float32", n=2048, repeats=5, warmup=2):
    """The machine's measured GEMM peak: best GFLOP/s (2 n^3 flops per call) of an n x n x n matmul
    through NumPy's BLAS, after ``warmup`` calls, at the thread count set before numpy was imported
    (``setup_threads``). Large and square, so BLAS runs at its best: the ceiling the benchmarks'
    "% of peak" columns are read against."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    for _ in range(warmup):
        np.matmul(a, b, out=c)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


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
