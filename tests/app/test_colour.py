"""Colour in every view, on tiny models at 3x32x32 (tests/app/conftest.py's `colour_weights`): a red shape of the
`shapes` data set decodes red in the map's probe, the interpolation strip and the compare grid; a colour DDPM's
frames (x_t, x̂_0, eps) are (H, W, 3) and its GIF is in colour; the map colours its dots by the factor picked; a
model of unlabelled pictures shows no labels and no FID and says why; a folder that has gone is one sentence on
the map while the probes still decode; the training dialog offers the data sets and sets the picture's shape."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import shown_view
from explorer.engine.worker import Engine
from explorer.state import AppState
from explorer.views.compare.view import CompareView
from explorer.views.diffusion.view import DiffusionView
from explorer.views.interpolate.view import InterpolationView
from explorer.views.map.view import LatentMapView
from explorer.views.widgets.palette import class_colour

TIMEOUT = 60_000
LIMIT = 300                     # test images the map and the interpolation read


def settle(qtbot, view) -> None:
    qtbot.wait(30)
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    qtbot.wait(20)


def shapes_test_factors():
    from models.data import load_dataset

    return load_dataset("shapes", "test").factors.numpy()


def red_shapes(n: int = 2, limit: int = LIMIT) -> list[int]:
    """Test images (within the first `limit`) of large red shapes."""
    f = shapes_test_factors()[:limit]
    hits = np.flatnonzero((f[:, 1] == 0) & (f[:, 2] == 2))
    assert len(hits) >= n
    return [int(i) for i in hits[:n]]


def assert_red(image: np.ndarray, what: str) -> None:
    """A colour picture whose red channel carries more than its green or its blue."""
    assert image.ndim >= 3 and image.shape[-1] == 3, f"{what}: {image.shape} is not a colour picture"
    r, g, b = (float(image[..., c].mean()) for c in range(3))
    assert r > g and r > b, f"{what}: mean R {r:.3f}, G {g:.3f}, B {b:.3f}"


@pytest.fixture()
def limited(monkeypatch):
    monkeypatch.setattr(LatentMapView, "test_limit", LIMIT)
    monkeypatch.setattr(InterpolationView, "test_limit", LIMIT)


# ---------------------------------------------------------------------------------------------------------------
# The map

def test_a_red_shape_decodes_red_in_the_maps_probe(qtbot, open_view, colour_weights, limited):
    view = open_view(LatentMapView, colour_weights, "shapes-vae")
    assert view.enc["images"].shape[1:] == (32, 32, 3)                 # the dots' thumbnails are in colour
    assert view.legend_names == ["square", "circle", "triangle"]
    red = red_shapes(1)[0]
    view.pin(red)
    assert_red(view.side.pinned_panel.image, "the pinned test image")
    view.side.recentre_button.click()                                  # (0, 0) is now the red shape's code
    view.probes[0].move_to((0.0, 0.0), finished=True)
    settle(qtbot, view)
    assert_red(view.probe_panels[0].image, "the probe on the red shape's code")
    view.set_layer("grid", True)
    qtbot.waitUntil(lambda: view.grid.drawn_region is not None, timeout=TIMEOUT)
    assert view.grid.thumbs.image.ndim == 3 and view.grid.thumbs.image.shape[-1] == 3     # the decoded grid


def test_the_maps_dots_take_the_colour_of_the_factor_picked(qtbot, open_view, colour_weights, limited):
    view = open_view(LatentMapView, colour_weights, "shapes-vae")
    side = view.side
    assert side.colour_row.isVisible()
    assert [side.colour_by.itemText(i) for i in range(side.colour_by.count())] == ["shape", "colour", "size", "x",
                                                                                "y"]
    factors = shapes_test_factors()[:LIMIT]

    def dot_colours():
        return [class_colour(int(k)) for k in view.scatter.labels]

    by_shape = dot_colours()
    np.testing.assert_array_equal(view.scatter.labels, factors[:, 0])
    side.colour_by.setCurrentIndex(side.colour_by.findData("colour"))
    np.testing.assert_array_equal(view.scatter.labels, factors[:, 1])
    assert view.legend_names == ["red", "green", "blue", "yellow", "magenta", "cyan"]
    assert dot_colours() != by_shape
    assert sum(len(item.data) for item in view.class_items) == LIMIT    # every dot still drawn, where it was
    # a colour factor's dots wear that colour: the red shapes' dots are red, the cyan ones cyan, not the palette's
    drawn = [item.opts["brush"].color().getRgb()[:3] for item in view.class_items]
    assert drawn[0][0] > 2 * max(drawn[0][1:]) and drawn[5][2] > 2 * drawn[5][0]
    side.colour_by.setCurrentIndex(side.colour_by.findData("size"))       # any other factor: the class palette
    assert [item.opts["brush"].color().name() for item in view.class_items] == [class_colour(k) for k in range(3)]
    side.colour_by.setCurrentIndex(side.colour_by.findData("colour"))
    red = red_shapes(1)[0]
    view.hover(red)
    assert view.side.hover_panel.caption.text() == f"red #{red}"


# ---------------------------------------------------------------------------------------------------------------
# The interpolation

def test_a_walk_between_red_shapes_is_red_in_the_strip_and_the_gif(qtbot, open_view, colour_weights, limited,
                                                                    tmp_path):
    view = open_view(InterpolationView, colour_weights, "shapes-vae", (1200, 780))
    assert view.strip_images.shape[1:] == (32, 32, 3)
    a, b = red_shapes(2)
    view.walk.keyframes.clear()
    view.add_test_image(a)
    view.add_test_image(b)
    settle(qtbot, view)
    strip = view.strip_images
    assert strip.shape[1:] == (32, 32, 3)
    assert_red(strip[0], "the strip's first frame")
    assert_red(strip[-1], "the strip's last frame")
    assert_red(strip, "the strip")
    assert view.panel.image.shape == (32, 32, 3) and view.panel.caption.text().startswith("no label")
    assert "no classifier" in view.panel.caption.toolTip()                # and why, in one line
    assert view.export_gif(tmp_path / "walk.gif", bounce=False)
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.size == (32, 32)
        first = np.asarray(gif.convert("RGB"), np.float32) / 255.0
    assert_red(first, "the GIF's first frame")
    assert view.export_png(tmp_path / "strip.png")
    with Image.open(tmp_path / "strip.png") as png:
        assert png.mode == "RGB"
    # a grey picture is not a keyframe of a colour model: it says so and leaves the keyframes
    assert not view.add_keyframe(np.zeros((28, 28), np.float32), "grey.png")
    assert "28×28" in view.status.text() and len(view.keyframes) == 2


# ---------------------------------------------------------------------------------------------------------------
# Compare

@pytest.fixture()
def make_compare(qtbot):
    engines = []

    def make(weights, dataset: str = "fashion-mnist", model: str | None = None) -> CompareView:
        """A shown CompareView, everything drawn: on the test images of `dataset`, or of the picker's `model`."""
        engine = Engine(device="cpu", weights=str(weights))
        engines.append(engine)
        state = AppState(engine, weights, dataset=dataset)
        view = CompareView(state)
        qtbot.addWidget(view)
        view.resize(1280, 760)
        with qtbot.waitSignal(view.ready, timeout=2 * TIMEOUT):
            view.show()
            state.list_models()
            if model is not None:
                state.open_model(str(weights / f"{model}.safetensors"))
        qtbot.waitUntil(engine.is_idle, timeout=TIMEOUT)
        return view

    yield make
    for engine in engines:
        engine.shutdown()


