"""benchmarks/quality.py on a folder of tiny checkpoints: the --json contract, and a broken or missing file is
reported, never fatal."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import models
from models import checkpoint

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"fid", "fid_n", "recon_mse", "pca_mse", "elbo_nats", "sharpness", "ms_per_sample_b1", "ms_per_sample_b64"}


@pytest.mark.slow
def test_quality_json_maps_each_model_to_the_issue_keys_records_them_and_skips_a_broken_file(tmp_path):
    torch.manual_seed(0)
    for name, family, config in [("classifier", "classifier", {"channels": [4, 8], "feature_dim": 16}),
                                 ("ae-2d", "ae", {"latent_dim": 2, "hidden": [16]}),
                                 ("conv-vae-16", "vae", {"latent_dim": 16, "arch": "conv", "channels": [4, 8]})]:
        checkpoint.save(models.build(family, config), tmp_path / f"{name}.safetensors",
                        dataset="fashion-mnist", train_steps=0)
    (tmp_path / "gan.safetensors").write_bytes(b"not a checkpoint at all")

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--weights", str(tmp_path),
                           "--fid-n", "20", "--device", "cpu", "--json", "--record"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    figures = json.loads(lines[-1])

    assert {"ae-2d", "conv-vae-16", "prior_fid_ae", "prior_fid_vae"} <= set(figures)
    assert "gan" not in figures and "classifier" not in figures
    for name in ("ae-2d", "conv-vae-16"):
        assert set(figures[name]) == KEYS
        assert figures[name]["fid_n"] == 20 and figures[name]["fid"] > 0
        assert figures[name]["recon_mse"] > 0 and figures[name]["pca_mse"] > 0
        assert figures[name]["ms_per_sample_b1"] > 0 and figures[name]["ms_per_sample_b64"] > 0
    assert figures["ae-2d"]["elbo_nats"] is None                # a plain AE has no ELBO
    assert figures["conv-vae-16"]["elbo_nats"] < 0             # nats per image of a lower bound on log p(x)
    assert figures["prior_fid_ae"] is None                     # no cae-16 in the folder
    assert figures["prior_fid_vae"] == figures["conv-vae-16"]["fid"]
    # --record: each file now carries its own figures, with where they were measured
    kept = checkpoint.read_metadata(tmp_path / "conv-vae-16.safetensors").metrics["quality"]
    assert kept["fid"] == figures["conv-vae-16"]["fid"] and kept["fid_n"] == 20
    assert kept["measured_on"]["device"] == "cpu" and "sampler" not in kept
    table = "\n".join(lines[:-1])
    assert "gan: skipped" in table and "not in" in table and "ddpm" in table
    assert "FID" in table and "20" in table
