"""The main window as a user meets it: models to pick, files to open or drop, errors that do not stop the app,
settings remembered, views as tabs, and the command line's --screenshot and no-display behaviour."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QFileDialog, QLabel, QToolButton

from explorer.views import tabs
from explorer.window import ACTIVITY_DELAY_MS

ROOT = Path(__file__).resolve().parents[2]


def picker_items(win) -> list[str]:
    return [win.picker.itemText(i) for i in range(win.picker.count()) if win.picker.itemText(i)]


def settle(qtbot, win, name: str | None = None, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: win.state.model is not None and (name is None or win.state.model.name == name)
                    and win.engine.is_idle(), timeout=timeout)


def drop_event(mime: QMimeData) -> QDropEvent:
    """A drop of `mime`; the caller keeps `mime` alive (the event does not own it)."""
    return QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)


def test_the_window_opens_on_the_weights_with_a_model_loaded(window):
    state = window.state
    assert state.model.name == "ae-2d"                       # the first shipped model
    items = " | ".join(picker_items(window))
    for name in ("ae-2d", "vae-2d", "cae-16", "conv-vae-16"):
        assert name in items
    assert "classifier" not in items                          # it labels images; it has no latent to explore
    assert window.windowTitle().startswith("ae-2d")
    assert window.device_label.text() == "Device: cpu"
    assert window.model_label.text() == "Model: ae-2d (Autoencoder)"
    assert window.latent_label.text() == "Latent: 2-d"
    assert window.activity_label.text() == "Ready"
    assert not window.banner.isVisible()
    assert not window.windowIcon().isNull()


def test_picking_another_model_loads_it(qtbot, window):
    index = window.picker.findData(str(window.state.weights_dir) + "/conv-vae-16.safetensors")
    assert index >= 0
    window.picker.setCurrentIndex(index)
    window.picker.activated.emit(index)
    settle(qtbot, window, "conv-vae-16")
    assert window.latent_label.text() == "Latent: 16-d"
    assert window.state.model.has_classifier


def test_a_corrupt_file_from_the_menu_shows_its_message_and_the_app_keeps_working(qtbot, window, corrupt_file,
                                                                                  monkeypatch):
    from models.checkpoint import CheckpointError, read_metadata

    with pytest.raises(CheckpointError) as err:
        read_metadata(corrupt_file)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(corrupt_file), ""))
    window.open_action.trigger()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=30_000)
    assert window.banner.text == str(err.value)
    assert window.state.model.name == "ae-2d"                 # the model before is still there ...
    assert window.picker.currentText().startswith("ae-2d")
    assert str(corrupt_file) not in window.recent_files()     # ... a bad file is not remembered ...
    vae = window.picker.findData(str(window.state.weights_dir) + "/vae-2d.safetensors")
    window.picker.activated.emit(vae)                          # ... and the next request still works
    settle(qtbot, window, "vae-2d")
    qtbot.mouseClick(window.banner.findChild(QToolButton), Qt.MouseButton.LeftButton)
    assert not window.banner.isVisible()


def test_opened_files_are_listed_and_remembered_across_starts(qtbot, window, tiny_weights, tmp_path, monkeypatch):
    mine = tmp_path / "elsewhere" / "my-vae.safetensors"
    mine.parent.mkdir()
    shutil.copy(tiny_weights / "vae-2d.safetensors", mine)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(mine), ""))
    window.open_action.trigger()
    settle(qtbot, window, "my-vae")
    qtbot.waitUntil(lambda: any("my-vae" in t and "(opened)" in t for t in picker_items(window)), timeout=10_000)
    assert window.recent_files() == [str(mine)]
    window.close()

    from explorer.app import build_window

    again = build_window(weights=str(tiny_weights), device="cpu")
    qtbot.addWidget(again)
    settle(qtbot, again)
    assert again.state.model.name == "my-vae"                 # the last model used is opened again
    assert any("my-vae" in t for t in picker_items(again))
    again.recent_menu.aboutToShow.emit()
    assert [a.text() for a in again.recent_menu.actions()][0] == "my-vae.safetensors"


def test_window_geometry_and_view_are_restored(qtbot, tiny_weights, slow_view):
    from explorer.app import build_window

    first = build_window(weights=str(tiny_weights), device="cpu")
    qtbot.addWidget(first)
    first.show()
    settle(qtbot, first)
    assert first.current_view() == "map"                  # a first start opens the first tab
    first.show_view("slow-test")
    first.resize(701, 503)
    first.close()

    again = build_window(weights=str(tiny_weights), device="cpu")
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (701, 503)
    again.show()
    qtbot.waitUntil(lambda: again.tabs.count() > 0, timeout=10_000)    # the tabs come after the first paint
    assert again.current_view() == "slow-test"            # the tab the user left open
    assert again.tabs.currentWidget() is again.tabs.widget(list(again.view_widgets).index("slow-test"))
    settle(qtbot, again)


def test_dropping_a_checkpoint_on_the_window_opens_it(qtbot, window, tiny_weights):
    path = tiny_weights / "cae-16.safetensors"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(drop_event(mime))
    settle(qtbot, window, "cae-16")
    text_only = QMimeData()
    text_only.setText("not a file")
    refused = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, text_only, Qt.MouseButton.LeftButton,
                              Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(refused)
    assert not refused.isAccepted()


def test_a_diffusers_folder_opens_from_open_folder_and_from_a_drop(qtbot, window, tmp_path, monkeypatch):
    """File → Open Folder… (no file inside the folder to pick) and a folder dropped on the window, its URL with
    a trailing slash as file managers send it, both open the folder as a model; the dialog starts where the last
    one was."""
    sys.path.insert(0, str(ROOT / "tests"))
    from diffusers_folders import save_pipeline, tiny_unet

    first = save_pipeline(tmp_path / "pipes" / "ddpm-grey", tiny_unet(1, 8), num_train_timesteps=40)
    second = save_pipeline(tmp_path / "pipes" / "ddpm-colour", tiny_unet(3, 8), num_train_timesteps=40)
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: (asked.append(a), str(first))[1])
    window.open_folder_action.trigger()
    settle(qtbot, window, "ddpm-grey")
    assert window.state.model.family == "diffusers" and window.state.model.image_shape == (1, 8, 8)
    qtbot.waitUntil(lambda: window.picker.currentText().startswith("ddpm-grey"), timeout=10_000)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: (asked.append(a), "")[1])
    window.open_folder_action.trigger()                        # cancelled: nothing changes
    assert window.state.model.name == "ddpm-grey" and asked[-1][-1] == str(first.parent)

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(second) + "/")])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(drop_event(mime))
    settle(qtbot, window, "ddpm-colour")
    assert window.state.model.image_shape == (3, 8, 8) and not window.banner.isVisible()


@pytest.fixture()
def slow_view():
    """A registered view that draws only some time after the model arrives, and says `ready` then."""
    from PySide6.QtWidgets import QVBoxLayout

    from explorer.views.base import View

    class SlowView(View):
        def __init__(self, state, parent=None):
            super().__init__(state, "slow-test", parent)
            self.drawn_for: str | None = None
            self.label = QLabel("waiting")
            QVBoxLayout(self).addWidget(self.label)
            state.model_changed.connect(lambda info: QTimer.singleShot(400, self.label, lambda: self._draw(info)))

        def _draw(self, info):
            self.drawn_for = info.name
            self.label.setText(f"drawn for {info.name}")
            self.ready.emit()

    tabs.register_view("slow-test", title="Slow", caption="A view that takes its time.")(SlowView)
    yield SlowView
    tabs._VIEWS.pop("slow-test", None)


def test_views_are_tabs_with_captions_and_view_selects_one(qtbot, tiny_weights, slow_view):
    from explorer.app import build_window

    win = build_window(weights=str(tiny_weights), device="cpu", view="slow-test")
    qtbot.addWidget(win)
    specs = tabs.views()
    assert win.tabs.count() == len(specs)
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == [s.title for s in specs]
    assert win.current_view() == "slow-test"
    assert win.captions["slow-test"].text() == "A view that takes its time."
    with pytest.raises(KeyError, match="no view 'nope'"):
        win.show_view("nope")
    settle(qtbot, win)
    qtbot.waitUntil(win.view_is_ready, timeout=10_000)
    assert win.view_widgets["slow-test"].drawn_for == "ae-2d"


def test_screenshot_waits_until_the_view_has_drawn(qtbot, qapp, tiny_weights, slow_view, tmp_path, monkeypatch):
    from explorer.app import build_window, take_screenshot

    win = build_window(weights=str(tiny_weights), device="cpu", view="slow-test", remember=False)
    view = win.view_widgets["slow-test"]
    drawn_at_grab: list[str | None] = []
    real_grab = win.grab
    monkeypatch.setattr(win, "grab", lambda *a: (drawn_at_grab.append(view.drawn_for), real_grab(*a))[1])
    out = tmp_path / "shots" / "slow.png"
    code = take_screenshot(qapp, win, out, (900, 600), timeout_s=60)
    assert code == 0
    assert drawn_at_grab == ["ae-2d"]
    image = QImage(str(out))
    assert (image.width(), image.height()) == (900, 600)


def run_cli(args: list[str], env_drop=(), extra_env=None, timeout=240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.update(extra_env or {})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_screenshot_from_the_command_line_writes_a_png(tiny_weights, tmp_path):
    out = tmp_path / "window.png"
    home = tmp_path / "home"
    proc = run_cli(["--weights", str(tiny_weights), "--device", "cpu", "--screenshot", str(out),
                    "--size", "1000x700"], env_drop=("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"),
                   extra_env={"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"wrote {out}" in proc.stdout and "ae-2d" in proc.stdout
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1000, 700)
    assert not (home / ".config").exists()                     # a screenshot never writes the user's settings


def test_without_a_display_the_app_says_so_in_one_line(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is for Linux (X11/Wayland)")
    proc = run_cli([], env_drop=("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"), timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "--screenshot" in lines[0]


def test_an_unknown_view_name_is_refused_with_the_names_there_are(tmp_path):
    proc = run_cli(["--view", "nope", "--screenshot", str(tmp_path / "x.png")], timeout=120)
    assert proc.returncode == 2
    assert "there is no view 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_the_status_bar_says_what_the_engine_does_without_flickering(qtbot, window, monkeypatch):
    import time
    from dataclasses import dataclass

    from explorer.engine.job import Job

    @dataclass(frozen=True)
    class Nap(Job):
        seconds: float = 0.8
        activity = "thinking hard"

        def run(self, ctx):
            time.sleep(self.seconds)

    shown: list[str] = []
    real_set_text = window.activity_label.setText
    monkeypatch.setattr(window.activity_label, "setText", lambda t: (shown.append(t), real_set_text(t)))
    window.engine.submit(Nap(0.0))                               # a quick job is never announced ...
    qtbot.waitUntil(window.engine.is_idle, timeout=10_000)
    qtbot.wait(2 * ACTIVITY_DELAY_MS)
    assert set(shown) == {"Ready"} and window.activity_label.text() == "Ready"
    window.engine.submit(Nap())                                  # ... a slow one is, until it ends
    qtbot.waitUntil(lambda: window.activity_label.text() == "Thinking hard…", timeout=10_000)
    assert window.busy.isVisible()
    qtbot.waitUntil(lambda: window.activity_label.text() == "Ready", timeout=10_000)
    assert not window.busy.isVisible()
    assert "Thinking hard…" in shown


@pytest.mark.slow
def test_the_window_opens_on_the_shipped_weights(qtbot, monkeypatch):
    folder = ROOT / "weights"
    shipped = sorted(p for p in folder.glob("*.safetensors")
                     if not p.name.startswith("classifier") and not p.name.endswith(".state.safetensors"))
    if not shipped:
        pytest.skip("weights/ holds no shipped models yet")
    monkeypatch.delenv("LATENT_EXPLORER_WEIGHTS", raising=False)
    from explorer.app import build_window

    win = build_window(device="cpu")                      # no --weights: the repo's weights/ folder
    qtbot.addWidget(win)
    win.show()
    settle(qtbot, win, timeout=60_000)
    assert Path(win.state.weights_dir).resolve() == folder.resolve()
    assert Path(win.state.model.path).parent.resolve() == folder.resolve()
    listed = {Path(e.path).name for e in win.state.models}
    assert listed == {p.name for p in shipped}            # every shipped model, and only models with a latent
    assert not win.banner.isVisible(), win.banner.text


def test_a_screenshot_of_a_broken_model_is_written_but_says_it_failed(qtbot, qapp, tiny_weights, corrupt_file,
                                                                      tmp_path, capsys):
    from explorer.app import build_window, take_screenshot

    win = build_window(weights=str(tiny_weights), device="cpu", model=str(corrupt_file), remember=False)
    out = tmp_path / "broken.png"
    assert take_screenshot(qapp, win, out, (800, 500), timeout_s=60) == 1
    assert QImage(str(out)).width() == 800                  # the picture shows the banner with the reason
    err = capsys.readouterr().err
    assert "broken.safetensors" in err and "truncated" in err


def test_a_screenshot_windows_picker_shows_its_model_whatever_path_it_was_given(qtbot, tiny_weights, tmp_path,
                                                                                 monkeypatch):
    """--screenshot --model PATH: the picker names the model the views show (a file outside the weights, named
    absolutely or relatively, or a shipped one), and nothing is written to the user's settings."""
    from explorer.app import build_window
    from explorer.settings import app_settings

    mine = tmp_path / "elsewhere" / "my-vae.safetensors"
    mine.parent.mkdir()
    shutil.copy(tiny_weights / "vae-2d.safetensors", mine)
    monkeypatch.chdir(tmp_path)
    before = app_settings().value("files/recent")
    for model, name in ((str(mine), "my-vae"), ("elsewhere/my-vae.safetensors", "my-vae"),
                        (str(tiny_weights / "cae-16.safetensors"), "cae-16")):
        win = build_window(weights=str(tiny_weights), device="cpu", model=model, remember=False)
        qtbot.addWidget(win)
        settle(qtbot, win, name)
        qtbot.waitUntil(lambda: win.picker.currentText().startswith(name), timeout=10_000)
        assert win.picker.itemData(win.picker.currentIndex()) == win.state.model.path
        win.close()
    assert app_settings().value("files/recent") == before


