"""Training as a generator: resumable bit for bit, stoppable between steps, and honest in what it reports."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
import torch

import models
from models.data import load_dataset
from models.train import TrainSettings, load_trainer, new_trainer, run, save_trainer

# Small configs so a dozen steps take well under a second; the conv ones keep the shared ConvDecoder's BatchNorm.
CONFIGS = {
    "ae": ("ae", {"latent_dim": 2, "hidden": (64, 32)}),
    "cae": ("cae", {"latent_dim": 4, "channels": (8, 16)}),
    "vae": ("vae", {"latent_dim": 2, "hidden": (64, 32)}),
    "conv-vae": ("vae", {"latent_dim": 4, "arch": "conv", "channels": (8, 16)}),
}
BATCH = 32


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_dataset("fashion-mnist", "train", subset=4 * BATCH).images      # 4 steps per epoch


def fresh(name: str, steps: int, **settings) -> models.LatentModel:
    family, config = CONFIGS[name]
    torch.manual_seed(1234)                   # the same initial weights for every run of a test
    model = models.build(family, config)
    return new_trainer(model, TrainSettings(batch_size=BATCH, steps=steps, seed=7, **settings))


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_resume_gives_bit_identical_weights(name: str, images: torch.Tensor, tmp_path: Path,
                                           train_whole_and_save_at) -> None:
    """10 steps in one go == 5 steps, save, load, 5 steps; both halves cross an epoch boundary."""
    n = 10
    path = tmp_path / "state.safetensors"
    whole, first = train_whole_and_save_at(lambda: fresh(name, n), images, n // 2, path)
    resumed = load_trainer(path, device=torch.device("cpu"))
    assert resumed.step == n // 2
    assert torch.equal(resumed.generator.get_state(), first.generator.get_state())
    steps = [event.step for event in run(resumed, images)]
    assert steps == list(range(n // 2 + 1, n + 1))
    assert_same_weights(whole.model, resumed.model)
    # Sanity: training moved the weights, so equality above is not two untouched models.
    untouched = fresh(name, n)
    assert any(not torch.equal(p, q) for p, q in zip(untouched.model.state_dict().values(),
                                                     whole.model.state_dict().values()))


def test_a_decaying_rate_falls_to_zero_at_the_last_step_and_survives_a_resume(images: torch.Tensor, tmp_path: Path,
                                                                              train_whole_and_save_at) -> None:
    """`lr_decay_from`: the rate is untouched before that step, then falls linearly; a resume saved in the
    middle of the fall continues with the same rates and the same weights as one run."""
    n, start = 10, 4
    decay = (("lr_decay_from", start),)
    seen: list[float] = []
    trainer = fresh("ae", n, extra=decay)
    base = trainer.optimizers["model"].param_groups[0]["lr"]
    for _ in run(trainer, images):
        seen.append(trainer.optimizers["model"].param_groups[0]["lr"])
    want = [base] * start + [base * (n - k) / (n - start) for k in range(start, n)]
    assert seen == pytest.approx(want) and seen[-1] == pytest.approx(base / (n - start))
    path = tmp_path / "state.safetensors"
    whole, _ = train_whole_and_save_at(lambda: fresh("ae", n, extra=decay), images, 6, path)
    resumed = load_trainer(path, device=torch.device("cpu"))
    for _ in run(resumed, images):
        pass
    assert resumed.optimizers["model"].param_groups[0]["lr"] == pytest.approx(seen[-1])
    assert_same_weights(whole.model, resumed.model)
    plain = fresh("ae", n)
    for _ in run(plain, images):
        pass
    assert any(not torch.equal(p, q) for p, q in zip(plain.model.state_dict().values(),
                                                     whole.model.state_dict().values()))


def test_a_training_state_is_readable_like_any_file(images: torch.Tensor, tmp_path: Path, umask: int) -> None:
    trainer = fresh("ae", 2)
    path = tmp_path / "state.safetensors"
    for _ in run(trainer, images):
        save_trainer(trainer, path)             # the second save replaces the first
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert load_trainer(path).step == 2


def test_a_damaged_training_state_is_refused_as_a_damaged_checkpoint_is(images: torch.Tensor,
                                                                         tmp_path: Path) -> None:
    """The training state is read by the checkpoints' reader, so it fails with the same typed, one-line errors."""
    from models import checkpoint as ck

    trainer = fresh("ae", 1)
    path = tmp_path / "state.safetensors"
    list(run(trainer, images))
    save_trainer(trainer, path)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ck.TruncatedError, match="cut.safetensors is truncated"):
        load_trainer(cut)
    model = tmp_path / "model.safetensors"
    ck.save(trainer.model, model, dataset="fashion-mnist", train_steps=1)
    with pytest.raises(ck.CheckpointError, match="not a training-state file"):
        load_trainer(model)


