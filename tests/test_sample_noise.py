"""`python -m models sample CKPT --noise FILE.npy`: samples start from the given z (a decoder) or x_T (a diffusion
model), the same file gives the same samples, n comes from the file, and a bad file is one line with exit 2."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import models
from models import checkpoint as ck
from models.cli import main


def cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def checkpoint_of(tmp_path, tiny_config):
    def make(family: str) -> Path:
        torch.manual_seed(0)
        path = tmp_path / f"{family}.safetensors"
        ck.save(models.build(family, tiny_config(family)), path, dataset="fashion-mnist", train_steps=1)
        return path

    return make


def sample(tmp_path: Path, ckpt: Path, name: str, *flags) -> np.ndarray:
    out = tmp_path / f"{name}.npy"
    assert cli("sample", ckpt, "--out", out, "--device", "cpu", *flags) == 0
    return np.load(out, allow_pickle=False)


def noise_file(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


def seeded(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The noise `sample --seed` draws first: torch.randn of `shape` from a generator seeded with `seed`."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).numpy()


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_a_decoder_starts_from_the_given_z(family, checkpoint_of, tmp_path):
    ckpt = checkpoint_of(family)
    model = ck.load(ckpt)
    z = seeded((5, model.latent_dim), seed=7)
    path = noise_file(tmp_path, "z.npy", z)
    images = sample(tmp_path, ckpt, "a", "--noise", path)
    assert images.shape == (5, *model.image_shape) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    with torch.no_grad():
        np.testing.assert_allclose(images, model.decode(torch.from_numpy(z)).numpy(), atol=1e-6)
    # the seed's own z is the same picture; the same file twice, the same samples; other noise, others
    np.testing.assert_allclose(images, sample(tmp_path, ckpt, "b", "--seed", 7, "--n", 5), atol=1e-6)
    np.testing.assert_array_equal(images, sample(tmp_path, ckpt, "c", "--noise", path, "--n", 5, "--seed", 1))
    other = noise_file(tmp_path, "other.npy", seeded((5, model.latent_dim), seed=8))
    assert not np.allclose(images, sample(tmp_path, ckpt, "d", "--noise", other))


def test_a_diffusion_model_starts_from_the_given_x_T(checkpoint_of, tmp_path):
    ckpt = checkpoint_of("ddpm")
    model = ck.load(ckpt)
    x_T = seeded((3, *model.image_shape), seed=4)
    path = noise_file(tmp_path, "x_T.npy", x_T)
    ddim = ("--sampler", "ddim", "--steps", 3)
    images = sample(tmp_path, ckpt, "a", "--noise", path, *ddim)
    assert images.shape == (3, *model.image_shape) and images.dtype == np.float32
    # DDIM at eta 0 from the seed's x_T is the seed's sample; several batches change nothing
    np.testing.assert_allclose(images, sample(tmp_path, ckpt, "b", "--seed", 4, "--n", 3, *ddim), atol=1e-5)
    np.testing.assert_allclose(images, sample(tmp_path, ckpt, "c", "--noise", path, *ddim, "--batch-size", 2),
                               atol=1e-5)
    # a sampler that adds noise on the way repeats itself for the same file and seed
    ancestral = ("--noise", path, "--sampler", "ddpm", "--steps", 4, "--seed", 2)
    np.testing.assert_array_equal(sample(tmp_path, ckpt, "d", *ancestral), sample(tmp_path, ckpt, "e", *ancestral))
    other = noise_file(tmp_path, "other.npy", seeded((3, *model.image_shape), seed=5))
    assert not np.allclose(images, sample(tmp_path, ckpt, "f", "--noise", other, *ddim))


def _write(path: Path, kind: str) -> Path:
    if kind == "npz":
        with path.open("wb") as fh:             # a file handle: savez would add .npz to a name
            np.savez(fh, z=np.zeros((2, 3), np.float32))
    elif kind == "text":
        path.write_text("0.1 0.2 0.3\n")
    elif kind == "objects":
        np.save(path, np.array([{"z": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "truncated":
        np.save(path, np.zeros((64, 3), np.float32))
        path.write_bytes(path.read_bytes()[:-40])
    elif kind in ("rows-past-memory", "shape-past-memory"):        # a header's shape, not the data behind it
        shape = (2 ** 40, 3) if kind == "rows-past-memory" else (2, 2 ** 40)
        with path.open("wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
            fh.write(b"\0" * 64)
    else:
        np.save(path, {"ints": np.zeros((2, 3), np.int64), "nan": np.full((2, 3), np.nan, np.float32),
                       "inf": np.full((2, 3), np.inf), "shape": np.zeros((2, 4), np.float32),
                       "dcgan-shape": np.zeros((2, 3, 1, 1), np.float32), "empty": np.zeros((0, 3), np.float32),
                       "complex": np.zeros((2, 3), np.complex64)}[kind])
    return path


@pytest.mark.parametrize("kind, words", [
    ("npz", ["not a .npy array"]), ("text", ["not a .npy array"]), ("objects", ["Python objects"]),
    ("truncated", ["truncated"]), ("ints", ["int64", "floating point"]), ("complex", ["floating point"]),
    ("nan", ["NaN"]), ("inf", ["Inf"]), ("shape", ["(2, 4)", "(n, 3)"]), ("dcgan-shape", ["(n, 3)"]),
    ("empty", ["no rows"]), ("missing", ["cannot be read"]), ("rows-past-memory", ["truncated"]),
    ("shape-past-memory", ["(n, 3)"])])
def test_a_bad_noise_file_is_one_line_and_exit_2(kind, words, checkpoint_of, tmp_path, capsys):
    ckpt = checkpoint_of("gan")             # latent_dim 3
    path = tmp_path / f"{kind}.npy"
    if kind != "missing":
        _write(path, kind)
    out = tmp_path / "out.npy"
    assert cli("sample", ckpt, "--noise", path, "--out", out, "--device", "cpu") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(w in err for w in (path.name, *words)), err
    assert not out.exists()


def test_a_pipe_is_refused_unread_and_nothing_waits_for_a_writer(checkpoint_of, tmp_path):
    """A FIFO (or a device) named as the noise would block open() until something writes to it."""
    import os
    import subprocess
    import sys

    ckpt = checkpoint_of("gan")
    fifo = tmp_path / "z.npy"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "models", "sample", str(ckpt), "--noise", str(fifo), "--out",
                           str(tmp_path / "out.npy"), "--device", "cpu"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a regular file" in done.stderr and len(done.stderr.splitlines()) == 1, \
        done.stderr


def test_n_must_agree_with_the_file(checkpoint_of, tmp_path, capsys):
    ckpt = checkpoint_of("gan")
    path = noise_file(tmp_path, "z.npy", np.zeros((4, 3), np.float32))
    assert cli("sample", ckpt, "--noise", path, "--n", 5, "--out", tmp_path / "x.npy", "--device", "cpu") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--n 5" in err and "4 rows" in err
    ddpm = checkpoint_of("ddpm")
    assert cli("sample", ddpm, "--noise", path, "--out", tmp_path / "x.npy", "--device", "cpu") == 2
    assert "x_T of shape (n, 1, 28, 28)" in capsys.readouterr().err
