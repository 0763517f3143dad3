"""One decoded image, drawn crisp (every pixel a sharp square), with a caption line underneath.

The caption carries the classifier's label and confidence ("Sneaker · 97%"), or the reason there is none. Used
for probe panels, pinned images and anything else that shows a single picture, grey or colour.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


def label_text(classes: tuple[str, ...] | list[str], label: int | None, confidence: float | None) -> str:
    """'Sneaker · 97%': what the classifier calls an image. Confidence is a label's strength, not realism."""
    if label is None:
        return ""
    name = classes[label] if 0 <= label < len(classes) else f"class {label}"
    return name if confidence is None else f"{name} · {100.0 * float(confidence):.0f}%"


def verdict_text(d_real: float | None) -> str:
    """'Detective: 83% real': the discriminator's D(x), the probability it gives that the image is real."""
    if d_real is None:
        return ""
    p = float(d_real)
    return f"Detective: {100.0 * p:.0f}% real · " + ("fooled" if p >= 0.5 else "spots a fake")


def format_ms(ms: float) -> str:
    """0.42 ms, 12 ms, 1.24 s: a duration at the precision a person compares."""
    if ms < 1.0:
        return f"{ms:.2f} ms"
    if ms < 1000.0:
        return f"{ms:.0f} ms"
    return f"{ms / 1000.0:.2f} s"


def cost_text(ms: float | None, step: int | None = None, steps: int | None = None) -> str:
    """'decoded in 0.42 ms' for one decoder pass; '20 DDIM steps: 1.24 s' for diffusion (so far, while it runs)."""
    if ms is None:
        return ""
    if steps is None:
        return f"decoded in {format_ms(ms)}"
    if step is not None and step < steps:
        return f"step {step}/{steps}: {format_ms(ms)} so far"
    return f"{steps} DDIM steps: {format_ms(ms)}"


COST_TIP = ("The model's own compute time for this picture, measured on the engine's device. An autoencoder, VAE "
            "or GAN draws it in one decoder pass; a diffusion model runs its U-Net once per denoising step.")

CRITIC_TIP = ("The discriminator's verdict D(x): the probability it gives that this image is a real photo. The "
              "generator is trained to push it up, the discriminator to push it down on fakes.")


class _SquareView(pg.GraphicsView):
    """A graphics view that asks its layout for as much height as width, so the image never floats in space."""

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width

    def sizeHint(self) -> QSize:
        side = self.minimumWidth()
        return QSize(side, side)


class ImagePanel(QWidget):
    """A pyqtgraph ImageItem with nearest-neighbour scaling and a fixed [0, 1] grey scale, plus a caption."""

    def __init__(self, title: str = "", parent: QWidget | None = None, size: int = 140) -> None:
        super().__init__(parent)
        self.setObjectName("imagePanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        self.title = QLabel(title)
        self.title.setObjectName("panelTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.title.setVisible(bool(title))
        self.view = _SquareView(background=None)
        self.view.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.view.setMinimumSize(size, size)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.view.setSizePolicy(policy)
        self.view.setFrameShape(self.view.Shape.NoFrame)
        self.box = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False,
                              defaultPadding=0.0)
        self.view.setCentralItem(self.box)
        self.item = pg.ImageItem(levels=(0.0, 1.0))
        self.box.addItem(self.item)
        self.caption = QLabel("")
        self.caption.setObjectName("panelCaption")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.caption.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addWidget(self.view)
        layout.addWidget(self.caption)
        layout.addStretch(1)
        self.image: np.ndarray | None = None
        self.set_image(None)

    def set_image(self, image: np.ndarray | None) -> None:
        """Show an (H, W) grey or (H, W, 3) colour image with values in [0, 1]; None shows an empty square."""
        if image is None:
            self.image = None
            blank = np.zeros((1, 1), dtype=np.float32)
            self.item.setImage(blank, levels=(0.0, 1.0), autoLevels=False)
            self.item.setOpacity(0.25)
        else:
            self.image = np.asarray(image, dtype=np.float32)
            self.item.setImage(self.image, levels=(0.0, 1.0), autoLevels=False)
            self.item.setOpacity(1.0)
        h, w = (self.image if self.image is not None else blank).shape[:2]
        self.box.setRange(xRange=(0, w), yRange=(0, h), padding=0.0)

    def set_caption(self, text: str, tooltip: str = "") -> None:
        self.caption.setText(text)
        self.caption.setToolTip(tooltip)

    def set_label(self, classes: tuple[str, ...] | list[str], label: int | None, confidence: float | None) -> None:
        """The classifier's verdict under the image; confidence is how sure it is, not how real the image is."""
        self.set_caption(label_text(classes, label, confidence),
                         "The classifier's label and softmax confidence. Off the data it is over-confident, "
                         "so read it as a label, not as a realism score.")
