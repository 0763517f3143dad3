"""The Directions tab's sliders on the map: an arrow from the picked picture's code to the +3 sigma end of each
slider's direction (numbered as the sliders are), and a star where the moved picture's code is now, projected
onto the map's plane like every other code."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

ARROW_COLOUR = (214, 39, 40)


class ArrowsOverlay:
    """Arrows and the moved code over a map plot; hidden until the Directions tab picks a picture on this model."""

    def __init__(self, plot) -> None:
        pen = pg.mkPen(ARROW_COLOUR, width=2)
        self.lines = pg.PlotCurveItem(pen=pen, connect="pairs")
        self.heads = [pg.ArrowItem(pen=pen, brush=pg.mkBrush(*ARROW_COLOUR), headLen=12, tailLen=0)
                      for _ in range(4)]
        self.numbers = [pg.TextItem(str(k + 1), color=ARROW_COLOUR, anchor=(-0.3, 1.0)) for k in range(4)]
        self.start = pg.ScatterPlotItem(size=10, symbol="o", pen=pen, brush=None)
        self.moved = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("k"), brush=pg.mkBrush(*ARROW_COLOUR))
        self.items = [self.lines, *self.heads, *self.numbers, self.start, self.moved]
        for item in self.items:
            item.setZValue(7)
            item.setVisible(False)
            plot.addItem(item)
        self.shown = False
        self.moved_uv: np.ndarray | None = None

    def draw(self, arrows, plane) -> None:
        """Draw `arrows` (state.Arrows) on `plane`; hide everything for None or a code of another size."""
        self.shown = arrows is not None and plane is not None and arrows.start.shape[-1] == plane.dim
        for item in self.items:
            item.setVisible(False)
        if not self.shown:
            self.moved_uv = None
            return
        start = plane.project(arrows.start)
        ends = plane.project(np.atleast_2d(arrows.ends)) if len(arrows.ends) else np.zeros((0, 2), np.float32)
        self.moved_uv = plane.project(arrows.moved)
        pairs = np.stack([np.repeat(start[None], len(ends), 0), ends], axis=1).reshape(-1, 2)
        self.lines.setData(pairs[:, 0], pairs[:, 1])
        self.start.setData([start[0]], [start[1]])
        self.moved.setData([self.moved_uv[0]], [self.moved_uv[1]])
        for item in (self.lines, self.start, self.moved):
            item.setVisible(True)
        for end, slot in zip(ends, arrows.slots):
            dx, dy = float(end[0] - start[0]), float(end[1] - start[1])
            head, number = self.heads[slot], self.numbers[slot]
            head.setPos(float(end[0]), float(end[1]))
            head.setStyle(angle=180.0 - math.degrees(math.atan2(dy, dx)))   # 0 points left; the plane is square
            number.setPos(float(end[0]), float(end[1]))
            head.setVisible(True)
            number.setVisible(True)
