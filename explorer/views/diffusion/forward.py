"""The forward process: one test image, one fixed noise, and a slider over t that adds it in closed form,
x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·eps; beside it, what the U-Net makes of that x_t (its eps and its x̂_0),
and the schedules (ᾱ_t and the signal-to-noise ratio) of the model and of the other kind, for comparison.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from ..widgets.image_panel import ImagePanel, label_text
from .frames import eps_image

TEST_SET_SIZE = 10_000


class ForwardPanel(QWidget):
    """Asks through `submit(job, on_result)` (the view's channel); `shown` says a peek at t is on screen."""

    shown = Signal(int)            # the t now shown

    def __init__(self, submit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._submit = submit
        self.classes: tuple[str, ...] = ()
        self.T = 1000
        self.curves: dict | None = None
        self.peek = None                        # the last ForwardPeek shown

        self.index = QSpinBox()
        self.index.setRange(0, TEST_SET_SIZE - 1)
        self.index.setValue(0)
        self.index.setToolTip("Which test image to noise")
        self.random_image = QPushButton("Another image")
        self.noise_seed = QSpinBox()
        self.noise_seed.setRange(0, 2 ** 31 - 1)
        self.noise_seed.setToolTip("The seed of the one fixed noise eps that is added, more of it at every t")
        self.redraw = QPushButton("Redraw the noise")
        from superqt import QLabeledSlider     # here, not at import: the window paints before superqt loads

        self.slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, self.T - 1)
        self.slider.setValue(250)
        self.readout = QLabel("")
        self.readout.setObjectName("forwardReadout")

        top = QHBoxLayout()
        top.addWidget(QLabel("Test image"))
        top.addWidget(self.index)
        top.addWidget(self.random_image)
        top.addSpacing(16)
        top.addWidget(QLabel("Noise seed"))
        top.addWidget(self.noise_seed)
        top.addWidget(self.redraw)
        top.addStretch(1)
        scrub = QHBoxLayout()
        scrub.addWidget(QLabel("t"))
        scrub.addWidget(self.slider, 1)

        self.panels = {name: ImagePanel(title, size=120) for name, title in (
            ("x0", "x₀: the clean image"), ("eps", "eps: the noise added"), ("x_t", "x_t: what the network sees"),
            ("eps_pred", "the network's eps"), ("x0_pred", "the network's x̂₀"))}
        images = QGridLayout()
        for col, name in enumerate(self.panels):
            self.panels[name].setMaximumWidth(220)
            images.addWidget(self.panels[name], 0, col, Qt.AlignmentFlag.AlignTop)
            images.setColumnStretch(col, 1)             # five equal squares, whatever their titles say

        self.alpha_plot = pg.PlotWidget()
        self.snr_plot = pg.PlotWidget()
        for plot, title in ((self.alpha_plot, "ᾱ_t: how much of the image is left"),
                            (self.snr_plot, "signal-to-noise ratio ᾱ_t / (1 − ᾱ_t)")):
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.setTitle(title, size="9pt")
            plot.setLabel("bottom", "t")
            plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
            plot.showGrid(x=True, y=True, alpha=0.15)
        self.snr_plot.setLogMode(y=True)
        ink = pg.getConfigOption("foreground")
        self.marks = [pg.InfiniteLine(angle=90, pen=pg.mkPen(ink, width=1, style=Qt.PenStyle.DotLine))
                      for _ in range(2)]
        self.alpha_plot.addItem(self.marks[0])
        self.snr_plot.addItem(self.marks[1])
        plots = QHBoxLayout()
        plots.addWidget(self.alpha_plot, 1)
        plots.addWidget(self.snr_plot, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(scrub)
        layout.addWidget(self.readout)
        layout.addLayout(images)
        layout.addLayout(plots, 1)

        self.slider.valueChanged.connect(lambda _: self.ask())
        self.index.valueChanged.connect(lambda _: self.ask())
        self.noise_seed.valueChanged.connect(lambda _: self.ask())
        self.redraw.clicked.connect(lambda: self.noise_seed.setValue(self.noise_seed.value() + 1))
        self._rng = np.random.default_rng()
        self.random_image.clicked.connect(
            lambda: self.index.setValue(int(self._rng.integers(self.index.maximum() + 1))))

    # -- what the view tells it -------------------------------------------------------------------------------
    def set_curves(self, curves: dict, classes: tuple[str, ...]) -> None:
        """The schedules from the engine: {"T", "model": "linear" | "cosine", "linear": ᾱ, "cosine": ᾱ}."""
        self.curves, self.classes = curves, tuple(classes)
        self.T = int(curves["T"])
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.T - 1)
        self.slider.setValue(min(self.slider.value(), self.T - 1))
        self.slider.blockSignals(False)
        ink = pg.getConfigOption("foreground")
        t = np.arange(self.T)
        for plot in (self.alpha_plot, self.snr_plot):
            for item in list(plot.listDataItems()):
                plot.removeItem(item)
        for kind in ("linear", "cosine"):
            ab = np.asarray(curves[kind], np.float64)
            mine = kind == curves["model"]
            pen = pg.mkPen(ink if mine else (120, 140, 220), width=2.5 if mine else 1.5,
                           style=Qt.PenStyle.SolidLine if mine else Qt.PenStyle.DashLine)
            name = f"{kind} (this model)" if mine else kind
            self.alpha_plot.plot(t, ab, pen=pen, name=name)
            snr = ab / np.maximum(1.0 - ab, 1e-12)
            self.snr_plot.plot(t, np.maximum(snr, 1e-9), pen=pen, name=name)
        self.peek = None
        if self.isVisible():           # else when the tab is first shown: the test set waits until it is wanted,
            self.ask()                 # and never delays a run's first frame

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.peek is None:
            self.ask()

    def ask(self) -> None:
        if self.curves is None:
            return
        from ...engine.jobs.diffusion import ForwardProcess

        t = int(self.slider.value())
        for mark in self.marks:
            mark.setPos(t)
        self._submit(ForwardProcess(int(self.index.value()), t, int(self.noise_seed.value())), self._show)

    def _show(self, result) -> None:
        p = result.payload
        self.peek = p
        if p.test_count and self.index.maximum() != p.test_count - 1:    # this data set's test set, not 10,000
            self.index.blockSignals(True)
            self.index.setRange(0, p.test_count - 1)
            self.index.blockSignals(False)
        name = label_text(self.classes, p.label, None) or f"class {p.label}"
        self.panels["x0"].set_image(p.x0)
        self.panels["x0"].set_caption(f"test image {p.index}: {name}")
        self.panels["eps"].set_image(eps_image(p.eps))
        self.panels["eps"].set_caption(f"seed {self.noise_seed.value()}, fixed for every t")
        self.panels["x_t"].set_image(p.x_t)
        self.panels["x_t"].set_caption(f"√ᾱ·x₀ + √(1−ᾱ)·eps at t = {p.t}")
        self.panels["eps_pred"].set_image(eps_image(p.eps_pred))
        self.panels["eps_pred"].set_caption(f"MSE to the true eps: {p.mse_eps:.3f}")
        self.panels["x0_pred"].set_image(p.x0_pred)
        self.panels["x0_pred"].set_caption(f"MSE to x₀: {p.mse_x0:.4f}")
        snr = p.alpha_bar / max(1.0 - p.alpha_bar, 1e-12)
        self.readout.setText(f"t = {p.t} of {p.T}: ᾱ_t = {p.alpha_bar:.4f} (√ᾱ = {np.sqrt(p.alpha_bar):.3f} of the "
                             f"image, √(1−ᾱ) = {np.sqrt(1 - p.alpha_bar):.3f} of noise), SNR = {snr:.3g}. The "
                             f"network saw only x_t and t; its guess took {p.ms:.0f} ms.")
        self.shown.emit(p.t)
