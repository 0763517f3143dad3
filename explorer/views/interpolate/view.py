"""Interpolation: pick 2 to 8 keyframes, find their codes, and drag a slider along the path between them.

The picture under the slider is decode(z(t)) for the path's own z(t) (paths.py), decoded live while
dragging (a diffusion model: on release, with progress, reusing frames already denoised). Below it, a strip of
frames along the path with the classifier's label (and, for a model with a discriminator, the detective's
verdict) under each, |z| along t for both walks against sqrt(d), and the pixel change from frame to frame.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSizePolicy, QSlider, QSpinBox, QVBoxLayout, QWidget)

from models.catalog import DENOISE, ENCODE

from ...engine.job import Result
from ...engine.jobs.common import DecodePoints, DecodeProbe
from ...engine.jobs.interpolate import ENCODER, INVERSION, INVERSION_STEPS, Codes, KeyframeCodes, TestImages
from ...engine.jobs.map import DenoisePoint
from ..base import View
from ..tabs import INTERPOLATE
from ..widgets.condition import NO_NULL_CLASS_NOTE, ClassPicker
from ..widgets.export import save_strip
from ..widgets.image_grid import ImageGrid
from ..widgets.image_panel import ImagePanel, label_text
from ..widgets.tiles import picture_shape
from .charts import ErrorPlot, NormPlot, StepPlot
from .image_file import FORMATS, ImageFileError, load_image
from .path import MAX_KEYFRAMES, MIN_KEYFRAMES, Keyframe, KeyframePath
from .paths import LERP, SLERP, pixel_steps
from .session import InterpolateSession

MIN_FRAMES, MAX_FRAMES, DEFAULT_FRAMES = 4, 32, 16
KEYFRAMES_KEY = "interp:keyframes"   # the key of KeyframeCodes: the search for the keyframes' codes
SLIDER_KEY = "interp-slider"         # the picture under the slider
STRIP_KEY = "interp-strip"           # the strip of frames along the path
TICKS_PER_FRAME = 64          # the slider lands exactly on every strip frame (arrow keys step frame to frame)
PICKER_COUNT = 24
ALL_DIFFUSION_STEPS = 10 ** 6  # DenoisePoint caps this at the model's decode_steps: the last frame IS decode(z)
DEFAULT_CLASSES = (0, 9)      # the first T-shirt and the first ankle boot of the test set
CLASS_NOTE = ("A class-conditional model: the keyframes are run back to x_T and the path denoised with this class "
              "and guidance scale (any class: the unconditional model).")
SLERP_TIP = ("Slerp walks along the great circle between the two codes. A Gaussian's mass lies on a thin shell "
             "of radius about √d, and a straight line (lerp) cuts through the nearly empty middle, where the "
             "decoder has seen no codes; slerp keeps |z| on the shell when the ends have equal norm.")


def short_label(classes, label, confidence) -> str:
    return label_text(classes, None if label is None else int(label),
                      None if confidence is None else float(confidence))


class InterpolationView(View):
    """`ready`: keyframes encoded, the slider's picture and the strip drawn."""

    slider_shown = Signal(int)       # job id: its picture is under the slider now
    strip_shown = Signal()
    codes_shown = Signal()           # the keyframes' codes are final (encoded, inverted or cancelled)
    keyframes_changed = Signal()

    test_limit = 2000                # the picker offers the first n test images

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, INTERPOLATE.name, parent)
        self.info = None
        self.walk = KeyframePath()                 # the keyframes, their codes on the current model, lerp or slerp
        self.test: dict | None = None
        self._test_of: tuple | None = None         # (data set, image shape) the test images were read for
        self.strip_images: np.ndarray | None = None
        self.strip_decoded = None
        self.slider_image: np.ndarray | None = None
        self._pixels_job = 0                       # the job whose picture is under the slider
        self._frames_cache: dict[int, tuple] = {}  # slider value -> (image, label, confidence, critic)
        self._pending: set[str] = set()
        self._picker_offset = 0
        self._build()
        state.model_changed.connect(self._on_model)
        state.keyframe_requested.connect(self.add_keyframe)      # "use as a keyframe" on the latent map
        self._on_model(state.model)

    # -- layout ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        keys = QGroupBox("Keyframes (2 to 8)")
        kl = QVBoxLayout(keys)
        self.key_grid = ImageGrid(columns=MAX_KEYFRAMES, caption_lines=1)
        self.key_grid.setMinimumHeight(200)
        self.key_grid.setMaximumHeight(300)
        self.key_note = QLabel("")
        self.key_note.setWordWrap(True)
        self.key_note.setObjectName("panelCaption")
        row = QHBoxLayout()
        self.file_button = QPushButton("Add image file…")
        self.file_button.setToolTip("A PNG, JPEG or BMP of any size, fitted into the model's picture: for a grey "
                                    "model made grey and turned light-on-dark like Fashion-MNIST. The converted "
                                    "picture is what is shown.")
        self.remove_button = QPushButton("Remove last")
        row.addWidget(self.file_button)
        row.addWidget(self.remove_button)
        kl.addWidget(self.key_grid, 1)
        kl.addWidget(self.key_note)
        kl.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_button)
        kl.addLayout(prow)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(20, 2000)
        self.steps_spin.setSingleStep(50)
        self.steps_spin.setValue(INVERSION_STEPS)
        self.steps_spin.setToolTip("How many Adam steps the search for each keyframe's z takes")
        self.steps_row = QWidget()
        srow = QHBoxLayout(self.steps_row)
        srow.setContentsMargins(0, 0, 0, 0)
        srow.addWidget(QLabel("Inversion steps"))
        srow.addWidget(self.steps_spin)
        self.reinvert_button = QPushButton("Search again")
        srow.addWidget(self.reinvert_button)
        kl.addWidget(self.steps_row)
        self.error_plot = ErrorPlot()
        kl.addWidget(self.error_plot.widget)
        side.addWidget(keys, 1)

        pick = QGroupBox("Add from the test set")
        pl = QVBoxLayout(pick)
        prow2 = QHBoxLayout()
        self.class_box = QComboBox()
        self.more_button = QPushButton("Others")
        self.more_button.setToolTip("Show the next images of this class")
        prow2.addWidget(self.class_box, 1)
        prow2.addWidget(self.more_button)
        pl.addLayout(prow2)
        self.picker = ImageGrid(columns=8, caption_lines=0)
        self.picker.setMinimumHeight(90)
        self.picker.setToolTip("Click an image to add it as a keyframe")
        pl.addWidget(self.picker, 1)
        side.addWidget(pick, 1)
        self.class_group = QGroupBox("Class: what the walk asks for")
        cl = QVBoxLayout(self.class_group)
        self.class_picker = ClassPicker()
        cl.addWidget(self.class_picker)
        self.class_note = QLabel(CLASS_NOTE)
        self.class_note.setWordWrap(True)
        self.class_note.setObjectName("panelCaption")
        cl.addWidget(self.class_note)
        self.class_group.setVisible(False)
        side.addWidget(self.class_group)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(330)

        controls = QHBoxLayout()
        self.kind_box = QComboBox()
        self.kind_box.addItems([SLERP, LERP])
        self.kind_box.setToolTip(SLERP_TIP)
        self.frames_spin = QSpinBox()
        self.frames_spin.setRange(MIN_FRAMES, MAX_FRAMES)
        self.frames_spin.setValue(DEFAULT_FRAMES)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, (DEFAULT_FRAMES - 1) * TICKS_PER_FRAME)
        self.slider.setSingleStep(TICKS_PER_FRAME)
        self.slider.setPageStep(TICKS_PER_FRAME)
        self.slider.setToolTip("Drag, or use the arrow keys to step from frame to frame")
        self.t_label = QLabel("t = 0.00")
        self.t_label.setFixedSize(self.t_label.fontMetrics().horizontalAdvance("t = 0.000") + 6,
                                  self.t_label.sizeHint().height())          # fixed: no relayout per move
        controls.addWidget(QLabel("Path"))
        controls.addWidget(self.kind_box)
        controls.addWidget(QLabel("Frames"))
        controls.addWidget(self.frames_spin)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.t_label)
        exports = QHBoxLayout()
        self.gif_button = QPushButton("Save GIF…")
        self.png_button = QPushButton("Save PNG strip…")
        self.bounce_box = QCheckBox("back and forth")
        self.enlarge_box = QCheckBox("4× pixels")
        self.status = QLabel("")
        self.status.setObjectName("mapStatus")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        exports.addStretch(1)
        exports.addWidget(self.bounce_box)
        exports.addWidget(self.enlarge_box)
        exports.addWidget(self.gif_button)
        exports.addWidget(self.png_button)

        self.panel = ImagePanel("decode(z(t))", size=190)
        # a caption of a fixed size (two lines): Qt then keeps its text changes to itself, where a caption that
        # may resize asks the whole tab to lay out again and repaints every widget in it, on every slider move
        self.panel.caption.setFixedSize(200, 2 * self.panel.caption.fontMetrics().lineSpacing() + 4)
        self.strip = ImageGrid(columns=8, caption_lines=2)
        self.strip.setMinimumHeight(200)
        self.strip.setMaximumHeight(330)
        self.strip.setToolTip("Click a frame to move the slider there")
        middle = QHBoxLayout()
        middle.addWidget(self.panel, 0)
        middle.addWidget(self.strip, 1)
        self.norm_plot = NormPlot()
        self._cursor_timer = QTimer(self)
        self._cursor_timer.setSingleShot(True)
        self._cursor_timer.setInterval(40)      # costs more than the decode: it must not run on every move
        self._cursor_timer.timeout.connect(lambda: self.norm_plot.set_t(self.t))
        self.step_plot = StepPlot()
        charts = QHBoxLayout()
        charts.addWidget(self.norm_plot.widget, 1)
        charts.addWidget(self.step_plot.widget, 1)
        main = QVBoxLayout()
        main.setContentsMargins(0, 0, 0, 0)
        main.addLayout(controls)
        main.addLayout(middle, 3)
        main.addLayout(charts, 4)
        main.addWidget(self.status)
        main.addLayout(exports)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(side_widget)
        layout.addLayout(main, 1)

        self.file_button.clicked.connect(self._ask_file)
        self.remove_button.clicked.connect(self.remove_last)
        self.cancel_button.clicked.connect(self.cancel_search)
        self.reinvert_button.clicked.connect(self._encode)
        self.class_box.currentIndexChanged.connect(lambda _: self._fill_picker(reset=True))
        self.more_button.clicked.connect(lambda: self._fill_picker(reset=False))
        self.picker.clicked.connect(self._picked)
        self.kind_box.currentTextChanged.connect(self._kind_chosen)
        self.frames_spin.valueChanged.connect(self.set_frames)
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderReleased.connect(self._slider_released)
        self.strip.clicked.connect(lambda i: self.slider.setValue(i * TICKS_PER_FRAME))
        self.gif_button.clicked.connect(lambda: self._ask_export("gif"))
        self.png_button.clicked.connect(lambda: self._ask_export("png"))
        self.class_picker.changed.connect(self._condition_changed)

    # -- small helpers -----------------------------------------------------------------------------------------
    @property
    def is_diffusion(self) -> bool:
        return self.info is not None and self.info.can(DENOISE)

    @property
    def t(self) -> float:
        return self.slider.value() / max(1, self.slider.maximum())

    @property
    def keyframes(self) -> list[Keyframe]:
        return self.walk.keyframes

    @property
    def codes(self) -> Codes | None:
        """The final codes of the keyframes on the current model; None while they are being found."""
        return self.walk.codes

    @property
    def partial(self) -> Codes | None:
        """The newest item of a running search for the codes."""
        return self.walk.partial

    @property
    def kind(self) -> str:
        return self.walk.kind

    @property
    def n_frames(self) -> int:
        return self.frames_spin.value()

    def _classes(self) -> tuple[str, ...]:
        return tuple(self.info.classes) if self.info is not None else ()

    def say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)

    def _done(self, what: str) -> None:
        if what in self._pending:
            self._pending.discard(what)
            if not self._pending:
                self.ready.emit()

    # -- the model ---------------------------------------------------------------------------------------------
    def _on_model(self, info) -> None:
        self.channel.invalidate(cancel=True)
        self.info = info
        self.target = info.path if info is not None else None
        self.walk.forget_codes()
        self._clear_path()
        self._show_progress(None)
        self.walk.reset_kind()
        self._show_kind()
        if info is None:
            self.say("Open a model to walk through its latent space.")
            return
        if self._test_of != (info.dataset, tuple(info.image_shape)):     # another data set or picture shape
            self.test, self._test_of = None, (info.dataset, tuple(info.image_shape))
            if self.walk.keep_only(picture_shape(info.image_shape)):
                self._draw_keyframes()
        self.class_picker.blockSignals(True)       # a new model: its codes are found below, once
        self.class_group.setVisible(self.class_picker.configure(info))
        self.class_picker.blockSignals(False)
        self.class_note.setText(CLASS_NOTE if self.class_picker.any_class else
                                "The keyframes are run back to x_T and the path denoised with this class. "
                                + NO_NULL_CLASS_NOTE)
        inverts = not info.can(ENCODE) and not info.can(DENOISE)
        self.steps_row.setVisible(inverts)
        self.error_plot.widget.setVisible(inverts)
        self.error_plot.clear()
        self.caption_changed.emit(
            INTERPOLATE.caption if info.can(ENCODE) else
            "A diffusion model's walk: each keyframe is run backwards to its start noise x_T, and the path "
            "between those noises is denoised on release." if info.can(DENOISE) else
            "A walk through the forger's noise: it has no encoder, so each keyframe's z is searched for until "
            "G(z) looks like it, and the walk runs between those codes.")
        self._pending = {"codes", "slider", "strip"}
        self.when_shown(self._start)      # a start on another tab never pays for the test set and the walk

    def _start(self) -> None:
        if self.info is None:
            return
        if self.test is None:
            self.submit(TestImages(self.info.dataset, self.test_limit), self._on_test_images)
        else:
            self._encode()

    def _on_test_images(self, result: Result) -> None:
        self.test = result.payload
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItem("All classes", -1)
        for i, name in enumerate(self.test["classes"]):
            self.class_box.addItem(name, i)
        self.class_box.blockSignals(False)
        self._fill_picker(reset=True)
        if not self.keyframes:
            labels = self.test["labels"]
            last = max(len(self.test["classes"]) - 1, 0)
            for c in (min(k, last) for k in DEFAULT_CLASSES):
                hits = np.flatnonzero(labels == c) if labels is not None else ()
                self._append(self._test_keyframe(int(hits[0]) if len(hits) else len(self.keyframes)))
        self._encode()

    # -- keyframes ---------------------------------------------------------------------------------------------
    def _test_keyframe(self, index: int) -> Keyframe:
        image = self.test["images"][index].astype(np.float32) / 255.0
        if self.test["labels"] is None:
            return Keyframe(image, f"#{index}")
        label = int(self.test["labels"][index])
        classes = self.test["classes"]
        name = classes[label] if label < len(classes) else str(label)
        return Keyframe(image, f"#{index} {name}")

    def _append(self, keyframe: Keyframe) -> bool:
        if not self.walk.add(keyframe):
            self.say(f"At most {MAX_KEYFRAMES} keyframes: remove one first.")
            return False
        return True

    def add_keyframe(self, image: np.ndarray, source: str) -> bool:
        """Add a picture (H, W) or (H, W, 3) in [0, 1] as the last keyframe and find the codes again; False if full
        or when it is not of the model's picture shape (then the status line says why)."""
        if self.info is not None and np.shape(image) != picture_shape(self.info.image_shape):
            self.say(f"{source} is a picture of {'×'.join(map(str, np.shape(image)))} and {self.info.name} draws "
                     f"{'×'.join(map(str, picture_shape(self.info.image_shape)))}: it is not added.")
            return False
        if not self._append(Keyframe(np.asarray(image, np.float32), source)):
            return False
        self._encode()
        return True

    def add_test_image(self, index: int) -> bool:
        if self.test is None:
            return False
        kf = self._test_keyframe(index)
        return self.add_keyframe(kf.image, kf.source)

    def add_image_file(self, path: str | Path) -> bool:
        """Convert the file's picture and add it; an unreadable file leaves the keyframes as they were and says
        why in the status line."""
        shape = tuple(self.info.image_shape) if self.info is not None else (1, 28, 28)
        try:
            image = load_image(path, shape)
        except ImageFileError as err:
            self.say(str(err) + "; the keyframes are unchanged.")
            return False
        return self.add_keyframe(image, Path(path).name)

    def remove_last(self) -> None:
        if not self.walk.remove_last():
            self.say(f"A path needs at least {MIN_KEYFRAMES} keyframes.")
            return
        self._encode()

    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add an image as a keyframe", "", FORMATS)
        if path:
            self.add_image_file(path)

    def _picked(self, i: int) -> None:
        if 0 <= i < len(self._picker_indices):
            self.add_test_image(int(self._picker_indices[i]))

    def _fill_picker(self, reset: bool) -> None:
        if self.test is None:
            return
        c = self.class_box.currentData()
        labels = self.test["labels"]
        pool = (np.arange(len(self.test["images"])) if labels is None or c is None or c < 0
                else np.flatnonzero(labels == c))
        self._picker_offset = 0 if reset else self._picker_offset + PICKER_COUNT
        if self._picker_offset >= len(pool):
            self._picker_offset = 0
        self._picker_indices = pool[self._picker_offset:self._picker_offset + PICKER_COUNT]
        self.picker.set_images(self.test["images"][self._picker_indices].astype(np.float32) / 255.0, columns=8)

    _picker_indices = np.zeros(0, np.int64)

    def _draw_keyframes(self) -> None:
        """Targets in the top row; under them what the model draws from their codes, with its error."""
        n = len(self.keyframes)
        if not n:
            self.key_grid.set_images(None)
            return
        targets = np.stack([k.image for k in self.keyframes])
        captions = [k.short for k in self.keyframes]
        shown = self.codes or self.partial
        if shown is not None and len(shown.recon) == n and np.isfinite(shown.mse).all():
            images = np.concatenate([targets, shown.recon])
            captions += [f"{e:.3f}" for e in shown.mse]
        else:
            images = targets
        self.key_grid.set_images(images, columns=n)
        self.key_grid.set_captions(captions)
        self.key_grid.setToolTip("\n".join(f"{i + 1}: {k.source}" for i, k in enumerate(self.keyframes)))
        self.keyframes_changed.emit()

    # -- codes -------------------------------------------------------------------------------------------------
    def _encode(self) -> None:
        if self.info is None or len(self.keyframes) < MIN_KEYFRAMES:
            return
        self.channel.invalidate(KEYFRAMES_KEY, cancel=True)
        self.walk.forget_codes()
        self._clear_path()
        self._pending.add("codes")
        self._pending.update({"slider", "strip"})
        self.error_plot.clear()
        self._draw_keyframes()
        images = self.walk.images()
        self._show_progress(0, 1, "finding the codes…")
        self.submit(KeyframeCodes(images, inversion_steps=self.steps_spin.value(), **self._condition()),
                    self._on_codes, self._on_codes_failed)

    def _condition(self) -> dict:
        """The class and guidance scale a class-conditional model's jobs carry (none for any other model)."""
        picker = self.class_picker
        return {"class_index": picker.class_index, "guidance": picker.guidance} if picker.conditional else {}

    def _condition_changed(self) -> None:
        """Another class or scale: x_T depends on it, so the keyframes are run back again and the path redrawn."""
        if self.info is not None and self.test is not None:
            self.say(f"The walk now asks for {self.class_picker.text()}: finding the keyframes' x_T again…")
            self._encode()

    def _on_codes(self, result: Result) -> None:
        c: Codes = result.payload
        if not self.channel.is_current(result) or len(c.z) != len(self.keyframes):
            return                     # an older search, or the stream's last item sent again as its end
        self.walk.partial = c
        if c.method == INVERSION:
            self.error_plot.add(c.step, float(np.mean(c.mse)),
                                None if c.baseline_mse is None else float(np.mean(c.baseline_mse)))
            self._show_progress(c.step, c.steps, f"searching z: step {c.step}/{c.steps}, "
                                                 f"error {float(np.mean(c.mse)):.4f}")
        else:
            self._show_progress(c.step, c.steps, f"{c.method}: {c.step}/{c.steps}")
        if c.done:
            self._codes_final(c)
        else:
            self._draw_keyframes()

    def _on_codes_failed(self, message: str) -> None:
        self._show_progress(None)
        self.say(message)

    def cancel_search(self) -> None:
        """Stop the running search; the best codes so far are used (a GAN's search keeps its best z)."""
        self.channel.cancel(KEYFRAMES_KEY)
        self.channel.invalidate(KEYFRAMES_KEY)
        c = self.partial
        if c is not None and c.method == INVERSION:
            self._codes_final(dataclasses.replace(c, done=True), cancelled=True)
            self.say(f"Search stopped at step {c.step} of {c.steps}: the walk uses the best codes so far.")
            self.key_note.setText(f"Stopped after {c.step} of {c.steps} Adam steps: the best codes so far, pixel "
                                  f"error {np.mean(c.mse):.4f}. Search again to go on.")
        else:
            self._show_progress(None)
            self.say("Stopped before the codes were found: add or remove a keyframe, or search again.")

    def _codes_final(self, c: Codes, cancelled: bool = False) -> None:
        self.channel.invalidate(KEYFRAMES_KEY)          # the stream's last item, sent again as its end, is dropped
        self.walk.set_codes(c)
        self._show_progress(None)
        self._show_kind()
        self._draw_keyframes()
        if cancelled:
            pass                       # cancel_search says where it stopped
        elif c.method == INVERSION:
            base = "" if c.baseline_mse is None else f" (the prior mean's picture G(0): {np.mean(c.baseline_mse):.4f})"
            self.key_note.setText(f"Top: the keyframes; below: G(z), what the forger can draw of each, with its pixel "
                                  f"error. After {c.step} Adam steps: {np.mean(c.mse):.4f}{base}.")
        else:
            how = "the encoder (μ)" if c.method == ENCODER else "DDIM inversion to x_T"
            self.key_note.setText(f"Top: the keyframes; below: decode(z) of their codes from {how}, with its pixel "
                                  f"error (mean {np.mean(c.mse):.4f}).")
        self._done("codes")
        self.codes_shown.emit()
        self._redraw_path()

    def _show_progress(self, step, steps=1, text: str = "") -> None:
        running = step is not None
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        if running:
            self.progress.setRange(0, max(1, int(steps)))
            self.progress.setValue(int(step))
            self.progress.setFormat(text or "%p%")

    # -- sessions ----------------------------------------------------------------------------------------------
    def session_state(self) -> InterpolateSession:
        """The keyframes' pixels and sources, the kind of path if the user chose it, frames, t, class and steps."""
        picker = self.class_picker
        return InterpolateSession(
            tuple(self.keyframes), self.walk.kind if self.walk.kind_from_user else None, self.n_frames, self.t,
            picker.class_index if picker.conditional else None, picker.scale if picker.conditional else None,
            self.steps_spin.value())

    def restore_session(self, state) -> list[str]:
        """The session's keyframes and controls; the codes are found again (now, or when the tab is first shown)."""
        if not isinstance(state, InterpolateSession):
            return []
        if self.info is None:
            return ["The interpolation has no model to walk through."]
        problems = []
        shape = picture_shape(self.info.image_shape)
        keyframes = state.keyframes
        if keyframes and keyframes[0].image.shape != shape:
            problems.append(f"The session's keyframes are pictures of {'×'.join(map(str, keyframes[0].image.shape))} "
                            f"and {self.info.name} draws {'×'.join(map(str, shape))}: they are not restored.")
            keyframes = ()
        self.walk.restore_kind(state.kind)
        self._show_kind()
        if state.inversion_steps is not None:
            self.steps_spin.setValue(state.inversion_steps)
        picker = self.class_picker
        if picker.conditional:
            picker.blockSignals(True)
            if state.class_index is not None and state.class_index >= len(picker.names):
                problems.append(f"The interpolation's class {state.class_index} is not one this model knows.")
            picker.set_class(state.class_index if state.class_index is not None
                             and state.class_index < len(picker.names) else None)
            if state.guidance is not None:
                picker.set_guidance(state.guidance)
            picker.blockSignals(False)
        if state.frames is not None:
            self.frames_spin.blockSignals(True)
            self.frames_spin.setValue(max(MIN_FRAMES, min(MAX_FRAMES, state.frames)))
            self.frames_spin.blockSignals(False)
            self.slider.blockSignals(True)
            self.slider.setRange(0, (self.n_frames - 1) * TICKS_PER_FRAME)
            self.slider.blockSignals(False)
        self.slider.blockSignals(True)
        self.slider.setValue(round(state.t * self.slider.maximum()))
        self.slider.blockSignals(False)
        self.t_label.setText(f"t = {self.t:.2f}")
        if keyframes:
            self.walk.replace(keyframes)
            self._draw_keyframes()
        if self.test is not None:          # started: find the codes now; else the first show finds them
            self._encode()
        return problems

    # -- the path ----------------------------------------------------------------------------------------------
    def _kind_chosen(self, text: str) -> None:
        if self.walk.choose_kind(text):
            self._redraw_path()

    def _show_kind(self) -> None:
        self.kind_box.blockSignals(True)
        self.kind_box.setCurrentText(self.walk.kind)
        self.kind_box.blockSignals(False)

    def set_kind(self, kind: str) -> None:
        """Choose lerp or slerp as the user would."""
        self.kind_box.setCurrentText(kind)

    def set_frames(self, n: int) -> None:
        n = max(MIN_FRAMES, min(MAX_FRAMES, int(n)))
        if self.frames_spin.value() != n:
            self.frames_spin.setValue(n)         # comes back here
            return
        t = self.t
        self.slider.blockSignals(True)
        self.slider.setRange(0, (n - 1) * TICKS_PER_FRAME)
        self.slider.setValue(round(t * self.slider.maximum()))
        self.slider.blockSignals(False)
        self._redraw_path()

    def path_z(self, t: float) -> np.ndarray | None:
        """z(t) of the current path, (d,); None until the codes are known."""
        return self.walk.point(t)

    def frames_z(self) -> np.ndarray | None:
        return self.walk.frames(self.n_frames)

    def _clear_path(self) -> None:
        if self.info is not None:
            self.state.path_changed.emit(self.info.path, None)
        self.strip_images = self.strip_decoded = self.slider_image = None
        self._frames_cache.clear()
        self.channel.invalidate(SLIDER_KEY)
        self.channel.invalidate(STRIP_KEY)
        self.strip.set_images(None)
        self.panel.set_image(None)
        self.panel.set_caption("")
        self.norm_plot.draw(None, self.kind)
        self.step_plot.draw(None)

    def _redraw_path(self) -> None:
        if self.codes is None:
            return
        self._frames_cache.clear()
        self.channel.invalidate(SLIDER_KEY)
        self.norm_plot.draw(self.codes.z, self.kind)
        self.norm_plot.set_t(self.t)
        z = self.frames_z()
        if self.info is not None and not self.is_diffusion:
            self.state.path_changed.emit(self.info.path, z)      # the map draws it over the same model
        job = (DenoisePoint(STRIP_KEY, z, ALL_DIFFUSION_STEPS, **self._condition()) if self.is_diffusion
               else DecodePoints(STRIP_KEY, z))
        if self.is_diffusion:
            self.say(f"Denoising {len(z)} frames along the path…")
        self.submit(job, self._on_strip)
        self._decode_slider()

    def _on_strip(self, result: Result) -> None:
        if not self.channel.is_current(result):
            return                     # a strip of a path since redrawn
        p = result.payload
        if not result.final:
            if p.step is not None:
                self.say(f"Denoising the strip: step {p.step}/{p.steps}")
            return
        self.strip_images, self.strip_decoded = p.images, p
        classes = self._classes()
        captions = []
        for i in range(len(p.images)):
            label, conf, verdict = self._verdicts(p, i)
            name = short_label(classes, label, None) or f"t = {i / (len(p.images) - 1):.2f}"
            second = [] if conf is None else [f"{100 * float(conf):.0f}%"]
            if verdict is not None:
                second.append(f"D {100 * float(verdict):.0f}%")
            lines = [name, " · ".join(second)]
            captions.append("\n".join(lines))
            if self.is_diffusion:
                self._frames_cache[i * TICKS_PER_FRAME] = (p.images[i], *self._verdicts(p, i))
        self.strip.set_images(p.images, columns=min(8, len(p.images)))
        self.strip.set_captions(captions)
        steps = pixel_steps(p.images)
        self.step_plot.draw(steps)
        big = int(np.argmax(steps))
        if not self.is_diffusion or self.status.text().startswith("Denoising"):
            self.say(f"{len(p.images)} frames by {self.kind}; the largest jump is between frames {big + 1} and "
                      f"{big + 2}. Drag the slider, or use the arrow keys.")
        self.strip_shown.emit()
        self._done("strip")
        if self.is_diffusion and self.slider_image is None and self.slider.value() in self._frames_cache:
            self._show_cached(self.slider.value())

    @staticmethod
    def _verdicts(p, i: int) -> tuple:
        return (None if p.labels is None else p.labels[i], None if p.confidences is None else p.confidences[i],
                None if p.critic is None else p.critic[i])

    # -- the slider --------------------------------------------------------------------------------------------
    def set_t(self, t: float) -> None:
        self.slider.setValue(round(float(t) * self.slider.maximum()))

    def _slider_moved(self, value: int) -> None:
        self.t_label.setText(f"t = {self.t:.2f}")
        if not self._cursor_timer.isActive():
            self._cursor_timer.start()     # the plot's cursor follows at most 25 times a second: a plot repaint
        if self.is_diffusion and self.slider.isSliderDown():
            self.panel.set_caption("let go to denoise")
            return
        self._decode_slider()

    def _slider_released(self) -> None:
        if self.is_diffusion:
            self._decode_slider()

    def _decode_slider(self) -> None:
        if self.codes is None:
            return
        value = self.slider.value()
        if self.is_diffusion and value in self._frames_cache:
            self._show_cached(value)
            return
        z = self.path_z(self.t)
        job = (DenoisePoint(SLIDER_KEY, z, ALL_DIFFUSION_STEPS, **self._condition()) if self.is_diffusion
               else DecodeProbe(SLIDER_KEY, z))
        self.submit(job, partial(self._on_slider, value))

    def _show_cached(self, value: int) -> None:
        image, label, conf, verdict = self._frames_cache[value]
        self.slider_image = image
        self.panel.set_image(image)
        self._caption_panel(label, conf, verdict, "(already denoised)")
        self.slider_shown.emit(0)
        self._done("slider")

    def _caption_panel(self, label, conf, verdict, extra: str = "") -> None:
        parts = [short_label(self._classes(), label, conf)]
        if verdict is not None:
            parts.append(f"D: {100 * float(verdict):.0f}% real")
        if extra:
            parts.append(extra)
        tip = ""
        if label is None and self.info is not None and not self.info.has_classifier:
            parts[0] = "no label"              # and why, on hover: there is no classifier for this data set
            tip = self.info.classifier_reason
        self.panel.set_caption(" · ".join(p for p in parts if p), tip)

    def _on_slider(self, value: int, result: Result) -> None:
        p = result.payload
        if p.step is not None and not result.final and p.step < (p.steps or 0):
            self.panel.set_image(p.images[0])
            self.panel.set_caption(f"denoising… step {p.step}/{p.steps}")
            return
        if self._pixels_job != result.job_id:
            self.panel.set_image(p.images[0])       # the verdicts' item carries the same pixels again
            self._pixels_job = result.job_id
        self.slider_image = p.images[0]
        if p.labelled:
            self._caption_panel(*self._verdicts(p, 0))
        if self.is_diffusion and result.final:
            self._frames_cache[value] = (p.images[0], *self._verdicts(p, 0))
        self.slider_shown.emit(result.job_id)
        if result.final:
            self._done("slider")

    # -- export ------------------------------------------------------------------------------------------------
    def _scale(self) -> int:
        return 4 if self.enlarge_box.isChecked() else 1

    def export_gif(self, path: str | Path, bounce: bool | None = None) -> bool:
        """The strip's frames as a looping GIF (forward and back when `bounce`); False with a message if not."""
        return self._export(path, "gif", self.bounce_box.isChecked() if bounce is None else bounce)

    def export_png(self, path: str | Path) -> bool:
        """The strip as one PNG row."""
        return self._export(path, "png")

    def _export(self, path: str | Path, kind: str, bounce: bool = True) -> bool:
        if self.strip_images is None:
            self.say("There is no path to save yet.")
            return False
        saved, sentence = save_strip(self.strip_images, path, kind, scale=self._scale(), bounce=bounce)
        self.say(sentence)
        return saved

    def _ask_export(self, kind: str) -> None:
        name = (self.info.name if self.info is not None else "path") + f"-{self.kind}.{kind}"
        flt = "GIF (*.gif)" if kind == "gif" else "PNG (*.png)"
        path, _ = QFileDialog.getSaveFileName(self, "Save the path", name, flt)
        if path:
            (self.export_gif if kind == "gif" else self.export_png)(path)

