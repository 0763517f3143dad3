"""The latent map as a user meets it, offscreen: drag a probe and its picture changes; each layer draws and hides;
a GAN's plane re-rolls; a VAE's pinned image shows its Gaussian and samples from it; a bigger latent sits on a
PCA plane that re-centres exactly on a pinned image."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from explorer.engine.worker import Engine
from stand_ins import ddpm_info
from explorer.state import AppState, ModelInfo
from explorer.views.map.view import LatentMapView
from explorer.views.map.layers import DISTANCE_MAX, GRID_N, Region
from explorer.views.widgets.palette import rgba_table

TIMEOUT = 60_000
LIMIT = 2000            # encode the first 2,000 test images: the same map, drawn faster


# ---------------------------------------------------------------------------------------------------------------
# Helpers: a real engine and state around the view, and real mouse events on its canvas

@pytest.fixture()
def make_view(open_view, tiny_weights, monkeypatch, qtbot):
    """make_view(name, weights=tiny_weights) -> a shown LatentMapView with that model loaded and drawn."""
    monkeypatch.setattr(LatentMapView, "test_limit", LIMIT)

    def make(name: str, weights=tiny_weights) -> LatentMapView:
        view = open_view(LatentMapView, weights, name, (1100, 720), TIMEOUT)
        qtbot.wait(200)                  # let the first layout pass finish before the mouse goes near it
        return view

    return make


def _widget_point(view: LatentMapView, uv) -> QPoint:
    scene = view.vb.mapViewToScene(QPointF(float(uv[0]), float(uv[1])))
    return view.canvas.mapFromScene(scene)


def _send(view, kind, point: QPoint, button, buttons) -> None:
    viewport = view.canvas.viewport()
    ev = QMouseEvent(kind, QPointF(point), QPointF(viewport.mapToGlobal(point)), button, buttons,
                     Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, ev)


def mouse_drag(qtbot, view: LatentMapView, start_uv, end_uv, steps: int = 12) -> None:
    """Press on start, move in steps with the left button held (slower than pyqtgraph's rate limit), release."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    a, b = np.asarray(start_uv, float), np.asarray(end_uv, float)
    _send(view, QEvent.Type.MouseButtonPress, _widget_point(view, a), left, left)
    for t in np.linspace(0, 1, steps + 1)[1:]:
        qtbot.wait(15)
        _send(view, QEvent.Type.MouseMove, _widget_point(view, a + t * (b - a)), none, left)
    _send(view, QEvent.Type.MouseButtonRelease, _widget_point(view, b), left, none)


def mouse_click(qtbot, view: LatentMapView, uv) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    p = _widget_point(view, uv)
    _send(view, QEvent.Type.MouseMove, p, none, none)
    qtbot.wait(15)
    _send(view, QEvent.Type.MouseButtonPress, p, left, left)
    _send(view, QEvent.Type.MouseButtonRelease, p, left, none)


def double_click(view: LatentMapView, point: QPoint) -> None:
    """What a mouse sends for a double click: press, release, double-click, release."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none),
                          (QEvent.Type.MouseButtonDblClick, left), (QEvent.Type.MouseButtonRelease, none)):
        _send(view, kind, point, left, buttons)


def settle(qtbot, view: LatentMapView) -> None:
    qtbot.wait(50)
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    qtbot.wait(20)


def decoded_by(path, z) -> np.ndarray:
    """What the checkpoint itself decodes at z: the reference a panel must show."""
    from models.checkpoint import load

    model = load(path, "cpu")
    with torch.no_grad():
        return model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32))[0, 0].numpy()


# ---------------------------------------------------------------------------------------------------------------
# Probes

def test_dragging_a_probe_with_the_mouse_changes_its_decoded_image(qtbot, make_view, tiny_weights):
    view = make_view("vae-2d")
    probe, panel = view.probes[0], view.probe_panels[0]
    before = panel.image.copy()
    start = probe.uv
    end = start + np.array([1.5, 1.2], np.float32)
    mouse_drag(qtbot, view, start, end)
    settle(qtbot, view)
    np.testing.assert_allclose(probe.uv, end, atol=0.05)           # the probe followed the mouse
    assert np.abs(panel.image - before).max() > 0.05                # and its picture changed
    np.testing.assert_allclose(panel.image, decoded_by(tiny_weights / "vae-2d.safetensors", probe.uv), atol=1e-5)
    assert panel.cost.text().startswith("decoded in ") and panel.cost.text().endswith(" ms")
    # the classifier's verdict sits under the picture
    assert "%" in panel.panel.caption.text()
    # the other probe did not move and kept its own picture
    assert not np.allclose(view.probe_panels[1].image, panel.image)


def test_probe_decodes_live_during_the_drag_not_only_on_release(qtbot, make_view):
    view = make_view("ae-2d")
    shown = []
    view.probe_shown.connect(lambda i, job_id: shown.append(i))
    start = view.probes[1].uv
    mouse_drag(qtbot, view, start, start + np.array([2.0, 0.0], np.float32), steps=10)
    settle(qtbot, view)
    assert shown.count(1) >= 2                                      # several pictures on the way, not one


def test_without_a_classifier_the_label_is_hidden_with_a_reason(qtbot, make_view, tiny_weights, tmp_path):
    shutil.copy(tiny_weights / "ae-2d.safetensors", tmp_path / "ae-2d.safetensors")
    view = make_view("ae-2d", weights=tmp_path)
    panel = view.probe_panels[0].panel
    assert "%" not in panel.caption.text()
    assert "classifier" in view.side.probe_note.text()
    assert not view.side.layer_boxes["regions"].isEnabled()
    assert "classifier" in view.side.layer_boxes["regions"].toolTip()


# ---------------------------------------------------------------------------------------------------------------
# The scatter: hover and pin

def test_scatter_has_every_class_with_a_legend_and_hover_shows_the_image(qtbot, make_view):
    view = make_view("vae-2d")
    assert len(view.class_items) == 10
    assert sum(len(item.data) for item in view.class_items) == LIMIT
    assert [label.text for _, label in view.legend.items] == list(view.info.classes)
    i = 123
    mouse_click(qtbot, view, view.uv[i])
    target = view.enc["images"][view.hovered].astype(np.float32) / 255
    np.testing.assert_allclose(view.side.hover_panel.image, target)
    assert view.pinned == view.hovered
    np.testing.assert_allclose(view.uv[view.pinned], view.uv[i], atol=0.2)


# ---------------------------------------------------------------------------------------------------------------
# Layers

@pytest.mark.parametrize("name", ["grid", "regions", "distance"])
def test_each_layer_is_off_by_default_draws_when_toggled_and_hides_again(qtbot, make_view, name):
    view = make_view("vae-2d")
    items = {"grid": view.grid.thumbs, "regions": view.grid.regions, "distance": view.distance.item}
    assert not view.side.layer_boxes[name].isChecked() and not items[name].isVisible()
    drawn = "distance" if name == "distance" else "grid"
    with qtbot.waitSignal(view.layer_drawn, timeout=TIMEOUT, check_params_cb=lambda n: n == drawn):
        view.side.layer_boxes[name].click()
    assert items[name].isVisible()
    image = items[name].image
    if name == "grid":
        assert image.shape == (GRID_N * 28, GRID_N * 28)
        assert image.std() > 0.05                                   # pictures, not a blank sheet
    elif name == "regions":
        assert image.shape == (GRID_N, GRID_N, 4)
        colours = {tuple(c) for c in image.reshape(-1, 4)}
        assert colours <= {tuple(c) for c in rgba_table()}           # every cell is one class's colour
    else:
        assert image.shape == (48, 48) and np.all(image >= 0)
        assert view.distance.bar.isVisible()
        assert tuple(view.distance.bar.levels()) == (0.0, DISTANCE_MAX)   # the fixed, shared scale
    others = [items[n] for n in items if n != name and not (name == "regions" and n == "grid")]
    assert not any(item.isVisible() for item in others)
    view.side.layer_boxes[name].click()
    assert not items[name].isVisible()


def test_grid_follows_the_view_once_it_settles(qtbot, make_view):
    view = make_view("ae-2d")
    with qtbot.waitSignal(view.layer_drawn, timeout=TIMEOUT):
        view.set_layer("grid", True)
    first = view.grid.drawn_region
    (x0, x1), (y0, y1) = view.vb.viewRange()
    view.vb.setRange(xRange=(x0 + 0.5, x1 + 0.5), yRange=(y0, y1), padding=0)
    qtbot.waitUntil(lambda: view.grid.drawn_region == Region.of(view.vb.viewRange()), timeout=TIMEOUT)
    assert view.grid.drawn_region != first


def test_distance_is_small_on_the_data_and_large_far_from_it(qtbot, make_view):
    view = make_view("ae-2d")
    with qtbot.waitSignal(view.layer_drawn, timeout=TIMEOUT):
        view.set_layer("distance", True)
    centre = np.median(view.uv, axis=0).astype(float)
    far = centre + 40 * view.uv.std(axis=0).astype(float)
    view.vb.setRange(xRange=(far[0] - 1, far[0] + 1), yRange=(far[1] - 1, far[1] + 1), padding=0)
    qtbot.waitUntil(lambda: view.distance.drawn_region == Region.of(view.vb.viewRange()), timeout=TIMEOUT)
    assert view.distance.distance.min() > DISTANCE_MAX              # off the scale: nothing lives out here


# ---------------------------------------------------------------------------------------------------------------
# VAE: the encoder's Gaussian, and the reparameterisation made visible

def test_pinned_vae_image_shows_its_gaussian_and_samples_from_it(qtbot, make_view):
    view = make_view("vae-2d")
    assert not view.posterior.visible and not view.side.sample_button.isEnabled()
    i = int(np.argmin(np.abs(view.uv - np.median(view.uv, axis=0)).sum(1)))
    mouse_click(qtbot, view, view.uv[i])
    i = view.pinned
    assert i is not None and view.posterior.visible
    sigma = np.exp(0.5 * view.enc["logvar"][i])
    pts = view.posterior.ellipse_points(0)
    # the 1-sigma ellipse is centred on the pinned dot, with half-widths sigma_1 and sigma_2
    np.testing.assert_allclose(pts.mean(0), view.uv[i], atol=0.05 * sigma.max())
    np.testing.assert_allclose((pts.max(0) - pts.min(0)) / 2, sigma, rtol=0.02)
    two = view.posterior.ellipse_points(1)
    np.testing.assert_allclose((two.max(0) - two.min(0)) / 2, 2 * sigma, rtol=0.02)
    assert view.side.sample_button.isEnabled()
    with qtbot.waitSignal(view.samples_shown, timeout=TIMEOUT):
        view.side.sample_button.click()
    strip = view.side.sample_strip.image
    assert strip is not None and strip.shape == (2 * 28 + 2, 4 * 28 + 3 * 2)     # 8 draws, two rows of four
    assert len(view.posterior.samples.data) == 8
    first = strip.copy()
    with qtbot.waitSignal(view.samples_shown, timeout=TIMEOUT):
        view.side.sample_button.click()
    assert not np.allclose(view.side.sample_strip.image, first)      # new eps, new draws


def test_plain_autoencoder_pins_without_a_gaussian(qtbot, make_view):
    view = make_view("ae-2d")
    view.pin(5)
    assert view.pinned == 5 and not view.posterior.visible
    assert not view.side.sample_button.isEnabled()
    assert "point" in view.side.gauss_note.text()


# ---------------------------------------------------------------------------------------------------------------
# A bigger latent: the PCA plane, re-centred on a pinned image

def test_pca_plane_recentres_exactly_on_the_pinned_image(qtbot, make_view, tiny_weights):
    view = make_view("conv-vae-16")
    assert view.plane.kind == "pca" and "PC1" in view.plot.getAxis("bottom").labelText
    view.pin(42)
    assert view.side.recentre_button.isEnabled() and view.posterior.visible
    view.side.recentre_button.click()
    np.testing.assert_allclose(view.uv[42], [0, 0], atol=1e-4)
    np.testing.assert_allclose(view.plane.to_latent(np.zeros(2)), view.enc["codes"][42], atol=1e-5)
    view.probes[0].move_to((0.0, 0.0), finished=True)
    settle(qtbot, view)
    # the probe on the pinned dot now decodes exactly that image's code (its reconstruction from mu)
    np.testing.assert_allclose(view.probe_panels[0].image,
                               decoded_by(tiny_weights / "conv-vae-16.safetensors", view.enc["codes"][42]),
                               atol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# No encoder: a plane through z = 0, re-rolled

def _decoder_only_info(latent_dim: int) -> ModelInfo:
    return ModelInfo(path="stand-in", name="stand-in", family="stand-in", title="Stand-in generator",
                     latent_dim=latent_dim, capabilities=frozenset({"decode", "sample"}), image_shape=(1, 28, 28),
                     dataset="fashion-mnist", classes=(), has_classifier=False,
                     classifier_reason="the stand-in has no classifier")


def test_gan_plane_goes_through_the_origin_and_rerolls(qtbot, make_view, tiny_weights):
    view = make_view("gan")
    assert view.plane.kind == "random" and not view.class_items
    assert not view.side.data_box.isVisible() and not view.side.layer_boxes["distance"].isEnabled()
    np.testing.assert_allclose(view.plane.to_latent(np.zeros(2)), 0)
    np.testing.assert_allclose(view.plane.basis @ view.plane.basis.T, np.eye(2), atol=1e-5)
    # the dashed ring marks |z| = sqrt(d), where draws from N(0, I) land
    x, y = view.typical.getData()
    np.testing.assert_allclose(np.hypot(x, y), np.sqrt(view.info.latent_dim), rtol=1e-5)
    basis = view.plane.basis.copy()
    before = view.probe_panels[0].image.copy()
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        view.side.reroll_button.click()
    assert not np.allclose(view.plane.basis, basis)
    # same probe position, new plane: a new latent, and the panel shows what the GAN makes of it
    assert not np.allclose(view.probe_panels[0].image, before)
    np.testing.assert_allclose(view.probe_panels[0].image,
                               decoded_by(tiny_weights / "gan.safetensors", view.plane.to_latent(view.probes[0].uv)),
                               atol=1e-5)


def judged_by(path, z) -> float:
    """D(G(z)) from the checkpoint itself: the verdict a GAN's panel must show."""
    from models.checkpoint import load

    model = load(path, "cpu")
    with torch.no_grad():
        return float(model.critic(model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)))[0])


