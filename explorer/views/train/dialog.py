"""Train → New model…: the settings of a run, with defaults per family and a measured estimate of its length.

The dialog builds no model itself: the estimate is a few warm-up steps timed on the engine (EstimateTraining),
so it measures this device with these settings. The data sets offered are the catalog's (those the engine does
not find on disk are downloaded when the run starts) and "a folder…" of the user's own pictures; the picture they
become (image size, channels) is the model's image_shape, `dataset_info(name).shape(size, channels)`, as the
command line's --image-size and --channels make it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from models.catalog import (DATASET_NAMES, FOLDER_PREFIX, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, NAMED_DATASETS,
                            data_classes, dataset_info, dataset_name, knob_named)
from models.weights import user_models_dir

from ...engine.jobs.train import EstimateTraining, TrainingChoices

LR_DECAY, LR_D = knob_named("lr_decay_from"), knob_named("lr_d")
P_UNCOND = knob_named("p_uncond")       # the families that can learn classes (with classifier-free guidance)
CAPTION = ("Pick a family and the data it learns from; the forger-and-detective families can later be stepped "
           "one move at a time.")


@dataclass(frozen=True)
class FamilyPlan:
    """A family's sensible defaults on a small machine: a run of a few minutes that already shows something."""

    title: str
    latent: int | None            # None: the family has no latent size to choose (a DDPM's latent is the image)
    subset: int
    epochs: float
    batch: int
    lr: float
    base: dict = field(default_factory=dict)   # config fields besides the latent size
    decay_percent: int = 0        # the rates fall linearly to zero over this last part of the run

    def config(self, latent: int | None) -> dict:
        cfg = dict(self.base)
        if self.latent is not None and latent is not None:
            cfg["latent_dim"] = int(latent)
        return cfg


PLANS: dict[str, FamilyPlan] = {
    "vae": FamilyPlan("Variational autoencoder", 2, 10_000, 2, 128, 1e-3, {"hidden": [512, 256]}),
    "ae": FamilyPlan("Autoencoder", 2, 10_000, 2, 128, 1e-3, {"hidden": [512, 256]}),
    "cae": FamilyPlan("Convolutional autoencoder", 16, 10_000, 1, 128, 1e-3, {"channels": [16, 32]}),
    # the forger and the detective circle each other; falling rates let them settle, as the shipped GAN's did
    "gan": FamilyPlan("GAN (forger and detective)", 16, 10_000, 2, 64, 2e-4, {"channels": [32, 64]}, 20),
    "vaegan": FamilyPlan("VAE-GAN", 16, 10_000, 1, 64, 2e-4, {"channels": [32, 64]}, 20),
    "ddpm": FamilyPlan("Diffusion model (DDPM)", None, 5_000, 1, 64, 2e-4,
                       {"base_channels": 16, "channel_mults": [1, 2], "timesteps": 1000}),
}
DATASET_TITLES = {name: info.title for name, info in NAMED_DATASETS.items()}
FOLDER_CHOICE = "folder…"            # the data set entry that asks for a folder of the user's own pictures


def shape_text(shape: tuple[int, int, int]) -> str:
    """'32×32 colour', '28×28 grey': a (C, H, W) in words."""
    c, h, w = shape
    return f"{h}×{w} {'grey' if c == 1 else 'colour'}"


@dataclass(frozen=True)
class TrainRequest:
    """What the dialog asks for, in plain values."""

    family: str
    config: dict
    dataset: str
    subset: int
    epochs: float
    batch_size: int
    lr: float
    seed: int
    device: str                  # "" the engine's device
    out: str
    knobs: dict[str, float] = field(default_factory=dict)   # models.catalog.KNOBS by name


def duration_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def free_name(folder: Path, stem: str) -> Path:
    """folder/stem.safetensors, or stem-2, stem-3… : never an existing model's file."""
    path = folder / f"{stem}.safetensors"
    k = 2
    while path.exists() or path.with_name(f"{path.stem}.state.safetensors").exists():
        path = folder / f"{stem}-{k}.safetensors"
        k += 1
    return path


