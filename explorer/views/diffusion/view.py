"""Diffusion, frame by frame: the sculptor and the block of marble.

Two halves, as the tutorial tells them. Forward: a slider adds a fixed noise to a test image in closed form, and
the U-Net says what it thinks the noise and the clean image are at that t. Reverse: from a seed, DDPM or DDIM
takes the noise away step by step; every frame shows x_t, the network's guess of the finished image x̂_0 and its
predicted noise, and the player scrubs back through every frame computed so far. Under it, the classifier's
label of x̂_0 against t says when the content was decided, and branches re-run the last steps from any frame with
new noise. The run's wall time stands beside what a VAE and a GAN take for the same samples, measured now.

The view works on the picker's model when it denoises, else on the shipped DDPM, and says which.
"""
from __future__ import annotations

import time
from functools import partial

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QSlider, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from models.catalog import DENOISE, data_classes

from ...engine.jobs.diffusion import (GUIDANCE_SCALES, MAX_SAMPLES, DiffusionRun, GeneratorCosts, GuidanceStrip,
                                      ScheduleCurves)
from ..base import View
from ..tabs import DIFFUSION
from ..widgets.condition import GUIDANCE_CAPTION, NO_CLASS_NOTE, NO_NULL_CLASS_NOTE, ClassPicker, condition_text
from ..widgets.export import ExportError, save_gif, save_png
from ..widgets.image_grid import ImageGrid
from ..widgets.image_panel import format_ms, label_text
from .decided import DecidedPlot
from .forward import ForwardPanel
from .frames import KeptFrame, Track, comparison_picture, gif_frames, grid_columns
from .player import AT_END, MOVED, BranchError, Player
from .session import DiffusionSession

COMPARED = ("conv-vae-16", "gan")             # the one-pass generators a run's time stands beside
SPEEDS = (5, 10, 25, 50, 100, 250)            # frames per second the player shows
DEFAULT_SPEED = 25
TICK_MS = 20                                  # the player's clock: 50 Hz at most on screen
COMPARE_SAMPLES = 4                           # samples shown in the branch comparison
READY_FRACTION = 0.6                          # --screenshot: a run in progress, well under way
RUN_KEY = "diffusion:run"
STRIP_KEY = "diffusion:guidance-strip"
RERUN_MS = 150                                # a guidance drag reruns once the slider rests this long
SAMPLER_SHORT = {"ddim": "DDIM", "dpm++": "DPM-Solver++", "ddpm": "DDPM"}
STRIP_STEPS = 50                              # the guidance strip's DDIM steps when the run is DDPM's
BRANCH_HINT = ("Branching: pause or scrub to a frame, then continue from it with new noise. Branches from early "
               "frames become other pictures; from late ones, the same picture with other details.")


def short_label(classes: tuple[str, ...], label: int, confidence: float) -> str:
    """'T-shirt 97%': a label that fits under a small tile (the full one is in the status line on a click)."""
    name = classes[label] if 0 <= label < len(classes) else f"class {label}"
    return f"{name.split('/')[0]} {100.0 * confidence:.0f}%"


def _branch_key(j: int) -> str:
    return f"diffusion:branch-{j}"


class _Band(QWidget):
    """A row that stretches as the layout says: its wrapped note would otherwise make the whole reverse panel
    height-for-width, ask for the plot's preferred height, and squeeze the grids above under their minimum."""

    def __init__(self, layout) -> None:
        super().__init__()
        layout.setContentsMargins(0, 0, 0, 0)
        self.setLayout(layout)

    def hasHeightForWidth(self) -> bool:
        return False


