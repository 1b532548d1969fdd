"""fastnn's modules import one another one way only, and compiled kernels do not import their twin.

Both tests read the source next to this folder (the structure of the code, not of an install).

The import graph has a node per module of the package: each ``.py`` file, and each compiled
``.pyx`` module through its Python-level imports (``cimport`` is resolved by the compiler and runs
nothing at import time). Module A has an edge to module B when an ``import`` or ``from ... import``
anywhere in A names B: at module level, or inside a function, since a lazy import that comes back
is still a circle, only a later one. Importing ``a.b.c`` first runs the ``__init__`` of the package
``a.b``, so that is an edge too. Two kinds of import are left out:

* a module's own parent packages (``fastnn/__init__.py`` above all, which re-exports the whole
  API): Python has started them before the module runs, and a package importing its submodules is
  how it re-exports them. Taking a *name* from a parent package (``from fastnn import Sequential``
  or ``import fastnn`` inside fastnn) does count, since it needs that package's ``__init__`` to have
  finished;
* ``importlib.import_module`` calls, which are not statements: ``fastnn/_kernels/__init__.py`` loads
  the compiled modules that way, on first use.
"""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fastnn"
TWIN_IMPORT_ALLOWED = set()

_FROM_IMPORT = re.compile(r"^\s*from\s+(\.*[\w.]*)\s+import\s+(.+)$")
_IMPORT = re.compile(r"^\s*import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)\s*$")


def _module_name(path, package):
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package=PACKAGE):
    if not package.is_dir():
        pytest.fail(f"the package's source is not at {package}")
    return {_module_name(p, package): p for p in sorted(package.rglob("*")) if p.suffix in (".py", ".pyx")}


def _absolute(module, path, level, base):
    """The absolute name of a relative import ``from <level dots><base> import ...`` in ``module``."""
    if not level:
        return base
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{base}" if base else package


def _pyx_statements(text):
    """(level, module, names or None) of a .pyx file's Python-level imports (cimports excluded)."""
    lines = iter(text.replace("\\\n", " ").splitlines())
    for line in lines:
        line = line.split("#")[0]
        if "cimport" in line:
            continue
        while re.match(r"\s*from\s+\S+\s+import\s+\(", line) and ")" not in line:
            line += " " + next(lines).split("#")[0]  # a parenthesised list of names
        match = _FROM_IMPORT.match(line)
        if match:
            names = [n.split(" as ")[0].strip() for n in match.group(2).strip("() ").split(",")]
            dots = len(match.group(1)) - len(match.group(1).lstrip("."))
            yield dots, match.group(1).lstrip("."), [n for n in names if n]
            continue
        match = _IMPORT.match(line)
        if match:
            for name in match.group(1).split(","):
                yield 0, name.split(" as ")[0].strip(), None


def _statements(path):
    """(level, module, names or None) for every import statement of a module, at any depth."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".pyx":
        yield from _pyx_statements(text)
        return
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or "", [alias.name for alias in node.names]


def import_graph(package=PACKAGE):
    """{module: set of the package's modules it imports} (the rules are in this file's docstring)."""
    modules = _modules(package)
    root = package.name
    graph = {}
    for module, path in modules.items():
        ancestors = {module.rsplit(".", k)[0] for k in range(1, module.count(".") + 1)}
        edges = set()
        for level, base, names in _statements(path):
            base = _absolute(module, path, level, base)
            if base.split(".")[0] != root:
                continue
            submodules = [f"{base}.{n}" for n in names or () if f"{base}.{n}" in modules]
            # `from P import submodule` needs P's __init__ only as a parent; a name taken from P needs all of it
            takes_names = names is None or len(submodules) < len(names)
            for target in submodules + ([base] if takes_names or base not in ancestors else []):
                parents = [target.rsplit(".", k)[0] for k in range(1, target.count(".") + 1)]
                edges.add(target)
                edges.update(p for p in parents if p not in ancestors)
        graph[module] = {m for m in edges if m in modules and m != module}
    return graph


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _describe_cycle(graph, component):
    members = set(component)
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & members))}" for m in component)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """On a small package: module-level, lazy, relative, parent-package and .pyx imports are all edges,
    re-exports and cimports are not, and a circle closed by a lazy import is found."""
    files = {
        "__init__.py": "from pkg import a, sub\n",
        "a.py": "from pkg.sub.b import f\n",
        "sub/__init__.py": "from .b import f\n",
        "sub/b.py": "import os\n\ndef f():\n    from pkg import c\n    return c\n",
        "c.pyx": ("from pkg._shared cimport helper\nfrom pkg.d import (x,\n                   y)  # two lines\n"
                  "cdef int g() except -1:\n    import pkg.a\n    return 0\n"),
        "d.py": "from . import _shared\n",
        "_shared.py": "",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    graph = import_graph(tmp_path / "pkg")
    assert graph["pkg"] == {"pkg.a", "pkg.sub"}                   # the root's re-exports
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"}             # a target's parent package runs first
    assert graph["pkg.sub"] == {"pkg.sub.b"}                      # relative import
    assert graph["pkg.sub.b"] == {"pkg.c"}                        # lazy, inside a function
    assert graph["pkg.c"] == {"pkg.d", "pkg.a"}                   # .pyx: parenthesised list, cdef body
    assert graph["pkg.d"] == {"pkg._shared"}                      # `from . import` a submodule
    assert _cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub", "pkg.sub.b"]]


def test_no_module_imports_a_module_that_imports_it_back():
    graph = import_graph()
    cycles = _cycles(graph)
    assert not cycles, "import circles (module -> the members of its circle it imports):\n" + "\n".join(
        _describe_cycle(graph, c) for c in cycles)


def test_compiled_kernels_do_not_import_their_numpy_twin():
    """A compiled kernel shares its twin's argument checks through _argchecks, not by importing _reference
    (the oracle the tests compare it with must not be part of it)."""
    graph = import_graph()
    offenders = sorted(m for m, path in _modules().items() if path.suffix == ".pyx"
                       and path.name not in TWIN_IMPORT_ALLOWED and "fastnn._kernels._reference" in graph[m])
    assert not offenders, f"{offenders} import fastnn._kernels._reference; import the checks from _argchecks"
