"""Where models live: the shipped weights the app opens on, and the folder for models a user trains or opens.

Shipped weights are looked for in this order (`locate_weights` says which rule won):

1. `--weights DIR` (the `explicit` argument);
2. `$LATENT_EXPLORER_WEIGHTS`;
3. the checkout's `weights/`, when this package runs from a source checkout (or an editable install);
4. the copy installed inside this package, `models/shipped/` (a wheel maps the checkout's `weights/` there).

The installed copy is read-only as far as the app is concerned: a model a user trains or saves goes where the user
says, by default into `user_models_dir()`, never into site-packages.
"""
from __future__ import annotations

import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import NamedTuple

WEIGHTS_ENV = "LATENT_EXPLORER_WEIGHTS"
APP_FOLDER = "latent-explorer"          # the app's organisation name, as QSettings and QStandardPaths use it
SHIPPED_PACKAGE_DIR = "shipped"         # models/shipped/ in a wheel: the checkout's weights/ (see setup.py)


class WeightsLocation(NamedTuple):
    """A weights folder and the rule that chose it: 'flag', 'environment', 'checkout' or 'installed'."""

    path: Path
    source: str


def checkout_root() -> Path | None:
    """The source checkout this package runs from (the folder holding this project's pyproject.toml), else None.

    An installed copy sits in site-packages, where there is no pyproject.toml beside the package, so a stray
    `site-packages/weights/` of some other project is never taken for ours.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if re.search(r"""^name\s*=\s*["']latent-explorer["']""", pyproject, re.MULTILINE) else None


def repo_weights_dir() -> Path:
    """The `weights/` folder beside the package: right for a source checkout and an editable install."""
    return Path(__file__).resolve().parent.parent / "weights"


def installed_weights_dir() -> Path:
    """The shipped weights inside the installed package (`models/shipped/`); it may not exist in a checkout."""
    return Path(str(resources.files(__package__ or "models").joinpath(SHIPPED_PACKAGE_DIR)))


def locate_weights(explicit: str | os.PathLike | None = None) -> WeightsLocation:
    """The folder to read shipped checkpoints from, and which rule chose it (the order is the module's)."""
    if explicit:
        return WeightsLocation(Path(explicit).expanduser(), "flag")
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return WeightsLocation(Path(env).expanduser(), "environment")
    if checkout_root() is not None:
        return WeightsLocation(repo_weights_dir(), "checkout")
    return WeightsLocation(installed_weights_dir(), "installed")


def weights_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder to read shipped checkpoints from: `explicit`, the environment, the checkout, the installed copy."""
    return locate_weights(explicit).path


def user_data_dir() -> Path:
    """The user's data folder, as Qt's QStandardPaths.GenericDataLocation finds it (without importing Qt).

    Linux and other Unix: $XDG_DATA_HOME, else ~/.local/share; macOS: ~/Library/Application Support;
    Windows: %LOCALAPPDATA% (models are large, so not the roaming profile).
    """
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) if base else home / "AppData" / "Local"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"   # the XDG spec ignores a relative one


def user_models_dir(create: bool = False) -> Path:
    """The default folder for models a user trains or saves: <user data folder>/latent-explorer/models.

    Never inside the installed package. With `create`, the folder is made (with its parents) if missing.
    """
    folder = user_data_dir() / APP_FOLDER / "models"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def shipped_checkpoints(directory: str | os.PathLike | None = None) -> list[Path]:
    """The .safetensors checkpoints in `directory` (default: `weights_dir()`), sorted by name; [] if none.

    Training-state files (`*.state.safetensors`) are not models and are left out.
    """
    folder = Path(directory) if directory is not None else weights_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.safetensors")
                  if p.is_file() and not p.name.endswith(".state.safetensors"))
