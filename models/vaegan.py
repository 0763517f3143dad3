"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

A conv VAE whose decoder is also a GAN's generator, and whose reconstruction error is measured on a hidden
layer Dis_l of the discriminator instead of on pixels, so "similar" means "similar to the detective", not
"close pixel by pixel": sharper reconstructions than a VAE's. With x~ = Dec(z), z ~ q(z|x), and x_p = Dec(z_p),
z_p ~ N(0, I):
    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -log N(Dis_l(x); Dis_l(x~), I) = 1/2 ||Dis_l(x) - Dis_l(x~)||^2   (up to a constant)
    L_GAN   = log D(x) + log(1 - D(x~)) + log(1 - D(x_p))
Each network gets its own share (the paper's Algorithm 1):
    encoder: beta L_prior + L_llike;   decoder: gamma L_llike - L_GAN;   discriminator: -L_GAN (it maximises L_GAN).
beta is 1 in the paper; as in a beta-VAE (Higgins et al. 2017), a larger one pulls the codes of the data towards
N(0, I), so that prior draws land where the decoder has learned to draw. The `mmd` knob (0 in the paper) adds
mmd MMD^2(q(z), N(0, I)) to the encoder's loss, pulling the batch's codes as a whole towards the prior (WAE-MMD).
The decoder's -L_GAN is used in its non-saturating form, -log D(x~) - log D(x_p). All three gradients are taken
at the same weights, then all three networks step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .core import CRITIC, DECODE, ENCODE, SAMPLE, reparameterize
from .gan import (AveragedGenerator, check_conv_config, detective_channels, discriminator_lr, fake_loss,
                  fooling_loss, gan_optimizer, kept_buffers, load_fitting, real_loss)
from .nets import ConvDecoder, Discriminator, conv_encoder
from .vae import GaussianEncoderDecoder, kl_divergence, mmd_to_prior

# Weight of the feature reconstruction against the GAN loss in the decoder's loss (the paper's eq. 9 as written).
# Measured over 400 steps on Fashion-MNIST: at 1e-2 and 0.1 the GAN term drowns the reconstruction and
# reconstructions do not yet resemble their inputs; at 1 they do, and the samples are no worse.
DEFAULT_GAMMA = 1.0


@dataclass(frozen=True)
class VAEGANConfig:
    latent_dim: int = 16
    channels: tuple[int, ...] = (32, 64)
    image_shape: tuple[int, int, int] = (1, 28, 28)
    loss: Literal["ns", "hinge"] = "ns"     # the GAN's loss pair (models.gan)
    spectral_norm: bool = False             # spectral norm on every layer of D
    ema_decay: float = 0.0                  # > 0: keep `ema`, an average of the decoder, and decode with it
    d_channels: tuple[int, ...] = ()        # D's widths; empty: the decoder's `channels`

    def __post_init__(self) -> None:
        check_conv_config(self)


@dataclass(frozen=True)
class LossWeights:
    """How the terms of Algorithm 1 are weighed: gamma in the decoder's loss, beta and mmd in the encoder's."""

    gamma: float = DEFAULT_GAMMA
    beta: float = 1.0
    mmd: float = 0.0


def loss_weights(settings) -> LossWeights:
    """The `gamma` and `mmd` knobs and settings.beta, the KL weight (the paper's weights without settings)."""
    if settings is None:
        return LossWeights()
    return LossWeights(float(settings.knob("gamma", DEFAULT_GAMMA)), float(settings.beta),
                       float(settings.knob("mmd", 0.0)))


class VAEGAN(AveragedGenerator, GaussianEncoderDecoder):
    """The conv VAE's encoder and decoder (encode, decode and reconstruct are the VAE's), a discriminator D."""

    family = "vaegan"
    capabilities = frozenset({ENCODE, DECODE, SAMPLE, CRITIC})
    averaged = "decoder"
    old_prefixes = {"decoder_ema.": "ema."}     # the average's name in files written before it had one

    def __init__(self, config: VAEGANConfig) -> None:
        super().__init__(config)
        self.encoder = conv_encoder(config.image_shape, config.channels, 2 * config.latent_dim)
        self.decoder = ConvDecoder(config.latent_dim, config.channels, config.image_shape)
        self.D = Discriminator(config.image_shape, detective_channels(config), config.spectral_norm)
        self._add_average(config.ema_decay)

    def critic(self, x: Tensor) -> Tensor:
        """D(x): the discriminator's probability that each image is real, shape (B,)."""
        return torch.sigmoid(self.D(x))

    def losses(self, x: Tensor, eps: Tensor, z_p: Tensor, gamma: float, beta: float = 1.0,
               mmd: float = 0.0) -> dict[str, Tensor]:
        """Every term of Algorithm 1 for one batch, and each network's loss built from them.

        eps: (B, d) noise for the reparameterisation; z_p: (B, d) prior draws for the GAN's samples (and, with
        mmd > 0, the prior's side of the MMD).
        """
        post = self.encode(x)
        z = reparameterize(post.mu, post.logvar, eps)
        x_tilde = self.decode(z)
        x_p = self.decode(z_p)
        prior = kl_divergence(post.mu, post.logvar).mean()
        llike = 0.5 * (self.D.features(x) - self.D.features(x_tilde)).pow(2).sum() / x.shape[0]
        l_x, l_tilde, l_p = self.D(x), self.D(x_tilde), self.D(x_p)
        kind = self.config.loss
        encoder = beta * prior + llike
        terms = {}
        if mmd > 0:
            terms["mmd"] = mmd_to_prior(z, z_p)
            encoder = encoder + mmd * terms["mmd"]
        return {
            "encoder": encoder,
            "decoder": gamma * llike + fooling_loss(l_tilde, kind) + fooling_loss(l_p, kind),
            "discriminator": real_loss(l_x, kind) + fake_loss(l_tilde, kind) + fake_loss(l_p, kind),
            "prior": prior, "llike": llike,
            "d_real": torch.sigmoid(l_x).mean(), "d_fake": torch.sigmoid(l_p).mean(), **terms,
        }

    def take_generator(self, source: torch.nn.Module, detective: bool | None = None) -> None:
        """Start from a finished generator. From a VAE-GAN: as a GAN does (models.gan.AveragedGenerator). From a
        GAN: its G (and G's average) become the decoder, and its D the detective (unless `detective` is False),
        so that prior draws begin where they already look real; the encoder is new, and must learn to invert the
        decoder (encoder_step) before the three play Algorithm 1 together."""
        if source.family != "gan":
            super().take_generator(source, detective)
            return
        detective = detective is not False
        if detective and source.config.loss != self.config.loss:
            raise ValueError(f"the GAN's detective was trained with the {source.config.loss} loss, this VAE-GAN "
                             f"plays the {self.config.loss} loss")
        weights = {}
        for key, value in source.state_dict().items():
            if key.startswith("D."):
                if detective:
                    weights[key] = value
            else:
                weights["decoder." + key[2:] if key.startswith("G.") else key] = value
        load_fitting(self, weights, keep=("encoder.",) if detective else ("encoder.", "D."))

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder, "discriminator": self.D}

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {name: gan_optimizer(net.parameters(), settings,
                                    discriminator_lr(settings) if name == "discriminator" else None)
                for name, net in self.networks().items()}

    def discriminator_step(self, x: Tensor, optimizers, generator: torch.Generator,
                           settings=None) -> dict[str, float]:
        """Slow motion: only the detective (D) steps, on its share of Algorithm 1; encoder and decoder stay put."""
        return self._one_network_step("discriminator", x, optimizers, generator, settings)

    def encoder_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        """Only the encoder steps, on its share (beta L_prior + L_llike): it learns to invert a decoder taken
        from a GAN while the decoder and D stay put."""
        return self._one_network_step("encoder", x, optimizers, generator, settings)

    def generator_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        """Slow motion: only the forger (the decoder) steps, on its share; the encoder and D stay put."""
        return self._one_network_step("decoder", x, optimizers, generator, settings)

    def _losses_for_step(self, x: Tensor, generator: torch.Generator, settings) -> dict[str, Tensor]:
        """Every term of Algorithm 1 for batch x, with eps and z_p drawn from `generator`."""
        w = loss_weights(settings)
        shape = (x.shape[0], self.latent_dim)
        eps = torch.randn(shape, generator=generator, device=x.device)
        z_p = torch.randn(shape, generator=generator, device=x.device)
        return self.losses(x, eps, z_p, w.gamma, w.beta, w.mmd)

    def _set_grads(self, out: dict[str, Tensor], names: list[str]) -> None:
        """Each named network's gradient of its own loss only (the decoder's loss also reaches D and the encoder)."""
        nets = self.networks()
        for i, name in enumerate(names):
            params = [p for p in nets[name].parameters() if p.requires_grad]
            grads = torch.autograd.grad(out[name], params, retain_graph=i + 1 < len(names))
            for p, g in zip(params, grads):
                p.grad = g

    def _one_network_step(self, name: str, x: Tensor, optimizers, generator: torch.Generator,
                          settings) -> dict[str, float]:
        others = [net for other, net in self.networks().items() if other != name]
        with kept_buffers(*others):      # put back only after the backward pass, which reads BatchNorm's buffers
            out = self._losses_for_step(x, generator, settings)
            self._set_grads(out, [name])
        optimizers[name].step()
        if name == "decoder":
            self.update_average()
        return {k: out[k].item() for k in (name, "d_real", "d_fake")}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        """One step of Algorithm 1, weighted by loss_weights(settings): the three one-network steps' gradients,
        all taken at the same weights, then all three networks step."""
        out = self._losses_for_step(x, generator, settings)
        names = list(self.networks())
        self._set_grads(out, names)
        for name in names:
            optimizers[name].step()
        self.update_average()
        return {k: v.item() for k, v in out.items()}
