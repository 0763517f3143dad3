"""The compare view's building blocks: a reconstruction column, a prior row, and the look inside a network."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout,
                               QWidget)

from ..widgets.image_grid import ImageGrid
from ..widgets.tiles import tile
from .figures import fid_text, header_text, ms_text

SMALL = 8          # point size of the figures beside the pictures
CAPTION_PT = 7     # and of the captions under them


def small(widget: QWidget, size: int = SMALL) -> QWidget:
    font = QFont(widget.font())
    font.setPointSize(size)
    widget.setFont(font)
    return widget


class Grid(ImageGrid):
    """The shared ImageGrid with small captions, so figures under small tiles do not run into each other, and a
    little room beside the first and last tiles, so their captions are not cut at the edge."""

    def set_images(self, images, columns=None) -> None:
        super().set_images(images, columns)
        if self.picture is not None:
            h, w = self.picture.shape[:2]
            pad = 0.25 * self.images.shape[2]
            self.box.setRange(xRange=(-pad, w + pad), yRange=(0, h), padding=0.0)

    def set_captions(self, captions: list[str]) -> None:
        super().set_captions(captions)
        font = small(QLabel(), CAPTION_PT).font()
        for text in self._texts:
            text.setFont(font)


class ReconColumn(QWidget):
    """One model's column: its header (name, recorded test MSE, PCA baseline), then its reconstruction of every
    row with the MSE and sharpness under each. `clicked(row)` asks to look inside the network for that row."""

    clicked = Signal(int)

    def __init__(self, path: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.header = small(QLabel(title))
        self.header.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.header.setObjectName("compareHeader")
        self.grid = Grid(columns=1, caption_lines=1)
        self.grid.setMinimumWidth(60)
        self.grid.clicked.connect(self.clicked)
        self.result: dict | None = None            # the last reconstruction (numpy)
        self.job_id = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.grid, 1)

    def set_header(self, info, others=()) -> None:
        self.header.setText(header_text(info, others))
        self.header.setToolTip("test MSE: the mean reconstruction error over the test set, recorded in the "
                               "checkpoint; PCA: the best linear code of the same size, for comparison")

    def draw(self, originals: np.ndarray | None, result: dict | None, difference: bool) -> None:
        """Draw the reconstructions (or |x - x̂| when `difference`), captions 'MSE · sharpness'."""
        self.result = result
        if result is None or originals is None or len(result["images"]) != len(originals):
            self.grid.set_images(None)
            return
        images = np.abs(originals - result["images"]) if difference else result["images"]
        self.grid.set_images(images, columns=1)
        self.grid.set_captions([f"{m:.4f} · {s:.3f}" for m, s in zip(result["mse"], result["sharpness"])])

    @property
    def images(self) -> np.ndarray | None:
        return self.grid.images


class SideLabel(QLabel):
    """A row's wrapped text beside its pictures, at a fixed width and as tall as its text, but not height-for-width:
    a column of height-for-width rows shares its height out equally whatever their stretch, and a class-conditional
    model's ten rows of classes need more than a row's share."""

    def hasHeightForWidth(self) -> bool:
        return False

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setMinimumHeight(self.heightForWidth(self.width()))


class PriorRow(QWidget):
    """One generative model's row: n draws from the same seed as every other row, the classifier's label under
    each, and beside them the recorded FID and its n, the row's sharpness and ms per sample measured live."""

    stop_clicked = Signal()

    def __init__(self, path: str, name: str, n: int, stream: bool = False, parent: QWidget | None = None,
                 classes: tuple[str, ...] = ()) -> None:
        super().__init__(parent)
        self.path = path
        self.name = name
        self.stream = stream
        self.n = n
        self.classes = tuple(classes)     # a class-conditional model: one row of n draws per class, in this order
        self.result: dict | None = None
        self.done = False
        self.info_label = small(SideLabel(name))
        self.info_label.setFixedWidth(230)
        self.info_label.setWordWrap(True)
        self.info_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        # a class-conditional model's rows of classes: no caption under each small tile (the side says how many
        # the classifier gives their asked class), and the height to show ten rows
        self.grid = Grid(columns=n, caption_lines=0 if self.classes else 1)
        self.grid.setMinimumHeight(18 * len(self.classes) if self.classes else 44)
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        side.setSpacing(1)
        side.addWidget(self.info_label, 1)
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(10)
        self.progress.setTextVisible(False)
        self.stop_button = small(QPushButton("Stop"))
        self.stop_button.setToolTip("stop the diffusion run; every other row stays as it is")
        self.stop_button.clicked.connect(self.stop_clicked)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.stop_button)
        side.addLayout(bar)
        for w in (self.progress, self.stop_button):
            w.setVisible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(side)
        layout.addWidget(self.grid, 1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def describe(self, info, note: str = "", sharp: float | None = None, ms: float | None = None,
                 seed: int | None = None) -> None:
        lines = [f"<b>{self.name}</b>", fid_text(info)]
        lines.append("sharpness " + ("…" if sharp is None else f"{sharp:.3f}") + " · " + ms_text(ms))
        if note:
            lines.append(note)
        self.info_label.setText("<br>".join(lines))
        self.info_label.setToolTip("FID: recorded in the checkpoint (domain FID on n samples; lower is better). "
                                   "Sharpness (variance of the Laplacian) and ms per sample: measured now, on this "
                                   "device" + (f", seed {seed}" if seed is not None else ""))

    def say(self, text: str) -> None:
        self.info_label.setText(f"<b>{self.name}</b><br>{text}")

    def show_images(self, images: np.ndarray, captions: list[str] | None = None) -> None:
        self.grid.set_images(images, columns=self.n if self.classes else len(images))
        if captions is not None:
            self.grid.set_captions(captions)

    def show_progress(self, step: int | None, total: int | None) -> None:
        running = step is not None and total is not None and step < total
        self.progress.setVisible(running)
        self.stop_button.setVisible(running)
        if running:
            self.progress.setRange(0, total)
            self.progress.setValue(step)


class InsidePanel(QWidget):
    """How one image passes through one network: a few channels of each stage's feature maps, the code between
    encoder and decoder, or (a dense network) its layer sizes and the code."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Click a reconstruction to see how the image passes through that network.")
        self.title.setWordWrap(True)
        self.strip = Grid(columns=8, caption_lines=2)
        self.strip.setMinimumHeight(90)
        self.note = small(QLabel(""))
        self.note.setWordWrap(True)
        self.result: dict | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.strip, 1)
        layout.addWidget(self.note)

    def clear(self, text: str) -> None:
        self.result = None
        self.title.setText(text)
        self.strip.set_images(None)
        self.note.setText("")

    def show_result(self, name: str, row_text: str, result: dict) -> None:
        self.result = result
        code = np.asarray(result["code"], dtype=np.float32)
        code_text = ", ".join(f"{v:.2f}" for v in code[:8]) + (" …" if len(code) > 8 else "")
        if result["kind"] == "conv":
            stages = result["stages"]
            pictures, captions = [], []
            for stage in stages:
                c, h, w = stage["shape"]
                pictures.append(_stage_picture(stage["tiles"]))
                captions.append(f"{stage['name']}\n{c}×{h}×{w}")
            # the code sits between the last encoder stage and the first decoder one
            at = next((i for i, s in enumerate(stages) if s["name"].startswith("decoder")), len(stages))
            pictures.insert(at, _code_picture(code, pictures[0].shape[:2]))   # H x W of the input, colour or not
            captions.insert(at, f"code\n{len(code)} numbers")
            self.strip.set_images(_same_size(pictures), columns=len(pictures))
            self.strip.set_captions(captions)
            self.title.setText(f"Inside {name}, {row_text}: glance at the key features (28 → 14 → 7), summarise, "
                               "then redraw with transposed convolutions (7 → 14 → 28). A few channels per stage.")
            self.note.setText(f"code: {code_text}")
        else:
            sizes = result["sizes"]
            enc, dec = sizes["encoder"], sizes["decoder"]
            d = len(code)
            last = enc[-1]
            code_part = f"[{d}-d code]" if last == d else f"[{last}: μ and log σ² → {d}-d code μ]"
            path = " → ".join(str(s) for s in enc[:-1]) + f" → {code_part} → " + " → ".join(str(s) for s in dec)
            self.strip.set_images(np.stack([result["input"], result["output"]]), columns=2)
            self.strip.set_captions(["input", "output"])
            self.title.setText(f"Inside {name}, {row_text}: dense layers, no pictures in between")
            self.note.setText(f"layer sizes: {path}\ncode: ({code_text})")


def _stage_picture(tiles: np.ndarray) -> np.ndarray:
    """A stage's channels side by side in a 2x2 block (one channel: as it is)."""
    tiles = np.asarray(tiles, dtype=np.float32)
    k = max(1, 14 // tiles.shape[1])                 # a 7x7 map drawn at 14x14, so it reads beside the others
    tiles = np.repeat(np.repeat(tiles, k, axis=1), k, axis=2)
    if len(tiles) == 1:
        return tiles[0]
    return tile(tiles, columns=2, gap=1, fill=np.nan)


def _code_picture(code: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The code as a strip of grey cells, scaled to [0, 1] (mid-grey is 0)."""
    h, w = shape
    scale = max(float(np.abs(code).max()), 1e-6)
    cells = 0.5 + 0.5 * code / scale
    n = len(code)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows, cols), np.nan, dtype=np.float32)
    grid.flat[:n] = cells
    cell = max(1, min(h // rows, w // cols))
    big = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)
    out = np.full((h, w), np.nan, dtype=np.float32)
    y0, x0 = (h - big.shape[0]) // 2, (w - big.shape[1]) // 2
    out[y0:y0 + big.shape[0], x0:x0 + big.shape[1]] = big
    return out


def _same_size(pictures: list[np.ndarray]) -> np.ndarray:
    """Pictures of different sizes centred on one canvas each (the biggest's size), each pixel repeated so that
    small maps read as big squares: a 7x7 map is drawn as large as a 28x28 one."""
    h = max(p.shape[0] for p in pictures)
    w = max(p.shape[1] for p in pictures)
    colour = any(p.ndim == 3 for p in pictures)       # a colour input: every picture on an RGB canvas
    out = np.full((len(pictures), h, w, 3) if colour else (len(pictures), h, w), np.nan, dtype=np.float32)
    for i, p in enumerate(pictures):
        if colour and p.ndim == 2:
            p = np.repeat(p[..., None], 3, axis=2)
        k = max(1, min(h // p.shape[0], w // p.shape[1]))
        big = np.repeat(np.repeat(p, k, axis=0), k, axis=1)
        y0, x0 = (h - big.shape[0]) // 2, (w - big.shape[1]) // 2
        out[i, y0:y0 + big.shape[0], x0:x0 + big.shape[1]] = big
    return out