class DiffusionView(View):
    """`ready`: the first run is well under way on screen (x_t, x̂_0 and eps drawn)."""

    frame_shown = Signal(int, int)   # track number (0: the run), frame index now on screen
    run_finished = Signal(int)       # track number whose last frame arrived
    costs_shown = Signal()
    schedules_shown = Signal()
    strip_shown = Signal(int)        # how many scales of the guidance strip are drawn

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, DIFFUSION.name, parent)
        self.target_name = ""
        self.classes: tuple[str, ...] = data_classes("fashion-mnist") or ()
        self.has_classifier = True
        self.classifier_reason = ""              # why there is no classifier for the model's data, if there is none
        self.T: int | None = None
        self.player = Player()                   # the run and its branches, which one is on screen, which frame
        self.costs: dict | None = None
        self._ready_sent = False
        self._submitted_at: dict[int, float] = {}
        self._branch_seed = 1000
        self.compared = 0                        # the sample the branch comparison (and the guidance strip) shows
        self.strip_job: GuidanceStrip | None = None     # the guidance strip asked last
        self.strip = None                        # its newest GuidedSamples

        # -- header: which model, what happens -------------------------------------------------------------
        self.model_note = QLabel("")
        self.model_note.setObjectName("diffusionModel")
        self.model_note.setWordWrap(True)
        self.status = QLabel("")
        self.status.setObjectName("diffusionStatus")
        self.status.setWordWrap(True)

        # -- the reverse process ---------------------------------------------------------------------------
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("The seed of x_T (and of DDPM's or DDIM-with-η's noise at every step)")
        self.new_seed = QPushButton("New seed")
        self.sampler = QComboBox()
        self.sampler.addItem("DDIM", "ddim")
        self.sampler.addItem("DPM-Solver++(2M)", "dpm++")
        self.sampler.addItem("DDPM (T steps)", "ddpm")
        self.sampler.setToolTip("DDPM: new noise at every one of T steps. DDIM: fewer, larger steps, noise only with "
                                "η > 0. DPM-Solver++: a second-order solver, as good in 20 steps as DDIM in 50")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(50)
        self.steps.setToolTip("DDIM's or DPM-Solver++'s steps; DDPM takes all T")
        self.eta = QDoubleSpinBox()
        self.eta.setRange(0.0, 1.0)
        self.eta.setSingleStep(0.1)
        self.eta.setDecimals(2)
        self.eta.setValue(1.0)
        self.eta.setToolTip("DDIM's noise: 0 is deterministic, 1 adds as much as DDPM")
        self.samples = QSpinBox()
        self.samples.setRange(1, MAX_SAMPLES)
        self.samples.setValue(MAX_SAMPLES)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        controls = QHBoxLayout()
        for label, widget in (("Seed", self.seed), (None, self.new_seed), ("Sampler", self.sampler),
                              ("Steps", self.steps), ("η", self.eta), ("Samples", self.samples)):
            if label:
                controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addSpacing(12)
        controls.addWidget(self.run_button)
        controls.addWidget(self.stop_button)
        controls.addStretch(1)

        # -- a class-conditional model: which class, how hard to pull (hidden for any other) ------------------
        self.picker = ClassPicker()
        self.guidance_note = QLabel(GUIDANCE_CAPTION)
        self.guidance_note.setObjectName("guidanceCaption")
        self.guidance_note.setWordWrap(True)
        self.strip_title = QLabel(NO_CLASS_NOTE)
        self.strip_title.setWordWrap(True)
        self.strip_grid = ImageGrid(columns=len(GUIDANCE_SCALES), caption_lines=2)
        self.strip_grid.setMinimumHeight(110)
        self.strip_grid.setToolTip("One sample of this seed at each guidance scale: the same x_T, only w differs")
        self.guidance_note.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        knobs = QVBoxLayout()
        knobs.addWidget(self.picker)
        knobs.addWidget(self.guidance_note, 1)
        strip = QVBoxLayout()
        strip.addWidget(self.strip_title)
        strip.addWidget(self.strip_grid, 1)
        self.guidance_box = QGroupBox("Classifier-free guidance")
        gbox = QHBoxLayout(self.guidance_box)
        gbox.setContentsMargins(6, 4, 6, 4)
        gbox.addLayout(knobs, 2)
        gbox.addLayout(strip, 3)
        self.guidance_box.setMaximumHeight(235)          # the run's own grids keep most of the height
        self.guidance_box.setVisible(False)
        self._rerun_timer = QTimer(self)
        self._rerun_timer.setSingleShot(True)
        self._rerun_timer.setInterval(RERUN_MS)
        self._rerun_timer.timeout.connect(self._rerun)

        self.play_button = QPushButton("Play")
        self.step_button = QPushButton("Step ▸")
        self.step_button.setToolTip("One frame forward (pauses the player)")
        self.speed = QComboBox()
        for fps in SPEEDS:
            self.speed.addItem(f"{fps} frames/s", fps)
        self.speed.setCurrentIndex(SPEEDS.index(DEFAULT_SPEED))
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setRange(0, 0)
        self.scrub.setToolTip("Every frame computed so far: drag back to see any step again")
        self.frame_label = QLabel("")
        self.frame_label.setMinimumWidth(190)
        self.track_box = QComboBox()
        self.track_box.setToolTip("The run, or one of its branches")
        self.track_box.setMinimumWidth(220)
        player = QHBoxLayout()
        player.addWidget(self.play_button)
        player.addWidget(self.step_button)
        player.addWidget(self.speed)
        player.addWidget(self.scrub, 1)
        player.addWidget(self.frame_label)
        player.addWidget(QLabel("Showing"))
        player.addWidget(self.track_box)

        self.titles = [QLabel(""), QLabel("x̂₀: the network's guess of the finished image"),
                       QLabel("eps: the noise it predicts (grey 0, black −3, white +3)")]
        self.grids = [ImageGrid(columns=4, caption_lines=0), ImageGrid(columns=4, caption_lines=1),
                      ImageGrid(columns=4, caption_lines=0)]
        for grid in self.grids:
            grid.setMinimumHeight(240)
        grids = QHBoxLayout()
        for title, grid, stretch in zip(self.titles, self.grids, (4, 5, 4)):
            title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            title.setObjectName("panelTitle")
            col = QVBoxLayout()
            col.addWidget(title)
            col.addWidget(grid, 1)
            grids.addLayout(col, stretch)
        self.cost = QLabel("")
        self.cost.setObjectName("diffusionCost")
        self.cost.setWordWrap(True)

        self.decided = DecidedPlot()
        self.branch_seed = QSpinBox()
        self.branch_seed.setRange(0, 2 ** 31 - 1)
        self.branch_seed.setValue(self._branch_seed)
        self.branch_seed.setToolTip("The new noise for the steps after the frame on screen")
        self.branch_button = QPushButton("Branch from this frame")
        self.branch_note = QLabel(BRANCH_HINT)
        self.branch_note.setWordWrap(True)
        self.comparison = ImageGrid(columns=2, caption_lines=2)
        self.comparison.setMinimumHeight(90)
        self.save_png_button = QPushButton("Save comparison PNG…")
        self.save_gif_button = QPushButton("Save animation GIF…")
        branch_row = QHBoxLayout()
        branch_row.addWidget(self.branch_button)
        branch_row.addWidget(QLabel("new noise seed"))
        branch_row.addWidget(self.branch_seed)
        branch_row.addStretch(1)
        exports = QHBoxLayout()
        exports.addWidget(self.save_gif_button)
        exports.addWidget(self.save_png_button)
        exports.addStretch(1)
        branches = QVBoxLayout()
        branches.addLayout(branch_row)
        branches.addWidget(self.branch_note)
        branches.addWidget(self.comparison, 1)
        branches.addLayout(exports)
        bottom = QHBoxLayout()
        bottom.addWidget(self.decided, 3)
        bottom.addLayout(branches, 2)

        reverse = QWidget()
        rev = QVBoxLayout(reverse)
        rev.setContentsMargins(4, 4, 4, 4)
        rev.addLayout(controls)
        rev.addWidget(self.guidance_box)
        rev.addLayout(player)
        rev.addLayout(grids, 6)
        rev.addWidget(self.cost)
        rev.addWidget(_Band(bottom), 3)

        self.forward = ForwardPanel(self.submit)
        state.test_image_pinned.connect(self.forward.index.setValue)     # a dot pinned on the map
        self.halves = QTabWidget()
        self.halves.addTab(self.forward, "1 · Forward: adding noise")
        self.halves.addTab(reverse, "2 · Reverse: taking it away")
        self.halves.setCurrentIndex(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.model_note)
        layout.addWidget(self.halves, 1)
        layout.addWidget(self.status)

        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.run_button.clicked.connect(self.start_run)
        self.stop_button.clicked.connect(self.stop)
        self.new_seed.clicked.connect(lambda: self.seed.setValue(self.seed.value() + 1))
        self.play_button.clicked.connect(lambda: self.set_playing(not self.playing))
        self.step_button.clicked.connect(self.step_once)
        self.scrub.sliderMoved.connect(self._scrubbed)
        self.scrub.valueChanged.connect(self._scrub_value)
        self.track_box.currentIndexChanged.connect(self._pick_track)
        self.branch_button.clicked.connect(lambda: self.branch())
        self.sampler.currentIndexChanged.connect(lambda _: self._sampler_changed())
        self.eta.valueChanged.connect(lambda _: self._sampler_changed())
        self.save_gif_button.clicked.connect(self._ask_gif)
        self.save_png_button.clicked.connect(self._ask_png)
        for grid in self.grids:
            grid.clicked.connect(self._say_sample)
        self.picker.class_changed.connect(self.start_run)
        self.picker.guidance_changed.connect(lambda _w: self._rerun_timer.start())    # a drag: latest wins
        self.picker.guidance_settled.connect(lambda _w: self._rerun())
        state.model_changed.connect(self._on_model)
        state.models_listed.connect(lambda _: self._on_model(state.model))
        self._sampler_changed()
        self._on_model(state.model)

    # -- which model -----------------------------------------------------------------------------------------
    def _choose(self, info) -> tuple[str, str, str]:
        """(what jobs name, its name, the line that says so) for the picker's model `info`."""
        if info is not None and info.can(DENOISE):
            return info.path, info.name, f"Model: {info.name} ({info.title}), the picker's."
        entries = [e for e in self.state.models if e.family == "ddpm"]
        entries.sort(key=lambda e: e.name != "ddpm")          # the plain shipped DDPM before a guided one
        entry = next((e for e in entries if e.shipped), entries[0] if entries else None)
        why = f"the picker's {info.name} does not denoise" if info is not None else "no model is picked"
        if entry is None:                 # nothing here can denoise: say so, and ask the engine for nothing
            return "", "", (f"No diffusion model to run ({why}, and none is in the weights folder): open one "
                            "with File → Open, or train one with Train → New model….")
        return entry.path, entry.name, (f"Model: {entry.name}, the shipped diffusion model ({why}; pick a DDPM "
                                        "to run your own).")

    def _on_model(self, info) -> None:
        if info is None and self.state.is_loading:
            self.model_note.setText("Waiting for the picker's model…")
            return
        target, name, note = self._choose(info)
        self.model_note.setText(note)
        if info is not None:
            # the names of the pictures it is shown (a model naming no data set: the stand-in shapes')
            self.classes = tuple(info.classes) or data_classes(info.dataset) or self.classes
            if info.can(DENOISE):
                self.has_classifier = bool(info.has_classifier)
                self.classifier_reason = info.classifier_reason
        if target != self.target:        # the picker's model when it denoises; a fallback's classes come later
            self._set_classes(info if info is not None and info.can(DENOISE) else None)
        self._ready_sent = False                 # the window asks again after every model change
        if target == self.target:
            QTimer.singleShot(0, self._check_ready)      # after the window has reset its own flag
            return
        self.channel.invalidate(cancel=True)
        self.target, self.target_name, self.T = target, name, None
        self.costs = None
        if not target:
            self.status.setText(note)
            self._ready_sent = True
            QTimer.singleShot(0, self.ready.emit)        # drawn: the page says why there is nothing to run
            return
        self.submit(ScheduleCurves(), self._on_schedules)
        self.when_shown(self.start_run)     # a start on another tab never pays for a run nobody watches

    def _on_schedules(self, result) -> None:
        curves = result.payload
        self.T = int(curves["T"])
        self.steps.setMaximum(self.T)
        self.forward.set_curves(curves, self.classes)
        k = int(curves.get("num_classes", 0))
        if k and not self.picker.conditional:     # a fallback model that takes classes: the picker after all
            self.picker.set_classes(tuple(self.classes[i] if i < len(self.classes) else f"class {i}"
                                          for i in range(k)))
            self.guidance_box.setVisible(True)
        self.schedules_shown.emit()

    def _set_classes(self, info) -> None:
        """The class picker, the guidance slider and the strip for a class-conditional model; hidden otherwise.
        A network with no "no class" input gets its classes only: no slider, no strip, one line saying why."""
        self.picker.blockSignals(True)                   # a new model: no run for the old one's class
        shown = self.picker.configure(info)
        self.picker.blockSignals(False)
        self.guidance_box.setVisible(shown)
        guided = self.picker.guided
        self.guidance_box.setTitle("Classifier-free guidance" if guided or not shown else "Class")
        self.guidance_note.setText(GUIDANCE_CAPTION if guided or not shown else NO_NULL_CLASS_NOTE)
        self.strip_title.setVisible(guided)
        self.strip_grid.setVisible(guided)
        self.strip_job = self.strip = None
        self.strip_grid.set_images(None)
        self.strip_title.setText(NO_CLASS_NOTE)

    # -- asking the engine -----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.status.setText(text)

    def job_failed(self, key: str, message: str) -> None:
        self.say(message)
        if key == RUN_KEY or key.startswith("diffusion:branch"):
            for j, track in enumerate(self.tracks):
                if self._key(j) == key and not track.done:
                    track.stopped = True
            self._controls()

    def _key(self, j: int) -> str:
        return RUN_KEY if j == 0 else _branch_key(j)

    # the player's state, for whoever reads the view
    @property
    def tracks(self) -> list[Track]:
        return self.player.tracks

    @property
    def shown(self) -> int:
        return self.player.shown

    @property
    def pos(self) -> int:
        return self.player.pos

    @property
    def playing(self) -> bool:
        return self.player.playing

    @property
    def run(self) -> Track | None:
        return self.player.run

    @property
    def track(self) -> Track | None:
        return self.player.track

    def running(self) -> bool:
        return self.player.running()

    # -- the reverse process ---------------------------------------------------------------------------------
    def _sampler_changed(self) -> None:
        sampler = self.sampler.currentData()
        self.steps.setEnabled(sampler != "ddpm")
        self.eta.setEnabled(sampler == "ddim")
        self._controls()

    def settings(self) -> dict:
        sampler = self.sampler.currentData()
        eta = {"ddim": float(self.eta.value()), "ddpm": 1.0}.get(sampler, 0.0)   # DPM-Solver++ adds no noise
        return {"n": int(self.samples.value()), "seed": int(self.seed.value()),
                "sampler": sampler, "steps": int(self.steps.value()) if sampler != "ddpm" else None, "eta": eta,
                "class_index": self.picker.class_index, "guidance": self.picker.guidance}

    def _rerun(self) -> None:
        """A new guidance scale: the same seed again (the same x_T), unless the run already has this class and
        scale (any class, where w changes nothing, or a drag that came back to where it started)."""
        self._rerun_timer.stop()
        run = self.run
        if run is not None and not run.stopped and (run.class_index, run.guidance) == (
                self.picker.class_index, self.picker.guidance):
            return
        self.start_run()

    def start_run(self) -> None:
        """A new run from the settings: every earlier run and branch stops and is forgotten."""
        if not self.target:
            return
        for j in range(len(self.tracks)):
            self.channel.invalidate(self._key(j), cancel=True)
        self._rerun_timer.stop()
        s = self.settings()
        self.player.new_run(s["n"], s["sampler"], s["steps"], s["eta"], s["seed"], s["class_index"], s["guidance"])
        self._refresh_tracks()
        self.comparison.set_images(None)
        self.branch_note.setText(BRANCH_HINT)
        cols = grid_columns(s["n"])
        for grid in self.grids:
            grid.set_images(None, columns=cols)
        self.decided.show_track(None, self.classes, self.has_classifier, self.classifier_reason)
        self.cost.setText("")
        job = DiffusionRun(n=s["n"], seed=s["seed"], sampler=s["sampler"], steps=s["steps"], eta=s["eta"], tag="run",
                           class_index=s["class_index"], guidance=s["guidance"])
        self._submitted_at[0] = time.perf_counter()
        self.submit(job, partial(self._on_frame, self.tracks[0]))
        what = {"ddim": f"{s['steps']} DDIM steps, η = {s['eta']:g}", "dpm++": f"{s['steps']} DPM-Solver++ steps",
                "ddpm": "DDPM, all T steps"}[s["sampler"]]
        if self.picker.conditional:
            what += f"; {condition_text(self.picker.names, s['class_index'], s['guidance'], self.picker.guided)}"
        self.status.setText(f"Denoising {s['n']} samples from seed {s['seed']} ({what})…")
        self._ask_strip()
        self._caption_strip()
        self.set_playing(True)
        self._controls()

    def stop(self) -> None:
        """Stop every stream of this view within one step; the frames so far stay to scrub through."""
        for j in self.player.stop():
            self.channel.invalidate(self._key(j), cancel=True)
        self.status.setText("Stopped. The frames computed so far stay: scrub through them, or branch from one.")
        self._controls()
        self._show()

    def _on_frame(self, track: Track, result) -> None:
        if track not in self.tracks:
            return
        j = self.tracks.index(track)
        if result.final:
            track.done = True
            track.wall_s = time.perf_counter() - self._submitted_at.get(j, time.perf_counter())
            self.run_finished.emit(j)
            self._controls()
            if j == 0:
                self._measure_costs(track)
                self.status.setText(f"Done: {track.n} samples from seed {track.seed}, {track.total} steps. Scrub "
                                    "back through them, or branch from any frame.")
            else:
                self._show_comparison()
                self.status.setText(f"Branch {j} is done: from t = {self.player.start_t(track)} with noise seed "
                                    f"{track.seed}, in {format_ms(track.unet_ms)} of U-Net time.")
            self._show_cost()
            if self.shown == j:
                self._show()
            self._check_ready()
            return
        first = len(track.frames) == track.start
        track.add(KeptFrame.of(result.payload), int(result.payload.total))
        if self.shown == j:
            self.scrub.blockSignals(True)
            self.scrub.setMaximum(len(track) - 1)
            self.scrub.blockSignals(False)
            if first:
                self.player.pos = track.start
                self._show()             # the first frame now, not at the player's next tick
                self._controls()
            elif result.payload.labels is not None:
                self.decided.show_track(track, self.classes, self.has_classifier, self.classifier_reason)
            self._update_frame_label()
        if j == 0 and (len(track) % 10 == 1 or len(track) == track.total):
            self.cost.setText(f"Running: {len(track)} of {track.total} steps for {track.n} samples, U-Net "
                              f"{format_ms(track.unet_ms)} so far; the VAE and the GAN are timed when it ends.")

    def set_playing(self, on: bool) -> None:
        self.player.play(on)
        self.play_button.setText("Pause" if self.playing else "Play")
        if self.playing:
            self.timer.start()
        else:
            self.timer.stop()

    @property
    def fps(self) -> int:
        return int(self.speed.currentData())

    def _tick(self) -> None:
        what = self.player.tick(self.fps * TICK_MS / 1000.0)
        if what == AT_END:
            self.set_playing(False)
        elif what == MOVED:
            self._show()

    def step_once(self) -> None:
        self.set_playing(False)
        if self.player.step():
            self._show()

    def show_frame(self, k: int) -> None:
        """Put frame k of the track on screen (paused), as the scrub slider does."""
        self.set_playing(False)
        if self.player.seek(k):
            self._show()

    def _scrubbed(self, value: int) -> None:
        self.show_frame(value)

    def _scrub_value(self, value: int) -> None:
        if not self.scrub.isSliderDown():        # the player's own moves are made with signals blocked
            self.show_frame(value)

    def _show(self) -> None:
        track = self.track
        if track is None or not track.frames:
            return
        self.player.pos = min(self.pos, len(track) - 1)
        f = track.frames[self.pos]
        cols = grid_columns(track.n)
        self.grids[1].caption_lines = 1 if self._captioned(track) else 0
        self.grids[0].set_images(f.x_t, columns=cols)
        self.grids[1].set_images(f.x0.astype(np.float32), columns=cols)
        self.grids[2].set_images(f.eps_image, columns=cols)
        labels, confs = self.player.labels_at(track, self.pos)
        if not self._captioned(track):               # too small to read under 16 tiles: the strip has them
            labels = np.full(track.n, -1)
        self.grids[1].set_captions([short_label(self.classes, int(lab), float(c)) if lab >= 0 else ""
                                    for lab, c in zip(labels, confs)] if self.has_classifier else [])
        self.titles[0].setText(f"x_t at t = {f.t}: what the network sees")
        self.scrub.blockSignals(True)
        self.scrub.setMaximum(len(track) - 1)
        self.scrub.setValue(self.pos)
        self.scrub.blockSignals(False)
        self.decided.show_track(track, self.classes, self.has_classifier, self.classifier_reason)
        self.decided.mark(f.t)
        self._update_frame_label()
        self.frame_shown.emit(self.shown, self.pos)
        self._check_ready()

    def _captioned(self, track: Track) -> bool:
        """Labels under the x̂₀ tiles only where they fit (up to 2 columns); the strip below has them all."""
        return self.has_classifier and grid_columns(track.n) <= 2

    def _update_frame_label(self) -> None:
        track = self.track
        if track is None or not track.frames:
            self.frame_label.setText("")
            return
        f = track.frames[self.pos]
        total = track.total or len(track)
        more = "" if track.done else (" (stopped)" if track.stopped else f", {len(track)} computed")
        self.frame_label.setText(f"frame {self.pos + 1}/{total} · t = {f.t}{more}")

    def _check_ready(self) -> None:
        run = self.run
        if self._ready_sent or run is None or not run.frames or self.shown != 0:
            return
        if run.done or (run.total and self.pos + 1 >= READY_FRACTION * run.total):
            self._ready_sent = True
            self.ready.emit()

    def _controls(self) -> None:
        running = self.running()
        self.stop_button.setEnabled(running)
        track = self.track
        noiseless = track is not None and (track.sampler == "dpm++" or (track.sampler == "ddim" and track.eta == 0))
        can = track is not None and bool(track.frames) and not noiseless
        self.branch_button.setEnabled(can)
        self.branch_button.setToolTip("This sampler adds no noise after x_T (DPM-Solver++, or DDIM with η = 0): a "
                                      "branch would be its parent. Pick DDPM, or DDIM with η > 0." if noiseless else
                                      "Continue from the frame on screen with new noise for the remaining steps")
        has_branches = any(t.done for t in self.tracks[1:])
        self.save_png_button.setEnabled(has_branches)
        self.save_gif_button.setEnabled(track is not None and bool(track.frames))

    def _say_sample(self, i: int) -> None:
        self.compared = i
        self._show_comparison()
        self._ask_strip()
        track = self.track
        if track is None or not track.frames:
            return
        labels, confs = self.player.labels_at(track, self.pos)
        what = label_text(self.classes, int(labels[i]), float(confs[i])) if labels[i] >= 0 else "no label yet"
        self.status.setText(f"Sample {i + 1} at t = {track.frames[self.pos].t}: x̂₀ reads as {what}.")

    # -- sessions --------------------------------------------------------------------------------------------
    def session_state(self) -> DiffusionSession:
        """The run's seed and sampler settings, the class and scale asked, the branch seed, the forward half's."""
        picker, forward = self.picker, self.forward
        return DiffusionSession(
            seed=int(self.seed.value()), sampler=self.sampler.currentData(), steps=int(self.steps.value()),
            eta=float(self.eta.value()), samples=int(self.samples.value()),
            class_index=picker.class_index if picker.conditional else None,
            guidance=picker.scale if picker.conditional else None, branch_seed=int(self.branch_seed.value()),
            forward_index=int(forward.index.value()), forward_seed=int(forward.noise_seed.value()),
            forward_t=int(forward.slider.value()))

    def restore_session(self, state) -> list[str]:
        """The session's settings, then the same run from the same seed (now if on screen, else when shown)."""
        if not isinstance(state, DiffusionSession):
            return []
        problems = []
        for widget, value in ((self.seed, state.seed), (self.steps, state.steps), (self.samples, state.samples),
                              (self.branch_seed, state.branch_seed)):
            if value is not None:
                widget.setValue(max(widget.minimum(), min(widget.maximum(), value)))
        if state.sampler is not None:
            self.sampler.setCurrentIndex(self.sampler.findData(state.sampler))
        if state.eta is not None:
            self.eta.setValue(state.eta)
        picker = self.picker
        if picker.conditional:
            picker.blockSignals(True)
            known = state.class_index is not None and state.class_index < len(picker.names)
            if state.class_index is not None and not known:
                problems.append(f"The diffusion view's class {state.class_index} is not one this model knows.")
            picker.set_class(state.class_index if known else None)
            if state.guidance is not None:
                picker.set_guidance(state.guidance)
            picker.blockSignals(False)
        forward = self.forward
        for widget, value in ((forward.index, state.forward_index), (forward.noise_seed, state.forward_seed),
                              (forward.slider, state.forward_t)):
            if value is not None:
                widget.blockSignals(True)
                widget.setValue(max(widget.minimum(), min(widget.maximum(), value)))
                widget.blockSignals(False)
        forward.peek = None
        if forward.isVisible():
            forward.ask()                    # else when the forward half is first shown
        if self.target:
            self.when_shown(self.start_run)
        return problems

    # -- branches --------------------------------------------------------------------------------------------
    def branch(self, k: int | None = None, seed: int | None = None) -> int | None:
        """Continue the run from its frame k (default: the one on screen) with new noise `seed` for the steps
        that remain; returns the branch's track number."""
        seed = int(self.branch_seed.value()) if seed is None else int(seed)
        try:
            track = self.player.branch(k, seed)
        except BranchError as why:
            if str(why):
                self.status.setText(str(why))
            return None
        j = len(self.tracks) - 1
        parent, k = track.parent, track.start
        self.branch_seed.setValue(seed + 1)
        f = parent.frames[k]
        job = DiffusionRun(n=parent.n, seed=seed, sampler=parent.sampler, steps=parent.steps, eta=parent.eta,
                           tag=f"branch-{j}", start=k, x_start=f.x_raw, class_index=parent.class_index,
                           guidance=parent.guidance)
        self._submitted_at[j] = time.perf_counter()
        self.submit(job, partial(self._on_frame, track))
        self._refresh_tracks()
        self.status.setText(f"Branch {j}: from frame {k + 1} (t = {f.t}) with noise seed {seed} for the "
                            f"{parent.total - k - 1} steps left…")
        self._controls()
        return j

    def _refresh_tracks(self) -> None:
        self.track_box.blockSignals(True)
        self.track_box.clear()
        for j, t in enumerate(self.tracks):
            self.track_box.addItem("the run" if j == 0 else
                                   f"branch {j}: from t = {self.player.start_t(t)}, seed {t.seed}")
        self.track_box.setCurrentIndex(self.shown)
        self.track_box.blockSignals(False)

    def _pick_track(self, j: int) -> None:
        if self.player.pick(j):
            self._controls()
            self._show()

    def comparison_items(self, samples: list[int] | None = None, short: bool = False
                         ) -> tuple[np.ndarray, list[list[str]], int] | None:
        """(images, caption lines, columns): for each of `samples` (default: the first COMPARE_SAMPLES), the
        run's final x̂₀, then each finished branch's, earliest branch first."""
        cols = self.player.compared()
        if cols is None:
            return None
        run = cols[0]
        samples = list(range(min(run.n, COMPARE_SAMPLES))) if samples is None else samples
        images, captions = [], []
        for i in samples:
            for t in cols:
                f = t.final
                images.append(f.x0[i].astype(np.float32))
                start = self.player.start_t(t)
                head = ("run" if short else "the run") if t is run else (f"t={start}" if short else f"from t = {start}")
                label = ""
                if f.labels is not None:
                    label = (short_label if short else label_text)(self.classes, int(f.labels[i]),
                                                                   float(f.confidences[i]))
                captions.append([head, label])
        return np.stack(images), captions, len(cols)

    def _show_comparison(self) -> None:
        run = self.run
        if run is None:
            return
        i = min(self.compared, run.n - 1)
        items = self.comparison_items([i], short=True)
        if items is None:
            return
        images, captions, cols = items
        self.comparison.set_images(images, columns=min(cols, 5))
        self.comparison.set_captions(["\n".join(c) for c in captions])
        self.branch_note.setText(f"Sample {i + 1} (click one above for another): the run's final image, then each "
                                 "branch's, by the t it left from. Early branches become other pictures; late "
                                 "ones keep the picture and change its details.")
        self._controls()

    # -- the guidance strip ----------------------------------------------------------------------------------
    def _strip_request(self) -> GuidanceStrip | None:
        """The strip the run on screen calls for: its seed's sample `compared` at every scale, for its class."""
        run = self.run
        if run is None or run.class_index is None or not self.picker.guided:
            return None
        steps = int(run.steps) if run.sampler != "ddpm" and run.steps else STRIP_STEPS
        if self.T is not None:
            steps = min(steps, self.T)
        return GuidanceStrip(seed=run.seed, n=run.n, index=min(self.compared, run.n - 1),
                             class_index=run.class_index, steps=steps)

    def _ask_strip(self) -> None:
        """Ask for the strip when what it shows changed (a seed, a class, a sample; never a scale alone)."""
        job = self._strip_request()
        if job is None:
            self.channel.invalidate(STRIP_KEY, cancel=True)
            self.strip_job = self.strip = None
            self.strip_grid.set_images(None)
            self.strip_title.setText(NO_CLASS_NOTE)
            return
        old = self.strip_job
        if old is not None and (old.seed, old.n, old.index, old.class_index, old.steps) == (
                job.seed, job.n, job.index, job.class_index, job.steps):
            return
        self.strip_job, self.strip = job, None
        self.strip_grid.set_images(None)
        self.strip_title.setText(self._strip_text(job, "drawing…"))
        self.submit(job, self._on_strip)

    def _strip_text(self, job: GuidanceStrip, status: str = "") -> str:
        name = condition_text(self.picker.names, job.class_index, 1.0).split(",")[0]
        return (f"Sample {job.index + 1} of seed {job.seed}, asked for {name}, at w = "
                f"{', '.join(f'{w:g}' for w in job.scales)}: the same x_T, DDIM η = 0 in {job.steps} steps, so only "
                "w differs" + (f" ({status})" if status else "."))

    def _on_strip(self, result) -> None:
        p = result.payload
        if self.strip_job is None or not self.channel.is_current(result):
            return
        self.strip = p
        self.strip_grid.set_images(p.images, columns=p.total)
        self._caption_strip()
        done = len(p.scales) == p.total
        self.strip_title.setText(self._strip_text(self.strip_job, "" if done else
                                                  f"{len(p.scales)} of {p.total} drawn…"))
        self.strip_shown.emit(len(p.scales))

    def _caption_strip(self) -> None:
        """w and the classifier's label under each picture; the slider's own scale marked."""
        p = self.strip
        if p is None:
            return
        captions = []
        for k, w in enumerate(p.scales):
            head = f"w = {w:g}" + (" ◂" if self.run is not None and self.run.guidance == w else "")
            label = ""
            if p.labels is not None:
                label = short_label(self.classes, int(p.labels[k]), float(p.confidences[k]))
            captions.append(f"{head}\n{label}")
        self.strip_grid.set_captions(captions)

    # -- the cost --------------------------------------------------------------------------------------------
    def _compared_models(self) -> tuple[str, ...]:
        found = []
        for name, family in zip(COMPARED, ("vae", "gan")):
            entries = [e for e in self.state.models if e.family == family]
            entry = next((e for e in entries if e.name == name), entries[0] if entries else None)
            found.append(entry.path if entry is not None else name)
        return tuple(found)

    def _measure_costs(self, run: Track) -> None:
        self.submit(GeneratorCosts(self._compared_models(), run.n), self._on_costs)

    def _on_costs(self, result) -> None:
        self.costs = result.payload
        self._show_cost()
        self.costs_shown.emit()

    def _show_cost(self) -> None:
        run = self.run
        if run is None or run.wall_s is None:
            return
        steps = f"{run.total} {SAMPLER_SHORT[run.sampler]} steps"
        text = (f"This run: {run.n} samples in {steps}, U-Net {format_ms(run.unet_ms)} "
                f"({format_ms(run.wall_s * 1e3)} wall, from Run to the last frame).")
        if self.picker.guided:
            text += " " + self._guidance_cost(run)
        if self.costs is not None:
            parts = []
            for path, ms in self.costs["ms"].items():
                name = path.rsplit("/", 1)[-1].removesuffix(".safetensors")
                parts.append(f"{name} {format_ms(ms)} (diffusion ×{run.unet_ms / max(ms, 1e-6):,.0f})")
            for path, why in self.costs["missing"].items():
                parts.append(f"{path.rsplit('/', 1)[-1]} not measured: {why}")
            text += (f" The same {self.costs['n']} samples in one decoder pass, timed just now on "
                     f"{self.costs['device']}: " + "; ".join(parts) + ".")
        self.cost.setText(text)

    def _guidance_cost(self, run: Track) -> str:
        """What guidance costs, in milliseconds measured here: the run's own step, and one step with and without."""
        per_step = run.unet_ms / max(1, len(run) - run.start)
        how = (f"guided at w = {run.guidance:g}: the U-Net sees every image twice a step, told the class and told "
               "nothing" if run.guided else "one eps a step (w = 0 or 1, or any class: nothing to mix)")
        text = f"Its steps took {format_ms(per_step)} each, {how}."
        step_ms = (self.costs or {}).get("step_ms")
        if step_ms:
            plain, guided = float(step_ms["plain"]), float(step_ms["guided"])
            text += (f" Guidance doubles the network's work per step: one step of {self.costs['n']} samples, timed "
                     f"just now, takes {format_ms(guided)} guided against {format_ms(plain)} unguided "
                     f"(×{guided / max(plain, 1e-6):.1f}).")
        return text

    # -- export ----------------------------------------------------------------------------------------------
    def save_animation(self, path) -> str:
        track = self.track
        if track is None or not track.frames:
            raise ExportError("there are no frames to save yet: run first")
        frames = gif_frames(track, grid_columns(track.n))
        return str(save_gif(frames, path, scale=2, frame_ms=max(20, int(1000 / self.fps))))

    def save_comparison(self, path) -> str:
        items = self.comparison_items()
        if items is None:
            raise ExportError("there is no finished branch to compare yet: branch from a frame first")
        images, captions, cols = items
        captions = [[line.replace(" · ", " ") for line in c] for c in captions]   # Pillow's font has no "·"
        return str(save_png(comparison_picture(images, captions, cols), path, scale=1))

    def _ask_gif(self) -> None:
        self._ask("Save the animation", "diffusion.gif", "GIF images (*.gif)", self.save_animation)

    def _ask_png(self) -> None:
        self._ask("Save the branch comparison", "diffusion-branches.png", "PNG images (*.png)",
                  self.save_comparison)

    def _ask(self, title: str, name: str, filters: str, save) -> None:
        path, _ = QFileDialog.getSaveFileName(self, title, name, filters)
        if not path:
            return
        try:
            self.status.setText(f"Saved {save(path)}")
        except ExportError as err:
            self.status.setText(str(err))

    def heightForWidth(self, width: int) -> int:
        """The minimum height, whatever the width: the wrapped labels make the layout height-for-width, and the
        window's scroll area would then size the view by its preferred height (twice the window's) instead of
        fitting it to the window; the view fits any height above its minimum."""
        return self.minimumSizeHint().height()

    def confirm_close(self) -> bool:
        self.channel.invalidate(cancel=True)
        return True
