"""The documents cannot rot: the ```python blocks of docs/*.md run, the diffprog functions and
classes docs/*.md name exist, the layer picture of docs/ARCHITECTURE.md is tests/test_layers.py's,
and every relative link and every file path that README.md, CONTRIBUTING.md and docs/*.md
mention exists inside the repository (nothing points outside it, such as ``../shared``).

Paths are recognized as words with a slash and a file extension (``tests/domains.py``,
``benchmarks/results/benchmarks.png``), resolved from the repository root or from the
document's own folder; links are Markdown's ``[text](target)``, resolved from the document's
folder, with their ``#anchor`` checked against the headings of the target document.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from diffprog.core import primitives

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# a path: components joined by slashes, the last with a file extension; not part of a URL,
# of a longer path or of a dotted name (the look-behind), nor followed by more of a path
_EXTENSIONS = "py|md|toml|txt|json|cfg|ini|yml|yaml|png|svg|csv|sh|c|h"
_PATH = re.compile(r"(?<![\w./~$:@<>-])((?:\.\.?/)*[\w.-]+(?:/[\w.-]+)+\.(?:" + _EXTENSIONS
                   + r"))(?![\w/-])")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def code_blocks(text: str, language: str = "python") -> list[str]:
    """The fenced code blocks of ``text`` in ``language``, in order."""
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def _prose(text: str) -> str:
    """``text`` without its fenced blocks (code there is checked by running it)."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in _HEADING.findall(_prose(path.read_text()))}


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def link_problems(doc: Path, text: str, root: Path = ROOT) -> list[str]:
    """What is wrong with the relative links of ``text`` (the contents of ``doc``)."""
    problems = []
    for target in _LINK.findall(_prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part) if file_part else doc
        if not _inside(path, root):
            problems.append(f"{doc.name}: link {target!r} points outside the repository")
        elif not path.exists():
            problems.append(f"{doc.name}: link {target!r}: {file_part} does not exist")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{doc.name}: link {target!r}: no heading #{anchor} in "
                            f"{path.name}")
    return problems


def path_problems(doc: Path, text: str, root: Path = ROOT) -> list[str]:
    """What is wrong with the file paths ``text`` mentions (links included, code too)."""
    problems = []
    for mention in sorted(set(_PATH.findall(text))):
        candidates = [root / mention, doc.parent / mention]
        if not any(_inside(c, root) for c in candidates):
            problems.append(f"{doc.name}: {mention!r} is outside the repository")
        elif not any(_inside(c, root) and c.exists() for c in candidates):
            problems.append(f"{doc.name}: {mention!r} does not exist in the repository")
    # absolute paths next to the repository (its parent folder: other checkouts, notes)
    outside = str(root.resolve().parent) + "/"
    if outside != "/" and outside in text:
        problems.append(f"{doc.name}: mentions {outside}..., a path outside the repository")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_exist_inside_the_repository(doc: Path) -> None:
    assert link_problems(doc, doc.read_text()) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_mentioned_paths_exist_inside_the_repository(doc: Path) -> None:
    assert path_problems(doc, doc.read_text()) == []


def test_the_documents_exist_and_link_each_other() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    assert {"docs/ARCHITECTURE.md", "docs/ADDING_A_PRIMITIVE.md"} <= names
    readme = (ROOT / "README.md").read_text()
    assert "docs/ARCHITECTURE.md" in readme and "docs/ADDING_A_PRIMITIVE.md" in readme


def test_the_checkers_find_what_is_wrong(tmp_path: Path) -> None:
    # guards the checks themselves: each kind of bad reference is reported
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "A.md").write_text("# Title\n\n## Some `code` here\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "real.py").write_text("")
    doc = tmp_path / "docs" / "B.md"
    text = ("[ok](A.md#some-code-here) [gone](missing.md) [bad anchor](A.md#nowhere)\n"
            "[out](../../shared/notes.md) [web](https://example.org/x.py)\n"
            "`tests/real.py` is here, `tests/absent.py` is not, `../../shared/x.py` is outside\n"
            f"and so is {tmp_path.parent}/notes/RULES.md\n"
            "```python\nignored = 'tests/in_code_blocks_too.py'\n```\n")
    links = link_problems(doc, text, tmp_path)
    assert len(links) == 3, links
    assert any("missing.md" in p for p in links)
    assert any("#nowhere" in p for p in links)
    assert any("outside" in p and "shared" in p for p in links)
    paths = path_problems(doc, text, tmp_path)
    assert any("tests/absent.py" in p for p in paths), paths
    assert any("../../shared/x.py" in p and "outside" in p for p in paths), paths
    assert any("in_code_blocks_too.py" in p for p in paths), paths
    assert any(str(tmp_path.parent) in p for p in paths), paths
    assert not any("real.py" in p or "example.org" in p for p in paths), paths
    assert slug("The NumPy-API function") == "the-numpy-api-function"
    assert code_blocks(text) == ["ignored = 'tests/in_code_blocks_too.py'\n"]


def diagram_layers(text: str) -> list[set[str]]:
    """The modules of each layer in the picture of docs/ARCHITECTURE.md, lowest first: the
    lines of the first plain code block under "## Layers", numbered 1 (bottom) upwards, with
    continuation lines and without the parenthesized remarks."""
    section = text.split("\n## Layers", 1)[1]
    picture = _FENCE.search(section).group(2)
    layers: dict[int, str] = {}
    current = None
    for line in picture.splitlines():
        number = re.match(r"\s*(\d+)\s", line)
        if number:
            current = int(number.group(1))
            layers[current] = line[number.end():]
        elif current is not None and not set(line.strip()) <= {"-"}:
            layers[current] += " " + line.strip()
    return [set(re.findall(r"diffprog(?:\.\w+)*", re.sub(r"\([^)]*\)", "", layers[k])))
            for k in sorted(layers)]


def test_the_architecture_picture_is_the_enforced_layering() -> None:
    from tests.test_layers import LAYERS
    picture = diagram_layers((ROOT / "docs" / "ARCHITECTURE.md").read_text())
    assert picture == [set(layer) for layer in LAYERS]


# -- the names the documents give exist ----------------------------------------------------------

_DOTTED = re.compile(r"`((?:diffprog\.)?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?:\(\))?`")
_MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for p in (ROOT / "diffprog").rglob("*.py"))