def test_a_red_shape_rebuilds_red_in_the_compare_grid(qtbot, make_compare, colour_weights, tmp_path):
    view = make_compare(colour_weights, "shapes")
    path = next(p for p, name in view.names.items() if name == "shapes-vae")
    assert view.visible_columns and view.columns[path].images is not None
    for other, column in view.columns.items():                    # the grey models say why they have no column
        if other != path:
            assert column.images is None and "not these images" in column.header.text()
    # the first look inside goes to a network that takes these pictures, not the widest code among all
    qtbot.waitUntil(lambda: view.inside.result is not None or "Looking" not in view.inside.title.text(),
                    timeout=TIMEOUT)
    assert view.inside.result is not None, view.inside.title.text()
    assert "shapes-vae" in view.inside.title.text()
    red = red_shapes(2)
    with qtbot.waitSignal(view.column_drawn, timeout=TIMEOUT, check_params_cb=lambda p: p == path):
        view.pick(", ".join(map(str, red)))
    assert view.original.grid.images.shape[1:] == (32, 32, 3)
    for k in range(len(red)):
        assert_red(view.original.grid.images[k], f"test image {red[k]}")
        assert_red(view.columns[path].images[k], f"the reconstruction of test image {red[k]}")
    rows = {view.names[p]: row for p, row in view.rows.items()}
    assert rows["shapes-vae"].grid.images.shape[1:] == (32, 32, 3)
    assert "no labels, no FID" in rows["shapes-vae"].info_label.text()      # no classifier for shapes here
    out = view.export_png(str(tmp_path / "grid.png"))
    with Image.open(out) as png:
        assert png.mode == "RGB"


