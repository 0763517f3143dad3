"""The interpolation view as a user meets it: keyframes from the test set and from files, the slider showing
decode(z(t)), the strip, the plots, GIF/PNG export, the GAN's search for z and the DDPM's inversion to x_T."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt

from explorer.engine.jobs.interpolate import ENCODER, INVERSION
from explorer.views.interpolate.paths import LERP, SLERP, frame_times, lerp, path_point, path_points, pixel_steps, slerp
from explorer.engine.worker import Engine
from stand_ins import ddpm_info
from explorer.state import AppState
from explorer.views.interpolate.image_file import convert, load_image
from explorer.views.interpolate.view import MAX_KEYFRAMES, TICKS_PER_FRAME, InterpolationView

TIMEOUT = 60_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def make_view(open_view, tiny_weights, monkeypatch):
    """make_view(name) -> a shown InterpolationView on that tiny model, its keyframes encoded and path drawn."""
    monkeypatch.setattr(InterpolationView, "test_limit", 500)
    return lambda name, weights=tiny_weights: open_view(InterpolationView, weights, name, (1200, 780), TIMEOUT)


def settle(qtbot, view) -> None:
    qtbot.waitUntil(view.state.engine.is_idle, timeout=TIMEOUT)
    qtbot.wait(30)
    qtbot.waitUntil(view.state.engine.is_idle, timeout=TIMEOUT)


def decode(path: Path, z: np.ndarray) -> np.ndarray:
    from models.checkpoint import load

    model = load(path, "cpu").eval()
    with torch.no_grad():
        return model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32))[:, 0].numpy()


# ---------------------------------------------------------------------------------------------------------------
# The walk itself

def test_slerp_keeps_the_norm_of_equal_norm_ends_and_lerp_dips():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    ts = np.linspace(0, 1, 33)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, ts), axis=1), np.linalg.norm(a), rtol=1e-6)
    straight = np.linalg.norm(lerp(a, b, ts), axis=1)
    assert straight[16] < 0.8 * np.linalg.norm(a)          # two near-orthogonal 64-d draws: about 1/sqrt(2)
    assert np.argmin(straight) == 16
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-9)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-9)


def test_a_path_through_three_keyframes_passes_through_each_of_them():
    keys = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]], np.float32)
    for kind in (LERP, SLERP):
        pts = path_points(keys, np.array([0.0, 0.5, 1.0]), kind)
        np.testing.assert_allclose(pts, keys, atol=1e-6)
    np.testing.assert_allclose(path_point(keys, 0.25, LERP), [0.5, 1.0], atol=1e-6)
    # slerp between unequal ends walks the length straight: |z| halfway is the mean of the ends' norms
    assert np.linalg.norm(path_point(keys, 0.25, SLERP)) == pytest.approx(1.5, rel=1e-5)
    assert pixel_steps(np.stack([np.zeros((2, 2)), np.ones((2, 2)), np.ones((2, 2))])).tolist() == [1.0, 0.0]


# ---------------------------------------------------------------------------------------------------------------
# The slider

def test_the_slider_shows_decode_of_the_paths_z_and_the_arrow_keys_step_it(qtbot, make_view, tiny_weights):
    view = make_view("vae-2d")
    assert view.codes.method == ENCODER and view.codes.gaussian
    assert view.kind == SLERP and "√d" in view.kind_box.toolTip() and "shell" in view.kind_box.toolTip()
    shown = []
    view.slider_shown.connect(shown.append)
    view.set_t(0.37)
    settle(qtbot, view)
    assert view.t_label.text() == f"t = {view.t:.2f}"
    want = decode(tiny_weights / "vae-2d.safetensors", path_point(view.codes.z, view.t, SLERP))[0]
    np.testing.assert_allclose(view.panel.image, want, atol=1e-5)
    assert "%" in view.panel.caption.text()                 # the classifier's label under it
    before = view.panel.image.copy()
    value = view.slider.value()
    view.slider.setFocus()
    qtbot.keyClick(view.slider, Qt.Key.Key_Right)
    settle(qtbot, view)
    assert view.slider.value() == value + TICKS_PER_FRAME   # one frame of the strip further
    assert np.abs(view.panel.image - before).max() > 1e-3
    view.set_kind(LERP)                                     # the same t on the straight line: another picture
    settle(qtbot, view)
    want = decode(tiny_weights / "vae-2d.safetensors", path_point(view.codes.z, view.t, LERP))[0]
    np.testing.assert_allclose(view.panel.image, want, atol=1e-5)


def test_a_plain_autoencoder_walks_straight_and_the_strip_matches_its_decoder(qtbot, make_view, tiny_weights):
    view = make_view("ae-2d")
    assert not view.codes.gaussian and view.kind == LERP
    view.set_frames(6)
    settle(qtbot, view)
    z = path_points(view.codes.z, frame_times(6), LERP)
    np.testing.assert_allclose(view.strip_images, decode(tiny_weights / "ae-2d.safetensors", z), atol=1e-5)
    assert view.strip.count == 6 and len(view.strip.captions) == 6 and all("%" in c for c in view.strip.captions)
    np.testing.assert_allclose(view.step_plot.steps, pixel_steps(view.strip_images), atol=1e-6)
    # |z| along t for both walks, against sqrt(d)
    assert set(view.norm_plot.norms) == {LERP, SLERP}
    assert view.norm_plot.shell.value() == pytest.approx(np.sqrt(2.0))


def test_a_strip_frame_clicked_moves_the_slider_there(qtbot, make_view):
    view = make_view("vae-2d")
    x, y = view.strip.tile_origin(3)
    h, w = view.strip.images.shape[1:3]
    scene = view.strip.box.mapViewToScene(pg_point(x + w / 2, y + h / 2))
    qtbot.mouseClick(view.strip.viewport(), Qt.MouseButton.LeftButton, pos=view.strip.mapFromScene(scene))
    assert view.slider.value() == 3 * TICKS_PER_FRAME


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(float(x), float(y))


# ---------------------------------------------------------------------------------------------------------------
# Keyframes

def test_the_picker_filters_by_class_and_a_click_adds_that_image(qtbot, make_view):
    view = make_view("cae-16")
    assert len(view.keyframes) == 2
    view.class_box.setCurrentIndex(view.class_box.findText("Trouser"))
    labels = view.test["labels"][view._picker_indices]
    assert len(labels) > 0 and set(labels.tolist()) == {1}
    with qtbot.waitSignal(view.codes_shown, timeout=TIMEOUT):
        view.picker.clicked.emit(0)
    assert len(view.keyframes) == 3 and "Trouser" in view.keyframes[-1].source
    assert view.codes.z.shape == (3, 16)
    assert view.key_grid.count == 6                         # three targets and their reconstructions


def test_at_most_eight_and_at_least_two_keyframes(qtbot, make_view):
    view = make_view("ae-2d")
    while len(view.keyframes) < MAX_KEYFRAMES:
        assert view.add_test_image(len(view.keyframes) + 3)
    assert not view.add_test_image(40)
    assert len(view.keyframes) == MAX_KEYFRAMES and "At most 8" in view.status.text()
    for _ in range(MAX_KEYFRAMES):
        view.remove_last()
    assert len(view.keyframes) == 2 and "at least 2" in view.status.text()
    settle(qtbot, view)
    assert view.codes is not None and len(view.codes.z) == 2


def test_an_unreadable_file_leaves_the_keyframes_and_says_why(qtbot, make_view, tmp_path):
    view = make_view("vae-2d")
    before = [k.image.copy() for k in view.keyframes]
    codes = view.codes
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    assert not view.add_image_file(bad)
    assert "notes.png is not a picture" in view.status.text() and "unchanged" in view.status.text()
    assert not view.add_image_file(tmp_path / "missing.jpg")
    assert "there is no file missing.jpg" in view.status.text()
    assert len(view.keyframes) == len(before)
    assert all(np.array_equal(k.image, b) for k, b in zip(view.keyframes, before))
    assert view.codes is codes                              # nothing re-encoded either


def test_a_dark_on_light_picture_becomes_light_on_dark_fitted_with_its_aspect(qtbot, make_view, tmp_path):
    # a dark tall shape on a white page, in colour, 120 x 60: like a sketch on paper
    page = np.full((120, 60, 3), 255, np.uint8)
    page[10:110, 15:45] = (30, 20, 60)
    path = tmp_path / "sketch.jpg"
    Image.fromarray(page).save(path, quality=95)
    image = load_image(path)
    assert image.shape == (28, 28)
    assert image[0].max() < 0.1 and image[:, 0].max() < 0.1        # the page became the black ground
    assert image[14, 14] > 0.8                                      # the shape became light
    bright = np.argwhere(image > 0.5)
    height, width = np.ptp(bright[:, 0]) + 1, np.ptp(bright[:, 1]) + 1
    assert height == pytest.approx(100 * 28 / 120, abs=1.5) and width == pytest.approx(30 * 28 / 120, abs=1.5)
    # already light on dark (as the data is): kept as it is
    np.testing.assert_allclose(convert(image), image, atol=1e-5)
    view = make_view("vae-2d")
    with qtbot.waitSignal(view.codes_shown, timeout=TIMEOUT):
        assert view.add_image_file(path)
    assert view.keyframes[-1].source == "sketch.jpg"
    np.testing.assert_allclose(view.key_grid.images[2], image)     # the converted picture is what is shown


# ---------------------------------------------------------------------------------------------------------------
# Export

def test_the_gif_has_n_frames_of_the_models_size_and_the_png_is_the_strip(qtbot, make_view, tmp_path):
    view = make_view("vae-2d")
    view.set_frames(7)
    settle(qtbot, view)
    gif = tmp_path / "walk.gif"
    assert view.export_gif(gif, bounce=False)
    with Image.open(gif) as img:
        assert img.n_frames == 7 and img.size == (28, 28) and img.info.get("loop") == 0
        img.seek(6)
        last = np.asarray(img.convert("L"), np.float32) / 255.0
    np.testing.assert_allclose(last, view.strip_images[-1], atol=2 / 255)
    assert view.export_gif(tmp_path / "bounce.gif", bounce=True)
    with Image.open(tmp_path / "bounce.gif") as img:
        assert img.n_frames == 7 + 5                             # forward, then back without repeating the ends
    view.enlarge_box.setChecked(True)
    assert view.export_png(tmp_path / "strip.png")
    with Image.open(tmp_path / "strip.png") as img:
        assert img.size == (4 * (7 * 28 + 6 * 2), 4 * 28)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert not view.export_gif(blocker / "walk.gif")
    assert "cannot write" in view.status.text()
    assert not (blocker / "walk.gif").exists()


# ---------------------------------------------------------------------------------------------------------------
# The GAN: searching for z

def test_gan_inversion_streams_a_falling_error_that_ends_below_the_prior_means(qtbot, make_view):
    view = make_view("gan")
    c = view.codes
    assert c.method == INVERSION and c.step == c.steps == view.steps_spin.value()
    errors = view.error_plot.errors
    assert len(errors) >= 10                                 # it streamed: one item every few steps
    assert errors[-1] < errors[0] and errors == sorted(errors, reverse=True)   # and the error fell
    assert np.all(c.mse < c.baseline_mse)                    # below G(0)'s, for every keyframe
    assert view.key_grid.count == 4                          # each target with its G(z) beside it
    assert "G(0)" in view.key_note.text()
    assert all("D " in caption for caption in view.strip.captions)   # the detective's verdict under each frame
    assert not view.progress.isVisible()


def test_a_long_gan_search_can_be_cancelled_and_keeps_its_best_codes(qtbot, make_view):
    view = make_view("gan")
    view.steps_spin.setValue(2000)
    items = []
    view.keyframes_changed.connect(lambda: items.append(view.partial))
    view.reinvert_button.click()
    qtbot.waitUntil(lambda: view.partial is not None and view.partial.step >= 20, timeout=TIMEOUT)
    assert view.progress.isVisible() and view.cancel_button.isVisible()
    view.cancel_button.click()
    settle(qtbot, view)
    assert view.codes is not None and view.codes.step < 2000
    assert f"Stopped after {view.codes.step} of 2000" in view.key_note.text()
    assert not view.progress.isVisible()
    assert view.strip_images is not None and view.panel.image is not None


# ---------------------------------------------------------------------------------------------------------------
# The DDPM: DDIM inversion to x_T, denoised on release

def _ddpm_view(qtbot, tmp_path):
    from explorer.engine.job import EngineContext
    from models.registry import build

    torch.manual_seed(0)
    model = build("ddpm", {"base_channels": 8, "channel_mults": [1, 2], "timesteps": 50, "decode_steps": 6}).eval()
    engine = Engine(context_factory=lambda: EngineContext(device=torch.device("cpu"), model=model))
    state = AppState(engine, tmp_path)
    view = InterpolationView(state)
    qtbot.addWidget(view)
    view.show()                          # the tab is open: its work starts when it is first shown
    view.set_frames(4)
    info = ddpm_info()
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        state.model = info
        state.model_changed.emit(info)
    return view, model, engine


def test_ddpm_keyframes_invert_to_x_T_and_the_slider_denoises_on_release(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(InterpolationView, "test_limit", 200)
    view, model, engine = _ddpm_view(qtbot, tmp_path)
    try:
        assert view.codes.method == "ddim inversion" and view.codes.z.shape == (2, 784)
        with torch.no_grad():
            want_z = model.invert(torch.from_numpy(np.stack([k.image for k in view.keyframes]))[:, None])
        np.testing.assert_allclose(view.codes.z, want_z.numpy(), atol=1e-4)
        qtbot.waitUntil(engine.is_idle, timeout=TIMEOUT)
        submitted = []
        real_submit = view.channel.submit
        view.channel.submit = lambda job, *a, **k: (submitted.append(job), real_submit(job, *a, **k))[1]
        view.slider.setSliderDown(True)                       # a drag: nothing is denoised yet
        for v in (10, 30, 50):
            view.slider.setValue(v)
        assert submitted == [] and "let go" in view.panel.caption.text()
        view.slider.setSliderDown(False)                      # the release
        qtbot.waitUntil(lambda: engine.is_idle() and len(submitted) == 1, timeout=TIMEOUT)
        qtbot.waitUntil(lambda: view.panel.image is not None, timeout=TIMEOUT)
        settle(qtbot, view)
        with torch.no_grad():
            want = model.decode(torch.from_numpy(view.path_z(view.t))[None])[0, 0].numpy()
        np.testing.assert_allclose(view.panel.image, want, atol=1e-5)
        # a strip frame is reused, not denoised again
        view.set_t(1.0 / 3.0)
        assert len(submitted) == 1 and "already denoised" in view.panel.caption.text()
        np.testing.assert_allclose(view.panel.image, view.strip_images[1])
    finally:
        engine.shutdown()


@pytest.mark.slow
def test_ddim_inversion_then_sampling_gives_back_test_images_on_the_shipped_ddpm():
    """Tolerance: a mean squared pixel error under 0.02 per image (measured 0.004 to 0.010 on the first four)."""
    from models.checkpoint import load
    from models.data import load_dataset

    path = ROOT / "weights" / "ddpm.safetensors"
    if not path.is_file():
        pytest.skip("the shipped ddpm is not in weights/")
    model = load(path, "cpu").eval()
    x = load_dataset("fashion-mnist", "test").images[:4]
    with torch.no_grad():
        back = model.decode(model.invert(x))
    mse = (back - x).pow(2).flatten(1).mean(1)
    assert (mse < 0.02).all(), mse


# ---------------------------------------------------------------------------------------------------------------
# benchmarks/interpolation.py keeps its --json contract

@pytest.mark.slow
def test_interpolation_benchmark_reports_its_figures_as_json(tiny_weights):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "interpolation.py"), "--weights",
                           str(tiny_weights), "--pairs", "4", "--gan-pairs", "2", "--inversion-steps", "30",
                           "--moves", "5", "--device", "cpu", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    for family in ("ae", "vae", "cae", "convvae"):
        for what in ("mean", "max"):
            value = figures[f"interp_{what}_step_{family}"]
            assert isinstance(value, float) and value > 0, (family, what)
        assert figures[f"interp_max_step_{family}"] >= figures[f"interp_mean_step_{family}"]
    assert figures["gan_inversion_mse"] > 0
    assert figures["slider_p95_ms"] > 0 and figures["decode_p95_ms"] > 0
    assert "slider -> pixels on screen" in done.stdout


def test_the_view_follows_the_pickers_model_and_keeps_the_keyframes(qtbot, make_view, tiny_weights):
    view = make_view("vae-2d")
    view.add_test_image(7)
    qtbot.waitUntil(lambda: view.codes is not None and len(view.codes.z) == 3, timeout=TIMEOUT)
    images = [k.image.copy() for k in view.keyframes]
    captions = []
    view.caption_changed.connect(captions.append)
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        view.state.open_model(str(tiny_weights / "conv-vae-16.safetensors"))
    settle(qtbot, view)
    assert view.info.name == "conv-vae-16" and view.codes.z.shape == (3, 16)
    assert all(np.array_equal(k.image, b) for k, b in zip(view.keyframes, images))
    want = decode(tiny_weights / "conv-vae-16.safetensors", path_point(view.codes.z, view.t, view.kind))[0]
    np.testing.assert_allclose(view.panel.image, want, atol=1e-5)
    assert captions and "VAE's space is smooth" in captions[-1]      # one line, for a model with an encoder


def test_a_keyframe_from_the_map_joins_and_the_path_goes_back_to_the_map(qtbot, tiny_weights):
    from explorer.state import AppState
    from explorer.views.interpolate.view import InterpolationView

    engine = Engine("cpu", weights=str(tiny_weights))
    try:
        state = AppState(engine, tiny_weights)
        view = InterpolationView(state)
        qtbot.addWidget(view)
        view.show()
        paths = []
        state.path_changed.connect(lambda model, z: paths.append((model, z)))
        with qtbot.waitSignal(view.ready, timeout=60_000):
            state.open_model(str(tiny_weights / "vae-2d.safetensors"))
        before = len(view.keyframes)
        state.keyframe_requested.emit(np.full((28, 28), 0.5, np.float32), "map: probe 1")
        assert len(view.keyframes) == before + 1
        qtbot.waitUntil(lambda: any(z is not None and len(z) == view.n_frames for _, z in paths[1:]),
                        timeout=60_000)
        model, z = [p for p in paths if p[1] is not None][-1]
        assert model == state.model.path and z.shape == (view.n_frames, 2)
        qtbot.waitUntil(engine.is_idle, timeout=60_000)
    finally:
        engine.shutdown()


def test_a_start_on_another_tab_does_no_interpolation_work_until_the_tab_is_shown(qtbot, tiny_weights):
    engine = Engine("cpu", weights=str(tiny_weights))
    try:
        state = AppState(engine, tiny_weights)
        view = InterpolationView(state)                   # built, never shown: as behind the map's tab
        qtbot.addWidget(view)
        state.open_model(str(tiny_weights / "vae-2d.safetensors"))
        qtbot.waitUntil(lambda: state.model is not None and engine.is_idle(), timeout=60_000)
        assert view.test is None and view.codes is None     # no test set read, nothing encoded
        with qtbot.waitSignal(view.ready, timeout=60_000):
            view.show()
        assert view.codes is not None
    finally:
        engine.shutdown()