def _roots(first: str) -> list:
    """What the first part of a dotted name can stand for: a diffprog module named so (by its
    last components: ``interp`` is diffprog.kernels.interp), an attribute of the package
    (``config``), or a class of that name in a loaded diffprog module (``ReverseTrace``)."""
    import diffprog
    found = [importlib.import_module(m) for m in _MODULES
             if m == first or m.endswith("." + first)]
    if hasattr(diffprog, first):
        found.append(getattr(diffprog, first))
    for name, module in list(sys.modules.items()):
        if name.startswith("diffprog") and isinstance(getattr(module, first, None), type):
            found.append(getattr(module, first))
    return found


def missing_names(text: str) -> list[str]:
    """The backquoted dotted names of diffprog (``core.bind``, ``jit._signature``,
    ``ReverseTrace.backward``) in ``text`` that do not exist. Names whose first part is not
    diffprog's (``np.add.at``, ``prim.impl``) and file names are left alone."""
    missing = []
    for name in sorted(set(_DOTTED.findall(text))):
        parts = name.split(".")
        if re.fullmatch(_EXTENSIONS, parts[-1]):
            continue  # a file name
        if parts[0] == "diffprog":
            k = max(k for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in _MODULES)
            roots, rest = [importlib.import_module(".".join(parts[:k]))], parts[k:]
        else:
            roots, rest = _roots(parts[0]), parts[1:]
        if roots and not any(_has_path(r, rest) for r in roots):
            missing.append(name)
    return missing


def _has_path(obj: object, attributes: list[str]) -> bool:
    for a in attributes:
        if not hasattr(obj, a) and isinstance(obj, types.ModuleType) and \
                f"{obj.__name__}.{a}" in _MODULES:
            importlib.import_module(f"{obj.__name__}.{a}")  # a submodule not imported yet
        if not hasattr(obj, a):
            return False
        obj = getattr(obj, a)
    return True


# Documents that name functions of diffprog.distributed: checking them imports it, which needs
# the dask extra (the `dask` marker: make test runs them; test-fast and test-floor have no dask).
NEEDS_DASK = {"SCALING.md"}


def _with_extras(doc: Path) -> object:
    return pytest.param(doc, marks=pytest.mark.dask) if doc.name in NEEDS_DASK else doc


@pytest.mark.parametrize("doc", [_with_extras(d) for d in DOCS if d.parent.name == "docs"],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_named_functions_and_classes_exist(doc: Path) -> None:
    assert missing_names(doc.read_text()) == []


def test_the_name_check_finds_renamed_functions() -> None:
    text = ("`core.bind`, `ReverseTrace.backward`, `diffprog.kernels.tiers.Tiered`, `np.add.at`, "
            "`kernels.steps.sequence`")
    assert missing_names(text) == []
    text += ", `core.no_such_bind`, `ReverseTrace.sweep`, `diffprog.kernels.tiers.Tired`"
    assert missing_names(text) == ["ReverseTrace.sweep", "core.no_such_bind",
                                   "diffprog.kernels.tiers.Tired"]


# -- the code of the documents runs ------------------------------------------------------------

RUNNABLE = [d for d in DOCS if d.parent.name == "docs" and code_blocks(d.read_text())]


def test_the_worked_example_is_runnable_code() -> None:
    assert ROOT / "docs" / "ADDING_A_PRIMITIVE.md" in RUNNABLE
    blocks = code_blocks((ROOT / "docs" / "ADDING_A_PRIMITIVE.md").read_text())
    assert len(blocks) >= 2 and "Primitive(" in blocks[0] and "check_grads" in blocks[1]


@pytest.mark.slow  # the worked example compiles fused kernels (numba)
@pytest.mark.parametrize("doc", RUNNABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(doc: Path) -> None:
    namespace: dict = {"__name__": f"docs_{doc.stem}"}
    before = set(primitives)
    try:
        # the examples say where they expect nan and inf
        with np.errstate(divide="raise", over="raise", invalid="raise"):
            for k, block in enumerate(code_blocks(doc.read_text())):
                exec(compile(block, f"{doc.relative_to(ROOT)} (python block {k + 1})", "exec"),
                     namespace)
    finally:
        # the example's primitives are for this test only: the registry goes back as it was
        for name in set(primitives) - before:
            del primitives[name]
