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

Classifier-free guidance (Ho & Salimans 2022): with num_classes = K > 0 the U-Net also takes a label c in 0..K-1
or the null class ∅ (index K). Training replaces each label by ∅ with probability p_uncond (a knob, 0.1 by
default), so one network learns both eps(x_t, t, c) and eps(x_t, t, ∅). Sampling mixes them with a guidance
scale w, counted as diffusers' guidance_scale counts:
    eps = eps(x_t, t, ∅) + w (eps(x_t, t, c) - eps(x_t, t, ∅)),
so w = 0 is the unconditional model and w = 1 the plain conditional one; w > 1 pulls harder towards c.
An unconditional DDPM (K = 0, every checkpoint before this) holds no class embedding and takes no class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .catalog import SAMPLERS
from .core import DECODE, DENOISE, SAMPLE, LatentModel
from .diffusion.samplers import Frame, Pairs, ddim_frames, ddim_invert, ddpm_frames, dpm_solver_frames
from .diffusion.schedule import NoiseSchedule, make_schedule, q_sample
from .diffusion.unet import UNet
from .ema import add_average, update_average

PREVIEW_STEPS = 10
DDIM_STEPS = 50       # the DDIM sampler's default step count
DPM_STEPS = 20        # DPM-Solver++(2M)'s default step count


@dataclass(frozen=True)
class DDPMConfig:
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)     # one entry per resolution: 28, 14, 7
    schedule: Literal["linear", "cosine"] = "linear"
    timesteps: int = 1000
    ema_decay: float = 0.999
    decode_steps: int = 20                         # DDIM steps behind decode(z) and invert(x)
    image_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 0                           # K > 0: class-conditional, with classifier-free guidance

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
        if self.num_classes < 0:
            raise ValueError("num_classes must be 0 (unconditional) or the number of classes")


Classes = int | Sequence[int] | Tensor | None     # one class for the batch, one per image, or None: "any class"
P_UNCOND = 0.1          # the chance a training label becomes ∅ (Ho & Salimans 2022 found 0.1 to 0.2 best)


