"""Classifier-free guidance (Ho & Salimans 2022) in the DDPM: the guided mix, the dropped labels, a conditional
model that starts as the unconditional one it was given, checkpoints with and without classes, an unconditional
model's training left exactly as it was, and a conditional run that resumes bit for bit."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import models
from models import checkpoint
from models.ddpm import DDPM, guided_eps, to_model_range
from models.diffusion.schedule import q_sample
from models.ema import update_average
from models.train import TrainSettings, epoch_order, load_trainer, needs_labels, new_trainer, run, save_trainer

ROOT = Path(__file__).resolve().parents[1]
K = 3


def conditional(tiny_config, seed: int = 0, **extra) -> DDPM:
    torch.manual_seed(seed)
    return models.build("ddpm", {**tiny_config("ddpm"), "num_classes": K, **extra}).eval()


def batch(n: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, 1, 28, 28), generator=g), torch.randint(0, 50, (n,), generator=g)


def trained(model: DDPM, steps: int = 3) -> DDPM:
    """The model after a few conditional steps, its class embedding no longer zero (so c and ∅ differ)."""
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand((8, 1, 28, 28), generator=g), torch.arange(8) % K
    opts = model.configure_optimizers(TrainSettings(lr=1e-2))
    for _ in range(steps):
        model.train()
        model.training_step(x, opts, g, TrainSettings(extra=(("p_uncond", 0.5),)), y=y)
    with torch.no_grad():
        model.ema.load_state_dict(model.unet.state_dict())
    return model.eval()


def test_the_guided_mix_is_the_unconditional_eps_at_0_and_the_conditional_one_at_1(tiny_config):
    m = trained(conditional(tiny_config))
    x, t = batch()
    c = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        eps_c = m.ema(x, t, c)
        eps_null = m.ema(x, t, torch.full((4,), K))
        assert not torch.allclose(eps_c, eps_null)
        assert torch.equal(m.predict_eps(x, t, c, guidance=0.0), eps_null)
        assert torch.equal(m.predict_eps(x, t, c, guidance=1.0), eps_c)
        assert torch.equal(m.predict_eps(x, t), eps_null)            # no class asked: ∅, whatever the scale
        assert torch.equal(m.predict_eps(x, t, None, guidance=3.0), eps_null)
        w3 = m.predict_eps(x, t, c, guidance=3.0)
        assert torch.allclose(w3, eps_null + 3.0 * (eps_c - eps_null), atol=1e-5)
        assert torch.allclose(m.predict_eps(x, t, 2, guidance=3.0),
                              guided_eps(m.ema(x, t, torch.full((4,), 2)), eps_null, 3.0), atol=1e-5)
    assert torch.equal(guided_eps(eps_c, eps_null, 0.0), eps_null)
    assert torch.allclose(guided_eps(eps_c, eps_null, 1.0), eps_c, atol=1e-6)


def test_guidance_runs_one_forward_pass_of_2b_only_when_it_mixes(tiny_config):
    m = conditional(tiny_config)
    sizes: list[int] = []
    m.ema.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))
    x, t = batch()
    with torch.no_grad():
        for classes, w in ((None, 1.0), (1, 0.0), (1, 1.0), (None, 5.0), (1, 7.5)):
            m.predict_eps(x, t, classes, w)
    assert sizes == [4, 4, 4, 4, 8]


@pytest.mark.parametrize("p_uncond, dropped", [(1.0, "all"), (0.0, "none"), (0.5, "some")])
def test_a_label_dropped_in_training_is_the_null_class(tiny_config, p_uncond, dropped):
    m = conditional(tiny_config)
    seen: list[torch.Tensor] = []
    m.unet.register_forward_pre_hook(lambda module, args: seen.append(args[2].clone()))
    y = torch.arange(64) % K
    settings = TrainSettings(extra=(("p_uncond", p_uncond),))
    m.training_step(torch.rand((64, 1, 28, 28)), m.configure_optimizers(settings), torch.Generator().manual_seed(0),
                    settings, y=y)
    (fed,) = seen
    null = fed == m.null_class
    assert m.null_class == K
    if dropped == "all":
        assert bool(null.all())
    elif dropped == "none":
        assert torch.equal(fed, y)
    else:
        assert 0 < int(null.sum()) < 64 and torch.equal(fed[~null], y[~null])


def test_a_zero_initialised_class_embedding_gives_the_unconditional_models_eps_exactly(tiny_config):
    torch.manual_seed(0)
    plain = models.build("ddpm", tiny_config("ddpm"))
    opts = plain.configure_optimizers(TrainSettings(lr=1e-2))
    g = torch.Generator().manual_seed(2)
    for _ in range(2):
        plain.training_step(torch.rand((8, 1, 28, 28), generator=g), opts, g)
    plain.eval()
    cond = conditional(tiny_config, seed=9)
    missing, unexpected = cond.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["ema.class_emb.weight", "unet.class_emb.weight"] and not unexpected
    x, t = batch()
    with torch.no_grad():
        want = plain.predict_eps(x, t)
        for classes in (None, 0, 2, torch.tensor([0, 1, 2, K])):
            assert torch.equal(cond.predict_eps(x, t, classes), want)
        assert torch.equal(cond.predict_eps(x, t, 1, guidance=0.0), want)
    # built from one seed, the conditional U-Net draws every other weight as the unconditional one does
    torch.manual_seed(4)
    a = models.build("ddpm", tiny_config("ddpm")).state_dict()
    b = conditional(tiny_config, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_conditional_checkpoint_round_trips(tiny_config, tmp_path):
    m = trained(conditional(tiny_config))
    path = tmp_path / "guided.safetensors"
    checkpoint.save(m, path, dataset="fashion-mnist", train_steps=3)
    back = checkpoint.load(path)
    assert back.conditional and back.config == m.config and back.config.num_classes == K
    z = torch.randn((3, m.latent_dim), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(back.decode(z, classes=[0, 1, 2], guidance=2.0), m.decode(z, classes=[0, 1, 2],
                                                                                       guidance=2.0))
        g1, g2 = (torch.Generator().manual_seed(7) for _ in range(2))
        assert torch.equal(back.sample(2, g1, steps=3, classes=1, guidance=3.0),
                           m.sample(2, g2, steps=3, classes=1, guidance=3.0))


def test_unconditional_checkpoints_load_unchanged(tiny_config, tmp_path):
    torch.manual_seed(0)
    m = models.build("ddpm", tiny_config("ddpm")).eval()
    assert not m.conditional and not any("class_emb" in k for k in m.state_dict())
    path = tmp_path / "plain.safetensors"
    checkpoint.save(m, path, dataset="fashion-mnist", train_steps=0)
    assert checkpoint.load(path).config.num_classes == 0
    shipped = ROOT / "weights" / "ddpm.safetensors"
    if not shipped.exists():
        pytest.skip("the shipped DDPM is not in weights/")
    ddpm = checkpoint.load(shipped)
    assert not ddpm.conditional and ddpm.config.num_classes == 0


def test_unconditional_training_is_unchanged(tiny_config, fmnist_512):
    """The step of an unconditional DDPM draws t and eps as it always did, and train.run passes it no labels
    even when it has them: the losses equal those of the loss written out by hand, step for step."""
    settings = TrainSettings(batch_size=16, lr=1e-3, steps=4, seed=2)

    def fresh() -> DDPM:
        torch.manual_seed(0)
        return models.build("ddpm", tiny_config("ddpm"))

    images, labels = fmnist_512.images[:64], fmnist_512.labels[:64]
    with_labels = [e.losses["eps_mse"] for e in run(new_trainer(fresh(), settings), images, labels=labels)]
    without = [e.losses["eps_mse"] for e in run(new_trainer(fresh(), settings), images)]

    by_hand, m = [], fresh()
    trainer = new_trainer(m, settings)
    gen, opt = trainer.generator, trainer.optimizers["model"]
    order = epoch_order(settings.seed, 0, 64)
    for step in range(4):
        x = images[order[step * 16:(step + 1) * 16]]
        t = torch.randint(0, m.config.timesteps, (16,), generator=gen)
        eps = torch.randn(x.shape, generator=gen)
        m.train()
        loss = F.mse_loss(m.unet(q_sample(m.schedule, to_model_range(x), t, eps), t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        update_average(m, m.unet, m.config.ema_decay)
        by_hand.append(loss.item())
    assert with_labels == without == by_hand


def test_an_unconditional_model_refuses_a_class_or_a_scale_in_one_sentence(tiny_config):
    torch.manual_seed(0)
    m = models.build("ddpm", tiny_config("ddpm")).eval()
    x, t = batch()
    for call in (lambda: m.predict_eps(x, t, classes=1), lambda: m.sample(2, steps=2, guidance=3.0),
                 lambda: m.decode(torch.randn(1, m.latent_dim), classes=0),
                 lambda: m.training_step(x, m.configure_optimizers(TrainSettings()), torch.Generator(), y=t)):
        with pytest.raises(ValueError) as err:
            call()
        text = str(err.value)
        assert text.count(".") <= 1 and "without classes" in text
    with torch.no_grad():
        m.predict_eps(x, t, None, 1.0)                                  # the defaults still work


def test_a_conditional_model_refuses_bad_classes_and_training_without_labels(tiny_config, fmnist_512):
    m = conditional(tiny_config)
    x, t = batch()
    with pytest.raises(ValueError, match="0..2"):
        m.predict_eps(x, t, classes=K + 1)
    with pytest.raises(ValueError, match="3 classes were given for 4 images"):
        m.predict_eps(x, t, classes=[0, 1, 2])
    assert needs_labels(m)
    trainer = new_trainer(m, TrainSettings(batch_size=16, steps=1))
    with pytest.raises(ValueError, match="no labels were given"):
        next(run(trainer, fmnist_512.images[:32]))
    with pytest.raises(ValueError, match="0..2"):
        next(run(trainer, fmnist_512.images[:32], labels=fmnist_512.labels[:32]))


def test_conditional_training_resumes_bit_for_bit(tiny_config, fmnist_512, tmp_path):
    images, labels = fmnist_512.images[:96], fmnist_512.labels[:96] % K
    settings = TrainSettings(batch_size=16, lr=1e-3, steps=8, seed=3, extra=(("p_uncond", 0.3),))

    def fresh():
        return new_trainer(conditional(tiny_config), settings)

    whole = fresh()
    whole_losses = [e.losses["eps_mse"] for e in run(whole, images, labels=labels)]
    first = fresh()
    first_losses = []
    for event in run(first, images, labels=labels):
        first_losses.append(event.losses["eps_mse"])
        if event.step == 3:
            break
    save_trainer(first, tmp_path / "half.state.safetensors")
    resumed = load_trainer(tmp_path / "half.state.safetensors")
    assert resumed.step == 3 and resumed.model.conditional
    rest = [e.losses["eps_mse"] for e in run(resumed, images, labels=labels)]
    assert first_losses + rest == whole_losses
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------------------------
# The command line: `train --classes`, `sample --class K --guidance W`

def cli(*args) -> int:
    from models.cli import main

    return main([str(a) for a in args])


@pytest.fixture
def denormals_restored():
    """`train` flushes denormal floats for the whole process; later tests (hypothesis's floats) need them."""
    yield
    torch.set_flush_denormal(False)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_the_cli_trains_a_conditional_ddpm_on_the_labels_and_samples_a_class(tiny_config, tmp_path, capsys,
                                                                             denormals_restored):
    import json

    config = [flag for k, v in tiny_config("ddpm").items() for flag in ("--config", f"{k}={json.dumps(v)}")]
    out = tmp_path / "guided.safetensors"
    assert cli("train", "--family", "ddpm", "--classes", *config, "--steps", 2, "--subset", 64, "--batch-size", 16,
               "--knob", "p_uncond=0.2", "--device", "cpu", "--no-download", "--out", out) == 0
    model = checkpoint.load(out)
    assert model.conditional and model.config.num_classes == 10
    assert load_trainer(tmp_path / "guided.state.safetensors").settings.knob("p_uncond", 0.1) == 0.2
    grid = tmp_path / "class.npy"
    assert cli("sample", out, "--class", 7, "--guidance", 3, "--n", 2, "--steps", 2, "--out", grid) == 0
    assert grid.exists()
    capsys.readouterr()
    assert cli("sample", out, "--class", 12, "--n", 2, "--steps", 2, "--out", grid) == 2
    assert "0..9" in one_line_error(capsys)


def test_the_cli_refuses_classes_where_there_are_none_in_one_sentence(tiny_config, tmp_path, capsys,
                                                                      denormals_restored):
    assert cli("train", "--family", "vae", "--classes", "--steps", 1, "--subset", 64, "--device", "cpu",
               "--no-download", "--out", tmp_path / "vae.safetensors") == 2
    assert "--classes applies to ddpm, not to 'vae'" in one_line_error(capsys)
    torch.manual_seed(0)
    plain = tmp_path / "plain.safetensors"
    checkpoint.save(models.build("ddpm", tiny_config("ddpm")), plain, dataset="fashion-mnist", train_steps=0)
    for flags in (("--class", 1), ("--guidance", 3), ("--class", 1, "--guidance", 3)):
        assert cli("sample", plain, *flags, "--n", 1, "--out", tmp_path / "x.npy") == 2
        line = one_line_error(capsys)
        assert "has no classes" in line and line.count(". ") == 0


# ---------------------------------------------------------------------------------------------------------------
# benchmarks/train_shipped.py: a plan that starts from another plan's weights, with a class embedding at zero

def test_a_plan_starts_from_another_plans_weights_and_resumes_bit_for_bit(train_shipped, tiny_config, fmnist_512,
                                                                          tmp_path, monkeypatch, capsys):
    source = train_shipped.Plan("tiny-ddpm", "ddpm", tiny_config("ddpm"), TrainSettings(batch_size=16, steps=2))
    settings = TrainSettings(batch_size=16, lr=1e-3, seed=1, steps=4, extra=(("p_uncond", 0.5),))
    guided = train_shipped.Plan("tiny-guided", "ddpm", {**tiny_config("ddpm"), "num_classes": 10}, settings,
                                weights_from="tiny-ddpm")
    monkeypatch.setattr(train_shipped, "PLANS", (source, guided))
    images, labels, cpu = fmnist_512.images[:96], fmnist_512.labels[:96], torch.device("cpu")
    torch.manual_seed(3)
    plain = models.build("ddpm", tiny_config("ddpm"))
    opts = plain.configure_optimizers(TrainSettings(lr=1e-2))
    plain.training_step(images[:8], opts, torch.Generator().manual_seed(0))
    for d in ("whole", "split"):
        (tmp_path / d / "runs").mkdir(parents=True)
        checkpoint.save(plain.eval(), tmp_path / d / "tiny-ddpm.safetensors", dataset="fashion-mnist",
                        train_steps=2)

    def go(d: str, stop_after_s: float | None) -> bool:
        return train_shipped.run_plan(guided, images, images[:16], tmp_path / d, tmp_path / d / "runs", cpu, 1e9,
                                      stop_after_s, labels=labels)

    state = tmp_path / "split" / "runs" / "tiny-guided.state.safetensors"
    assert go("whole", None)
    assert not go("split", 0.0)                     # paused after its first step
    start = load_trainer(state)
    assert start.step == 1 and start.meta["weights_from"]["steps"] == 2
    assert start.meta["weights_from"]["new_tensors"] == ["ema.class_emb.weight", "unet.class_emb.weight"]
    assert go("split", None)
    assert "resuming at step 1" in capsys.readouterr().out
    a, b = (checkpoint.load(tmp_path / d / "tiny-guided.safetensors") for d in ("whole", "split"))
    assert a.conditional and all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert checkpoint.read_metadata(tmp_path / "whole" / "tiny-guided.safetensors").training["weights_from"]


def test_the_plan_starts_exactly_as_the_model_it_was_given(train_shipped, tiny_config, tmp_path, monkeypatch):
    shipped = {p.name: p for p in train_shipped.PLANS}
    # the shipped DDPM, then the stage that teaches the class, then two that give the null class more examples
    assert shipped["ddpm-guided-stage1"].weights_from == "ddpm"
    assert shipped["ddpm-guided-stage2"].weights_from == "ddpm-guided-stage1"
    assert shipped["ddpm-guided"].weights_from == "ddpm-guided-stage2"
    assert not shipped["ddpm-guided-stage1"].ships and not shipped["ddpm-guided-stage2"].ships
    for name in ("ddpm-guided-stage1", "ddpm-guided-stage2", "ddpm-guided"):
        assert shipped[name].config == {**shipped["ddpm"].config, "num_classes": 10}
    source = train_shipped.Plan("tiny-ddpm", "ddpm", tiny_config("ddpm"), TrainSettings(batch_size=16, steps=2))
    guided = train_shipped.Plan("tiny-guided", "ddpm", {**tiny_config("ddpm"), "num_classes": 10},
                                TrainSettings(batch_size=16, steps=4), weights_from="tiny-ddpm")
    monkeypatch.setattr(train_shipped, "PLANS", (source, guided))
    torch.manual_seed(3)
    plain = models.build("ddpm", tiny_config("ddpm")).eval()
    checkpoint.save(plain, tmp_path / "tiny-ddpm.safetensors", dataset="fashion-mnist", train_steps=2)
    trainer = new_trainer(models.build("ddpm", guided.config), guided.settings)
    train_shipped.start_from_weights(guided, trainer, tmp_path, tmp_path)
    x, t = batch()
    with torch.no_grad():
        for w in (0.0, 1.0):
            assert torch.equal(trainer.model.eval().predict_eps(x, t, 4, guidance=w), plain.predict_eps(x, t))
