"""The compare view as a user meets it, offscreen, on tiny real weights: every column rebuilds the same test images
as its model's own reconstruct(); every prior row draws from one seed; the figures beside them are the
checkpoint's records (or say "not measured"); a model without an encoder has a row and says why it has no
column; a click looks inside a network, stage by stage; an opened file joins; the diffusion row streams, stops,
and leaves the rest usable."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt

from explorer.engine.worker import Engine
from explorer.state import AppState
from explorer.views.compare.view import DDIM_STEPS, CompareView

TIMEOUT = 60_000
CONV_CHANNELS = (8, 16)           # the tiny conv models' widths (tests/app/conftest.py)


def load(path):
    from models.checkpoint import load as load_checkpoint

    return load_checkpoint(path, "cpu").eval()


@pytest.fixture()
def make_view(qtbot):
    """make_view(weights) -> a shown CompareView on a real engine over that folder, everything drawn."""
    engines = []

    def make(weights, wait_ready: bool = True) -> CompareView:
        engine = Engine(device="cpu", weights=str(weights))
        engines.append(engine)
        state = AppState(engine, weights)
        view = CompareView(state)
        qtbot.addWidget(view)
        view.resize(1280, 760)
        if wait_ready:
            with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
                view.show()
                state.list_models()
        else:
            view.show()
            state.list_models()
        return view

    yield make
    for engine in engines:
        engine.shutdown()


def by_name(view: CompareView, table: dict) -> dict:
    return {view.names[p]: v for p, v in table.items()}


def assert_reconstructs(view: CompareView, weights) -> None:
    """Every shown column holds its checkpoint's own reconstruct() of the rows shown."""
    x = torch.from_numpy(view.picked["images"])[:, None]
    for name, column in by_name(view, view.columns).items():
        with torch.no_grad():
            want = load(weights / f"{name}.safetensors").reconstruct(x)[:, 0].numpy()
        np.testing.assert_allclose(column.images, want, atol=1e-5, err_msg=name)


def click_tile(qtbot, grid, index: int) -> None:
    """A real left click on tile `index` of an ImageGrid."""
    x, y = grid.tile_origin(index)
    h, w = grid.images.shape[1:3]
    scene = grid.box.mapViewToScene(QPointF(x + w / 2, y + h / 2))
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=grid.mapFromScene(scene))


@pytest.fixture()
def ddpm_weights(tiny_weights, tmp_path):
    """tiny_weights plus a tiny, untrained DDPM (T = 50), so there is a diffusion row."""
    from models import checkpoint
    from models.registry import build

    folder = tmp_path / "with-ddpm"
    shutil.copytree(tiny_weights, folder)
    torch.manual_seed(0)
    model = build("ddpm", {"base_channels": 8, "channel_mults": [1, 2], "timesteps": 50, "decode_steps": 6})
    checkpoint.save(model.eval(), folder / "ddpm.safetensors", dataset="fashion-mnist", train_steps=0)
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Reconstructions

def test_every_column_shows_its_models_reconstruct_of_the_same_test_images(qtbot, make_view, tiny_weights):
    from models.data import load_dataset

    view = make_view(tiny_weights)
    columns = by_name(view, view.columns)
    assert list(columns) and set(columns) == {"ae-2d", "vae-2d", "cae-16", "conv-vae-16", "vaegan"}
    assert [view.names[p] for p in view.visible_columns] == ["ae-2d", "vae-2d", "cae-16", "conv-vae-16", "vaegan"]
    picked = view.picked
    assert len(picked["indices"]) == 8 and sorted(picked["labels"]) == list(range(8))   # one per class
    test = load_dataset("fashion-mnist", "test")
    x = test.images[torch.as_tensor(picked["indices"])]
    np.testing.assert_allclose(view.original.grid.images, x[:, 0].numpy(), atol=1e-6)
    for name, column in columns.items():
        with torch.no_grad():
            want = load(tiny_weights / f"{name}.safetensors").reconstruct(x)[:, 0].numpy()
        np.testing.assert_allclose(column.images, want, atol=1e-5, err_msg=name)
        mse = ((want - x[:, 0].numpy()) ** 2).mean(axis=(1, 2))
        assert column.grid.captions[0].startswith(f"{mse[0]:.4f} · ")           # MSE · sharpness under each
    # the picker's model was never touched by loading the columns
    assert view.state.model is None


