"""No import cycle among the project's own modules (`models/` and `explorer/`), read from the syntax tree:
import statements anywhere, inside functions too, relative ones resolved, `from package import module` counted
as an import of that module. A cycle is how a library turns into one knot: each module in it can only be
understood, tested or moved with all the others."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "explorer")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
            if "__pycache__" not in p.parts}


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules one file imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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


def test_the_finder_sees_a_cycle_through_a_function_level_and_a_relative_import(tmp_path, monkeypatch):
    pkg = tmp_path / "models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text("def build():\n    from .registry import FAMILIES\n    return FAMILIES\n")
    (pkg / "registry.py").write_text("from models import core\nFAMILIES = {}\n")
    (pkg / "leaf.py").write_text("from . import core\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    mods = {module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    graph = {m: imports(p, set(mods)) for m, p in mods.items()}
    assert cycles(graph) == [["models.core", "models.registry"]]


def test_no_import_cycle_among_the_projects_modules():
    mods = project_modules()
    assert "models.registry" in mods and "explorer.window" in mods
    graph = {m: imports(p, set(mods)) for m, p in mods.items()}
    assert cycles(graph) == []


def test_core_imports_no_family_and_the_registry_is_a_leaf():
    mods = project_modules()
    families = {"models.ae", "models.cae", "models.vae", "models.gan", "models.vaegan", "models.ddpm",
                "models.classifier"}
    assert not imports(mods["models.core"], set(mods)) & families
    importers = {m for m, p in mods.items() if m.startswith("models.") and "models.registry" in imports(p, set(mods))}
    assert not importers & families
