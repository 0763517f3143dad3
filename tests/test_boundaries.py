"""The border between the two halves, checked on the syntax tree (comments and strings cannot fool it):
`models/` never imports Qt or pyqtgraph; in `explorer/`, only `explorer/engine/` imports torch or `models`,
except the torch-free `models.catalog`; the engine never imports the UI (state, window, views). Relative imports
are resolved, so `from ..state import X` counts as `explorer.state`."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from models.catalog import CAPABILITIES


ROOT = Path(__file__).resolve().parent.parent
QT = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph")
TORCH = ("torch", "torchvision", "models")
TORCH_FREE = ("models.catalog", "models.weights", "models.atomic",   # plain values, folders, atomic saves
              "models.images")                                      # the one reader of users' pictures


def imported_modules(source: str, filename: str = "<source>", package: str = "") -> set[str]:
    """Every module a file imports: import statements anywhere (also inside functions) and
    importlib.import_module("x") / __import__("x") calls with a literal name. A relative import is resolved
    against `package` (the file's own package, e.g. "explorer.views"); `from . import x` names `package.x`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and package:
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1])
            if node.module:
                found.add(f"{base}.{node.module}")
            else:
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def package_of(path: Path) -> str:
    """The dotted package a file belongs to: explorer/views/map/view.py -> explorer.views.map."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(encoding="utf-8"), str(path), package_of(path))


def offending(modules: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in banned)


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_scan_sees_through_comments_strings_and_functions():
    source = '''
# import torch
"""import PySide6"""
text = "from models import core"
def later():
    import torch.nn as nn
    from models.checkpoint import load
    importlib.import_module("pyqtgraph")
from . import sibling
from ..state import AppState
'''
    mods = imported_modules(source)
    assert offending(mods, TORCH) == ["models.checkpoint", "torch.nn"]
    assert offending(mods, QT) == ["pyqtgraph"]
    assert offending(imported_modules("import modelsx\nimport torchaudio_like as t"), TORCH) == []
    resolved = imported_modules(source, package="explorer.engine")
    assert {"explorer.engine.sibling", "explorer.state"} <= resolved


def test_models_never_imports_qt():
    files = python_files(ROOT / "models")
    assert files, "models/ has no Python files?"
    bad = {str(p.relative_to(ROOT)): offending(imports_of(p), QT) for p in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_engine_imports_torch_or_models_beyond_the_catalog():
    explorer = ROOT / "explorer"
    engine = explorer / "engine"
    files = [p for p in python_files(explorer) if engine not in p.parents]
    assert any(p.name == "window.py" for p in files) and any(p.name == "state.py" for p in files)
    bad = {str(p.relative_to(ROOT)): [m for m in offending(imports_of(p), TORCH) if m not in TORCH_FREE]
           for p in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_engine_never_imports_the_ui():
    files = python_files(ROOT / "explorer" / "engine")
    ui = ("explorer.state", "explorer.window", "explorer.views", "explorer.app")
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imports_of(p) if m.startswith(ui)) for p in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_catalog_and_the_ui_modules_load_no_torch():
    code = ("import sys, models.catalog, models.weights, models.atomic, models.images, explorer.state, "
            "explorer.window, explorer.engine.worker; "
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def capability_literals(source: str) -> list[int]:
    """Lines where a capability's name is typed as a string in a test such as `"encode" in caps`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            if isinstance(node.left, ast.Constant) and node.left.value in CAPABILITIES:
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "can" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and arg.value in CAPABILITIES:
                lines.append(node.lineno)
    return lines


def test_the_ui_names_capabilities_through_the_catalog():
    assert capability_literals('ok = "encode" in info.capabilities\nx = info.can("critic")') == [1, 2]
    assert capability_literals("ok = ENCODE in info.capabilities") == []
    files = [p for p in python_files(ROOT / "explorer") if (ROOT / "explorer" / "engine") not in p.parents]
    bad = {str(p.relative_to(ROOT)): capability_literals(p.read_text(encoding="utf-8")) for p in files}
    assert {k: v for k, v in bad.items() if v} == {}