def test_gan_probes_and_layer_show_the_detectives_verdict(qtbot, make_view, tiny_weights):
    view = make_view("gan")
    path = tiny_weights / "gan.safetensors"
    panel = view.probe_panels[0]
    want = judged_by(path, view.plane.to_latent(view.probes[0].uv))
    qtbot.waitUntil(lambda: panel.verdict.isVisible(), timeout=TIMEOUT)
    assert panel.verdict.text().startswith(f"Detective: {100 * want:.0f}% real")
    box = view.side.layer_boxes["critic"]
    assert box.isEnabled() and not view.grid.verdict.isVisible()
    with qtbot.waitSignal(view.layer_drawn, timeout=TIMEOUT):
        box.click()
    assert view.grid.verdict.isVisible() and view.grid.critic_bar.isVisible()
    cells = view.grid.critic
    assert cells.shape == (GRID_N, GRID_N) and np.all((cells >= 0) & (cells <= 1))
    # the top-left cell is the first grid latent's verdict
    z0 = view.grid.latents(view.plane, view.grid.drawn_region)[0]
    assert cells.reshape(-1)[0] == pytest.approx(judged_by(path, z0), abs=1e-5)
    assert not view.grid.thumbs.isVisible()              # one layer on, the others stay off
    box.click()
    assert not view.grid.verdict.isVisible()


