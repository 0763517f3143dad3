"""Slow motion for the adversarial families: one detective step moves only D, one forger step only G (weights and
buffers: the other network is left exactly as it was)."""
from __future__ import annotations

import pytest
import torch

from models import registry
from models.train import TrainSettings


def _params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights and buffers (BatchNorm's running statistics too): the network's whole state."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], net: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("family, forger", [("gan", "G"), ("vaegan", "decoder")])
def test_a_detective_step_moves_d_only_and_a_forger_step_g_only(family, forger):
    torch.manual_seed(0)
    model = registry.build(family, {"latent_dim": 4, "channels": [8, 16]})
    settings = TrainSettings(batch_size=16, lr=1e-2)
    opts = model.configure_optimizers(settings)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 28, 28)
    nets = {"D": model.D, forger: getattr(model, forger)}
    if family == "vaegan":
        nets["encoder"] = model.encoder
    model.train()

    before = {name: _params(net) for name, net in nets.items()}
    out = model.discriminator_step(x, opts, gen, settings)
    assert _changed(before["D"], model.D)
    assert not any(_changed(before[n], nets[n]) for n in nets if n != "D")
    assert 0.0 <= out["d_real"] <= 1.0 and 0.0 <= out["d_fake"] <= 1.0

    before = {name: _params(net) for name, net in nets.items()}
    model.generator_step(x, opts, gen, settings)
    assert _changed(before[forger], nets[forger])
    assert not any(_changed(before[n], nets[n]) for n in nets if n != forger)


def test_a_detective_step_makes_d_tell_real_from_fake_better():
    torch.manual_seed(1)
    model = registry.build("gan", {"latent_dim": 4, "channels": [8, 16]})
    settings = TrainSettings(batch_size=32, lr=2e-3)
    opts = model.configure_optimizers(settings)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 28, 28) * 0.2 + 0.8          # bright "real" images, unlike the untrained forger's
    model.train()
    gaps = []
    for _ in range(6):
        out = model.discriminator_step(x, opts, gen, settings)
        gaps.append(out["d_real"] - out["d_fake"])
    assert gaps[-1] > gaps[0]