# ---------------------------------------------------------------------------------------------------------------
# Diffusion

def test_a_colour_ddpms_frames_are_colour_and_its_gif_too(qtbot, colour_weights, tmp_path):
    engine = Engine(device="cpu", weights=str(colour_weights))
    try:
        state = AppState(engine, colour_weights)
        view = shown_view(qtbot, DiffusionView, state, (1200, 800))
        view.samples.setValue(4)
        view.steps.setValue(5)
        view.sampler.setCurrentIndex(view.sampler.findData("ddim"))
        with qtbot.waitSignal(view.ready, timeout=2 * TIMEOUT):
            state.open_model(str(colour_weights / "shapes-ddpm.safetensors"))
        qtbot.waitUntil(lambda: engine.is_idle() and not view.running(), timeout=2 * TIMEOUT)
        frame = view.run.final
        assert frame.x_t.shape[1:] == frame.x0.shape[1:] == frame.eps_image.shape[1:] == (32, 32, 3)
        assert frame.x_raw.shape[1] == 3
        for grid in view.grids:
            assert grid.images.shape[1:] == (32, 32, 3)
        assert view.decided.plot.note.toPlainText().startswith("no labels: there is no classifier for shapes")
        forward = view.forward                                        # the forward process, slowed down
        with qtbot.waitSignal(forward.shown, timeout=TIMEOUT, check_params_cb=lambda t: t == 20):
            forward.index.setValue(red_shapes(1)[0])
            forward.slider.setValue(20)
            forward.ask()
        for name in ("x0", "eps", "x_t", "eps_pred", "x0_pred"):
            assert forward.panels[name].image.shape == (32, 32, 3), name
        assert_red(forward.panels["x0"].image, "the clean test image")
        count = len(shapes_test_factors())           # the index runs over shapes' own test set, not 10,000
        assert forward.index.maximum() == count - 1
        for _ in range(20):
            forward.random_image.click()
            assert 0 <= forward.index.value() < count
        gif = view.save_animation(tmp_path / "run.gif")
        with Image.open(gif) as img:
            rgb = np.asarray(img.convert("RGB"), np.int16)
        assert np.abs(rgb[..., 0] - rgb[..., 1]).max() > 0          # not grey: the channels differ
    finally:
        engine.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# Unlabelled pictures, and a folder that has gone