def test_a_vaegan_draws_its_verdict_and_distance_scales_side_by_side(qtbot, make_view):
    view = make_view("vaegan")
    for name in ("critic", "distance"):
        assert view.side.layer_boxes[name].isEnabled()
        with qtbot.waitSignal(view.layer_drawn, timeout=TIMEOUT):
            view.set_layer(name, True)
    qtbot.waitUntil(lambda: view.grid.critic is not None and view.distance.distance is not None, timeout=TIMEOUT)
    qtbot.wait(50)
    critic_bar, distance_bar = view.grid.critic_bar, view.distance.bar
    assert critic_bar.isVisible() and distance_bar.isVisible()
    # two scales (0-1 and 0-3 std), two bars: never drawn over each other
    assert not critic_bar.sceneBoundingRect().intersects(distance_bar.sceneBoundingRect())


def test_the_regions_legend_survives_opening_another_decoder_only_model(qtbot, make_view, tiny_weights):
    view = make_view("gan")
    view.set_layer("regions", True)
    assert view.legend.isVisible() and view.legend_names == list(view.info.classes)
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        view.state.open_model(str(tiny_weights / "gan.safetensors"))
    assert view.side.layer_boxes["regions"].isChecked()
    assert view.legend.isVisible() and view.legend_names == list(view.info.classes)


