"""Variational autoencoder (Kingma & Welling 2014): each image becomes a Gaussian cloud, not a point.

The encoder gives mu and log sigma^2 per latent axis; training decodes z = mu + sigma * eps and pays a KL
penalty for straying from N(0, I), which fills the holes a plain autoencoder leaves. Dense and conv variants
share the bodies of the AE and the CAE (`nets`), so "ae-2d vs vae-2d" and "cae-16 vs conv-vae-16" compare
objectives on the same networks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .ae import reconstruction_nats
from .core import DECODE, ENCODE, SAMPLE, LatentModel, Posterior, reparameterize
from .nets import ConvDecoder, check_conv_stages, conv_encoder, dense_decoder, dense_encoder


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 2
    arch: Literal["dense", "conv"] = "dense"
    hidden: tuple[int, ...] = (512, 256)        # dense: the dense AE's sizes
    channels: tuple[int, ...] = (32, 64)        # conv: the CAE's channels
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be at least 1")
        if self.arch not in ("dense", "conv"):
            raise ValueError(f"arch must be 'dense' or 'conv', not {self.arch!r}")
        if self.arch == "conv":
            check_conv_stages(self.image_shape, self.channels)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per image, in nats, in closed form (Kingma & Welling 2014, appendix B):

        KL = -1/2 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)

    mu, logvar: (B, d) -> (B,). The one KL term of the package: the VAE and the VAE-GAN both pay it.
    """
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=1)


# Scales of the inverse multiquadratic kernel, as multiples of 2 d (its natural scale for N(0, I) in d dimensions)
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def mmd_to_prior(z: Tensor, z_prior: Tensor) -> Tensor:
    """Unbiased MMD^2 between a batch of codes z ~ q(z) and prior draws, both (B, d), with the inverse
    multiquadratic kernel k(a, b) = C / (C + ||a - b||^2) summed over C = 2 d s for s in IMQ_SCALES
    (Tolstikhin et al. 2018, WAE-MMD). The KL term pulls each image's posterior towards N(0, I); this pulls the
    codes of the whole batch, the aggregate posterior, so that prior draws land where the codes of data are.
    """
    n, d = z.shape

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        dist = torch.cdist(a, b).pow(2)
        return sum((2 * d * s) / (2 * d * s + dist) for s in IMQ_SCALES)

    off_diagonal = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    within = ((kernel(z, z) + kernel(z_prior, z_prior)) * off_diagonal).sum() / (n * (n - 1))
    return within - 2.0 * kernel(z, z_prior).mean()


class GaussianEncoderDecoder(LatentModel):
    """What the VAE and the VAE-GAN share: an encoder giving q(z | x) = N(mu, diag(sigma^2)) as one (B, 2d)
    output, and a decoder giving pixel logits. A subclass builds `self.encoder` and `self.decoder`."""

    def decoding_network(self) -> torch.nn.Module:
        """The network `decode` runs; a family that keeps an averaged decoder returns that one when not training."""
        return self.decoder

    def posterior_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)    # (B, 2d) -> two (B, d)
        return mu, logvar

    def encode(self, x: Tensor) -> Posterior:
        """q(z | x) = N(mu, diag(sigma^2)): where the image sits and how unsure the encoder is."""
        return Posterior(*self.posterior_params(x))

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoding_network()(z))

    def reconstruct(self, x: Tensor, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Decode mu (the default: the sharpest reconstruction), or a draw z ~ q(z | x) when `sample`."""
        post = self.encode(x)
        return self.decode(post.sample(generator) if sample else post.mu)


class VAE(GaussianEncoderDecoder):
    family = "vae"
    capabilities = frozenset({ENCODE, DECODE, SAMPLE})

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        d = config.latent_dim
        if config.arch == "dense":
            self.encoder = dense_encoder(config.image_shape, config.hidden, 2 * d)   # -> (B, 2d): mu, logvar
            self.decoder = dense_decoder(d, config.hidden, config.image_shape)
        else:
            self.encoder = conv_encoder(config.image_shape, config.channels, 2 * d)
            self.decoder = ConvDecoder(d, config.channels, config.image_shape)

    def _forward(self, x: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        """One draw z = mu + sigma * eps, eps ~ N(0, I) from `generator`; returns (logits, mu, logvar)."""
        mu, logvar = self.posterior_params(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return self.decoder(reparameterize(mu, logvar, eps)), mu, logvar

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """ELBO = E_q[log p(x | z)] - KL(q(z | x) || p(z)) per image in nats (B,), one-sample estimate, beta = 1.

        A lower bound on log p(x); higher is better. Call under torch.no_grad() and model.eval() to evaluate.
        """
        logits, mu, logvar = self._forward(x, generator)
        return -(reconstruction_nats(logits, x, reduction="none") + kl_divergence(mu, logvar))

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=settings.lr)}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        """Minimise the negative ELBO, recon + beta * KL, in nats per image; eps comes from `generator`, beta from
        `settings.beta` (1 without settings)."""
        beta = 1.0 if settings is None else float(settings.beta)
        opt = optimizers["model"]
        logits, mu, logvar = self._forward(x, generator)
        recon = reconstruction_nats(logits, x)
        kl = kl_divergence(mu, logvar).mean()
        loss = recon + beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}
