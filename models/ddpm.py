"""DDPM: the sculptor. A U-Net learns to predict the noise in x_t; samplers walk from pure noise to an image.

Inside, images live in [-1, 1] (the scale the noise schedule assumes); at the interface they are [0, 1] as for
every family. The "latent" is x_T itself, flattened: latent_dim = C * H * W, and decode(z) runs deterministic
DDIM from x_T = z, so a fixed z always gives the same image and nearby z give nearby images. Sampling uses an
exponential moving average of the weights (Ho et al. 2020, sec. 4), updated after every training step.

Why the linear schedule is the default: with an eps-predicting network, x0 = (x_t - sqrt(1 - a) eps) / sqrt(a)
divides by sqrt(alpha_bar) of the first sampling step. The linear schedule ends at sqrt(alpha_bar) = 6e-3; the
cosine schedule (Nichol & Dhariwal 2021) ends at 5e-5, so there the first step's x0 is the network's tiny error
times 20,000. Samplers must then clip x0 to [-1, 1], which makes decode(z) jump between nearby z and breaks DDIM
inversion (measured on a tiny 8x8 model: inversion + decode error 0.001 linear, 0.09 cosine, in MSE per pixel).
Cosine models are still supported; they sample with x0 clipped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .core import DECODE, DENOISE, SAMPLE, LatentModel
from .diffusion.samplers import Frame, ddim_frames, ddim_invert, ddpm_frames
from .diffusion.schedule import NoiseSchedule, make_schedule, q_sample
from .diffusion.unet import UNet
from .ema import add_average, update_average

PREVIEW_STEPS = 10
DDIM_STEPS = 50       # the DDIM sampler's default step count


@dataclass(frozen=True)
class DDPMConfig:
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)     # one entry per resolution: 28, 14, 7
    schedule: Literal["linear", "cosine"] = "linear"
    timesteps: int = 1000
    ema_decay: float = 0.999
    decode_steps: int = 20                         # DDIM steps behind decode(z) and invert(x)
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        if self.base_channels < 8 or self.base_channels % 8:
            raise ValueError("base_channels must be a positive multiple of 8 (GroupNorm uses 8 groups)")
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError("channel_mults must list at least one positive multiplier")
        if any(side % 2 ** (len(self.channel_mults) - 1) for side in self.image_shape[1:]):
            raise ValueError(f"image sides {self.image_shape[1:]} must divide by 2^{len(self.channel_mults) - 1}")
        if self.schedule not in ("linear", "cosine"):
            raise ValueError("schedule must be 'linear' or 'cosine'")
        if self.timesteps < 2:
            raise ValueError("timesteps must be at least 2")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must lie in [0, 1)")
        if not 1 <= self.decode_steps <= self.timesteps:
            raise ValueError("decode_steps must lie between 1 and timesteps")


def to_model_range(x: Tensor) -> Tensor:
    """[0, 1] images -> [-1, 1]."""
    return 2.0 * x - 1.0


def to_image_range(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped: x_t is noisy and x0 predictions overshoot early on."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


class DDPM(LatentModel):
    family = "ddpm"
    capabilities = frozenset({DECODE, SAMPLE, DENOISE})

    def __init__(self, config: DDPMConfig) -> None:
        super().__init__(config)
        self.unet = UNet(config.image_shape[0], config.base_channels, config.channel_mults)
        add_average(self, self.unet)                  # self.ema: what every sampler runs
        self._schedule: NoiseSchedule | None = None        # built on first use, on the model's device

    @property
    def latent_dim(self) -> int:
        return math.prod(self.image_shape)

    @property
    def clip_x0(self) -> bool:
        """Clip predicted x0 only where the schedule's first step is ill-posed (cosine; see the module doc)."""
        return self.config.schedule == "cosine"

    @property
    def schedule(self) -> NoiseSchedule:
        """The noise schedule on the model's device (built on first use, moved after a device change)."""
        if self._schedule is None:
            self._schedule = make_schedule(self.config.schedule, self.config.timesteps)
        if self._schedule.device != self.device:
            self._schedule = self._schedule.to(self.device)
        return self._schedule

    # --- sampling -------------------------------------------------------------------------------------------

    def _x_T(self, n_or_xT: int | Tensor, generator: torch.Generator | None) -> Tensor:
        if isinstance(n_or_xT, int):
            return torch.randn((n_or_xT, *self.image_shape), generator=generator, device=self.device)
        return n_or_xT.to(self.device).reshape(-1, *self.image_shape)    # (B, d) or (B, C, H, W) -> (B, C, H, W)

    def predict_eps(self, x_t: Tensor, t: Tensor) -> Tensor:
        """eps_theta(x_t, t) of the averaged network: what every sampler and the forward view's peek ask."""
        return self.ema(x_t, t)

    def raw_frames(self, x_T: Tensor, generator: torch.Generator | None = None, sampler: str = "ddim",
                   steps: int | None = None, eta: float = 0.0, start: int = 0) -> Iterator[Frame]:
        """The sampler's frames in the model's [-1, 1] range, from x_T (B, C, H, W); the arguments are those of
        `frames`. start = k resumes a run at its frame k, x_T then being that frame's x_t (a branch)."""
        if sampler == "ddim":
            return ddim_frames(self.schedule, self.predict_eps, x_T, steps or DDIM_STEPS, eta, generator,
                               self.clip_x0, start=start)
        if sampler == "ddpm":
            return ddpm_frames(self.schedule, self.predict_eps, x_T, generator, steps, self.clip_x0, start=start)
        raise ValueError(f"unknown sampler '{sampler}'; use 'ddpm' or 'ddim'")

    @torch.no_grad()
    def frames(self, n_or_xT: int | Tensor, generator: torch.Generator | None = None, sampler: str = "ddim",
               steps: int | None = None, eta: float = 0.0) -> Iterator[Frame]:
        """Stream one Frame per step, x_t and x0 as [0, 1] images (eps as the network gave it).

        n_or_xT: how many images to draw from N(0, I), or a given x_T of shape (B, d) or (B, C, H, W).
        sampler "ddpm": ancestral sampling in `steps` respaced steps (None: the paper's T steps).
        sampler "ddim": `steps` DDIM steps (None: 50) with noise scale eta (0 = deterministic; ignored by
        "ddpm"). The last frame's x0 is the sample.
        """
        x_T = self._x_T(n_or_xT, generator)
        for f in self.raw_frames(x_T, generator, sampler, steps, eta):
            yield Frame(f.index, f.t, to_image_range(f.x_t), to_image_range(f.x0), f.eps, f.total)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, sampler: str = "ddim",
               steps: int | None = None, eta: float = 0.0) -> Tensor:
        """n images in [0, 1]; the arguments are those of `frames`."""
        last = None
        for last in self.raw_frames(self._x_T(n, generator), generator, sampler, steps, eta):
            pass
        return to_image_range(last.x0)

    @torch.no_grad()
    def preview(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """A cheap look during training: 10 DDIM steps."""
        return self.sample(n, generator, "ddim", PREVIEW_STEPS)

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Deterministic DDIM (eta = 0, config.decode_steps steps) from x_T = z.view(B, C, H, W)."""
        return self.sample_from(z, self.config.decode_steps)

    @torch.no_grad()
    def sample_from(self, x_T: Tensor, steps: int) -> Tensor:
        """Deterministic DDIM in `steps` steps from a given x_T ((B, d) or (B, C, H, W)) to [0, 1] images."""
        last = None
        for last in ddim_frames(self.schedule, self.predict_eps, self._x_T(x_T, None), steps, clip_x0=self.clip_x0):
            pass
        return to_image_range(last.x0)

    @torch.no_grad()
    def invert(self, x: Tensor, steps: int | None = None) -> Tensor:
        """DDIM inversion: images in [0, 1] -> the x_T (B, d) that decode() would turn back into them."""
        steps = steps or self.config.decode_steps
        x_T = ddim_invert(self.schedule, self.predict_eps, to_model_range(x.to(self.device)), steps, self.clip_x0)
        return x_T.flatten(1)

    # --- training -------------------------------------------------------------------------------------------

    def eps_loss(self, x: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """L_simple = || eps - eps_theta(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t) ||^2, averaged (Ho et al. eq. 14)."""
        x_t = q_sample(self.schedule, to_model_range(x), t, eps)
        return F.mse_loss(self.unet(x_t, t), eps)

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.AdamW(self.unet.parameters(), lr=settings.lr)}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None) -> dict[str, float]:
        t = torch.randint(0, self.config.timesteps, (x.shape[0],), generator=generator, device=x.device)
        eps = torch.randn(x.shape, generator=generator, device=x.device)
        loss = self.eps_loss(x, t, eps)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        update_average(self, self.unet, self.config.ema_decay)
        return {"eps_mse": loss.item()}
