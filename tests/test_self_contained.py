"""The repository explains itself: no citations of the semantics note that lived outside it, and every
pointer into ``docs/`` leads to a section that exists.

Code, tests and docs used to cite a Keras-semantics note by section number; the note was never in
the repository. What a reader needs from it is in docs/keras_semantics.md, and code points at its
sections as ``docs/keras_semantics.md#<anchor>``. Both tests read the checkout this file is in.
"""
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTE = "KERAS" + "_SEMANTICS"  # spelled in two parts so that this file does not cite it
NOT_YET = set()
# Version control, build output, caches and virtual environments are not the repository's text.
SKIPPED_DIRS = {".git", "build", "dist", "__pycache__", ".pytest_cache", ".benchmarks"}
_POINTER = re.compile(r"\b(docs/[\w./-]+\.md)#([\w-]+)")


def _skipped_dir(name):
    return name in SKIPPED_DIRS or name.endswith(".egg-info") or name.startswith(".venv")


def _generated(path):
    """Cython's output next to a .pyx (the .c file, the .html annotation) is not a source."""
    return path.suffix in (".c", ".cpp", ".html") and path.with_suffix(".pyx").exists()


def repository_texts():
    """(path relative to the repository, text) of every text file of the checkout."""
    if not (REPO / "fastnn").is_dir():
        pytest.fail(f"no fastnn checkout at {REPO}")
    for root, dirs, files in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(d))
        for name in sorted(files):
            path = Path(root) / name
            data = path.read_bytes()
            if b"\0" in data or _generated(path):  # binary (images, .npz, .so) or generated
                continue
            yield path.relative_to(REPO).as_posix(), data.decode("utf-8", errors="replace")


def _anchors(markdown):
    """The fragment ids a Markdown page defines: explicit ``<a id>`` tags and GitHub's heading slugs."""
    ids = set(re.findall(r'<a\s+id="([^"]+)"', markdown))
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        ids.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return ids


def test_nothing_cites_the_semantics_note_outside_the_repository():
    offenders = [f"{path}:{n}" for path, text in repository_texts() if path not in NOT_YET
                 for n, line in enumerate(text.splitlines(), 1) if NOTE in line]
    assert not offenders, (f"these lines cite {NOTE}, which is not in the repository; point at "
                           f"docs/keras_semantics.md#<section> instead (or say why in one line):\n"
                           + "\n".join(offenders))


def test_pointers_into_docs_name_sections_that_exist():
    texts = dict(repository_texts())
    broken, seen = [], 0
    for path, text in texts.items():
        for n, line in enumerate(text.splitlines(), 1):
            for page, anchor in _POINTER.findall(line):
                seen += 1
                if page not in texts:
                    broken.append(f"{path}:{n}: {page} does not exist")
                elif anchor not in _anchors(texts[page]):
                    broken.append(f"{path}:{n}: {page} has no section #{anchor}")
    assert seen, "found no docs/<page>.md#<anchor> pointers at all: is the pattern still right?"
    assert not broken, "\n".join(broken)
