"""Build fastnn's compiled kernels.

    pip install .                               # what users do (isolated build env)
    python setup.py build_ext --inplace -j 2    # development build in the source tree

Environment switches
    FASTNN_NO_OPENMP=1   build the sequential kernels (no -fopenmp); a boxed warning says so
    FASTNN_REQUIRE_OPENMP=1   fail the build when OpenMP cannot be compiled, linked and run (packagers)
    FASTNN_DEBUG=1       boundscheck/wraparound on, -O0 -g: slow, for chasing memory errors
    FASTNN_SANITIZE=address,undefined   compile and link with those -fsanitize checks (gcc/clang; CI's
                         checked build: run with LD_PRELOAD=$(gcc -print-file-name=libasan.so))

Every ``fastnn/_kernels/*.pyx`` becomes an extension (a glob, so new kernel
files need no edit here). OpenMP is probed by compiling, linking AND running a
tiny program (sklearn ``_build_utils/openmp_helpers.py`` does the same): a
compiler that accepts ``-fopenmp`` but cannot link or run it must not produce
an extension that fails at import time. Build facts (OpenMP on/off, compiler,
flags) are written to ``fastnn/_kernels/_build_info.py`` next to the built
extensions, for ``fastnn.show_config()``.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
DEBUG = os.environ.get("FASTNN_DEBUG", "0") not in ("", "0")
NO_OPENMP = os.environ.get("FASTNN_NO_OPENMP", "0") not in ("", "0")
REQUIRE_OPENMP = os.environ.get("FASTNN_REQUIRE_OPENMP", "0") not in ("", "0")

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,  # also in debug builds: float division must not raise inside nogil loops
    "embedsignature": True,
    "binding": True,
}

# -O3 but never -march=native (the wheel must run on any x86-64) and never
# -ffast-math (it breaks isnan/inf handling and reassociates the reductions we
# keep in a fixed order; karpathy/llm.c#168). Hot C loops that want AVX2/FMA get
# it through run-time dispatched clones (csrc/fastnn_clones.h, fastnn_gemm.h, fastnn_math.h) instead.
# -fno-math-errno is not fast-math: it only stops sqrt/exp from setting errno
# (nobody reads it), which is what lets gcc vectorize the optimizer's sqrt --
# without it Adam over 100k floats ran 8x slower (scalar sqrtss + errno branch).
# -g0 outside debug builds: Python's own CFLAGS carry -g, and the DWARF made 20 MB of the wheel's 25 MB of
# .so (issue 17); symbol names stay, so profilers still name the kernels.
GCC_LIKE_FLAGS = ["-O0", "-g"] if DEBUG else ["-O3", "-g0"]
GCC_LIKE_FLAGS += ["-fno-math-errno", "-fno-strict-aliasing", "-Wno-unused-function", "-Wno-maybe-uninitialized", "-Wno-unreachable-code-fallthrough"]
MSVC_FLAGS = ["/Od"] if DEBUG else ["/O2"]
# A sanitizer failure must stop the run (the tests would pass over a report otherwise).
SANITIZE = os.environ.get("FASTNN_SANITIZE", "").strip()
SANITIZE_FLAGS = [f"-fsanitize={SANITIZE}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"] if SANITIZE else []

OPENMP_PROBE = textwrap.dedent(
    r"""
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel num_threads(2)
        {
            #pragma omp atomic
            n += 1;
        }
        printf("nthreads=%d max=%d\n", n, omp_get_max_threads());
        return n >= 1 ? 0 : 1;
    }
    """
)


def openmp_flags(compiler):
    """(compile_flags, link_flags) that enable OpenMP for this compiler."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang needs libomp from Homebrew (keg-only: not on the default paths) or conda; the probe decides.
        cflags, ldflags = ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
        for prefix in (os.environ.get("LIBOMP_PREFIX"), "/opt/homebrew/opt/libomp", "/usr/local/opt/libomp"):
            if prefix and os.path.exists(os.path.join(prefix, "include", "omp.h")):
                cflags.append(f"-I{os.path.join(prefix, 'include')}")
                ldflags[:0] = [f"-L{os.path.join(prefix, 'lib')}", f"-Wl,-rpath,{os.path.join(prefix, 'lib')}"]
                break
        return cflags, ldflags
    return ["-fopenmp"], ["-fopenmp"]


