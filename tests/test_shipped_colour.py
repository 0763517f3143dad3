"""The shipped colour models, measured again from the files: the shapes classifier reads every factor of the
held-out shapes, the shapes VAE draws colour 3x32x32 pictures whose reconstructions keep the factors, its recorded
quality was measured with the shapes classifier, and the Fashion-MNIST classifier is never the one chosen for it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import checkpoint
from models.catalog import SHAPES_FACTORS
from models.data import load_dataset
from models.metrics import find_classifier

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
VAE, CLASSIFIER = WEIGHTS / "shapes-vae.safetensors", WEIGHTS / "classifier-shapes.safetensors"
FACTORS = [f.name for f in SHAPES_FACTORS]


@pytest.fixture(scope="module")
def shipped():
    for path in (VAE, CLASSIFIER):
        if not path.exists():
            pytest.fail(f"{path} is missing: run python benchmarks/train_shipped.py --only {path.stem}")
    test = load_dataset("shapes", "test")
    return checkpoint.load(VAE).eval(), checkpoint.load(CLASSIFIER).eval(), test.tensor(), test.factors


def test_the_colour_models_name_their_data_set_and_picture(shipped):
    for path in (VAE, CLASSIFIER):
        meta = checkpoint.read_metadata(path)
        assert meta.dataset == "shapes" and meta.image_shape == (3, 32, 32)
        assert meta.training["command"] == f"python benchmarks/train_shipped.py --only {path.stem}"
        assert meta.training["finished"] and meta.training["device"] == "cpu"
    assert checkpoint.read_metadata(CLASSIFIER).config.heads == tuple(len(f.values) for f in SHAPES_FACTORS)
    assert checkpoint.read_metadata(VAE).config.latent_dim == 8
    assert find_classifier("shapes", (3, 32, 32), [WEIGHTS]).path == CLASSIFIER
    assert find_classifier("fashion-mnist", (1, 28, 28), [WEIGHTS]).path == WEIGHTS / "classifier.safetensors"


def test_the_shapes_classifier_reads_every_factor_of_the_held_out_shapes(shipped):
    _, classifier, test, factors = shipped
    accuracy = classifier.factor_accuracy(test, factors)
    assert all(a >= 0.99 for a in accuracy), dict(zip(FACTORS, accuracy))
    recorded = checkpoint.read_metadata(CLASSIFIER).metrics["test_accuracy_per_factor"]
    assert list(recorded) == FACTORS and accuracy == pytest.approx(list(recorded.values()), abs=1e-3)


def test_the_shapes_vae_draws_colour_and_its_reconstructions_keep_the_factors(shipped):
    vae, classifier, test, factors = shipped
    x, y = test[:500], factors[:500]
    with torch.no_grad():
        x_hat = vae.decode(vae.encode(x).mu)
        samples = vae.sample(64, torch.Generator().manual_seed(0))
    assert samples.shape == (64, 3, 32, 32) and 0 <= samples.min() and samples.max() <= 1
    assert (samples.amax(dim=1) - samples.amin(dim=1)).amax(dim=(1, 2)).mean() > 0.3      # coloured, not grey
    mse = float((x_hat - x).pow(2).mean())
    quality = checkpoint.read_metadata(VAE).metrics["quality"]
    assert mse < 1.25 * quality["recon_mse"] and quality["recon_mse"] < quality["pca_mse"]
    assert quality["fid_n"] >= 2000 and quality["fid"] > 0
    # the shapes classifier reads the factors of the reconstructions: colour, size and place all but always (1.0,
    # 0.999, 1.0 and 0.996 over the whole split), the shape only in about two of three (0.63; chance is 1/3): after
    # 10,000 steps the decoder keeps squares and softens circles and triangles (benchmarks/RESULTS.md)
    kept = dict(zip(FACTORS, classifier.factor_accuracy(x_hat, y)))
    assert min(kept["colour"], kept["size"], kept["x"], kept["y"]) >= 0.98, kept
    assert kept["shape"] > 0.5, kept
