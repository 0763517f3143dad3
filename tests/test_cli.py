"""`python -m models`: train, sample, info and import as a user runs them, and every user error as one line
on stderr with exit status 2."""
from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import models
from models import checkpoint as ck
from models import train as training
from models.cli import main
from models.core import DENOISE, SAMPLE
from models.registry import FAMILIES

GENERATIVE = sorted(n for n, f in FAMILIES.items() if SAMPLE in f.model_cls.capabilities)
DIFFUSION = sorted(n for n, f in FAMILIES.items() if DENOISE in f.model_cls.capabilities)
ROOT = Path(__file__).resolve().parent.parent


def cli(*args) -> int:
    return main([str(a) for a in args])


def config_flags(config: dict) -> list[str]:
    flags = []
    for key, value in config.items():
        flags += ["--config", f"{key}={json.dumps(value)}"]
    return flags


def assert_one_line_error(capsys, *words: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def ae_checkpoint(tmp_path, tiny_config) -> Path:
    torch.manual_seed(0)
    model = models.build("ae", tiny_config("ae"))
    path = tmp_path / "ae.safetensors"
    ck.save(model, path, dataset="fashion-mnist", train_steps=12, metrics={"recon": 250.0})
    return path


TRAIN = ["--subset", 512, "--batch-size", 32, "--device", "cpu", "--no-download"]


# ---------------------------------------------------------------------------------------------------------------
# train

@pytest.mark.parametrize("family", GENERATIVE)
def test_train_writes_a_checkpoint_and_a_training_state(family, tmp_path, tiny_config, capsys):
    out = tmp_path / f"{family}.safetensors"
    assert cli("train", "--family", family, *config_flags(tiny_config(family)), "--steps", 5, *TRAIN,
               "--out", out) == 0
    captured = capsys.readouterr()
    assert "5/5" in captured.err            # the progress bar reached the end
    assert str(out) in captured.out

    meta = ck.read_metadata(out)
    assert meta.family == family and meta.train_steps == 5 and meta.dataset == "fashion-mnist"
    for key, value in tiny_config(family).items():
        got = getattr(meta.config, key)
        assert (list(got) if isinstance(got, tuple) else got) == value
    assert meta.metrics and all(np.isfinite(v) for v in meta.metrics.values())
    assert meta.training["steps"] == 5 and meta.training["device"] == "cpu"
    assert meta.training["settings"]["batch_size"] == 32 and meta.training["images"] == 512
    state = training.load_trainer(tmp_path / f"{family}.state.safetensors")
    assert state.step == 5
    ck.load(out)


def test_ctrl_c_saves_the_state_and_resume_is_bit_identical(tmp_path, tiny_config, capsys, monkeypatch):
    flags = ["--family", "vae", *config_flags(tiny_config("vae")), "--steps", 6, "--seed", 3, *TRAIN]
    assert cli("train", *flags, "--out", tmp_path / "full.safetensors") == 0

    real_run = training.run

    def ctrl_c_after_three(trainer, images):
        for event in real_run(trainer, images):
            if event.step == 3:
                signal.raise_signal(signal.SIGINT)
            yield event

    monkeypatch.setattr(training, "run", ctrl_c_after_three)
    capsys.readouterr()
    before = signal.getsignal(signal.SIGINT)        # Python's own handler, or SIG_IGN under nohup and `&`
    part = tmp_path / "part.safetensors"
    assert cli("train", *flags, "--out", part) == 130
    assert "--resume" in capsys.readouterr().err
    assert not part.exists()
    state = tmp_path / "part.state.safetensors"
    assert training.load_trainer(state).step == 3
    assert signal.getsignal(signal.SIGINT) is before                 # the CLI gives back what it found

    monkeypatch.setattr(training, "run", real_run)
    assert cli("train", "--resume", state, "--device", "cpu", "--no-download", "--out", part) == 0
    full, resumed = ck.load(tmp_path / "full.safetensors").state_dict(), ck.load(part).state_dict()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    assert ck.read_metadata(part).training["resumed"] is True


def test_knobs_from_the_command_line_set_the_rates_and_a_resume_can_add_a_decay(tmp_path, tiny_config, capsys):
    out, state = tmp_path / "gan.safetensors", tmp_path / "gan.state.safetensors"
    assert cli("train", "--family", "gan", *config_flags(tiny_config("gan")), "--steps", 2, "--lr", 2e-4,
               "--knob", "lr_d=1e-3", *TRAIN, "--out", out) == 0
    rates = {name: opt.param_groups[0]["lr"] for name, opt in training.load_trainer(state).optimizers.items()}
    assert rates == {"generator": pytest.approx(2e-4), "discriminator": pytest.approx(1e-3)}
    capsys.readouterr()
    # the saved optimizers hold the detective's rate: a resume cannot pretend to change it
    assert cli("train", "--resume", state, "--steps", 6, "--knob", "lr_d=5e-4", "--device", "cpu",
               "--no-download", "--out", out) == 2
    assert_one_line_error(capsys, "lr_d", "resume")
    assert training.load_trainer(state).step == 2

    assert cli("train", "--resume", state, "--steps", 6, "--knob", "lr_decay_from=2", "--device", "cpu",
               "--no-download", "--out", out) == 0
    resumed = training.load_trainer(state)
    assert dict(resumed.settings.extra) == {"lr_d": 1e-3, "lr_decay_from": 2}
    # the last step ran at a quarter of each rate: (6 - 5) / (6 - 2)
    rates = {name: opt.param_groups[0]["lr"] for name, opt in resumed.optimizers.items()}
    assert rates == {"generator": pytest.approx(0.5e-4), "discriminator": pytest.approx(2.5e-4)}
    assert ck.read_metadata(out).training["settings"]["extra"] == [["lr_d", 1e-3], ["lr_decay_from", 2.0]]


@pytest.mark.parametrize("family, knob, words", [
    ("gan", "gamma=0.1", ["gamma", "vaegan", "'gan'"]),
    ("ae", "lr_d=1e-3", ["lr_d", "gan", "'ae'"]),
    ("gan", "speed=2", ["speed", "lr_decay_from", "lr_d"]),
    ("gan", "lr_d=fast", ["lr_d", "'fast'"]),
    ("gan", "lr_d=-1", ["lr_d", "zero or more"]),
    ("gan", "beta1=1.5", ["beta1", "below 1"]),
    ("gan", "lr_d", ["NAME=VALUE"]),
])
def test_a_bad_knob_is_one_line(family, knob, words, tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    assert cli("train", "--family", family, "--steps", 1, *TRAIN, "--knob", knob, "--out", out) == 2
    assert_one_line_error(capsys, *words)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------------
# sample and info

def test_sample_png_is_a_grid_of_eight_per_row(ae_checkpoint, tmp_path):
    out = tmp_path / "grid.png"
    assert cli("sample", ae_checkpoint, "--n", 64, "--out", out, "--device", "cpu") == 0
    assert Image.open(out).size == (8 * 30 + 2, 8 * 30 + 2)      # 28 px + 2 px padding per cell
    assert cli("sample", ae_checkpoint, "--n", 10, "--out", out, "--device", "cpu") == 0
    assert Image.open(out).size == (8 * 30 + 2, 2 * 30 + 2)


def test_samples_are_readable_like_any_file(ae_checkpoint, tmp_path, umask):
    for name in ("grid.png", "s.npy"):
        out = tmp_path / name
        assert cli("sample", ae_checkpoint, "--n", 4, "--out", out, "--device", "cpu") == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_sample_npy_decodes_standard_normal_draws_on_an_autoencoder(ae_checkpoint, tmp_path):
    out = tmp_path / "s.npy"
    assert cli("sample", ae_checkpoint, "--n", 20, "--seed", 7, "--out", out, "--device", "cpu") == 0
    images = np.load(out)
    assert images.shape == (20, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0

    model = ck.load(ae_checkpoint)
    z = torch.randn(20, model.latent_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        np.testing.assert_array_equal(images, model.decode(z).numpy())

    again, other = tmp_path / "again.npy", tmp_path / "other.npy"
    cli("sample", ae_checkpoint, "--n", 20, "--seed", 7, "--out", again, "--device", "cpu")
    cli("sample", ae_checkpoint, "--n", 20, "--seed", 8, "--out", other, "--device", "cpu")
    np.testing.assert_array_equal(np.load(again), images)
    assert not np.array_equal(np.load(other), images)


@pytest.mark.parametrize("family", DIFFUSION)
def test_diffusion_flags_reach_the_sampler(family, tmp_path, tiny_config, capsys):
    torch.manual_seed(0)
    path = tmp_path / f"{family}.safetensors"
    ck.save(models.build(family, tiny_config(family)), path, dataset="fashion-mnist", train_steps=0)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    for out in (a, b):
        assert cli("sample", path, "--n", 3, "--sampler", "ddim", "--steps", 2, "--eta", 0, "--out", out,
                   "--device", "cpu") == 0
    np.testing.assert_array_equal(np.load(a), np.load(b))         # DDIM with eta = 0 is deterministic
    assert np.load(a).shape[0] == 3
    capsys.readouterr()
    assert cli("sample", path, "--n", 2, "--sampler", "ddim", "--steps", 10 ** 6, "--out", a,
               "--device", "cpu") == 2
    assert_one_line_error(capsys, "--steps")


def test_info_prints_the_metadata(ae_checkpoint, capsys):
    assert cli("info", ae_checkpoint) == 0
    out = capsys.readouterr().out
    assert "ae (Autoencoder)" in out and "12 steps" in out and "fashion-mnist" in out
    assert "latent_dim:" in out and "recon:" in out
    assert cli("info", ae_checkpoint, "--json") == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["family"] == "ae" and meta["train_steps"] == 12


def test_info_and_import_print_a_files_own_strings_escaped(tmp_path, tiny_config, capsys):
    """Names and strings a file carries reach the terminal as text: an escape sequence in a data set's name or a
    tensor's would otherwise clear, retitle or recolour the user's terminal."""
    escape = "\x1b]0;owned\x07\x1b[2J"
    model = models.build("ae", tiny_config("ae"))
    path = tmp_path / "ae.safetensors"
    ck.save(model, path, dataset=f"mnist{escape}", train_steps=1, metrics={f"fid{escape}": 1.0})
    assert cli("info", path) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "mnist\\x1b]0;owned" in out, out
    plain = tmp_path / "net.pth"
    torch.save({**model.state_dict(), f"decoder.9{escape}": torch.zeros(1)}, plain)
    assert cli("import", plain, "--family", "ae", "--latent-dim", 2, "--config", "hidden=[16]", "--out",
               tmp_path / "x.safetensors") == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "decoder.9\\x1b" in err, err


def _rewritten(good: Path, out: Path, change) -> Path:
    """A copy of `good` with its metadata as it was and `change(tensors)` applied to its tensors."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(good), framework="pt") as f:
        header, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    change(tensors)
    save_file(tensors, str(out), metadata=header)
    return out


def _poison(tensors):
    name = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[name] = tensors[name].clone().fill_(float("nan"))


def _reshape(tensors):
    name = sorted(tensors)[0]
    tensors[name] = torch.zeros(tensors[name].numel() + 1)


@pytest.mark.parametrize("change, words", [(_poison, ["NaN"]), (_reshape, ["shape"])])
def test_info_says_a_file_that_would_not_load_does_not(change, words, ae_checkpoint, tmp_path, capsys):
    """Header and metadata are fine, the tensors are not: info checks them as load does, unless --no-check."""
    bad = _rewritten(ae_checkpoint, tmp_path / "bad.safetensors", change)
    with pytest.raises(ck.CheckpointError) as err:
        ck.load(bad)
    assert cli("info", bad) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                                           # no metadata printed for it
    assert captured.err.strip() == " ".join(str(err.value).split())   # load's reason, on one line
    assert all(word in captured.err for word in (bad.name, *words))
    assert cli("info", bad, "--no-check") == 0
    assert "ae (Autoencoder)" in capsys.readouterr().out


def test_import_converts_a_plain_state_dict(tmp_path, tiny_config, capsys):
    torch.manual_seed(2)
    model = models.build("ae", tiny_config("ae"))
    plain = tmp_path / "net.pth"
    torch.save(model.state_dict(), plain)
    out = tmp_path / "net.safetensors"
    assert cli("import", plain, "--family", "ae", *config_flags(tiny_config("ae")), "--out", out,
               "--device", "cpu") == 0
    loaded = ck.load(out)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


# ---------------------------------------------------------------------------------------------------------------
# user errors: one line, exit 2

def _bad(kind: str, tmp_path: Path, good: Path) -> Path:
    path = tmp_path / f"bad-{kind}.safetensors"
    if kind == "directory":
        path.mkdir()
    elif kind == "pickle":
        torch.save({"w": torch.zeros(3)}, path)
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[:-50])
    elif kind == "text":
        path.write_text("hello\n")
    return path


@pytest.mark.parametrize("kind", ["missing", "directory", "pickle", "truncated", "text"])
def test_a_bad_checkpoint_is_one_line_and_exit_2(kind, tmp_path, ae_checkpoint, capsys):
    bad = _bad(kind, tmp_path, ae_checkpoint)
    assert cli("info", bad) == 2
    assert_one_line_error(capsys, bad.name)
    assert cli("sample", bad, "--out", tmp_path / "x.png", "--device", "cpu") == 2
    assert_one_line_error(capsys, bad.name)


def test_sample_flag_errors(ae_checkpoint, tmp_path, capsys):
    assert cli("sample", ae_checkpoint, "--out", tmp_path / "x.jpg") == 2
    assert_one_line_error(capsys, ".png", ".npy")
    assert cli("sample", ae_checkpoint, "--out", tmp_path / "x.png", "--sampler", "ddim", "--eta", 0,
               "--device", "cpu") == 2
    assert_one_line_error(capsys, "--sampler", "--eta", "diffusion")
    assert not (tmp_path / "x.png").exists()


def test_missing_data_names_both_ways_to_get_it(tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.safetensors"
    assert cli("train", "--family", "ae", "--steps", 1, "--data", "mnist", "--data-root", tmp_path / "empty",
               "--no-download", "--out", out) == 2
    assert_one_line_error(capsys, "mnist", "internet", "--data-root")

    # Fashion-MNIST without Debian's copy, download allowed but the network unreachable (conftest blocks it)
    monkeypatch.setattr("models.data.DEBIAN_ROOTS", {})
    assert cli("train", "--family", "ae", "--steps", 1, "--data-root", tmp_path / "empty2", "--out", out) == 2
    assert_one_line_error(capsys, "fashion-mnist", "dataset-fashion-mnist", "internet")
    assert not out.exists()


@pytest.mark.parametrize("flags, words", [
    (["--config", 'latent_dim="two"'], ["latent_dim"]),
    (["--config", "dropout=0.5"], ["dropout"]),
    (["--config", "hidden"], ["KEY=VALUE"]),
    (["--latent-dim", "0"], ["latent_dim"]),
    (["--arch", "conv"], ["cae"]),
    (["--device", "tpu"], ["tpu"]),
])
def test_bad_training_flags_are_one_line(flags, words, tmp_path, capsys):
    assert cli("train", "--family", "ae", "--steps", 1, *TRAIN[:-3], *flags, "--out", tmp_path / "x.safetensors") == 2
    assert_one_line_error(capsys, *words)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_a_missing_gpu_is_one_line(ae_checkpoint, tmp_path, capsys):
    assert cli("sample", ae_checkpoint, "--out", tmp_path / "x.png", "--device", "cuda") == 2
    assert_one_line_error(capsys, "CUDA")


def test_too_small_a_subset_is_one_line(tmp_path, capsys):
    assert cli("train", "--family", "ae", "--subset", 10, "--batch-size", 64, "--device", "cpu",
               "--out", tmp_path / "x.safetensors") == 2
    assert_one_line_error(capsys, "--subset")


@pytest.mark.slow
def test_python_dash_m_models_exits_2_without_a_traceback(tmp_path):
    bad = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, bad)
    proc = subprocess.run([sys.executable, "-m", "models", "info", str(bad)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "python -m models import" in lines[0]
