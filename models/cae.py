"""Convolutional autoencoder: the AE's objective on the shared conv bodies, so it sees strokes and edges locally.

Its decoder is `nets.ConvDecoder`, the same network the conv VAE, the GAN's generator and the VAE-GAN use, so
"cae-16" against "conv-vae-16" or "gan" compares training objectives, not architectures.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ae import PointAutoencoder
from .nets import ConvDecoder, check_conv_stages, conv_encoder


@dataclass(frozen=True)
class CAEConfig:
    latent_dim: int = 16
    channels: tuple[int, ...] = (32, 64)
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be at least 1")
        check_conv_stages(self.image_shape, self.channels)


class CAE(PointAutoencoder):
    """The dense AE's encode/decode/training on conv bodies: z = f(x) is still a point, nothing fills the gaps."""

    family = "cae"

    def __init__(self, config: CAEConfig) -> None:
        super().__init__(config)
        self.encoder = conv_encoder(config.image_shape, config.channels, config.latent_dim)
        self.decoder = ConvDecoder(config.latent_dim, config.channels, config.image_shape)
