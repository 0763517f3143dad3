"""The forward (noising) process as data: a frozen table of per-step tensors, and the closed forms that use it.

Steps are 0-based: index t = 0 is the paper's t = 1 (the least noise), t = T - 1 the paper's t = T. With
alpha_t = 1 - beta_t and alpha_bar_t = prod_{s <= t} alpha_s (Ho et al. 2020):

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)

so x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, eps ~ N(0, I), and either of x_0 and eps follows
from x_t and the other. "alpha_bar_prev" at t = 0 is 1: the step before the first is the clean image.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """Precomputed per-step tensors of shape (T,), float32, all on one device."""

    name: str
    betas: Tensor
    alphas: Tensor
    alpha_bars: Tensor
    alpha_bars_prev: Tensor            # alpha_bar_{t-1}, with alpha_bar_{-1} = 1
    sqrt_alpha_bars: Tensor
    sqrt_one_minus_alpha_bars: Tensor
    posterior_variance: Tensor         # beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)

    @property
    def T(self) -> int:
        return int(self.betas.shape[0])

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        """The same schedule with every tensor on `device` (a new object; schedules never change)."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device)
                                            for f in dataclasses.fields(self) if f.name != "name"})


def schedule_from_betas(betas: Tensor | list[float], name: str = "custom") -> NoiseSchedule:
    """Build every derived table from beta_1..beta_T. Products are taken in float64, then stored as float32."""
    b = torch.as_tensor(betas, dtype=torch.float64)
    if b.ndim != 1 or b.numel() == 0:
        raise ValueError("betas must be a non-empty 1-d sequence")
    if not bool(((b > 0) & (b < 1)).all()):
        raise ValueError("every beta must lie in (0, 1)")
    alphas = 1.0 - b
    alpha_bars = torch.cumprod(alphas, 0)
    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])

    def f32(v: Tensor) -> Tensor:
        return v.to(torch.float32)

    return NoiseSchedule(
        name=name,
        betas=f32(b),
        alphas=f32(alphas),
        alpha_bars=f32(alpha_bars),
        alpha_bars_prev=f32(alpha_bars_prev),
        sqrt_alpha_bars=f32(alpha_bars.sqrt()),
        sqrt_one_minus_alpha_bars=f32((1.0 - alpha_bars).sqrt()),
        posterior_variance=f32(b * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars)),
    )


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """Ho et al. 2020: beta linear from 1e-4 to 0.02 at T = 1000; scaled by 1000 / T so other T end as noisy."""
    scale = 1000.0 / T
    betas = torch.linspace(beta_start * scale, beta_end * scale, T, dtype=torch.float64)
    return schedule_from_betas(betas.clamp(max=0.999), name="linear")


def cosine_alpha_bar(u: float, s: float = 0.008) -> float:
    """Nichol & Dhariwal 2021, eq. 17 for u = t / T in [0, 1]: f(u) / f(0), f(u) = cos^2((u + s) / (1 + s) * pi / 2)."""
    def f(v: float) -> float:
        return math.cos((v + s) / (1 + s) * math.pi / 2) ** 2

    return f(u) / f(0.0)


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """Nichol & Dhariwal 2021: alpha_bar follows cosine_alpha_bar; beta_t = 1 - alpha_bar_t / alpha_bar_{t-1},
    clipped at 0.999 so the last steps do not divide by zero. Step index t covers (t / T, (t + 1) / T]."""
    betas = [min(1.0 - cosine_alpha_bar((t + 1) / T, s) / cosine_alpha_bar(t / T, s), max_beta) for t in range(T)]
    return schedule_from_betas(betas, name="cosine")


def make_schedule(kind: str, T: int) -> NoiseSchedule:
    if kind == "linear":
        return linear_schedule(T)
    if kind == "cosine":
        return cosine_schedule(T)
    raise ValueError(f"unknown schedule '{kind}'; use 'linear' or 'cosine'")


def broadcast(values: Tensor, t: int | Tensor, x: Tensor) -> Tensor:
    """values[t] shaped to multiply a batch like x: a scalar step gives (1, 1, ..), a (B,) step gives (B, 1, ..)."""
    v = values[t] if isinstance(t, int) else values.index_select(0, t.to(values.device).long().flatten())
    return v.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


def q_sample(schedule: NoiseSchedule, x0: Tensor, t: int | Tensor, eps: Tensor) -> Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps  (Ho et al. 2020, eq. 4)."""
    return broadcast(schedule.sqrt_alpha_bars, t, x0) * x0 + broadcast(schedule.sqrt_one_minus_alpha_bars, t, x0) * eps


def predict_x0_from_eps(schedule: NoiseSchedule, x_t: Tensor, t: int | Tensor, eps: Tensor) -> Tensor:
    """x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
    noise = broadcast(schedule.sqrt_one_minus_alpha_bars, t, x_t) * eps
    return (x_t - noise) / broadcast(schedule.sqrt_alpha_bars, t, x_t)


def predict_eps_from_x0(schedule: NoiseSchedule, x_t: Tensor, t: int | Tensor, x0: Tensor) -> Tensor:
    """eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)."""
    signal = broadcast(schedule.sqrt_alpha_bars, t, x_t) * x0
    return (x_t - signal) / broadcast(schedule.sqrt_one_minus_alpha_bars, t, x_t)
