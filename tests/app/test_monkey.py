"""The app survives a monkey: seeded random input on every view of the real window, on the shipped weights.

For each registered view in turn, about 15 s of drags, clicks, double clicks, wheel turns, keys, model switches
(some halfway through a drag), bad files through File > Open and window resizes. Afterwards: no exception reached
Qt's event loop, the engine or the log; the engine is idle; a decode is still answered (and the training view
still trains); the view's plots and images hold data.
A failure prints its seed and the last 20 actions: `pytest tests/app/test_monkey.py -k map --monkey-seed N`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QMessageBox

from explorer.views import view_names

from monkey import Monkey

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture()
def dialogs_answer_like_a_hurried_user(monkeypatch, corrupt_file):
    """Open offers a broken file, Save is cancelled, questions get No, a dialog of the app's own is closed."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(corrupt_file), ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "")
    for name in ("critical", "warning", "information"):
        monkeypatch.setattr(QMessageBox, name, lambda *a, **k: QMessageBox.StandardButton.Ok)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    monkeypatch.setattr(QMessageBox, "exec", lambda self: QMessageBox.StandardButton.No)
    monkeypatch.setattr(QDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    return corrupt_file


def blank(image) -> bool:
    """True when a grabbed picture is one flat colour (nothing drawn)."""
    img = image.toImage().convertToFormat(image.toImage().Format.Format_RGB32)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=img.sizeInBytes()).reshape(img.height(), -1)
    return float(arr.std()) < 1.0


def _holds_data(item) -> bool:
    """True if a plot's item shows something: points, a curve, bars, a picture, or a probe to drag."""
    if isinstance(item, pg.TargetItem):
        return True
    if isinstance(item, pg.ImageItem):
        return item.image is not None and item.image.size > 0
    if isinstance(item, pg.ScatterPlotItem):
        return len(item.data) > 0
    if isinstance(item, (pg.PlotDataItem, pg.PlotCurveItem)):
        y = item.getData()[1]
        return y is not None and bool(np.isfinite(np.asarray(y, dtype=np.float64)).any())
    if isinstance(item, pg.BarGraphItem):
        height = item.opts.get("height")
        return height is not None and np.size(height) > 0
    return False


def _describe(canvas) -> str:
    return f"{type(canvas).__name__} {canvas.objectName()}".strip()


def missing_data(view) -> list[str]:
    """What the view's plots and images fail to show ([] if nothing). Buttons and labels fill even a window that
    has no model at all, so a grab of it is never blank; this looks at the data instead: at least one picture on
    screen (not one flat value); every plot on screen holding points, a curve, bars, a picture or a probe to
    drag; and most of the picture panels and grids on screen holding pictures (a few may rightly wait: a branch
    comparison before any branch, the column of a model trained on other pictures)."""
    missing, pictures, panels, empty_panels = [], 0, 0, []
    for canvas in view.findChildren(pg.GraphicsView):
        if not canvas.isVisible():
            continue
        items = [it for it in canvas.scene().items() if it.isVisible()]
        pictures += sum(1 for it in items if isinstance(it, pg.ImageItem) and it.image is not None
                        and it.image.size > 0 and float(np.nanstd(it.image)) > 0.01)
        plots = [it for it in items if isinstance(it, pg.PlotItem) and not isinstance(it, pg.ColorBarItem)]
        for plot in plots:          # (a colour bar is the legend of another plot's colours, not data)
            if not any(_holds_data(it) for it in items if plot.isAncestorOf(it)):
                missing.append(f"the plot {plot.titleLabel.text!r} is empty")
        if not plots:
            panels += 1
            if not any(_holds_data(it) for it in items):
                empty_panels.append(_describe(canvas))
    if not pictures:
        missing.insert(0, "no picture is shown")
    if empty_panels and 2 * len(empty_panels) >= panels:
        missing.append(f"{len(empty_panels)} of its {panels} picture panels are empty ({', '.join(empty_panels)})")
    return missing


