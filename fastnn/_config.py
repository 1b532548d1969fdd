"""Build and runtime configuration: threads, OpenMP, BLAS.

    fastnn.show_config()        print what was built and what runs
    fastnn.set_num_threads(n)   the ONE thread knob (kernels and scipy's BLAS)
    fastnn.get_num_threads()

The default thread count is the number of CPUs this process may use: its CPU
affinity mask (``os.sched_getaffinity``) capped by a cgroup CPU quota
(containers: ``cpu.max`` / ``cpu.cfs_quota_us``), or ``FASTNN_NUM_THREADS``.
Oversubscribing a container's quota is the classic way to make a small MLP
several times slower (KERAS_SEMANTICS.md section 3.4).

This module must not import ``fastnn._kernels`` at import time (the compiled
kernels import it lazily for the thread count).
"""
import ctypes
import math
import os
import platform
import sys

from ._version import __version__

__all__ = ["show_config", "build_info", "set_num_threads", "get_num_threads"]

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


def _blas_info():
    info = {"name": "unknown", "threads": None, "thread_control": _blas_thread_functions() is not None}
    functions = _blas_thread_functions()
    if functions is not None:
        info["threads"] = functions[1]()
    try:
        import scipy.linalg.cython_blas as cython_blas

        handle = ctypes.CDLL(cython_blas.__file__)
        for name in ("scipy_openblas_get_config", "scipy_openblas_get_config64_", "openblas_get_config"):
            getter = getattr(handle, name, None)
            if getter is not None:
                getter.restype = ctypes.c_char_p
                info["name"] = getter().decode(errors="replace")
                break
    except (ImportError, OSError):
        pass
    if info["name"] == "unknown":
        try:
            import scipy

            deps = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
            info["name"] = f"{deps.get('name')} {deps.get('version')}"
        except Exception:
            pass
    return info


# ----------------------------------------------------------------------------- reports
def build_info():
    """A dict describing the build and the runtime: version, backend, OpenMP, compiler, threads, BLAS."""
    from . import _kernels

    info = {
        "version": __version__,
        "kernels_backend": _kernels.BACKEND,
        "openmp_built": None,
        "openmp_runtime": None,
        "compiler": None,
        "compiler_version": None,
        "compile_args": None,
        "link_args": None,
        "num_threads": get_num_threads(),
        "usable_cpus": _usable_cpus(),
        "blas": _blas_info(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    try:
        import numpy

        info["numpy"] = numpy.__version__
        import scipy

        info["scipy"] = scipy.__version__
    except ImportError:
        pass
    try:
        from ._kernels import _build_info

        built = _build_info.BUILD_INFO
        info["openmp_built"] = built.get("openmp")
        info["compiler"] = built.get("compiler")
        info["compiler_version"] = built.get("compiler_version")
        info["compile_args"] = built.get("compile_args")
        info["link_args"] = built.get("link_args")
        info["cython"] = built.get("cython_version")
    except ImportError:
        pass
    try:
        from ._kernels import _openmp

        info["openmp_runtime"] = _openmp.HAVE_OPENMP
        info["blas"]["pinned_by_kernels"] = _openmp.blas_thread_control()
    except ImportError:
        pass
    return info


def show_config(file=None):
    """Print the build and runtime configuration (what ``build_info()`` returns)."""
    info = build_info()
    out = file or sys.stdout

    def line(key, value):
        print(f"  {key:<18} {value}", file=out)

    print("fastnn configuration", file=out)
    line("version", info["version"])
    line("kernels backend", info["kernels_backend"])
    openmp = info["openmp_runtime"] if info["openmp_runtime"] is not None else info["openmp_built"]
    line("OpenMP", {True: "on", False: "OFF (built without OpenMP: one thread)", None: "unknown (not built)"}[openmp])
    line("compiler", f"{info['compiler']} ({info['compiler_version']})" if info["compiler"] else "unknown")
    line("compile args", " ".join(info["compile_args"] or []))
    line("threads", f"{info['num_threads']} (usable CPUs: {info['usable_cpus']})")
    blas = info["blas"]
    line("BLAS (scipy)", f"{blas['name']}; threads {blas['threads']}; "
                         f"thread control {'yes' if blas['thread_control'] else 'no'}")
    line("python", info["python"])
    line("numpy / scipy", f"{info.get('numpy')} / {info.get('scipy')}")
    line("platform", info["platform"])
