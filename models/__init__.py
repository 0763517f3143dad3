"""Latent Explorer's model library: torch only, usable from a script, a notebook or a headless GPU box.

    >>> import models
    >>> model = models.load("weights/vae-2d.safetensors")
    >>> images = model.sample(16)          # (16, 1, 28, 28) in [0, 1]

The names below load on first use, so `import models.catalog` (what an app's UI thread imports) pulls in no
torch; `models.load` and friends import it the moment they are asked for.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "FAMILIES": "registry", "Family": "registry", "LatentModel": "core", "Posterior": "core", "build": "registry",
    "reparameterize": "core",
    "CheckpointError": "checkpoint", "load": "checkpoint", "read_metadata": "checkpoint", "save": "checkpoint",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        if name.startswith("_"):
            raise AttributeError(f"module 'models' has no attribute {name!r}")
        try:                                   # `models.vaegan.X` after a bare `import models`, as before
            return import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'models' has no attribute {name!r}") from None
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