def test_with_no_models_the_window_says_how_to_get_one(qtbot, tmp_path):
    from explorer.app import build_window

    empty = tmp_path / "no-weights"
    empty.mkdir()
    win = build_window(weights=str(empty), device="cpu")
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.startup_done, timeout=30_000)
    assert win.state.model is None
    assert f"No models in {empty}" in win.banner.text and "File → Open" in win.banner.text
    assert picker_items(win) == ["No models — File → Open…"]
    assert win.model_label.text() == "No model"


def test_the_model_label_says_how_the_model_was_trained_and_how_good_it_is(qtbot, window, tiny_weights, tmp_path):
    from models import checkpoint

    path = tmp_path / "gan.safetensors"
    shutil.copy(tiny_weights / "gan.safetensors", path)
    checkpoint.record_metrics(path, {"quality": {"fid": 143.4, "fid_n": 2000, "ms_per_sample_b64": 0.133}})
    window.state.open_model(str(path))
    settle(qtbot, window, "gan")
    tip = window.model_label.toolTip()
    assert str(path) in tip and "steps on fashion-mnist" in tip
    assert "domain FID 143 on 2,000 samples" in tip and "0.133 ms per sample" in tip


def test_a_model_summary_names_an_unfinished_plan_and_stays_quiet_without_figures():
    from explorer.state import ModelInfo, model_summary

    info = ModelInfo(path="/w/ddpm.safetensors", name="ddpm", family="ddpm", title="DDPM", latent_dim=784,
                     capabilities=frozenset({"decode", "denoise"}), image_shape=(1, 28, 28), dataset="fashion-mnist",
                     classes=(), has_classifier=False, train_steps=10_000,
                     training={"seconds": 7200.0, "device": "cpu", "finished": False, "target_steps": 40_000},
                     metrics={"quality": {"fid": 61.7, "fid_n": 2000, "sampler": "DDIM, 50 steps, eta 0"}})
    text = model_summary(info)
    assert "trained 10,000 steps on fashion-mnist (2.0 h on cpu), 25% of its planned 40,000" in text
    assert "domain FID 62 on 2,000 samples (DDIM, 50 steps, eta 0)" in text
    bare = model_summary(ModelInfo(**{**info.__dict__, "metrics": {}, "training": {}}))
    assert "FID" not in bare and bare.endswith("trained 10,000 steps on fashion-mnist")


