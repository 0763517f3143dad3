"""The app survives a monkey: seeded random input on every view of the real window, on the shipped weights.

For each registered view in turn, about 15 s of drags, clicks, double clicks, wheel turns, keys, model switches
(some halfway through a drag), bad files through File > Open and window resizes. Afterwards: no exception reached
Qt's event loop, the engine or the log; the engine is idle; a decode is still answered; the view is not blank.
A failure prints its seed and the last 20 actions: `pytest tests/app/test_monkey.py -k map --monkey-seed N`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from explorer.views import view_names

from monkey import Monkey  # noqa: E402  (tests/app is on the path, as for conftest)

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


@pytest.mark.parametrize("view", view_names())
def test_the_app_survives_a_monkey(qtbot, request, caplog, view, dialogs_answer_like_a_hurried_user):
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
    assert not blank(win.view_widgets[view].grab()), hint
    print(f"\nmonkey on {view}: {report.actions} actions in {seconds:g} s (seed {seed})")
