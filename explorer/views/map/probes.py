"""The map's draggable probes: a crosshair on the plane and, beside the map, the image the model decodes there.

A probe emits `moved` on every step of a drag and `released` when the mouse lets go; the view decides what to
ask the engine (a live decode on every move for an AE/VAE/GAN, a DDIM run on release for a diffusion model).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from ..widgets.image_panel import COST_TIP, CRITIC_TIP, ImagePanel, cost_text, verdict_text

PROBE_COLOURS = ("#00e5ff", "#ff2ee0", "#c6ff1a")   # saturated, unlike the muted class colours


class Probe(QObject):
    """One draggable point of the plane. `uv` is where it is, in map coordinates."""

    moved = Signal(int, object)       # index, (2,) float array
    released = Signal(int, object)

    def __init__(self, index: int, uv: tuple[float, float]) -> None:
        super().__init__()
        self.index = index
        colour = PROBE_COLOURS[index % len(PROBE_COLOURS)]
        self.target = pg.TargetItem(
            pos=uv, size=18, symbol="o", movable=True,
            pen=pg.mkPen("k", width=2.5), brush=pg.mkBrush(colour),
            hoverPen=pg.mkPen("w", width=3), hoverBrush=pg.mkBrush(colour),
            label=str(index + 1),
            labelOpts={"color": "k", "fill": pg.mkBrush(colour), "offset": (10, -10)})
        self.target.setZValue(50)
        self.target.setToolTip(f"Probe {index + 1}: drag it; the decoder draws what lives here")
        self.target.sigPositionChanged.connect(lambda _t: self.moved.emit(self.index, self.uv))
        self.target.sigPositionChangeFinished.connect(lambda _t: self.released.emit(self.index, self.uv))

    @property
    def uv(self) -> np.ndarray:
        p = self.target.pos()
        return np.array([p.x(), p.y()], dtype=np.float32)

    def move_to(self, uv, finished: bool = False) -> None:
        """Programmatic drag (tests, the benchmark): emits `moved`, and `released` when finished."""
        self.target.setPos(float(uv[0]), float(uv[1]))
        if finished:
            self.target.sigPositionChangeFinished.emit(self.target)


class ProbePanel(QWidget):
    """A probe's decoded image with the classifier's label and the detective's verdict underneath, and a progress
    bar for DDIM runs."""

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        colour = PROBE_COLOURS[index % len(PROBE_COLOURS)]
        self.panel = ImagePanel(f"Probe {index + 1}", size=116)
        self.panel.title.setStyleSheet(f"font-weight: 600; border-bottom: 3px solid {colour}; padding-bottom: 1px;")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(14)
        self.progress.setVisible(False)
        self.verdict = QLabel("")
        self.verdict.setObjectName("panelCaption")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.verdict.setWordWrap(True)              # never wider than the picture above it
        self.verdict.setToolTip(CRITIC_TIP)
        self.verdict.setVisible(False)
        self.cost = QLabel("")
        self.cost.setObjectName("panelCost")
        self.cost.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.cost.setWordWrap(True)
        self.cost.setToolTip(COST_TIP)
        layout.addWidget(self.panel)
        layout.addWidget(self.verdict)
        layout.addWidget(self.cost)
        layout.addWidget(self.progress)
        self.job_id = 0           # the job whose result is on screen
        self.no_verdict = ""      # what stands where the verdict would be when there is none ("no detective")

    @property
    def image(self) -> np.ndarray | None:
        return self.panel.image

    def show_pixels(self, image: np.ndarray) -> None:
        """A new picture whose verdicts are still to come: the old label and verdict stay, greyed, until they do
        (blanking them would make the captions flicker through a drag)."""
        self.panel.set_image(image)
        self.panel.caption.setEnabled(False)
        self.verdict.setEnabled(False)

    def show_result(self, image: np.ndarray, classes, labels, confidences, critic, reason: str) -> None:
        """The image with the classifier's label (or why there is none) and, for a GAN, the detective's verdict."""
        self.panel.set_image(image)
        self.panel.caption.setEnabled(True)
        self.verdict.setEnabled(True)
        if labels is None:
            self.panel.set_caption("no label", reason)
        else:
            self.panel.set_label(classes, int(labels[0]), None if confidences is None else float(confidences[0]))
        verdict = None if critic is None else float(critic[0])
        self.verdict.setText(verdict_text(verdict) if verdict is not None else self.no_verdict)
        self.verdict.setVisible(bool(self.verdict.text()))

    def show_cost(self, ms: float | None, step: int | None = None, steps: int | None = None) -> None:
        """How long the model took to draw what the panel shows: measured, so diffusion's cost is seen."""
        self.cost.setText(cost_text(ms, step, steps))

    def show_progress(self, step: int, steps: int) -> None:
        self.progress.setVisible(step < steps)
        self.progress.setRange(0, steps)
        self.progress.setValue(step)
        self.progress.setFormat(f"DDIM step {step}/{steps}")

    def clear(self, caption: str = "") -> None:
        self.panel.set_image(None)
        self.panel.set_caption(caption)
        self.progress.setVisible(False)
        self.verdict.setVisible(False)
        self.cost.setText("")
        self.job_id = 0


def initial_positions(kind: str, uv: np.ndarray | None, labels: np.ndarray | None = None,
                      radius: float = 1.0) -> list[tuple[float, float]]:
    """Where the two probes start: on the two classes whose centres lie furthest apart on the map, so both
    panels open on a real-looking picture and the way between them is worth dragging; without data, either side
    of the origin at `radius` (GAN: the typical |z|) or on seeds 1 and 2 (diffusion)."""
    if kind == "seeds":
        return [(0.0, 0.0), (1.0, 0.0)]
    if uv is None or len(uv) == 0:
        return [(-radius, 0.0), (radius, 0.0)]
    if labels is None or len(np.unique(labels)) < 2:
        centre, spread = np.median(uv, axis=0), uv.std(axis=0)
        return [(float(centre[0] - 0.6 * spread[0]), float(centre[1])),
                (float(centre[0] + 0.6 * spread[0]), float(centre[1]))]
    classes = np.unique(labels)
    centres = np.stack([np.median(uv[labels == c], axis=0) for c in classes])
    d = ((centres[:, None] - centres[None]) ** 2).sum(-1)
    a, b = np.unravel_index(np.argmax(d), d.shape)
    return [tuple(float(x) for x in centres[a]), tuple(float(x) for x in centres[b])]
