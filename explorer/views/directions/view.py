"""Directions: move a picture along a meaning. Pick a picture, then up to four directions with a slider each,
from -3 sigma to +3 sigma; the moved picture is decoded live, the classifier's label along each slider shows where
it flips, and a strip along one direction can be saved as a GIF or PNG.

The directions listed: the model's principal directions (an encoder family's PCA of its encoded test set; a
generator's GANSpace directions) and, for a data set with known factors (shapes), one per factor; the user makes
more: class A -> class B, two groups of picked pictures, an analogy a - b + c.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout,
                               QWidget)

from models.catalog import DECODE, DENOISE, ENCODE

from ...engine.job import Result
from ...state import Arrows
from ...engine.jobs.directions import (ANALOGY, ATTRIBUTE, GROUPS, AlongDirections, DirectionData, FindDirections,
                                       MakeDirection, MovePicture, PictureCode)
from ..base import View
from ..interpolate.image_file import FORMATS, ImageFileError, load_image
from ..tabs import DIRECTIONS
from ..widgets.export import save_strip
from ..widgets.image_grid import ImageGrid
from ..widgets.image_panel import ImagePanel, label_text
from .files import DirectionsFileError, load_directions, save_directions
from .picks import MAX_DIRECTIONS, SLOTS, Picks, Picture
from .session import DirectionsSession, parse
from .slot import SliderSlot

MOVED_KEY = "directions-moved"   # the moved picture: every slider move submits under this one name (coalesced)
PICKER_COUNT = 24
KIND_WORDS = {"principal": "principal", ATTRIBUTE: "attribute", GROUPS: "two groups", ANALOGY: "analogy"}


def has_latent(info) -> bool:
    """A model whose pictures come from a code z it decodes (not a diffusion model's noise)."""
    return info is not None and info.can(DECODE) and not info.can(DENOISE) and info.latent_dim > 0


class DirectionsView(View):
    """`ready`: the directions listed, the picture's code found, the moved picture and the label lines drawn."""

    moved_shown = Signal(int)        # job id of the moved picture now shown
    along_shown = Signal()           # the label lines and the strip are drawn
    directions_changed = Signal()

    test_limit: int | None = None    # the first n test images (tests); None for all

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, DIRECTIONS.name, parent)
        self.info = None
        self.directions: list[DirectionData] = []
        self.picture: Picture | None = None
        self.picks = Picks()
        self.test: dict | None = None
        self.encoder = False
        self.moved_image: np.ndarray | None = None
        self.moved_label: int | None = None
        self.along: dict | None = None
        self._moved_job = 0
        self._pending: set[str] = set()
        self._picker_indices = np.zeros(0, np.int64)
        self._picker_offset = 0
        self._map_pin: int | None = None        # the test image pinned on the map, to move here too
        self._build()
        self._restoring: DirectionsSession | None = None    # a session part, waiting for the directions
        state.model_changed.connect(self._on_model)
        state.test_image_pinned.connect(self._on_map_pin)
        self._on_model(state.model)

    # -- layout ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        self.listed = listed = QGroupBox("Directions")
        ll = QVBoxLayout(listed)
        self.list = QListWidget()
        self.list.setToolTip("Double-click a direction to put it on the first free slider")
        self.list.setMinimumHeight(110)
        ll.addWidget(self.list)
        file_row = QHBoxLayout()
        self.save_dirs_button = QPushButton("Save directions…")
        self.save_dirs_button.setToolTip("NAME.npy (the vectors) and NAME.json (what each is), to load again or share")
        self.load_dirs_button = QPushButton("Load directions…")
        file_row.addWidget(self.save_dirs_button)
        file_row.addWidget(self.load_dirs_button)
        ll.addLayout(file_row)
        side.addWidget(listed, 2)

        self.make = make = QGroupBox("Make a direction")
        ml = QGridLayout(make)
        self.class_a, self.class_b = QComboBox(), QComboBox()
        self.class_button = QPushButton("Add A → B")
        self.class_button.setToolTip("From the mean code of class A's test images to class B's")
        self.class_words = (QLabel("Class"), QLabel("→"))
        ml.addWidget(self.class_words[0], 0, 0)
        ml.addWidget(self.class_a, 0, 1)
        ml.addWidget(self.class_words[1], 0, 2)
        ml.addWidget(self.class_b, 0, 3)
        ml.addWidget(self.class_button, 0, 4)
        self.to_a, self.to_b = QPushButton("Picture → group A"), QPushButton("Picture → group B")
        self.groups_button = QPushButton("Add A → B")
        self.groups_button.setToolTip("From the mean code of the pictures in group A to that of group B")
        self.clear_groups = QPushButton("Clear")
        ml.addWidget(self.to_a, 1, 0, 1, 2)
        ml.addWidget(self.to_b, 1, 2, 1, 2)
        ml.addWidget(self.groups_button, 1, 4)
        self.as_a, self.as_b, self.as_c = (QPushButton(f"Picture = {k}") for k in "abc")
        self.analogy_button = QPushButton("a − b + c")
        self.analogy_button.setToolTip("What takes b to a, applied to c: the slider at its end shows a − b + c")
        ml.addWidget(self.as_a, 2, 0)
        ml.addWidget(self.as_b, 2, 1)
        ml.addWidget(self.as_c, 2, 2, 1, 2)
        ml.addWidget(self.analogy_button, 2, 4)
        self.picks_note = QLabel("")
        self.picks_note.setObjectName("panelCaption")
        self.picks_note.setWordWrap(True)
        ml.addWidget(self.picks_note, 3, 0, 1, 4)
        ml.addWidget(self.clear_groups, 3, 4)
        side.addWidget(make)

        pick = QGroupBox("Pick a picture")
        pl = QVBoxLayout(pick)
        row = QHBoxLayout()
        self.class_box = QComboBox()
        self.more_button = QPushButton("Others")
        self.file_button = QPushButton("File…")
        self.file_button.setToolTip("A picture file, fitted into the model's picture and encoded")
        self.pin_button = QPushButton("Map's pin")
        self.pin_button.setToolTip("The test image pinned on the latent map (click a dot there to pin one)")
        self.pin_button.setEnabled(False)
        row.addWidget(self.class_box, 1)
        row.addWidget(self.more_button)
        row.addWidget(self.pin_button)
        row.addWidget(self.file_button)
        pl.addLayout(row)
        self.seed_row = QWidget()
        sr = QHBoxLayout(self.seed_row)
        sr.setContentsMargins(0, 0, 0, 0)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2 ** 31 - 1)
        sr.addWidget(QLabel("A sample, by its seed"))
        sr.addWidget(self.seed_spin, 1)
        pl.addWidget(self.seed_row)
        self.picker = ImageGrid(columns=8, caption_lines=0)
        self.picker.setMinimumHeight(90)
        self.picker.setToolTip("Click a test image to move it")
        pl.addWidget(self.picker, 1)
        side.addWidget(pick, 2)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(360)

        self.start_panel = ImagePanel("the picture", size=150)
        self.moved_panel = ImagePanel("moved", size=150)
        self.moved_panel.caption.setFixedSize(170, 2 * self.moved_panel.caption.fontMetrics().lineSpacing() + 4)
        pictures = QHBoxLayout()
        pictures.addWidget(self.start_panel)
        pictures.addWidget(self.moved_panel)
        sliders = QVBoxLayout()
        self.slots = [SliderSlot(i) for i in range(SLOTS)]
        for s in self.slots:
            sliders.addWidget(s)
        self.reset_button = QPushButton("All sliders to 0")
        sliders.addWidget(self.reset_button)
        sliders.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(pictures)
        top.addLayout(sliders, 1)

        strip_row = QHBoxLayout()
        self.strip_box = QComboBox()
        self.strip_box.setToolTip("The slider whose direction the strip walks along, -3σ to +3σ")
        for i in range(SLOTS):
            self.strip_box.addItem(f"along slider {i + 1}", i)
        self.strip_label = QLabel("Strip")
        strip_row.addWidget(self.strip_label)
        strip_row.addWidget(self.strip_box)
        strip_row.addStretch(1)
        self.enlarge_box = QCheckBox("4× pixels")
        self.gif_button = QPushButton("Save GIF…")
        self.png_button = QPushButton("Save PNG strip…")
        strip_row.addWidget(self.enlarge_box)
        strip_row.addWidget(self.gif_button)
        strip_row.addWidget(self.png_button)
        self.strip = ImageGrid(columns=13, caption_lines=2)
        self.strip.setMinimumHeight(120)
        self.strip.setMaximumHeight(200)
        self.strip.setToolTip("Click a frame to move its slider there")
        self.status = QLabel("")
        self.status.setObjectName("mapStatus")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        main = QVBoxLayout()
        main.setContentsMargins(0, 0, 0, 0)
        main.addLayout(top, 3)
        main.addLayout(strip_row)
        main.addWidget(self.strip, 1)
        main.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(side_widget)
        layout.addLayout(main, 1)

        self.list.itemDoubleClicked.connect(lambda item: self.use_direction(self.list.row(item)))
        self.save_dirs_button.clicked.connect(self._ask_save_directions)
        self.load_dirs_button.clicked.connect(self._ask_load_directions)
        self.class_button.clicked.connect(lambda: self.make_attribute(self.class_a.currentIndex(),
                                                                      self.class_b.currentIndex()))
        self.to_a.clicked.connect(lambda: self.add_to_group("A"))
        self.to_b.clicked.connect(lambda: self.add_to_group("B"))
        self.groups_button.clicked.connect(self.make_groups)
        self.clear_groups.clicked.connect(self._clear_picks)
        self.as_a.clicked.connect(lambda: self.set_analogy("a"))
        self.as_b.clicked.connect(lambda: self.set_analogy("b"))
        self.as_c.clicked.connect(lambda: self.set_analogy("c"))
        self.analogy_button.clicked.connect(self.make_analogy)
        self.class_box.currentIndexChanged.connect(lambda _: self._fill_picker(reset=True))
        self.more_button.clicked.connect(lambda: self._fill_picker(reset=False))
        self.picker.clicked.connect(self._picked)
        self.file_button.clicked.connect(self._ask_file)
        self.pin_button.clicked.connect(lambda: self.pick_test_image(self._map_pin))
        self.seed_spin.valueChanged.connect(self.pick_seed)
        for s in self.slots:
            s.moved.connect(self._move)
            s.settled.connect(self._along)
        self.reset_button.clicked.connect(self.reset_sliders)
        self.strip_box.currentIndexChanged.connect(lambda _: self._draw_strip())
        self.strip.clicked.connect(self._strip_clicked)
        self.gif_button.clicked.connect(lambda: self._ask_export("gif"))
        self.png_button.clicked.connect(lambda: self._ask_export("png"))

    # -- small helpers -----------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)

    def _done(self, what: str) -> None:
        if what in self._pending:
            self._pending.discard(what)
            if not self._pending:
                self.ready.emit()

    def _classes(self) -> tuple[str, ...]:
        if self.test is not None and self.test.get("classes"):
            return tuple(self.test["classes"])
        return tuple(self.info.classes) if self.info is not None else ()

    def _data(self) -> dict:
        return {"dataset": self.info.dataset, "limit": self.test_limit}

    def active(self) -> list[tuple[int, DirectionData, float]]:
        """(slot, direction, amount in sigma) of every slider with a direction."""
        return [(i, self.directions[s.direction_index], s.value) for i, s in enumerate(self.slots)
                if 0 <= s.direction_index < len(self.directions)]

    # -- the model ---------------------------------------------------------------------------------------------
    def _on_model(self, info) -> None:
        self.channel.invalidate(cancel=True)
        self.info = info
        self.target = info.path if info is not None else None
        self.directions, self.picture, self.test, self.along = [], None, None, None
        self.picks = Picks()
        self.moved_image = self.moved_label = None
        self._restoring = None
        if info is not None:
            self.state.arrows_changed.emit(info.path, None)
        self._show_directions()
        self._clear_pictures()
        self._show_picks()
        if info is None:
            self.say("Open a model to move its pictures along directions in its latent space.")
            return
        latent = has_latent(info)
        self.encoder = latent and info.can(ENCODE)
        self._enable(latent)
        self._show_moving(latent)
        self.seed_row.setVisible(latent and not self.encoder)
        for w in (self.file_button, self.pin_button, self.class_a, self.class_b, self.class_button,
                  *self.class_words):
            w.setVisible(self.encoder)
        for w in (self.class_box, self.more_button, self.picker):
            w.setVisible(self.encoder or not latent)
        if not latent:
            self._pending = {"directions"}
            self.caption_changed.emit("A diffusion model starts from noise the size of the picture, not from a "
                                      "small code, so it has no directions to move along here.")
            self.say(f"{info.name} has no latent code to move: open an autoencoder, a VAE, a GAN or a VAE-GAN. "
                     "Its test pictures are shown here.")
            self.when_shown(self._start)
            return
        self.caption_changed.emit(DIRECTIONS.caption if self.encoder else
                                  "A generator's directions, found GANSpace's way: the main ways its first layer "
                                  "varies over many samples, carried back to z. Pick a sample by its seed and "
                                  "move it.")
        self._pending = {"directions", "moved", "along"}
        self.when_shown(self._start)

    def _enable(self, on: bool) -> None:
        for w in (self.list, self.save_dirs_button, self.load_dirs_button, self.to_a, self.to_b, self.groups_button,
                  self.as_a, self.as_b, self.as_c, self.analogy_button, self.reset_button, self.gif_button,
                  self.png_button):
            w.setEnabled(on)
        for s in self.slots:
            s.setEnabled(on)

    def _show_moving(self, on: bool) -> None:
        """Everything that moves a picture: hidden for a model without a small code."""
        for w in (self.listed, self.make, self.moved_panel, *self.slots, self.reset_button, self.strip_label,
                  self.strip_box, self.enlarge_box, self.gif_button, self.png_button, self.strip):
            w.setVisible(on)

    def _start(self) -> None:
        if self.info is None:
            return
        if has_latent(self.info):
            self.say("Finding the model's directions…")
        self.submit(FindDirections(**self._data()), self._on_found)

    def _on_found(self, result: Result) -> None:
        p = result.payload
        self.directions = list(p["directions"])
        self.test = p if p["encoder"] or not p["latent"] else None
        classes = tuple(p["classes"] or ())
        for box in (self.class_a, self.class_b):
            box.clear()
            box.addItems(list(classes))
        if len(classes) > 1:
            self.class_b.setCurrentIndex(len(classes) - 1)
        labelled = self.test is not None and self.test.get("labels") is not None and len(classes) > 1
        self.class_button.setEnabled(labelled)
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItem("All test images", -1)
        for i, name in enumerate(classes if labelled else ()):
            self.class_box.addItem(name, i)
        self.class_box.blockSignals(False)
        self._fill_picker(reset=True)
        if not p["latent"]:                       # a diffusion model: its pictures, and no code to move them
            self._show_plain(0)
            self._done("directions")
            return
        restoring, self._restoring = self._restoring, None
        if restoring is None:                     # a new model's directions: every slider starts at 0
            for s in self.slots:
                s.set_value_quietly(0.0)
        self._show_directions(keep=[0, 1] if restoring is None else None)
        self.directions_changed.emit()
        self._done("directions")
        first = "GANSpace" if not self.encoder else "principal"
        self.say(f"{len(self.directions)} directions ({first} first), found in {p['ms']:.0f} ms. "
                 + ("" if self.info.has_classifier else f"No labels: {self.info.classifier_reason}."))
        if restoring is not None:
            self._apply_restore(restoring)
        elif self.encoder:
            self.pick_test_image(0)
        else:
            self.pick_seed(self.seed_spin.value())

    # -- the directions ----------------------------------------------------------------------------------------
    def _show_directions(self, keep: list[int] | None = None) -> None:
        """List the directions and refill each slider's picker; `keep` chooses slots' directions (else as were)."""
        chosen = [s.direction_index for s in self.slots] if keep is None else keep + [-1] * (SLOTS - len(keep))
        self.list.clear()
        for d in self.directions:
            item = QListWidgetItem(f"{d.name}  ·  {KIND_WORDS.get(d.kind, d.kind)}")
            item.setToolTip(f"{d.source}; σ = {d.sigma:.3g}, length {d.length:.2f}σ")
            self.list.addItem(item)
        for s, c in zip(self.slots, chosen):
            s.set_directions(self.directions, c if c < len(self.directions) else -1)

    def add_direction(self, d: DirectionData, use: bool = True) -> int:
        """List a new direction (at most MAX_DIRECTIONS); put it on a slider when `use`. Returns its index."""
        if len(self.directions) >= MAX_DIRECTIONS:
            self.say(f"At most {MAX_DIRECTIONS} directions: this one is not added.")
            return -1
        self.directions.append(d)
        self._show_directions()
        self.directions_changed.emit()
        index = len(self.directions) - 1
        if use:
            self.use_direction(index)
        return index

    def use_direction(self, index: int, slot: int | None = None) -> None:
        """Put direction `index` on slider `slot` (default: the first free one, else the last)."""
        if not 0 <= index < len(self.directions):
            return
        if slot is None:
            free = [i for i, s in enumerate(self.slots) if s.direction_index < 0]
            slot = free[0] if free else SLOTS - 1
        self.slots[slot].set_value(0.0)
        self.slots[slot].choose(index)

    def save_directions(self, path: str | Path) -> bool:
        """Every listed direction to NAME.npy and NAME.json; False with one sentence in the status line if not."""
        try:
            description, vectors = save_directions(self.directions, path)
        except DirectionsFileError as err:
            self.say(f"{str(err)[:1].upper()}{str(err)[1:]}.")
            return False
        self.say(f"Saved {len(self.directions)} directions to {vectors.name} and {description.name}.")
        return True

    def load_directions(self, path: str | Path) -> bool:
        """Add the directions of NAME.npy and NAME.json to the list; anything wrong is one sentence, nothing added."""
        if self.info is None or not has_latent(self.info):
            return False
        try:
            loaded = load_directions(path, self.info.latent_dim)
        except DirectionsFileError as err:
            self.say(f"{str(err)[:1].upper()}{str(err)[1:]}; no direction was added.")
            return False
        room = MAX_DIRECTIONS - len(self.directions)
        for d in loaded[:room]:
            self.add_direction(d, use=False)
        self.say(f"Loaded {min(room, len(loaded))} directions from {Path(path).name}"
                 + (f"; {len(loaded) - room} left out (at most {MAX_DIRECTIONS})." if len(loaded) > room else "."))
        return True

    def _ask_save_directions(self) -> None:
        name = (self.info.name if self.info is not None else "model") + "-directions.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save the directions", name, "Directions (*.json)")
        if path:
            self.save_directions(path)

    def _ask_load_directions(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load directions", "", "Directions (*.json *.npy)")
        if path:
            self.load_directions(path)

    def make_attribute(self, a: int, b: int) -> None:
        """A class direction: from class a's mean code to class b's."""
        if a == b:
            self.say("Pick two different classes.")
            return
        self.say("Making the class direction…")
        self.submit(MakeDirection(ATTRIBUTE, a=int(a), b=int(b), **self._data()), self._on_made)

    def make_groups(self) -> None:
        if not self.picks.groups_ready():
            self.say("Put at least one picture in each group first (the buttons under the class pickers).")
            return
        a = np.stack([p.z for p in self.picks.group_a])
        b = np.stack([p.z for p in self.picks.group_b])
        name = f"group A ({len(a)}) → group B ({len(b)})"
        self.submit(MakeDirection(GROUPS, codes_a=a, codes_b=b, name=name, **self._data()), self._on_made)

    def make_analogy(self) -> None:
        """a - b as a direction, c as the picture, its slider at the full length: the moved picture is a - b + c."""
        if not self.picks.analogy_ready():
            self.say("Set a, b and c first: pick a picture, then 'Picture = a', and so on.")
            return
        a, b, c = (self.picks.analogy[k] for k in "abc")
        name = f"{a.source} − {b.source}"
        self.submit(MakeDirection(ANALOGY, codes_a=a.z[None], codes_b=b.z[None], name=name, **self._data()),
                    lambda r: self._on_analogy(c, r))

    def _on_made(self, result: Result) -> int:
        d: DirectionData = result.payload
        index = self.add_direction(d)
        self.say(f"Added {d.name} ({d.source}); its whole length is {d.length:.2f}σ.")
        return index

    def _on_analogy(self, c: Picture, result: Result) -> None:
        index = self._on_made(result)
        if index < 0:
            return
        self._set_picture(c)
        slot = next(i for i, s in enumerate(self.slots) if s.direction_index == index)
        self.slots[slot].set_value(self.directions[index].length)
        self.say(f"The moved picture is a − b + c: {result.payload.name} added to {c.source} "
                 f"(slider {slot + 1} at {self.directions[index].length:.2f}σ)."
                 + (" It runs off the slider's ±3σ, which stops at 3σ." if self.directions[index].length > 3 else ""))

    # -- picks for groups and analogies ---------------------------------------------------------------------------
    def add_to_group(self, which: str) -> None:
        if self.picture is None:
            return
        (self.picks.group_a if which == "A" else self.picks.group_b).append(self.picture)
        self._show_picks()

    def set_analogy(self, key: str) -> None:
        if self.picture is not None:
            self.picks.analogy[key] = self.picture
            self._show_picks()

    def _clear_picks(self) -> None:
        self.picks = Picks()
        self._show_picks()

    def _show_picks(self) -> None:
        self.picks_note.setText(self.picks.summary())

    # -- the picture -------------------------------------------------------------------------------------------
    def pick_test_image(self, index: int) -> None:
        if self.info is None or not self.encoder:
            return
        self.submit(PictureCode(index=int(index), **self._data()), self._on_picture)

    def _on_map_pin(self, index: int) -> None:
        self._map_pin = int(index)
        self.pin_button.setEnabled(True)
        self.pin_button.setToolTip(f"Move test image {index}, pinned on the latent map")

    def pick_seed(self, seed: int) -> None:
        if self.info is None or not has_latent(self.info):
            return
        self.submit(PictureCode(seed=int(seed), **self._data()), self._on_picture)

    def pick_file(self, path: str | Path) -> bool:
        """Encode a picture file and move it; an unreadable file changes nothing and says why."""
        if self.info is None or not self.encoder:
            self.say("This model has no encoder, so a file's picture has no code here: pick a sample by its seed.")
            return False
        try:
            image = load_image(path, tuple(self.info.image_shape))
        except ImageFileError as err:
            self.say(str(err) + "; the picture is unchanged.")
            return False
        self.submit(PictureCode(image=image, source=Path(path).name, **self._data()), self._on_picture)
        return True

    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Move a picture file", "", FORMATS)
        if path:
            self.pick_file(path)

    def _picked(self, i: int) -> None:
        if 0 <= i < len(self._picker_indices):
            if self.encoder:
                self.pick_test_image(int(self._picker_indices[i]))
            else:
                self._show_plain(int(self._picker_indices[i]))

    def _show_plain(self, index: int) -> None:
        """A test picture of a model without a small code, shown as it is (there is nothing to move)."""
        if self.test is None or not 0 <= index < len(self.test["images"]):
            return
        self.start_panel.set_image(self.test["images"][index].astype(np.float32) / 255.0)
        label = "" if self.test["labels"] is None else \
            f" ({label_text(self._classes(), int(self.test['labels'][index]), None)})"
        self.start_panel.set_caption(f"test image {index}{label}")

    def _fill_picker(self, reset: bool) -> None:
        if self.test is None or self.test.get("images") is None:
            self.picker.set_images(None)
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

    def _on_picture(self, result: Result) -> None:
        p = result.payload
        self._set_picture(Picture(np.asarray(p["z"], np.float32), p["image"], p["source"], p["index"], p["seed"]))

    def _set_picture(self, picture: Picture) -> None:
        self.picture = picture
        self.start_panel.set_image(picture.image)
        name = picture.source
        if picture.index is not None and self.test is not None and self.test.get("labels") is not None:
            name += f" ({label_text(self._classes(), int(self.test['labels'][picture.index]), None)})"
        self.start_panel.set_caption(name)
        self._move()
        self._along()

    def _clear_pictures(self) -> None:
        self.start_panel.set_image(None)
        self.start_panel.set_caption("")
        self.moved_panel.set_image(None)
        self.moved_panel.set_caption("")
        self.strip.set_images(None)
        for s in self.slots:
            s.line.draw(None, None, None, 0.0)

    # -- moving ------------------------------------------------------------------------------------------------
    def _move(self) -> None:
        """Decode the picture moved by every slider: one request name, so a drag's waiting moves coalesce."""
        if self.picture is None:
            return
        act = self.active()
        job = MovePicture(MOVED_KEY, self.picture.z, directions=tuple(d for _, d, _ in act),
                          amounts=tuple(a for _, _, a in act))
        self.submit(job, self._on_moved)
        self._send_arrows(act)

    def _send_arrows(self, act: list[tuple[int, DirectionData, float]]) -> None:
        """The picture, each slider's +3 sigma end and the moved code, for the map to draw (numpy, no decode)."""
        z = self.picture.z
        moved = z + sum((a * d.sigma * d.unit for _, d, a in act), np.zeros_like(z))
        ends = np.stack([z + 3.0 * d.sigma * d.unit for _, d, _ in act]) if act else np.zeros((0, len(z)), np.float32)
        self.state.arrows_changed.emit(self.info.path, Arrows(z, ends.astype(np.float32), tuple(i for i, _, _ in act),
                                                              moved.astype(np.float32)))

    def _on_moved(self, result: Result) -> None:
        p = result.payload
        if self._moved_job != result.job_id:
            self.moved_panel.set_image(p.images[0])
            self._moved_job = result.job_id
        self.moved_image = p.images[0]
        if p.labelled:
            label = None if p.labels is None else int(p.labels[0])
            conf = None if p.confidences is None else float(p.confidences[0])
            self.moved_label = label
            if label is None and self.info is not None and not self.info.has_classifier:
                self.moved_panel.set_caption("no label", self.info.classifier_reason)
            else:
                self.moved_panel.set_label(self._classes(), label, conf)
        self.moved_shown.emit(result.job_id)
        if result.final:
            self._done("moved")

    def reset_sliders(self) -> None:
        for s in self.slots:
            s.set_value_quietly(0.0)
        self._move()
        self._along()

    def _along(self) -> None:
        """Each slider swept from -3 sigma to +3 sigma (the others where they are): the label lines and strip."""
        if self.picture is None:
            return
        act = self.active()
        job = AlongDirections(self.picture.z, directions=tuple(d for _, d, _ in act),
                              amounts=tuple(a for _, _, a in act))
        self.submit(job, lambda r: self._on_along([i for i, _, _ in act], r))

    def _on_along(self, slots: list[int], result: Result) -> None:
        if not self.channel.is_current(result):
            return
        p = result.payload
        self.along = {**p, "slots": slots}
        classes = self._classes()
        for i, s in enumerate(self.slots):
            if i not in slots or p["labels"] is None:
                s.line.draw(None, None, None, 0.0)
                if i in slots and self.info is not None and not self.info.has_classifier:
                    s.text.setText(f"No label line: {self.info.classifier_reason}.")
                continue
            k = slots.index(i)
            s.line.draw(p["amounts"], p["labels"][k], p["confidences"][k], s.value)
            s.text.setText(self._flip_text(classes, p["amounts"], p["labels"][k], s))
        self._draw_strip()
        self.along_shown.emit()
        self._done("along")

    @staticmethod
    def _flip_text(classes, amounts, labels, s: SliderSlot) -> str:
        here = int(labels[int(np.argmin(np.abs(np.asarray(amounts) - s.value)))])
        down, up = s.line.flip_at
        parts = [f"here: {label_text(classes, here, None)}"]
        if up is not None:
            j = int(np.searchsorted(amounts, up))
            parts.append(f"becomes {label_text(classes, int(labels[j]), None)} at {up:+.2f}σ")
        if down is not None:
            j = int(np.searchsorted(amounts, down)) - 1
            parts.append(f"{label_text(classes, int(labels[j]), None)} below {down:+.2f}σ")
        if up is None and down is None:
            parts.append("the label holds from −3σ to +3σ")
        return "; ".join(parts)

    # -- the strip ---------------------------------------------------------------------------------------------
    def strip_frames(self) -> np.ndarray | None:
        """The frames along the strip's slider, -3 sigma ... +3 sigma; None when that slider has no direction."""
        if self.along is None or self.along["images"] is None:
            return None
        slot = int(self.strip_box.currentData() or 0)
        if slot not in self.along["slots"]:
            return None
        return self.along["images"][self.along["slots"].index(slot)]

    def _draw_strip(self) -> None:
        frames = self.strip_frames()
        if frames is None:
            self.strip.set_images(None)
            return
        k = self.along["slots"].index(int(self.strip_box.currentData() or 0))
        self.strip.set_images(frames, columns=len(frames))
        classes, captions = self._classes(), []
        for j, a in enumerate(self.along["amounts"]):
            label = "" if self.along["labels"] is None else label_text(classes, int(self.along["labels"][k][j]), None)
            captions.append(f"{a:+.1f}σ\n{label}")
        self.strip.set_captions(captions)

    def _strip_clicked(self, j: int) -> None:
        if self.along is not None and 0 <= j < len(self.along["amounts"]):
            self.slots[int(self.strip_box.currentData() or 0)].set_value(float(self.along["amounts"][j]))

    def export_gif(self, path: str | Path) -> bool:
        return self._export(path, "gif")

    def export_png(self, path: str | Path) -> bool:
        return self._export(path, "png")

    def _export(self, path: str | Path, kind: str) -> bool:
        frames = self.strip_frames()
        if frames is None:
            self.say("There is no strip to save: choose a direction on the strip's slider.")
            return False
        saved, sentence = save_strip(frames, path, kind, scale=4 if self.enlarge_box.isChecked() else 1)
        self.say(sentence)
        return saved

    def _ask_export(self, kind: str) -> None:
        name = (self.info.name if self.info is not None else "direction") + f"-direction.{kind}"
        flt = "GIF (*.gif)" if kind == "gif" else "PNG (*.png)"
        path, _ = QFileDialog.getSaveFileName(self, "Save the strip", name, flt)
        if path:
            (self.export_gif if kind == "gif" else self.export_png)(path)

    # -- sessions ----------------------------------------------------------------------------------------------
    def session_state(self) -> DirectionsSession:
        """The picked picture (its code, and how to find it again), the directions with their vectors, each
        slider's direction and value, and the strip's slider."""
        return DirectionsSession(self.picture, tuple(self.directions),
                                 tuple((s.direction_index, s.value) for s in self.slots),
                                 int(self.strip_box.currentData() or 0))

    def restore_session(self, state) -> list[str]:
        """Bring back what `session_state` kept, on the model now open (a raw part is checked by session.parse
        first). When it does not fit this model, nothing changes and the answer says why in one sentence."""
        if isinstance(state, dict):
            from ...session import SessionError

            try:
                state = parse(state)
            except SessionError as err:
                return [str(err)[:1].upper() + str(err)[1:]]
        if not isinstance(state, DirectionsSession):
            return []
        if self.info is None or not has_latent(self.info):
            return ["The Directions tab needs a model with a latent code, so its part of the session is not used."]
        d = self.info.latent_dim
        sizes = {len(v.vector) for v in state.directions} | ({len(state.picture.z)} if state.picture else set())
        if sizes - {d}:
            return [f"The session's directions are for a {max(sizes)}-d latent and {self.info.name}'s is {d}-d, so "
                    "the Directions tab is unchanged."]
        if not self.directions:
            self._restoring = state               # the model's own directions first, then these over them
        else:
            self._apply_restore(state)
        return []

    def _apply_restore(self, state: DirectionsSession) -> None:
        self.directions = list(state.directions) or self.directions
        sliders = list(state.sliders) + [(-1, 0.0)] * (SLOTS - len(state.sliders))
        self._show_directions(keep=[i for i, _ in sliders])
        for s, (_, value) in zip(self.slots, sliders):
            s.set_value_quietly(value)
        self.strip_box.setCurrentIndex(state.strip)
        self.directions_changed.emit()
        picture = state.picture
        if picture is None:
            if self.encoder:
                self.pick_test_image(0)
            else:
                self.pick_seed(self.seed_spin.value())
            return
        if picture.seed is not None and not self.encoder:
            self.pick_seed(picture.seed)
            return
        if picture.image is None and self.test is not None and picture.index is not None \
                and 0 <= picture.index < len(self.test["images"]):
            picture = Picture(picture.z, self.test["images"][picture.index].astype(np.float32) / 255.0,
                              picture.source, picture.index, picture.seed)
        self._set_picture(picture)
