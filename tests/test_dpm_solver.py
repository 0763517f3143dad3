"""DPM-Solver++(2M) (Lu et al. 2022): the same numbers as diffusers' DPMSolverMultistepScheduler on the same
inputs and timesteps (the shipped DDPM, and a stand-in eps on both schedules), DDIM's first step, second-order
convergence where the answer is known in closed form, a resume that repeats its parent, guidance, and the CLI.
Our DDIM step is checked against diffusers' DDIMScheduler as well. diffusers is imported inside the tests only:
the library never imports it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from models import checkpoint as ck
from models.cli import main
from models.ddpm import DPM_STEPS
from models.diffusion.samplers import (ddim_frames, ddim_step, dpm_lambda, dpm_solver_frames, dpm_solver_step,
                                       timesteps)
from models.diffusion.schedule import NoiseSchedule, cosine_schedule, linear_schedule

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DDPM = ROOT / "weights" / "ddpm.safetensors"
TOL = 1e-4
# diffusers 0.42 with numpy 2 warns inside set_timesteps; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def gaussian_eps(schedule: NoiseSchedule, s2: float = 0.25):
    """The exact eps of data x0 ~ N(0, s2 I): eps = sqrt(1 - a) x / (a s2 + 1 - a), a = alpha_bar_t."""
    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = schedule.alpha_bars[t].view(-1, 1, 1, 1)
        return (1 - a).sqrt() * x / (a * s2 + 1 - a)
    return eps_fn


def stand_in_eps(schedule: NoiseSchedule):
    """A network you can read: the Gaussian eps, bent by a term nonlinear in x and in t. The bend is scaled by
    sqrt(alpha_bar_t), as a trained network's error must be where x0 divides by it, so every x0 stays O(1)."""
    gauss = gaussian_eps(schedule)

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = schedule.alpha_bars[t].view(-1, 1, 1, 1)
        return gauss(x, t) + 0.2 * a.sqrt() * torch.sin(3 * x + t.float().view(-1, 1, 1, 1) / 100)
    return eps_fn


def diffusers_dpm(schedule: NoiseSchedule, steps: int):
    """diffusers' DPM-Solver++(2M) as the issue names it, on the model's betas and exactly our timesteps."""
    from diffusers import DPMSolverMultistepScheduler

    sc = DPMSolverMultistepScheduler(num_train_timesteps=schedule.T, trained_betas=schedule.betas.cpu().numpy(),
                                     algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True,
                                     final_sigmas_type="zero", prediction_type="epsilon")
    return sc


