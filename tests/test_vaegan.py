"""VAE-GAN (Larsen et al. 2016): the interface, the paper's split of which loss trains which network, each
network's loss falling while the others are frozen, and the gamma and beta weights."""
from __future__ import annotations

import copy

import pytest
import torch

import models
from models.core import Posterior
from models.train import TrainSettings
from models.vae import mmd_to_prior

SMALL = {"latent_dim": 4, "channels": [8, 16]}


def small(**changes):
    torch.manual_seed(0)
    return models.build("vaegan", {**SMALL, **changes})


def noise(n: int, d: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, d), generator=g), torch.randn((n, d), generator=g)


def test_vaegan_interface(fmnist_512):
    m = small().eval()
    assert m.capabilities == {"encode", "decode", "sample", "critic"}
    x = fmnist_512.images[:6]
    post = m.encode(x)
    assert isinstance(post, Posterior) and post.mu.shape == post.logvar.shape == (6, 4)
    for img in (m.decode(post.mu), m.reconstruct(x), m.sample(6, torch.Generator().manual_seed(0))):
        assert img.shape == (6, 1, 28, 28) and img.min() >= 0 and img.max() <= 1
    assert m.critic(x).shape == (6,)
    default = models.build("vaegan", {})
    vae = models.build("vae", {"latent_dim": 16, "arch": "conv"})
    for mine, theirs in ((default.encoder, vae.encoder), (default.decoder, vae.decoder)):
        shapes = {k: v.shape for k, v in mine.state_dict().items()}
        assert shapes == {k: v.shape for k, v in theirs.state_dict().items()}


def test_each_loss_reaches_only_its_own_network(fmnist_512):
    """Algorithm 1: encoder <- beta L_prior + L_llike (beta = 1); decoder <- gamma L_llike - L_GAN;
    discriminator <- L_GAN."""
    m = small().train()
    x = fmnist_512.images[:16]
    eps, z_p = noise(16)
    out = m.losses(x, eps, z_p, gamma=0.5)
    nets = m.networks()
    grads = {name: torch.autograd.grad(out[name], list(nets[name].parameters()), retain_graph=True)
             for name in nets}
    # The encoder's loss does not depend on the GAN terms: dropping them leaves its gradient unchanged.
    enc_only = torch.autograd.grad(out["prior"] + out["llike"], list(m.encoder.parameters()), retain_graph=True)
    assert all(torch.allclose(a, b) for a, b in zip(grads["encoder"], enc_only))
    # The prior term never reaches the decoder, and the feature reconstruction never reaches the discriminator.
    assert torch.autograd.grad(out["prior"], list(m.decoder.parameters()), retain_graph=True,
                               allow_unused=True)[0] is None
    assert all(g is None or not g.any() for g in torch.autograd.grad(
        out["llike"], list(m.D.head.parameters()), retain_graph=True, allow_unused=True))

    # training_step applies exactly these gradients (the same draws, taken from the trainer's generator).
    m2 = small().train()
    settings = TrainSettings(lr=1e-4, extra=(("gamma", 0.5),))
    opts = m2.configure_optimizers(settings)
    gen = torch.Generator().manual_seed(0)
    m2.training_step(x, opts, gen, settings)
    for name, net in m2.networks().items():
        for p, g in zip(net.parameters(), grads[name]):
            assert torch.allclose(p.grad, g, atol=1e-6), name


def test_gamma_weighs_the_feature_reconstruction_in_the_decoder_only(fmnist_512):
    m = small().train()
    x = fmnist_512.images[:16]
    eps, z_p = noise(16)
    lo, hi = m.losses(x, eps, z_p, gamma=0.0), m.losses(x, eps, z_p, gamma=2.0)
    assert hi["decoder"].item() == pytest.approx(lo["decoder"].item() + 2.0 * lo["llike"].item(), rel=1e-5)
    assert hi["encoder"].item() == pytest.approx(lo["encoder"].item())
    assert hi["discriminator"].item() == pytest.approx(lo["discriminator"].item())
    # The knob reaches the step through the settings (the test above), not through an attribute set on the model.
    m.configure_optimizers(TrainSettings(extra=(("gamma", 3.0),)))
    assert not hasattr(m, "gamma")


def test_beta_weighs_the_kl_in_the_encoder_only_and_comes_from_the_settings(fmnist_512):
    x = fmnist_512.images[:16]
    eps, z_p = noise(16)
    m = small().train()
    one, three = m.losses(x, eps, z_p, gamma=1.0), m.losses(x, eps, z_p, gamma=1.0, beta=3.0)
    assert three["encoder"].item() == pytest.approx(one["encoder"].item() + 2.0 * one["prior"].item(), rel=1e-5)
    assert three["decoder"].item() == pytest.approx(one["decoder"].item())
    assert three["discriminator"].item() == pytest.approx(one["discriminator"].item())
    # A step with settings.beta = 3 moves the encoder differently from one at the default, the same draws given.
    moved = {}
    for beta in (1.0, 3.0):
        m = small().train()
        settings = TrainSettings(lr=1e-3, beta=beta)
        m.training_step(x, m.configure_optimizers(settings), torch.Generator().manual_seed(0), settings)
        moved[beta] = torch.cat([p.detach().flatten() for p in m.encoder.parameters()])
    assert not torch.allclose(moved[1.0], moved[3.0])


