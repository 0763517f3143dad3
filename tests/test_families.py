"""Every registered family answers the shared interface with the right shapes, on whatever device it is given,
and learns: a few optimisation steps on real Fashion-MNIST lower its loss.

Families are discovered from `models.FAMILIES`, so a new family is covered as soon as it registers. Configs come
from conftest's `tiny_config` (add your family there); fields it leaves out that SHRINK names are shrunk too.
"""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import models
from models import core
from models.train import TrainSettings, new_trainer, run

# Fields shrunk for any family whose config has them and whose tiny config does not set them (e.g. a conv VAE).
SHRINK: dict[str, Any] = {"hidden": (64, 32), "channels": (8, 16)}
# Which training loss should fall; default: "loss" when a family reports it, else its only loss. Adversarial
# families report several: in the first steps their discriminator learns to tell real from generated.
WATCHED_LOSS: dict[str, str] = {"gan": "discriminator", "vaegan": "discriminator"}

# An arch that draws only some picture sizes, with one it draws from the tiny config's widths (the GAN's "dcgan":
# 4 x 2^k pixels for k stages, 16 for tiny_config's two).
ARCH_PICTURES: dict[str, dict[str, Any]] = {"dcgan": {"image_shape": (1, 16, 16)}}

DECODERS = sorted(name for name, fam in models.FAMILIES.items() if core.DECODE in fam.model_cls.capabilities)


@pytest.fixture
def small_config(tiny_config: Callable[[str], dict[str, Any]]) -> Callable[..., Any]:
    """small_config(family, **override) -> a config instance: SHRINK, then conftest's tiny config, then override."""

    def make(family: str, **override: Any) -> Any:
        cls = models.FAMILIES[family].config_cls
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: v for k, v in SHRINK.items() if k in names}
        values.update(tiny_config(family))
        values.update({k: v for k, v in override.items() if k in names})
        return core.config_from_dict(cls, values)

    return make


def variants(family: str) -> list[dict[str, Any]]:
    """The config variants a family's shape tests run on: latent sizes 2 and 16, and each arch it offers."""
    names = {f.name for f in dataclasses.fields(models.FAMILIES[family].config_cls)}
    out: list[dict[str, Any]] = [{"latent_dim": d} for d in (2, 16)] if "latent_dim" in names else [{}]
    if "arch" in names:
        hint = typing.get_type_hints(models.FAMILIES[family].config_cls)["arch"]
        out = [dict(v, arch=a, **ARCH_PICTURES.get(a, {})) for a in typing.get_args(hint) for v in out]
    return out


CASES = [pytest.param(fam, v, id=f"{fam}-" + "-".join(f"{k}{val}" for k, val in v.items()) if v else fam)
         for fam in DECODERS for v in variants(fam)]


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@pytest.fixture
def fashion(fmnist_512) -> torch.Tensor:
    return fmnist_512.images


def test_the_autoencoder_families_are_registered() -> None:
    assert {"ae", "cae", "vae"} <= set(models.FAMILIES)
    assert {"ae", "cae", "vae"} <= set(DECODERS)


@pytest.mark.parametrize("device", available_devices())
@pytest.mark.parametrize(("family", "variant"), CASES)
def test_interface_shapes(family: str, variant: dict[str, Any], device: str, small_config) -> None:
    torch.manual_seed(0)
    config = small_config(family, **variant)
    model = models.build(family, config).to(device).eval()
    c, h, w = model.image_shape
    d = model.latent_dim
    if "latent_dim" in variant:
        assert d == variant["latent_dim"]

    with torch.no_grad():
        z = torch.randn(5, d, device=device)
        images = model.decode(z)
        assert images.shape == (5, c, h, w)
        assert images.device.type == torch.device(device).type
        assert 0.0 <= images.min().item() and images.max().item() <= 1.0

        one = model.decode(z[:1])                      # a single dragged probe decodes in eval mode
        assert one.shape == (1, c, h, w)

        g = torch.Generator(device=device)
        drawn = model.sample(6, g.manual_seed(3))
        again = model.sample(6, g.manual_seed(3))
        assert drawn.shape == (6, c, h, w)
        assert torch.equal(drawn, again), "sample() must be reproducible from its generator"

        if core.ENCODE in model.capabilities:
            x = torch.rand(4, c, h, w, device=device)
            post = model.encode(x)
            assert post.mu.shape == (4, d)
            assert post.logvar is None or post.logvar.shape == (4, d)
            assert model.reconstruct(x).shape == (4, c, h, w)


def test_vae_posterior_and_reconstruction_modes(small_config) -> None:
    """A VAE's encoder is a Gaussian; reconstructions come from mu unless a sample is asked for."""
    torch.manual_seed(0)
    model = models.build("vae", small_config("vae", latent_dim=2)).eval()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        post = model.encode(x)
        assert post.logvar is not None and post.sigma is not None
        assert torch.equal(model.reconstruct(x), model.decode(post.mu))
        g = torch.Generator()
        a = model.reconstruct(x, sample=True, generator=g.manual_seed(1))
        b = model.reconstruct(x, sample=True, generator=g.manual_seed(2))
        assert not torch.equal(a, b)
        assert torch.equal(a, model.reconstruct(x, sample=True, generator=g.manual_seed(1)))


