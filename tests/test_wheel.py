"""What `pip install .` gives a user: the shipped weights and the app's assets inside the project's packages.

The slow tests build the way `python -m build` does (an sdist, then a wheel from the unpacked sdist), offline, with
this environment's setuptools (--no-build-isolation, --no-index), from a copy of the checkout, so the working tree
gets no build/ folder. Then the wheel is installed with --no-deps into a bare --target and the app is started from
an empty folder with that target first on PYTHONPATH (its dependencies come from this environment).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from models import weights

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"models", "explorer"}
LEFT_BEHIND = {".git", ".venv", "runs", "data", "build", "dist", ".pytest_cache", ".hypothesis"}


def shipped_names() -> set[str]:
    return {p.name for p in weights.shipped_checkpoints(ROOT / "weights")}


def _quiet_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (weights.WEIGHTS_ENV, "PYTHONPATH")}
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=_quiet_env(**env), capture_output=True, text=True, timeout=timeout)


def _copy_checkout(dst: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith((".egg-info", ".pyc"))}
        if Path(folder) == ROOT:
            skip |= LEFT_BEHIND & set(names)
        return skip

    shutil.copytree(ROOT, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> tuple[Path, Path]:
    """(sdist, wheel) built from a copy of the checkout; the wheel is built from the unpacked sdist."""
    work = tmp_path_factory.mktemp("dist")
    src = _copy_checkout(work / "checkout")
    out = work / "out"
    build_sdist = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    done = _run(["nice", "-n", "10", sys.executable, "-c", build_sdist], cwd=src)
    assert done.returncode == 0, done.stderr[-3000:]
    sdist = out / done.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}     # Python 3.10.12+ and 3.11.4+
        tar.extractall(work / "unpacked", **safe)
    (unpacked,) = (work / "unpacked").iterdir()
    done = _run(["nice", "-n", "10", sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--no-index", "--quiet", "--wheel-dir", str(out), str(unpacked)], cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


@pytest.mark.slow
def test_the_wheel_holds_the_shipped_weights_and_assets_inside_its_packages(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as zf:
        sizes = {info.filename: info.file_size for info in zf.infolist()}
    tops = {name.split("/")[0] for name in sizes}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and tops - dist_info == PACKAGES, f"top-level entries: {sorted(tops)}"

    assert shipped_names(), "the checkout has no shipped weights to compare with"
    for path in weights.shipped_checkpoints(ROOT / "weights"):
        assert sizes.get(f"models/shipped/{path.name}") == path.stat().st_size, path.name
    assert not [n for n in sizes if n.endswith(".state.safetensors")], "a training state is not a shipped model"

    qss = (ROOT / "assets" / "style.qss").read_text(encoding="utf-8")
    needed = {"icon.svg", "style.qss"} | set(re.findall(r"\{assets\}/([\w.-]+)", qss))
    for name in needed:
        assert f"explorer/assets/{name}" in sizes, name


@pytest.mark.slow
def test_the_sdist_keeps_the_layout_the_wheel_is_built_from(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"setup.py", "pyproject.toml", "assets/icon.svg", "assets/style.qss"} <= names
    assert {f"weights/{n}" for n in shipped_names()} <= names


@pytest.mark.slow
def test_the_installed_wheel_opens_a_shipped_model_from_an_empty_folder(dists, tmp_path):
    _, wheel = dists
    target, empty = tmp_path / "target", tmp_path / "empty"
    empty.mkdir()
    done = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target",
                 str(target), str(wheel)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")} - {"bin"} == PACKAGES
    before = _files(target)
    env = dict(PYTHONPATH=str(target), QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"))

    where = _run([sys.executable, "-c", "import models, explorer; print(models.__file__); print(explorer.__file__)"],
                 cwd=empty, **env)
    assert where.returncode == 0, where.stderr
    assert all(Path(line).is_relative_to(target) for line in where.stdout.split()), where.stdout

    listing = _run([sys.executable, "-m", "models", "list"], cwd=empty, **env)
    assert listing.returncode == 0, listing.stderr
    shipped = target / "models" / "shipped"
    assert f"shipped models in {shipped} (from the installed copy)" in listing.stdout
    for name in shipped_names():
        assert str(shipped / name) in listing.stdout, listing.stdout
    assert str(tmp_path / "data" / "latent-explorer" / "models") in listing.stdout

    shot = tmp_path / "shot.png"
    app = _run([sys.executable, str(target / "bin" / "latent-explorer"), "--screenshot", str(shot), "--timeout", "90"],
               cwd=empty, timeout=150, **env)
    assert app.returncode == 0, app.stdout + app.stderr
    line = app.stdout.strip().splitlines()[-1]
    model = re.fullmatch(r"wrote .* \(\d+x\d+, view \w+, (?P<model>[\w.-]+)\)", line)
    assert model and f"{model['model']}.safetensors" in shipped_names(), line
    assert shot.stat().st_size > 10_000
    assert _files(target) == before, "the app wrote into the installed package"


def _files(folder: Path) -> dict[str, int]:
    """Every file under `folder` but Python's bytecode caches, with its modification time."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


# ---------------------------------------------------------------------------------------------------------------
# where the shipped models are found, and where a user's own models go (fast)

def test_weights_come_from_the_flag_then_the_environment_then_the_checkout_then_the_installed_copy(
        monkeypatch, tmp_path):
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    assert weights.checkout_root() == ROOT
    assert weights.locate_weights() == (ROOT / "weights", "checkout")
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "env"))
    assert weights.locate_weights() == (tmp_path / "env", "environment")
    assert weights.locate_weights(tmp_path / "flag") == (tmp_path / "flag", "flag")
    monkeypatch.delenv(weights.WEIGHTS_ENV)
    monkeypatch.setattr(weights, "checkout_root", lambda: None)      # as in site-packages: no pyproject.toml
    assert weights.locate_weights() == (Path(weights.__file__).resolve().parent / "shipped", "installed")
    assert weights.weights_dir() == weights.installed_weights_dir()


def test_user_models_go_under_the_data_folder_as_qt_finds_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert weights.user_models_dir() == tmp_path / "xdg" / "latent-explorer" / "models"
    monkeypatch.setenv("XDG_DATA_HOME", "relative")                    # the XDG spec says to ignore it
    assert weights.user_models_dir() == tmp_path / "home" / ".local" / "share" / "latent-explorer" / "models"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert weights.user_data_dir() == tmp_path / "home" / "Library" / "Application Support"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert weights.user_data_dir() == tmp_path / "local"
    made = weights.user_models_dir(create=True)
    assert made.is_dir() and made == tmp_path / "local" / "latent-explorer" / "models"
    assert not made.is_relative_to(Path(weights.__file__).resolve().parent)


def test_user_data_folder_matches_qt_on_this_machine(monkeypatch, tmp_path):
    qt = pytest.importorskip("PySide6.QtCore")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    location = qt.QStandardPaths.StandardLocation.GenericDataLocation
    assert Path(qt.QStandardPaths.writableLocation(location)) == weights.user_data_dir()


def test_models_list_names_each_shipped_model_and_its_file(capsys, monkeypatch, tmp_path):
    from models.cli import main

    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"shipped models in {ROOT / 'weights'} (from the checkout's weights/):")
    for name in shipped_names():
        assert str(ROOT / "weights" / name) in out
    assert "Variational autoencoder" in out
    assert main(["list", "--weights", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"no models in {tmp_path} (from --weights)\n"
