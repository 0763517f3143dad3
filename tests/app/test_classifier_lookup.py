"""The engine labels a model's pictures only with the classifier of the model's own data set and picture shape:
the Fashion-MNIST classifier never labels a shapes model (no labels, and the model's info says why), the shapes
classifier labels it once it is there, and the two live side by side in one engine."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import models
from explorer.engine.jobs.common import DecodePoints
from explorer.engine.jobs.loading import LoadModel
from explorer.engine.worker import Engine
from models import checkpoint
from models.catalog import SHAPES_FACTORS

TIMEOUT = 30_000
HEADS = [len(f.values) for f in SHAPES_FACTORS]


def answers(engine, qtbot, jobs):
    got = {}
    engine.result.connect(lambda r: got.__setitem__(r.job_id, r) if r.final else None)
    ids = [engine.submit(j) for j in jobs]
    qtbot.waitUntil(lambda: engine.is_idle() and all(i in got for i in ids), timeout=TIMEOUT)
    return [got[i] for i in ids]


@pytest.fixture()
def weights(tiny_weights, tmp_path):
    """The tiny Fashion-MNIST models and classifier, and an untrained colour VAE on shapes (3x32x32)."""
    for name in ("ae-2d", "classifier"):
        shutil.copy(tiny_weights / f"{name}.safetensors", tmp_path / f"{name}.safetensors")
    torch.manual_seed(0)
    vae = models.build("vae", {"latent_dim": 4, "arch": "conv", "channels": [4, 8], "image_shape": [3, 32, 32]})
    checkpoint.save(vae, tmp_path / "shapes-vae.safetensors", dataset="shapes", train_steps=0)
    return tmp_path


def shapes_classifier(path):
    torch.manual_seed(1)
    model = models.build("classifier", {"channels": [4, 8], "feature_dim": 16, "image_shape": [3, 32, 32],
                                        "num_classes": HEADS[0], "heads": HEADS})
    checkpoint.save(model, path, dataset="shapes", train_steps=0)
    return model.eval()


def test_the_fashion_classifier_never_labels_a_shapes_model(qtbot, weights):
    engine = Engine("cpu", weights=str(weights))
    try:
        z4, z2 = np.zeros((3, 4), np.float32), np.zeros((3, 2), np.float32)
        info, shapes, fashion = answers(engine, qtbot, [
            LoadModel("shapes-vae"), DecodePoints("s", z4, model="shapes-vae"), DecodePoints("f", z2, model="ae-2d")])
        info = info.payload
        assert not info.has_classifier and info.dataset == "shapes"
        assert "no classifier for shapes" in info.classifier_reason and "3x32x32" in info.classifier_reason
        assert shapes.payload.images.shape == (3, 32, 32, 3)
        assert shapes.payload.labels is None and shapes.payload.confidences is None
        assert fashion.payload.labels is not None and fashion.payload.labels.shape == (3,)   # its own still labels
    finally:
        engine.shutdown()


def test_the_shapes_classifier_labels_a_shapes_model_beside_the_fashion_one(qtbot, weights):
    classifier = shapes_classifier(weights / "classifier-shapes.safetensors")
    engine = Engine("cpu", weights=str(weights))
    try:
        z4 = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
        z2 = np.zeros((2, 2), np.float32)
        info, shapes, fashion, again = answers(engine, qtbot, [
            LoadModel("shapes-vae"), DecodePoints("s", z4, model="shapes-vae"), DecodePoints("f", z2, model="ae-2d"),
            DecodePoints("t", z4, model="shapes-vae")])
        assert info.payload.has_classifier and info.payload.classifier_reason == ""
        vae = checkpoint.load(weights / "shapes-vae.safetensors")
        with torch.no_grad():
            want, conf = classifier.classify(vae.decode(torch.from_numpy(z4)))
        for answer in (shapes, again):
            np.testing.assert_array_equal(answer.payload.labels, want.numpy())       # the first head: the shape
            np.testing.assert_allclose(answer.payload.confidences, conf.numpy(), atol=1e-5)
            assert set(answer.payload.labels) <= {0, 1, 2}
        assert fashion.payload.labels.shape == (2,) and fashion.payload.labels.max() < 10
    finally:
        engine.shutdown()