class TrainDialog(QDialog):
    """The settings of a new run; `request()` once accepted. `estimated(ms_per_step)` when the timing is in."""

    estimated = Signal(float)

    def __init__(self, engine, parent: QWidget | None = None, folder: str | Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a new model")
        self.setObjectName("trainDialog")
        self.engine = engine
        self.channel = engine.channel("train-dialog")
        self._folder = Path(folder) if folder else None
        self._out_edited = False
        self.step_ms: float | None = None

        self.family = QComboBox()
        for name, plan in PLANS.items():
            self.family.addItem(plan.title, name)
        self.dataset = QComboBox()
        for name in DATASET_NAMES:
            self.dataset.addItem(DATASET_TITLES.get(name, name), name)
        self.dataset.addItem("a folder of your pictures…", FOLDER_CHOICE)
        self.dataset.setToolTip("What the model learns from: a named data set, or a folder of your own pictures "
                                "(labelled by subfolder when it has subfolders)")
        self._data_index = 0
        self.data_note = QLabel("")
        self.data_note.setWordWrap(True)
        self.image_size = QSpinBox()
        self.image_size.setRange(MIN_IMAGE_SIZE - 1, MAX_IMAGE_SIZE)
        self.image_size.setSpecialValueText("the data set's own")
        self.image_size.setSuffix(" pixels")
        self.image_size.setValue(MIN_IMAGE_SIZE - 1)
        self.image_size.setToolTip("The side the pictures are made (resized with the aspect kept, then "
                                   "centre-cropped), where the data set allows; the families build at 28, 32 and 64")
        self.channels = QComboBox()
        self.channels.addItem("the data set's own", 0)
        self.channels.addItem("1 (grey)", 1)
        self.channels.addItem("3 (colour)", 3)
        self.picture_note = QLabel("")
        self.subset = QSpinBox()
        self.subset.setRange(64, 60_000)
        self.subset.setSingleStep(1000)
        self.latent = QSpinBox()
        self.latent.setRange(1, 256)
        self.epochs = QDoubleSpinBox()
        self.epochs.setRange(0.05, 500)
        self.epochs.setDecimals(2)
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.decay = QSpinBox()
        self.decay.setRange(0, 100)
        self.decay.setSuffix(" % of the steps")
        self.decay.setSpecialValueText("none: the rates stay as set")
        self.decay.setToolTip("Every learning rate falls linearly to zero over this last part of the run "
                              "(0: the rates stay as they are).")
        self.lr_d = QDoubleSpinBox()
        self.lr_d.setDecimals(5)
        self.lr_d.setRange(1e-5, 1.0)
        self.lr_d.setSingleStep(1e-4)
        self.lr_d.setToolTip("The detective's own learning rate: a faster detective (TTUR) can keep a forger "
                             "honest.")
        self.conditional = QCheckBox("class-conditional, with classifier-free guidance")
        self.conditional.setToolTip("The network also learns each image's class, and 'no class' in one image of "
                                    "ten, so it can be asked for a class and pulled towards it with a guidance "
                                    "scale (Ho & Salimans 2022).")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.device = QComboBox()
        name = getattr(engine, "device_name", "cpu") or "cpu"
        self.device.addItem(f"{name} (the app's device)", "")
        if not name.startswith("cpu"):
            self.device.addItem("cpu", "cpu")
        self.out = QLineEdit()
        self.out.textEdited.connect(lambda _: setattr(self, "_out_edited", True))
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(choose)
        self.estimate = QLabel("Measuring a few steps…")
        self.estimate.setObjectName("trainEstimate")
        self.estimate.setWordWrap(True)

        caption = QLabel(CAPTION)
        caption.setObjectName("dialogCaption")
        form = QFormLayout()
        form.addRow("Family", self.family)
        form.addRow("Data set", self.dataset)
        form.addRow("", self.data_note)
        form.addRow("Image size", self.image_size)
        form.addRow("Channels", self.channels)
        form.addRow("", self.picture_note)
        form.addRow("Subset (images)", self.subset)
        form.addRow("Latent size", self.latent)
        form.addRow("Classes", self.conditional)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch)
        form.addRow("Learning rate", self.lr)
        form.addRow("Detective's learning rate", self.lr_d)
        form.addRow("Rates fall to zero over the last", self.decay)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("Save as", out_row)
        form.addRow("Estimate", self.estimate)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        self.problem = QLabel("")
        self.problem.setObjectName("trainProblem")
        self.problem.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(caption)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self._measure)
        self.family.currentIndexChanged.connect(self._family_changed)
        for box in (self.latent, self.batch):
            box.valueChanged.connect(lambda _: self._debounce.start())
        for box in (self.subset, self.epochs):
            box.valueChanged.connect(lambda _: self._show_estimate())
        self.device.currentIndexChanged.connect(lambda _: self._debounce.start())
        self.conditional.toggled.connect(lambda _: self._conditional_changed())
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        self.image_size.valueChanged.connect(lambda _: self._picture_changed())
        self.channels.currentIndexChanged.connect(lambda _: self._picture_changed())
        self._lr_before = self.lr.value()
        self.lr.valueChanged.connect(self._lr_changed)
        self._family_changed()
        self._picture_changed()
        self.channel.submit(TrainingChoices(), self._on_choices)

    # -- choices -------------------------------------------------------------------------------------------------
    @property
    def family_name(self) -> str:
        return self.family.currentData()

    def select_family(self, name: str) -> None:
        self.family.setCurrentIndex(self.family.findData(name))

    def _family_changed(self, *_) -> None:
        plan = PLANS[self.family_name]
        self.latent.setEnabled(plan.latent is not None)
        if plan.latent is not None:
            self.latent.setValue(plan.latent)
        self.subset.setValue(plan.subset)
        self.epochs.setValue(plan.epochs)
        self.batch.setValue(plan.batch)
        self.lr.setValue(plan.lr)
        self.lr_d.setEnabled(LR_D.applies_to(self.family_name))
        self.lr_d.setValue(plan.lr)
        self.decay.setValue(plan.decay_percent)
        self._conditional_changed()

    @property
    def dataset_name(self) -> str:
        """The data set chosen, as --data takes it ("folder:" and an absolute path for a folder)."""
        return self.dataset.currentData() or "fashion-mnist"

    def choose_folder(self, folder: str | Path) -> None:
        """Train on a folder of the user's pictures: it joins the list (once) and is chosen."""
        name = dataset_name(f"{FOLDER_PREFIX}{folder}")
        if self.dataset.findData(name) < 0:
            self.dataset.blockSignals(True)
            self.dataset.insertItem(self.dataset.count() - 1, f"folder: {name[len(FOLDER_PREFIX):]}", name)
            self.dataset.blockSignals(False)
        self.dataset.setCurrentIndex(self.dataset.findData(name))

    def _dataset_changed(self, index: int) -> None:
        if self.dataset.itemData(index) == FOLDER_CHOICE:
            folder = QFileDialog.getExistingDirectory(self, "Train on the pictures in a folder")
            self.dataset.blockSignals(True)
            self.dataset.setCurrentIndex(self._data_index)     # back, unless a folder was picked
            self.dataset.blockSignals(False)
            if folder:
                self.choose_folder(folder)
            return
        self._data_index = index
        self._picture_changed()

    def image_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) the model draws: the data set's picture at the size and channels asked; ValueError (one
        sentence) for one the data set cannot give."""
        size = self.image_size.value()
        return dataset_info(self.dataset_name).shape(size if size >= MIN_IMAGE_SIZE else None,
                                                     self.channels.currentData() or None)

    def _picture_changed(self) -> None:
        try:
            self.picture_note.setText(f"The model draws {shape_text(self.image_shape())} pictures.")
        except ValueError as err:
            self.picture_note.setText(str(err))
        self._conditional_changed()

    def _conditional_changed(self) -> None:
        """Offer classes where the family learns them and the data set names them; name the file after it."""
        n = len(data_classes(self.dataset_name))
        able = P_UNCOND.applies_to(self.family_name) and n > 0
        self.conditional.setEnabled(able)
        if not able:
            self.conditional.setChecked(False)
        if not self._out_edited:
            plan = PLANS[self.family_name]
            folder = self._folder or user_models_dir(create=True)
            latent = f"-{plan.latent}d" if plan.latent is not None else ""
            guided = "-guided" if self.conditional.isChecked() else ""
            self.out.setText(str(free_name(Path(folder), f"my-{self.family_name}{latent}{guided}")))
        self._debounce.start()

    def config(self) -> dict:
        """The model's config: the family's plan, the latent size, the picture it draws (the data set's own when
        the size or channels asked cannot be had: `problems` says why), and its classes when it learns them."""
        cfg = PLANS[self.family_name].config(self.latent.value())
        try:
            cfg["image_shape"] = list(self.image_shape())
        except ValueError:
            cfg["image_shape"] = list(dataset_info(self.dataset_name).image_shape)
        if self.conditional.isEnabled() and self.conditional.isChecked():
            cfg["num_classes"] = len(data_classes(self.dataset_name))
        return cfg

    def _lr_changed(self, lr: float) -> None:
        """The detective keeps the shared rate until the user gives it one of its own."""
        if math.isclose(self.lr_d.value(), self._lr_before, rel_tol=1e-6):
            self.lr_d.setValue(lr)
        self._lr_before = lr

    def _on_choices(self, result) -> None:
        """Data sets on disk as they are; the others offered too, to be downloaded when the run starts (a
        machine without the internet then says so in the run's message)."""
        for name in result.payload["missing"]:
            k = self.dataset.findData(name)
            if k >= 0:
                self.dataset.setItemText(k, f"{DATASET_TITLES.get(name, name)} (downloaded when the run starts)")
        missing = [DATASET_TITLES.get(n, n) for n in result.payload["missing"]]
        self.data_note.setText(f"{', '.join(missing)}: not on this machine yet" if missing else "")

    def _choose_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the trained model as", self.out.text(),
                                              "Checkpoints (*.safetensors)")
        if path:
            if not path.endswith(".safetensors"):
                path += ".safetensors"
            self.out.setText(path)
            self._out_edited = True

    # -- the estimate --------------------------------------------------------------------------------------------
    def steps(self) -> int:
        per_epoch = self.subset.value() // max(1, self.batch.value())
        return max(1, int(round(self.epochs.value() * per_epoch)))

    def _measure(self) -> None:
        self.step_ms = None
        self.estimate.setText("Measuring a few steps…")
        self.channel.submit(EstimateTraining(self.family_name, self.config(),
                                             self.batch.value(), self.lr.value(), device=self.device.currentData()),
                            self._on_estimate, self._on_estimate_failed)

    def _on_estimate(self, result) -> None:
        self.step_ms = float(result.payload["step_ms"])
        self._show_estimate()
        self.estimated.emit(self.step_ms)

    def _on_estimate_failed(self, message: str) -> None:
        self.estimate.setText(f"Could not time a step: {message}")

    def _show_estimate(self) -> None:
        if self.step_ms is None:
            return
        steps = self.steps()
        seconds = steps * self.step_ms / 1e3
        self.estimate.setText(f"about {duration_text(seconds)}: {steps:,} steps × {self.step_ms:.0f} ms per step, "
                              "measured here")

    # -- the answer ----------------------------------------------------------------------------------------------
    def request(self) -> TrainRequest:
        return TrainRequest(self.family_name, self.config(), self.dataset_name,
                            self.subset.value(), self.epochs.value(), self.batch.value(), self.lr.value(),
                            self.seed.value(), self.device.currentData(), self.out.text().strip(), self.knobs())

    def knobs(self) -> dict[str, float]:
        """What the settings add to a plain run: the step the rates start falling from, the detective's rate."""
        knobs: dict[str, float] = {}
        if self.decay.value() > 0:
            knobs[LR_DECAY.name] = float(round(self.steps() * (1 - self.decay.value() / 100)))
        if LR_D.applies_to(self.family_name):
            knobs[LR_D.name] = self.lr_d.value()
        return knobs

    def problems(self) -> str:
        """Why the settings cannot start, in one sentence ('' when they can)."""
        try:
            self.image_shape()
        except ValueError as err:
            return f"{str(err)[:1].upper()}{str(err)[1:]}."
        if self.batch.value() > self.subset.value():
            return f"The subset ({self.subset.value()}) is smaller than one batch ({self.batch.value()})."
        out = self.out.text().strip()
        if not out.endswith(".safetensors"):
            return "Save the model as a .safetensors file."
        folder = Path(out).expanduser().parent
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        import os

        if not os.access(probe, os.W_OK):
            return f"Cannot write into {folder}: pick another folder."
        return ""

    def _accept(self) -> None:
        problem = self.problems()
        self.problem.setText(problem)
        if not problem:
            self.accept()

    def done(self, code: int) -> None:
        self.channel.invalidate(cancel=True)
        super().done(code)
