"""The families by name: a leaf module that imports every family, and that no family imports back.

    >>> from models.registry import FAMILIES, build
    >>> vae = build("vae", {"latent_dim": 2})

A checkpoint names its family; loading looks the name up here to rebuild `Model(Config(**meta["config"]))`.
Adding a family: its module, then one line in `_FAMILIES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ae import AE, AEConfig
from .cae import CAE, CAEConfig
from .classifier import Classifier, ClassifierConfig
from .core import Model, config_from_dict
from .ddpm import DDPM, DDPMConfig
from .gan import GAN, GANConfig
from .vae import VAE, VAEConfig
from .vaegan import VAEGAN, VAEGANConfig


@dataclass(frozen=True)
class Family:
    """A family's name bound to its config class, model class and what the UI calls it."""

    name: str
    config_cls: type
    model_cls: type[Model]
    title: str                      # e.g. "Variational autoencoder"


_FAMILIES = (
    Family("ae", AEConfig, AE, "Autoencoder"),
    Family("cae", CAEConfig, CAE, "Convolutional autoencoder"),
    Family("vae", VAEConfig, VAE, "Variational autoencoder"),
    Family("gan", GANConfig, GAN, "Generative adversarial network"),
    Family("vaegan", VAEGANConfig, VAEGAN, "VAE-GAN"),
    Family("ddpm", DDPMConfig, DDPM, "Diffusion model (DDPM)"),
    Family("classifier", ClassifierConfig, Classifier, "Classifier"),
)
FAMILIES: dict[str, Family] = {f.name: f for f in _FAMILIES}
assert all(f.model_cls.family == f.name for f in _FAMILIES), "a model class names another family than its entry"


def build(family: str, config: Any) -> Model:
    """A fresh, untrained model of `family` with `config` (an instance or a dict of its fields)."""
    fam = FAMILIES[family]
    if isinstance(config, dict):
        config = config_from_dict(fam.config_cls, config)
    return fam.model_cls(config)
