"""Many images at once, crisp, with a caption under each and a click that says which one: the strip of an
interpolation, the grid of a diffusion run, a row of reconstructions.

One pyqtgraph ImageItem holds the tiled picture (a single texture, however many images), and the captions are
pyqtgraph TextItems placed under the tiles, so a 32-frame strip repaints as fast as one image.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy

from .tiles import tile, tile_at, tile_origin

GAP = 2


class ImageGrid(pg.GraphicsView):
    """`set_images((n, H, W) in [0, 1], columns)`, `set_captions([...])`; emits `clicked(index)`."""

    clicked = Signal(int)

    def __init__(self, parent=None, columns: int = 8, caption_lines: int = 1) -> None:
        super().__init__(parent, background=None)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFrameShape(self.Shape.NoFrame)
        self.box = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False,
                              defaultPadding=0.0)
        self.setCentralItem(self.box)
        self.item = pg.ImageItem(levels=(0.0, 1.0))
        self.box.addItem(self.item)
        self.columns = columns
        self.caption_lines = caption_lines
        self.images: np.ndarray | None = None
        self.picture: np.ndarray | None = None
        self._texts: list[pg.TextItem] = []
        self._ink = pg.getConfigOption("foreground")

    @property
    def count(self) -> int:
        return 0 if self.images is None else int(self.images.shape[0])

    def set_images(self, images: np.ndarray | None, columns: int | None = None) -> None:
        """Show (n, H, W) (or (n, H, W, 3)) images in [0, 1]; None clears the grid."""
        if columns is not None:
            self.columns = max(1, int(columns))
        if images is None or len(images) == 0:
            self.images = self.picture = None
            self.item.clear()
            self.set_captions([])
            return
        self.images = np.asarray(images, dtype=np.float32)
        cols = min(self.columns, len(self.images))
        self.picture = tile(self.images, cols, GAP, fill=np.nan)     # gaps and empty tiles: transparent
        # room under every row for its captions: the picture gets a band of background below each row of tiles
        h, w = self.images.shape[1:3]
        band = self._band(h)
        if band:
            rows = -(-len(self.images) // cols)
            padded = np.full((rows * (h + band + GAP) - GAP, self.picture.shape[1], *self.picture.shape[2:]), np.nan,
                             dtype=np.float32)
            for r in range(rows):
                src = self.picture[r * (h + GAP): r * (h + GAP) + h]
                padded[r * (h + band + GAP): r * (h + band + GAP) + h] = src
            self.picture = padded
        self.item.setImage(self.picture, levels=(0.0, 1.0), autoLevels=False)
        self.box.setRange(xRange=(0, self.picture.shape[1]), yRange=(0, self.picture.shape[0]), padding=0.0)
        self._place_captions()

    def set_captions(self, captions: list[str]) -> None:
        """One caption per image (shown under it, up to `caption_lines` lines)."""
        for item in self._texts[len(captions):]:
            self.box.removeItem(item)
        self._texts = self._texts[:len(captions)]
        while len(self._texts) < len(captions):
            text = pg.TextItem("", color=self._ink, anchor=(0.5, 0.0))
            self.box.addItem(text)
            self._texts.append(text)
        for text, caption in zip(self._texts, captions):
            text.setText(caption)
        self._place_captions()

    @property
    def captions(self) -> list[str]:
        return [t.toPlainText() for t in self._texts]

    def _band(self, h: int) -> int:
        return 0 if self.caption_lines <= 0 else int(round(0.45 * h * self.caption_lines))

    def _place_captions(self) -> None:
        if self.images is None:
            return
        h, w = self.images.shape[1:3]
        cols = min(self.columns, len(self.images))
        band = self._band(h)
        for i, text in enumerate(self._texts):
            r, c = divmod(i, cols)
            text.setPos(c * (w + GAP) + w / 2, r * (h + band + GAP) + h)

    def index_at(self, x: float, y: float) -> int | None:
        """The image under the picture's pixel (x, y), if any."""
        if self.images is None:
            return None
        h, w = self.images.shape[1:3]
        cols = min(self.columns, len(self.images))
        band = self._band(h)
        r, dy = divmod(int(y), h + band + GAP) if y >= 0 else (-1, 0)
        if r < 0 or dy >= h:
            return None
        return tile_at(x, r * (h + GAP) + dy, len(self.images), (h, w), cols, GAP)

    def tile_origin(self, index: int) -> tuple[float, float]:
        h, w = self.images.shape[1:3]
        cols = min(self.columns, len(self.images))
        x, _ = tile_origin(index, (h, w), cols, GAP)
        r = index // cols
        return x, r * (h + self._band(h) + GAP)

    def mousePressEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.images is not None:
            p = self.box.mapSceneToView(self.mapToScene(ev.position().toPoint()))
            i = self.index_at(p.x(), p.y())
            if i is not None:
                self.clicked.emit(i)
                ev.accept()
                return
        super().mousePressEvent(ev)
