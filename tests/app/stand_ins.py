"""Small stand-ins several app tests share."""
from __future__ import annotations

from models.catalog import DECODE, DENOISE, SAMPLE, ModelInfo


def ddpm_info(path: str = "ddpm") -> ModelInfo:
    """The ModelInfo a view gets for a small diffusion model handed to an engine's context (no file behind it)."""
    return ModelInfo(path=path, name="ddpm", family="ddpm", title="Diffusion model (DDPM)", latent_dim=784,
                     capabilities=frozenset({DECODE, SAMPLE, DENOISE}), image_shape=(1, 28, 28),
                     dataset="fashion-mnist", classes=(), has_classifier=False, classifier_reason="none here")
