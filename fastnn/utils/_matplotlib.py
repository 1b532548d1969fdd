"""Import matplotlib on demand for fastnn's plotting helpers.

matplotlib is an optional extra (``pip install "fastnn[plot]"``): ``import
fastnn`` never imports it (it costs ~0.3 s, more than all of fastnn), and the
plotting functions call :func:`import_pyplot` / :func:`import_matplotlib`
when they run. Without matplotlib they raise an ImportError that names the
function and the extra (Keras raises ImportError for a missing pydot too).

Backend: on a Linux machine with no display (CI, ssh, a container) and no
backend chosen by the user, Agg is selected before pyplot is imported, so the
examples run headless. A backend the user chose (``MPLBACKEND``, a
matplotlibrc, ``matplotlib.use()``, Jupyter's inline backend, which ipykernel
sets through ``MPLBACKEND``) is never overridden.
"""
import os
import sys

PLOT_EXTRA = 'pip install "fastnn[plot]"'


def missing_matplotlib_message(owner, why="needs matplotlib"):
    return (f"{owner} {why}, which is not installed. Install fastnn's plotting extra with "
            f"`{PLOT_EXTRA}` (or `pip install matplotlib`).")


def import_matplotlib(owner, why="needs matplotlib"):
    """The ``matplotlib`` module; ImportError naming ``owner`` and the extra if it is missing."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(missing_matplotlib_message(owner, why) + f" (import failed: {exc})") from exc
    return matplotlib


def _backend_chosen(matplotlib):
    """True if a backend was chosen explicitly (env, rc file, ``use()``), not left to auto-selection."""
    if os.environ.get("MPLBACKEND"):
        return True
    try:  # matplotlib >= 3.10
        return matplotlib.get_backend(auto_select=False) is not None
    except TypeError:
        pass
    get_or_none = getattr(matplotlib.rcParams, "_get_backend_or_none", None)  # matplotlib 3.5-3.9
    if get_or_none is not None:
        return get_or_none() is not None
    return True  # unknown matplotlib: do not touch the user's setup


def _headless():
    # Same test matplotlib uses (cbook._get_running_interactive_framework): only Linux/BSD
    # X11/Wayland sessions can lack a display; macOS and Windows always have one.
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return False


def import_pyplot(owner):
    """``matplotlib.pyplot``, with the Agg backend selected first when headless and unset."""
    matplotlib = import_matplotlib(owner)
    if "matplotlib.pyplot" not in sys.modules and _headless() and not _backend_chosen(matplotlib):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
