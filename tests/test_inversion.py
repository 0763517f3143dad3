"""models.inversion: searching a decoder's z for a target picture (the GAN's stand-in for an encoder)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.registry import build
from models.inversion import invert_decoder, pixel_mse

ROOT = Path(__file__).resolve().parent.parent


def _gan():
    torch.manual_seed(0)
    return build("gan", {"latent_dim": 8, "channels": [8, 16]}).eval()


def test_a_picture_the_generator_can_draw_is_found_again():
    g = _gan()
    z_star = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = g.decode(z_star)
    steps = list(invert_decoder(g, target, steps=200, lr=0.05, generator=torch.Generator().manual_seed(2)))
    assert [s.step for s in steps] == list(range(10, 201, 10))
    first, last = steps[0].mse, steps[-1].mse
    assert (last < 0.3 * first).all(), (first, last)
    # what it reports is what the code draws
    with torch.no_grad():
        torch.testing.assert_close(pixel_mse(g.decode(steps[-1].z), target), last, atol=1e-6, rtol=1e-4)


def test_only_z_moves_the_weights_are_untouched_and_get_no_gradients():
    g = _gan()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    target = torch.rand(2, 1, 28, 28)
    for _ in invert_decoder(g, target, steps=20, every=5):
        pass
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    assert all(p.grad is None for p in g.parameters())
    with torch.no_grad():                       # a caller's no_grad (or another stream's) does not stop it
        steps = list(invert_decoder(g, target, steps=20, every=10))
    assert steps[-1].mse.max() <= steps[0].mse.max()
    with pytest.raises(ValueError):
        next(invert_decoder(g, target, steps=0))


@pytest.mark.slow
def test_on_the_shipped_gan_the_error_falls_and_ends_below_the_prior_means_picture():
    from models.checkpoint import load
    from models.data import load_dataset

    path = ROOT / "weights" / "gan.safetensors"
    if not path.is_file():
        pytest.skip("the shipped gan is not in weights/")
    g = load(path, "cpu").eval()
    x = load_dataset("fashion-mnist", "test").images[:4]
    steps = list(invert_decoder(g, x, steps=300, generator=torch.Generator().manual_seed(0), every=50))
    with torch.no_grad():
        prior_mean = pixel_mse(g.decode(torch.zeros(4, g.latent_dim)), x)
    assert (steps[-1].mse < steps[0].mse).all()
    assert (steps[-1].mse < 0.5 * prior_mean).all(), (steps[-1].mse, prior_mean)