def run_diffusers(sc, eps_fn, x_T: torch.Tensor, steps: int, T: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """diffusers' loop: the x_t it feeds the network at every step plus its final sample, and its x0 per step."""
    sc.set_timesteps(timesteps=timesteps(T, steps))
    x, xs, x0s = x_T.clone(), [], []
    for t in sc.timesteps:
        xs.append(x)
        x = sc.step(eps_fn(x, t.expand(x.shape[0])), t, x).prev_sample
        x0s.append(sc.model_outputs[-1])            # the data prediction it converted the eps to
    return xs + [x], x0s


def max_difference(frames, xs: list[torch.Tensor], x0s: list[torch.Tensor]) -> float:
    ours = [f.x_t for f in frames] + [frames[-1].x0]
    assert len(ours) == len(xs)
    return max([float((a - b).abs().max()) for a, b in zip(ours, xs)]
               + [float((f.x0 - b).abs().max()) for f, b in zip(frames, x0s)])


@pytest.mark.parametrize("steps", [10, 20])
def test_dpm_solver_matches_diffusers_on_the_shipped_ddpm(steps):
    model = ck.load(SHIPPED_DDPM, "cpu")
    x_T = torch.randn(2, *model.image_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        frames = list(model.raw_frames(x_T, sampler="dpm++", steps=steps))
        sc = diffusers_dpm(model.schedule, steps)
        xs, x0s = run_diffusers(sc, model.predict_eps, x_T, steps, model.schedule.T)
    assert [f.t for f in frames] == sc.timesteps.tolist() == timesteps(model.schedule.T, steps)
    assert max_difference(frames, xs, x0s) < TOL


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [10, 20])
def test_dpm_solver_matches_diffusers_with_a_stand_in_network(kind, steps):
    schedule = linear_schedule(1000) if kind == "linear" else cosine_schedule(1000)
    sc = diffusers_dpm(schedule, steps)
    if kind == "cosine":
        # diffusers multiplies the alphas out in float32, 1.3e-5 off at t = T - 1, where the cosine schedule's
        # sqrt(alpha_bar) is 5e-5 and x0 divides by it (x0 then differs by 5e-3 in either's float32 arithmetic):
        # give it the schedule's own alpha_bars, multiplied out in float64, so both solve the same problem.
        sc.alphas_cumprod = schedule.alpha_bars.clone()
    eps_fn = stand_in_eps(schedule)
    x_T = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    frames = list(dpm_solver_frames(schedule, eps_fn, x_T, steps))
    xs, x0s = run_diffusers(sc, eps_fn, x_T, steps, schedule.T)
    assert max_difference(frames, xs, x0s) < TOL


def test_the_first_step_is_ddims_and_the_last_gives_x0():
    """First order without an earlier x0: the DDIM step at eta = 0 (Lu et al. 2022, sec. 4.1); the last step
    reaches sigma = 0, so its x_prev is its x0, the sample."""
    schedule = linear_schedule(100)
    eps_fn = stand_in_eps(schedule)
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    dpm = list(dpm_solver_frames(schedule, eps_fn, x_T, 6))
    ddim = list(ddim_frames(schedule, eps_fn, x_T, 6))
    torch.testing.assert_close(dpm[1].x_t, ddim[1].x_t, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(dpm[2].x_t, ddim[2].x_t, atol=1e-4)           # from the second step on: 2nd order
    last = dpm[-1]
    step = dpm_solver_step(schedule, eps_fn(last.x_t, torch.full((2,), last.t)), last.t, -1, last.x_t,
                           dpm[-2].x0, dpm[-2].t)
    torch.testing.assert_close(step.x_prev, step.x0)
    assert len(list(dpm_solver_frames(schedule, eps_fn, x_T, 1))) == 1
    assert float(dpm_lambda(schedule, -1)) == float("inf")


def test_second_order_convergence_where_the_ode_is_solved_in_closed_form():
    """For data x0 ~ N(0, s2 I) the probability-flow ODE keeps x_t / sqrt(a s2 + 1 - a) fixed, so the exact
    sample is sqrt(s2) x_T / sqrt(a_T s2 + 1 - a_T). Doubling the steps cuts DPM-Solver++'s error about 4x
    (second order) and DDIM's about 2x (first order)."""
    schedule, s2 = linear_schedule(1000), 0.25
    eps_fn = gaussian_eps(schedule, s2)
    x_T = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    a_T = schedule.alpha_bars[-1]
    exact = s2 ** 0.5 * x_T / (a_T * s2 + 1 - a_T).sqrt()

    def error(frames) -> float:
        return float((list(frames)[-1].x0 - exact).abs().max())

    dpm = [error(dpm_solver_frames(schedule, eps_fn, x_T, n)) for n in (200, 400)]
    ddim = [error(ddim_frames(schedule, eps_fn, x_T, n)) for n in (200, 400)]
    assert dpm[0] / dpm[1] > 3.0, dpm
    assert 1.5 < ddim[0] / ddim[1] < 2.5, ddim
    assert dpm[1] < ddim[1] / 5


def test_a_resume_with_the_last_x0_repeats_the_parents_tail_and_without_it_is_refused(tiny_config):
    schedule = linear_schedule(40)
    eps_fn = stand_in_eps(schedule)
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    parent = list(dpm_solver_frames(schedule, eps_fn, x_T, 10))
    k = 4
    resumed = list(dpm_solver_frames(schedule, eps_fn, parent[k].x_t, 10, start=k, x0_last=parent[k - 1].x0))
    assert [f.index for f in resumed] == list(range(k, 10))
    for a, b in zip(resumed, parent[k:]):
        torch.testing.assert_close(a.x_t, b.x_t)
        torch.testing.assert_close(a.x0, b.x0)
    with pytest.raises(ValueError, match="needs frame 3's x0"):
        next(dpm_solver_frames(schedule, eps_fn, parent[k].x_t, 10, start=k))

    torch.manual_seed(0)
    model = models.build("ddpm", tiny_config("ddpm")).eval()
    with torch.no_grad():
        x = torch.randn(2, *model.image_shape, generator=torch.Generator().manual_seed(1))
        run = list(model.raw_frames(x, sampler="dpm++", steps=5))
        with pytest.raises(ValueError, match="needs frame 1's x0"):
            model.raw_frames(run[2].x_t, sampler="dpm++", steps=5, start=2)      # refused before any step
        tail = list(model.raw_frames(run[2].x_t, sampler="dpm++", steps=5, start=2, x0_last=run[1].x0))
    torch.testing.assert_close(tail[-1].x0, run[-1].x0)


def test_the_model_samples_with_dpm_solver_for_any_class_and_scale(tiny_config):
    torch.manual_seed(0)
    model = models.build("ddpm", {**tiny_config("ddpm"), "num_classes": 3}).eval()
    with torch.no_grad():
        for p in model.ema.parameters():                   # off the zero start, so classes and scales differ
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        frames = list(model.frames(4, torch.Generator().manual_seed(0), sampler="dpm++"))
        assert len(frames) == min(DPM_STEPS, model.schedule.T) and frames[-1].total == len(frames)
        images = model.sample(4, torch.Generator().manual_seed(0), "dpm++", 6, classes=1, guidance=3.0)
        x_T = torch.randn(4, *model.image_shape, generator=torch.Generator().manual_seed(0))
        a, b, c = (list(model.raw_frames(x_T, sampler="dpm++", steps=6, classes=1, guidance=w))[-1].x0
                   for w in (3.0, 3.0, 0.0))
    assert images.shape == (4, *model.image_shape) and bool(((images >= 0) & (images <= 1)).all())
    torch.testing.assert_close(a, b)                      # deterministic: a generator would only draw x_T
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="'ddpm', 'ddim', 'dpm\\+\\+'"):
        model.raw_frames(torch.zeros(1, *model.image_shape), sampler="euler")


@pytest.mark.parametrize("steps", [10, 20])
def test_ddim_matches_diffusers_at_eta_0(steps):
    """Our pure DDIM step, walked over diffusers' "trailing" timesteps (t_prev = t - T // steps, then the clean
    image), gives DDIMScheduler's samples."""
    from diffusers import DDIMScheduler

    schedule = linear_schedule(1000)
    sc = DDIMScheduler(num_train_timesteps=1000, trained_betas=schedule.betas.numpy(), clip_sample=False,
                       set_alpha_to_one=True, timestep_spacing="trailing", prediction_type="epsilon")
    sc.set_timesteps(steps)
    eps_fn = stand_in_eps(schedule)
    x = ours = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    worst = 0.0
    for t in sc.timesteps.tolist():
        eps = eps_fn(x, torch.full((4,), t))
        out = sc.step(eps, t, x, eta=0.0)
        t_prev = t - 1000 // steps
        step = ddim_step(schedule, eps_fn(ours, torch.full((4,), t)), t, t_prev if t_prev >= 0 else -1, ours)
        worst = max(worst, float((step.x0 - out.pred_original_sample).abs().max()))
        x, ours = out.prev_sample, step.x_prev
        worst = max(worst, float((ours - x).abs().max()))
    assert worst < TOL


def cli(*args) -> int:
    return main([str(a) for a in args])


def test_the_cli_samples_with_dpm_solver_and_refuses_eta_in_one_sentence(tiny_config, tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "ddpm.safetensors"
    ck.save(models.build("ddpm", tiny_config("ddpm")), path, dataset="fashion-mnist", train_steps=0)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    for out in (a, b):
        assert cli("sample", path, "--n", 3, "--sampler", "dpm++", "--steps", 4, "--out", out, "--device", "cpu") == 0
    np.testing.assert_array_equal(np.load(a), np.load(b))
    assert np.load(a).shape == (3, 1, 28, 28)
    capsys.readouterr()
    assert cli("sample", path, "--n", 2, "--sampler", "dpm++", "--eta", 0.5, "--out", a, "--device", "cpu") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--eta" in err[0] and "deterministic" in err[0], err


def test_importing_the_library_does_not_import_diffusers():
    code = ("import sys, models, models.ddpm, models.cli.sample, models.diffusion.samplers\n"
            "assert 'diffusers' not in sys.modules, 'diffusers imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
