"""Dense autoencoder: the summariser and the reconstructor, with nothing pulling its latent space into shape."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .core import DECODE, ENCODE, SAMPLE, LatentModel, Posterior
from .nets import dense_decoder, dense_encoder


@dataclass(frozen=True)
class AEConfig:
    latent_dim: int = 2
    hidden: tuple[int, ...] = (512, 256)
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be at least 1")


def reconstruction_nats(logits: Tensor, x: Tensor, reduction: Literal["mean", "none"] = "mean") -> Tensor:
    """-log p(x | z) under independent Bernoulli pixels, summed over pixels, in nats.

    reduction "mean": averaged over the batch, a scalar (the training loss); "none": per image, (B, C, H, W) -> (B,).
    """
    if reduction == "mean":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    if reduction == "none":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)
    raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}")


class PointAutoencoder(LatentModel):
    """What every point autoencoder shares: z = f(x), x^ = sigmoid(g(z)), trained on reconstruction nats alone.

    A subclass only builds its bodies as `self.encoder` (image -> (B, d)) and `self.decoder` (z -> logits).
    """

    capabilities = frozenset({ENCODE, DECODE, SAMPLE})

    def encode(self, x: Tensor) -> Posterior:
        """A point in latent space: z = f(x). No spread, so nothing fills the gaps between codes."""
        return Posterior(self.encoder(x))

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x).mu)

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=settings.lr)}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        opt = optimizers["model"]
        loss = reconstruction_nats(self.decoder(self.encoder(x)), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"recon": loss.item()}


class AE(PointAutoencoder):
    family = "ae"
    def __init__(self, config: AEConfig) -> None:
        super().__init__(config)
        self.encoder = dense_encoder(config.image_shape, config.hidden, config.latent_dim)
        self.decoder = dense_decoder(config.latent_dim, config.hidden, config.image_shape)