def test_new_images_redraw_every_column_and_show_their_seed(qtbot, make_view, tiny_weights):
    view = make_view(tiny_weights)
    before = view.picked["indices"].copy()
    assert "seed 0" in view.images_label.text()
    with qtbot.waitSignals([view.column_drawn] * len(view.columns), timeout=TIMEOUT):
        qtbot.mouseClick(view.new_images_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    assert "seed 1" in view.images_label.text()
    assert not np.array_equal(before, view.picked["indices"])
    assert_reconstructs(view, tiny_weights)                                      # the new rows, rebuilt
    # picked by number; a bad list and a number past the test set each say why and keep what was shown
    view.pick("0, 17, 42")
    qtbot.waitUntil(lambda: list(view.picked["indices"]) == [0, 17, 42], timeout=TIMEOUT)
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    assert all(len(c.images) == 3 for c in view.columns.values())
    view.pick("0, x")
    assert "not a list of test image numbers" in view.status.text()
    view.pick("99999")
    qtbot.waitUntil(lambda: "no test image 99999" in view.status.text(), timeout=TIMEOUT)
    assert list(view.picked["indices"]) == [0, 17, 42]


def test_columns_can_be_removed_and_added_back(qtbot, make_view, tiny_weights):
    view = make_view(tiny_weights)
    path = next(p for p in view.columns if view.names[p] == "cae-16")
    view.set_column_shown(path, False)
    assert path not in view.visible_columns and not view.columns[path].isVisible()
    action = next(a for a in view.columns_menu.actions() if a.text() == "cae-16")
    assert not action.isChecked()
    with qtbot.waitSignal(view.column_drawn, timeout=TIMEOUT):
        action.setChecked(True)                       # the menu adds it back, and it is drawn again
    assert path in view.visible_columns and view.columns[path].isVisible()


def test_vae_columns_wobble_with_sampled_codes_and_the_error_toggle_shows_the_difference(qtbot, make_view,
                                                                                         tiny_weights):
    view = make_view(tiny_weights)
    cols = by_name(view, view.columns)
    mu_vae, mu_ae = cols["vae-2d"].images.copy(), cols["ae-2d"].images.copy()
    seen = []
    vae_path = cols["vae-2d"].path
    view.column_drawn.connect(lambda p: seen.append(cols["vae-2d"].images.copy()) if p == vae_path else None)
    view.sample_box.setChecked(True)
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=TIMEOUT)          # the wobble timer keeps drawing
    view.sample_box.setChecked(False)
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    assert np.abs(seen[0] - mu_vae).max() > 1e-3                     # z = mu + sigma * eps, not mu
    assert np.abs(seen[1] - seen[0]).max() > 1e-3                    # a new eps each time: it wobbles
    assert view.gaussian[vae_path] and not view.gaussian[cols["ae-2d"].path]
    qtbot.wait(50)
    np.testing.assert_allclose(cols["ae-2d"].images, mu_ae, atol=1e-6)          # a point encoder has no wobble
    np.testing.assert_allclose(cols["vae-2d"].images, mu_vae, atol=1e-5)        # back to mu
    view.diff_box.setChecked(True)
    np.testing.assert_allclose(cols["vae-2d"].images, np.abs(view.picked["images"] - mu_vae), atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Prior rows

def test_every_prior_row_draws_from_the_same_seed(qtbot, make_view, tiny_weights):
    view = make_view(tiny_weights)
    rows = by_name(view, view.rows)
    assert set(rows) == {"ae-2d", "vae-2d", "cae-16", "conv-vae-16", "gan", "vaegan"}
    assert {r.result["seed"] for r in rows.values()} == {0}
    sixteen = [rows[n].result["z"] for n in ("cae-16", "conv-vae-16", "gan", "vaegan")]
    for z in sixteen[1:]:
        np.testing.assert_array_equal(z, sixteen[0])                 # one seed: the same draws at one latent size
    np.testing.assert_array_equal(rows["ae-2d"].result["z"], rows["vae-2d"].result["z"])
    gan = load(tiny_weights / "gan.safetensors")
    with torch.no_grad():
        want = gan.decode(gan.prior(8, torch.Generator().manual_seed(0)))[:, 0].numpy()
    np.testing.assert_allclose(rows["gan"].grid.images, want, atol=1e-5)
    # the classifier's label under each sample, the live figures beside the row
    classes = view.infos[rows["gan"].path].classes
    assert all(c in classes for c in rows["gan"].grid.captions)
    assert re.search(r"sharpness \d+\.\d{3} · [\d.]+ ms/sample", rows["gan"].info_label.text())
    before = rows["gan"].grid.images.copy()
    with qtbot.waitSignals([view.row_drawn] * len(rows), timeout=TIMEOUT):
        qtbot.mouseClick(view.new_samples_button, Qt.MouseButton.LeftButton)
    assert {r.result["seed"] for r in rows.values()} == {1}
    assert "seed 1" in view.prior_title.text()
    assert np.abs(rows["gan"].grid.images - before).max() > 1e-3


def test_fid_beside_a_row_is_the_recorded_figure_or_not_measured(qtbot, make_view, tiny_weights, tmp_path):
    from models.checkpoint import record_metrics

    folder = tmp_path / "recorded"
    shutil.copytree(tiny_weights, folder)
    record_metrics(folder / "vae-2d.safetensors",
                   {"quality": {"fid": 123.4, "fid_n": 500, "recon_mse": 0.0123, "pca_mse": 0.0456}})
    view = make_view(folder)
    rows, cols = by_name(view, view.rows), by_name(view, view.columns)
    assert "FID 123 (n = 500)" in rows["vae-2d"].info_label.text()
    assert "FID not measured" in rows["gan"].info_label.text()
    assert "test MSE 0.0123" in cols["vae-2d"].header.text()
    assert "PCA 2-d 0.0456" in cols["vae-2d"].header.text()
    # ae-2d recorded nothing: its own MSE is not measured, and PCA at 2-d is the same figure vae-2d recorded
    assert "test MSE not measured" in cols["ae-2d"].header.text()
    assert "PCA 2-d 0.0456" in cols["ae-2d"].header.text()
    assert "PCA 16-d not measured" in cols["cae-16"].header.text()


def test_a_model_without_an_encoder_gets_no_column_and_its_row_says_why(qtbot, make_view, tiny_weights):
    view = make_view(tiny_weights)
    assert "gan" not in by_name(view, view.columns)
    gan_row = by_name(view, view.rows)["gan"]
    assert "no encoder" in gan_row.info_label.text() and "no reconstruction column" in gan_row.info_label.text()
    assert "no encoder" not in by_name(view, view.rows)["vae-2d"].info_label.text()


# ---------------------------------------------------------------------------------------------------------------
# Inside the networks

def look_inside(qtbot, view, name: str, row: int) -> dict:
    """Click row `row` of column `name`'s reconstructions and return what the inside panel shows."""
    with qtbot.waitSignal(view.inside_shown, timeout=TIMEOUT):
        click_tile(qtbot, by_name(view, view.columns)[name].grid, row)
    return view.inside.result


def test_a_click_on_a_conv_reconstruction_shows_each_stage_at_its_own_shape(qtbot, make_view, tiny_weights):
    view = make_view(tiny_weights)
    r = look_inside(qtbot, view, "conv-vae-16", 2)
    assert r["kind"] == "conv"
    c1, c2 = CONV_CHANNELS
    assert [(s["name"], s["shape"]) for s in r["stages"]] == [
        ("input", (1, 28, 28)), ("encoder 1", (c1, 14, 14)), ("encoder 2", (c2, 7, 7)),
        ("decoder start", (c2, 7, 7)), ("decoder 1", (c1, 14, 14)), ("output", (1, 28, 28))]
    for stage in r["stages"][1:-1]:
        c, h, w = stage["shape"]
        assert stage["tiles"].shape == (4, h, w)                      # a few channels, each at the stage's size
        assert stage["tiles"].min() >= 0.0 and stage["tiles"].max() <= 1.0
    assert r["code"].shape == (16,)
    np.testing.assert_allclose(r["input"], view.picked["images"][2], atol=1e-6)   # the clicked row's image
    assert f"#{int(view.picked['indices'][2])}" in view.inside.title.text()
    assert view.inside.strip.count == len(r["stages"]) + 1           # every stage, and the code between
    assert "code\n16 numbers" in view.inside.strip.captions


def test_a_click_on_the_dense_autoencoder_shows_its_layer_sizes_and_code(qtbot, make_view, tiny_weights):
    view = make_view(tiny_weights)
    r = look_inside(qtbot, view, "ae-2d", 0)
    assert r["kind"] == "dense" and r["code"].shape == (2,)
    assert r["sizes"] == {"encoder": [784, 128, 64, 2], "decoder": [64, 128, 784]}
    assert "784 → 128 → 64 → [2-d code] → 64 → 128 → 784" in view.inside.note.text()


# ---------------------------------------------------------------------------------------------------------------
# Models come and go

def test_opening_a_checkpoint_adds_its_column(qtbot, make_view, tiny_weights, tmp_path):
    view = make_view(tiny_weights)
    mine = tmp_path / "elsewhere" / "my-vae.safetensors"
    mine.parent.mkdir()
    shutil.copy2(tiny_weights / "vae-2d.safetensors", mine)
    state = view.state
    state.open_model(str(mine))                       # what File > Open does, then the list with the file in it
    qtbot.waitUntil(lambda: state.model is not None, timeout=TIMEOUT)
    state.list_models([str(mine)])
    qtbot.waitUntil(lambda: "my-vae" in by_name(view, view.columns)
                    and by_name(view, view.columns)["my-vae"].images is not None, timeout=TIMEOUT)
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    cols = by_name(view, view.columns)
    assert [view.names[p] for p in view.visible_columns][-1] == "my-vae"     # opened files come last
    np.testing.assert_allclose(cols["my-vae"].images, cols["vae-2d"].images, atol=1e-6)  # same weights
    assert "my-vae" in by_name(view, view.rows)
    assert len(view.columns) == 6                     # listed and opened: one column, not two


def test_file_open_in_the_window_adds_a_column_without_the_compare_view_moving_the_picker(qtbot, window,
                                                                                         tiny_weights, tmp_path):
    view = window.view_widgets["compare"]
    first = window.state.model.path
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        window.show_view("compare")
    qtbot.waitUntil(window.engine.is_idle, timeout=TIMEOUT)
    assert window.state.model.path == first           # loading every column left the picker alone
    mine = tmp_path / "mine" / "cae-mine.safetensors"
    mine.parent.mkdir()
    shutil.copy2(tiny_weights / "cae-16.safetensors", mine)
    window.open_path(mine)                            # File > Open's own path
    qtbot.waitUntil(lambda: "cae-mine" in by_name(view, view.columns)
                    and by_name(view, view.columns)["cae-mine"].images is not None, timeout=TIMEOUT)
    assert "cae-mine" in by_name(view, view.rows)
    assert window.state.model.name == "cae-mine"


# ---------------------------------------------------------------------------------------------------------------
# The diffusion row

def test_the_ddpm_row_streams_can_be_stopped_and_the_view_stays_usable(qtbot, make_view, ddpm_weights):
    view = make_view(ddpm_weights, wait_ready=False)
    qtbot.waitUntil(lambda: any(view.names.get(p) == "ddpm" for p in view.rows), timeout=TIMEOUT)
    path = next(p for p in view.rows if view.names[p] == "ddpm")
    row = view.rows[path]
    assert row.stream and path not in view.columns and "no encoder" in row.info_label.text()
    frames, seen_button = [], []

    def on_frame(p, i):
        if p != path:
            return
        frames.append(i)
        if len(frames) == 3:                          # the user presses Stop while it runs
            seen_button.append(row.stop_button.isVisible() and row.progress.isVisible())
            qtbot.mouseClick(row.stop_button, Qt.MouseButton.LeftButton)

    view.stream_frame.connect(on_frame)
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        pass
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    assert seen_button == [True]
    stopped_at = len(frames)
    assert stopped_at == 3 and "stopped at DDIM step 3/" in row.info_label.text()
    assert not row.stop_button.isVisible()
    qtbot.wait(200)
    assert len(frames) == stopped_at                  # nothing more came
    # the rest still answers: the error toggle and new images
    view.diff_box.setChecked(True)
    with qtbot.waitSignals([view.column_drawn] * len(view.columns), timeout=TIMEOUT):
        view.new_images()
    # and a new draw runs the diffusion row to its end, labelled, with its cost
    with qtbot.waitSignal(view.row_drawn, timeout=TIMEOUT, check_params_cb=lambda p: p == path):
        view.new_samples()
    assert len(frames) >= stopped_at + DDIM_STEPS - 1
    assert row.done and row.grid.count == 8 and "ms/sample" in row.info_label.text()
    assert all(c in view.infos[path].classes for c in row.grid.captions)
    assert row.result["seed"] == view.rows[next(p for p in view.rows if view.names[p] == "gan")].result["seed"]


# ---------------------------------------------------------------------------------------------------------------
# Export

def test_the_grid_exports_as_a_png(qtbot, make_view, tiny_weights, tmp_path):
    from PIL import Image

    from explorer.views.widgets.export import ExportError

    view = make_view(tiny_weights)
    out = view.export_png(str(tmp_path / "compare.png"))
    picture = view.picture()
    with Image.open(out) as img:
        assert img.size == (picture.shape[1] * 3, picture.shape[0] * 3)
        pixels = np.asarray(img, dtype=np.float32) / 255.0
    # the top-left tile is the first original, as shown
    np.testing.assert_allclose(pixels[:84:3, :84:3], view.picked["images"][0], atol=1 / 255 + 1e-6)
    with pytest.raises(ExportError):
        view.export_png(str(tmp_path / "compare.png" / "x.png"))             # a file where a folder should be


# ---------------------------------------------------------------------------------------------------------------
# benchmarks/compare.py keeps its --json contract

@pytest.mark.slow
def test_compare_benchmark_reports_its_figures_as_json(tiny_weights):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "compare.py"), "--weights", str(tiny_weights),
                           "--repeats", "1", "--device", "cpu", "--json"], capture_output=True, text=True,
                          timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    for key in ("compare_open_s", "bare_decodes_s"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["rows"] == 6 and figures["columns"] == 5


def test_a_fid_measured_in_another_data_sets_features_says_so():
    """Each data set's FID is taken in its own classifier's features, on its own scale: the shapes VAE's 1,811
    must not read as 50 times worse than a Fashion-MNIST model's 35."""
    from types import SimpleNamespace

    from explorer.views.compare.figures import fid_text

    figures = {"quality": {"fid": 1810.9, "fid_n": 2000}}
    assert fid_text(SimpleNamespace(dataset="shapes", metrics=figures)) == "FID 1811 (n = 2,000, shapes features)"
    assert fid_text(SimpleNamespace(dataset="fashion-mnist", metrics=figures)) == "FID 1811 (n = 2,000)"
