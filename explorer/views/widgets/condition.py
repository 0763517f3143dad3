"""What a class-conditional model adds to every view that draws from it: which class to ask for ("any class" is the
unconditional model) and how hard to pull towards it, the guidance scale w of classifier-free guidance (Ho &
Salimans 2022). One widget, so the diffusion tab, the map, the interpolation and their captions say it alike.

A view reads `class_index` (None: any class) and `guidance` when it builds a job, and listens to `changed` (a new
class, or a new scale once it settles: on release after a drag) or, to follow a drag, to `guidance_changed`.

A network with classes but no "no class" input (a diffusers UNet with `num_class_embeds`: ModelInfo.any_class
False) draws one of its classes and nothing else: the picker lists its classes only, with no "any class" and no
slider, and `guided` is False so a view shows no guidance strip or caption for it.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QWidget

GUIDANCE_MAX = 10.0
GUIDANCE_STEP = 0.5
DEFAULT_GUIDANCE = 3.0        # where guided samples are of the asked class and still look like the data
ANY_CLASS = "any class"
GUIDANCE_CAPTION = (
    "Guidance tells the sculptor what to carve. At every step the U-Net predicts the noise twice, once told the "
    "class and once told nothing, and the step follows eps(∅) + w·(eps(class) − eps(∅)): w = 0 ignores the class, "
    "w = 1 is the plain conditional model, and a larger w pulls harder towards the class, until the figure "
    "over-saturates into hard, blotchy extremes.")
NO_CLASS_NOTE = "Pick a class: with none asked there is nothing for w to pull towards."
NO_NULL_CLASS_NOTE = ("Its network takes one of its classes and has no 'no class' input, so it draws no 'any class' "
                      "and has no guidance scale to pull with.")


def snap(w: float) -> float:
    """The nearest scale on the slider's grid (steps of GUIDANCE_STEP in [0, GUIDANCE_MAX])."""
    return min(GUIDANCE_MAX, max(0.0, round(float(w) / GUIDANCE_STEP) * GUIDANCE_STEP))


def condition_text(names: tuple[str, ...], class_index: int | None, guidance: float, with_scale: bool = True) -> str:
    """'Sneaker, w = 3' for a caption ('Sneaker' for a model with no guidance scale); 'any class' when none is
    asked."""
    if class_index is None:
        return ANY_CLASS
    name = names[class_index] if 0 <= class_index < len(names) else f"class {class_index}"
    return f"{name}, w = {guidance:g}" if with_scale else name


