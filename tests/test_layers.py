"""The layer map is true: every import in genlab/ goes down the list in the README's Layout section,
and no package imports itself in a cycle.

The README's block is the one this repository owns and checks. ../shared/DESIGN.md is read-only to a
session and written elsewhere; where its "Layers" block differs from the code, the session's note says
how, instead of a test here failing on a file no change to this repository can fix.

Imports are read with `ast`: top-level ones, those inside functions, and ``importlib.import_module``
/ ``__import__`` calls with a constant name (so an import cannot hide from the check).
"""
from __future__ import annotations

import ast
import functools
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def read_layers(markdown: str) -> list[list[str]]:
    """The layer block (a fenced block that starts with ``genlab/``), top (lowest) first: each entry
    is the names on one line (``data/``, ``io.py``); continuation lines are indented further."""
    m = re.search(r"```\ngenlab/\n(.*?)```", markdown, re.S)
    if m is None:
        raise AssertionError("no ```genlab/ ...``` layer block found")
    layers = []
    for line in m.group(1).splitlines():
        if re.match(r"^  \S", line):
            names = []
            for tok in line.split():
                if not (tok.endswith("/") or tok.endswith(".py")):
                    break
                names.append(tok)
            assert names, f"a layer line names no module: {line!r}"
            layers.append(names)
    return layers


def unit_of(module: str) -> str:
    """``genlab.data.spec`` -> ``data/``; ``genlab.io`` -> ``io.py``; ``genlab`` -> ``__init__.py``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__.py"
    return parts[1] + ("/" if _is_package(parts[1]) else ".py")


_PACKAGES: set[str] = set()


def _is_package(name: str) -> bool:
    return name in _PACKAGES


def module_imports(path: Path, module: str, is_init: bool) -> set[str]:
    """Every genlab module that ``path`` imports (absolute names)."""
    return set(_imports_in(path.read_text(), module, is_init))


@functools.lru_cache(maxsize=None)  # the planted-violation tests re-check copies that differ in one file
def _imports_in(source: str, module: str, is_init: bool) -> frozenset[str]:
    package = module if is_init else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, module.replace(".", "/") + ("/__init__.py" if is_init else ".py"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "genlab":
                continue
            if node.module is None or target == "genlab":  # `from . import models`: submodules
                found.update(f"{target}.{a.name}" for a in node.names)
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "genlab")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                target = str(node.args[0].value)
                if target.startswith("genlab"):
                    found.add(target)
    return frozenset(found)


def check_layers(pkg_root: Path, layers: list[list[str]]) -> list[str]:
    """Violations in the package at ``pkg_root`` (a ``genlab/`` folder): upward or sideways
    imports between layers, modules the list does not place, and import cycles inside a package."""
    _PACKAGES.clear()
    _PACKAGES.update(p.name for p in pkg_root.iterdir() if (p / "__init__.py").exists())
    rank = {name: i for i, line in enumerate(layers) for name in line}
    graph: dict[str, set[str]] = {}
    problems = []
    for path in sorted(pkg_root.rglob("*.py")):
        rel = path.relative_to(pkg_root.parent).with_suffix("")
        parts = list(rel.parts)
        is_init = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_init else parts)
        unit = unit_of(module) if module != "genlab" else "__init__.py"
        if unit not in rank:
            problems.append(f"{path.relative_to(pkg_root.parent)}: {unit} is not in the layer list")
            continue
        graph[module] = set()
        for target in module_imports(path, module, is_init):
            t_unit = unit_of(target)
            if t_unit == unit:
                graph[module].add(target)
            elif t_unit not in rank:
                problems.append(f"{module} imports {target}: {t_unit} is not in the layer list")
            elif rank[t_unit] >= rank[unit]:
                how = "sideways (same line)" if rank[t_unit] == rank[unit] else "up"
                problems.append(f"{module} ({unit}) imports {target} ({t_unit}): {how} the layer list")
    problems += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (importing a package runs its __init__,
    so an import of ``a.b`` also depends on ``a``: both edges count)."""
    edges = {m: set() for m in graph}
    for m, ts in graph.items():
        for t in ts:
            parts = t.split(".")
            for k in range(2, len(parts) + 1):  # a.b.c also imports a.b (its __init__)
                prefix = ".".join(parts[:k])
                if prefix in graph and prefix != m and not m.startswith(prefix + "."):
                    edges[m].add(prefix)
    found, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                found.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
    return found


def test_the_readme_lists_every_layer_once():
    layers = read_layers(README.read_text())
    names = [n for layer in layers for n in layer]
    assert len(names) == len(set(names)), "a module is placed on two layers"
    assert names.index("data/") < names.index("models/") < names.index("train/") < names.index("cli/")


def test_every_import_goes_down_the_layer_list():
    problems = check_layers(ROOT / "genlab", read_layers(README.read_text()))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("plant, expect", [
    (("nn/mlp.py", "\n\ndef _planted():\n    from ..cli import main\n"), "imports genlab.cli"),
    (("models/gmm.py", "\nimport importlib\n_x = importlib.import_module('genlab.evaluate')\n"), "imports genlab.evaluate"),
    (("data/spec.py", "\nfrom .splits import split\n"), "import cycle"),
    (("version.py", "\nfrom genlab.data import spec\n"), "imports genlab.data"),
])
def test_the_check_catches_a_planted_violation(tmp_path, plant, expect):
    pkg = tmp_path / "genlab"
    shutil.copytree(ROOT / "genlab", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    file, code = plant
    with open(pkg / file, "a") as f:
        f.write(code)
    problems = check_layers(pkg, read_layers(README.read_text()))
    assert any(expect in p for p in problems), problems
