"""Latent Explorer's model library: torch only, usable from a script, a notebook or a headless GPU box.

    >>> import models
    >>> model = models.load("weights/vae-2d.safetensors")
    >>> images = model.sample(16)          # (16, 1, 28, 28) in [0, 1]
"""
from .core import FAMILIES, Family, LatentModel, Posterior, build, reparameterize  # noqa: F401
from . import ae  # noqa: F401  (each import registers its family)
from . import cae  # noqa: F401
from . import vae  # noqa: F401
from . import gan  # noqa: F401
from . import vaegan  # noqa: F401
from . import ddpm  # noqa: F401
from . import classifier  # noqa: F401  (not a latent model: capability "classify", no decode)
from .checkpoint import CheckpointError, load, read_metadata, save  # noqa: F401

__all__ = ["FAMILIES", "CheckpointError", "Family", "LatentModel", "Posterior", "build", "load",
           "read_metadata", "reparameterize", "save"]
