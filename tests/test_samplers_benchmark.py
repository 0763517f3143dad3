"""benchmarks/samplers.py --quick: the table and its --json contract in seconds, on the shipped DDPM and a tiny
class-conditional stand-in for the guided one; and the targets when the guided model is not there yet."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

import models
from models import checkpoint

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {"model", "sampler", "steps", "guidance", "n", "fid", "seconds", "ms_per_image", "asked_class"}


def test_quick_json_has_every_kind_of_row_and_the_issues_targets(tmp_path, tiny_config):
    torch.manual_seed(0)
    guided = tmp_path / "ddpm-guided.safetensors"
    checkpoint.save(models.build("ddpm", {**tiny_config("ddpm"), "num_classes": 10}), guided,
                    dataset="fashion-mnist", train_steps=0)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "samplers.py"), "--quick", "--json",
                           "--device", "cpu", "--threads", "1", "--guided", str(guided)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    figures = json.loads(lines[-1])
    rows = figures["rows"]
    assert all(set(r) == ROW_KEYS for r in rows)
    kinds = [(r["model"], r["sampler"], r["steps"], r["guidance"], r["n"]) for r in rows]
    assert kinds == [("ddpm", "ddim", 5, None, 20), ("ddpm", "ddim", 10, None, 20), ("ddpm", "dpm++", 5, None, 20),
                     ("ddpm", "ddim", 10, None, 20), ("ddpm", "ddpm", 20, None, 20),
                     ("ddpm-guided", "ddim", 10, 0.0, 20), ("ddpm-guided", "ddim", 10, 3.0, 20)]
    assert all(r["fid"] > 0 and r["seconds"] > 0 for r in rows)
    assert all((r["asked_class"] is None) == (r["guidance"] is None) for r in rows)
    assert rows[3]["fid"] == rows[1]["fid"]              # the small-n DDIM row is the big one's first images
    assert figures["seed"] == 0 and figures["quick"] is True
    goals = figures["targets"]
    assert set(goals) == {"dpm_vs_ddim", "guided_w0", "guided_w3"}
    assert all(isinstance(g["met"], bool) for g in goals.values())
    assert abs(goals["dpm_vs_ddim"]["time_ratio"] - rows[2]["seconds"] / rows[1]["seconds"]) < 1e-9
    table = "\n".join(lines[:-1])
    for words in ("DPM-Solver++", "target (issue 35)", "FID <= 1.1x, time <= 0.45x DDIM 10", ">= 95% asked class"):
        assert words in table, words


def test_without_a_guided_model_its_rows_and_targets_are_absent(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import samplers

    rows = samplers.plan_rows(samplers.FULL, 1000, guided=False)
    assert [(r.sampler, r.steps, r.n) for r in rows] == [("ddim", 10, 2000), ("ddim", 20, 2000), ("ddim", 50, 2000),
                                                         ("dpm++", 10, 2000), ("dpm++", 20, 2000),
                                                         ("ddim", 50, 500), ("ddpm", 1000, 500)]
    assert len(samplers.plan_rows(samplers.FULL, 1000, guided=True)) == len(rows) + 6
    figures = [{"model": r.model, "sampler": r.sampler, "steps": r.steps, "guidance": r.guidance, "n": r.n,
                "fid": 10.0, "seconds": 100.0 if r.sampler == "ddim" else 40.0, "asked_class": None} for r in rows]
    goals = samplers.targets(samplers.FULL, figures)
    assert goals["dpm_vs_ddim"] == {**goals["dpm_vs_ddim"], "fid_ratio": 1.0, "time_ratio": 0.4, "met": True}
    assert goals["guided_w0"]["met"] is None and goals["guided_w3"]["met"] is None
