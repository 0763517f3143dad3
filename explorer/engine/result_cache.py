"""Results worth keeping between runs of the app, on disk: what a checkpoint computed once, read back in
milliseconds (the encoded test set: without it, every start would import torchvision, read the data set and run
the encoder before the map could show a dot).

Entries are keyed by the checkpoint's bytes, not its name, so a retrained file never meets an old entry and a
copied one finds its own. Files are numpy archives read with allow_pickle=False and written atomically; a broken
or unreadable entry is simply computed again. $LATENT_EXPLORER_CACHE moves the folder.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

CACHE_ENV = "LATENT_EXPLORER_CACHE"
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "latent-explorer" / "results"


def checkpoint_digest(path: str | Path | None) -> str | None:
    """A short hash of the checkpoint's bytes; None when there is no such file (a model built in memory)."""
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_path(kind: str, digest: str, *parts: object) -> Path:
    tail = "-".join(str(p) for p in parts)
    return cache_dir() / kind / f"{digest}-{tail}.npz"


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry, or None when it is missing or unreadable (then the caller computes them)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        return None
    except Exception as err:  # a truncated or foreign file: recompute, and say so in the log
        log.warning("ignoring the unreadable cache entry %s: %s", path, err)
        return None


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an entry atomically (models.atomic); a cache that cannot be written only costs the next start time."""
    from models.atomic import atomic_write_path

    try:
        with atomic_write_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    except OSError as err:
        log.warning("could not keep %s for the next start: %s", path, err)
