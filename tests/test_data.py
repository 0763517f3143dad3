"""Real data: Fashion-MNIST offline from Debian's package, subsets, the data-root override, and one clear
message when a data set cannot be had (never a hang on a download: conftest blocks the network)."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from models import data
from models.data import DataMissingError, load_dataset

DEBIAN = data.DEBIAN_ROOTS["fashion-mnist"]
needs_debian = pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").exists(),
                                  reason="Debian's dataset-fashion-mnist is not installed")


def _idx_images(path, n: int) -> np.ndarray:
    """The first n images of a gzipped IDX file, read by hand: 16-byte header, then uint8 pixels."""
    with gzip.open(path, "rb") as f:
        f.read(16)
        return np.frombuffer(f.read(n * 28 * 28), dtype=np.uint8).reshape(n, 28, 28)


def test_a_subset_is_images_in_unit_range_with_labels(fmnist_512):
    d = fmnist_512
    assert len(d) == 512 and d.name == "fashion-mnist" and d.split == "train"
    assert d.images.shape == (512, 1, 28, 28) and d.images.dtype == torch.float32
    assert 0.0 <= float(d.images.min()) and float(d.images.max()) <= 1.0 and float(d.images.max()) > 0.9
    assert d.labels.shape == (512,) and d.labels.dtype == torch.int64
    assert set(d.labels.tolist()) == set(range(10)) and len(d.classes) == 10


@needs_debian
def test_the_pixels_are_debians_fashion_mnist(fmnist_512):
    raw = _idx_images(DEBIAN / "train-images-idx3-ubyte.gz", 8)
    np.testing.assert_array_equal(np.rint(fmnist_512.images[:8, 0].numpy() * 255).astype(np.uint8), raw)


@needs_debian
@pytest.mark.slow
def test_a_fresh_root_is_prepared_offline(tmp_path):
    d = load_dataset("fashion-mnist", "test", root=tmp_path, subset=16)
    assert len(d) == 16
    assert (tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").exists()
    np.testing.assert_array_equal(np.rint(d.images[:, 0].numpy() * 255).astype(np.uint8),
                                  _idx_images(DEBIAN / "t10k-images-idx3-ubyte.gz", 16))


@needs_debian
@pytest.mark.slow
def test_processes_preparing_one_fresh_root_together_all_get_the_data(tmp_path):
    """Trainings started together on a new machine: each unpacks into its own temporary file (they once
    wrote into one, and the second saw a half-written file and said the data set was missing)."""
    import subprocess
    import sys

    code = ("import sys; from models.data import load_dataset; "
            "print(len(load_dataset('fashion-mnist', 'test', root=sys.argv[1])))")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [run.communicate(timeout=300) for run in runs]
    assert [out.strip() for out, _ in outs] == ["10000"] * 4, [err[-300:] for _, err in outs]
    assert not list((tmp_path / "FashionMNIST" / "raw").glob("*.tmp"))


def test_the_environment_variable_moves_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "elsewhere"))
    assert data.default_root() == tmp_path / "elsewhere"
    with pytest.raises(DataMissingError) as info:
        load_dataset("mnist", download=False)
    assert str(tmp_path / "elsewhere") in str(info.value)


def test_missing_data_names_both_ways_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_ROOTS", {})
    with pytest.raises(DataMissingError) as info:
        load_dataset("fashion-mnist", root=tmp_path, download=True)    # the blocked network fails fast
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "internet" in message
    assert str(tmp_path) in message and data.DATA_ENV in message and "\n" not in message


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("fashion-mnist", "validation")
