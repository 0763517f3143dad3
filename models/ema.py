"""The weight average (EMA) every family that keeps one uses: one helper, one name for the averaged network.

A model keeps `self.ema`, a frozen copy of one of its networks (a GAN's G, a VAE-GAN's decoder, a DDPM's U-Net),
and after each optimisation step moves it towards the live weights:
    theta_ema <- d theta_ema + (1 - d) theta,     d = min(decay, (1 + n) / (10 + n)) after n updates.
The warm-up lets the average forget the random initial weights soon: at 0.999 a plain average would still be 39%
initial weights after 936 steps (Karras et al. 2018; Yazici et al. 2019; Ho et al. 2020, sec. 4).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

def warmed_up(decay: float, n: int) -> float:
    """The decay after n updates: min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1.0 + n) / (10.0 + n))


@torch.no_grad()
def ema_update(average: nn.Module, live: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * live for every weight; buffers (BatchNorm's running statistics,
    spectral norm's vectors) are copied, so the average normalises as the live network does."""
    for a, p in zip(average.parameters(), live.parameters()):
        a.lerp_(p.detach(), 1.0 - decay)
    for a, b in zip(average.buffers(), live.buffers()):
        a.copy_(b)


def add_average(model: nn.Module, live: nn.Module) -> None:
    """Give `model` its averaged network `model.ema`, a frozen copy of `live`, and the update count."""
    model.ema = copy.deepcopy(live).requires_grad_(False)
    model.register_buffer("ema_updates", torch.zeros((), dtype=torch.int64))


def update_average(model: nn.Module, live: nn.Module, decay: float) -> None:
    """One step of `model.ema` towards `live` at the warmed-up decay, counted in `model.ema_updates`."""
    ema_update(model.ema, live, warmed_up(decay, int(model.ema_updates)))
    model.ema_updates += 1
