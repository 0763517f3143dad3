"""What a training run is watched through: loss curves, the detective's histograms, and the re-encoded map."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..widgets.palette import class_rgb

LABELS = {
    "recon": "reconstruction", "kl": "KL", "loss": "total (recon + β·KL)", "eps_mse": "eps-MSE",
    "generator": "forger G", "discriminator": "detective D", "encoder": "encoder", "decoder": "decoder (forger)",
    "prior": "KL (prior)", "llike": "feature reconstruction",
    "d_real": "mean D(x), real", "d_fake": "mean D(G(z)), fakes",
}
D_KEYS = ("d_real", "d_fake")
REAL_COLOUR = (70, 150, 230)
FAKE_COLOUR = (230, 120, 40)


def label(key: str) -> str:
    return LABELS.get(key, key)


class LossCurves(pg.GraphicsLayoutWidget):
    """Every loss the step reports, against the step; the mean verdicts D(x), D(G(z)) on a plot of their own."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.loss_plot = self.addPlot(row=0, col=0, title="losses")
        self.d_plot = self.addPlot(row=1, col=0, title="the detective's mean verdict")
        for plot in (self.loss_plot, self.d_plot):
            plot.showGrid(x=False, y=True, alpha=0.15)
            plot.setMenuEnabled(False)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            # the losses' legend top right, the verdicts' bottom left (where D(G(z)) has left by then)
            plot.addLegend(offset=(-10, 10) if plot is self.loss_plot else (10, -10), labelTextSize="8pt")
            plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.loss_plot.setLabel("bottom", "step")
        self.d_plot.setLabel("bottom", "step")
        self.d_plot.setYRange(0.0, 1.0)
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.singles: list[tuple[int, str]] = []
        self.singles_item: pg.ScatterPlotItem | None = None
        self.set_adversarial(False)

    def set_adversarial(self, on: bool) -> None:
        """The second plot: the mean verdicts for a GAN or VAE-GAN, the KL term for a VAE (apart from the
        reconstruction, which is hundreds of nats against its few); shown once it has a curve."""
        self.second = D_KEYS if on else ("kl",)
        self.d_plot.setVisible(False)
        self.d_plot.setTitle("the detective's mean verdict" if on else "the KL term (nats)")
        if on:
            self.d_plot.setYRange(0.0, 1.0)
        else:
            self.d_plot.enableAutoRange()
        self.ci.layout.setRowStretchFactor(0, 3)
        self.ci.layout.setRowStretchFactor(1, 2)

    def reset(self, adversarial: bool) -> None:
        for plot in (self.loss_plot, self.d_plot):
            plot.clear()
            if plot.legend is not None:
                plot.legend.clear()
        self.steps, self.values, self.curves = [], {}, {}
        self.singles, self.singles_item = [], None
        self.set_adversarial(adversarial)

    def add(self, step: int, losses: dict[str, float]) -> None:
        """One step's losses; keys seen first later are padded with NaN before them."""
        self.steps.append(step)
        n = len(self.steps)
        for key, value in losses.items():
            series = self.values.setdefault(key, [])
            if len(series) < n - 1:
                series.extend([np.nan] * (n - 1 - len(series)))
            series.append(float(value))
        for series in self.values.values():
            if len(series) < n:
                series.append(np.nan)

    def redraw(self) -> None:
        x = np.asarray(self.steps, dtype=np.float64)
        loss_keys = [k for k in self.values if k not in self.second]
        for key, series in self.values.items():
            curve = self.curves.get(key)
            if curve is None:
                plot = self.d_plot if key in self.second else self.loss_plot
                if key in D_KEYS:
                    colour = REAL_COLOUR if key == "d_real" else FAKE_COLOUR
                elif key in self.second:
                    colour = (120, 200, 120)
                else:
                    colour = pg.intColor(loss_keys.index(key), max(len(loss_keys), 3))
                # thousands of points repainted a few times a second: plain lines, not antialiased ones
                curve = plot.plot(pen=pg.mkPen(colour, width=1), name=label(key), connect="finite",
                                  antialias=False, skipFiniteCheck=True)
                plot.setVisible(True)
                self.curves[key] = curve
            curve.setData(x, np.asarray(series, dtype=np.float64))

    def add_single(self, step: int, kind: str, losses: dict[str, float]) -> None:
        """A slow-motion step: its verdicts as marks on the verdict plot, just after the step it paused at."""
        if self.singles_item is None:
            self.singles_item = pg.ScatterPlotItem(size=11, pen=pg.mkPen(pg.getConfigOption("foreground"), width=1))
            self.d_plot.addItem(self.singles_item)
            self.d_plot.setVisible(True)
        k = sum(1 for s, _ in self.singles if s == step)
        self.singles.append((step, kind))
        x = step + (k + 1) * max(1.0, 0.015 * step)     # a visible stride at any length of run
        symbol = "t" if kind == "detective" else "s"
        spots = [{"pos": (x, losses[key]), "symbol": symbol,
                  "brush": REAL_COLOUR if key == "d_real" else FAKE_COLOUR}
                 for key in D_KEYS if key in losses]
        self.singles_item.addPoints(spots)

    @property
    def keys(self) -> list[str]:
        return list(self.values)


