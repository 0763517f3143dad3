"""Plots a person cannot get lost in: zoom stays between a thousandth and ten times the data's extent, and Home,
a double-click on empty space or pyqtgraph's "A" button bring the opening view back.

    limit_zoom(plot.getViewBox(), x_range, y_range)     # after the data (or the plane) changed
    attach_reset(canvas, plot, self.reset_view)         # once
"""
from __future__ import annotations

from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt

MIN_FRACTION = 1e-3      # closest zoom: a thousandth of the data's extent
MAX_FACTOR = 10.0        # furthest: ten times it


def limit_zoom(vb: pg.ViewBox, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
    """Bound the view box's zoom (and its panning, to where a ten-times view of the data still fits).

    With the aspect locked both axes share one scale, so both get the larger extent's bounds: otherwise a
    window wider than the data would be pushed into a zoom the limits forbid on the other axis."""
    (x0, x1), (y0, y1) = x_range, y_range
    ex, ey = max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)
    if vb.state.get("aspectLocked"):
        ex = ey = max(ex, ey)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_x, half_y = MAX_FACTOR * ex / 2, MAX_FACTOR * ey / 2
    vb.setLimits(xMin=cx - half_x, xMax=cx + half_x, yMin=cy - half_y, yMax=cy + half_y,
                 minXRange=MIN_FRACTION * ex, maxXRange=MAX_FACTOR * ex,
                 minYRange=MIN_FRACTION * ey, maxYRange=MAX_FACTOR * ey)


class _ResetFilter(QObject):
    """Home on the canvas resets the view (the canvas is the filter's parent, so they live and die together)."""

    def __init__(self, canvas, reset: Callable[[], None]) -> None:
        super().__init__(canvas)
        self.reset = reset

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Home:
            self.reset()
            return True
        return False


def pin_legend(legend: pg.LegendItem) -> None:
    """A legend stays where the layout put it: pyqtgraph's legends can otherwise be dragged out of sight."""
    legend.mouseDragEvent = lambda ev: ev.ignore()


def attach_reset(canvas: pg.GraphicsView, plot: pg.PlotItem, reset: Callable[[], None],
                 keep: tuple[type, ...] = (pg.TargetItem,)) -> None:
    """Home, a double-click on empty space (not on an item of a `keep` type, such as a probe) and the "A" button
    all call `reset`, instead of pyqtgraph's auto-range (which would frame every item, the far ones too)."""
    canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    canvas.installEventFilter(_ResetFilter(canvas, reset))
    try:
        plot.autoBtn.clicked.disconnect()
    except (RuntimeError, TypeError):       # nothing connected (a PlotItem built without its button)
        pass
    plot.autoBtn.clicked.connect(lambda *_: reset())

    def on_click(ev) -> None:
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            hit = canvas.scene().items(ev.scenePos())
            if not any(isinstance(item, keep) for item in hit):
                reset()
                ev.accept()

    canvas.scene().sigMouseClicked.connect(on_click)
