"""The build's facts reach the user: show_config(), and a one-line warning at import when the compiler
could not give OpenMP (a build that silently runs on one thread), but not for a build made sequential on
purpose (FASTNN_NO_OPENMP=1, which the install already announced)."""
import io
import sys
import types
import warnings

import pytest

import fastnn
from fastnn import _config


def _with_build_info(monkeypatch, **info):
    module = types.ModuleType("fastnn._kernels._build_info")
    module.BUILD_INFO = info
    monkeypatch.setitem(sys.modules, "fastnn._kernels._build_info", module)


def test_a_build_whose_compiler_lacked_openmp_warns_at_import(monkeypatch):
    _with_build_info(monkeypatch, openmp=False,
                     openmp_note="CompileError: clang: error: unsupported option '-fopenmp'")
    with pytest.warns(RuntimeWarning, match=r"built without OpenMP, so it trains on one thread \(CompileError: "
                                            r"clang.*reinstall with an OpenMP compiler"):
        _config._warn_if_openmp_missing()


@pytest.mark.parametrize("info", [dict(openmp=True, openmp_note="nthreads=2 max=2"),
                                  dict(openmp=False, openmp_note="disabled by FASTNN_NO_OPENMP=1")])
def test_no_warning_with_openmp_or_a_deliberately_sequential_build(monkeypatch, info):
    _with_build_info(monkeypatch, **info)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _config._warn_if_openmp_missing()


def test_show_config_names_the_openmp_state():
    out = io.StringIO()
    fastnn.show_config(file=out)
    assert "OpenMP" in out.getvalue() and "fastnn configuration" in out.getvalue()