def test_vae_shares_the_autoencoders_networks() -> None:
    """ae-2d vs vae-2d and cae-16 vs conv-vae-16 compare objectives: same bodies, the encoder just gives 2d."""
    def shapes(module: torch.nn.Module) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in module.parameters()]

    ae, vae = models.build("ae", {"latent_dim": 2}), models.build("vae", {"latent_dim": 2})
    cae, cvae = models.build("cae", {"latent_dim": 16}), models.build("vae", {"latent_dim": 16, "arch": "conv"})
    assert shapes(ae.decoder) == shapes(vae.decoder)
    assert shapes(cae.decoder) == shapes(cvae.decoder)
    assert shapes(ae.encoder)[:-2] == shapes(vae.encoder)[:-2]
    assert shapes(vae.encoder)[-2:] == [(4, 256), (4,)]          # mu and log-variance for d = 2
    assert shapes(cae.encoder)[:-2] == shapes(cvae.encoder)[:-2]


def test_kl_divergence_closed_form() -> None:
    from models.vae import kl_divergence

    zero = torch.zeros(3, 4)
    assert torch.equal(kl_divergence(zero, zero), torch.zeros(3))           # q = p
    mu = torch.tensor([[1.0, -2.0]])
    logvar = torch.log(torch.tensor([[4.0, 0.25]]))
    # Per axis: 1/2 (sigma^2 + mu^2 - 1 - log sigma^2).
    expected = 0.5 * (4.0 + 1.0 - 1.0 - math.log(4.0)) + 0.5 * (0.25 + 4.0 - 1.0 - math.log(0.25))
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    # Against torch.distributions for random values.
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(5, 3), torch.ones(5, 3))
    assert torch.allclose(kl_divergence(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1), atol=1e-5)


def test_vae_elbo_is_per_image_and_matches_the_training_loss(fashion: torch.Tensor, small_config) -> None:
    """-mean(ELBO) is the beta = 1 training loss for the same noise draw (dense VAE: no batch statistics)."""
    model = models.build("vae", small_config("vae", latent_dim=2))
    x = fashion[:8]
    with torch.no_grad():
        elbo = model.elbo(x, torch.Generator().manual_seed(0))
        again = model.elbo(x, torch.Generator().manual_seed(0))
    assert elbo.shape == (8,)
    assert torch.equal(elbo, again)
    assert (elbo < 0).all()                    # a Bernoulli likelihood of 784 pixels is below 1
    optimizers = model.configure_optimizers(TrainSettings(beta=1.0))
    losses = model.training_step(x, optimizers, torch.Generator().manual_seed(0))
    assert losses["loss"] == pytest.approx(-elbo.mean().item(), rel=1e-5)
    assert losses["loss"] == pytest.approx(losses["recon"] + losses["kl"], rel=1e-6)


def watched(family: str, losses: dict[str, float]) -> float:
    key = WATCHED_LOSS.get(family) or ("loss" if "loss" in losses else None)
    if key is None:
        assert len(losses) == 1, f"{family} reports {sorted(losses)}: add it to WATCHED_LOSS"
        key = next(iter(losses))
    return losses[key]


SLOW_TO_TRAIN = {"ddpm"}       # a U-Net: several seconds for 30 steps on a busy CPU


def training_cases() -> list[Any]:
    cases = []
    for f in DECODERS:
        for v in ([{"arch": a} for a in ("dense", "conv")] if f == "vae" else [{}]):
            marks = [pytest.mark.slow] if f in SLOW_TO_TRAIN else []
            cases.append(pytest.param(f, v, id="-".join([f, *v.values()]), marks=marks))
    return cases


@pytest.mark.parametrize(("family", "variant"), training_cases())
def test_a_few_steps_lower_the_loss_on_fashion_mnist(family: str, variant: dict[str, Any],
                                                     fashion: torch.Tensor, small_config) -> None:
    """30 steps of batch 32 on real images: the mean of the last 3 losses is clearly below the first 3."""
    torch.manual_seed(0)
    model = models.build(family, small_config(family, latent_dim=8, **variant))
    trainer = new_trainer(model, TrainSettings(batch_size=32, lr=5e-3, steps=30, seed=0))
    losses = [watched(family, ev.losses) for ev in run(trainer, fashion)]
    assert len(losses) == 30
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.85 * first, f"{family}: loss went {first:.3g} -> {last:.3g} in 30 steps"


# Moving results off the device for storage (.cpu(), .to("cpu")) is fine; choosing where to compute is not.
_DEVICE_LITERAL = re.compile(
    r"""\.cuda\(|\.mps\(|torch\.device\(\s*["'](cpu|cuda|mps)|\.to\(\s*["'](cuda|mps)"""
    r"""|\bdevice\s*(?::[^=\n]*)?=\s*["'](cpu|cuda|mps)""")   # device="cpu", and device: T = "cpu" too


@pytest.mark.parametrize("line", ['x.cuda()', 'torch.device("cuda")', "t.to('cuda:0')", 'f(device="cpu")',
                                  'def f(x, device: torch.device | str = "cpu"):', "device: str = 'mps'"])
def test_the_device_grep_catches_literals(line: str) -> None:
    assert _DEVICE_LITERAL.search(line)
    assert not _DEVICE_LITERAL.search("x.to(device)") and not _DEVICE_LITERAL.search('if device.type == "cuda":')
    assert not _DEVICE_LITERAL.search('def f(device: torch.device | None = None):')


def test_no_device_is_hard_coded_in_models() -> None:
    """Only models/device.py names devices; everything else takes the device as an argument."""
    root = Path(models.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "device.py" and path.parent == root:
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _DEVICE_LITERAL.search(line.split("#", 1)[0]):
                offenders.append(f"{path.relative_to(root.parent)}:{no}: {line.strip()}")
    assert not offenders, "hard-coded device:\n" + "\n".join(offenders)
