"""Side by side: every model with an encoder rebuilds the same test images, every generator draws from the same
seed, and a click shows how one image passes through one network.

The view reads no model's file itself: each column's ModelInfo comes from a LoadColumn job (the engine's model
cache answers; the picker's model is untouched), and every picture from a job that names its model. A model
opened with File > Open joins as a column (if it has an encoder) and as a row.
"""
from __future__ import annotations

import os
from functools import partial

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QLineEdit, QMenu,
                               QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from models.catalog import DENOISE, ENCODE, SAMPLE

from ...engine.job import Result
from ...engine.jobs.compare import FeatureMaps, LoadColumn, PickTestImages, PriorSamples, PriorStream, Reconstruct
from ..base import View
from ..tabs import COMPARE
from ..widgets.export import ExportError, save_png
from ..widgets.tiles import like_colour, tile
from .figures import fid_text, label_text, mean
from .parts import InsidePanel, PriorRow, ReconColumn, small
from .session import CompareSession

N_IMAGES = 8
N_SAMPLES = 8
DDIM_STEPS = 50
GUIDANCE = 3.0            # a class-conditional model's rows: guided this hard (its samples are of their class)
CLASS_ROW_STRETCH = 4     # the height its ten rows of classes take, against 1 for every other model's row
WOBBLE_MS = 600
COLUMN_ORDER = ("ae-2d", "vae-2d", "cae-16", "conv-vae-16", "vaegan")
ROW_ORDER = ("ae-2d", "cae-16", "vae-2d", "conv-vae-16", "gan", "vaegan", "ddpm")


def own_shape(dataset: str) -> tuple | None:
    """A data set's own picture (C, H, W); None for a name the catalog does not know."""
    from models.catalog import dataset_info

    try:
        return tuple(dataset_info(dataset).image_shape)
    except ValueError:
        return None


def same_path(path: str) -> str:
    return os.path.realpath(path) if path else path


def ordered(paths, names: dict[str, str], order: tuple[str, ...]) -> list[str]:
    """Known names in the tutorial's order, then the rest (opened files) in the order they came."""
    known = list(paths)
    return sorted(known, key=lambda p: (order.index(names[p]) if names[p] in order else len(order),
                                        known.index(p)))


