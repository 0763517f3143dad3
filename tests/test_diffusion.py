"""Diffusion: the schedules' values, q_sample, the DDPM and DDIM samplers as frame streams, DDIM inversion, and the
DDPM family (shapes, determinism, EMA, loss, checkpoints, resume)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import models
from models import checkpoint as ck
from models.ddpm import DDPM
from models.diffusion import (cosine_schedule, ddim_frames, ddim_invert, ddim_step, ddpm_frames, ddpm_step,
                              linear_schedule, predict_eps_from_x0, predict_x0_from_eps, q_sample,
                              schedule_from_betas, timesteps)
from models.train import TrainSettings, load_trainer, new_trainer, run

TINY = {"base_channels": 8, "channel_mults": [1, 2], "timesteps": 50, "decode_steps": 5}


def tiny_ddpm(**changes) -> DDPM:
    torch.manual_seed(0)
    return models.build("ddpm", {**TINY, **changes}).eval()


def stand_in_eps(calls: list[int] | None = None):
    """A network stand-in: eps = 0.3 x_t + t / 100, recording the steps it is asked about."""
    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert t.shape == (x.shape[0],) and t.dtype == torch.long and bool((t == t[0]).all())
        if calls is not None:
            calls.append(int(t[0]))
        return 0.3 * x + t.view(-1, 1, 1, 1).to(x.dtype) / 100
    return eps_fn


# ---------------------------------------------------------------------------------------------------------------
# schedules

@pytest.mark.parametrize("T", [1000, 50])
def test_linear_alpha_bar_is_the_product_of_the_papers_betas(T):
    """Ho et al.: beta linear from 1e-4 to 0.02 over 1000 steps (scaled by 1000 / T), alpha_bar_t = prod(1 - beta)."""
    s = linear_schedule(T)
    scale = 1000 / T
    beta = [(1e-4 + (0.02 - 1e-4) * i / (T - 1)) * scale for i in range(T)]
    assert s.betas[0].item() == pytest.approx(1e-4 * scale, rel=1e-6)
    assert s.betas[-1].item() == pytest.approx(0.02 * scale, rel=1e-6)
    for t in (0, 1, T // 2, T - 1):
        assert s.alpha_bars[t].item() == pytest.approx(math.prod(1 - b for b in beta[:t + 1]), rel=1e-5)


@pytest.mark.parametrize("T", [1000, 50])
def test_cosine_alpha_bar_follows_the_closed_form(T):
    """Nichol & Dhariwal eq. 17: alpha_bar(u) = f(u) / f(0), f(u) = cos^2((u + s) / (1 + s) pi / 2), s = 0.008."""
    s = cosine_schedule(T)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, T // 10, T // 2, int(T * 0.9)):
        assert s.alpha_bars[t].item() == pytest.approx(f((t + 1) / T) / f(0.0), rel=1e-4)
    assert s.betas.max().item() <= 0.999 + 1e-6               # the clip that keeps the last steps finite
    assert bool((s.alpha_bars[1:] < s.alpha_bars[:-1]).all())


@pytest.mark.parametrize("make", [linear_schedule, cosine_schedule])
def test_derived_tables_agree_with_the_betas(make):
    s = make(1000)
    assert torch.allclose(s.alphas, 1 - s.betas)
    assert s.alpha_bars_prev[0].item() == 1.0 and torch.equal(s.alpha_bars_prev[1:], s.alpha_bars[:-1])
    assert torch.allclose(s.sqrt_alpha_bars ** 2, s.alpha_bars, atol=1e-7)
    assert torch.allclose(s.sqrt_one_minus_alpha_bars ** 2, 1 - s.alpha_bars, atol=1e-6)
    assert s.posterior_variance[0].item() == 0.0              # the last reverse step adds no noise
    assert bool((s.posterior_variance[1:] <= s.betas[1:] + 1e-7).all())


@pytest.mark.parametrize("make", [linear_schedule, cosine_schedule])
def test_q_sample_at_T_is_standard_normal_whatever_the_image(make):
    s = make(1000)
    g = torch.Generator().manual_seed(0)
    eps = torch.randn((256, 1, 28, 28), generator=g)  # 200,704 draws: the standard error of the mean is 0.0022
    x_T = {}
    for value in (1.0, -1.0):                         # the extremes of the [-1, 1] data range
        x0 = torch.full(eps.shape, value)
        x_T[value] = q_sample(s, x0, s.T - 1, eps).flatten().double()
        x = x_T[value]
        assert abs(x.mean().item()) < 0.01
        assert x.std().item() == pytest.approx(1.0, abs=0.01)
        kurtosis = ((x - x.mean()) ** 4).mean().item() / x.var().item() ** 2
        assert kurtosis == pytest.approx(3.0, abs=0.05)
        assert (x.abs() > 1.96).double().mean().item() == pytest.approx(0.05, abs=0.003)
    # Same noise, opposite images: what is left of the image at T is under 1% of the data range, everywhere.
    assert (x_T[1.0] - x_T[-1.0]).abs().max().item() < 0.02
    # ... while at t = 0 the image is still there
    x0 = torch.ones(4, 1, 28, 28)
    assert q_sample(s, x0, 0, torch.randn(x0.shape, generator=g)).mean().item() == pytest.approx(1.0, abs=0.02)


def test_x0_and_eps_closed_forms_invert_q_sample_per_sample_steps():
    s = linear_schedule(1000)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand((6, 1, 28, 28), generator=g) * 2 - 1
    eps = torch.randn(x0.shape, generator=g)
    t = torch.tensor([0, 1, 10, 500, 900, 999])
    x_t = q_sample(s, x0, t, eps)
    assert torch.allclose(predict_x0_from_eps(s, x_t, t, eps), x0, atol=2e-3)     # 1/sqrt(a) grows near T
    assert torch.allclose(predict_eps_from_x0(s, x_t, t, x0), eps, atol=1e-4)
    # each sample used its own step: sample 0 is almost clean, sample 5 almost pure noise
    assert (x_t[0] - x0[0]).abs().max().item() < 0.05
    assert (x_t[5] - eps[5]).abs().max().item() < 0.05


def test_timesteps_are_evenly_spread_from_T_minus_1_down_to_0():
    assert timesteps(1000, 10) == [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
    assert timesteps(50, 50) == list(range(49, -1, -1))
    assert timesteps(50, 1) == [49]
    for bad in (0, 51):
        with pytest.raises(ValueError):
            timesteps(50, bad)


# ---------------------------------------------------------------------------------------------------------------
# samplers with a stand-in network

@pytest.mark.parametrize("make", [linear_schedule, cosine_schedule])
def test_a_ddpm_run_yields_T_frames_in_order(make):
    s = make(50)
    calls: list[int] = []
    x_T = torch.randn((2, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    frames = list(ddpm_frames(s, stand_in_eps(calls), x_T, torch.Generator().manual_seed(1)))
    assert len(frames) == s.T == 50
    assert [f.index for f in frames] == list(range(50))
    assert [f.t for f in frames] == list(range(49, -1, -1)) == calls
    assert all(f.total == 50 for f in frames)
    assert torch.equal(frames[0].x_t, x_T)


@pytest.mark.parametrize("T,k", [(50, 7), (1000, 10), (1000, 1)])
def test_a_ddim_k_run_yields_k_frames_in_order(T, k):
    s = cosine_schedule(T)
    calls: list[int] = []
    frames = list(ddim_frames(s, stand_in_eps(calls), torch.zeros(1, 1, 4, 4), steps=k))
    assert len(frames) == k
    assert [f.index for f in frames] == list(range(k))
    assert [f.t for f in frames] == calls == timesteps(T, k)
    assert frames[0].t == T - 1 and frames[-1].t == (0 if k > 1 else T - 1)


@pytest.mark.parametrize("make", [linear_schedule, cosine_schedule])
@pytest.mark.parametrize("sampler,eta,clip", [("ddpm", None, False), ("ddim", 0.0, False), ("ddim", 1.0, False),
                                               ("ddim", 0.5, True), ("ddpm", None, True)])
def test_every_frames_x0_is_the_closed_form_of_its_x_t_and_eps(make, sampler, eta, clip):
    s = make(50)
    g = torch.Generator().manual_seed(2)
    x_T = torch.randn((3, 1, 4, 4), generator=g)
    if sampler == "ddpm":
        frames = ddpm_frames(s, stand_in_eps(), x_T, g, clip_x0=clip)
    else:
        frames = ddim_frames(s, stand_in_eps(), x_T, steps=12, eta=eta, generator=g, clip_x0=clip)
    for f in frames:
        a = s.alpha_bars[f.t].double()
        expected = (f.x_t.double() - (1 - a).sqrt() * f.eps.double()) / a.sqrt()
        assert torch.allclose(f.x0.double(), expected, rtol=1e-4, atol=1e-4), (f.index, f.t)
        if clip:
            assert f.x0.abs().max().item() <= 1.0


def test_the_last_step_lands_on_its_x0():
    """The final step goes to alpha_bar = 1, so its output is exactly the predicted clean image."""
    s = linear_schedule(50)
    g = torch.Generator().manual_seed(3)
    x, eps = torch.randn((2, 1, 4, 4), generator=g), torch.randn((2, 1, 4, 4), generator=g)
    step = ddim_step(s, eps, 7, -1, x, eta=1.0, noise=torch.randn((2, 1, 4, 4), generator=g))
    assert torch.allclose(step.x_prev, step.x0)
    step = ddpm_step(s, eps, 0, x, noise=None)
    assert torch.allclose(step.x_prev, step.x0, atol=1e-6)
    with pytest.raises(ValueError):
        ddpm_step(s, eps, 5, x, noise=None)             # every other ancestral step needs its noise


# Worked by hand for a two-step schedule, betas (0.36, 0.4375): alphas (0.64, 0.5625), alpha_bars (0.64, 0.36),
# sqrt(alpha_bar) (0.8, 0.6), sqrt(1 - alpha_bar) (0.6, 0.8). Stand-in network: eps = x / 2.
HAND = schedule_from_betas([0.36, 0.4375])


def half(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return 0.5 * x


def test_ddim_two_steps_worked_by_hand():
    # t = 1, x = 1: eps = 0.5, x0 = (1 - 0.8 * 0.5) / 0.6 = 1, x_0 = 0.8 * 1 + 0.6 * 0.5 = 1.1
    # t = 0, x = 1.1: eps = 0.55, x0 = (1.1 - 0.6 * 0.55) / 0.8 = 0.9625; everything is linear in x_T.
    x_T = torch.tensor([1.0, -2.0]).view(1, 1, 1, 2)
    frames = list(ddim_frames(HAND, half, x_T, steps=2))
    assert [f.t for f in frames] == [1, 0]
    assert frames[0].x0.flatten().tolist() == pytest.approx([1.0, -2.0], abs=1e-6)
    assert frames[1].x_t.flatten().tolist() == pytest.approx([1.1, -2.2], abs=1e-6)
    assert frames[1].eps.flatten().tolist() == pytest.approx([0.55, -1.1], abs=1e-6)
    assert frames[1].x0.flatten().tolist() == pytest.approx([0.9625, -1.925], abs=1e-6)


def test_ddim_at_eta_one_half_worked_by_hand():
    # Song et al. eq. 16 for t = 1 -> 0 (a = 0.36, a' = 0.64):
    #   sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a') = 0.5 * sqrt(0.36 / 0.64) * sqrt(1 - 0.5625)
    #         = 0.5 * 0.75 * sqrt(0.4375);  sigma^2 = 0.25 * 0.5625 * 0.4375 = 0.0615234375
    # eq. 12 with eps = x / 2 and x0 = x (as above):
    #   x' = sqrt(a') x0 + sqrt(1 - a' - sigma^2) eps + sigma z = 0.8 x + 0.5 sqrt(0.2984765625) x + sigma z
    from models.diffusion.samplers import ddim_sigma

    sigma = 0.5 * 0.75 * math.sqrt(0.4375)
    assert sigma ** 2 == pytest.approx(0.0615234375, rel=1e-12)
    assert ddim_sigma(HAND, 1, 0, 0.5).item() == pytest.approx(sigma, rel=1e-6)
    assert ddim_sigma(HAND, 1, 0, 1.0).item() == pytest.approx(2 * sigma, rel=1e-6)     # linear in eta
    assert ddim_sigma(HAND, 0, -1, 0.5).item() == pytest.approx(0.0, abs=1e-7)          # none on the last step
    keep = 0.8 + 0.5 * math.sqrt(0.2984765625)
    x_T = torch.tensor([1.0, -2.0]).view(1, 1, 1, 2)
    z = torch.tensor([0.5, -1.0]).view(1, 1, 1, 2)
    step = ddim_step(HAND, half(x_T, None), 1, 0, x_T, eta=0.5, noise=z)
    assert step.x0.flatten().tolist() == pytest.approx([1.0, -2.0], abs=1e-6)
    assert step.x_prev.flatten().tolist() == pytest.approx([keep + 0.5 * sigma, -2 * keep - sigma], abs=1e-6)
    # the sampler draws that z from its generator, and the last step lands on its x0 = 0.875 x (as for DDPM)
    g = torch.randn((1, 1, 1, 2), generator=torch.Generator().manual_seed(0)).flatten().tolist()
    x1 = [keep + sigma * g[0], -2 * keep + sigma * g[1]]
    frames = list(ddim_frames(HAND, half, x_T, 2, 0.5, torch.Generator().manual_seed(0)))
    assert frames[1].x_t.flatten().tolist() == pytest.approx(x1, abs=1e-6)
    assert frames[1].x0.flatten().tolist() == pytest.approx([0.875 * v for v in x1], abs=1e-6)


def test_seeded_ddpm_two_steps_worked_by_hand():
    # t = 1 -> 0: x0 = 1 as above; mean = sqrt(0.64) 0.4375 / 0.64 x0 + sqrt(0.5625) 0.36 / 0.64 x_t
    #            = 0.546875 x0 + 0.421875 x_t;  sigma^2 = 0.4375 * 0.36 / 0.64 = 0.24609375
    # t = 0: eps = x / 2, x0 = (x - 0.6 x / 2) / 0.8 = 0.875 x, and the last step returns that x0.
    x_T = torch.tensor([1.0, -2.0]).view(1, 1, 1, 2)
    z = torch.randn((1, 1, 1, 2), generator=torch.Generator().manual_seed(0)).flatten().tolist()
    frames = list(ddpm_frames(HAND, half, x_T, torch.Generator().manual_seed(0)))
    x1 = [0.96875 + math.sqrt(0.24609375) * z[0], -1.9375 + math.sqrt(0.24609375) * z[1]]
    assert frames[1].x_t.flatten().tolist() == pytest.approx(x1, abs=1e-6)
    assert frames[1].x0.flatten().tolist() == pytest.approx([0.875 * v for v in x1], abs=1e-6)


def test_ddim_with_eta_1_is_the_ancestral_sampler():
    """Song et al.: eta = 1 gives DDPM's posterior; with the same noise the two samplers agree step by step."""
    s = linear_schedule(50)
    x_T = torch.randn((2, 1, 4, 4), generator=torch.Generator().manual_seed(4))
    for k in (50, 9):
        ddpm = list(ddpm_frames(s, stand_in_eps(), x_T, torch.Generator().manual_seed(5), steps=k))
        ddim = list(ddim_frames(s, stand_in_eps(), x_T, k, 1.0, torch.Generator().manual_seed(5)))
        assert len(ddpm) == len(ddim) == k
        for a, b in zip(ddpm, ddim):
            assert torch.allclose(a.x_t, b.x_t, atol=1e-5) and torch.allclose(a.x0, b.x0, atol=1e-5)


