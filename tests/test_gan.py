"""GAN: shapes, the generator is the conv VAE's decoder, each player's loss falls while the other is frozen, the
training step's bookkeeping, checkpoints and a bit-identical resume (for the GAN and the VAE-GAN)."""
from __future__ import annotations

import pytest
import torch

import models
from models import checkpoint as ck
from models.train import TrainSettings, load_trainer, new_trainer, run

SMALL = {"latent_dim": 4, "channels": [8, 16]}


def small_gan(**changes):
    torch.manual_seed(0)
    return models.build("gan", {**SMALL, **changes})


def test_gan_shapes_ranges_and_capabilities():
    gan = small_gan().eval()
    assert gan.capabilities == {"decode", "sample", "critic"}
    g = torch.Generator().manual_seed(0)
    z = gan.prior(5, g)
    img = gan.decode(z)
    assert z.shape == (5, 4) and img.shape == (5, 1, 28, 28)
    assert img.min() >= 0 and img.max() <= 1
    p = gan.critic(img)
    assert p.shape == (5,) and bool(((p > 0) & (p < 1)).all())
    assert torch.equal(gan.sample(3, torch.Generator().manual_seed(1)), gan.sample(3, torch.Generator().manual_seed(1)))
    assert models.build("gan", {}).latent_dim == 16


def test_the_generator_is_the_conv_vaes_decoder():
    """Same architecture and latent size as the conv VAE, so the app compares objectives, not networks."""
    gan = models.build("gan", {})
    vae = models.build("vae", {"latent_dim": 16, "arch": "conv"})
    want = {k: v.shape for k, v in vae.decoder.state_dict().items()}
    assert {k: v.shape for k, v in gan.G.state_dict().items()} == want
    assert type(gan.G) is type(vae.decoder)


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A network's whole state: weights and buffers (BatchNorm's running statistics too)."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _moved(before: dict[str, torch.Tensor], net: torch.nn.Module) -> list[str]:
    """Names of the tensors of `net` that differ from `before`."""
    return [k for k, v in net.state_dict().items() if not torch.equal(before[k], v)]


def _own_steps(step, x, opts, steps=15) -> list[dict[str, float]]:
    """`steps` of one of the model's own half-steps, with every optimizer of the model at hand (as the app's
    slow motion has them) and the same noise each time (a fresh generator, seeded alike)."""
    return [step(x, opts, torch.Generator().manual_seed(0)) for _ in range(steps)]


def test_the_discriminators_loss_falls_with_the_generator_frozen(fmnist_512):
    gan = small_gan().train()
    x = fmnist_512.images[:32]
    opts = gan.configure_optimizers(TrainSettings(lr=2e-3))
    assert set(opts) == {"generator", "discriminator"}
    g_before = _state(gan.G)
    losses = [out["discriminator"] for out in _own_steps(gan.discriminator_step, x, opts)]
    assert losses[-1] < 0.7 * losses[0]
    assert not _moved(g_before, gan.G)
    z = torch.randn((32, 4), generator=torch.Generator().manual_seed(0))
    gan.eval()
    assert gan.critic(x).mean() > gan.critic(gan.decode(z)).mean()     # the detective now tells them apart


def test_the_generators_loss_falls_with_the_discriminator_frozen(fmnist_512):
    gan = small_gan().train()
    x = fmnist_512.images[:32]
    opts = gan.configure_optimizers(TrainSettings(lr=2e-3))
    _own_steps(gan.discriminator_step, x, opts)           # D's optimizer now holds its state and D its gradients
    d_before = _state(gan.D)
    losses = [out["generator"] for out in _own_steps(gan.generator_step, x, opts)]
    assert losses[-1] < 0.8 * losses[0]
    assert not _moved(d_before, gan.D)


