"""A classifier per data set: the CLI trains one on any labelled set (one head over its classes) and on `shapes`
(one head per factor), the checkpoint names its data set and picture shape, and a classifier is only ever found
for pictures of that data set and shape; the shipped Fashion-MNIST one scores exactly as it always did."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import models
from models import checkpoint, metrics
from models.catalog import SHAPES_FACTORS
from models.classifier import Classifier, ClassifierConfig, classifier_file
from models.cli import main
from models.data import load_dataset
from models.metrics import find_classifier, load_classifier
from models.train import TrainSettings

from picture_files import BLUE, RED, solid

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights" / "classifier.safetensors"
HEADS = [len(f.values) for f in SHAPES_FACTORS]          # shape, colour, size, x, y: 3, 6, 3, 4, 4
TINY = ["--config", "channels=[4,8]", "--config", "feature_dim=16", "--device", "cpu", "--no-download"]


def cli(*args) -> int:
    return main([str(a) for a in args])


def save_classifier(path: Path, dataset: str, shape=(1, 28, 28), **config) -> Classifier:
    torch.manual_seed(0)
    model = models.build("classifier", {"channels": [4, 8], "feature_dim": 16, "image_shape": list(shape),
                                        **config})
    checkpoint.save(model, path, dataset=dataset, train_steps=0)
    return model


# ---------------------------------------------------------------------------------------------------------------
# The network: one head as always, or a head per factor

def test_a_one_head_classifier_keeps_its_tensors_and_scores_as_it_always_did():
    model = Classifier(ClassifierConfig(channels=(4, 8), feature_dim=16)).eval()
    assert tuple(model.head[1].weight.shape) == (10, 16) and model.head_sizes == (10,)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        conf, label = F.softmax(model.head(model.features(x)), dim=1).max(dim=1)   # the formula it always had
    labels, confs = model.classify(x)
    assert torch.equal(labels, label) and torch.equal(confs, conf)
    every, every_conf = model.classify_factors(x)
    assert every.shape == (5, 1) and torch.equal(every[:, 0], label) and torch.equal(every_conf[:, 0], conf)


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped classifier is not in weights/")
def test_the_shipped_classifier_loads_with_one_head_and_scores_by_the_old_formula():
    meta = checkpoint.read_metadata(SHIPPED)
    assert meta.dataset == "fashion-mnist" and meta.image_shape == (1, 28, 28) and meta.config.heads == ()
    model = checkpoint.load(SHIPPED, "cpu").eval()
    x = load_dataset("fashion-mnist", "test", subset=64, download=False).images
    with torch.no_grad():
        conf, label = F.softmax(model.head(model.features(x)), dim=1).max(dim=1)
    labels, confs = model.classify(x)
    assert torch.equal(labels, label) and torch.equal(confs, conf)
    assert find_classifier("fashion-mnist", (1, 28, 28), [SHIPPED.parent]).path == SHIPPED


def test_a_classifier_with_a_head_per_factor_learns_tiny_shapes():
    data = load_dataset("shapes", "train", subset=256)
    x, factors = data.tensor(), data.factors
    assert factors.shape == (256, 5)
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(channels=(8, 16), feature_dim=32, image_shape=(3, 32, 32),
                                        num_classes=HEADS[0], heads=tuple(HEADS)))
    assert tuple(model.head[1].weight.shape) == (sum(HEADS), 32)
    opt = model.configure_optimizers(TrainSettings(lr=3e-3))
    g = torch.Generator().manual_seed(0)
    steps = [model.training_step(x, opt, g, y=factors) for _ in range(25)]
    assert steps[-1]["ce"] < 0.7 * steps[0]["ce"], [s["ce"] for s in steps]
    assert {f"acc_{k}" for k in range(5)} <= set(steps[-1])
    labels, confs = model.classify_factors(x[:9])
    assert labels.shape == confs.shape == (9, 5)
    assert all(int(labels[:, k].max()) < n for k, n in enumerate(HEADS))
    first, conf = model.classify(x[:9])
    assert torch.equal(first, labels[:, 0]) and torch.equal(conf, confs[:, 0])      # the first head: the shape
    assert len(model.factor_accuracy(x, factors)) == 5
    with pytest.raises(ValueError, match="5 head"):
        model.training_step(x, opt, g, y=factors[:, 0])


def test_a_classifier_reads_only_pictures_of_its_shape_and_its_config_is_checked():
    model = Classifier(ClassifierConfig(channels=(4, 8), feature_dim=16))
    with pytest.raises(ValueError, match="reads 1x28x28 pictures, not 3x32x32"):
        metrics.features(model, torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="heads"):
        ClassifierConfig(num_classes=3, heads=(4, 6))
    with pytest.raises(ValueError, match="too small"):
        ClassifierConfig(channels=(4, 8, 16, 32), image_shape=(1, 8, 8))


# ---------------------------------------------------------------------------------------------------------------
# The CLI: a data set's own classifier

def test_the_cli_trains_a_classifier_over_a_folders_classes(tmp_path):
    root = tmp_path / "pictures"
    for name, colour in (("blue", BLUE), ("red", RED)):
        (root / name).mkdir(parents=True)
        for i in range(40):
            solid(root / name / f"{name}-{i}.png", colour)
    out = tmp_path / "c.safetensors"
    assert cli("train", "--family", "classifier", "--data", f"folder:{root}", "--image-size", 16, "--channels", 3,
               "--steps", 30, "--batch-size", 16, "--lr", 3e-3, *TINY, "--out", out) == 0
    meta = checkpoint.read_metadata(out)
    assert meta.family == "classifier" and meta.dataset == f"folder:{root}" and meta.image_shape == (3, 16, 16)
    assert meta.config.num_classes == 2 and meta.config.heads == ()
    assert meta.metrics["test_accuracy"] >= 0.75 and meta.metrics["test_images"] > 0
    assert "test_accuracy_per_factor" not in meta.metrics
    assert classifier_file(meta.dataset) == "classifier-folder-pictures.safetensors"


def test_the_cli_trains_a_classifier_with_a_head_per_factor_on_shapes(tmp_path):
    out = tmp_path / "classifier-shapes.safetensors"
    assert cli("train", "--family", "classifier", "--data", "shapes", "--subset", 256, "--steps", 4,
               "--batch-size", 32, *TINY, "--out", out) == 0
    meta = checkpoint.read_metadata(out)
    assert meta.dataset == "shapes" and meta.image_shape == (3, 32, 32)
    assert list(meta.config.heads) == HEADS and meta.config.num_classes == 3
    per_factor = meta.metrics["test_accuracy_per_factor"]
    assert list(per_factor) == [f.name for f in SHAPES_FACTORS] and all(0 <= v <= 1 for v in per_factor.values())
    assert meta.metrics["test_accuracy"] == pytest.approx(sum(per_factor.values()) / 5, abs=1e-3)
    state = json.loads(checkpoint.read_safetensors(tmp_path / "classifier-shapes.state.safetensors")[0]
                       ["latent_explorer_train"])
    assert state["dataset"] == "shapes" and state["step"] == 4
    # the run goes on from its state, with the factors as its labels again
    assert cli("train", "--resume", tmp_path / "classifier-shapes.state.safetensors", "--steps", 6,
               "--device", "cpu", "--out", out) == 0
    assert checkpoint.read_metadata(out).train_steps == 6


def test_a_set_without_labels_trains_no_classifier_in_one_line(tmp_path, capsys):
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(8):
        solid(root / f"p{i}.png", RED)
    assert cli("train", "--family", "classifier", "--data", f"folder:{root}", "--steps", 1, *TINY,
               "--out", tmp_path / "c.safetensors") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no labels" in err[0] and "classifier" in err[0]


# ---------------------------------------------------------------------------------------------------------------
# Which classifier applies: only the one of the pictures' own data set and shape

def test_a_classifier_is_found_only_for_its_own_data_set_and_picture_shape(tmp_path):
    save_classifier(tmp_path / "classifier.safetensors", "fashion-mnist")
    save_classifier(tmp_path / "classifier-shapes.safetensors", "shapes", (3, 32, 32), num_classes=3,
                    heads=HEADS)
    assert classifier_file("fashion-mnist") == "classifier.safetensors"
    assert classifier_file("shapes") == "classifier-shapes.safetensors"
    assert find_classifier("fashion-mnist", (1, 28, 28), [tmp_path]).path == tmp_path / "classifier.safetensors"
    assert find_classifier("shapes", (3, 32, 32), [tmp_path]).path == tmp_path / "classifier-shapes.safetensors"
    wrong = find_classifier("shapes", (3, 64, 64), [tmp_path])
    assert wrong.path is None and "3x32x32" in wrong.reason and "3x64x64" in wrong.reason
    none = find_classifier("mnist", (1, 28, 28), [tmp_path])
    assert none.path is None and "no classifier for mnist" in none.reason and "--data mnist" in none.reason
    # a classifier of shapes under another name is still found; one named for shapes but trained on another set
    # is not
    (tmp_path / "classifier-shapes.safetensors").rename(tmp_path / "classifier-mine.safetensors")
    save_classifier(tmp_path / "classifier-shapes.safetensors", "mnist")
    assert find_classifier("shapes", (3, 32, 32), [tmp_path]).path == tmp_path / "classifier-mine.safetensors"
    model, reason = load_classifier("shapes", (3, 32, 32), [tmp_path / "missing", tmp_path])
    assert reason == "" and model.dataset == "shapes" and not model.training


def test_the_domain_fid_refuses_without_the_data_sets_classifier_in_one_line(tmp_path):
    save_classifier(tmp_path / "classifier.safetensors", "fashion-mnist")
    classifier, why = metrics.fid_classifier("shapes", (3, 32, 32), [tmp_path])
    assert classifier is None and why.startswith("no FID: there is no classifier for shapes")
    assert "\n" not in why
    classifier, why = metrics.fid_classifier("fashion-mnist", (1, 28, 28), [tmp_path])
    assert why == "" and classifier.image_shape == (1, 28, 28)
