"""matplotlib is optional and lazy: `import fastnn` never loads it; headless runs get Agg unless chosen."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn

pytest.importorskip("matplotlib")
ROOT = str(Path(fastnn.__file__).resolve().parents[1])


def _run(code, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    environ.update(env, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd="/")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_import_fastnn_loads_neither_matplotlib_nor_ipython():
    out = _run("import sys, fastnn, fastnn.utils as u; u.plot_model, u.plot_history, u.plot_predictions; "
               "print(sorted(m for m in ('matplotlib', 'IPython') if m in sys.modules) "
               "or 'none')")
    assert out == ["none"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland hosts only")
def test_headless_without_a_chosen_backend_gets_agg():
    code = ("from fastnn.utils._matplotlib import import_pyplot; import matplotlib; import_pyplot('t'); "
            "print(matplotlib.get_backend().lower())")
    assert _run(code) == ["agg"]


def test_backend_chosen_by_the_user_is_kept():
    code = ("from fastnn.utils._matplotlib import import_pyplot; import matplotlib; import_pyplot('t'); "
            "print(matplotlib.get_backend().lower())")
    assert _run(code, MPLBACKEND="svg") == ["svg"]
    code = ("import matplotlib; matplotlib.use('pdf'); from fastnn.utils import plot_history; "
            "plot_history({'loss': [1.0, 0.5]}); print(matplotlib.get_backend().lower())")
    assert _run(code) == ["pdf"]


def test_headless_detection(monkeypatch):
    from fastnn.utils import _matplotlib

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert _matplotlib._headless() is True
    monkeypatch.setenv("DISPLAY", ":0")
    assert _matplotlib._headless() is False
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("DISPLAY")
    assert _matplotlib._headless() is False


def test_mplbackend_counts_as_a_choice(monkeypatch):
    import matplotlib

    from fastnn.utils import _matplotlib

    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # what ipykernel sets
    assert _matplotlib._backend_chosen(matplotlib) is True


def test_missing_matplotlib_error_keeps_the_cause(monkeypatch):
    from fastnn.utils import _matplotlib

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    message = r"^f needs matplotlib, which is not installed\. .*fastnn\[plot\]"
    with pytest.raises(ImportError, match=message) as info:
        _matplotlib.import_pyplot("f")
    assert isinstance(info.value.__cause__, ImportError)
