"""A diffusers UNet2DModel as one of our diffusion models: diffusers builds the network, our samplers walk it.

The folder's scheduler config becomes data: a NoiseSchedule from its betas (`beta_schedule`, or `trained_betas`)
and a `DiffusersConfig` of the settings our samplers honour. Everything else is the shared `Denoiser`: frames,
decode(z), DDIM inversion, classes. What differs from our own DDPM, each as diffusers' schedulers do it:

- prediction_type: the network predicts eps, x0 ("sample") or v = sqrt(a) eps - sqrt(1 - a) x0 ("v_prediction",
  Salimans & Ho 2022); `network` turns each into the eps our samplers take, with a = alpha_bar_t:
      x0 -> eps = (x_t - sqrt(a) x0) / sqrt(1 - a),        v -> eps = sqrt(a) v + sqrt(1 - a) x_t.
- clip_sample, clip_sample_range: x0 clipped to [-r, r]; DDIM then keeps the network's eps, as DDIMScheduler does.
- timestep_spacing ("leading", "trailing", "linspace") and steps_offset: which steps a run of k visits; DDIM goes
  from t to t - T // k, as DDIMScheduler.step does, even where that is not the next step visited.
- set_alpha_to_one: DDIM's last step lands on alpha_bar = 1 (the clean image) or on alpha_bar_0.
- DPMSolverMultistepScheduler folders: DPM-Solver++ visits the steps that scheduler's set_timesteps spaces (k + 1
  points, the last dropped; "linspace" when the config names no spacing), and no sampler clips x0 (that
  scheduler has no clip_sample); its settings that change the run (another algorithm, order, solver type, final
  sigma, Karras or other sigma spacings, a clipped lambda) are refused. Other folders' DPM-Solver++ walks the
  folder's own DDIM spacing.
- variance_type: the ancestral sampler's noise, beta_tilde ("fixed_small") or beta ("fixed_large").
A UNet with `num_class_embeds` = K takes a class 0..K-1 and nothing else: no "no class", so no guidance.

diffusers is imported when a model is built, never at import: the app starts without it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .diffusion.samplers import Pairs
from .diffusion.schedule import NoiseSchedule, broadcast, cosine_schedule, schedule_from_betas
from .ddpm import Denoiser

FAMILY = "diffusers"
TITLE = "Diffusion model (diffusers)"
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "trained_betas")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
SPACINGS = ("leading", "trailing", "linspace")
VARIANCE_TYPES = {"fixed_small": False, "fixed_small_log": False, "fixed_large": True, "fixed_large_log": True}
# Schedulers of the discrete noise process our samplers walk (betas over num_train_timesteps steps); the others
# (ScoreSdeVe, KarrasVe, EDM, flow matching, consistency models) describe another process, whose settings the
# keys read here would silently misread.
SCHEDULERS = ("DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler",
              "DPMSolverSinglestepScheduler", "DEISMultistepScheduler", "UniPCMultistepScheduler",
              "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler",
              "LMSDiscreteScheduler", "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
              "DDPMParallelScheduler", "DDIMParallelScheduler")
DECODE_STEPS = 20
DPM_SOLVER = "DPMSolverMultistepScheduler"
# What a DPMSolverMultistepScheduler config may say and still be the run our DPM-Solver++(2M) takes: the key, the
# one value we honour, and what diffusers does without the key.
DPM_SETTINGS = {"algorithm_type": ("dpmsolver++", "dpmsolver++"), "solver_order": (2, 2),
                "solver_type": ("midpoint", "midpoint"), "final_sigmas_type": ("zero", "zero"),
                "use_karras_sigmas": (False, False), "use_exponential_sigmas": (False, False),
                "use_beta_sigmas": (False, False), "use_lu_lambdas": (False, False), "use_flow_sigmas": (False, False),
                "lambda_min_clipped": (-math.inf, -math.inf)}
MAX_TIMESTEPS = 100_000                 # num_train_timesteps; one float a step, several tensors of them


class SchedulerConfigError(ValueError):
    """A scheduler setting Latent Explorer cannot honour; str(err) is one sentence naming the key."""


@dataclass(frozen=True)
class DiffusersConfig:
    """What a diffusers folder says about its pictures and its noise process, in the settings we honour."""

    image_shape: tuple[int, int, int]
    timesteps: int = 1000                       # num_train_timesteps, T
    schedule: str = "linear"                    # beta_schedule ("trained_betas" where the config lists them)
    beta_start: float = 0.0001
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    clip_sample_range: float = 1.0              # x0 clipped to [-r, r]; 0: clip_sample is false
    timestep_spacing: str = "leading"
    steps_offset: int = 0
    set_alpha_to_one: bool = True
    variance_type: str = "fixed_small"
    num_classes: int = 0                        # the UNet's num_class_embeds (0: none)
    decode_steps: int = DECODE_STEPS
    pipeline: str = "DDPMPipeline"              # the folder's model_index.json class, or "UNet2DModel" for a bare one
    scheduler: str = "DDPMScheduler"            # the scheduler config's _class_name
    trained_betas: tuple[float, ...] = field(default=(), repr=False)


def _key(cfg: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any, where: str) -> Any:
    value = cfg.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise SchedulerConfigError(f"{where} has an invalid '{key}': {value!r}")
    return value


def _one_of(cfg: dict[str, Any], key: str, known: tuple[str, ...], default: str, where: str) -> str:
    value = _key(cfg, key, (str,), default, where)
    if value not in known:
        raise SchedulerConfigError(f"{where} has '{key}' {value!r}, which Latent Explorer cannot honour (it knows "
                                   f"{', '.join(known)})")
    return value


def scheduler_settings(cfg: dict[str, Any], where: str = "the scheduler config") -> dict[str, Any]:
    """The DiffusersConfig fields a scheduler config (its parsed JSON) gives; SchedulerConfigError, naming the
    key, for a setting our samplers cannot honour."""
    scheduler = _key(cfg, "_class_name", (str,), "DDPMScheduler", where)
    if scheduler not in SCHEDULERS:
        raise SchedulerConfigError(f"{where} has '_class_name' {scheduler!r}, a noise process other than the "
                                   "discrete betas Latent Explorer samples (it opens DDPMScheduler, DDIMScheduler and "
                                   "the other beta-schedule schedulers)")
    T = _key(cfg, "num_train_timesteps", (int,), 1000, where)
    if not 2 <= T <= MAX_TIMESTEPS:
        raise SchedulerConfigError(f"{where} has 'num_train_timesteps' {T}; it must lie between 2 and "
                                   f"{MAX_TIMESTEPS:,}")
    schedule = _key(cfg, "beta_schedule", (str,), "linear", where)
    betas = cfg.get("trained_betas")
    if betas is not None:
        if not (isinstance(betas, list) and len(betas) == T and all(
                isinstance(b, (int, float)) and not isinstance(b, bool) for b in betas)):
            raise SchedulerConfigError(f"{where}'s 'trained_betas' must list num_train_timesteps = {T} numbers")
        schedule = "trained_betas"
    elif schedule not in BETA_SCHEDULES[:-1]:
        raise SchedulerConfigError(f"{where} has an unknown 'beta_schedule' {schedule!r}; Latent Explorer knows "
                                   f"{', '.join(BETA_SCHEDULES)}")
    prediction = _one_of(cfg, "prediction_type", PREDICTION_TYPES, "epsilon", where)
    dpm = scheduler == DPM_SOLVER
    spacing = _one_of(cfg, "timestep_spacing", SPACINGS, "linspace" if dpm else "leading", where)
    if dpm:
        _check_dpm_settings(cfg, where)
    variance = _one_of(cfg, "variance_type", tuple(VARIANCE_TYPES), "fixed_small", where)
    for key in ("thresholding", "rescale_betas_zero_snr"):
        if _key(cfg, key, (bool,), False, where):
            raise SchedulerConfigError(f"{where} sets '{key}', which Latent Explorer cannot honour")
    clip = _key(cfg, "clip_sample", (bool,), True, where) and not dpm      # DPM-Solver's scheduler never clips
    clip_range = float(_key(cfg, "clip_sample_range", (int, float), 1.0, where))
    if clip and not 0.0 < clip_range < math.inf:
        raise SchedulerConfigError(f"{where} has 'clip_sample_range' {clip_range}; it must be a positive number")
    offset = _key(cfg, "steps_offset", (int,), 0, where)
    if not 0 <= offset < T:
        raise SchedulerConfigError(f"{where} has 'steps_offset' {offset}; it must lie in 0..{T - 1}")
    beta_start = float(_key(cfg, "beta_start", (int, float), 0.0001, where))
    beta_end = float(_key(cfg, "beta_end", (int, float), 0.02, where))
    return {"timesteps": T, "schedule": schedule, "beta_start": beta_start, "beta_end": beta_end,
            "prediction_type": prediction, "clip_sample_range": clip_range if clip else 0.0,
            "timestep_spacing": spacing, "steps_offset": offset,
            "set_alpha_to_one": _key(cfg, "set_alpha_to_one", (bool,), True, where), "variance_type": variance,
            "scheduler": scheduler,
            "trained_betas": tuple(float(b) for b in betas) if betas is not None else ()}


def _check_dpm_settings(cfg: dict[str, Any], where: str) -> None:
    """Refuse a DPMSolverMultistepScheduler setting that changes the run away from DPM-Solver++(2M) with final
    sigma zero (what our sampler takes), naming the key."""
    for key, (honoured, default) in DPM_SETTINGS.items():
        value = cfg.get(key, default)
        if value is None:
            value = default
        if value != honoured or isinstance(value, bool) != isinstance(honoured, bool):
            raise SchedulerConfigError(f"{where} has '{key}' {value!r}, which Latent Explorer's DPM-Solver++(2M) "
                                       f"cannot honour (it takes {honoured!r})")


def betas_of(config: DiffusersConfig) -> Tensor:
    """beta_1..beta_T as the folder's scheduler computes them (float32, as diffusers does):
    linear: evenly from beta_start to beta_end; scaled_linear: the squares of evenly spaced sqrt(beta)s (Rombach et
    al. 2022); squaredcos_cap_v2: Nichol & Dhariwal 2021's cosine, beta capped at 0.999; or the listed ones."""
    T = config.timesteps
    if config.schedule == "linear":
        return torch.linspace(config.beta_start, config.beta_end, T, dtype=torch.float32)
    if config.schedule == "scaled_linear":
        return torch.linspace(config.beta_start ** 0.5, config.beta_end ** 0.5, T, dtype=torch.float32) ** 2
    if config.schedule == "squaredcos_cap_v2":
        return cosine_schedule(T).betas
    return torch.tensor(config.trained_betas, dtype=torch.float32)