def guided_eps(eps_cond: Tensor, eps_uncond: Tensor, w: float) -> Tensor:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6, with w counted from 0 as diffusers does):
        eps = eps(x_t, t, ∅) + w (eps(x_t, t, c) - eps(x_t, t, ∅)).
    w = 0 gives eps_uncond, w = 1 eps_cond; w > 1 extrapolates away from the unconditional prediction."""
    return eps_uncond + w * (eps_cond - eps_uncond)


def drop_labels(y: Tensor, null_class: int, p_uncond: float, generator: torch.Generator) -> Tensor:
    """Each label replaced by the null class ∅ with probability p_uncond (Ho & Salimans 2022, Algorithm 1):
    c <- ∅ with probability p_uncond. One uniform draw per label from `generator`, so a resume repeats it."""
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, null_class), y)


def to_model_range(x: Tensor) -> Tensor:
    """[0, 1] images -> [-1, 1]."""
    return 2.0 * x - 1.0


def to_image_range(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped: x_t is noisy and x0 predictions overshoot early on."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


class Denoiser(LatentModel):
    """What every diffusion model answers, whoever built its network: sampling, decode(z), DDIM inversion.

    A subclass gives the noise `schedule`, the eps-predicting `network(x_t, t, y)`, `num_classes` and its
    sampler settings (`clip_x0`, and where its scheduler differs from ours: `step_pairs`, `ddim_keeps_eps`,
    `large_variance`); the samplers and the class and guidance checks are shared. The DDPM below trains its own
    U-Net; models.diffusers_model wraps a diffusers folder's."""

    capabilities = frozenset({DECODE, SAMPLE, DENOISE})
    ddim_keeps_eps = False           # a clipped x0 keeps the network's eps in DDIM's direction term (diffusers)
    large_variance = False           # ancestral steps add noise of variance beta rather than beta_tilde

    @property
    def latent_dim(self) -> int:
        return math.prod(self.image_shape)

    @property
    def num_classes(self) -> int:
        """K, the classes a class-conditional model takes (0: it takes none)."""
        return int(self.config.num_classes)

    @property
    def conditional(self) -> bool:
        """Whether the model takes a class (and so trains on labels: models.train passes them as y)."""
        return self.num_classes > 0

    @property
    def has_null_class(self) -> bool:
        """Whether the network also takes ∅, "no class" (index K): what "any class" and guidance need."""
        return self.conditional

    @property
    def null_class(self) -> int:
        """The label index of ∅, "no class": K, one past the last class (also the class count callers read)."""
        return self.num_classes

    @property
    def clip_x0(self) -> float:
        """The range r predicted x0 is clipped to, [-r, r]; 0 (False) for none."""
        return False

    @property
    def schedule(self) -> NoiseSchedule:  # pragma: no cover - every subclass gives its own
        raise NotImplementedError

    def network(self, x_t: Tensor, t: Tensor, y: Tensor | None) -> Tensor:  # pragma: no cover
        """eps_theta(x_t, t[, y]) for a batch: y (B,) labels of a conditional model, None for an unconditional one."""
        raise NotImplementedError

    def fit_steps(self, k: int) -> int:
        """The most steps, up to k, a DDIM or DPM-Solver++ run can take: what their default counts become."""
        return min(k, self.schedule.T)

    def step_pairs(self, sampler: str, steps: int) -> Pairs | None:
        """The (t, t_prev) of a run's steps where the model spaces them its own way; None: `timesteps(T, steps)`."""
        return None

    # --- sampling -------------------------------------------------------------------------------------------

    def _x_T(self, n_or_xT: int | Tensor, generator: torch.Generator | None) -> Tensor:
        if isinstance(n_or_xT, int):
            return torch.randn((n_or_xT, *self.image_shape), generator=generator, device=self.device)
        return n_or_xT.to(self.device).reshape(-1, *self.image_shape)    # (B, d) or (B, C, H, W) -> (B, C, H, W)

    def class_labels(self, classes: Classes, n: int, guidance: float = 1.0) -> Tensor | None:
        """The labels (n,) int64 on the model's device that `classes` asks for; None for "any class" (∅).

        classes: None, one class index for every image, or one per image; each in 0..K-1, or K for ∅. Asking an
        unconditional model for a class or a guidance scale other than 1 raises ValueError, as does asking a
        model without ∅ for no class, ∅ or guidance."""
        if not self.conditional:
            if classes is not None or guidance != 1.0:
                raise ValueError("this DDPM was trained without classes, so it takes neither a class nor a "
                                 "guidance scale")
            return None
        if not math.isfinite(guidance):
            raise ValueError(f"the guidance scale must be a finite number, not {guidance}")
        if not self.has_null_class and guidance != 1.0:
            raise ValueError("this model's network has no 'no class' input, so it takes no guidance scale")
        if classes is None:
            if not self.has_null_class:
                raise ValueError(f"this model's network has no 'no class' input: ask for a class in "
                                 f"0..{self.num_classes - 1}")
            return None
        y = torch.as_tensor(classes, dtype=torch.long, device=self.device)
        y = y.expand(n).clone() if y.ndim == 0 else y.flatten()
        if y.numel() != n:
            raise ValueError(f"{y.numel()} classes were given for {n} images")
        top = self.null_class if self.has_null_class else self.num_classes - 1
        if bool(((y < 0) | (y > top)).any()):
            if not self.has_null_class:
                raise ValueError(f"classes must lie in 0..{top}")
            raise ValueError(f"classes must lie in 0..{self.null_class - 1} (or {self.null_class} for no class)")
        return y

    def predict_eps(self, x_t: Tensor, t: Tensor, classes: Classes = None, guidance: float = 1.0) -> Tensor:
        """eps_theta(x_t, t) of the sampling network: what every sampler and the forward view's peek ask.

        For a conditional model, the guided eps(∅) + w (eps(c) - eps(∅)) (see `guided_eps`) at w = `guidance`
        for the asked classes; no class (None) is eps(∅). One forward pass of B images when w is 0 or 1 or no
        class is asked, else one of 2B: the conditional and unconditional halves in one batch."""
        y = self.class_labels(classes, x_t.shape[0], guidance)
        return self._guided_eps_fn(y, guidance)(x_t, t)

    def _guided_eps_fn(self, y: Tensor | None, w: float):
        """The eps function (x_t, t) -> eps that samplers call, for labels y (None: ∅, or unconditional)."""
        if not self.conditional:
            return lambda x_t, t: self.network(x_t, t, None)
        if not self.has_null_class:          # class_labels let only classes 0..K-1 and w = 1 through
            return lambda x_t, t: self.network(x_t, t, y)
        null = torch.full((1,), self.null_class, dtype=torch.long, device=self.device)
        if y is None or w == 0.0:
            return lambda x_t, t: self.network(x_t, t, null.expand(x_t.shape[0]))
        if w == 1.0:
            return lambda x_t, t: self.network(x_t, t, y)

        def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
            both = self.network(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, null.expand(y.shape[0])]))
            eps_cond, eps_uncond = both.chunk(2)                  # (2B, C, H, W) -> two of (B, C, H, W)
            return guided_eps(eps_cond, eps_uncond, w)

        return eps_fn

    def eps_fn(self, n: int, classes: Classes = None, guidance: float = 1.0):
        """The eps function (x_t, t) -> eps a sampler calls for a batch of n images of `classes` at `guidance`
        (the labels are checked and built once, not at every step)."""
        return self._guided_eps_fn(self.class_labels(classes, n, guidance), guidance)

    def raw_frames(self, x_T: Tensor, generator: torch.Generator | None = None, sampler: str = "ddim",
                   steps: int | None = None, eta: float = 0.0, start: int = 0, classes: Classes = None,
                   guidance: float = 1.0, x0_last: Tensor | None = None) -> Iterator[Frame]:
        """The sampler's frames in the model's [-1, 1] range, from x_T (B, C, H, W); the arguments are those of
        `frames`. start = k resumes a run at its frame k, x_T then being that frame's x_t (a branch); "dpm++"
        also needs frame k - 1's raw x0 as x0_last (its second-order step uses it), and repeats its parent."""
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler '{sampler}'; use {', '.join(repr(s) for s in SAMPLERS)}")
        if sampler == "dpm++" and start > 0 and x0_last is None:
            raise ValueError(f"DPM-Solver++ resumed at frame {start} needs frame {start - 1}'s x0 (x0_last)")
        eps_fn = self.eps_fn(x_T.shape[0], classes, guidance)
        default = {"ddim": DDIM_STEPS, "dpm++": DPM_STEPS}.get(sampler)
        steps = steps or (self.fit_steps(default) if default else self.schedule.T)
        pairs = self.step_pairs(sampler, steps)
        if sampler == "ddim":
            return ddim_frames(self.schedule, eps_fn, x_T, steps, eta, generator, self.clip_x0, start=start,
                               pairs=pairs, keep_eps=self.ddim_keeps_eps)
        if sampler == "dpm++":              # deterministic: eta and generator are not used
            x0_last = None if x0_last is None else x0_last.to(self.device).reshape(x_T.shape)
            return dpm_solver_frames(self.schedule, eps_fn, x_T, steps, self.clip_x0, start=start,
                                     x0_last=x0_last, pairs=pairs)
        return ddpm_frames(self.schedule, eps_fn, x_T, generator, steps, self.clip_x0, start=start, pairs=pairs,
                           large_variance=self.large_variance)

    @torch.no_grad()
    def frames(self, n_or_xT: int | Tensor, generator: torch.Generator | None = None, sampler: str = "ddim",
               steps: int | None = None, eta: float = 0.0, classes: Classes = None,
               guidance: float = 1.0) -> Iterator[Frame]:
        """Stream one Frame per step, x_t and x0 as [0, 1] images (eps as the network gave it).

        n_or_xT: how many images to draw from N(0, I), or a given x_T of shape (B, d) or (B, C, H, W).
        sampler "ddpm": ancestral sampling in `steps` respaced steps (None: the paper's T steps).
        sampler "ddim": `steps` DDIM steps (None: 50) with noise scale eta (0 = deterministic; ignored by
        "ddpm" and "dpm++").
        sampler "dpm++": DPM-Solver++(2M) (Lu et al. 2022) in `steps` steps (None: 20), deterministic.
        The last frame's x0 is the sample.
        classes, guidance (a conditional model only): the class asked of every image (an index) or of each (B,),
        None for any class; and the guidance scale w (0 unconditional, 1 the plain conditional model).
        """
        x_T = self._x_T(n_or_xT, generator)
        for f in self.raw_frames(x_T, generator, sampler, steps, eta, classes=classes, guidance=guidance):
            yield Frame(f.index, f.t, to_image_range(f.x_t), to_image_range(f.x0), f.eps, f.total)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, sampler: str = "ddim",
               steps: int | None = None, eta: float = 0.0, classes: Classes = None,
               guidance: float = 1.0) -> Tensor:
        """n images in [0, 1]; the arguments are those of `frames`."""
        last = None
        for last in self.raw_frames(self._x_T(n, generator), generator, sampler, steps, eta, classes=classes,
                                    guidance=guidance):
            pass
        return to_image_range(last.x0)

    @torch.no_grad()
    def preview(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """A cheap look during training: 10 DDIM steps; a conditional model draws the classes in turn (w = 1)."""
        classes = torch.arange(n) % self.num_classes if self.conditional else None
        return self.sample(n, generator, "ddim", PREVIEW_STEPS, classes=classes)

    @torch.no_grad()
    def decode(self, z: Tensor, classes: Classes = None, guidance: float = 1.0) -> Tensor:
        """Deterministic DDIM (eta = 0, config.decode_steps steps) from x_T = z.view(B, C, H, W)."""
        return self.sample_from(z, self.config.decode_steps, classes, guidance)

    @torch.no_grad()
    def sample_from(self, x_T: Tensor, steps: int, classes: Classes = None, guidance: float = 1.0) -> Tensor:
        """Deterministic DDIM in `steps` steps from a given x_T ((B, d) or (B, C, H, W)) to [0, 1] images."""
        x_T = self._x_T(x_T, None)
        last = None
        for last in ddim_frames(self.schedule, self.eps_fn(x_T.shape[0], classes, guidance), x_T, steps,
                                clip_x0=self.clip_x0, pairs=self.step_pairs("ddim", steps),
                                keep_eps=self.ddim_keeps_eps):
            pass
        return to_image_range(last.x0)

    @torch.no_grad()
    def invert(self, x: Tensor, steps: int | None = None, classes: Classes = None, guidance: float = 1.0) -> Tensor:
        """DDIM inversion: images in [0, 1] -> the x_T (B, d) that decode() (with the same classes and guidance)
        would turn back into them."""
        steps = steps or self.config.decode_steps
        eps_fn = self.eps_fn(x.shape[0], classes, guidance)
        x_T = ddim_invert(self.schedule, eps_fn, to_model_range(x.to(self.device)), steps, self.clip_x0,
                          self.step_pairs("ddim", steps))
        return x_T.flatten(1)


class DDPM(Denoiser):
    family = "ddpm"

    def __init__(self, config: DDPMConfig) -> None:
        super().__init__(config)
        self.unet = UNet(config.image_shape[0], config.base_channels, config.channel_mults, config.num_classes)
        add_average(self, self.unet)                  # self.ema: what every sampler runs
        self._schedule: NoiseSchedule | None = None        # built on first use, on the model's device

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

    def network(self, x_t: Tensor, t: Tensor, y: Tensor | None) -> Tensor:
        """The exponential moving average of the U-Net (Ho et al. 2020, sec. 4): what every sampler runs."""
        return self.ema(x_t, t) if y is None else self.ema(x_t, t, y)

    # --- training -------------------------------------------------------------------------------------------

    def eps_loss(self, x: Tensor, t: Tensor, eps: Tensor, y: Tensor | None = None) -> Tensor:
        """L_simple = || eps - eps_theta(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t[, y]) ||^2, averaged (Ho et al.
        eq. 14); y (B,) the labels of a conditional model, ∅ (index K) where dropped."""
        x_t = q_sample(self.schedule, to_model_range(x), t, eps)
        return F.mse_loss(self.unet(x_t, t) if y is None else self.unet(x_t, t, y), eps)

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.AdamW(self.unet.parameters(), lr=settings.lr)}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None,
                      y: Tensor | None = None) -> dict[str, float]:
        """One step of L_simple. A conditional model needs the labels y (B,), each dropped to ∅ with probability
        settings' knob p_uncond (0.1 by default); an unconditional one draws exactly what it always drew."""
        if self.conditional and y is None:
            raise ValueError("a class-conditional DDPM trains on labelled images: pass the labels y")
        if not self.conditional and y is not None:
            raise ValueError("this DDPM was built without classes, so it trains without labels")
        t = torch.randint(0, self.config.timesteps, (x.shape[0],), generator=generator, device=x.device)
        eps = torch.randn(x.shape, generator=generator, device=x.device)
        if y is not None:
            p_uncond = settings.knob("p_uncond", P_UNCOND) if settings is not None else P_UNCOND
            y = drop_labels(y.to(x.device), self.null_class, p_uncond, generator)
        loss = self.eps_loss(x, t, eps, y)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        update_average(self, self.unet, self.config.ema_decay)
        return {"eps_mse": loss.item()}