class ClassPicker(QWidget):
    """A class box ("any class", then the model's classes by index) and, optionally, a guidance-scale slider.
    Hidden for a model that takes no class; the classes only, no slider, for one that has no "no class" input
    (`configure` says which)."""

    changed = Signal()                # the class, or the scale once it settles
    class_changed = Signal()
    guidance_changed = Signal(float)  # every new scale, during a drag too
    guidance_settled = Signal(float)  # a new scale that is no longer moving (released, typed, clicked)

    def __init__(self, parent: QWidget | None = None, slider: bool = True, title: str = "Class") -> None:
        super().__init__(parent)
        self.names: tuple[str, ...] = ()
        self.any_class = True             # the model also draws with no class: "any class" and guidance apply
        self.box = QComboBox()
        self.box.setToolTip("The class asked of the model; 'any class' runs it unconditionally (w has no effect)")
        self.box.addItem(ANY_CLASS, None)
        self.slider = None
        self.slider_label = None
        self._settled = DEFAULT_GUIDANCE if slider else 1.0
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel(title), 0, 0)
        grid.addWidget(self.box, 0, 1)
        if slider:
            from superqt import QLabeledDoubleSlider     # here, not at import: the window paints before superqt

            self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            self.slider.setRange(0.0, GUIDANCE_MAX)
            self.slider.setDecimals(1)
            self.slider.setSingleStep(GUIDANCE_STEP)
            self.slider.setPageStep(1.0)
            self.slider.setValue(DEFAULT_GUIDANCE)
            self.slider.setMinimumWidth(160)
            self.slider.valueChanged.connect(self._slid)
            self.slider.sliderReleased.connect(self._released)
            self.slider_label = QLabel("Guidance w")
            grid.addWidget(self.slider_label, 1, 0)
            grid.addWidget(self.slider, 1, 1)
            grid.setColumnStretch(1, 1)
        self.box.currentIndexChanged.connect(self._class_picked)
        self._enable_slider()
        self.setVisible(False)

    # -- what a view reads ---------------------------------------------------------------------------------------
    @property
    def class_index(self) -> int | None:
        """The class asked (an index into the model's classes), or None for any class."""
        data = self.box.currentData()
        return None if data is None else int(data)

    @property
    def scale(self) -> float:
        """The slider's scale w, whether or not a class is asked (1 when there is no slider, or no guidance)."""
        return snap(self.slider.value()) if self.slider is not None and self.any_class else 1.0

    @property
    def guidance(self) -> float:
        """The scale a job passes: the slider's for an asked class; 1 for any class, where w changes nothing
        (and which a model without classes takes too)."""
        return self.scale if self.class_index is not None else 1.0

    @property
    def conditional(self) -> bool:
        return bool(self.names)

    @property
    def guided(self) -> bool:
        """Whether a guidance scale applies: a class-conditional model that also draws with no class."""
        return self.conditional and self.any_class and self.slider is not None

    def configure(self, info) -> bool:
        """Show the picker for a class-conditional model (its classes listed, the choice kept when the names are
        the same; no "any class" and no slider when its network has no "no class" input), hide it for any other;
        True when the model takes a class."""
        conditional = info is not None and info.conditional
        return self.set_classes(tuple(info.class_names) if conditional else (),
                                any_class=bool(getattr(info, "any_class", True)) if conditional else True)

    def set_classes(self, names: tuple[str, ...], any_class: bool = True) -> bool:
        """The model's classes by index (() for a model that takes none, which hides the picker); any_class False
        for a network with no "no class" input: its classes only (the first picked), no guidance slider."""
        names, any_class = tuple(names), bool(any_class)
        if (names, any_class) != (self.names, self.any_class):
            self.names, self.any_class = names, any_class
            self.box.blockSignals(True)
            self.box.clear()
            if any_class:
                self.box.addItem(ANY_CLASS, None)
            for k, name in enumerate(names):
                self.box.addItem(f"{k} · {name}", k)
            self.box.setCurrentIndex(0)
            self.box.blockSignals(False)
            self.box.setToolTip("The class asked of the model; 'any class' runs it unconditionally (w has no effect)"
                                if any_class else "The class asked of the model. " + NO_NULL_CLASS_NOTE)
            self._enable_slider()
        if self.slider is not None:
            self.slider.setVisible(any_class)
            self.slider_label.setVisible(any_class)
        self.setVisible(bool(names))
        return bool(names)

    # -- what a test or a view sets ------------------------------------------------------------------------------
    def set_class(self, class_index: int | None) -> None:
        """Ask for class `class_index` (None: any class, or the first class where there is no "any class"), as a
        pick in the box does."""
        self.box.setCurrentIndex(self.box.findData(class_index) if class_index is not None else 0)

    def set_guidance(self, w: float) -> None:
        """Set the scale as a click on the slider does (a settled change)."""
        if self.slider is not None:
            self.slider.setValue(snap(w))

    def text(self) -> str:
        return condition_text(self.names, self.class_index, self.guidance, with_scale=self.guided)

    # -- signals -------------------------------------------------------------------------------------------------
    def _class_picked(self, _index: int) -> None:
        self._enable_slider()
        self.class_changed.emit()
        self.changed.emit()

    def _enable_slider(self) -> None:
        if self.slider is not None:
            chosen = self.box.currentData() is not None
            self.slider.setEnabled(chosen)
            self.slider.setToolTip("How hard each step pulls towards the class: 0 ignores it, 1 is the plain "
                                   "conditional model, more exaggerates it" if chosen else NO_CLASS_NOTE)

    def _slid(self, value: float) -> None:
        w = snap(value)
        if w != value:
            self.slider.setValue(w)          # onto the grid; that change comes back here
            return
        self.guidance_changed.emit(w)
        if not self.slider.isSliderDown():
            self._settle()

    def _released(self) -> None:
        self._settle()

    def _settle(self) -> None:
        w = self.scale
        if w != self._settled:
            self._settled = w
            self.guidance_settled.emit(w)
            self.changed.emit()
