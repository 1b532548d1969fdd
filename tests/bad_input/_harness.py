"""Running bad-input cases: each is ``(id, call, expected exception class, message regex)``.

A case passes when ``call()`` raises the class (or a subclass) with a message matching the regex (``re.search``,
so a regex names the problem, not the whole sentence). Warnings count as exceptions (pytest's
``filterwarnings = error``; the subprocess runner sets the same filter), so a case can expect a warning too.

Cases that could crash the interpreter (malformed sparse structures, hostile files) run in one child process per
module: the child runs every case of the batch and prints one JSON line per case as it finishes, so a crash is
pinned to the case that was running and the cases before it still report.
"""
import json
import os
import re
import subprocess
import sys
import warnings

import pytest

import fastnn

_TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The child imports the fastnn this process imported (an installed one, or the built source tree).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
_TIMEOUT = 120


def ids(cases):
    names = [c[0] for c in cases]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise AssertionError(f"duplicate case ids: {sorted(duplicated)}")
    return names


def check(case):
    """Run one case in this process."""
    _, call, exc_class, pattern = case
    with pytest.raises(exc_class) as info:
        call()
    message = str(info.value)
    assert re.search(pattern, message, re.S), (f"{type(info.value).__name__} with a message not matching "
                                               f"{pattern!r}:\n{message}")


def _run_child(module, table, names):
    """Child side: run the named cases of ``module.table``, one JSON line each."""
    import importlib

    warnings.simplefilter("error")
    cases = {c[0]: c for c in getattr(importlib.import_module(module), table)}
    for name in names:
        try:
            cases[name][1]()
        except BaseException as exc:  # noqa: BLE001 (reported to the parent, which judges it)
            result = {"id": name, "raised": [k.__name__ for k in type(exc).__mro__], "message": str(exc)}
        else:
            result = {"id": name, "raised": None, "message": ""}
        print(json.dumps(result), flush=True)


def run_isolated(module, table, cases, tmp_dir):
    """Run ``cases`` (all from ``module.table``) in one child process; {id: result or crash description}."""
    names = [c[0] for c in cases]
    code = "import sys; from bad_input._harness import _run_child; _run_child(sys.argv[1], sys.argv[2], sys.argv[3:])"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_PARENT, _TESTS_DIR,
                                                                    os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", code, module, table, *names], capture_output=True,
                          text=True, timeout=_TIMEOUT, env=env, cwd=str(tmp_dir))
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            results[entry["id"]] = entry
    if len(results) < len(names):
        crashed = names[len(results)]
        results[crashed] = {"crash": f"the process ended with code {proc.returncode} while running this case; "
                                     f"stderr:\n{proc.stderr[-3000:]}"}
    return results


def check_isolated(case, results):
    """Judge one case from the child's results."""
    name, _, exc_class, pattern = case
    result = results.get(name)
    assert result is not None, "not run: an earlier case of the batch crashed the process"
    assert "crash" not in result, result["crash"]
    assert result["raised"] is not None, "no exception was raised"
    expected = exc_class if isinstance(exc_class, tuple) else (exc_class,)
    assert any(k.__name__ in result["raised"] for k in expected), (
        f"raised {result['raised'][0]}, expected {' or '.join(k.__name__ for k in expected)}: {result['message']}")
    assert re.search(pattern, result["message"], re.S), (f"{result['raised'][0]} with a message not matching "
                                                         f"{pattern!r}:\n{result['message']}")
