"""The reverse process: pure sampler steps, and generators that stream one Frame per step.

A step takes the network's *output* (its eps prediction), never the network, so it can be tested with numbers
worked out by hand and reused by any caller. Every step also returns the predicted clean image x0, so the UI
shows it for free. The frame generators own the loop: call the network, take a step, yield a Frame.

A Frame holds the step's input x_t, the eps the step used and x0 = (x_t - sqrt(1 - alpha_bar_t) eps) /
sqrt(alpha_bar_t). The last step goes to alpha_bar = 1, where x_prev equals x0 exactly, so the last frame's x0 is
the sample: scripts take the last frame, the app shows every one.

clip_x0 clips the predicted x0 to the data range [-r, r] (r = clip_x0; True is r = 1, False or 0 no
clipping) and re-derives eps from it (Ho et al. 2020's sampler does the same; diffusers' DDIMScheduler keeps
the network's eps, which `ddim_step(keep_eps=True)` follows). Near t = T, alpha_bar is tiny (about 2e-9 at the
cosine schedule's last step) and the division by sqrt(alpha_bar) turns a small eps error into a wild x0;
clipping keeps the first steps sane. The frame's eps is then the re-derived one, so x0 and eps always agree. The
price: the deterministic map x_T -> image is no longer smooth or invertible, so models.ddpm clips only for the
cosine schedule.

DPM-Solver++(2M) (Lu et al. 2022) is a multistep solver: each step also uses the x0 predicted one step earlier.
That state is not hidden in an object: `dpm_solver_step` takes it as arguments (x0_last, t_last), and
`dpm_solver_frames` carries it from one step to the next in plain sight.

A run walks `timesteps(T, steps)`, each step going to the next. A model whose scheduler spaces its steps its own
way (a diffusers folder: models.diffusers_model) gives the frame generators `pairs` instead: the (t, t_prev) of
every frame, in order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor

from .schedule import NoiseSchedule, predict_eps_from_x0, predict_x0_from_eps

EpsFn = Callable[[Tensor, Tensor], Tensor]   # (x_t (B, C, H, W), t (B,) int64) -> eps (B, C, H, W)
Pairs = Sequence[tuple[int, int]]            # (t, t_prev) of every step of a run, in sampling order


@dataclass(frozen=True)
class Step:
    x_prev: Tensor      # the sample one (possibly strided) step less noisy
    x0: Tensor          # the predicted clean image at this step
    eps: Tensor         # the eps the step used: the network's, or re-derived from the clipped x0


@dataclass(frozen=True)
class Frame:
    index: int          # 0 .. total-1, in sampling order
    t: int              # the schedule step this frame denoised (descending over a run)
    x_t: Tensor         # the network's input at step t
    x0: Tensor          # predicted clean image from (x_t, eps)
    eps: Tensor         # the noise prediction the step used
    total: int = 0      # how many frames the run yields


def _alpha_bar(schedule: NoiseSchedule, t: int) -> Tensor:
    """alpha_bar_t as a 0-d tensor; t = -1 means the clean image, alpha_bar = 1."""
    if t < 0:
        return torch.ones((), device=schedule.device)
    return schedule.alpha_bars[t]


def _x0_and_eps(schedule: NoiseSchedule, eps: Tensor, t: int, x_t: Tensor, clip_x0: float,
                keep_eps: bool = False) -> tuple[Tensor, Tensor]:
    """x0 from eps, clipped to [-clip_x0, clip_x0] when clip_x0 > 0 (True is 1), and the eps that goes with it:
    re-derived from the clipped x0, or the network's own with keep_eps (diffusers' DDIM)."""
    x0 = predict_x0_from_eps(schedule, x_t, t, eps)
    if clip_x0:
        r = float(clip_x0)
        x0 = x0.clamp(-r, r)
        if not keep_eps:
            eps = predict_eps_from_x0(schedule, x_t, t, x0)
    return x0, eps


def ddpm_step(schedule: NoiseSchedule, eps: Tensor, t: int, x_t: Tensor, noise: Tensor | None,
              t_prev: int | None = None, clip_x0: float = False, large_variance: bool = False) -> Step:
    """Ancestral step x_t -> x_{t_prev} (Ho et al. 2020), t_prev = t - 1 unless the run is respaced.

    With a = alpha_bar_t, a' = alpha_bar_{t_prev} and beta = 1 - a / a' (the step's own beta):
        x_prev = sqrt(a') beta / (1 - a) x0 + sqrt(1 - beta) (1 - a') / (1 - a) x_t + sigma z,
        sigma^2 = beta (1 - a') / (1 - a)      (the posterior variance beta_tilde; 0 at the last step),
    or sigma^2 = beta with large_variance (the paper's other choice, sec. 3.2; diffusers' "fixed_large").
    """
    t_prev = t - 1 if t_prev is None else t_prev
    a, a_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev)
    x0, eps = _x0_and_eps(schedule, eps, t, x_t, clip_x0)
    beta = 1.0 - a / a_prev
    mean = (a_prev.sqrt() * beta / (1.0 - a)) * x0 + ((1.0 - beta).sqrt() * (1.0 - a_prev) / (1.0 - a)) * x_t
    if t_prev < 0:
        return Step(mean, x0, eps)
    if noise is None:
        raise ValueError("ddpm_step needs noise for every step but the last")
    sigma = beta.sqrt() if large_variance else (beta * (1.0 - a_prev) / (1.0 - a)).sqrt()
    return Step(mean + sigma * noise, x0, eps)


def ddim_sigma(schedule: NoiseSchedule, t: int, t_prev: int, eta: float) -> Tensor:
    """Song et al. 2021, eq. 16: sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a'). eta = 1 is DDPM's noise."""
    a, a_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev)
    return eta * ((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev)).sqrt()


def ddim_step(schedule: NoiseSchedule, eps: Tensor, t: int, t_prev: int, x_t: Tensor, eta: float = 0.0,
              noise: Tensor | None = None, clip_x0: float = False, keep_eps: bool = False) -> Step:
    """DDIM step x_t -> x_{t_prev} (Song et al. 2021, eq. 12), t_prev = -1 for the final step:

        x_prev = sqrt(a') x0 + sqrt(1 - a' - sigma^2) eps + sigma z.

    Deterministic at eta = 0 (noise is then ignored). keep_eps: a clipped x0 keeps the network's eps in the
    direction term, as diffusers' DDIMScheduler does (its use_clipped_model_output=False)."""
    a_prev = _alpha_bar(schedule, t_prev)
    x0, eps = _x0_and_eps(schedule, eps, t, x_t, clip_x0, keep_eps)
    sigma = ddim_sigma(schedule, t, t_prev, eta)
    x_prev = a_prev.sqrt() * x0 + (1.0 - a_prev - sigma ** 2).clamp(min=0).sqrt() * eps
    if eta > 0 and t_prev >= 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        x_prev = x_prev + sigma * noise
    return Step(x_prev, x0, eps)


def dpm_lambda(schedule: NoiseSchedule, t: int) -> Tensor:
    """lambda_t = log(alpha_t / sigma_t) = 1/2 log(alpha_bar_t / (1 - alpha_bar_t)), half the log-SNR, as a 0-d
    tensor (Lu et al. 2022, with alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t)). It rises as the
    noise falls; t = -1, the clean image (sigma = 0), is +inf."""
    a = _alpha_bar(schedule, t)
    if t < 0:
        return torch.full((), math.inf, device=a.device)
    return 0.5 * (torch.log(a) - torch.log1p(-a))


def dpm_solver_step(schedule: NoiseSchedule, eps: Tensor, t: int, t_prev: int, x_t: Tensor,
                    x0_last: Tensor | None = None, t_last: int | None = None, clip_x0: float = False) -> Step:
    """One step x_t -> x_{t_prev} of DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), in the data-prediction form.

    The network's eps gives this step's data prediction x0 = x_theta(x_t, t). (x0_last, t_last) is the state a
    multistep solver carries: the x0 predicted by the step before, at the noisier step t_last > t; None for the
    first step of a run. With alpha = sqrt(alpha_bar), sigma = sqrt(1 - alpha_bar) and lambda = log(alpha / sigma):

        h = lambda_{t_prev} - lambda_t,       h_last = lambda_t - lambda_{t_last},       r = h_last / h
        D = x0                                                   first order (no x0_last; = DDIM at eta 0)
        D = (1 + 1 / (2 r)) x0 - 1 / (2 r) x0_last                 second order (the multistep correction)
        x_{t_prev} = (sigma_{t_prev} / sigma_t) x_t - alpha_{t_prev} (e^{-h} - 1) D

    t_prev = -1 is the clean image: sigma = 0, lambda = +inf, h = +inf, and the step is first order whatever
    the state, x_{t_prev} = x0 exactly ("final sigma zero"; diffusers' DPMSolverMultistepScheduler with
    final_sigmas_type="zero" also takes its last step first order, and with lower_order_final=True and fewer
    than 15 steps it would do so for any final sigma). The Step returned holds this step's x0 and eps: pass
    (step.x0, t) as (x0_last, t_last) to the next step.
    """
    x0, eps = _x0_and_eps(schedule, eps, t, x_t, clip_x0)
    if t_prev < 0:
        return Step(x0, x0, eps)
    if not t_prev < t:
        raise ValueError(f"a step goes to a less noisy step: t_prev = {t_prev} is not below t = {t}")
    a, a_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev)
    sigma, sigma_prev, alpha_prev = (1.0 - a).sqrt(), (1.0 - a_prev).sqrt(), a_prev.sqrt()
    lam = dpm_lambda(schedule, t)
    h = dpm_lambda(schedule, t_prev) - lam
    d = x0
    if x0_last is not None:
        if t_last is None or not t_last > t:
            raise ValueError(f"the last x0 must come from a noisier step than t = {t}, not t_last = {t_last}")
        r = (lam - dpm_lambda(schedule, t_last)) / h
        d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_last
    x_prev = (sigma_prev / sigma) * x_t - (alpha_prev * torch.expm1(-h)) * d
    return Step(x_prev, x0, eps)


def timesteps(T: int, k: int) -> list[int]:
    """k steps spread evenly over [T - 1, 0], descending; always starting at T - 1, the pure-noise end
    ("trailing" spacing, Lin et al. 2024), and ending at 0."""
    if not 1 <= k <= T:
        raise ValueError(f"steps must be between 1 and {T}, got {k}")
    if k == 1:
        return [T - 1]
    return [round((T - 1) * (k - 1 - i) / (k - 1)) for i in range(k)]


def _t_batch(t: int, x: Tensor) -> Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def run_pairs(T: int, steps: int, pairs: Pairs | None = None) -> list[tuple[int, int]]:
    """The (t, t_prev) of every step of a run: `pairs` where a model gives its own, else `timesteps(T, steps)`
    with each step going to the next and the last to the clean image (-1)."""
    if pairs is not None:
        return [(int(t), int(t_prev)) for t, t_prev in pairs]
    ts = timesteps(T, steps)
    return list(zip(ts, ts[1:] + [-1]))


def _from_frame(plan: list[tuple[int, int]], start: int) -> list[tuple[int, tuple[int, int]]]:
    """(frame index, (t, t_prev)) from frame `start` on; a start outside the run is an error, not an empty run."""
    if not 0 <= start < len(plan):
        raise ValueError(f"a run of {len(plan)} frames has no frame {start}")
    return list(enumerate(plan))[start:]


def ddpm_frames(schedule: NoiseSchedule, eps_fn: EpsFn, x_T: Tensor, generator: torch.Generator | None = None,
                steps: int | None = None, clip_x0: float = False, start: int = 0, pairs: Pairs | None = None,
                large_variance: bool = False) -> Iterator[Frame]:
    """Ancestral sampling from x_T: T frames (the paper's sampler), or `steps` frames on a respaced schedule.

    start = k resumes a run at its frame k: x_T is then that frame's x_t, and frames k .. total-1 follow (a
    branch: the same x_t, other noise from `generator` for the steps that remain)."""
    plan = run_pairs(schedule.T, steps or schedule.T, pairs)
    x = x_T
    for i, (t, t_prev) in _from_frame(plan, start):
        eps = eps_fn(x, _t_batch(t, x))
        step = ddpm_step(schedule, eps, t, x, _noise(x, generator) if t_prev >= 0 else None, t_prev, clip_x0,
                         large_variance)
        yield Frame(i, t, x, step.x0, step.eps, len(plan))
        x = step.x_prev


def ddim_frames(schedule: NoiseSchedule, eps_fn: EpsFn, x_T: Tensor, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, clip_x0: float = False, start: int = 0,
                pairs: Pairs | None = None, keep_eps: bool = False) -> Iterator[Frame]:
    """DDIM sampling from x_T in `steps` frames; noise is drawn from `generator` only when eta > 0.
    start = k resumes at frame k from that frame's x_t, as in `ddpm_frames`.

    A run whose last pair ends on a step t_prev >= 0 rather than the clean image (diffusers' set_alpha_to_one =
    False: the last step lands on alpha_bar_0) ends with that step's x_prev as its sample, so the last frame's
    x0 is then x_prev: the sample, as always."""
    plan = run_pairs(schedule.T, steps, pairs)
    x = x_T
    for i, (t, t_prev) in _from_frame(plan, start):
        eps = eps_fn(x, _t_batch(t, x))
        last = i == len(plan) - 1
        noise = _noise(x, generator) if eta > 0 and t_prev >= 0 else None
        step = ddim_step(schedule, eps, t, t_prev, x, eta, noise, clip_x0, keep_eps)
        yield Frame(i, t, x, step.x_prev if last and t_prev >= 0 else step.x0, step.eps, len(plan))
        x = step.x_prev


def dpm_solver_frames(schedule: NoiseSchedule, eps_fn: EpsFn, x_T: Tensor, steps: int = 20, clip_x0: float = False,
                      start: int = 0, x0_last: Tensor | None = None, pairs: Pairs | None = None) -> Iterator[Frame]:
    """DPM-Solver++(2M) sampling from x_T in `steps` frames: deterministic, one network call a frame.

    The first step is first order (there is no earlier x0 yet), the last goes to the clean image and is first
    order too (see `dpm_solver_step`), every other step is second order. start = k resumes at frame k from that
    frame's x_t, as in `ddim_frames`; a second-order step needs the x0 of frame k - 1, so give it as x0_last
    (frame k - 1's Frame.x0). The run has no noise to re-roll, so a resumed run repeats its parent's tail."""
    plan = run_pairs(schedule.T, steps, pairs)
    todo = _from_frame(plan, start)
    if start > 0 and x0_last is None:
        raise ValueError(f"DPM-Solver++ resumed at frame {start} needs frame {start - 1}'s x0 (x0_last)")
    t_last = plan[start - 1][0] if start > 0 else None
    x = x_T
    for i, (t, t_prev) in todo:
        eps = eps_fn(x, _t_batch(t, x))
        step = dpm_solver_step(schedule, eps, t, t_prev, x, x0_last, t_last, clip_x0)
        yield Frame(i, t, x, step.x0, step.eps, len(plan))
        x, x0_last, t_last = step.x_prev, step.x0, t          # the multistep state, carried in the open


def ddim_invert(schedule: NoiseSchedule, eps_fn: EpsFn, x0: Tensor, steps: int = 50, clip_x0: float = False,
                pairs: Pairs | None = None) -> Tensor:
    """Run deterministic DDIM backwards, image -> x_T, over the same steps `ddim_frames(steps)` (or `pairs`)
    walks forwards.

    Going up from level t_prev to t, eps is evaluated at (x_{t_prev}, t): the eps the sampler will see at
    (x_t, t), approximated where x_t is not known yet (Song et al. 2021, sec. 4.3; Dhariwal & Nichol 2021).
        x_t = sqrt(a_t) x0_pred + sqrt(1 - a_t) eps,  x0_pred = (x_{t_prev} - sqrt(1 - a_prev) eps) / sqrt(a_prev)
    """
    x = x0
    for t, t_prev in reversed(run_pairs(schedule.T, steps, pairs)):     # ascending
        eps = eps_fn(x, _t_batch(t, x))
        a, a_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev)
        x0_pred = (x - (1.0 - a_prev).sqrt() * eps) / a_prev.sqrt()
        if clip_x0:
            x0_pred = x0_pred.clamp(-float(clip_x0), float(clip_x0))
        x = a.sqrt() * x0_pred + (1.0 - a).sqrt() * eps
    return x


__all__ = ["EpsFn", "Frame", "Pairs", "Step", "ddim_frames", "ddim_invert", "ddim_sigma", "ddim_step", "ddpm_frames",
           "ddpm_step", "dpm_lambda", "dpm_solver_frames", "dpm_solver_step", "run_pairs", "timesteps"]
