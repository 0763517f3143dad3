"""The map's four layers, each off until the user turns it on, each recomputed when the view settles:

1. decoded thumbnails on an n x n grid over the visible region: the classic 2-D manifold figure;
2. the same grid coloured by the classifier's predicted class: a discriminative model's decision regions
   laid over a generative model's map;
3. "where the data is not": each point's distance to the nearest encoded test image in the full latent space,
   in units of the data's latent std per axis, on one fixed colour scale for every model, so a plain AE's
   holes and a VAE's filled-in space compare directly;
4. for a model with a discriminator (GAN, VAE-GAN), the same grid coloured by the detective's verdict D(G(z)):
   where on the plane the forger fools it and where it is caught.

A layer knows how to build its request (latents for the current plane and region) and how to draw the answer;
the view submits and routes results.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from ..widgets.palette import CLASS_COLOURS, rgba_table
from ..widgets.plane import Plane, grid_centres, mosaic

GRID_N = 12                       # thumbnails per side
DISTANCE_N = 48                   # distance samples per side
DISTANCE_MAX = 3.0                # top of the colour scale, in data std per axis: the same for every model
CRITIC_LEGEND = ("<b>The detective's verdict</b><br>colour: D(G(z)), the discriminator's<br>"
                 "probability that the picture<br>decoded there is real<br>(blue: caught as fake, red: fooled)")
DISTANCE_LEGEND = ("<b>Where the data is not</b><br>colour: distance from each point<br>to the nearest test image,<br>"
                   "in the full latent space,<br>× the data's latent std per axis<br>"
                   f"(0 to {DISTANCE_MAX:g}: one scale for all models)")


@dataclass(frozen=True)
class Region:
    """A rectangle of the map: x (u) from x0 to x1, y (v) from y0 to y1."""

    x0: float
    x1: float
    y0: float
    y1: float

    @classmethod
    def of(cls, view_range) -> "Region":
        (x0, x1), (y0, y1) = view_range
        return cls(float(x0), float(x1), float(y0), float(y1))

    def rect(self) -> QRectF:
        return QRectF(self.x0, self.y0, self.x1 - self.x0, self.y1 - self.y0)

    def centres(self, n: int) -> np.ndarray:
        return grid_centres((self.x0, self.x1), (self.y0, self.y1), n)


def attach_bar(plot: pg.PlotItem, bar: pg.ColorBarItem, image: pg.ImageItem, column: int) -> None:
    """A vertical colour bar for `image`, right of the plot in its own layout column (5, 6, ...): pyqtgraph's
    insert_in always uses column 5, so two bars (a VAE-GAN's verdict and distance layers) would sit on each other."""
    bar.setImageItem(image)
    plot.layout.addItem(bar, 2, column)
    plot.layout.setColumnFixedWidth(4, 5)              # the gap to the right-hand axis, as insert_in keeps it


def _place(item: pg.ImageItem, picture: np.ndarray, region: Region, **opts) -> None:
    """Show a top-row-first picture over a region of the map (whose v axis points up)."""
    item.setImage(np.ascontiguousarray(picture[::-1]), autoLevels=False, **opts)
    item.setRect(region.rect())


class GridLayers:
    """Layers 1, 2 and 4 share one decode of the n x n grid: thumbnails, the classifier's colour per cell, and the
    discriminator's verdict per cell."""

    def __init__(self, plot: pg.PlotItem, critic_legend: pg.LabelItem, n: int = GRID_N) -> None:
        self.n = n
        self.thumbs = pg.ImageItem(axisOrder="row-major")
        self.thumbs.setZValue(-30)
        self.regions = pg.ImageItem(axisOrder="row-major")
        self.regions.setZValue(-29)
        self.regions.setOpacity(0.45)
        self.verdict = pg.ImageItem(axisOrder="row-major")
        self.verdict.setZValue(-28)
        self.verdict.setOpacity(0.6)
        cmap = pg.colormap.get("CET-D1")             # diverging: blue (fake) through white to red (real)
        self.verdict.setColorMap(cmap)
        for item in (self.thumbs, self.regions, self.verdict):
            item.setVisible(False)
            plot.addItem(item)
        self.critic_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=cmap, interactive=False, width=14,
                                          colorMapMenu=False)
        attach_bar(plot, self.critic_bar, self.verdict, column=5)
        self.critic_bar.setVisible(False)
        self.critic_legend = critic_legend
        critic_legend.setText(CRITIC_LEGEND, size="9pt")
        critic_legend.setVisible(False)
        self.show_thumbs = False
        self.show_regions = False
        self.show_critic = False
        self.drawn_region: Region | None = None      # what the items on screen cover
        self.critic: np.ndarray | None = None        # (n, n) D(G(z)) per cell, top row first

    @property
    def wanted(self) -> bool:
        return self.show_thumbs or self.show_regions or self.show_critic

    def latents(self, plane: Plane, region: Region) -> np.ndarray:
        return plane.to_latent(region.centres(self.n))

    def draw(self, payload, region: Region) -> None:
        """Draw a Decoded answer for the grid's latents over `region`."""
        images = np.asarray(payload.images, dtype=np.float32)
        _place(self.thumbs, mosaic(images, self.n), region, levels=(0.0, 1.0))
        if payload.labels is not None:
            cells = rgba_table()[np.asarray(payload.labels) % len(CLASS_COLOURS)].reshape(self.n, self.n, 4)
            _place(self.regions, cells, region, levels=(0, 255))
        else:
            self.regions.clear()
        if payload.critic is not None:
            self.critic = np.asarray(payload.critic, dtype=np.float32).reshape(self.n, self.n)
            _place(self.verdict, self.critic, region, levels=(0.0, 1.0))
        else:
            self.critic = None
            self.verdict.clear()
        self.drawn_region = region
        self.refresh()

    def refresh(self) -> None:
        drawn = self.drawn_region is not None
        self.thumbs.setVisible(self.show_thumbs and drawn)
        self.regions.setVisible(self.show_regions and drawn and self.regions.image is not None)
        self.verdict.setVisible(self.show_critic and drawn and self.critic is not None)
        self.critic_bar.setVisible(self.show_critic)
        self.critic_legend.setVisible(self.show_critic)

    def clear(self) -> None:
        self.thumbs.clear()
        self.regions.clear()
        self.verdict.clear()
        self.critic = None
        self.drawn_region = None
        self.refresh()