def test_ddim_inversion_worked_by_hand():
    # Up from the clean image: t = 0 (from alpha_bar = 1): eps = x0 / 2, x0_pred = x0, x = 0.8 x0 + 0.6 x0 / 2 = 1.1 x0
    # t = 1: eps = 0.55 x0, x0_pred = (1.1 - 0.6 * 0.55) / 0.8 x0 = 0.9625 x0, x = 0.6 * 0.9625 x0 + 0.8 * 0.55 x0
    #        = 1.0175 x0.  Sampling it back gives 0.9625 * 1.0175 x0: close, as the eps is only approximate.
    x0 = torch.tensor([1.0, -2.0]).view(1, 1, 1, 2)
    x_T = ddim_invert(HAND, half, x0, steps=2)
    assert x_T.flatten().tolist() == pytest.approx([1.0175, -2.035], abs=1e-6)
    back = list(ddim_frames(HAND, half, x_T, steps=2))[-1].x0
    assert back.flatten().tolist() == pytest.approx([0.9625 * 1.0175, -2 * 0.9625 * 1.0175], abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# the DDPM family

def test_ddpm_shapes_ranges_and_capabilities():
    m = tiny_ddpm()
    assert m.latent_dim == 784 and m.capabilities == {"decode", "sample", "denoise"}
    assert models.build("ddpm", {}).latent_dim == 784
    g = torch.Generator().manual_seed(0)
    frames = list(m.frames(3, g, sampler="ddim", steps=4))
    assert len(frames) == 4
    for f in frames:
        for img in (f.x_t, f.x0):
            assert img.shape == (3, 1, 28, 28) and img.min() >= 0 and img.max() <= 1
        assert f.eps.shape == (3, 1, 28, 28)
    assert m.sample(2, g, sampler="ddpm", steps=None).shape == (2, 1, 28, 28)
    assert m.preview(2, g).shape == (2, 1, 28, 28)
    z = m.prior(5, g)
    assert z.shape == (5, 784)
    assert m.decode(z).shape == (5, 1, 28, 28)
    assert m.invert(m.decode(z)).shape == (5, 784)
    assert len(list(m.frames(1, g, sampler="ddpm", steps=None))) == 50
    with pytest.raises(ValueError):
        m.sample(1, g, sampler="euler")


def test_ddim_eta_0_with_a_fixed_seed_gives_the_same_images_twice():
    m = tiny_ddpm()
    a = m.sample(4, torch.Generator().manual_seed(11), sampler="ddim", steps=5, eta=0.0)
    b = m.sample(4, torch.Generator().manual_seed(11), sampler="ddim", steps=5, eta=0.0)
    c = m.sample(4, torch.Generator().manual_seed(12), sampler="ddim", steps=5, eta=0.0)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # decode is the same deterministic map from x_T, and the last frame is what sample returns
    z = torch.randn((4, 784), generator=torch.Generator().manual_seed(11))
    assert torch.equal(m.sample_from(z, 5), a)
    last = list(m.frames(z, sampler="ddim", steps=5))[-1]
    assert torch.equal(last.x0, a)
    assert torch.equal(m.decode(z), m.sample_from(z, m.config.decode_steps))


def test_stochastic_samplers_depend_on_the_seed_only():
    m = tiny_ddpm()
    for sampler, eta in (("ddpm", 0.0), ("ddim", 1.0)):
        a = m.sample(2, torch.Generator().manual_seed(1), sampler=sampler, steps=6, eta=eta)
        b = m.sample(2, torch.Generator().manual_seed(1), sampler=sampler, steps=6, eta=eta)
        assert torch.equal(a, b)
    x_T = torch.randn((2, 784), generator=torch.Generator().manual_seed(9))
    eta1 = [list(m.frames(x_T, torch.Generator().manual_seed(s), "ddim", 6, 1.0))[-1].x0 for s in (1, 2)]
    assert not torch.equal(eta1[0], eta1[1])          # eta = 1 draws fresh noise every step


def test_eps_mse_falls_on_a_fixed_batch(fmnist_512):
    m = tiny_ddpm()
    x = fmnist_512.images[:16]
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 50, (16,), generator=g)
    eps = torch.randn(x.shape, generator=g)
    opts = m.configure_optimizers(TrainSettings(lr=2e-3))
    with torch.no_grad():
        before = m.eps_loss(x, t, eps).item()
    m.train()
    losses = [m.training_step(x, opts, g)["eps_mse"] for _ in range(25)]
    with torch.no_grad():
        after = m.eps_loss(x, t, eps).item()
    assert before == pytest.approx(1.0, abs=0.15)             # the zero-initialised output predicts eps = 0
    assert after < 0.6 * before
    assert sum(losses[-5:]) < sum(losses[:5])


