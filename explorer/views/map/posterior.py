"""A VAE's encoder answers with a Gaussian, not a point: q(z | x) = N(mu, diag(sigma^2)). For the pinned image
the map draws that Gaussian's 1-sigma and 2-sigma ellipses (for a latent larger than 2, diag(sigma^2) projected
onto the plane) and, on request, the points z = mu + sigma * eps it draws, with their decoded images.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..widgets.plane import Plane, ellipse

SIGMAS = (1.0, 2.0)
ELLIPSE_COLOUR = "#ffffff"


class PosteriorOverlay:
    """The ellipses and the sample points on the map, for one pinned image."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.curves = []
        for k, style in zip(SIGMAS, (pg.QtCore.Qt.PenStyle.SolidLine, pg.QtCore.Qt.PenStyle.DashLine)):
            halo = pg.PlotCurveItem(pen=pg.mkPen("#000000", width=4.5))
            curve = pg.PlotCurveItem(pen=pg.mkPen(ELLIPSE_COLOUR, width=2, style=style))
            for item, z in ((halo, 30), (curve, 31)):
                item.setZValue(z)
                item.setVisible(False)
                plot.addItem(item)
            self.curves.append((k, halo, curve))
        self.samples = pg.ScatterPlotItem(size=9, symbol="x", pen=pg.mkPen("#000000", width=1),
                                          brush=pg.mkBrush(ELLIPSE_COLOUR))
        self.samples.setZValue(32)
        plot.addItem(self.samples)
        self.mu: np.ndarray | None = None
        self.variances: np.ndarray | None = None
        self.sample_z: np.ndarray | None = None

    @property
    def visible(self) -> bool:
        return self.curves[0][2].isVisible()

    def set_posterior(self, mu: np.ndarray | None, logvar: np.ndarray | None) -> None:
        """The pinned image's Gaussian (full latent); None hides everything."""
        self.mu = None if mu is None or logvar is None else np.asarray(mu, np.float32)
        self.variances = None if self.mu is None else np.exp(np.asarray(logvar, np.float64))
        self.sample_z = None
        self.samples.setData([], [])

    def set_samples(self, z: np.ndarray | None) -> None:
        self.sample_z = None if z is None else np.asarray(z, np.float32)

    def redraw(self, plane: Plane | None) -> None:
        """Draw for the current plane (call after a re-centre or a new pin)."""
        show = plane is not None and self.mu is not None
        for k, halo, curve in self.curves:
            if show:
                pts = ellipse(plane.project(self.mu), plane.project_cov(self.variances), k)
                halo.setData(pts[:, 0], pts[:, 1])
                curve.setData(pts[:, 0], pts[:, 1])
            halo.setVisible(show)
            curve.setVisible(show)
        if show and self.sample_z is not None:
            uv = plane.project(self.sample_z)
            self.samples.setData(uv[:, 0], uv[:, 1])
        else:
            self.samples.setData([], [])

    def ellipse_points(self, k_index: int = 0) -> np.ndarray:
        """The k-th drawn ellipse as (n, 2) map points (for tests and the screenshot check)."""
        x, y = self.curves[k_index][2].getData()
        return np.stack([x, y], axis=1)