class CompareView(View):
    """`ready`: every column and row drawn, the diffusion row finished (or stopped). Every job names the model
    of its own column or row, so the view has no one `target`."""

    priors_drawn = Signal()         # every prior row but the streamed ones drawn (the benchmark's figure)
    rows_drawn = Signal()           # that, and every reconstruction column
    column_drawn = Signal(str)      # path
    row_drawn = Signal(str)         # path
    stream_frame = Signal(str, int)  # path, frame index
    inside_shown = Signal()

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, COMPARE.name, parent)
        self.infos: dict[str, object] = {}        # path -> ModelInfo
        self.names: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.loading: set[str] = set()
        self.columns: dict[str, ReconColumn] = {}
        self.rows: dict[str, PriorRow] = {}
        self.hidden: set[str] = set()
        self.gaussian: dict[str, bool] = {}
        self.picked: dict | None = None
        self.image_seed = 0
        self.sample_seed = 0
        self.wobble_seed = 0
        self.indices: tuple[int, ...] = ()
        self._pick_later = False
        self._listed = False                      # the state has listed the models at least once
        self._waiting: set[str] = set()           # "col:<path>", "row:<path>", "pick"
        self._streams: set[str] = set()           # paths whose diffusion row is still running
        self._stream_later: dict[str, object] = {}  # path -> its stream, sent once the other rows are drawn
        self._said_drawn = self._said_ready = self._said_priors = False
        self.data: tuple[str, tuple | None] = (state.dataset, None)   # the test images': data set, picture shape
        self._build()
        state.models_listed.connect(self._on_listed)
        state.model_changed.connect(self._on_model)

    # -- building ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.new_images_button = QPushButton("New images")
        self.new_images_button.setToolTip("draw another test image of every class")
        self.new_images_button.clicked.connect(self.new_images)
        self.images_label = small(QLabel(""))
        self.pick_edit = QLineEdit()
        self.pick_edit.setPlaceholderText("or test images, e.g. 0, 17, 42")
        self.pick_edit.setMaximumWidth(190)
        self.pick_edit.returnPressed.connect(lambda: self.pick(self.pick_edit.text()))
        self.columns_button = QToolButton()
        self.columns_button.setText("Columns")
        self.columns_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.columns_menu = QMenu(self)
        self.columns_button.setMenu(self.columns_menu)
        self.sample_box = QCheckBox("z = μ + σ·ε")
        self.sample_box.setToolTip("VAE columns decode a fresh draw from the encoder's Gaussian, again and again: "
                                   "the wobble is the encoder's uncertainty (the default decodes μ)")
        self.sample_box.toggled.connect(self._on_sample_toggled)
        self.diff_box = QCheckBox("|x − x̂|")
        self.diff_box.setToolTip("show the error of each reconstruction instead of the reconstruction")
        self.diff_box.toggled.connect(lambda _on: self._redraw_columns())
        self.new_samples_button = QPushButton("New samples")
        self.new_samples_button.setToolTip("every generator draws again, all from one new seed")
        self.new_samples_button.clicked.connect(self.new_samples)
        self.export_button = QPushButton("Export PNG…")
        self.export_button.clicked.connect(self._export_dialog)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for w in (self.new_images_button, self.images_label, self.pick_edit, self.columns_button, self.sample_box,
                  self.diff_box):
            bar.addWidget(w)
        bar.addStretch(1)
        for w in (self.new_samples_button, self.export_button):
            bar.addWidget(w)

        self.recon_title = small(QLabel("<b>Reconstructions</b> · under each: MSE · sharpness"), 9)
        self.original = ReconColumn("", "original")
        self.original.grid.clicked.disconnect()
        self.columns_box = QHBoxLayout()
        self.columns_box.setContentsMargins(0, 0, 0, 0)
        self.columns_box.setSpacing(4)
        self.columns_box.addWidget(self.original)
        self.inside = InsidePanel()
        self.inside.setMaximumHeight(190)
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.recon_title)
        left.addLayout(self.columns_box, 1)
        left.addWidget(self.inside)

        self.prior_title = small(QLabel("<b>Samples from the prior</b>"), 9)
        self.rows_box = QVBoxLayout()
        self.rows_box.setContentsMargins(0, 0, 0, 0)
        self.rows_box.setSpacing(2)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.prior_title)
        right.addLayout(self.rows_box, 1)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.VLine)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addLayout(left, 9)
        body.addWidget(line)
        body.addLayout(right, 11)

        self.status = small(QLabel(""))
        self.status.setObjectName("compareStatus")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addLayout(body, 1)
        layout.addWidget(self.status)
        self._layout_soon = QTimer(self)
        self._layout_soon.setSingleShot(True)
        self._layout_soon.setInterval(0)
        self._layout_soon.timeout.connect(self._place)
        self.wobble = QTimer(self)
        self.wobble.setInterval(WOBBLE_MS)
        self.wobble.timeout.connect(self._wobble)

    def showEvent(self, event) -> None:
        """The work starts when the tab is first shown, so a start on another tab never pays for it."""
        first = not self.has_been_shown
        super().showEvent(event)
        if self.sample_box.isChecked():
            self.wobble.start()
        if first:
            self._on_models(self.state.models)
            if self.state.model is not None:
                self._on_model(self.state.model)
            # the test images after the models: loading the test set is the slow part, and the prior rows, which
            # need none of it, are queued before it
            self._pick_later = bool(self.loading)
            if not self._pick_later:
                self._pick()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.wobble.stop()

    def say(self, text: str) -> None:
        self.status.setText(text)

    # -- which models ------------------------------------------------------------------------------------------
    def _on_models(self, entries) -> None:
        if not self.has_been_shown:
            return
        self._listed = self._listed or bool(entries) or self.state.weights_dir is not None
        for entry in entries:
            path = same_path(entry.path)
            if path in self.infos or path in self.loading:
                continue
            self.names[path] = entry.name
            self.loading.add(path)
            self.failed.pop(path, None)
            self.channel.submit(LoadColumn(entry.path), partial(self._on_info, path),
                                partial(self._on_load_failed, path))

    def _on_model(self, info) -> None:
        """The picker's model, or a file just opened: it joins the comparison if it is new here."""
        if not self.has_been_shown or info is None:
            return
        if self._data_of(info) != self.data:      # the picker's model draws another data set: its test images
            self.data = self._data_of(info)
            self.picked = None
            if "pick" not in self._waiting:
                self._pick()
        path = same_path(info.path)
        if path not in self.infos:
            self.loading.discard(path)
            self._add(path, info)
        self._said_ready = False       # the window asks again after every model change: say it once all is drawn
        self._check()

    def _on_listed(self, entries) -> None:
        self._listed = True
        self._on_models(entries)
        if not entries and self.has_been_shown:
            self.say("No models to compare: open a checkpoint with File > Open.")
        self._check()

    def _on_info(self, path: str, result: Result) -> None:
        self.loading.discard(path)
        if path not in self.infos:
            self._add(path, result.payload)
        self._check()

    def _on_load_failed(self, path: str, message: str) -> None:
        self.loading.discard(path)
        self.failed[path] = message
        self.say(f"{self.names.get(path, path)} could not be opened: {message}")
        self._check()

    def _add(self, path: str, info) -> None:
        self.infos[path] = info
        self.names[path] = info.name
        if info.can(ENCODE):
            column = ReconColumn(path, info.name, self)
            column.clicked.connect(partial(self.look_inside, path))
            self.columns[path] = column
            self._rebuild_columns_menu()
            self._reconstruct(path)
        if info.can(SAMPLE) or info.can(DENOISE):
            row = PriorRow(path, info.name, N_SAMPLES, stream=info.can(DENOISE), parent=self,
                           classes=tuple(info.class_names) if info.conditional else ())
            row.stop_clicked.connect(partial(self.stop, path))
            self.rows[path] = row
            row.describe(info, self._row_note(path))
            self._sample(path)
        self._layout_soon.start()          # one re-layout for all the models that arrive together

    @staticmethod
    def _data_of(info) -> tuple[str, tuple | None]:
        """The test images a model is compared on: its data set at its picture shape (None: the set's own)."""
        return info.dataset, (None if tuple(info.image_shape) == own_shape(info.dataset)
                               else tuple(info.image_shape))

    def fits(self, path: str) -> bool:
        """Whether a column's model draws the test images shown (its data set, its picture shape)."""
        return self._data_of(self.infos[path]) == self.data

    def _row_note(self, path: str) -> str:
        info = self.infos[path]
        if info.conditional:
            names = info.class_names
            how = f", guided at w = {GUIDANCE:g}" if info.any_class else " (its network has no guidance scale)"
            return (f"one row per class, {names[0]} at the top to {names[-1]} at the bottom, each from the same "
                    f"{N_SAMPLES} x_T{how}")
        if not info.can(ENCODE):
            return "no encoder, so no reconstruction column: it only draws from noise"
        if self.gaussian.get(path) is False:
            return "point codes, never pulled towards N(0, I): draws land in holes"
        return ""

    def _place(self) -> None:
        """Columns and rows in the tutorial's order (opened files last), the diffusion rows at the bottom; the
        columns' headers (a PCA figure may come from a model that arrived later)."""
        self._refresh_headers()
        for path in ordered(self.columns, self.names, COLUMN_ORDER):
            column = self.columns[path]
            self.columns_box.removeWidget(column)
            self.columns_box.addWidget(column)
            column.setVisible(path not in self.hidden)
        rows = ordered(self.rows, self.names, ROW_ORDER)
        rows = [p for p in rows if not self.rows[p].stream] + [p for p in rows if self.rows[p].stream]
        for path in rows:
            self.rows_box.removeWidget(self.rows[path])
            self.rows_box.addWidget(self.rows[path], CLASS_ROW_STRETCH if self.rows[path].classes else 1)

    def _refresh_headers(self) -> None:
        others = list(self.infos.values())
        for path, column in self.columns.items():
            column.set_header(self.infos[path], others)
            if not self.fits(path):
                info = self.infos[path]
                column.header.setText(f"{info.name}\ndraws {info.dataset} at "
                                      f"{'×'.join(map(str, info.image_shape))}: not these images")

    def _rebuild_columns_menu(self) -> None:
        self.columns_menu.clear()
        for path in ordered(self.columns, self.names, COLUMN_ORDER):
            action = self.columns_menu.addAction(self.names[path])
            action.setCheckable(True)
            action.setChecked(path not in self.hidden)
            action.toggled.connect(partial(self.set_column_shown, path))

    def set_column_shown(self, path: str, shown: bool) -> None:
        """Add (show) or remove (hide) a model's reconstruction column."""
        path = same_path(path)
        if path not in self.columns:
            return
        if shown:
            self.hidden.discard(path)
            self.columns[path].setVisible(True)
            self._reconstruct(path)
        else:
            self.hidden.add(path)
            self.columns[path].setVisible(False)
            self._waiting.discard(f"col:{path}")
            self._check()
        for action in self.columns_menu.actions():
            if action.text() == self.names[path] and action.isChecked() != shown:
                action.setChecked(shown)

    @property
    def visible_columns(self) -> list[str]:
        return [p for p in ordered(self.columns, self.names, COLUMN_ORDER) if p not in self.hidden]

    # -- the test images ---------------------------------------------------------------------------------------
    def new_images(self) -> None:
        self.image_seed += 1
        self.indices = ()
        self.pick_edit.clear()
        self._pick()

    def pick(self, text: str) -> None:
        """Rows from the test images the user named ("0, 17, 42"); empty text goes back to one per class."""
        try:
            indices = tuple(int(t) for t in text.replace(",", " ").split())
        except ValueError:
            self.say(f"'{text}' is not a list of test image numbers; write them like 0, 17, 42")
            return
        if len(indices) > 16:
            self.say("pick at most 16 test images")
            return
        self.indices = indices
        self._pick()

    def _pick(self) -> None:
        self._waiting.add("pick")
        self.images_label.setText("loading test images…")
        dataset, shape = self.data
        self.channel.submit(PickTestImages(N_IMAGES, self.image_seed, self.indices, dataset, shape),
                            self._on_picked, self._on_pick_failed)

    def _on_pick_failed(self, message: str) -> None:
        self._waiting.discard("pick")
        self.say(message)
        self.images_label.setText(self._images_text())
        self._check()

    def _images_text(self) -> str:
        if self.picked is None:
            return "no test images"
        if self.indices:
            return "test images " + ", ".join(str(int(i)) for i in self.picked["indices"])
        return f"one per class, seed {self.picked['seed']}"

    def _on_picked(self, result: Result) -> None:
        self.picked = result.payload
        self._waiting.discard("pick")
        self.images_label.setText(self._images_text())
        classes = tuple(self.picked["classes"])
        labels = self.picked["labels"]
        captions = [""] * len(self.picked["images"]) if labels is None else [label_text(classes, int(y))
                                                                              for y in labels]
        self.original.grid.set_images(self.picked["images"], columns=1)
        self.original.grid.set_captions(captions)
        self.original.header.setText(f"original\nsharpness\n{mean(self.picked['sharpness']):.3f} (mean)")
        self.inside.clear("Click a reconstruction to see how the image passes through that network.")
        self._refresh_headers()
        for path in self.columns:
            self._reconstruct(path)
        self._check()

    # -- reconstructions ---------------------------------------------------------------------------------------
    def _reconstruct(self, path: str) -> None:
        if self.picked is None or path in self.hidden:
            return
        if not self.fits(path):                  # another data set or picture: its header says so
            self.columns[path].draw(None, None, False)
            self._waiting.discard(f"col:{path}")
            return
        sample = self.sample_box.isChecked()
        self._waiting.add(f"col:{path}")
        self.channel.submit(Reconstruct(self.picked["images"], sample, self.wobble_seed, model=path),
                            partial(self._on_reconstructed, path, self.picked["indices"]),
                            partial(self._on_column_failed, path))

    def _on_reconstructed(self, path: str, indices: np.ndarray, result: Result) -> None:
        if self.picked is None or not np.array_equal(indices, self.picked["indices"]):
            return                                  # rows that are no longer shown
        p = result.payload
        first = path not in self.gaussian
        self.gaussian[path] = bool(p["gaussian"])
        if first and path in self.rows:
            self.rows[path].describe(self.infos[path], self._row_note(path), *self._row_figures(path))
        self.columns[path].draw(self.picked["images"], p, self.diff_box.isChecked())
        self._waiting.discard(f"col:{path}")
        self.column_drawn.emit(path)
        self._check()

    def _on_column_failed(self, path: str, message: str) -> None:
        self._waiting.discard(f"col:{path}")
        self.columns[path].header.setText(f"{self.names[path]}\n{message}")
        self._check()

    def _redraw_columns(self) -> None:
        if self.picked is None:
            return
        for column in self.columns.values():
            if column.result is not None:
                column.draw(self.picked["images"], column.result, self.diff_box.isChecked())

    def _on_sample_toggled(self, on: bool) -> None:
        self.wobble_seed += 1
        for path in self.columns:
            if not on or self.gaussian.get(path, True):
                self._reconstruct(path)
        if on:
            self.wobble.start()
        else:
            self.wobble.stop()

    def _wobble(self) -> None:
        if not self.sample_box.isChecked() or not self.isVisible():
            self.wobble.stop()
            return
        self.wobble_seed += 1
        for path in self.columns:
            if self.gaussian.get(path):
                self._reconstruct(path)

    # -- prior rows --------------------------------------------------------------------------------------------
    def new_samples(self) -> None:
        self.sample_seed += 1
        for path in self.rows:
            self._sample(path)

    def _sample(self, path: str) -> None:
        row = self.rows[path]
        row.result, row.done = None, False
        row.describe(self.infos[path], self._row_note(path), seed=self.sample_seed)
        self.prior_title.setText(f"<b>Samples from the prior</b> · every row from seed {self.sample_seed} · "
                                 "under each: the classifier's label")
        self._waiting.add(f"row:{path}")
        if row.stream:
            self.channel.invalidate(f"compare:prior:{path}", cancel=True)   # no frame of the old run shows
            self._streams.add(path)
            row.show_progress(0, DDIM_STEPS)
            row.say(self._stream_text(path, f"waits for the other rows, then DDIM {DDIM_STEPS} steps"))
            # last, once every other row is drawn: a diffusion step would hold up their decodes
            self._stream_later[path] = PriorStream(n=N_SAMPLES, seed=self.sample_seed, sampler="ddim",
                                                   steps=DDIM_STEPS, model=path, per_class=bool(row.classes),
                                                   guidance=self._row_guidance(path))
            self._check()
            return
        job = PriorSamples(N_SAMPLES, self.sample_seed, model=path)
        self.channel.submit(job, partial(self._on_sampled, path), partial(self._on_row_failed, path))

    def _row_guidance(self, path: str) -> float:
        """The scale a row's per-class samples are drawn at: GUIDANCE for a class-conditional model that also
        draws with no class, 1 for any other (a network with no "no class" input takes no guidance)."""
        info = self.infos[path]
        return GUIDANCE if self.rows[path].classes and info.any_class else 1.0

    def _start_streams(self) -> None:
        for path, job in list(self._stream_later.items()):
            del self._stream_later[path]
            self.channel.submit(job, partial(self._on_sampled, path), partial(self._on_row_failed, path))

    def _row_figures(self, path: str) -> tuple[float | None, float | None, int | None]:
        p = self.rows[path].result
        if p is None or p.get("sharpness") is None:
            return None, None, self.sample_seed
        return mean(p["sharpness"]), p.get("ms_per_sample"), p.get("seed", self.sample_seed)

    def _on_sampled(self, path: str, result: Result) -> None:
        row, p = self.rows[path], result.payload
        info = self.infos[path]
        if row.stream and not p.get("final", True):
            row.show_images(p["x_t"], [""] * len(p["x_t"]))
            row.show_progress(p["index"] + 1, p["total"])
            row.say(self._stream_text(path, f"DDIM step {p['index'] + 1}/{p['total']} · {p['ms']:.0f} ms so far"))
            self.stream_frame.emit(path, int(p["index"]))
            return
        images = p["x0"] if row.stream else p["images"]
        labels, confs = p.get("labels"), p.get("confidences")
        classes = tuple(info.classes)
        if labels is None or row.classes:      # a conditional model's small tiles: the side sums them up
            captions = [""] * len(images)
        else:
            captions = [label_text(classes, int(y)) for y in labels]
        row.result = {"images": images, "labels": labels, "confidences": confs, "sharpness": p["sharpness"],
                      "ms_per_sample": p["ms_per_sample"], "seed": self.sample_seed, "z": p.get("z")}
        row.done = True
        row.show_images(images, captions)
        row.show_progress(None, None)
        note = self._row_note(path)
        if row.classes and labels is not None:
            asked = np.repeat(np.arange(len(row.classes)), len(images) // max(1, len(row.classes)))
            note += (f"; the classifier gives {int((np.asarray(labels) == asked).sum())} of {len(images)} their "
                     "asked class")
        if labels is None and info.classifier_reason and info.has_classifier:     # else the FID line says why
            note = (note + "; " if note else "") + f"no labels: {info.classifier_reason}"
        row.describe(info, note, *self._row_figures(path))
        self._streams.discard(path)
        self._waiting.discard(f"row:{path}")
        self.row_drawn.emit(path)
        self._check()

    def _stream_text(self, path: str, status: str) -> str:
        """A diffusion row's side while it runs: where it is, its recorded FID, why it has no column."""
        note = self._row_note(path)
        return f"{status}<br>{fid_text(self.infos[path])}" + (f"<br>{note}" if note else "")

    def _on_row_failed(self, path: str, message: str) -> None:
        self._streams.discard(path)
        self._waiting.discard(f"row:{path}")
        self.rows[path].show_progress(None, None)
        self.rows[path].say(message)
        self._check()

    def stop(self, path: str) -> None:
        """Stop a diffusion row between two steps; the rest of the view carries on."""
        path = same_path(path)
        row = self.rows.get(path)
        if row is None or path not in self._streams:
            return
        self.channel.invalidate(f"compare:prior:{path}", cancel=True)
        self._stream_later.pop(path, None)
        self._streams.discard(path)
        self._waiting.discard(f"row:{path}")
        step = row.progress.value()
        row.show_progress(None, None)
        row.say(self._stream_text(path, f"stopped at DDIM step {step}/{DDIM_STEPS}; New samples starts it again"))
        self._check()

    # -- inside a network --------------------------------------------------------------------------------------
    def look_inside(self, path: str, row: int) -> None:
        """Show how test image `row` passes through the model of column `path`."""
        path = same_path(path)
        if self.picked is None or path not in self.columns or not 0 <= row < len(self.picked["images"]):
            return
        name = self.names[path]
        index = int(self.picked["indices"][row])
        self.inside.title.setText(f"Looking inside {name}…")
        self._waiting.add("inside")
        self.channel.submit(FeatureMaps(self.picked["images"][row], model=path),
                            partial(self._on_inside, name, f"test image #{index}"), self._on_inside_failed)

    def _on_inside(self, name: str, row_text: str, result: Result) -> None:
        self.inside.show_result(name, row_text, result.payload)
        self._waiting.discard("inside")
        self.inside_shown.emit()
        self._check()

    def _on_inside_failed(self, message: str) -> None:
        self.inside.clear(message)
        self._waiting.discard("inside")
        self._check()

    # -- sessions ------------------------------------------------------------------------------------------------
    def session_state(self) -> CompareSession:
        """The hidden columns, the test images (seed or numbers), the prior rows' seed and the two switches."""
        return CompareSession(tuple(sorted(self.hidden)), self.image_seed, tuple(int(i) for i in self.indices),
                              self.sample_seed, self.sample_box.isChecked(), self.diff_box.isChecked())

    def restore_session(self, state) -> list[str]:
        """The session's columns, images and seeds; drawn again now if the tab has been shown, else when it is."""
        if not isinstance(state, CompareSession):
            return []
        self.hidden = {same_path(p) for p in state.hidden}
        self.image_seed, self.sample_seed = state.image_seed, state.sample_seed
        self.indices = tuple(state.indices)
        self.pick_edit.setText(", ".join(str(i) for i in self.indices))
        self.diff_box.setChecked(state.difference)
        self.sample_box.blockSignals(True)
        self.sample_box.setChecked(state.sample)
        self.sample_box.blockSignals(False)
        for path, column in self.columns.items():
            column.setVisible(path not in self.hidden)
            if path in self.hidden:
                self._waiting.discard(f"col:{path}")
        self._rebuild_columns_menu()
        if self.has_been_shown:
            if self.sample_box.isChecked() and self.isVisible():
                self.wobble.start()
            self._said_ready = False
            self._pick()                     # every shown column follows the new images
            for path in self.rows:
                self._sample(path)
            self._check()
        return []

    # -- ready ---------------------------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._pick_later and not self.loading:
            self._pick_later = False
            self._pick()
        if not self.has_been_shown or self.loading or not (self._listed or self.infos):
            return
        priors = not any(k.startswith("row:") and k[4:] not in self._streams for k in self._waiting)
        if priors and not self._said_priors:
            self._said_priors = True
            self.priors_drawn.emit()
        if priors and self._stream_later:
            self._start_streams()
        if "pick" in self._waiting or self._pick_later:
            return
        drawn = priors and not any(k.startswith("col:") for k in self._waiting)
        if drawn and not self._said_drawn:
            self._said_drawn = True
            self.rows_drawn.emit()
            shown = [p for p in self.visible_columns if self.fits(p)]     # only a network these pictures fit
            if shown and self.inside.result is None:   # a first look inside: the network with the largest code
                self.look_inside(max(shown, key=lambda p: self.infos[p].latent_dim), 0)
        if drawn and not self._waiting and not self._said_ready:
            self._said_ready = True
            self.ready.emit()

    # -- export --------------------------------------------------------------------------------------------------
    def picture(self) -> np.ndarray | None:
        """The grid as one picture: the originals and every shown column side by side, then the prior rows."""
        parts = []
        if self.picked is not None:
            cols = [self.picked["images"]]
            for path in self.visible_columns:
                images = self.columns[path].images
                if images is not None and len(images) == len(cols[0]):
                    cols.append(images)
            stacked = np.stack(cols, axis=1).reshape(-1, *cols[0].shape[1:])      # row-major: image by model
            parts.append(tile(stacked, columns=len(cols), gap=2, fill=1.0))
        rows = [self.rows[p].grid.images for p in ordered(self.rows, self.names, ROW_ORDER)
                if self.rows[p].grid.images is not None]
        same = [r for r in rows if r.shape[1:] == rows[0].shape[1:]] if rows else []
        if rows and len(same) == len(rows):          # one picture shape: the rows as one grid, as always
            parts.append(tile(np.concatenate(rows), columns=N_SAMPLES, gap=2, fill=1.0))
        else:                                        # models of several shapes: a grid a row
            parts += [tile(r, columns=N_SAMPLES, gap=2, fill=1.0) for r in rows]
        if not parts:
            return None
        parts = like_colour(parts)
        width = max(p.shape[1] for p in parts)
        padded = [np.pad(p, ((0, 6), (0, width - p.shape[1]), *[(0, 0)] * (p.ndim - 2)), constant_values=1.0)
                  for p in parts]
        return np.concatenate(padded)[:-6]

    def export_png(self, path: str) -> str:
        picture = self.picture()
        if picture is None:
            raise ExportError("there is nothing to export yet")
        return str(save_png(picture, path, scale=3))

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the comparison", "compare.png", "PNG images (*.png)")
        if not path:
            return
        try:
            saved = self.export_png(path)
        except ExportError as err:
            self.say(str(err))
            return
        self.say(f"saved {saved}")