def test_sampling_uses_the_ema_weights_and_training_updates_them(fmnist_512):
    m = tiny_ddpm()
    opts = m.configure_optimizers(TrainSettings(lr=1e-3))
    g = torch.Generator().manual_seed(0)
    ema_before = [p.clone() for p in m.ema.parameters()]
    m.train()
    for _ in range(3):
        m.training_step(fmnist_512.images[:8], opts, g)
    m.eval()
    assert m.ema_updates.item() == 3
    assert all(not p.requires_grad for p in m.ema.parameters())
    moved = [not torch.equal(a, b) for a, b in zip(ema_before, m.ema.parameters())]
    assert any(moved)
    differs = [not torch.equal(a, b) for a, b in zip(m.ema.parameters(), m.unet.parameters())]
    assert any(differs)
    z = torch.randn((2, 784), generator=torch.Generator().manual_seed(0))
    before = m.decode(z)
    with torch.no_grad():
        for p in m.unet.parameters():
            p.zero_()
    assert torch.equal(m.decode(z), before)               # the raw weights play no part in sampling
    with torch.no_grad():
        for p in m.ema.parameters():
            p.zero_()
    assert not torch.equal(m.decode(z), before)


@pytest.mark.slow
def test_ddim_inversion_then_sampling_gets_the_images_back():
    """Train a tiny U-Net on four real (8x8) images, invert them to x_T, and decode them back."""
    from models.data import load_dataset

    x = F.interpolate(load_dataset("fashion-mnist", "train", subset=64).images[:4], size=(8, 8), mode="area")
    torch.manual_seed(0)
    m = models.build("ddpm", {"base_channels": 8, "channel_mults": [1, 2], "ema_decay": 0.99,
                              "decode_steps": 20, "image_shape": [1, 8, 8]})
    opts = m.configure_optimizers(TrainSettings(lr=3e-3))
    g = torch.Generator().manual_seed(0)
    batch = x.repeat(4, 1, 1, 1)
    m.train()
    for _ in range(300):
        m.training_step(batch, opts, g)
    m.eval()
    x_T = m.invert(x)
    assert x_T.shape == (4, 64)
    assert x_T.std().item() == pytest.approx(1.0, abs=0.35)      # a noise-like latent, not the image itself
    back = m.decode(x_T)
    err = (back - x).pow(2).mean().item()
    between = (x[:, None] - x[None]).pow(2).mean().item()     # how far apart the four images are
    assert err < 0.01 and err < between / 20
    assert torch.equal(back, m.decode(x_T))


