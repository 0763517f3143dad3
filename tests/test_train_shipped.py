"""benchmarks/train_shipped.py's --promote: a finished trial becomes the shipped plan with its recipe, its state
renamed so that a later run continues it, its checkpoint naming the plan's command; and it refuses, saying why,
when no plan has the recipe, when the plan's old state is in the way, or when the trial has not finished."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import models
from models import checkpoint
from models.train import TrainSettings


def test_a_finished_trial_ships_as_the_plan_with_its_recipe(train_shipped, tiny_config, tmp_path):
    config, settings = tiny_config("gan"), TrainSettings(batch_size=32, steps=5, lr=1e-3)
    trial = train_shipped.Plan("gan-trial", "gan", config, settings, forger_from="gan")
    plan = train_shipped.Plan("gan", "gan", config, settings, forger_from="gan-stage-5")
    other = train_shipped.Plan("gan-other", "gan", config, dataclasses.replace(settings, seed=7))
    trial_dir, out_dir, state_dir = (tmp_path / d for d in ("trials", "weights", "runs"))
    for d in (trial_dir, out_dir, state_dir):
        d.mkdir()
    torch.manual_seed(0)
    model = models.build("gan", config).eval()
    training = {"steps": 5, "finished": False, "command": "python benchmarks/train_shipped.py --only gan-trial"}
    checkpoint.save(model, trial_dir / "gan-trial.safetensors", dataset="fashion-mnist", train_steps=5,
                    metrics={"train_d_real": 0.5}, training=training)
    (state_dir / "gan-trial.state.safetensors").write_bytes(b"the trial's state")

    def ship(plans):
        return train_shipped.promote(trial, plans, trial_dir, out_dir, state_dir)

    with pytest.raises(SystemExit, match="no shipped plan has gan-trial's recipe"):
        ship((other,))
    with pytest.raises(SystemExit, match="has not finished"):
        ship((other, plan))
    checkpoint.save(model, trial_dir / "gan-trial.safetensors", dataset="fashion-mnist", train_steps=5,
                    metrics={"train_d_real": 0.5}, training={**training, "finished": True})
    (state_dir / "gan.state.safetensors").write_bytes(b"the plan's old state")
    with pytest.raises(SystemExit, match="rename it"):
        ship((other, plan))
    assert not (out_dir / "gan.safetensors").exists()
    (state_dir / "gan.state.safetensors").rename(state_dir / "gan-stage-5.state.safetensors")

    assert ship((other, plan)) is plan
    assert (state_dir / "gan.state.safetensors").read_bytes() == b"the trial's state"
    assert not (state_dir / "gan-trial.state.safetensors").exists()
    meta = checkpoint.read_metadata(out_dir / "gan.safetensors")
    assert meta.training["command"] == "python benchmarks/train_shipped.py --only gan"
    assert meta.train_steps == 5 and meta.metrics == {"train_d_real": 0.5}
    z = torch.randn((4, config["latent_dim"]), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(checkpoint.load(out_dir / "gan.safetensors").decode(z), model.decode(z))