def test_a_picture_waiting_for_its_verdicts_greys_the_old_ones(qtbot):
    from explorer.views.map.probes import ProbePanel

    panel = ProbePanel(0)
    qtbot.addWidget(panel)
    image = np.zeros((28, 28), np.float32)
    panel.show_result(image, ("T-shirt", "Trouser"), np.array([1]), np.array([0.9]), np.array([0.8]), "")
    assert panel.panel.caption.text() == "Trouser · 90%" and panel.verdict.text().startswith("Detective: 80% real")
    assert panel.panel.caption.isEnabled() and panel.verdict.isEnabled()
    panel.show_pixels(np.ones((28, 28), np.float32))               # a drag moved on: new pixels, no verdicts yet
    assert not panel.panel.caption.isEnabled() and not panel.verdict.isEnabled()
    panel.show_result(image, ("T-shirt", "Trouser"), np.array([0]), np.array([0.6]), np.array([0.3]), "")
    assert panel.panel.caption.isEnabled() and panel.verdict.text().endswith("spots a fake")


def test_a_model_without_a_discriminator_offers_no_verdict(qtbot, make_view):
    view = make_view("vae-2d")
    assert not view.side.layer_boxes["critic"].isEnabled()
    assert "discriminator" in view.side.layer_boxes["critic"].toolTip()
    assert not any(p.verdict.isVisible() for p in view.probe_panels)