# ---------------------------------------------------------------------------------------------------------------
# checkpoints and resume

def test_a_ddpm_checkpoint_round_trips_with_its_samples(tmp_path):
    m = tiny_ddpm(schedule="cosine")
    with torch.no_grad():
        m.ema_updates += 7
    path = tmp_path / "ddpm.safetensors"
    ck.save(m, path, dataset="fashion-mnist", train_steps=7)
    loaded = ck.load(path)
    assert loaded.config == m.config and loaded.ema_updates.item() == 7
    a = list(m.frames(2, torch.Generator().manual_seed(0), "ddpm", None))
    b = list(loaded.frames(2, torch.Generator().manual_seed(0), "ddpm", None))
    assert len(a) == len(b) == 50 and all(torch.equal(f.x0, h.x0) for f, h in zip(a, b))


@pytest.mark.parametrize("change,error", [
    ({"schedule": "quadratic"}, ck.BadConfigError),
    ({"decode_steps": 51}, ck.BadConfigError),
    ({"base_channels": 12}, ck.BadConfigError),
    ({"channel_mults": [1, 2, 2, 2]}, ck.BadConfigError),   # 28 does not halve three times
    ({"base_channels": 16}, ck.TensorMismatchError),
    ({"channel_mults": [1, 2, 2]}, ck.TensorMismatchError),
])
def test_a_ddpm_file_whose_config_lies_is_refused(change, error, tmp_path, rewrite_config):
    path = tmp_path / "ddpm.safetensors"
    ck.save(tiny_ddpm(), path, dataset="fashion-mnist", train_steps=1)
    bad = rewrite_config(path, tmp_path / "bad.safetensors", {**TINY, **change})
    with pytest.raises(error) as info:
        ck.load(bad)
    assert "bad.safetensors" in str(info.value) and "\n" not in str(info.value)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ck.TruncatedError):
        ck.load(cut)


def test_ddpm_training_resumes_bit_identically(fmnist_512, tmp_path, train_whole_and_save_at):
    images = fmnist_512.images[:64]                       # 4 steps per epoch at batch 16

    def fresh():
        torch.manual_seed(1234)
        return new_trainer(models.build("ddpm", TINY), TrainSettings(batch_size=16, steps=6, seed=7, lr=1e-3))

    whole, _ = train_whole_and_save_at(fresh, images, 3, tmp_path / "state.safetensors")
    resumed = load_trainer(tmp_path / "state.safetensors", device=torch.device("cpu"))
    for _ in run(resumed, images):
        pass
    assert resumed.step == 6 and resumed.model.ema_updates.item() == 6
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert not torch.equal(whole.model.ema.conv_out.weight, fresh().model.ema.conv_out.weight)