def make_noise_schedule(config: DiffusersConfig, where: str = "the scheduler config") -> NoiseSchedule:
    """The folder's schedule as data; SchedulerConfigError if its betas leave (0, 1)."""
    if config.schedule == "squaredcos_cap_v2":
        return cosine_schedule(config.timesteps)
    try:
        return schedule_from_betas(betas_of(config), name=config.schedule)
    except ValueError:
        keys = "trained_betas" if config.schedule == "trained_betas" else "beta_start' and 'beta_end"
        raise SchedulerConfigError(f"{where}'s '{keys}' give betas outside (0, 1)") from None


def spaced_timesteps(config: DiffusersConfig, k: int) -> list[int]:
    """The k steps a run visits, descending, as diffusers' DDIMScheduler.set_timesteps spaces them:
    linspace: round(linspace(0, T - 1, k)); leading: i * (T // k) + steps_offset; trailing: round(T - i T / k) - 1."""
    T = config.timesteps
    if not 1 <= k <= T:
        raise ValueError(f"steps must be between 1 and {T}, got {k}")
    if config.timestep_spacing == "linspace":
        ts = [int(v) for v in np.linspace(0, T - 1, k).round()[::-1]]
    elif config.timestep_spacing == "trailing":
        ts = [int(v) - 1 for v in np.round(np.arange(T, 0, -T / k))]
    else:
        ts = [i * (T // k) + config.steps_offset for i in range(k)][::-1]
    if ts[0] >= T:
        raise ValueError(f"{k} steps with steps_offset {config.steps_offset} would start past the last step "
                         f"{T - 1}; ask for fewer steps")
    return ts


def dpm_solver_timesteps(config: DiffusersConfig, k: int) -> list[int]:
    """The k steps DPM-Solver++ visits, descending, as DPMSolverMultistepScheduler.set_timesteps spaces them (with
    no lambda_min_clipped): k + 1 points with the last, 0, dropped, so the run never evaluates the network at
    t = 0 but steps from the last visited t straight to the clean image:
    linspace: round(linspace(0, T - 1, k + 1))[:k] descending; leading: i * (T // (k + 1)) + steps_offset for
    i = k..1; trailing: round(T - i T / k) - 1, as DDIM's."""
    T = config.timesteps
    if not 1 <= k <= T:
        raise ValueError(f"steps must be between 1 and {T}, got {k}")
    if config.timestep_spacing == "linspace":
        ts = [int(v) for v in np.linspace(0, T - 1, k + 1).round()[::-1][:-1]]
    elif config.timestep_spacing == "trailing":
        ts = [int(v) - 1 for v in np.round(np.arange(T, 0, -T / k))]
    else:
        ts = [i * (T // (k + 1)) + config.steps_offset for i in range(k, 0, -1)]
    if ts[0] >= T or any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError(f"{k} DPM-Solver++ steps with {config.timestep_spacing} spacing over {T} steps would "
                         "visit a step twice or start past the last step; ask for fewer steps")
    return ts


def fit_steps(config: DiffusersConfig, k: int) -> int:
    """The most steps, up to k, a run can be spaced into: any k <= T, but with "leading" spacing the first step,
    (k - 1) (T // k) + steps_offset, must stay below T (at T = 20 and offset 1, 19 steps; at T = 100 and offset
    2, not 50 but 49); in a DPMSolverMultistepScheduler folder, DPM-Solver++'s own spacing must fit too."""
    for j in range(min(k, config.timesteps), 0, -1):
        try:
            spaced_timesteps(config, j)
            if config.scheduler == DPM_SOLVER:
                dpm_solver_timesteps(config, j)
        except ValueError:
            continue
        return j
    return 1


def step_pairs(config: DiffusersConfig, sampler: str, k: int) -> Pairs:
    """The (t, t_prev) of a run of k steps. DDIM follows DDIMScheduler.step: t_prev = t - T // k, and past the
    first step alpha_bar = 1 (set_alpha_to_one) or alpha_bar_0 (-1 or 0 here). The ancestral sampler and
    DPM-Solver++ go from each visited step to the next and end on the clean image; the full ancestral run (k = T)
    visits every step; DPM-Solver++ in a DPMSolverMultistepScheduler folder visits that scheduler's steps."""
    T = config.timesteps
    if sampler == "ddpm" and k == T:
        ts = list(range(T - 1, -1, -1))
    elif sampler == "dpm++" and config.scheduler == DPM_SOLVER:
        ts = dpm_solver_timesteps(config, k)
    else:
        ts = spaced_timesteps(config, k)
    if sampler != "ddim":
        return list(zip(ts, ts[1:] + [-1]))
    final = -1 if config.set_alpha_to_one else 0
    return [(t, t - T // k if t - T // k >= 0 else final) for t in ts]


def quiet_diffusers() -> None:
    """diffusers logs a warning for each config key it fills in or ignores; a model opened here says what it is
    through our own messages, so only its errors are let through."""
    from diffusers.utils import logging

    logging.set_verbosity_error()


class DiffusersDDPM(Denoiser):
    """A diffusers UNet2DModel with its scheduler's settings, sampled by our samplers."""

    family = FAMILY
    ddim_keeps_eps = True

    def __init__(self, config: DiffusersConfig, unet_config: dict[str, Any]) -> None:
        super().__init__(config)
        quiet_diffusers()
        from diffusers import UNet2DModel

        self.unet = UNet2DModel.from_config(dict(unet_config))
        self.unet_config = dict(unet_config)
        self._base_schedule = make_noise_schedule(config)
        self._schedule: NoiseSchedule = self._base_schedule

    @property
    def large_variance(self) -> bool:        # type: ignore[override]
        return VARIANCE_TYPES[self.config.variance_type]

    @property
    def has_null_class(self) -> bool:
        return False

    @property
    def clip_x0(self) -> float:
        return self.config.clip_sample_range

    def fit_steps(self, k: int) -> int:
        return fit_steps(self.config, k)

    @property
    def schedule(self) -> NoiseSchedule:
        if self._schedule.device != self.device:
            self._schedule = self._base_schedule.to(self.device)
        return self._schedule

    def step_pairs(self, sampler: str, steps: int) -> Pairs:
        return step_pairs(self.config, sampler, steps)

    def network(self, x_t: Tensor, t: Tensor, y: Tensor | None) -> Tensor:
        """The UNet's output at (x_t, t[, y]) as eps (see the module doc for x0 and v)."""
        out = self.unet(x_t, t, class_labels=y).sample
        kind = self.config.prediction_type
        if kind == "epsilon":
            return out
        a_sqrt = broadcast(self.schedule.sqrt_alpha_bars, t, x_t)
        s_sqrt = broadcast(self.schedule.sqrt_one_minus_alpha_bars, t, x_t)
        if kind == "sample":
            return (x_t - a_sqrt * out) / s_sqrt
        return a_sqrt * out + s_sqrt * x_t


__all__ = ["BETA_SCHEDULES", "DiffusersConfig", "DiffusersDDPM", "PREDICTION_TYPES", "SchedulerConfigError",
           "dpm_solver_timesteps", "fit_steps", "make_noise_schedule", "quiet_diffusers", "scheduler_settings",
           "spaced_timesteps", "step_pairs"]