def test_the_picker_names_every_model_with_its_family_diffusion_included():
    from explorer.state import ModelEntry

    assert ModelEntry("/w/vae-2d.safetensors", "vae-2d", "vae", "Variational autoencoder", True, 2).label == \
        "vae-2d — Variational autoencoder, 2-d latent"
    assert ModelEntry("/w/ddpm.safetensors", "ddpm", "ddpm", "Diffusion model (DDPM)", True, 0).label == \
        "ddpm — Diffusion model (DDPM)"


def test_a_bad_first_model_falls_back_to_the_default_one_and_everything_agrees(qtbot, tiny_weights, corrupt_file):
    from explorer.app import build_window

    win = build_window(weights=str(tiny_weights), device="cpu", model=str(corrupt_file))
    qtbot.addWidget(win)
    win.show()
    settle(qtbot, win, "ae-2d")                          # the first shipped model, after the bad one failed
    assert win.startup_done
    text = win.banner.text
    assert "broken.safetensors could not be opened" in text and "truncated" in text and "ae-2d instead" in text
    assert win.picker.currentData() == win.state.model.path          # the picker names what the views show
    assert win.model_label.text().startswith("Model: ae-2d")
    qtbot.waitUntil(lambda: win.view_is_ready("map"), timeout=30_000)
    assert win.view_widgets["map"].info.path == win.state.model.path


