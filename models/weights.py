"""Where the shipped weights live: --weights DIR, else $LATENT_EXPLORER_WEIGHTS, else the repo's `weights/`."""
from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_ENV = "LATENT_EXPLORER_WEIGHTS"


def repo_weights_dir() -> Path:
    """The `weights/` folder beside the package: right for a source checkout and an editable install."""
    return Path(__file__).resolve().parent.parent / "weights"


def weights_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder to read shipped checkpoints from; the first of: `explicit`, the environment, the repo."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    return repo_weights_dir()


def shipped_checkpoints(directory: str | os.PathLike | None = None) -> list[Path]:
    """The .safetensors checkpoints in `directory` (default: `weights_dir()`), sorted by name; [] if none.

    Training-state files (`*.state.safetensors`) are not models and are left out.
    """
    folder = Path(directory) if directory is not None else weights_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.safetensors")
                  if p.is_file() and not p.name.endswith(".state.safetensors"))
