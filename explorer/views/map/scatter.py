"""The encoded test set on the map: one dot per test image, coloured by its class, with a legend, plus the rings
that mark the dot under the cursor and the pinned one. Finding the dot under the cursor is done in screen pixels,
so it works the same at every zoom."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem

from ..widgets.palette import class_colour

HOVER_PX = 7                    # how close (in screen pixels) the cursor must be to a dot to show it


def dot_colour(c: int, rgb: tuple[tuple[int, int, int], ...] = ()):
    """Value c's colour: its own (a colour factor's) if given, else the class palette's."""
    return pg.mkColor(*rgb[c]) if c < len(rgb) else pg.mkColor(class_colour(c))


class DataScatter:
    """One ScatterPlotItem per class (so the legend names each), drawn at `uv`, the codes on the plane."""

    def __init__(self, plot: pg.PlotItem, legend: pg.LegendItem) -> None:
        self.plot = plot
        self.legend = legend
        self.items: list[pg.ScatterPlotItem] = []
        self.labels: np.ndarray | None = None
        self.uv: np.ndarray | None = None
        ink = pg.getConfigOption("foreground")     # the palette's text colour: visible on light and dark
        self.hover_ring = pg.ScatterPlotItem(size=15, symbol="o", pen=pg.mkPen(ink, width=1.5), brush=None)
        self.pin_ring = pg.ScatterPlotItem(size=19, symbol="o", pen=pg.mkPen(ink, width=3), brush=None)
        for ring, z in ((self.hover_ring, 20), (self.pin_ring, 21)):
            ring.setZValue(z)
            plot.addItem(ring)
        self._dim = False

    def clear(self) -> None:
        for item in self.items:
            self.plot.removeItem(item)
        self.items, self.labels, self.uv = [], None, None
        self.legend.clear()
        self.legend.setVisible(False)
        self.mark_hover(None)
        self.mark_pin(None)

    def build(self, labels: np.ndarray | None, classes: tuple[str, ...], n: int = 0,
              rgb: tuple[tuple[int, int, int], ...] = ()) -> None:
        """One item per class (or per value of the factor the dots are coloured by), named for the legend, in the
        class palette or in `rgb` (a colour factor's own colours); for `n` unlabelled pictures (labels None) one
        item in one colour and no legend. `place` puts the dots where they belong."""
        uv = self.uv
        self.clear()
        if labels is None:
            self.labels = np.zeros(n, dtype=np.int64)
            self._add_item(pg.mkColor(pg.getConfigOption("foreground")), None)
            if uv is not None and len(uv) == n:
                self.place(uv)
            return
        self.labels = np.asarray(labels)
        names = classes or tuple(str(c) for c in range(int(self.labels.max()) + 1))
        for c, name in enumerate(names):
            self._add_item(dot_colour(c, rgb), name)
        self.show_legend(names, rgb)
        if uv is not None and len(uv) == len(self.labels):       # recoloured: the dots stay where they were
            self.place(uv)

    def _add_item(self, colour, name: str | None) -> None:
        colour.setAlpha(200)
        item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(colour), name=name)
        item.setOpacity(0.35 if self._dim else 1.0)
        # Painted once per view change, not on every probe move: a drag repaints only what moved.
        item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        item.setZValue(0)
        self.plot.addItem(item)
        self.items.append(item)

    def show_legend(self, classes: tuple[str, ...], rgb: tuple[tuple[int, int, int], ...] = ()) -> None:
        """Name each class's colour beside the map (also without dots: the classifier's regions use it)."""
        self.legend.clear()
        for c, name in enumerate(classes):
            self.legend.addItem(pg.ScatterPlotItem(size=9, pen=None, brush=pg.mkBrush(dot_colour(c, rgb))), name)
        self.legend.setVisible(bool(classes))

    def place(self, uv: np.ndarray) -> None:
        """Draw the dots at map points uv (N, 2), in the order of the labels given to `build`."""
        self.uv = uv
        for c, item in enumerate(self.items):
            pts = uv[self.labels == c]
            item.setData(pts[:, 0], pts[:, 1])

    def dim(self, on: bool) -> None:
        """Let the dots step back (when the decoded grid is the point)."""
        self._dim = on
        for item in self.items:
            item.setOpacity(0.35 if on else 1.0)

    def nearest(self, u: float, v: float, pixel_size: tuple[float, float], px: float = HOVER_PX) -> int | None:
        """The dot within `px` screen pixels of the map point (u, v), if any; pixel_size is the view's (w, h)."""
        if self.uv is None or not len(self.uv):
            return None
        pw, ph = pixel_size
        d2 = ((self.uv[:, 0] - u) / pw) ** 2 + ((self.uv[:, 1] - v) / ph) ** 2
        i = int(np.argmin(d2))
        return i if d2[i] <= px * px else None

    def mark_hover(self, i: int | None) -> None:
        self._mark(self.hover_ring, i)

    def mark_pin(self, i: int | None) -> None:
        self._mark(self.pin_ring, i)

    def _mark(self, ring: pg.ScatterPlotItem, i: int | None) -> None:
        if i is None or self.uv is None:
            ring.setData([], [])
        else:
            ring.setData([float(self.uv[i, 0])], [float(self.uv[i, 1])])