def test_unlabelled_pictures_show_no_labels_and_no_fid_and_say_why(qtbot, open_view, make_compare, folder_weights):
    view = open_view(LatentMapView, folder_weights, "folder-vae")
    assert view.info.dataset.startswith("folder:") and not view.info.has_classifier
    assert view.enc["labels"] is None and view.legend_names == []
    assert len(view.class_items) == 1                                 # one colour for every dot
    assert "no labels" in view.side.data_note.text() and view.side.data_note.isVisible()
    assert not view.side.colour_row.isVisible()
    note = view.side.probe_note.text()
    assert note.startswith("No labels under the images:") and note.count("\n") == 0
    assert view.probe_panels[0].image.shape == (32, 32, 3)
    compare = make_compare(folder_weights, model="folder-vae")         # its test images: the folder's
    path = next(p for p, name in compare.names.items() if name == "folder-vae")
    assert compare.picked["labels"] is None and compare.columns[path].images is not None
    side = compare.rows[path].info_label.text()
    assert "no labels, no FID: there is no classifier" in side                 # one line says why
    assert all(c == "" for c in compare.rows[path].grid.captions)


def test_a_folder_that_has_gone_is_one_sentence_on_the_map_and_the_probes_still_decode(qtbot, open_view,
                                                                                      folder_weights, tmp_path):
    shutil.rmtree(tmp_path / "pictures")
    view = open_view(LatentMapView, folder_weights, "folder-vae")
    text = view.status.text()
    assert "has gone" in text and str(tmp_path / "pictures") in text and text.count(". ") == 0
    assert view.enc is None and view.plane is not None
    assert view.probe_panels[0].image.shape == (32, 32, 3)


# ---------------------------------------------------------------------------------------------------------------
# The training dialog

def test_the_training_dialog_offers_the_data_sets_and_sets_the_pictures_shape(qtbot, colour_weights, tmp_path,
                                                                               monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from explorer.views.train.dialog import TrainDialog
    from models.catalog import DATASET_NAMES

    engine = Engine(device="cpu", weights=str(colour_weights))
    try:
        dialog = TrainDialog(engine, folder=tmp_path)
        qtbot.addWidget(dialog)
        offered = [dialog.dataset.itemData(i) for i in range(dialog.dataset.count())]
        assert offered[:len(DATASET_NAMES)] == list(DATASET_NAMES) and offered[-1] == "folder…"
        assert dialog.config()["image_shape"] == [1, 28, 28]             # Fashion-MNIST, as always
        dialog.select_family("vae")
        dialog.dataset.setCurrentIndex(dialog.dataset.findData("shapes"))
        assert dialog.config()["image_shape"] == [3, 32, 32] and "32×32 colour" in dialog.picture_note.text()
        dialog.image_size.setValue(64)
        dialog.channels.setCurrentIndex(dialog.channels.findData(1))
        assert dialog.request().config["image_shape"] == [1, 64, 64] and dialog.request().dataset == "shapes"
        dialog.dataset.setCurrentIndex(dialog.dataset.findData("cifar10"))
        assert "32x32" in dialog.problems()                               # CIFAR-10 keeps its size
        pictures = tmp_path / "mine"
        pictures.mkdir()
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(pictures))
        dialog.dataset.setCurrentIndex(dialog.dataset.findData("folder…"))
        assert dialog.request().dataset == f"folder:{pictures}"
        dialog.image_size.setValue(32)
        dialog.channels.setCurrentIndex(dialog.channels.findData(3))
        assert dialog.config()["image_shape"] == [3, 32, 32] and dialog.problems() == ""
        dialog.reject()
    finally:
        engine.shutdown()


def test_the_training_tab_trains_a_colour_model_on_shapes_and_shows_its_samples_in_colour(training_dialog, tmp_path):
    from models import checkpoint

    view, dialog, run = training_dialog
    dialog.select_family("vae")
    dialog.dataset.setCurrentIndex(dialog.dataset.findData("shapes"))
    out = tmp_path / "my-shapes-vae.safetensors"
    run(out)
    assert view.last is not None and view.last.step == 4
    assert view.samples.images.shape[1:] == (32, 32, 3)              # the samples from a fixed seed
    meta = checkpoint.read_metadata(out)
    assert meta.dataset == "shapes" and tuple(meta.image_shape) == (3, 32, 32)    # it remembers its data