class DistanceLayer:
    """Layer 3: distance from each point of the visible plane to the nearest encoded test image, on a fixed scale."""

    def __init__(self, plot: pg.PlotItem, legend: pg.LabelItem, n: int = DISTANCE_N) -> None:
        self.n = n
        self.legend = legend                  # says what the colour bar measures, beside the class legend
        legend.setText(DISTANCE_LEGEND, size="9pt")
        legend.setVisible(False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(-20)
        self.item.setOpacity(0.85)
        self.item.setVisible(False)
        plot.addItem(self.item)
        cmap = pg.colormap.get("inferno")
        self.item.setColorMap(cmap)
        self.bar = pg.ColorBarItem(values=(0.0, DISTANCE_MAX), colorMap=cmap, interactive=False, width=14,
                                   colorMapMenu=False)
        attach_bar(plot, self.bar, self.item, column=6)
        self.bar.setVisible(False)
        self.show = False
        self.drawn_region: Region | None = None
        self.distance: np.ndarray | None = None     # (n, n), top row first, in data std units

    @property
    def wanted(self) -> bool:
        return self.show

    def latents(self, plane: Plane, region: Region) -> np.ndarray:
        return plane.to_latent(region.centres(self.n))

    def draw(self, payload: dict, region: Region) -> None:
        self.distance = np.asarray(payload["distance"], dtype=np.float32).reshape(self.n, self.n)
        _place(self.item, self.distance, region, levels=(0.0, DISTANCE_MAX))
        self.drawn_region = region
        self.refresh()

    def refresh(self) -> None:
        on = self.show and self.drawn_region is not None
        self.item.setVisible(on)
        self.bar.setVisible(self.show)
        self.legend.setVisible(self.show)

    def clear(self) -> None:
        self.item.clear()
        self.distance = None
        self.drawn_region = None
        self.refresh()
