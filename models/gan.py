"""DCGAN-style GAN: the forger (generator G) and the detective (discriminator D), trained against each other.

G is the conv VAE's decoder (models.nets.ConvDecoder) with the same 16-d latent, so the app compares training
objectives, not architectures. D is the conv encoder body ending in one logit. Losses are the non-saturating
pair of Goodfellow et al. 2014:
    L_D = -log D(x) - log(1 - D(G(z))),      L_G = -log D(G(z)),
written with softplus on logits: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import CRITIC, DECODE, SAMPLE, LatentModel, register
from .nets import ConvDecoder, check_conv_stages, conv_encoder


@dataclass(frozen=True)
class GANConfig:
    latent_dim: int = 16
    channels: tuple[int, ...] = (32, 64)
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        check_conv_config(self.latent_dim, self.channels, self.image_shape)


def check_conv_config(latent_dim: int, channels: tuple[int, ...], image_shape: tuple[int, int, int]) -> None:
    """The GAN's and VAE-GAN's config check: a latent, and conv stages that fit the image (`nets.check_conv_stages`)."""
    if latent_dim < 1:
        raise ValueError("latent_dim must be at least 1")
    check_conv_stages(image_shape, channels)


class Discriminator(nn.Module):
    """D(x): strided LeakyReLU convs (the conv encoder's body), a hidden layer Dis_l, then one logit.

    `features(x)` is Dis_l, the last conv layer's activations flattened: the VAE-GAN measures reconstruction
    there (Larsen et al. 2016). Images enter in [0, 1] and are centred to [-1, 1] first.
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...]) -> None:
        super().__init__()
        net = conv_encoder(image_shape, channels, 1)
        self.body = net[:-1]             # convs + LeakyReLU + Flatten -> (B, C_k * H_k * W_k)
        self.head = net[-1]              # Linear -> (B, 1)

    def features(self, x: Tensor) -> Tensor:
        return self.body(2.0 * x - 1.0)

    def forward(self, x: Tensor) -> Tensor:
        """Logits, shape (B,)."""
        return self.head(self.features(x)).squeeze(1)


def real_loss(logits: Tensor) -> Tensor:
    """-log D = softplus(-logit), averaged: the loss for calling these images real."""
    return F.softplus(-logits).mean()


def fake_loss(logits: Tensor) -> Tensor:
    """-log(1 - D) = softplus(logit), averaged: the loss for calling these images fake."""
    return F.softplus(logits).mean()


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Let gradients flow *through* these modules without computing them *for* their weights."""
    flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def gan_optimizer(params, settings) -> torch.optim.Adam:
    """Adam with beta1 = 0.5, as DCGAN (Radford et al. 2016) found steadier for adversarial games."""
    return torch.optim.Adam(params, lr=settings.lr, betas=(0.5, 0.999))


@register("gan", GANConfig, "Generative adversarial network")
class GAN(LatentModel):
    capabilities = frozenset({DECODE, SAMPLE, CRITIC})

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        self.G = ConvDecoder(config.latent_dim, config.channels, config.image_shape)
        self.D = Discriminator(config.image_shape, config.channels)

    def decode(self, z: Tensor) -> Tensor:
        """G(z) as an image in [0, 1]."""
        return torch.sigmoid(self.G(z))

    def critic(self, x: Tensor) -> Tensor:
        """D(x): the detective's probability that each image is real, shape (B,)."""
        return torch.sigmoid(self.D(x))

    def discriminator_loss(self, x: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """L_D on a real and a fake batch; also returns the real and fake logits."""
        real_logits, fake_logits = self.D(x), self.D(fake)
        return real_loss(real_logits) + fake_loss(fake_logits), real_logits, fake_logits

    def generator_loss(self, fake: Tensor) -> Tensor:
        """Non-saturating L_G = -log D(G(z)): strong gradients while D still wins easily."""
        return real_loss(self.D(fake))

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {"generator": gan_optimizer(self.G.parameters(), settings),
                "discriminator": gan_optimizer(self.D.parameters(), settings)}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator) -> dict[str, float]:
        """One D update on (x, G(z)), then one G update against the updated D, with the same z."""
        z = torch.randn((x.shape[0], self.latent_dim), generator=generator, device=x.device)
        fake = self.decode(z)
        loss_d, real_logits, fake_logits = self.discriminator_loss(x, fake.detach())
        opt_d = optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        with frozen(self.D):
            loss_g = self.generator_loss(fake)
        opt_g = optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"generator": loss_g.item(), "discriminator": loss_d.item(),
                "d_real": torch.sigmoid(real_logits).mean().item(),
                "d_fake": torch.sigmoid(fake_logits).mean().item()}
