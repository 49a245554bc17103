"""The shape of the code: imports point down the layers, no private name is imported across modules, ruff passes.

The layer order is written once, here (the README's layout table describes it):

| folder | may import (besides itself and the package base ``facetwin/files.py``, ``facetwin/lazy.py``, ``facetwin/ray_tasks.py``) |
|---|---|
| ``sim/`` | nothing of facetwin |
| ``audio/`` | ``sim`` |
| ``envs/`` | ``sim``, ``audio`` |
| ``agents/`` | ``sim``, ``audio``, ``envs`` |
| ``sim2real/`` | all of the above and ``hardware`` |
| ``hardware/`` | ``sim`` |
| ``facetwin/`` (CLI), ``benchmarks/``, ``tests/`` | anything |
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "sim": set(),
    "audio": {"sim"},
    "envs": {"sim", "audio"},
    "agents": {"sim", "audio", "envs"},
    "sim2real": {"sim", "audio", "envs", "agents", "hardware"},
    "hardware": {"sim"},
}
BASE = {"files", "lazy", "ray_tasks"}  # facetwin/files.py, lazy.py, ray_tasks.py: import nothing of facetwin, usable by every layer


def _package(path: Path) -> list[str]:
    """The import package of a source file: ``audio/voices.py`` -> facetwin.audio, ``facetwin/cli/x.py`` ->
    facetwin.cli (the top-level folders are subpackages of facetwin)."""
    folders = list(path.relative_to(ROOT).parts[:-1])
    return folders if folders[:1] == ["facetwin"] else ["facetwin", *folders]


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute facetwin module, imported names) of every facetwin import in a file, relative ones
    (``from .sing import x``) resolved."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = _package(path)[: len(_package(path)) - node.level + 1]
            out.append((node.lineno, ".".join(base + ([node.module] if node.module else [])),
                        [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "facetwin":
                out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "facetwin"]
    return out


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_down_the_layers(layer):
    bad = []
    for f in _sources(layer):
        for line, module, names in _imports(f):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else None
            if target is None:  # "from facetwin import X": X must be the package base
                if not set(names) <= BASE | {"__version__"}:
                    bad.append(f"{f.relative_to(ROOT)}:{line} from facetwin import {names}")
                continue
            if target in (layer, *BASE) or target in ALLOWED[layer]:
                continue
            bad.append(f"{f.relative_to(ROOT)}:{line} imports {module} ({layer}/ may import {sorted(ALLOWED[layer])})")
    assert not bad, "\n".join(bad)


def test_subpackages_export_their_public_names_lazily():
    import importlib

    for layer in (*ALLOWED,):
        pkg = importlib.import_module(f"facetwin.{layer}")
        names = getattr(pkg, "__all__", [])
        assert names, f"facetwin.{layer} exports nothing"
        for name in names:
            assert getattr(pkg, name) is not None
            assert not (ROOT / layer / f"{name}.py").exists(), f"{name} shadows the module {layer}/{name}.py"


def test_library_modules_have_no_command_line():
    """One front door per command: argparse and ``python -m`` entry points live in facetwin/cli/ only."""
    bad = []
    for layer in ALLOWED:
        for f in _sources(layer):
            tree = ast.parse(f.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                argparse_import = isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names)
                main_guard = (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                              and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")
                if argparse_import or main_guard:
                    bad.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad


def test_the_package_base_imports_nothing_of_facetwin():
    for name in BASE:
        assert _imports(ROOT / "facetwin" / f"{name}.py") == []


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for folder in (*ALLOWED, "facetwin", "benchmarks"):
        for f in _sources(folder):
            for line, module, names in _imports(f):
                private = [n for n in names if n.startswith("_") and n != "__version__"]
                if private:
                    bad.append(f"{f.relative_to(ROOT)}:{line} from {module} import {private}")
    assert not bad, "\n".join(bad)


def test_ruff_passes():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the test extra: pip install -e '.[test]'"
    res = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80  # the def line through the last line of the body, docstring included


def test_modules_and_functions_stay_small():
    """Rooms with one job (issue 12): no package module over 500 lines, no function over 80."""
    bad = []
    for folder in (*ALLOWED, "facetwin"):
        for f in _sources(folder):
            text = f.read_text(encoding="utf-8")
            if (n := len(text.splitlines())) > MAX_MODULE_LINES:
                bad.append(f"{f.relative_to(ROOT)}: {n} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                        bad.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not bad, "\n".join(bad)
