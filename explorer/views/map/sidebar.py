"""The column beside the latent map: the probes' decoded images, the image under the cursor and the pinned one,
the layer switches, the plane's controls and the VAE's sampling strip. Widgets only; the view wires them."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QFrame, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget)

from models.catalog import CRITIC, DECODE, DENOISE, ENCODE

from ..widgets.condition import NO_NULL_CLASS_NOTE, ClassPicker
from ..widgets.image_panel import ImagePanel
from .layers import DISTANCE_MAX, GRID_N
from .probes import ProbePanel

LAYERS = {
    "grid": (f"Decoded grid ({GRID_N}×{GRID_N})",
             "Decode a grid of points over the visible region: the classic picture of a 2-D latent space."),
    "regions": ("Classifier's regions",
                "Colour each grid cell by the class the classifier sees in its decoded image: a discriminative "
                "model's decision regions laid over a generative model's map."),
    "critic": ("The detective's verdict",
               "Colour each grid cell by the discriminator's D(G(z)): the probability it gives that the picture "
               "decoded there is real. Red where the forger fools it, blue where it is caught."),
    "distance": ("Where the data is not",
                 "Distance from each point of the plane to the nearest encoded test image, in the full latent "
                 f"space, in units of the data's latent std per axis (scale fixed at 0–{DISTANCE_MAX:g} for every "
                 "model). A plain AE leaves holes; a VAE fills them in."),
}

NO_DETECTIVE = "No detective: this generator came without its discriminator"
CLASS_NOTE = ("A class-conditional model: every point of the plane is denoised towards the class picked, at the "
              "guidance scale w (any class: the unconditional model). Let go of the slider to denoise again.")


def _note(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setObjectName("note")
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


class MapSidebar(QScrollArea):
    """Everything beside the plot, in a scrollable column of fixed width."""

    WIDTH = 300

    def __init__(self, n_probes: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedWidth(self.WIDTH)
        body = QWidget()
        col = QVBoxLayout(body)
        col.setContentsMargins(6, 4, 10, 4)
        col.setSpacing(8)

        probes = QGroupBox("Probes: drag them on the map")
        grid = QGridLayout(probes)
        grid.setContentsMargins(6, 6, 6, 6)
        self.probe_panels = [ProbePanel(i) for i in range(n_probes)]
        for panel in self.probe_panels:
            panel.panel.view.setMaximumSize(120, 120)
        for i, panel in enumerate(self.probe_panels):
            grid.addWidget(panel, 0, i)
        self.probe_note = _note()
        self.probe_note.setVisible(False)
        grid.addWidget(self.probe_note, 1, 0, 1, n_probes)
        self.probe_keyframe_button = QPushButton("Interpolate between the probes")
        self.probe_keyframe_button.setToolTip("Send both probes' pictures to the Interpolate tab as keyframes: "
                                              "it walks the latent space from one to the other.")
        grid.addWidget(self.probe_keyframe_button, 2, 0, 1, n_probes)
        col.addWidget(probes)

        self.class_box = QGroupBox("Class: what the probes ask for")
        cls = QVBoxLayout(self.class_box)
        cls.setContentsMargins(6, 6, 6, 6)
        self.picker = ClassPicker()
        cls.addWidget(self.picker)
        self.class_note = _note(CLASS_NOTE)
        cls.addWidget(self.class_note)
        self.class_box.setVisible(False)
        col.addWidget(self.class_box)

        layers = QGroupBox("Layers")
        lay = QVBoxLayout(layers)
        lay.setContentsMargins(6, 6, 6, 6)
        self.layer_boxes: dict[str, QCheckBox] = {}
        for name, (text, tip) in LAYERS.items():
            box = QCheckBox(text)
            box.setToolTip(tip)
            box.setChecked(False)
            self.layer_boxes[name] = box
            lay.addWidget(box)
        self.layer_note = _note()
        self.layer_note.setVisible(False)
        lay.addWidget(self.layer_note)
        col.addWidget(layers)

        self.data_box = QGroupBox("Test images")
        data = QVBoxLayout(self.data_box)
        data.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.hover_panel = ImagePanel("Under the cursor", size=84)
        self.pinned_panel = ImagePanel("Pinned", size=84)
        for panel in (self.hover_panel, self.pinned_panel):
            panel.view.setMaximumSize(100, 100)
        row.addWidget(self.hover_panel)
        row.addWidget(self.pinned_panel)
        data.addLayout(row)
        self.colour_by = QComboBox()
        self.colour_by.setToolTip("Which known factor of each test image colours its dot (the data set labels "
                                  "every picture with each): the map's layout of that factor")
        self.colour_row = QWidget()
        form = QFormLayout(self.colour_row)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Colour the dots by", self.colour_by)
        self.colour_row.setVisible(False)
        data.addWidget(self.colour_row)
        self.data_note = _note()
        self.data_note.setVisible(False)
        data.addWidget(self.data_note)
        self.recentre_button = QPushButton("Re-centre the plane here")
        self.recentre_button.setToolTip("Move the plane so it passes through the pinned image's code: its "
                                        "point on the map then decodes to its reconstruction.")
        data.addWidget(self.recentre_button)
        self.keyframe_button = QPushButton("Use as a keyframe")
        self.keyframe_button.setToolTip("Add the pinned test image to the Interpolate tab's keyframes.")
        self.keyframe_button.setEnabled(False)
        data.addWidget(self.keyframe_button)
        col.addWidget(self.data_box)

        self.gauss_box = QGroupBox("The encoder's Gaussian q(z | x)")
        gauss = QVBoxLayout(self.gauss_box)
        gauss.setContentsMargins(6, 6, 6, 6)
        self.gauss_note = _note("Pin a test image to draw its Gaussian: 1σ solid, 2σ dashed.")
        gauss.addWidget(self.gauss_note)
        self.sample_button = QPushButton("Draw 8 samples: z = μ + σ·ε")
        self.sample_button.setToolTip("The reparameterisation trick, made visible: eps ~ N(0, I), each draw "
                                      "decoded below and marked × on the map.")
        gauss.addWidget(self.sample_button)
        self.sample_strip = ImagePanel("", size=60)
        self.sample_strip.view.setMinimumSize(240, 120)
        self.sample_strip.view.setMaximumHeight(124)
        self.sample_strip.setVisible(False)
        gauss.addWidget(self.sample_strip)
        col.addWidget(self.gauss_box)

        plane = QGroupBox("The plane")
        pl = QVBoxLayout(plane)
        pl.setContentsMargins(6, 6, 6, 6)
        self.plane_note = _note()
        pl.addWidget(self.plane_note)
        self.reroll_button = QPushButton("New random plane")
        pl.addWidget(self.reroll_button)
        col.addWidget(plane)
        col.addStretch(1)
        self.setWidget(body)

    def reset(self) -> None:
        """Nothing shown yet: a new model is on its way."""
        self.hover_panel.set_image(None)
        self.hover_panel.set_caption("hover a dot")
        self.sample_strip.set_image(None)
        self.sample_strip.setVisible(False)
        self.describe_data(None, "")
        for panel in self.probe_panels:
            panel.clear()

    def configure(self, info) -> None:
        """Show the controls this model can use, and say why the others are off (from its capabilities)."""
        caps = info.capabilities
        encoder = ENCODE in caps
        self.data_box.setVisible(encoder)
        self.gauss_box.setVisible(encoder)
        self.set_layer_available("grid", True)
        self.set_layer_available("regions", bool(info.has_classifier),
                                 info.classifier_reason or "there is no classifier for this data set")
        self.set_layer_available("critic", CRITIC in caps,
                                 "no detective: this model has no discriminator to ask (a GAN or VAE-GAN trained "
                                 "here has one; an imported generator gets its own with import --critic)")
        lone_generator = DECODE in caps and not caps & {ENCODE, DENOISE, CRITIC}    # a GAN without its D
        for panel in self.probe_panels:
            panel.no_verdict = NO_DETECTIVE if lone_generator else ""
        self.set_layer_available("distance", encoder,
                                 "this model has no encoder, so no test image has a place on its map")
        self.probe_note.setText("" if info.has_classifier else
                                f"No labels under the images: {info.classifier_reason or 'no classifier'}.")
        self.probe_note.setVisible(not info.has_classifier)
        self.reroll_button.setVisible(not encoder)
        self.reroll_button.setText("New noise seeds" if DENOISE in caps else "New random plane")
        self.reroll_button.setEnabled(DENOISE in caps or info.latent_dim > 2)
        self.reroll_button.setToolTip("" if self.reroll_button.isEnabled() else
                                      "A 2-D latent is the whole plane: there is no other to roll.")
        self.picker.blockSignals(True)              # a new model's picker: nothing to redraw for the old one
        self.class_box.setVisible(self.picker.configure(info))
        self.picker.blockSignals(False)
        self.class_note.setText(CLASS_NOTE if self.picker.any_class else
                                "Every point of the plane is denoised towards the class picked. " + NO_NULL_CLASS_NOTE)

    def describe_data(self, enc: dict | None, dataset: str) -> None:
        """The colour-by choice for a data set with known factors; one line when the dots have no colour."""
        names = tuple(enc.get("factor_names", ())) if enc is not None else ()
        self.colour_by.blockSignals(True)
        self.colour_by.clear()
        for name in names:
            self.colour_by.addItem(name, name)
        self.colour_by.blockSignals(False)
        self.colour_row.setVisible(bool(names))
        unlabelled = enc is not None and enc.get("labels") is None and not names
        self.data_note.setText(f"The dots have one colour: the pictures of {dataset} have no labels." if unlabelled
                               else "")
        self.data_note.setVisible(unlabelled)

    def describe_encoder(self, gaussian: bool, latent_dim: int) -> None:
        if not gaussian:
            self.gauss_note.setText("This encoder gives a point, not a Gaussian: a plain autoencoder has no σ "
                                    "to draw.")
        else:
            self.gauss_note.setText("Pin a test image to draw its Gaussian: 1σ solid, 2σ dashed"
                                    + (", projected onto the plane." if latent_dim > 2 else "."))

    def set_layer_available(self, name: str, ok: bool, reason: str = "") -> None:
        box = self.layer_boxes[name]
        if not ok:
            box.setChecked(False)
        box.setEnabled(ok)
        box.setToolTip(LAYERS[name][1] if ok else f"{LAYERS[name][1]}\n\nNot available: {reason}")