def test_mmd_is_near_zero_between_prior_draws_and_grows_with_the_codes_distance_from_the_prior():
    g = torch.Generator().manual_seed(0)
    prior = lambda: torch.randn((128, 16), generator=g)  # noqa: E731
    same = torch.stack([mmd_to_prior(prior(), prior()) for _ in range(40)])
    # unbiased: over many batches the mean sits at 0 within its standard error
    assert abs(same.mean().item()) < 3 * same.std().item() / 40 ** 0.5
    shifted = [mmd_to_prior(prior() + shift, prior()).item() for shift in (0.25, 0.5, 1.0)]
    squeezed = mmd_to_prior(0.3 * prior(), prior()).item()    # the codes clustered tighter than the prior
    assert same.abs().max().item() < shifted[0] < shifted[1] < shifted[2]
    assert squeezed > 5 * same.abs().max().item()


def test_the_mmd_knob_adds_its_term_to_the_encoders_loss_only(fmnist_512):
    x = fmnist_512.images[:16]
    eps, z_p = noise(16)
    m = small().train()
    off, on = m.losses(x, eps, z_p, gamma=1.0), m.losses(x, eps, z_p, gamma=1.0, mmd=50.0)
    assert "mmd" not in off and on["mmd"].item() != 0
    assert on["encoder"].item() == pytest.approx(off["encoder"].item() + 50.0 * on["mmd"].item(), rel=1e-5)
    assert on["decoder"].item() == pytest.approx(off["decoder"].item())
    assert on["discriminator"].item() == pytest.approx(off["discriminator"].item())
    # from the settings' knob into the step, which reports the term beside the others
    settings = TrainSettings(lr=1e-3, extra=(("mmd", 50.0),))
    report = m.training_step(x, m.configure_optimizers(settings), torch.Generator().manual_seed(0), settings)
    assert "mmd" in report and "mmd" not in m.training_step(x, m.configure_optimizers(TrainSettings()),
                                                           torch.Generator().manual_seed(0), TrainSettings())


@pytest.fixture(scope="module")
def warmed(fmnist_512):
    """A VAE-GAN after 20 joint steps: with untrained partners, the encoder has nothing to improve against."""
    m = small().train()
    opts = m.configure_optimizers(TrainSettings(lr=2e-3))
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        m.training_step(fmnist_512.images[:32], opts, g)
    return m


@pytest.mark.parametrize("name", ["encoder", "decoder", "discriminator"])
def test_each_networks_loss_falls_with_the_others_frozen(name, warmed, fmnist_512):
    """The model's own one-network steps (slow motion's), with every network's optimizer at hand and every
    network holding gradients from a step of its own just before: only the named network moves, weights and
    buffers alike."""
    m = copy.deepcopy(warmed)
    x = fmnist_512.images[:32]
    steps = {"encoder": m.encoder_step, "decoder": m.generator_step, "discriminator": m.discriminator_step}
    settings = TrainSettings(lr=2e-3, extra=(("gamma", 0.01),))
    opts = m.configure_optimizers(settings)
    assert set(opts) == set(m.networks())
    for k, other_step in steps.items():
        if k != name:
            other_step(x, opts, torch.Generator().manual_seed(2), settings)
    step = steps[name]
    others = {k: {n: t.clone() for n, t in net.state_dict().items()} for k, net in m.networks().items()
              if k != name}
    losses = []
    for _ in range(15):     # the same eps and z_p each time, drawn as noise(32) draws them
        losses.append(step(x, opts, torch.Generator().manual_seed(0), settings)[name])
    assert losses[-1] < 0.95 * losses[0] and sum(losses[-5:]) < sum(losses[:5]), losses
    for k, before in others.items():
        moved = [n for n, t in m.networks()[k].state_dict().items() if not torch.equal(before[n], t)]
        assert not moved, (k, moved)


def test_training_step_reports_every_term(fmnist_512):
    m = small().train()
    opts = m.configure_optimizers(TrainSettings(lr=2e-4))
    assert set(opts) == {"encoder", "decoder", "discriminator"}
    out = m.training_step(fmnist_512.images[:32], opts, torch.Generator().manual_seed(0))
    assert set(out) == {"encoder", "decoder", "discriminator", "prior", "llike", "d_real", "d_fake"}
    assert out["encoder"] == pytest.approx(out["prior"] + out["llike"], rel=1e-5)
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
