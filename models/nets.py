"""Encoder and decoder bodies shared by the families, so that "same architecture" means the same code.

The conv decoder is the one network four families share: the CAE's and conv VAE's decoder, the GAN's generator
and the VAE-GAN's decoder/generator. Comparing them is then comparing training objectives, not architectures.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def check_conv_stages(image_shape: tuple[int, int, int], channels: tuple[int, ...]) -> None:
    """Config check for the conv bodies: they halve the image once per channel entry, so H and W must divide by 2^k."""
    if not channels or min(channels) < 1:
        raise ValueError("channels must list at least one positive width (one per conv stage)")
    _, h, w = image_shape
    k = len(channels)
    if h % (1 << k) or w % (1 << k):
        raise ValueError(f"image size {h}x{w} must be divisible by 2^{k} for {k} stride-2 stages")


def dense_encoder(image_shape: tuple[int, int, int], hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Flatten, then Linear+ReLU through `hidden`, then Linear to `out_dim` (2*d for a VAE's mu and log-variance)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(image_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def dense_decoder(latent_dim: int, hidden: tuple[int, ...], image_shape: tuple[int, int, int]) -> nn.Sequential:
    """Mirror of the dense encoder; returns logits of shape (B, C, H, W) (the caller applies the sigmoid)."""
    layers: list[nn.Module] = []
    width = latent_dim
    for h in reversed(hidden):
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers += [nn.Linear(width, math.prod(image_shape)), nn.Unflatten(1, tuple(image_shape))]
    return nn.Sequential(*layers)


def conv_encoder(image_shape: tuple[int, int, int], channels: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Strided 4x4 convolutions halve the image per stage (28 -> 14 -> 7), then a Linear to `out_dim`."""
    c, h, w = image_shape
    layers: list[nn.Module] = []
    for ch in channels:
        layers += [nn.Conv2d(c, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c, h, w = ch, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, out_dim)]
    return nn.Sequential(*layers)


class ConvDecoder(nn.Module):
    """Linear to a (C, H/2^k, W/2^k) map, then transposed 4x4 convolutions doubling it back; returns logits.

    BatchNorm between stages follows DCGAN; it is the same for every family that uses this decoder.
    """

    def __init__(self, latent_dim: int, channels: tuple[int, ...], image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c_out, h, w = image_shape
        k = len(channels)
        self.start = (channels[-1], h >> k, w >> k)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, math.prod(self.start)), nn.BatchNorm1d(math.prod(self.start)), nn.ReLU())
        layers: list[nn.Module] = []
        rev = list(reversed(channels))
        for c_in, c_next in zip(rev, rev[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_next, 4, stride=2, padding=1), nn.BatchNorm2d(c_next), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(rev[-1], c_out, 4, stride=2, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(z.shape[0], *self.start)   # (B, C_k, 7, 7)
        return self.body(h)                                 # (B, C, 28, 28) logits


class Discriminator(nn.Module):
    """D(x): strided LeakyReLU convs (the conv encoder's body), a hidden layer Dis_l, then one logit.

    The GAN's detective and the VAE-GAN's. `features(x)` is Dis_l, the last conv layer's activations
    flattened: the VAE-GAN measures reconstruction there (Larsen et al. 2016). Images enter in [0, 1] and are
    centred to [-1, 1] first. With `spectral_norm`, every layer's weight W is used as W / sigma(W), its largest
    singular value estimated by one power iteration per training forward (Miyato et al. 2018), so D is
    1-Lipschitz per layer: its features cannot grow without bound and its gradients stay informative.
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...],
                 spectral_norm: bool = False) -> None:
        super().__init__()
        net = conv_encoder(image_shape, channels, 1)
        if spectral_norm:
            from torch.nn.utils.parametrizations import spectral_norm as sn
            net = nn.Sequential(*(sn(m) if isinstance(m, (nn.Conv2d, nn.Linear)) else m for m in net))
        self.body = net[:-1]             # convs + LeakyReLU + Flatten -> (B, C_k * H_k * W_k)
        self.head = net[-1]              # Linear -> (B, 1)

    def features(self, x: Tensor) -> Tensor:
        return self.body(2.0 * x - 1.0)

    def forward(self, x: Tensor) -> Tensor:
        """Logits, shape (B,)."""
        return self.head(self.features(x)).squeeze(1)


@torch.no_grad()
def ema_update(average: nn.Module, live: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * live for every weight; buffers (BatchNorm's running
    statistics, spectral norm's vectors) are copied, so the average normalises as the live network does."""
    for a, p in zip(average.parameters(), live.parameters()):
        a.lerp_(p.detach(), 1.0 - decay)
    for a, b in zip(average.buffers(), live.buffers()):
        a.copy_(b)


def dcgan_size(channels: tuple[int, ...]) -> int:
    """The picture side of Radford et al.'s all-convolutional stacks: a 4x4 map doubled once per further stage."""
    return 4 << len(channels)


class DCGANGenerator(nn.Module):
    """DCGAN's generator (Radford et al. 2016) in the layout of pytorch/examples' dcgan/main.py, tensor names
    included (`main.0` ... `main.{3k}`): the noise as a (B, d, 1, 1) map, a 4x4 transposed convolution to the
    widest stage, then 4x4 stride-2 ones halving the width and doubling the size, BatchNorm and ReLU between,
    no biases, tanh out. `channels` run from the picture inwards (64, 128, 256, 512: its ngf, 2 ngf, ...), as the
    conv decoder's do; the picture is 4 * 2^k on a side (64 for four stages). Returns (B, C, H, W) in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        widths = [latent_dim, *reversed(channels)]
        layers: list[nn.Module] = []
        for i, (c_in, c_next) in enumerate(zip(widths, widths[1:])):
            stride, padding = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(c_in, c_next, 4, stride, padding, bias=False), nn.BatchNorm2d(c_next),
                       nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))      # (B, d) -> (B, d, 1, 1) -> (B, C, H, W)


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator in pytorch/examples' layout (`main.0` ... `main.{3k-1}`): 4x4 stride-2 convolutions
    widening through `channels` (ndf, 2 ndf, ...), BatchNorm after all but the first, LeakyReLU(0.2), no biases,
    then a 4x4 convolution of the last 4x4 map to one logit. The original ends in a sigmoid, which has no weights;
    this returns the logit, shape (B,), for images in [0, 1] (centred to the original's [-1, 1] first)."""

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...]) -> None:
        super().__init__()
        c = image_shape[0]
        layers: list[nn.Module] = []
        for i, width in enumerate(channels):
            layers.append(nn.Conv2d(c, width, 4, 2, 1, bias=False))
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            c = width
        layers.append(nn.Conv2d(c, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(2.0 * x - 1.0).view(-1)            # (B, 1, 1, 1) -> (B,)
