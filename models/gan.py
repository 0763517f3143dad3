"""DCGAN-style GAN: the forger (generator G) and the detective (discriminator D), trained against each other.

G is the conv VAE's decoder (models.nets.ConvDecoder) with the same 16-d latent, so the app compares training
objectives, not architectures. D is the conv encoder body ending in one logit (models.nets.Discriminator).

Two losses, chosen by the config. `"ns"`, the non-saturating pair of Goodfellow et al. 2014:
    L_D = -log D(x) - log(1 - D(G(z))),      L_G = -log D(G(z)),
written with softplus on logits l: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).
`"hinge"` (Lim & Ye 2017; Miyato et al. 2018), on logits:
    L_D = E[max(0, 1 - l(x))] + E[max(0, 1 + l(G(z)))],      L_G = -E[l(G(z))].
Either way `critic(x)` is sigmoid(l(x)): above 1/2 means "real".

A careful GAN's other habits are options too: spectral norm in D (`spectral_norm`), an exponential moving
average of G's weights that decodes once training stops (`ema_decay`; Karras et al. 2018, Yazici et al. 2019),
separate learning rates for the two players (TTUR, Heusel et al. 2017: the `lr_d` training knob), and a
detective wider than the forger (`d_channels`): G stays the decoder the other families share, while D, which
only judges, may grow. The defaults are the original DCGAN, so a checkpoint written before the options existed
loads as it was.

`arch "dcgan"` is Radford et al.'s all-convolutional pair in pytorch/examples' layout (models.nets.DCGANGenerator,
DCGANDiscriminator): how a generator trained there comes in (models.reference_models). A model may also come
without its detective (`detective` false): it decodes and samples, and has no CRITIC capability.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import CRITIC, DECODE, SAMPLE, LatentModel
from .ema import add_average, update_average
from .nets import ConvDecoder, DCGANDiscriminator, DCGANGenerator, Discriminator, check_conv_stages, dcgan_size

GAN_LOSSES = ("ns", "hinge")


@dataclass(frozen=True)
class GANConfig:
    latent_dim: int = 16
    channels: tuple[int, ...] = (32, 64)
    image_shape: tuple[int, int, int] = (1, 28, 28)
    loss: Literal["ns", "hinge"] = "ns"     # non-saturating (Goodfellow) or hinge
    spectral_norm: bool = False             # spectral norm on every layer of D
    ema_decay: float = 0.0                  # > 0: keep `ema`, an average of G's weights, and decode with it
    d_channels: tuple[int, ...] = ()        # D's widths; empty: the decoder's `channels`
    arch: Literal["conv", "dcgan"] = "conv"  # the shared conv decoder, or pytorch/examples' DCGAN pair
    detective: bool = True                  # false: a generator alone (imported without its discriminator)

    def __post_init__(self) -> None:
        check_conv_config(self)
        if self.arch not in ("conv", "dcgan"):
            raise ValueError(f"arch must be 'conv' or 'dcgan', not {self.arch!r}")
        if self.arch == "dcgan":
            _, h, w = self.image_shape
            for name, widths in (("channels", self.channels), ("d_channels", self.d_channels)):
                if widths and not h == w == dcgan_size(widths):
                    raise ValueError(f"a DCGAN with {len(widths)} stages in {name} draws "
                                     f"{dcgan_size(widths)}x{dcgan_size(widths)} pictures, not {h}x{w}")
            if self.spectral_norm:
                raise ValueError("spectral_norm is offered for arch 'conv' only")


def check_conv_config(config) -> None:
    """The GAN's and VAE-GAN's config check: a latent, conv stages that fit the image (D's too), a known loss,
    an EMA decay in [0, 1)."""
    if config.latent_dim < 1:
        raise ValueError("latent_dim must be at least 1")
    check_conv_stages(config.image_shape, config.channels)
    if config.d_channels:
        check_conv_stages(config.image_shape, config.d_channels)
    if config.loss not in GAN_LOSSES:
        raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)}, not {config.loss!r}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {config.ema_decay}")


def detective_channels(config) -> tuple[int, ...]:
    """D's widths: `d_channels`, or the decoder's `channels` when it is empty."""
    return tuple(config.d_channels) or tuple(config.channels)


def real_loss(logits: Tensor, loss: str = "ns") -> Tensor:
    """The loss for calling these images real, averaged: -log D = softplus(-l) ("ns"), or max(0, 1 - l)."""
    return F.softplus(-logits).mean() if loss == "ns" else F.relu(1.0 - logits).mean()


def fake_loss(logits: Tensor, loss: str = "ns") -> Tensor:
    """The loss for calling these images fake, averaged: -log(1 - D) = softplus(l) ("ns"), or max(0, 1 + l)."""
    return F.softplus(logits).mean() if loss == "ns" else F.relu(1.0 + logits).mean()


def fooling_loss(logits: Tensor, loss: str = "ns") -> Tensor:
    """The forger's loss on its fakes' logits: non-saturating -log D(G(z)), or the hinge generator's -l."""
    return F.softplus(-logits).mean() if loss == "ns" else -logits.mean()


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


@contextlib.contextmanager
def kept_buffers(*modules: nn.Module) -> Iterator[None]:
    """Run these modules forward without changing their state: buffers (BatchNorm's running statistics,
    spectral norm's vectors) are put back afterwards, so a slow-motion step leaves the other network as it was."""
    saved = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


def gan_optimizer(params, settings, lr: float | None = None) -> torch.optim.Adam:
    """Adam with beta1 = 0.5, as DCGAN (Radford et al. 2016) found steadier for adversarial games.

    `lr` overrides settings.lr (TTUR gives the discriminator its own); the `beta1` knob overrides 0.5.
    """
    return torch.optim.Adam(params, lr=settings.lr if lr is None else lr,
                            betas=(settings.knob("beta1", 0.5), 0.999))


def discriminator_lr(settings) -> float:
    """TTUR: the `lr_d` knob, else the shared settings.lr."""
    return float(settings.knob("lr_d", settings.lr))


def load_fitting(model: nn.Module, weights: dict[str, Tensor], keep: tuple[str, ...]) -> None:
    """Load `weights` into every tensor of `model` whose name does not start with one of `keep`, and
    refuse, naming them, any that are missing, left over or of another shape: a half-taken generator would train
    silently wrong."""
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(keep)}
    misfits = sorted(k for k in own.keys() | weights.keys()
                     if k not in own or k not in weights or own[k].shape != weights[k].shape)
    if misfits:
        raise ValueError(f"the source's forger does not fit this model: {', '.join(misfits[:4])}")
    model.load_state_dict(weights, strict=False)