def test_a_training_step_updates_both_players_and_reports_them(fmnist_512):
    gan = small_gan().train()
    opts = gan.configure_optimizers(TrainSettings(lr=2e-4))
    assert set(opts) == {"generator", "discriminator"}
    assert opts["generator"].param_groups[0]["betas"] == (0.5, 0.999)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    out = gan.training_step(fmnist_512.images[:32], opts, torch.Generator().manual_seed(0))
    assert set(out) == {"generator", "discriminator", "d_real", "d_fake"}
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
    assert out["discriminator"] == pytest.approx(1.386, abs=0.2)      # 2 log 2: an untrained D guesses 1/2
    changed = {k.split(".")[0] for k, v in gan.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"G", "D"}
    again = gan.training_step(fmnist_512.images[:32], opts, torch.Generator().manual_seed(0))
    assert again != out                                  # same noise, new weights: the game moved on


# ---------------------------------------------------------------------------------------------------------------
# checkpoints and resume (both adversarial families)

@pytest.mark.parametrize("family", ["gan", "vaegan"])
def test_checkpoints_round_trip_and_refuse_lying_files(family, fmnist_512, tmp_path, rewrite_config):
    torch.manual_seed(0)
    model = models.build(family, SMALL)
    trainer = new_trainer(model, TrainSettings(batch_size=32, steps=2))
    for _ in run(trainer, fmnist_512.images[:64]):
        pass                                             # moves weights and BatchNorm statistics
    path = tmp_path / f"{family}.safetensors"
    ck.save(model, path, dataset="fashion-mnist", train_steps=2)
    loaded = ck.load(path)
    model.eval()
    x = fmnist_512.images[:4]
    z = torch.randn((4, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.decode(z))
        assert torch.equal(loaded.critic(x), model.critic(x))

    cases = {
        "latent": ({**SMALL, "latent_dim": 5}, ck.TensorMismatchError),
        "widths": ({**SMALL, "channels": [8, 32]}, ck.TensorMismatchError),
        "too-deep": ({**SMALL, "channels": [8, 16, 16]}, ck.BadConfigError),     # 28 does not halve 3 times
        "no-latent": ({**SMALL, "latent_dim": 0}, ck.BadConfigError),
        "typo": ({**SMALL, "latnet_dim": 4}, ck.BadConfigError),
    }
    for name, (config, error) in cases.items():
        bad = rewrite_config(path, tmp_path / f"{name}.safetensors", config)
        with pytest.raises(error) as info:
            ck.load(bad)
        assert f"{name}.safetensors" in str(info.value), name
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ck.TruncatedError):
        ck.load(cut)


@pytest.mark.parametrize("family", ["gan", "vaegan"])
def test_training_resumes_bit_identically(family, fmnist_512, tmp_path, train_whole_and_save_at):
    images = fmnist_512.images[:96]                       # 3 steps per epoch at batch 32: resume crosses an epoch

    def fresh():
        torch.manual_seed(1234)
        model = models.build(family, SMALL)
        return new_trainer(model, TrainSettings(batch_size=32, steps=8, seed=7, lr=2e-4, extra=(("gamma", 0.1),)))

    whole, _ = train_whole_and_save_at(fresh, images, 4, tmp_path / "state.safetensors")
    resumed = load_trainer(tmp_path / "state.safetensors", device=torch.device("cpu"))
    events = list(run(resumed, images))
    assert [e.step for e in events] == [5, 6, 7, 8]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    untouched = fresh().model.state_dict()
    assert any(not torch.equal(untouched[k], v) for k, v in whole.model.state_dict().items())


# ---------------------------------------------------------------------------------------------------------------
# a careful GAN's options: hinge loss, spectral norm, an averaged generator, TTUR

CAREFUL = {**SMALL, "loss": "hinge", "spectral_norm": True, "ema_decay": 0.9}


def test_the_hinge_pair_on_known_logits():
    from models.gan import fake_loss, fooling_loss, real_loss

    logits = torch.tensor([2.0, 0.0, -1.0])
    assert real_loss(logits, "hinge").item() == pytest.approx((0 + 1 + 2) / 3)     # max(0, 1 - l)
    assert fake_loss(logits, "hinge").item() == pytest.approx((3 + 1 + 0) / 3)     # max(0, 1 + l)
    assert fooling_loss(logits, "hinge").item() == pytest.approx(-1 / 3)           # -l
    assert fooling_loss(logits, "ns").item() == pytest.approx(real_loss(logits, "ns").item())


