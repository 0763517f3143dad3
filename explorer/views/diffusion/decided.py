"""When is the content decided? For each sample, a row against t: the classifier's label of x̂_0 as a colour,
its confidence as the colour's strength. A row that settles early on one colour was a shirt long before it
looked like one; the dotted line is the frame on screen.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..widgets.palette import rgb_unit
from .frames import Track

PALETTE = rgb_unit()      # (10, 3) in [0, 1]: the app's one class palette, row k for class k
NO_LABELS = "there is no classifier for this model's data"


def strip_rgba(labels: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """(B, K) labels and confidences -> (B, K, 4) RGBA in [0, 1]: the class colour, alpha 0.15 + 0.85 conf;
    label -1 (not classified yet) is transparent."""
    rgb = PALETTE[np.clip(labels, 0, len(PALETTE) - 1) % len(PALETTE)]
    alpha = np.where(labels >= 0, 0.15 + 0.85 * np.clip(confidences, 0.0, 1.0), 0.0)[..., None]
    return np.concatenate([rgb, alpha], axis=-1).astype(np.float32)


def legend_html(classes: tuple[str, ...]) -> str:
    """The class colours as one line of rich text: a coloured square before each name."""
    parts = []
    for i, name in enumerate(classes[:len(PALETTE)]):
        r, g, b = (int(255 * v) for v in PALETTE[i])
        parts.append(f'<span style="color: rgb({r},{g},{b})">&#9632;</span>&nbsp;{name}')
    return "&nbsp;&nbsp; ".join(parts)


class DecidedPlot(QWidget):
    """The strip and its colour key under it; `show_track(track, classes)`, `mark(t)` (the frame on screen).
    Without a classifier there is neither strip nor key: one line says why there are no labels."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.plot = _StripPlot()
        self.key = QLabel("")
        self.key.setTextFormat(Qt.TextFormat.RichText)
        self.key.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.key)
        self._key_for: tuple | None = None

    @property
    def rgba(self) -> np.ndarray | None:
        return self.plot.rgba

    def show_track(self, track: Track | None, classes: tuple[str, ...], has_classifier: bool = True,
                   reason: str = "") -> None:
        key = (tuple(classes), bool(has_classifier), reason)
        if key != self._key_for:
            self._key_for = key
            self.key.setText(legend_html(tuple(classes)) if has_classifier else f"No labels: {reason or NO_LABELS}.")
            self.plot.setVisible(bool(has_classifier))       # an empty strip would only show bare axes
            self.key.setAlignment(Qt.AlignmentFlag.AlignLeft | (Qt.AlignmentFlag.AlignVCenter if has_classifier
                                                                 else Qt.AlignmentFlag.AlignTop))
        self.plot.show_track(track, classes, has_classifier, reason)

    def mark(self, t: int | None) -> None:
        self.plot.mark(t)


class _StripPlot(pg.PlotWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setTitle("When is the content decided? The classifier's label of x̂₀ (colour) and its confidence "
                      "(strength), per sample", size="9pt")
        self.rgba: np.ndarray | None = None
        self.setLabel("bottom", "t (noise left: T on the left, 0 = the finished image)")
        self.setLabel("left", "sample")
        self.invertX(True)
        self.invertY(True)
        self.image = pg.ImageItem()
        self.addItem(self.image)
        ink = pg.getConfigOption("foreground")
        self.line = pg.InfiniteLine(angle=90, pen=pg.mkPen(ink, width=1.5, style=Qt.PenStyle.DotLine))
        self.addItem(self.line)
        self.rgba: np.ndarray | None = None
        self.note = pg.TextItem("", color=ink, anchor=(0.5, 0.5))
        self.addItem(self.note)

    def show_track(self, track: Track | None, classes: tuple[str, ...], has_classifier: bool = True,
                   reason: str = "") -> None:
        if track is None or not track.frames:
            self.image.clear()
            self.rgba = None
            return
        labels, confs = track.label_series()
        if not has_classifier or (labels < 0).all():
            self.image.clear()
            self.rgba = None
            self.note.setText(f"no labels: {reason}" if reason else "no classifier for this model's data: nothing "
                              "to label")
            self.note.setPos(0.5 * (track.frames[0].t if track.frames else 0), track.n / 2)
            return
        self.note.setText("")
        total = max(track.total, len(track.frames))
        ts = track.ts
        t_top = int(ts[0])                              # a run always starts at T - 1 and ends at t = 0
        step = t_top / (total - 1) if total > 1 else 1.0
        full = np.zeros((track.n, total, 4), dtype=np.float32)
        full[:, :len(track.frames)] = strip_rgba(labels, confs)
        # columns in ascending t (frame total-1 first), so the rect maps column c to t = c * step
        self.rgba = full[:, ::-1]
        width = step * total
        self.image.setImage(self.rgba, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QRectF(t_top + step / 2 - width, 0.0, width, float(track.n)))
        self.setXRange(-step / 2, t_top + step / 2, padding=0.0)
        self.setYRange(0, track.n, padding=0.0)
        self.getAxis("left").setTicks([[(i + 0.5, str(i + 1)) for i in range(track.n)]])

    def mark(self, t: int | None) -> None:
        self.line.setVisible(t is not None)
        if t is not None:
            self.line.setPos(t)