class AveragedGenerator:
    """Mixin for models whose generator network (`self.<averaged>`) may have a weight average, `self.ema`
    (models.ema), when `config.ema_decay` > 0.

    Decoding uses the average in eval mode (a finished model, previews, the app) and the live weights while
    training, so the game is played with the live generator and shown with the smoothed one.
    """

    averaged: str = "G"

    def _add_average(self, decay: float) -> None:
        if decay > 0:
            add_average(self, getattr(self, self.averaged))

    def take_generator(self, source: nn.Module, detective: bool | None = None) -> None:
        """Start from a finished model's generator: everything of `source` but its detective D (the generator,
        its average and update count, a VAE-GAN's encoder), keeping this model's own, fresh D, which sees flaws
        the old one had stopped punishing. With `detective`, the source's D comes along too; None takes it
        only from a source of another family (a GAN handed to a VAE-GAN, whose new part is its encoder)."""
        if detective is None:
            detective = source.family != self.family
        weights = {k: v for k, v in source.state_dict().items() if detective or not k.startswith("D.")}
        load_fitting(self, weights, keep=() if detective else ("D.",))

    def decoding_network(self) -> nn.Module:
        live = getattr(self, self.averaged)
        return live if self.training or not hasattr(self, "ema") else self.ema

    def update_average(self) -> None:
        if self.config.ema_decay > 0:
            update_average(self, getattr(self, self.averaged), self.config.ema_decay)