def test_the_defaults_are_the_original_dcgan():
    """No average, no spectral norm: the state dict a checkpoint written before the options holds."""
    plain = models.build("gan", {})
    assert not hasattr(plain, "ema") and "ema_updates" not in plain.state_dict()
    assert not any("parametrizations" in k for k in plain.state_dict())
    careful = models.build("gan", CAREFUL)
    assert {k for k in careful.state_dict() if k.startswith("ema.")} == {f"ema.{k}" for k in careful.G.state_dict()}
    with pytest.raises(ValueError, match="loss"):
        models.build("gan", {**SMALL, "loss": "wasserstein"})
    with pytest.raises(ValueError, match="ema_decay"):
        models.build("gan", {**SMALL, "ema_decay": 1.0})


@pytest.mark.parametrize("family", ["gan", "vaegan"])
def test_the_average_decodes_once_training_stops_and_round_trips(family, fmnist_512, tmp_path):
    torch.manual_seed(0)
    model = models.build(family, CAREFUL)
    live, average = (model.G, model.ema) if family == "gan" else (model.decoder, model.ema)
    settings = TrainSettings(batch_size=32, steps=3, lr=1e-3, extra=(("lr_d", 2e-3),))
    trainer = new_trainer(model, settings)
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 2e-3        # TTUR
    first = {k: v.clone() for k, v in average.state_dict().items()}
    before_live = [p.detach().clone() for p in live.parameters()]
    for _ in run(trainer, fmnist_512.images[:96]):
        pass
    assert int(model.ema_updates) == 3
    assert all(not p.requires_grad for p in average.parameters())
    z = torch.randn((4, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.eval()
        assert torch.equal(model.decode(z), torch.sigmoid(average(z)))
        model.train()
        assert torch.equal(model.decode(z), torch.sigmoid(live(z)))
        model.eval()
    # The warm-up: the first update averages with weight 1/10 on the old copy, so it moved most of the way.
    moved = any(not torch.equal(first[k], v) for k, v in average.state_dict().items())
    assert moved and any(not torch.equal(a, b) for a, b in zip(before_live, live.parameters()))
    path = tmp_path / f"{family}.safetensors"
    ck.save(model, path, dataset="fashion-mnist", train_steps=3)
    loaded = ck.load(path)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.decode(z))
        assert torch.equal(loaded.critic(fmnist_512.images[:4]), model.critic(fmnist_512.images[:4]))


def test_an_ema_update_with_warm_up():
    """After n updates the decay is min(decay, (1 + n) / (10 + n)): the first update keeps 1/10 of the old copy."""
    torch.manual_seed(0)
    gan = models.build("gan", {**SMALL, "ema_decay": 0.999})
    old = [p.detach().clone() for p in gan.ema.parameters()]
    with torch.no_grad():
        for p in gan.G.parameters():
            p.add_(1.0)
    gan.update_average()
    for a, o, p in zip(gan.ema.parameters(), old, gan.G.parameters()):
        assert torch.allclose(a, 0.1 * o + 0.9 * p, atol=1e-6)
    for a, b in zip(gan.ema.buffers(), gan.G.buffers()):
        assert torch.equal(a, b)                                   # BatchNorm statistics are copied


@pytest.mark.parametrize("family", ["gan", "vaegan"])
def test_a_careful_run_resumes_bit_identically(family, fmnist_512, tmp_path, train_whole_and_save_at):
    """Spectral norm's power-iteration vectors, the average and its update count all travel in the state."""
    images = fmnist_512.images[:96]

    def fresh():
        torch.manual_seed(1234)
        return new_trainer(models.build(family, CAREFUL),
                           TrainSettings(batch_size=32, steps=6, seed=7, lr=2e-4, extra=(("lr_d", 4e-4),)))

    whole, _ = train_whole_and_save_at(fresh, images, 3, tmp_path / "state.safetensors")
    resumed = load_trainer(tmp_path / "state.safetensors", device=torch.device("cpu"))
    list(run(resumed, images))
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


@pytest.mark.parametrize("family", ["gan", "vaegan"])
def test_a_wider_detective_faces_a_finished_forger(family, fmnist_512, tmp_path):
    """d_channels widens D alone; take_generator hands over everything else (G and its average, the VAE-GAN's
    encoder), so the forger's drawings are the source's to the pixel while the new detective is its own, and the
    pair round-trips through a checkpoint."""
    torch.manual_seed(0)
    source = models.build(family, {**SMALL, "ema_decay": 0.999})
    for _ in run(new_trainer(source, TrainSettings(batch_size=32, steps=3, lr=1e-3)), fmnist_512.images[:96]):
        pass
    wide = models.build(family, {**SMALL, "ema_decay": 0.999, "d_channels": [16, 32]})
    assert wide.D.body[0].out_channels == 16 and source.D.body[0].out_channels == 8
    own_detective = {k: v.clone() for k, v in wide.D.state_dict().items()}
    wide.take_generator(source)
    assert int(wide.ema_updates) == int(source.ema_updates) == 3
    z = torch.randn((6, 4), generator=torch.Generator().manual_seed(0))
    x = fmnist_512.images[:6]
    with torch.no_grad():
        for training in (False, True):
            source.train(training), wide.train(training)
            assert torch.equal(wide.decode(z), source.decode(z))
        wide.eval(), source.eval()
        if family == "vaegan":
            assert torch.equal(wide.encode(x).mu, source.encode(x).mu)
        assert all(torch.equal(v, own_detective[k]) for k, v in wide.D.state_dict().items())
        path = tmp_path / "wide.safetensors"
        ck.save(wide, path, dataset="fashion-mnist", train_steps=3)
        loaded = ck.load(path)
        assert loaded.config.d_channels == (16, 32)
        assert torch.equal(loaded.decode(z), wide.decode(z)) and torch.equal(loaded.critic(x), wide.critic(x))
    with pytest.raises(ValueError, match="does not fit"):
        models.build(family, {**SMALL, "latent_dim": 5, "ema_decay": 0.999}).take_generator(source)
    with pytest.raises(ValueError, match="divisible"):
        models.build(family, {**SMALL, "d_channels": [8, 16, 32]})


def test_a_vaegan_starts_from_a_finished_gan(fmnist_512):
    """take_generator makes the GAN's G, its average and its D the VAE-GAN's decoder and detective, so prior draws
    and verdicts are the GAN's to the pixel; encoder_step then trains the fresh encoder alone, towards codes whose
    reconstructions resemble their inputs, while the decoder and D stay put."""
    torch.manual_seed(0)
    gan = models.build("gan", {**SMALL, "ema_decay": 0.999})
    for _ in run(new_trainer(gan, TrainSettings(batch_size=32, steps=3, lr=1e-3)), fmnist_512.images[:96]):
        pass
    trainer = new_trainer(models.build("vaegan", {**SMALL, "ema_decay": 0.999}),
                          TrainSettings(batch_size=32, steps=1, lr=1e-3))
    vaegan = trainer.model
    vaegan.take_generator(gan)
    assert int(vaegan.ema_updates) == 3
    z = torch.randn((6, 4), generator=torch.Generator().manual_seed(0))
    x = fmnist_512.images[:64]
    with torch.no_grad():
        gan.eval(), vaegan.eval()
        assert torch.equal(vaegan.decode(z), gan.decode(z)) and torch.equal(vaegan.critic(x), gan.critic(x))
        before = {k: v.clone() for k, v in vaegan.state_dict().items()}
        error_before = (vaegan.reconstruct(x) - x).pow(2).mean()
    vaegan.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        vaegan.encoder_step(x, trainer.optimizers, g)
    vaegan.eval()
    with torch.no_grad():
        changed = {k.split(".")[0] for k, v in vaegan.state_dict().items() if not torch.equal(v, before[k])}
        assert changed == {"encoder"}
        assert (vaegan.reconstruct(x) - x).pow(2).mean() < error_before
    with pytest.raises(ValueError, match="hinge"):
        models.build("vaegan", {**SMALL, "ema_decay": 0.999, "loss": "hinge"}).take_generator(gan)
    with pytest.raises(ValueError, match="does not fit"):
        models.build("vaegan", {**SMALL}).take_generator(gan)        # no average to take G's into
