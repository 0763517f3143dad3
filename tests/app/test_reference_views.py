"""pytorch/examples' VAE and DCGAN generator, imported with `python -m models import`, open in every view: the
map (the VAE's 20-d codes on their PCA plane; the generator's noise plane, with "no detective" where the verdict
would be), interpolation (the generator by inversion) and compare, with nothing failing on the way."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.views.compare.view import CompareView
from explorer.views.interpolate.view import InterpolationView
from explorer.views.map.sidebar import NO_DETECTIVE
from explorer.views.map.view import LatentMapView
from models.cli import main
from pytorch_examples import ExamplesVAE, Generator, trained_looking

TIMEOUT = 60_000
LIMIT = 300


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory):
    """name -> a weights folder holding that one imported model: "examples-vae" (28x28 grey, read with
    Fashion-MNIST's test set, which is on disk) or "examples-dcgan" (a small-width generator, 64x64 colour, on
    `shapes`)."""
    torch.manual_seed(0)
    sources = {"examples-vae": (ExamplesVAE(), "fashion-mnist"),
               "examples-dcgan": (trained_looking(Generator(nz=8, ngf=4, nc=3), seed=1), "shapes")}
    folders = {}
    for name, (net, dataset) in sources.items():
        folder = folders[name] = tmp_path_factory.mktemp(name)
        torch.save(net.state_dict(), folder / f"{name}.pth")
        assert main(["import", str(folder / f"{name}.pth"), "--out", str(folder / f"{name}.safetensors"),
                     "--dataset", dataset, "--device", "cpu"]) == 0
    return folders


@pytest.fixture()
def failures(monkeypatch):
    """Every engine failure of the test, as (job key, message)."""
    from explorer.engine.worker import Engine

    seen = []
    original = Engine.__init__

    def watched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.failed.connect(lambda _job, key, message: seen.append((key, message)))

    monkeypatch.setattr(Engine, "__init__", watched)
    return seen


@pytest.fixture()
def limited(monkeypatch):
    monkeypatch.setattr(LatentMapView, "test_limit", LIMIT)
    monkeypatch.setattr(InterpolationView, "test_limit", LIMIT)


def test_the_examples_vae_maps_its_20_d_codes_on_their_pca_plane(open_view, reference_weights, limited, failures):
    view = open_view(LatentMapView, reference_weights["examples-vae"], "examples-vae")
    assert view.info.latent_dim == 20 and view.plane.kind == "pca"
    assert not failures
    assert view.probe_panels[0].image.shape == (28, 28)
    assert not view.probe_panels[0].verdict.isVisible()          # an encoder's model: no verdict, no note


def test_the_dcgan_generator_maps_its_noise_plane_and_says_it_has_no_detective(open_view, reference_weights,
                                                                               limited, failures):
    view = open_view(LatentMapView, reference_weights["examples-dcgan"], "examples-dcgan")
    assert view.plane.kind == "random" and view.info.image_shape == (3, 64, 64)
    assert "critic" not in view.info.capabilities
    box = view.side.layer_boxes["critic"]
    assert not box.isEnabled() and "no detective" in box.toolTip()
    panel = view.probe_panels[0]
    assert panel.image.shape == (64, 64, 3)
    assert panel.verdict.isVisible() and panel.verdict.text() == NO_DETECTIVE
    assert not failures


def test_the_dcgan_generator_interpolates_by_inversion(open_view, reference_weights, limited, failures,
                                                       monkeypatch):
    view = open_view(InterpolationView, reference_weights["examples-dcgan"], "examples-dcgan",
                     (1200, 780))
    codes = view.codes
    assert codes.method == "inversion" and codes.z.shape[1] == 8 and codes.step == codes.steps
    assert view.strip_images is not None and view.strip_images.shape[1:] == (64, 64, 3)
    assert not any("D " in caption for caption in view.strip.captions)
    assert not failures


@pytest.mark.parametrize("name", ["examples-vae", "examples-dcgan"])
def test_compare_shows_each(qtbot, reference_weights, name, failures):
    from explorer.engine.worker import Engine
    from explorer.state import AppState

    folder = reference_weights[name]
    engine = Engine(device="cpu", weights=str(folder))
    try:
        state = AppState(engine, folder, dataset="fashion-mnist" if name == "examples-vae" else "shapes")
        view = CompareView(state)
        qtbot.addWidget(view)
        view.resize(1280, 760)
        with qtbot.waitSignal(view.ready, timeout=2 * TIMEOUT):
            view.show()
            state.list_models()
            state.open_model(str(folder / f"{name}.safetensors"))
        qtbot.waitUntil(engine.is_idle, timeout=TIMEOUT)
        rows = {view.names[p]: row for p, row in view.rows.items()}
        assert rows[name].grid.images is not None and np.isfinite(rows[name].grid.images).all()
        assert not failures
    finally:
        engine.shutdown()