class GAN(AveragedGenerator, LatentModel):
    family = "gan"
    capabilities = frozenset({DECODE, SAMPLE, CRITIC})
    old_prefixes = {"G_ema.": "ema."}           # the average's name in files written before it had one

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        if config.arch == "dcgan":
            self.G = DCGANGenerator(config.latent_dim, config.channels, config.image_shape[0])
        else:
            self.G = ConvDecoder(config.latent_dim, config.channels, config.image_shape)
        if not config.detective:
            self.capabilities = self.capabilities - {CRITIC}    # this one model's: no D to ask
        elif config.arch == "dcgan":
            self.D = DCGANDiscriminator(config.image_shape, detective_channels(config))
        else:
            self.D = Discriminator(config.image_shape, detective_channels(config), config.spectral_norm)
        self._add_average(config.ema_decay)

    def decode(self, z: Tensor) -> Tensor:
        """G(z) as an image in [0, 1] (the averaged generator's, when the model has one and is not training):
        a sigmoid of the conv decoder's logits, or the DCGAN's tanh output moved from [-1, 1] by (x + 1) / 2."""
        out = self.decoding_network()(z)
        return 0.5 * (out + 1.0) if self.config.arch == "dcgan" else torch.sigmoid(out)

    def critic(self, x: Tensor) -> Tensor:
        """D(x): the detective's probability that each image is real, shape (B,)."""
        if not self.config.detective:
            raise ValueError("this GAN came without its detective (discriminator), so it has no verdict to give")
        return torch.sigmoid(self.D(x))

    def discriminator_loss(self, x: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """L_D on a real and a fake batch; also returns the real and fake logits."""
        real_logits, fake_logits = self.D(x), self.D(fake)
        loss = real_loss(real_logits, self.config.loss) + fake_loss(fake_logits, self.config.loss)
        return loss, real_logits, fake_logits

    def generator_loss(self, fake: Tensor) -> Tensor:
        """L_G: non-saturating -log D(G(z)) (strong gradients while D still wins easily), or hinge -l(G(z))."""
        return fooling_loss(self.D(fake), self.config.loss)

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        if not self.config.detective:
            raise ValueError("this GAN came without its detective (discriminator), so there is no game to train; "
                             "import it with its discriminator (python -m models import ... --critic FILE)")
        return {"generator": gan_optimizer(self.G.parameters(), settings),
                "discriminator": gan_optimizer(self.D.parameters(), settings, discriminator_lr(settings))}

    def _fakes(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """G(z) for a fresh z ~ N(0, I), one per real image."""
        z = torch.randn((x.shape[0], self.latent_dim), generator=generator, device=x.device)
        return self.decode(z)

    def _update_D(self, x: Tensor, fake: Tensor, optimizers) -> dict[str, float]:
        """One step of D on L_D(x, fake); `fake` carries no graph into G."""
        loss_d, real_logits, fake_logits = self.discriminator_loss(x, fake)
        opt_d = optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        return {"discriminator": loss_d.item(), "d_real": torch.sigmoid(real_logits).mean().item(),
                "d_fake": torch.sigmoid(fake_logits).mean().item()}

    def _update_G(self, fake: Tensor, optimizers) -> dict[str, float]:
        """One step of G on L_G(fake) through a D whose weights get no gradient; then the average follows G."""
        with frozen(self.D):
            fake_logits = self.D(fake)
            loss_g = fooling_loss(fake_logits, self.config.loss)
        opt_g = optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        self.update_average()
        return {"generator": loss_g.item(), "d_fake": torch.sigmoid(fake_logits).mean().item()}

    def discriminator_step(self, x: Tensor, optimizers, generator: torch.Generator,
                           settings=None) -> dict[str, float]:
        """Slow motion, the detective's half alone: one D update on (x, G(z)) for fresh z; G is not touched."""
        with torch.no_grad(), kept_buffers(self.G):
            fake = self._fakes(x, generator)
        return self._update_D(x, fake, optimizers)

    def generator_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        """Slow motion, the forger's half alone: one G update against the current D, whose weights stay put."""
        fake = self._fakes(x, generator)
        with kept_buffers(self.D):
            return self._update_G(fake, optimizers)

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        """The two halves with the same z: one D update on (x, G(z)), then one G update against the updated D."""
        fake = self._fakes(x, generator)
        d = self._update_D(x, fake.detach(), optimizers)
        g = self._update_G(fake, optimizers)
        return {"generator": g["generator"], "discriminator": d["discriminator"], "d_real": d["d_real"],
                "d_fake": d["d_fake"]}