def test_a_failed_open_later_keeps_the_model_and_the_picker_on_it(qtbot, window, corrupt_file):
    before = window.state.model
    window.open_path(corrupt_file)
    qtbot.waitUntil(lambda: "truncated" in window.banner.text and window.engine.is_idle(), timeout=30_000)
    assert window.state.model == before
    assert window.picker.currentData() == before.path


def test_the_window_paints_before_torch_is_imported(tmp_path, tiny_weights):
    """A fresh process: the toolbar, tabs and a 'loading' status are on screen before torch is in sys.modules."""
    script = tmp_path / "first_paint.py"
    script.write_text(f"""
import gc
import sys
from explorer.app import build_window, hold_collector, make_application
app = make_application("light")
win = build_window(weights={str(tiny_weights)!r}, device="cpu", remember=False)
hold_collector(win)                                     # as main() does
seen = {{}}
def painted():
    seen["torch"] = "torch" in sys.modules
    seen["status"] = win.activity_label.text()
    seen["tabs"] = [win.tabs.tabText(i) for i in range(win.tabs.count())]
    seen["captions"] = [c.text() for c in win.captions.values()]
    seen["pyqtgraph"] = "pyqtgraph" in sys.modules
    seen["gc_at_paint"] = gc.isenabled()
def built():
    seen["all_views"] = len(win.view_widgets)
    seen["gc_after"] = (gc.isenabled(), gc.get_freeze_count() > 0)
win.first_painted.connect(painted)
win.views_built.connect(built)
win.show()
from PySide6.QtCore import QTimer
def check():
    if win.state.model is not None and "all_views" in seen:
        print("PAINTED", seen, "LATER", "torch" in sys.modules, flush=True)
        app.quit()
timer = QTimer(); timer.timeout.connect(check); timer.start(50)
QTimer.singleShot(60_000, app.quit)
app.exec()
win.engine.shutdown()
""")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PAINTED")), "")
    assert line, out.stdout + out.stderr
    assert "'torch': False" in line and "'status': 'Loading the model library…'" in line
    # the first frame already has every tab and its caption, though no view (nor pyqtgraph) is loaded yet
    assert "'tabs': ['Latent map', 'Interpolate', 'Directions', 'Compare', 'Diffusion', 'Training']" in line
    assert "'pyqtgraph': False" in line and "The summary space" in line and "The sculptor" in line
    assert f"'all_views': {len(tabs.views())}" in line        # and afterwards every view is built
    assert line.endswith("LATER True")                  # and the engine thread imported it afterwards
    # no garbage collection pauses on the way to the first picture; once the views are built, what startup made
    # is frozen out of the collector's sight and it works again
    assert "'gc_at_paint': False" in line and "'gc_after': (True, True)" in line


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_reaches_the_banner_once_and_the_app_keeps_working(qtbot, window, caplog):
    import logging

    from explorer.engine.jobs.common import DecodePoints

    def broken_slot():
        raise ValueError("the view tripped over a cable")

    with caplog.at_level(logging.ERROR):
        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: "tripped over a cable" in window.banner.text, timeout=5_000)
    assert window.banner.text == "Something went wrong: ValueError: the view tripped over a cable"
    records = [r for r in caplog.records if "tripped over a cable" in str(r.exc_info[1] if r.exc_info else "")]
    assert len(records) == 1 and records[0].exc_info is not None          # logged once, with its traceback
    channel = window.engine.channel("after")
    got = []
    channel.submit(DecodePoints("p", [[0.0, 0.0]], model=window.state.model.path), got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10_000)                      # the app still answers
    assert got[0].payload.images.shape[0] == 1