class VerdictHistogram(pg.PlotWidget):
    """How sure the detective is: D(x) on real test images against D(G(z)) on fixed fakes, as histograms."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, title="D(x) on real images, D(G(z)) on fakes")
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.addLegend(offset=(10, 10), labelTextSize="8pt")
        self.setLabel("bottom", "the detective's verdict (1 = real)")
        self.setXRange(0.0, 1.0, padding=0.02)
        self.real = self.plot(stepMode="center", fillLevel=0, pen=pg.mkPen(REAL_COLOUR, width=1.5),
                              brush=(*REAL_COLOUR, 70), name="real: D(x)")
        self.fake = self.plot(stepMode="center", fillLevel=0, pen=pg.mkPen(FAKE_COLOUR, width=1.5),
                              brush=(*FAKE_COLOUR, 70), name="fakes: D(G(z))")
        self.counts: tuple[np.ndarray, np.ndarray] | None = None

    def set_counts(self, real: np.ndarray, fake: np.ndarray) -> None:
        edges = np.linspace(0.0, 1.0, len(real) + 1)
        self.real.setData(edges, np.asarray(real, dtype=np.float64))
        self.fake.setData(edges, np.asarray(fake, dtype=np.float64))
        self.counts = (np.asarray(real), np.asarray(fake))


class TrainingMap(pg.PlotWidget):
    """The test images re-encoded every epoch (2-D latents), over the detective's verdict when there is one."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, title="")
        self.setMenuEnabled(False)
        self.showGrid(x=True, y=True, alpha=0.15)
        for side in ("bottom", "left"):
            self.getAxis(side).enableAutoSIPrefix(False)
        self.verdict_item = pg.ImageItem()
        self.verdict_item.setZValue(-10)
        cmap = pg.colormap.get("CET-D1A")
        self.verdict_item.setColorMap(cmap)
        self.addItem(self.verdict_item)
        self.setAspectLocked(True)
        self.bar: pg.ColorBarItem | None = None
        self._cmap = cmap
        self.scatters: list[pg.ScatterPlotItem] = []     # one per class: one brush each, drawn in one go
        self.legend = self.addLegend(offset=(-5, 5), labelTextSize="7pt", verSpacing=-6)
        self.codes: np.ndarray | None = None
        self.verdict: np.ndarray | None = None
        self._legend_classes: tuple[str, ...] = ()
        self.message = pg.TextItem("", color=pg.getConfigOption("foreground"), anchor=(0.5, 0.5))
        self.addItem(self.message)

    def clear_map(self, text: str = "") -> None:
        for item in self.scatters:
            item.clear()
        self.verdict_item.clear()
        self.codes = self.verdict = None
        self.legend.clear()
        self._legend_classes = ()
        self.say(text)

    def say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setPos(0.0, 0.0)
        self.message.setVisible(bool(text))

    def show_codes(self, codes: np.ndarray, labels: np.ndarray | None, classes: tuple[str, ...], epoch: int) -> None:
        """The re-encoded test images, coloured by class (one colour for unlabelled pictures)."""
        self.codes = np.asarray(codes)
        labels = np.zeros(len(self.codes), np.int64) if labels is None else np.asarray(labels)
        n = max(len(classes), int(labels.max()) + 1 if len(labels) else 1)
        while len(self.scatters) < n:
            k = len(self.scatters)
            item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(*class_rgb(k), 170))
            self.addItem(item)
            self.scatters.append(item)
        for k, item in enumerate(self.scatters):
            mine = labels == k
            item.setData(self.codes[mine, 0], self.codes[mine, 1])
        if classes and self._legend_classes != tuple(classes):
            self.legend.clear()
            for k, name in enumerate(classes):
                self.legend.addItem(self.scatters[k], name)
            self._legend_classes = tuple(classes)
        self.setTitle(f"test images re-encoded after epoch {epoch}")
        self.say("")

    def show_verdict(self, verdict: np.ndarray, extent: float, title: str | None = None) -> None:
        self.verdict = np.asarray(verdict, dtype=np.float32)
        self.verdict_item.setImage(self.verdict, levels=(0.0, 1.0), autoLevels=False)
        self.verdict_item.setRect(-extent, -extent, 2 * extent, 2 * extent)
        if self.bar is None:        # what the colours mean: red says "real", blue "fake"
            self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self._cmap, interactive=False, width=12,
                                       label="D(G(z)): 1 = real")
            self.bar.setImageItem(self.verdict_item, insert_in=self.getPlotItem())
        if title:
            self.setTitle(title)
        self.say("")
