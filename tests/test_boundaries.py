"""The border between the two halves, checked on the syntax tree (comments and strings cannot fool it):
`models/` never imports Qt or pyqtgraph; in `explorer/`, only `explorer/engine/` imports torch or `models`."""
from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
QT = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph")
TORCH = ("torch", "torchvision", "models")


def imported_modules(source: str, filename: str = "<source>") -> set[str]:
    """Every absolute module a file imports: import statements anywhere (also inside functions) and
    importlib.import_module("x") / __import__("x") calls with a literal name. Relative imports stay inside the
    package and are left out."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


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
'''
    mods = imported_modules(source)
    assert offending(mods, TORCH) == ["models.checkpoint", "torch.nn"]
    assert offending(mods, QT) == ["pyqtgraph"]
    assert offending(imported_modules("import modelsx\nimport torchaudio_like as t"), TORCH) == []


def test_models_never_imports_qt():
    files = python_files(ROOT / "models")
    assert files, "models/ has no Python files?"
    bad = {str(p.relative_to(ROOT)): offending(imported_modules(p.read_text(encoding="utf-8"), str(p)), QT)
           for p in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_engine_imports_torch_or_models():
    explorer = ROOT / "explorer"
    engine = explorer / "engine"
    files = [p for p in python_files(explorer) if engine not in p.parents]
    assert any(p.name == "window.py" for p in files) and any(p.name == "state.py" for p in files)
    bad = {str(p.relative_to(ROOT)): offending(imported_modules(p.read_text(encoding="utf-8"), str(p)), TORCH)
           for p in files}
    assert {k: v for k, v in bad.items() if v} == {}