def probe_openmp(compiler, cflags, ldflags):
    """Compile, link and run a tiny OpenMP program; return (ok, message)."""
    tmp = tempfile.mkdtemp(prefix="fastnn-omp-")
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        with open("probe.c", "w") as f:
            f.write(OPENMP_PROBE)
        objects = compiler.compile(["probe.c"], output_dir=tmp, extra_postargs=cflags)
        exe = os.path.join(tmp, "probe")
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=ldflags)
        result = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or "nthreads=" not in result.stdout:
            return False, f"probe program exited with {result.returncode}: {result.stdout}{result.stderr}"
        return True, result.stdout.strip()
    except Exception as exc:  # any failure means "no OpenMP", reported loudly below
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


def boxed_warning(lines):
    width = max(len(line) for line in lines) + 4
    bar = "*" * width
    body = "\n".join(f"* {line.ljust(width - 4)} *" for line in lines)
    sys.stderr.write(f"\n{bar}\n{body}\n{bar}\n\n")
    sys.stderr.flush()


class BuildExt(build_ext):
    """Adds per-compiler flags, the OpenMP probe, and the generated _build_info.py."""

    def finalize_options(self):
        super().finalize_options()
        # Compile the extensions in parallel by default (pip and `python -m build` pass no -j):
        # a 2-core machine builds fastnn in about half the time.
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        compiler = self.compiler
        is_msvc = compiler.compiler_type == "msvc"
        if SANITIZE and is_msvc:
            raise RuntimeError("FASTNN_SANITIZE needs gcc or clang; this build uses MSVC.")
        base = MSVC_FLAGS if is_msvc else GCC_LIKE_FLAGS + SANITIZE_FLAGS
        omp_c, omp_l = [], []
        openmp_on, openmp_note = False, "disabled by FASTNN_NO_OPENMP=1"
        if not NO_OPENMP:
            cflags, ldflags = openmp_flags(compiler)
            openmp_on, openmp_note = probe_openmp(compiler, cflags, ldflags)
            if openmp_on:
                omp_c, omp_l = cflags, ldflags
        if not openmp_on and REQUIRE_OPENMP:
            raise RuntimeError(f"fastnn: FASTNN_REQUIRE_OPENMP=1 but OpenMP is unavailable ({openmp_note}). "
                               "Install an OpenMP-capable compiler (gcc; clang with libomp, e.g. "
                               "`brew install libomp` or `apt install libomp-dev`) or unset the variable.")
        if not openmp_on:
            boxed_warning([
                "fastnn: building WITHOUT OpenMP -- every kernel will run on one thread.",
                f"reason: {openmp_note}",
                "Install an OpenMP-capable compiler (gcc, or clang + libomp) and rebuild",
                "without FASTNN_NO_OPENMP to get the multi-threaded kernels.",
            ])
        for ext in self.extensions:
            ext.extra_compile_args = list(base) + omp_c + ext.extra_compile_args
            ext.extra_link_args = omp_l + SANITIZE_FLAGS + ext.extra_link_args
        # objects compiled against another numpy (pip's isolated build env) are rebuilt, too
        self._force_rebuild_if_flags_changed(base + omp_c + omp_l + [f"numpy=={numpy.__version__}"])
        super().build_extensions()
        self._write_build_info(openmp_on, openmp_note, base + omp_c, omp_l)

    def _force_rebuild_if_flags_changed(self, flags):
        """pip builds in the source tree and setuptools skips objects that look up to date, so
        `FASTNN_NO_OPENMP=1 pip install .` followed by `pip install .` used to reinstall the
        sequential objects. Remember the flags in build_temp and rebuild everything when they change."""
        stamp = os.path.join(self.build_temp, "fastnn_build_flags.txt")
        wanted = " ".join(flags)
        try:
            with open(stamp) as f:
                previous = f.read()
        except OSError:
            previous = None
        if previous != wanted:
            self.force = True
            os.makedirs(self.build_temp, exist_ok=True)
            with open(stamp, "w") as f:
                f.write(wanted)

    def _write_build_info(self, openmp_on, openmp_note, cflags, ldflags):
        compiler = self.compiler
        cc = getattr(compiler, "compiler_so", None) or [compiler.compiler_type]
        version = ""
        try:
            out = subprocess.run([cc[0], "--version"], capture_output=True, text=True, timeout=30)
            version = out.stdout.splitlines()[0] if out.stdout else ""
        except Exception:
            pass
        import Cython

        info = {
            "openmp": bool(openmp_on),
            "openmp_note": openmp_note,
            "compiler": " ".join(cc[:1]),
            "compiler_version": version,
            "compile_args": list(cflags),
            "link_args": list(ldflags),
            "debug": DEBUG,
            "sanitize": SANITIZE,
            "cython_version": Cython.__version__,
            "numpy_build_version": numpy.__version__,
            "platform": sysconfig.get_platform(),
            "python": sys.version.split()[0],
        }
        # Next to the built extensions in build/lib* (so a wheel packages it);
        # run() copies it into the source tree for --inplace builds.
        self._build_info_path = os.path.join(
            os.path.dirname(self.get_ext_fullpath("fastnn._kernels._openmp")), "_build_info.py")
        os.makedirs(os.path.dirname(self._build_info_path), exist_ok=True)
        with open(self._build_info_path, "w") as f:
            f.write('"""Generated by setup.py at build time -- do not edit."""\n')
            f.write(f"BUILD_INFO = {info!r}\n")

    def run(self):
        self._build_info_path = None
        super().run()  # setuptools builds in build/lib and copies extensions for --inplace
        if self.inplace and self._build_info_path:
            target = os.path.join(HERE, "fastnn", "_kernels", "_build_info.py")
            if os.path.abspath(self._build_info_path) != os.path.abspath(target):
                shutil.copyfile(self._build_info_path, target)


