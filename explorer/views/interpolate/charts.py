"""The interpolation view's two plots, and the GAN inversion's error curve.

- |z| along t for the straight and the spherical walk, against sqrt(d), where a Gaussian prior's mass lies;
- the pixel change between consecutive frames of the strip: a hole the path crosses shows as a spike;
- the inversion's error per step, with the prior mean's picture as the bar to beat.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from .paths import LERP, SLERP, path_points

NORM_SAMPLES = 121
COLOURS = {LERP: (230, 126, 34), SLERP: (52, 152, 219)}


def _plot(title: str, left: str, bottom: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background=None)
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setTitle(title, size="9pt")
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    plot.showGrid(x=True, y=True, alpha=0.15)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)
    plot.setMinimumHeight(190)
    return plot


class NormPlot:
    """|z(t)| for lerp and slerp through the keyframes' codes, the shell radius sqrt(d), and the slider's t."""

    def __init__(self) -> None:
        self.widget = _plot("|z| along the path", "|z|", "t")
        self.widget.addLegend(offset=(50, 2), labelTextSize="8pt", colCount=2)
        self.curves = {kind: self.widget.plot([], [], pen=pg.mkPen(COLOURS[kind], width=1.5), name=kind)
                       for kind in (LERP, SLERP)}
        ink = pg.getConfigOption("foreground")
        self.shell = pg.InfiniteLine(angle=0, pen=pg.mkPen(ink, width=1, style=pg.QtCore.Qt.PenStyle.DashLine),
                                     label="√d",
                                     labelOpts={"position": 0.93, "color": ink, "anchors": [(0, 1), (0, 1)]})
        self.widget.addItem(self.shell)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(ink, width=1))
        self.widget.addItem(self.cursor)
        self.norms: dict[str, np.ndarray] = {}

    def draw(self, codes: np.ndarray | None, kind: str) -> None:
        if codes is None:
            for curve in self.curves.values():
                curve.setData([], [])
            self.norms = {}
            return
        ts = np.linspace(0.0, 1.0, NORM_SAMPLES)
        for k, curve in self.curves.items():
            self.norms[k] = np.linalg.norm(path_points(codes, ts, k), axis=1)
            curve.setData(ts, self.norms[k])
            curve.setPen(pg.mkPen(COLOURS[k], width=2.5 if k == kind else 1.2))
        d = codes.shape[1]
        self.shell.setValue(math.sqrt(d))
        top = max(math.sqrt(d), *(float(n.max()) for n in self.norms.values()))
        self.widget.setYRange(0.0, 1.3 * top, padding=0.0)     # headroom for the legend
        self.widget.setXRange(0.0, 1.0, padding=0.02)

    def set_t(self, t: float) -> None:
        self.cursor.setValue(float(t))


class StepPlot:
    """Bars of the mean |pixel change| from each frame of the strip to the next; the largest jump named."""

    def __init__(self) -> None:
        self.widget = _plot("pixel change between consecutive frames", "mean |Δ pixel|", "t")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.05, brush=pg.mkBrush(52, 152, 219, 180), pen=None)
        self.widget.addItem(self.bars)
        self.steps = np.zeros(0, np.float32)

    def draw(self, steps: np.ndarray | None) -> None:
        if steps is None or len(steps) == 0:
            self.bars.setOpts(x=[], height=[])
            self.steps = np.zeros(0, np.float32)
            return
        self.steps = np.asarray(steps, np.float32)
        n = len(self.steps)
        x = (np.arange(n) + 0.5) / n
        big = int(np.argmax(self.steps))
        brushes = [pg.mkBrush(231, 76, 60, 220) if i == big else pg.mkBrush(52, 152, 219, 180) for i in range(n)]
        self.bars.setOpts(x=x, height=self.steps, width=0.8 / n, brushes=brushes)
        self.widget.setXRange(0.0, 1.0, padding=0.02)
        self.widget.setYRange(0.0, 1.1 * float(self.steps.max() or 1e-3), padding=0.0)
        mean = float(self.steps.mean())
        self.widget.setTitle(f"pixel change per frame: mean {mean:.3f}, largest jump {self.steps[big]:.3f} "
                             f"({self.steps[big] / max(mean, 1e-9):.1f}×)", size="9pt")


class ErrorPlot:
    """The inversion's pixel error per step (the mean over keyframes), against the prior mean's picture G(0)."""

    def __init__(self) -> None:
        self.widget = _plot("inversion error", "pixel MSE", "Adam step")
        self.widget.setMinimumHeight(120)
        self.widget.setMaximumHeight(190)
        ink = pg.getConfigOption("foreground")
        self.curve = self.widget.plot([], [], pen=pg.mkPen(COLOURS[SLERP], width=2))
        self.baseline = pg.InfiniteLine(angle=0, pen=pg.mkPen(ink, width=1, style=pg.QtCore.Qt.PenStyle.DashLine),
                                        label="G(0)", labelOpts={"position": 0.9, "color": ink})
        self.baseline.setVisible(False)
        self.widget.addItem(self.baseline)
        self.steps: list[int] = []
        self.errors: list[float] = []

    def clear(self) -> None:
        self.steps, self.errors = [], []
        self.curve.setData([], [])
        self.baseline.setVisible(False)

    def add(self, step: int, error: float, baseline: float | None) -> None:
        if self.steps and step <= self.steps[-1]:
            self.clear()
        self.steps.append(int(step))
        self.errors.append(max(float(error), 1e-8))
        self.curve.setData(self.steps, self.errors)
        top = max(self.errors)
        if baseline is not None and baseline > 0:
            self.baseline.setValue(baseline)
            self.baseline.setVisible(True)
            top = max(top, baseline)
        self.widget.setYRange(0.0, 1.1 * top, padding=0.0)
        self.widget.setXRange(0, max(self.steps[-1], 1), padding=0.02)