def test_vae_resume_needs_the_saved_noise_generator(images: torch.Tensor, tmp_path: Path,
                                                   train_whole_and_save_at) -> None:
    """The VAE's eps comes from the trainer's generator: resuming with any other noise state diverges."""
    n = 8
    whole, _ = train_whole_and_save_at(lambda: fresh("vae", n), images, n // 2, tmp_path / "state.safetensors")

    resumed = load_trainer(tmp_path / "state.safetensors", device=torch.device("cpu"))
    reseeded = load_trainer(tmp_path / "state.safetensors", device=torch.device("cpu"))
    reseeded.generator.manual_seed(reseeded.settings.seed)       # as if the noise state had not been saved
    for trainer in (resumed, reseeded):
        for _ in run(trainer, images):
            pass
    assert_same_weights(whole.model, resumed.model)
    assert any(not torch.equal(p, q) for p, q in zip(whole.model.state_dict().values(),
                                                     reseeded.model.state_dict().values()))


@pytest.mark.parametrize("name", ["cae", "vae"])
def test_stopping_between_steps_leaves_a_usable_model(name: str, images: torch.Tensor) -> None:
    trainer = fresh(name, 100)
    for event in run(trainer, images):
        if event.step == 3:
            break
    assert trainer.step == 3
    model = trainer.model
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with torch.no_grad():
        one = model.decode(torch.zeros(1, model.latent_dim))        # a single probe, as the app decodes it
        grid = model.sample(4, torch.Generator().manual_seed(0))
    assert one.shape == (1, 1, 28, 28) and grid.shape == (4, 1, 28, 28)
    # The same trainer carries on from where it stopped.
    nxt = next(iter(run(trainer, images)))
    assert nxt.step == 4


def test_train_events_report_progress(images: torch.Tensor) -> None:
    trainer = fresh("ae", 10, preview_every=4, preview_n=9)
    events = list(run(trainer, images))
    assert [e.step for e in events] == list(range(1, 11))
    assert all(e.total_steps == 10 for e in events)
    assert [e.epoch for e in events] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]     # 4 batches of 32 per epoch
    assert all(e.samples_per_s > 0 for e in events)
    assert all(b.elapsed_s > a.elapsed_s for a, b in zip(events, events[1:]))
    assert all(set(e.losses) == {"recon"} and e.losses["recon"] > 0 for e in events)
    with_preview = [e.step for e in events if e.preview is not None]
    assert with_preview == [4, 8, 10]                                    # every 4th step, and the last
    for e in events:
        if e.preview is not None:
            assert e.preview.shape == (9, 1, 28, 28)
            assert e.preview.device.type == "cpu"
            assert 0.0 <= e.preview.min().item() and e.preview.max().item() <= 1.0
    # The same seeded draws each time, so successive previews show the same images getting better.
    assert not torch.equal(events[3].preview, events[7].preview)


def test_no_preview_unless_asked(images: torch.Tensor) -> None:
    assert all(e.preview is None for e in run(fresh("cae", 3), images))


def test_epochs_set_the_number_of_steps(images: torch.Tensor) -> None:
    family, config = CONFIGS["ae"]
    trainer = new_trainer(models.build(family, config), TrainSettings(batch_size=BATCH, epochs=1.5))
    assert [e.step for e in run(trainer, images)][-1] == 6


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_vae_events_report_reconstruction_and_kl_apart(beta: float, images: torch.Tensor) -> None:
    events = list(run(fresh("vae", 5, beta=beta), images))
    for e in events:
        assert {"loss", "recon", "kl"} <= set(e.losses)
        assert e.losses["kl"] >= 0 and e.losses["recon"] > 0
        assert e.losses["loss"] == pytest.approx(e.losses["recon"] + beta * e.losses["kl"], rel=1e-5)
    assert events[-1].losses["kl"] > 0      # the encoder has moved away from the prior's exact mean


def test_train_speed_benchmark_prints_a_table_then_one_json_line(capsys, monkeypatch) -> None:
    import json

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import train_speed

    train_speed.main(["--device", "cpu", "--steps", "2", "--batch-size", "8", "--threads", "1", "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("Training speed") and lines[1].startswith("machine:")
    figures = json.loads(lines[-1])
    assert {"ae", "cae", "vae"} <= set(figures)
    for name, f in figures.items():
        assert set(f) == {"samples_per_s", "bare_samples_per_s", "ratio", "decode_p50_ms", "decode_p95_ms"}
        assert f["samples_per_s"] > 0 and f["bare_samples_per_s"] > 0
        assert f["ratio"] == pytest.approx(f["samples_per_s"] / f["bare_samples_per_s"])
        assert 0 < f["decode_p50_ms"] <= f["decode_p95_ms"]
        assert any(line.split()[:1] == [name] for line in lines[2:-1])      # a table row per family
