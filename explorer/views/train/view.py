"""The training window: a run started from Train → New model…, watched as it learns, paused, stepped, stopped.

The run is one stream on the engine (TrainRun): each item is a step, and what reaches this view every 50 ms or
so is the losses of the steps since, and every few seconds a preview,
so the other views keep their decodes between steps. Redraws are throttled to a few per second: a tiny model
makes hundreds of steps a second, and the UI paints what is new, not every step.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, Qt, QTimer, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMenu, QMessageBox, QPushButton, QSizePolicy,
                               QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from models.catalog import data_classes
from models.weights import user_models_dir

from ...engine.job import Result
from ...engine.jobs.train import (DETECTIVE, FORGER, VERDICT_RANGE, TrainControl, TrainProgress, TrainRun,
                                     checkpoint_path_for)
from ..base import View
from ..tabs import TRAIN
from ..widgets.image_grid import ImageGrid
from ..widgets.plane import random_plane
from .dialog import TrainDialog, TrainRequest, duration_text
from .plots import LossCurves, TrainingMap, VerdictHistogram

KEY = "train:run"
REDRAW_MS = 250                  # the status line (step, pace, time left)
CURVES_MS = 1000                 # the curves: a repaint of the plots holds the UI thread for tens of ms
CLOSE_WAIT_MS = 15_000


class TrainingView(View):
    """Its runs name their own checkpoints, so the view has no one `target`; `ready` at once, and again after
    every model change."""

    run_started = Signal()
    progressed = Signal(int)            # step: an item of the run was drawn
    single_done = Signal(str)           # DETECTIVE or FORGER: a slow-motion step is drawn
    run_finished = Signal(str)          # the checkpoint's path: the run is over and its model is in the picker
    run_failed = Signal(str)            # the message
    run_stopped = Signal(str)           # cancelled: the checkpoint kept ('' if none)

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, TRAIN.name, parent)
        self.control: TrainControl | None = None
        self.job: TrainRun | None = None
        self.last: TrainProgress | None = None
        self.out: str = ""
        self.running = False
        self.paused = False
        self.last_message = ""
        self._dirty = False
        self._stopping = False
        self._drawn_start = False
        self.start_step = 0
        self._curves_at = 0.0

        self.status = QLabel("")
        self.status.setObjectName("trainStatus")
        # one line that never changes height: a taller label would re-lay out (and repaint) every plot below it
        self.status.setWordWrap(False)
        self.status.setFixedHeight(self.status.sizeHint().height())
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.new_button = QPushButton("New model…")
        self.resume_file_button = QPushButton("Resume…")
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        self.detective_button = QPushButton("One detective step")
        self.detective_button.setToolTip("While paused: update the discriminator D once; the generator stays put.")
        self.forger_button = QPushButton("One forger step")
        self.forger_button.setToolTip("While paused: update the generator G once, against the current D.")
        self.open_button = QPushButton("Open the new model")
        self.new_button.clicked.connect(self.new_model)
        self.resume_file_button.clicked.connect(self.resume_dialog)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.cancel)
        self.detective_button.clicked.connect(lambda: self.single_step(DETECTIVE))
        self.forger_button.clicked.connect(lambda: self.single_step(FORGER))
        self.open_button.clicked.connect(lambda: self.state.open_model(self.out))
        buttons = QHBoxLayout()
        for b in (self.new_button, self.resume_file_button, self.pause_button, self.cancel_button,
                  self.detective_button, self.forger_button, self.open_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.curves = LossCurves()
        self.samples = ImageGrid(columns=4, caption_lines=0)
        self.samples.setMinimumSize(160, 160)
        self.samples_title = QLabel("samples from a fixed seed")
        self.map = TrainingMap()
        self.hist = VerdictHistogram()
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.samples_title)
        right_layout.addWidget(self.samples, 3)
        right_layout.addWidget(self.map, 4)
        right_layout.addWidget(self.hist, 3)
        split = QSplitter()
        split.addWidget(self.curves)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.hint = QLabel("Nothing is training.\n\nTrain → New model… picks a family and its data, times a few "
                           "steps, and trains while you watch;\nTrain → Resume… continues a run saved earlier "
                           "(a .state.safetensors file).")
        self.hint.setObjectName("emptyState")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.hint)
        self.pages.addWidget(split)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.pages, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._poll = QTimer(self)
        self._poll.setInterval(50)
        self._poll.timeout.connect(self._check_stopped)
        self.map.clear_map("the map appears with a run")
        self.hist.setVisible(False)
        self._update_buttons()
        # the picker's model is not this view's business: it is ready at once, and again after every change
        QTimer.singleShot(0, self.ready.emit)
        state.model_changed.connect(lambda _info: self.ready.emit())

    # -- menus and the window's hooks ----------------------------------------------------------------------------
    def fill_menu(self, menu: QMenu) -> None:
        self.new_action = menu.addAction("New model…")
        self.new_action.triggered.connect(self.new_model)
        self.resume_action = menu.addAction("Resume…")
        self.resume_action.triggered.connect(self.resume_dialog)
        self.menu = menu

    def confirm_close(self) -> bool:
        """Closing during a run asks first; yes stops it cleanly (its state saved for Train → Resume…)."""
        if not self.running:
            return True
        step = self.last.step if self.last else 0
        total = self.last.total if self.last else 0
        answer = QMessageBox.question(self, "A model is training",
                                      f"A model is training (step {step:,} of {total:,}). Stop it and close? "
                                      "Its training state is saved, so Train → Resume… continues it later.")
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self._stop("keep")
        loop = QEventLoop()
        timer = QTimer()
        timer.setInterval(20)
        timer.timeout.connect(lambda: loop.quit() if not self.channel.pending(KEY) else None)
        timer.start()
        QTimer.singleShot(CLOSE_WAIT_MS, loop.quit)
        loop.exec()
        timer.stop()
        self._check_stopped()
        return True

    # -- starting ------------------------------------------------------------------------------------------------
    def new_model(self) -> TrainDialog | None:
        """Open the dialog (not blocking); its Train button starts the run. Returns the dialog."""
        if self.running:
            self.say("A run is already going: cancel it first (one run at a time keeps the device fair).")
            return None
        dialog = TrainDialog(self.engine, self)
        dialog.accepted.connect(lambda: self.start(dialog.request()))
        dialog.open()
        self.dialog = dialog
        return dialog

    def resume_dialog(self) -> None:
        if self.running:
            self.say("A run is already going: cancel it first.")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Resume a training run", str(user_models_dir()),
                                              "Training states (*.state.safetensors)")
        if path:
            self.resume(path)

    def start(self, request: TrainRequest) -> None:
        basis = None
        latent = request.config.get("latent_dim")
        if isinstance(latent, int) and latent >= 2:
            basis = random_plane(latent, 0).basis
        self._launch(TrainRun(request.out, family=request.family, config=request.config, dataset=request.dataset,
                              subset=request.subset, batch_size=request.batch_size, lr=request.lr,
                              seed=request.seed, epochs=request.epochs, device=request.device,
                              knobs=tuple(request.knobs.items()),
                              verdict_basis=basis, control=TrainControl()), request.out)

    def resume(self, state_path: str) -> None:
        out = str(checkpoint_path_for(state_path))
        self._launch(TrainRun(out, resume=str(state_path), control=TrainControl()), out)

    def _launch(self, job: TrainRun, out: str) -> None:
        self.channel.invalidate(KEY)
        self.job, self.control, self.out, self.last = job, job.control, out, None
        self.running, self.paused, self._stopping, self._drawn_start = True, False, False, False
        self.last_message = ""
        self.pages.setCurrentIndex(1)
        self.curves.reset(False)
        self.samples.set_images(None)
        self.map.clear_map("")
        self.say(f"Starting: loading the data and building the model for {Path(out).name}…")
        self.channel.submit(job, self._on_item, self._on_error)
        self._timer.start()
        self._update_buttons()
        self.run_started.emit()

    # -- pause, resume, single steps, cancel ---------------------------------------------------------------------
    def toggle_pause(self) -> None:
        if self.paused:
            self.resume_run()
        else:
            self.pause()

    def pause(self) -> None:
        if not self.running or self.control is None:
            return
        self.control.hold(True)           # the stream trains no further, whichever item the engine runs next
        self.channel.pause(KEY)           # ... and gets no device time while held
        self.paused = True
        self._update_buttons()
        self._dirty = True
        self._redraw(force=True)                # the curves up to the step it paused at

    def resume_run(self) -> None:
        if not self.running or self.control is None:
            return
        self.control.hold(False)
        self.channel.resume(KEY)
        self.paused = False
        self._update_buttons()
        self._show_status()

    def single_step(self, kind: str) -> None:
        """Slow motion: one D update (DETECTIVE) or one G update (FORGER) of the paused run."""
        if not (self.running and self.paused and self.last is not None and self.last.adversarial):
            return
        self.control.request(kind)
        self.channel.resume(KEY)          # for the one item that runs it; paused again when it arrives
        self.detective_button.setEnabled(False)
        self.forger_button.setEnabled(False)

    def cancel(self) -> None:
        """Pause, then ask whether to keep the model of the last completed epoch (or carry on)."""
        if not self.running:
            return
        was_paused = self.paused
        self.pause()
        saved = self.last.saved_step if self.last else 0
        if saved:
            answer = QMessageBox.question(
                self, "Stop training",
                f"Stop training and keep the model of the last completed epoch (step {saved:,})? "
                "No stops and deletes what this run saved; Cancel carries on training.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel)
        else:
            answer = QMessageBox.question(
                self, "Stop training",
                "Stop training? No epoch has finished yet, so there is no model to keep; the training state is "
                "saved, so Train → Resume… can continue it.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self._stop("keep")
        elif answer == QMessageBox.StandardButton.No:
            self._stop("discard")
        elif not was_paused:
            self.resume_run()

    def _stop(self, outcome: str) -> None:
        self.control.set_outcome(outcome)
        self._stopping = True
        self.channel.cancel(KEY)
        self._poll.start()
        self.say("Stopping…")

    def _check_stopped(self) -> None:
        if not self._stopping or self.channel.pending(KEY):
            return
        self._poll.stop()
        self._stopping = False
        self._end_run()
        outcome = self.control.outcome if self.control else "keep"
        kept = self.out if outcome == "keep" and self.last is not None and self.last.saved_step else ""
        if kept:
            self._publish(kept)
            self.say(f"Stopped at step {self.last.step:,}. Kept {Path(kept).name} (step {self.last.saved_step:,}); "
                      "Train → Resume… continues the run.")
        elif outcome == "discard":
            self.say("Stopped; what this run had saved was deleted.")
        else:
            self.say("Stopped; no epoch had finished, so there is no model yet. Train → Resume… continues it.")
        self.run_stopped.emit(kept)

    # -- what comes back -------------------------------------------------------------------------------------------
    def _on_item(self, result: Result) -> None:
        p = result.payload
        if p is None or not isinstance(p, TrainProgress):
            return
        first = self.last is None
        self.last = p
        if first or p.kind == "start":
            self.start_step = p.step
            self._setup(p)
        if p.kind == "step":
            for step, losses, _ in p.earlier:
                self.curves.add(step, losses)
            self.curves.add(p.step, p.losses)
        elif p.kind == "single":
            self.curves.add_single(p.step, p.single, p.losses)
        if p.preview is not None:
            self.samples.set_images(p.preview)
        if p.codes is not None and p.labels is not None:
            self.map.show_codes(p.codes, p.labels, data_classes(p.dataset), epoch=p.step // max(p.steps_per_epoch, 1))
        if p.verdict is not None:
            self.map.show_verdict(p.verdict, VERDICT_RANGE, None if p.codes is not None or p.encodes and
                                  p.latent_dim == 2 else "the detective's verdict D(G(z)) on a plane of z")
        if p.d_real_hist is not None and p.d_fake_hist is not None:
            self.hist.set_counts(p.d_real_hist, p.d_fake_hist)
        self._dirty = True
        if p.kind == "single":
            self.channel.pause(KEY)                      # the control still holds: nothing trained meanwhile
            self._redraw(force=True)
            self._update_buttons()
            self.say(f"{'Detective' if p.single == DETECTIVE else 'Forger'} step done: on 256 test images "
                      f"mean D(x) {p.d_real_mean:.3f}, on 256 fixed fakes mean D(G(z)) {p.d_fake_mean:.3f}. "
                      "Step again, or Resume.")
            self.single_done.emit(p.single)
            return
        if p.kind == "done" and result.final and self.running:
            self._redraw(force=True)
            self._end_run()
            if p.saved:
                self._publish(p.saved)
            self.say(f"Finished: {p.total:,} steps in {duration_text(p.elapsed_s)}. Saved {p.saved} "
                      "and added it to the model picker." if p.saved else "Finished.")
            self.run_finished.emit(p.saved)
            return
        if p.kind == "start" and p.step:
            self.say(f"Resumed at step {p.step:,} of {p.total:,}.")
        if not self._drawn_start:
            self._drawn_start = True
            self._redraw(force=True)
            self.ready.emit()

    def _on_error(self, message: str) -> None:
        self.last_message = message
        self._end_run()
        self.say(message)
        if self.last is not None and self.last.saved_step:
            self._publish(self.out)
        self.run_failed.emit(message)

    def _setup(self, p: TrainProgress) -> None:
        self.curves.reset(p.adversarial)
        self.hist.setVisible(p.adversarial)
        # the map when there is one to draw: a 2-D code to re-encode, or a detective whose verdict has a plane
        self.map.setVisible(p.adversarial or (p.encodes and p.latent_dim == 2))
        self.samples_title.setText("one-step x̂₀ of noised test images" if p.denoises
                                   else "samples from a fixed seed")
        self._update_buttons()

    def _end_run(self) -> None:
        self.running = self.paused = False
        self._timer.stop()
        self._dirty = True
        self._redraw(force=True)
        self._update_buttons()

    def _publish(self, path: str) -> None:
        """Put the new checkpoint in the picker: the window's recent files when there is a window."""
        window = self.window()
        if hasattr(window, "add_recent") and hasattr(window, "recent_files"):
            window.add_recent(path)
            self.state.list_models(window.recent_files())
        else:
            self.state.list_models([path])

    # -- drawing ---------------------------------------------------------------------------------------------------
    def _redraw(self, force: bool = False) -> None:
        if not self._dirty:
            return
        self._dirty = False
        now = time.perf_counter()
        if force or not self.running or now - self._curves_at >= CURVES_MS / 1e3:
            self._curves_at = now
            self.curves.redraw()
        self._show_status()
        if self.last is not None:
            self.progressed.emit(self.last.step)

    def _show_status(self) -> None:
        p = self.last
        if p is None or not self.running or self._stopping:
            return
        epochs = p.total / max(p.steps_per_epoch, 1)
        parts = [f"step {p.step:,} of {p.total:,}", f"epoch {p.step / max(p.steps_per_epoch, 1):.2f} of {epochs:.2f}"]
        if p.samples_per_s:
            parts.append(f"{p.samples_per_s:,.0f} images/s")
        if math.isfinite(p.eta_s):
            parts.append(f"{duration_text(p.eta_s)} left")
        if p.losses:
            parts.append(", ".join(f"{k} {v:.4g}" for k, v in p.losses.items() if k not in ("d_real", "d_fake")))
        if p.single_steps:
            parts.append(f"{p.single_steps} slow-motion steps")
        text = " · ".join(parts)
        if self.paused:
            text = "Paused · " + text + (" · step the detective or the forger one move at a time"
                                         if p.adversarial else "")
        self.say(text)

    def say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)            # one line on screen; the whole sentence on hover

    def _update_buttons(self) -> None:
        adversarial = self.last is not None and self.last.adversarial
        self.new_button.setEnabled(not self.running)
        self.resume_file_button.setEnabled(not self.running)
        self.pause_button.setEnabled(self.running)
        self.pause_button.setText("Resume" if self.paused else "Pause")
        self.cancel_button.setEnabled(self.running)
        for b in (self.detective_button, self.forger_button):
            b.setVisible(adversarial or self.last is None)
            b.setEnabled(self.running and self.paused and adversarial)
        self.open_button.setVisible(not self.running and bool(self.out) and Path(self.out).exists())
