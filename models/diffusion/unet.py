"""A small U-Net that predicts the noise eps in x_t, sized so one training step at batch 64 fits a CPU budget.

Shape of the default (base 32, mults (1, 2, 2)) on 28x28:
    28x28x32 -> 14x14x64 -> 7x7x64 (+ middle block) -> 14x14x64 -> 28x28x32,
one residual block per level on the way down and one (taking the skip) on the way up. The timestep enters
every residual block as a per-channel bias, from a sinusoidal embedding (Vaswani et al. 2017; Ho et al. 2020).
No attention: at 7x7 and this size it costs more CPU time than it buys.

A class-conditional U-Net (num_classes = K > 0) also embeds a label y in 0..K, where K is the "no class" token
(written ∅; Ho & Salimans 2022), and adds it to the time embedding: temb = MLP(sin(t)) + E[y]. E starts at zero,
so a conditional U-Net given an unconditional one's weights computes exactly what that one did, for every y.
An unconditional U-Net (K = 0) holds no class embedding at all, so its weights are those it always had.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """(B,) integer steps -> (B, dim): [sin(t w_i), cos(t w_i)] with w_i = max_period^(-i / (dim / 2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding added in between, and a (1x1 if needed) skip."""

    def __init__(self, c_in: int, c_out: int, temb_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(temb_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)          # each block starts as the identity (Dhariwal & Nichol 2021)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """eps_theta(x_t, t[, y]): (B, C, H, W), (B,) steps and (B,) labels -> (B, C, H, W).

    H and W must divide by 2^(levels - 1). With num_classes = K > 0, y lies in 0..K (K = ∅, "no class"; y = None
    means ∅ for the whole batch)."""

    def __init__(self, image_channels: int = 1, base_channels: int = 32,
                 channel_mults: tuple[int, ...] = (1, 2, 2), num_classes: int = 0) -> None:
        super().__init__()
        chs = [base_channels * m for m in channel_mults]
        self.base_channels = base_channels
        self.num_classes = num_classes
        temb_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        self.conv_in = nn.Conv2d(image_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = base_channels
        for i, ch in enumerate(chs):
            self.down.append(ResBlock(c, ch, temb_dim))
            c = ch
            if i + 1 < len(chs):
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = ResBlock(c, c, temb_dim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chs))):
            self.up.append(ResBlock(c + ch, ch, temb_dim))
            c = ch
            if i > 0:                                  # to the next level's width at the low resolution (cheap)
                self.upsample.append(nn.Conv2d(c, chs[i - 1], 1))
                c = chs[i - 1]
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, image_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        if num_classes > 0:     # built last, so every other weight draws what an unconditional U-Net's draws
            self.class_emb = nn.Embedding(num_classes + 1, temb_dim)     # row K: the null class ∅
            nn.init.zeros_(self.class_emb.weight)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.base_channels))          # (B, 4 * base)
        if self.num_classes > 0:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            temb = temb + self.class_emb(y)
        elif y is not None:
            raise ValueError("this U-Net was built without classes, so it takes no label y")
        h = self.conv_in(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)                      # (B, c, H/2, W/2)
        h = self.mid(h, temb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), temb)
            if i < len(self.upsample):
                h = F.interpolate(self.upsample[i](h), scale_factor=2.0, mode="nearest")   # (B, c', 2H, 2W)
        return self.conv_out(F.silu(self.norm_out(h)))