def test_fifty_probe_moves_while_the_engine_is_busy_decode_at_most_twice(qtbot, fake_engine, tmp_path, stand_in):
    state = AppState(fake_engine, tmp_path)
    view = LatentMapView(state)
    qtbot.addWidget(view)
    state.model = _decoder_only_info(2)
    state.model_changed.emit(state.model)
    for k in range(50):
        view.probes[0].move_to((0.04 * k, -0.02 * k))
    view.probes[0].move_to((1.5, -1.0), finished=True)
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)
    runs = [r for r in fake_engine.results if r.key == "decode:probe-0" and r.final]
    assert 1 <= len(runs) <= 2
    with torch.no_grad():
        want = stand_in.decode(torch.tensor([[1.5, -1.0]]))[0, 0].numpy()
    np.testing.assert_allclose(view.probe_panels[0].image, want, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Diffusion: a plane through three noise seeds, denoised on release with progress

def test_diffusion_probe_denoises_on_release_with_progress(qtbot, tmp_path):
    from explorer.engine.job import EngineContext
    from models.registry import build

    torch.manual_seed(0)
    model = build("ddpm", {"base_channels": 8, "channel_mults": [1, 2], "timesteps": 50, "decode_steps": 6}).eval()
    engine = Engine(context_factory=lambda: EngineContext(device=torch.device("cpu"), model=model))
    try:
        state = AppState(engine, tmp_path)
        view = LatentMapView(state)
        qtbot.addWidget(view)
        info = ddpm_info()
        with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
            state.model = info
            state.model_changed.emit(info)
        assert view.plane.kind == "seeds"
        assert view.seed_marks.isVisible() and len(view.seed_marks.data) == 3    # the seeds are marked
        x1, x2 = view.plane.to_latent(np.array([[0, 0], [1, 0]], np.float32))
        np.testing.assert_allclose(view.probes[0].uv, [0, 0])       # probe 1 on seed 1, probe 2 on seed 2
        qtbot.waitUntil(engine.is_idle, timeout=TIMEOUT)
        steps = []
        view.probe_shown.connect(lambda i, job_id: steps.append(i))
        for k in range(10):                                         # a drag: nothing is denoised yet
            view.probes[0].move_to((0.03 * k, 0.05 * k))
        qtbot.wait(100)
        assert steps == [] and "let go" in view.probe_panels[0].panel.caption.text()
        view.probes[0].move_to((0.3, 0.5), finished=True)
        qtbot.waitUntil(lambda: engine.is_idle() and len(steps) >= 6, timeout=TIMEOUT)
        assert steps.count(0) == 6 + 1                              # one frame per DDIM step, then the final
        with torch.no_grad():
            want = model.decode(torch.from_numpy(view.plane.to_latent(np.array([0.3, 0.5], np.float32)))[None])
        np.testing.assert_allclose(view.probe_panels[0].image, want[0, 0].numpy(), atol=1e-5)
        assert not view.probe_panels[0].progress.isVisible()
        # what it cost, measured: six U-Net passes, against one decoder pass for the models beside it
        assert view.probe_panels[0].cost.text().startswith("6 DDIM steps: ")
    finally:
        engine.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# benchmarks/latency.py keeps its --json contract

@pytest.mark.slow
def test_latency_benchmark_reports_its_figures_as_json(tiny_weights):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "latency.py"), "--model",
                           str(tiny_weights / "vae-2d.safetensors"), "--moves", "5", "--launches", "1",
                           "--device", "cpu", "--json"], capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    for key in ("drag_p50_ms", "drag_p95_ms", "decode_p95_ms", "launch_s", "first_paint_s", "torch_import_s",
                "drag_p95_ms_while_streaming", "stream_step_ms"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["drag_p50_ms"] <= figures["drag_p95_ms"]
    assert figures["first_paint_s"] < figures["launch_s"]
    assert figures["stream_steps"] >= 1
    assert figures["moves"] == 5 and figures["launches"] == 1
    assert "drag -> pixels on screen" in done.stdout


# ---------------------------------------------------------------------------------------------------------------
# Navigation a person cannot get lost in

def _extent(view) -> tuple[float, float]:
    from explorer.views.widgets.plane import default_range

    (x0, x1), (y0, y1) = default_range(view.plane, view.uv)
    return x1 - x0, y1 - y0


def test_zoom_stops_at_a_thousandth_and_at_ten_times_the_data(qtbot, make_view):
    view = make_view("vae-2d")
    ex, ey = _extent(view)
    ex = ey = max(ex, ey)                                  # the aspect is locked: one scale for both axes
    opening = view.vb.viewRange()
    for _ in range(60):                                    # far more wheel turns in than anyone needs
        view.vb.scaleBy((0.5, 0.5))
    (x0, x1), (y0, y1) = view.vb.viewRange()
    assert x1 - x0 >= 0.999e-3 * ex and y1 - y0 >= 0.999e-3 * ey
    axis = view.plot.getAxis("bottom")
    ticks = [v for _, values in axis.tickValues(x0, x1, 800) for v in values]
    labels = axis.tickStrings(ticks, 1.0, (x1 - x0) / 8)
    assert len(set(labels)) == len(labels) and max(map(len, labels)) <= 10     # distinct, short: readable
    for _ in range(60):
        view.vb.scaleBy((2.0, 2.0))
    (x0, x1), (y0, y1) = view.vb.viewRange()
    assert x1 - x0 <= 10.001 * ex and y1 - y0 <= 10.001 * ey
    assert (x1 - x0) > 2 * (opening[0][1] - opening[0][0])


@pytest.mark.parametrize("how", ["home", "double-click", "A button"])
def test_home_a_double_click_on_empty_space_and_the_a_button_reset_the_view(qtbot, make_view, how):
    view = make_view("ae-2d")
    opening = view.vb.viewRange()
    view.vb.scaleBy((0.01, 0.01))
    view.vb.translateBy(x=0.3 * (opening[0][1] - opening[0][0]))
    assert not np.allclose(view.vb.viewRange(), opening, rtol=1e-3)
    if how == "home":
        view.canvas.setFocus()
        qtbot.keyClick(view.canvas, Qt.Key.Key_Home)
    elif how == "double-click":
        (x0, x1), (y0, y1) = view.vb.viewRange()
        corner = QPointF(x0 + 0.02 * (x1 - x0), y0 + 0.02 * (y1 - y0))    # empty space, no probe there
        point = view.canvas.mapFromScene(view.vb.mapViewToScene(corner))
        double_click(view, point)
    else:
        view.plot.autoBtn.clicked.emit(view.plot.autoBtn)
    qtbot.waitUntil(lambda: np.allclose(view.vb.viewRange(), opening, rtol=1e-3, atol=1e-6), timeout=5000)


def test_the_class_legend_cannot_be_dragged_away(qtbot, make_view):
    view = make_view("vae-2d")
    before = view.legend.pos()
    from pyqtgraph.GraphicsScene.mouseEvents import MouseDragEvent

    class FakeDrag:
        def __init__(self):
            self.ignored = False

        def ignore(self):
            self.ignored = True

        def button(self):
            return Qt.MouseButton.LeftButton

    drag = FakeDrag()
    view.legend.mouseDragEvent(drag)
    assert drag.ignored and view.legend.pos() == before
    assert MouseDragEvent is not None


def test_the_map_sends_keyframes_and_draws_the_interpolations_path(qtbot, make_view):
    view = make_view("vae-2d")
    sent = []
    view.state.keyframe_requested.connect(lambda image, source: sent.append((image, source)))
    view.pin(7)
    view.side.keyframe_button.click()
    np.testing.assert_allclose(sent[0][0], view.enc["images"][7] / 255.0, atol=1e-6)
    assert sent[0][1].startswith("map: ")
    pinned = []
    view.state.test_image_pinned.connect(pinned.append)
    view.pin(11)
    assert pinned == [11]                                  # the diffusion tab noises the same test image
    view.side.probe_keyframe_button.click()
    assert len(sent) == 3 and [s for _, s in sent[1:]] == ["map: probe 1", "map: probe 2"]
    path = np.stack([np.linspace(-1, 1, 9), np.linspace(0, 0.5, 9)], axis=1).astype(np.float32)
    view.state.path_changed.emit(view.info.path, path)
    assert view.path_curve.isVisible()
    x, y = view.path_curve.getData()
    np.testing.assert_allclose(np.stack([x, y], 1), path, atol=1e-6)        # a 2-d latent: the path itself
    view.state.path_changed.emit("/some/other/model.safetensors", path)
    assert not view.path_curve.isVisible()                                   # another model's path: not here