def train_briefly(qtbot, view, out: Path, timeout: int = 120_000) -> None:
    """A one-epoch run of a small VAE, started from the training view's dialog as a user starts one."""
    dialog = view.new_model()
    assert dialog is not None, "the training view refused a new run"
    dialog.select_family("vae")
    dialog.subset.setValue(512)
    dialog.epochs.setValue(1.0)
    dialog.batch.setValue(64)
    dialog.out.setText(str(out))
    qtbot.waitUntil(lambda: dialog.step_ms is not None, timeout=timeout)
    with qtbot.waitSignal(view.run_finished, timeout=timeout):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


@pytest.mark.parametrize("view", view_names())
def test_the_app_survives_a_monkey(qtbot, request, caplog, tmp_path, view, dialogs_answer_like_a_hurried_user):
    from explorer.app import build_window
    from explorer.engine.jobs.common import DecodePoints

    weights = ROOT / "weights"
    if not any(weights.glob("*.safetensors")):
        pytest.skip("no shipped weights")
    seed = request.config.getoption("--monkey-seed")
    seconds = request.config.getoption("--monkey-seconds")
    caplog.set_level(logging.WARNING)
    win = build_window(weights=str(weights), device="cpu", view=view, remember=False)
    qtbot.addWidget(win)
    win.resize(1280, 820)
    win.show()
    qtbot.waitUntil(lambda: win.startup_done and win.state.model is not None, timeout=60_000)
    qtbot.waitUntil(win.engine.is_idle, timeout=120_000)      # the first model drawn, as a user sees it first
    page = win.tabs.currentWidget()
    monkey = Monkey(win, page, seed, str(dialogs_answer_like_a_hurried_user))
    with qtbot.capture_exceptions() as exceptions:
        report = monkey.run(seconds)
        win.show_view(view)
        trainer = win._views.get("train")
        if trainer is not None and trainer.running:      # the monkey started a run (Enter in the dialog):
            trainer.cancel()                             # the hurried user cancels it, as any user could
        try:
            qtbot.waitUntil(win.engine.is_idle, timeout=120_000)
        except qtbot.TimeoutError:
            pytest.fail(f"the engine never fell idle; still waiting: {win.engine.waiting_keys()} "
                        f"{win.activity_text!r}\n{report.replay_hint(view)}")
    hint = report.replay_hint(view)
    assert not exceptions, f"{exceptions[0][1]!r}\n{hint}"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, f"{errors[0].getMessage()} {errors[0].exc_info}\n{hint}"
    assert report.actions > 50, hint
    # still answering: a decode for the model on screen, through a channel of its own
    info = win.state.model
    got = []
    z = np.zeros((1, info.latent_dim), np.float32)
    win.engine.channel("after-the-monkey").submit(DecodePoints("check", z, model=info.path), got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=60_000)
    assert got[0].payload.images.shape[0] == 1, hint
    page = win.view_widgets[view]
    if view == "train":          # a training view shows a run: one more, short, as a user would start it
        train_briefly(qtbot, page, tmp_path / "after-the-monkey.safetensors")
        qtbot.waitUntil(win.engine.is_idle, timeout=60_000)
    if view == "diffusion" and page.run is not None and page.run.stopped and not page.run.frames:
        page.run_button.click()  # stopped before its first frame, which leaves nothing to show: Run again
        qtbot.waitUntil(win.engine.is_idle, timeout=120_000)
    assert not blank(page.grab()), hint
    missing = missing_data(page)
    assert not missing, f"the {view} view on {win.state.model.name}: {'; '.join(missing)}\n{hint}"
    print(f"\nmonkey on {view}: {report.actions} actions in {seconds:g} s (seed {seed})")


def test_a_window_without_a_model_shows_no_data(qtbot, tmp_path, monkeypatch):
    """The monkey's last check has teeth: on an empty weights folder, where buttons and labels still fill every
    view (so no grab of one is blank), it finds no data in any of them."""
    from explorer.app import build_window

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))     # no user models either
    empty = tmp_path / "weights"
    empty.mkdir()
    win = build_window(weights=str(empty), device="cpu", remember=False)
    qtbot.addWidget(win)
    win.resize(1280, 820)
    win.show()
    qtbot.waitUntil(lambda: win.startup_done, timeout=60_000)
    for view in view_names():
        win.show_view(view)
        qtbot.waitUntil(win.engine.is_idle, timeout=60_000)
        assert win.state.model is None
        assert not blank(win.view_widgets[view].grab()), view
        assert missing_data(win.view_widgets[view]), view