# Cythonize the .pyx files in parallel where multiprocessing forks (Linux); FASTNN_CYTHON_JOBS overrides.
CYTHON_JOBS = str(os.cpu_count() or 1) if sys.platform.startswith("linux") else "0"


def _cython_outdated(sources, deps, stamp_path, stamp):
    """The .pyx files whose generated .c must be (re)written.

    cythonize alone would rewrite every .c on each `pip install .`: pip builds in a fresh
    isolated environment, whose Cython and numpy .pxd files are newer than any .c, and the new
    .c files then force a full recompile (~3 minutes on 2 cores) though nothing of fastnn changed.
    A .c is kept when it is newer than its .pyx and fastnn's own .pxd/.h files, and was written
    by this Cython version with these directives (the stamp); compiled objects are reused or
    rebuilt by the compile-flags stamp of BuildExt, which includes the numpy version.
    """
    try:
        with open(stamp_path) as f:
            same_stamp = f.read() == stamp
    except OSError:
        same_stamp = False
    newest_dep = max((os.path.getmtime(d) for d in deps), default=0.0)
    outdated = []
    for pyx in sources:
        c_file = os.path.splitext(pyx)[0] + ".c"
        if not same_stamp or not os.path.exists(c_file) or \
                os.path.getmtime(c_file) < max(os.path.getmtime(pyx), newest_dep):
            outdated.append(pyx)
    return outdated


def extensions():
    import Cython

    include_dirs = [numpy.get_include(), os.path.join("csrc"), os.path.join("fastnn", "_kernels")]
    deps = sorted(glob.glob(os.path.join("csrc", "*.h")) + glob.glob(os.path.join("fastnn", "_kernels", "*.pxd")))
    sources = sorted(glob.glob(os.path.join("fastnn", "_kernels", "*.pyx")))
    stamp_path = os.path.join("build", "fastnn_cythonize_stamp.txt")
    stamp = f"Cython {Cython.__version__} {sorted(COMPILER_DIRECTIVES.items())}"
    outdated = set(_cython_outdated(sources, deps, stamp_path, stamp))
    to_cythonize, ready = [], []
    for path in sources:
        name = os.path.splitext(path)[0].replace(os.sep, ".")
        source = path if path in outdated else os.path.splitext(path)[0] + ".c"
        ext = Extension(name, [source], include_dirs=include_dirs,
                        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")], depends=deps)
        (to_cythonize if path in outdated else ready).append(ext)
    if to_cythonize:
        to_cythonize = cythonize(to_cythonize, compiler_directives=COMPILER_DIRECTIVES, quiet=True, force=True,
                                 nthreads=int(os.environ.get("FASTNN_CYTHON_JOBS", CYTHON_JOBS)))
        os.makedirs("build", exist_ok=True)
        with open(stamp_path, "w") as f:
            f.write(stamp)
    return sorted(to_cythonize + ready, key=lambda e: e.name)


os.chdir(HERE)
setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
