"""Training from the dialog, as a user does it, offscreen on the real engine: a one-epoch run lands in the picker;
cancelling keeps a whole checkpoint (or deletes the run's files) and leaves the app usable; a NaN stops the run
with its message; a resume continues from the saved step; decodes are answered while a run trains; and in slow
motion a detective step moves only D, a forger step only G."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from explorer.engine.jobs.common import DecodePoints
from explorer.engine.worker import Engine
from explorer.state import AppState
from explorer.views.train.view import KEY, TrainingView

TIMEOUT = 90_000


@pytest.fixture()
def make_view(qtbot, tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))   # the user's models folder, for this test
    engines = []

    def make() -> TrainingView:
        engine = Engine(device="cpu", weights=str(tiny_weights))
        engines.append(engine)
        state = AppState(engine, tiny_weights)
        state.list_models()
        view = TrainingView(state)
        qtbot.addWidget(view)
        view.resize(1100, 720)
        view.show()
        qtbot.waitUntil(lambda: bool(state.models), timeout=TIMEOUT)
        return view

    yield make
    for engine in engines:
        engine.shutdown()


def start_from_dialog(qtbot, view, out: Path, family="vae", subset=512, epochs=1.0, batch=64, dialog=None):
    """Fill the dialog as a user would (on `dialog` if one is open), wait for its measured estimate, press Train."""
    if dialog is None:
        dialog = view.new_model()
        dialog.select_family(family)
    dialog.subset.setValue(subset)
    dialog.epochs.setValue(epochs)
    dialog.batch.setValue(batch)
    dialog.out.setText(str(out))
    qtbot.waitUntil(lambda: dialog.step_ms is not None, timeout=TIMEOUT)
    assert "ms per step" in dialog.estimate.text() and "measured" in dialog.estimate.text()
    with qtbot.waitSignal(view.run_started, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    return dialog


def answer(monkeypatch, button):
    asked = []

    def question(*args, **kwargs):
        asked.append(args[2] if len(args) > 2 else "")
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_a_one_epoch_run_finishes_and_its_model_appears_in_the_picker(qtbot, make_view, tmp_path):
    from models import checkpoint

    view = make_view()
    out = tmp_path / "models" / "my-vae.safetensors"
    start_from_dialog(qtbot, view, out, epochs=1.0)
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT) as done:
        pass
    assert done.args == [str(out)]
    meta = checkpoint.read_metadata(out)
    assert meta.family == "vae" and meta.train_steps == 512 // 64
    assert meta.training["settings"]["batch_size"] == 64 and meta.training["images"] == 512
    qtbot.waitUntil(lambda: str(out) in [e.path for e in view.state.models], timeout=TIMEOUT)
    # what the user watched: recon and KL apart, samples, and the 2-D map re-encoded after the epoch
    assert {"recon", "kl"} <= set(view.curves.keys)
    assert view.curves.curves["kl"] in view.curves.d_plot.listDataItems()
    assert view.curves.steps == list(range(1, 9))     # every step plotted, though they cross 50 ms at a time
    assert view.samples.count == 16
    assert view.map.codes is not None and view.map.codes.shape == (2000, 2)
    assert "Finished" in view.status.text()
    # and it opens like any model
    with qtbot.waitSignal(view.state.model_changed, timeout=TIMEOUT):
        qtbot.mouseClick(view.open_button, Qt.MouseButton.LeftButton)
    assert view.state.model.path == str(out)


def test_cancel_keeps_the_last_epoch_whole_and_the_app_usable(qtbot, make_view, tmp_path, monkeypatch,
                                                              tiny_weights):
    from models import checkpoint, train

    view = make_view()
    out = tmp_path / "run.safetensors"
    start_from_dialog(qtbot, view, out, subset=512, epochs=30, batch=32)        # 16 steps an epoch
    qtbot.waitUntil(lambda: view.last is not None and view.last.saved_step >= 16
                    and view.last.step > view.last.saved_step + 2, timeout=TIMEOUT)
    asked = answer(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(view.run_stopped, timeout=TIMEOUT) as stopped:
        view.cancel()
    assert "last completed epoch" in asked[0]
    assert stopped.args == [str(out)]
    model = checkpoint.load(out)                  # whole, and the epoch's
    assert checkpoint.read_metadata(out).train_steps % 16 == 0
    assert model.family == "vae"
    assert train.load_trainer(out.with_name("run.state.safetensors")).step >= view.last.step
    assert not list(tmp_path.glob(".*.tmp"))      # no half-written file left behind
    assert not view.running and view.new_button.isEnabled()
    # the app is still usable: a decode is answered, and a new run can be set up
    answers = []
    view.engine.channel("other").submit(DecodePoints("p", np.zeros((1, 2), np.float32),
                                                     model=str(tiny_weights / "vae-2d.safetensors")),
                                        lambda r: answers.append(r.payload))
    qtbot.waitUntil(lambda: bool(answers), timeout=TIMEOUT)
    assert answers[0].images.shape == (1, 28, 28)
    assert view.new_model() is not None


def test_a_decode_while_training_is_answered_before_the_run_ends_and_discard_deletes_the_run(
        qtbot, make_view, tmp_path, monkeypatch, tiny_weights):
    view = make_view()
    out = tmp_path / "long.safetensors"
    start_from_dialog(qtbot, view, out, subset=512, epochs=40, batch=32)
    qtbot.waitUntil(lambda: view.last is not None and view.last.step > 3, timeout=TIMEOUT)
    answered = []
    view.engine.channel("other").submit(
        DecodePoints("p", np.zeros((4, 2), np.float32), model=str(tiny_weights / "ae-2d.safetensors")),
        lambda r: answered.append((view.running, view.last.step, r.payload.images.shape)))
    qtbot.waitUntil(lambda: bool(answered), timeout=TIMEOUT)
    running, step, shape = answered[0]
    assert running and step < view.last.total and shape == (4, 28, 28)
    qtbot.waitUntil(lambda: view.last.saved_step > 0, timeout=TIMEOUT)
    answer(monkeypatch, QMessageBox.StandardButton.No)
    with qtbot.waitSignal(view.run_stopped, timeout=TIMEOUT) as stopped:
        view.cancel()
    assert stopped.args == [""]
    assert not out.exists() and not out.with_name("long.state.safetensors").exists()


def test_a_nan_loss_stops_the_run_with_the_message_and_keeps_the_last_good_checkpoint(
        qtbot, make_view, tmp_path, monkeypatch):
    from models import checkpoint
    from models.vae import VAE

    original = VAE.training_step
    calls = {"n": 0, "armed": False}

    def poisoned(self, *args, **kwargs):
        losses = original(self, *args, **kwargs)
        if calls["armed"]:
            calls["n"] += 1
            if calls["n"] >= 20:                  # after the first epoch of 16 steps
                losses = {**losses, "kl": math.nan}
        return losses

    monkeypatch.setattr(VAE, "training_step", poisoned)
    view = make_view()
    out = tmp_path / "nan.safetensors"
    dialog = view.new_model()
    dialog.subset.setValue(512)
    dialog.batch.setValue(32)
    dialog.epochs.setValue(5)
    dialog.out.setText(str(out))
    qtbot.waitUntil(lambda: dialog.step_ms is not None, timeout=TIMEOUT)
    calls["armed"] = True
    with qtbot.waitSignal(view.run_failed, timeout=TIMEOUT) as failed:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    message = failed.args[0]
    assert "NaN" in message and "kl" in message and "step 16" in message and "lower learning rate" in message
    assert message in view.status.text()
    assert checkpoint.read_metadata(out).train_steps == 16
    assert not view.running


def test_running_out_of_memory_suggests_a_smaller_batch(qtbot, make_view, tmp_path, monkeypatch):
    from models.vae import VAE

    view = make_view()
    dialog = view.new_model()
    dialog.subset.setValue(512)
    dialog.batch.setValue(128)
    dialog.out.setText(str(tmp_path / "oom.safetensors"))
    qtbot.waitUntil(lambda: dialog.step_ms is not None, timeout=TIMEOUT)

    def no_memory(self, *args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(VAE, "training_step", no_memory)
    with qtbot.waitSignal(view.run_failed, timeout=TIMEOUT) as failed:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert "ran out of memory at a batch of 128" in failed.args[0] and "batch of 64 or smaller" in failed.args[0]
    assert not view.running and view.new_button.isEnabled()


def test_a_resume_continues_from_the_saved_step(qtbot, make_view, tmp_path, monkeypatch):
    from models import checkpoint, train

    view = make_view()
    out = tmp_path / "resumable.safetensors"
    start_from_dialog(qtbot, view, out, subset=512, epochs=6, batch=32)          # 96 steps
    qtbot.waitUntil(lambda: view.last is not None and view.last.step >= 20, timeout=TIMEOUT)
    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(view.run_stopped, timeout=TIMEOUT):
        view.cancel()
    state = out.with_name("resumable.state.safetensors")
    saved = train.load_trainer(state).step
    assert 20 <= saved < 96
    saved_weights = train.load_trainer(state).model.state_dict()     # the resumed run overwrites the file
    first_losses = view.curves.values["loss"]

    started = []                                   # the weights each training loop starts from
    real_run = train.run

    def recording_run(trainer, *args, **kwargs):
        started.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        return real_run(trainer, *args, **kwargs)

    monkeypatch.setattr(train, "run", recording_run)
    view2 = make_view()                            # as after a restart: a new view on a new engine
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getOpenFileName",
                        lambda *a, **k: (str(state), "Training states (*.state.safetensors)"))
    with qtbot.waitSignal(view2.run_finished, timeout=TIMEOUT):
        view2.resume_action.trigger() if hasattr(view2, "resume_action") else view2.resume_dialog()
    assert view2.start_step == saved
    assert checkpoint.read_metadata(out).train_steps == 96
    assert view2.curves.steps[0] == saved + 1
    # it goes on from the saved weights, not from a fresh model's ...
    assert len(started) == 1 and list(started[0]) == list(saved_weights)
    assert not [k for k in saved_weights if not torch.equal(started[0][k], saved_weights[k])]
    # ... so its loss curve goes on where the first run's stopped, far below where that one began
    resumed = view2.curves.values["loss"][0]
    assert resumed < 1.1 * float(np.mean(first_losses[-5:])) and resumed < 0.8 * first_losses[0], (
        resumed, first_losses)


def test_a_gan_from_the_dialog_gets_its_detectives_rate_and_its_rates_fall_over_the_last_part(
        qtbot, make_view, tmp_path):
    from models import checkpoint, train

    view = make_view()
    dialog = view.new_model()
    dialog.select_family("gan")
    assert dialog.lr_d.isEnabled() and dialog.decay.value() == 20       # the shipped GAN's recipe, by default
    dialog.lr.setValue(4e-4)
    assert dialog.lr_d.value() == pytest.approx(4e-4)      # the detective follows the shared rate...
    dialog.lr_d.setValue(8e-4)
    dialog.lr.setValue(2e-4)
    assert dialog.lr_d.value() == pytest.approx(8e-4)      # ...until it is given its own
    dialog.decay.setValue(50)
    out = tmp_path / "gan.safetensors"
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT):
        start_from_dialog(qtbot, view, out, family="gan", subset=512, epochs=1, batch=64, dialog=dialog)  # 8 steps
    settings = checkpoint.read_metadata(out).training["settings"]
    assert dict(settings["extra"]) == {"lr_decay_from": 4, "lr_d": 8e-4}
    # the last of 8 steps ran at a quarter of each rate, (8 - 7) / (8 - 4)
    rates = {name: opt.param_groups[0]["lr"] for name, opt in
             train.load_trainer(out.with_name("gan.state.safetensors")).optimizers.items()}
    assert rates == {"generator": pytest.approx(0.25 * 2e-4), "discriminator": pytest.approx(0.25 * 8e-4)}

    dialog = view.new_model()
    dialog.select_family("vae")                    # no detective, and a plain run by default
    assert not dialog.lr_d.isEnabled() and dialog.request().knobs == {}
    dialog.reject()


def test_slow_motion_a_detective_step_moves_d_only_and_a_forger_step_g_only(qtbot, make_view, tmp_path,
                                                                            monkeypatch):
    view = make_view()
    out = tmp_path / "gan.safetensors"
    start_from_dialog(qtbot, view, out, family="gan", subset=256, epochs=20, batch=32)
    qtbot.waitUntil(lambda: view.last is not None and view.last.step >= 2, timeout=TIMEOUT)
    assert view.detective_button.isVisible() and not view.detective_button.isEnabled()
    view.pause()
    assert view.detective_button.isEnabled() and view.forger_button.isEnabled()

    def step(button):
        with qtbot.waitSignal(view.single_done, timeout=TIMEOUT):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        p = view.last
        assert p.kind == "single" and p.d_real_hist is not None and view.hist.counts is not None
        return p

    first = step(view.detective_button)
    paused_at = first.step
    second = step(view.detective_button)
    # D moved, G did not: the fixed fakes look exactly the same, the detective's verdict on real images changed
    np.testing.assert_array_equal(second.preview, first.preview)
    assert second.d_real_mean != first.d_real_mean
    third = step(view.forger_button)
    # G moved, D did not: the same real images get exactly the same verdict, the fakes changed
    assert third.d_real_mean == second.d_real_mean
    assert not np.array_equal(third.preview, second.preview)
    assert third.d_fake_mean != second.d_fake_mean
    assert view.last.step == paused_at and view.last.single_steps == 3      # no full step ran meanwhile
    assert view.curves.steps[-1] == paused_at      # the curves reach the step the run paused at, and no further
    assert view.map.verdict is not None and view.map.verdict.shape == (24, 24)
    view.resume_run()
    qtbot.waitUntil(lambda: view.last.step > paused_at + 1, timeout=TIMEOUT)
    answer(monkeypatch, QMessageBox.StandardButton.No)
    with qtbot.waitSignal(view.run_stopped, timeout=TIMEOUT):
        view.cancel()


def test_closing_during_a_run_asks_then_stops_cleanly(qtbot, make_view, tmp_path, monkeypatch):
    from models import train

    view = make_view()
    out = tmp_path / "closing.safetensors"
    start_from_dialog(qtbot, view, out, subset=512, epochs=30, batch=32)
    qtbot.waitUntil(lambda: view.last is not None and view.last.step > 2, timeout=TIMEOUT)
    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    assert view.confirm_close() is False and view.running
    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert view.confirm_close() is True
    assert not view.channel.pending(KEY) and not view.running
    assert train.load_trainer(out.with_name("closing.state.safetensors")).step >= 3
    assert "training" in asked[0]


def test_a_ddpm_run_plots_its_eps_mse_and_previews_the_one_step_x0(qtbot, make_view, tmp_path):
    view = make_view()
    out = tmp_path / "my-ddpm.safetensors"
    start_from_dialog(qtbot, view, out, family="ddpm", subset=128, epochs=1.0, batch=64)
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT):
        pass
    assert view.curves.keys == ["eps_mse"]
    assert view.samples.count == 16 and "x̂₀" in view.samples_title.text()
    assert not view.map.isVisible() and not view.hist.isVisible()
    assert out.is_file()


def test_a_folder_that_cannot_be_written_stops_the_run_before_any_step(qtbot, make_view, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    view = make_view()
    with qtbot.waitSignal(view.run_failed, timeout=TIMEOUT) as failed:
        start_from_dialog(qtbot, view, blocker / "x.safetensors")
    assert "Cannot write into" in failed.args[0] and "another folder" in failed.args[0]
    assert blocker.read_text() == "a file where the folder should be"
    assert not view.running and view.new_button.isEnabled()


def test_a_full_disk_stops_the_run_with_a_message_and_loses_no_earlier_checkpoint(qtbot, make_view, tmp_path,
                                                                                  monkeypatch):
    import errno

    from models import checkpoint

    real_save = checkpoint.save
    saves = {"n": 0}

    def filling_up(model, path, **kwargs):
        saves["n"] += 1
        if saves["n"] >= 2:                           # the disk fills up before the second epoch's save
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(model, path, **kwargs)

    monkeypatch.setattr(checkpoint, "save", filling_up)
    view = make_view()
    out = tmp_path / "full.safetensors"
    with qtbot.waitSignal(view.run_failed, timeout=TIMEOUT) as failed:
        start_from_dialog(qtbot, view, out, subset=512, epochs=3, batch=32)
    assert "No space left" in failed.args[0] and "still whole" in failed.args[0]
    assert checkpoint.read_metadata(out).train_steps == 16
    checkpoint.load(out)


def test_the_window_has_a_train_menu_before_help(window):
    titles = [a.text() for a in window.menuBar().actions()]
    assert "&Train" in titles and titles.index("&Train") < len(titles) - 1
    assert "Help" in titles[titles.index("&Train") + 1]
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Train")
    menu.aboutToShow.emit()                     # as opening it does: the training view may not be built yet
    assert [a.text() for a in menu.actions()] == ["New model…", "Resume…"]


@pytest.mark.slow
def test_the_training_ui_benchmark_reports_its_figures_as_json(tiny_weights):
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "training_ui.py"), "--model",
                           str(tiny_weights / "vae-2d.safetensors"), "--weights", str(tiny_weights), "--subset", "1024",
                           "--seconds", "1.5", "--rounds", "1", "--bare-steps", "5", "--moves", "5", "--device", "cpu",
                           "--json"], capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    for key in ("ui_stall_p99_ms", "drag_p95_ms_while_training", "train_step_ms", "throughput_ratio"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["moves"] == 5 and figures["steps_in_app"] > 5
    assert "UI event loop stall" in done.stdout and "throughput ratio" in done.stdout


def test_the_dialog_learns_which_downloadable_data_sets_this_machine_lacks(tmp_path, monkeypatch):
    """On a machine with only Debian's Fashion-MNIST, MNIST, CIFAR-10 and CelebA are each marked to be downloaded
    (none is fetched to find out), while `shapes`, drawn when asked for, is never called missing."""
    from explorer.engine.job import EngineContext
    from explorer.engine.jobs.train import TrainingChoices

    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(tmp_path / "data"))
    fetched = []
    monkeypatch.setattr("torchvision.datasets.utils.download_url", lambda *a, **k: fetched.append(a))
    found = TrainingChoices().run(EngineContext(device=torch.device("cpu")))
    assert found == {"datasets": ["fashion-mnist"], "missing": ["mnist", "cifar10", "celeba"]}
    assert fetched == []
