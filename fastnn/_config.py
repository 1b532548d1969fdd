"""Build and runtime configuration: threads, OpenMP, BLAS.

    fastnn.show_config()        print what was built and what runs
    fastnn.set_num_threads(n)   the ONE thread knob (kernels and scipy's BLAS; see fastnn._threads)
    fastnn.get_num_threads()

``build_info`` imports ``fastnn._kernels`` and its compiled modules only when
called: they exist only in a built package, and their absence is reported, not
raised.
"""
import ctypes
import platform
import sys

from ._threads import _blas_thread_functions, _usable_cpus, get_num_threads, set_num_threads
from ._version import __version__

__all__ = ["show_config", "build_info", "set_num_threads", "get_num_threads"]


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


def _warn_if_openmp_missing():
    """One line at import when the compiler could not give OpenMP (clang without libomp, say): such a
    build runs every kernel on one thread, and only the install log said so. A build made sequential on
    purpose (FASTNN_NO_OPENMP=1) is not warned about."""
    try:
        from ._kernels._build_info import BUILD_INFO
    except ImportError:  # not built (FASTNN_KERNELS=reference, or a source checkout)
        return
    if BUILD_INFO.get("openmp", True) or "FASTNN_NO_OPENMP" in str(BUILD_INFO.get("openmp_note", "")):
        return
    import warnings

    warnings.warn("fastnn was built without OpenMP, so it trains on one thread (" +
                  str(BUILD_INFO.get("openmp_note", "")).splitlines()[0][:120] + "); reinstall with an OpenMP "
                  "compiler (gcc, or clang with libomp); fastnn.show_config() shows the build.", RuntimeWarning,
                  stacklevel=3)

