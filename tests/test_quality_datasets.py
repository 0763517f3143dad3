"""benchmarks/quality.py measures each model on its own data set: a colour shapes model gets its reconstruction
figures on the shapes test split, and a domain FID only from the shapes classifier; without one it gets no FID
and one line says why, while the Fashion-MNIST models keep theirs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import models
from models import checkpoint
from models.catalog import SHAPES_FACTORS

ROOT = Path(__file__).resolve().parents[1]
HEADS = [len(f.values) for f in SHAPES_FACTORS]


def quality(folder: Path) -> tuple[dict, list[str]]:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--weights", str(folder),
                           "--fid-n", "20", "--device", "cpu", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    return json.loads(lines[-1]), lines[:-1]


@pytest.mark.slow
def test_a_shapes_model_gets_a_fid_only_from_the_shapes_classifier(tmp_path):
    torch.manual_seed(0)
    tiny = {"channels": [4, 8], "feature_dim": 16}
    checkpoint.save(models.build("classifier", tiny), tmp_path / "classifier.safetensors",
                    dataset="fashion-mnist", train_steps=0)
    checkpoint.save(models.build("ae", {"latent_dim": 2, "hidden": [16]}), tmp_path / "ae-2d.safetensors",
                    dataset="fashion-mnist", train_steps=0)
    checkpoint.save(models.build("vae", {"latent_dim": 4, "arch": "conv", "channels": [4, 8],
                                         "image_shape": [3, 32, 32]}),
                    tmp_path / "shapes-vae.safetensors", dataset="shapes", train_steps=0)

    figures, table = quality(tmp_path)
    assert figures["ae-2d"]["fid"] is not None                          # Fashion-MNIST's classifier, as always
    assert figures["shapes-vae"]["fid"] is None and figures["shapes-vae"]["recon_mse"] > 0
    why = [line for line in table if "no FID" in line]
    assert len(why) == 1 and why[0].startswith("shapes: no FID: there is no classifier for shapes"), why
    assert figures["real:shapes"]["fid"] is None and figures["real:shapes"]["sharpness"] > 0

    checkpoint.save(models.build("classifier", {**tiny, "image_shape": [3, 32, 32], "num_classes": HEADS[0],
                                                "heads": HEADS}),
                    tmp_path / "classifier-shapes.safetensors", dataset="shapes", train_steps=0)
    figures, table = quality(tmp_path)
    assert figures["shapes-vae"]["fid"] > 0 and figures["shapes-vae"]["fid_n"] == 20
    assert figures["real:shapes"]["fid"] is not None
    assert not [line for line in table if "no FID" in line]
    assert "classifier-shapes" not in figures                          # a classifier draws nothing to measure
