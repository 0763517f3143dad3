"""The app's one class palette: class k has the same colour in every tab (the map's dots and layers, the diffusion
view's decided strip, the training view's re-encoded test set), so a T-shirt is the same blue everywhere.

Ten colours a reader can tell apart on light and dark backgrounds (Tableau 10); class k takes colour k mod 10.
Plain values and numpy only, so anything may use it.
"""
from __future__ import annotations

import numpy as np

CLASS_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


def class_colour(k: int) -> str:
    """Class k's colour as "#rrggbb"."""
    return CLASS_COLOURS[k % len(CLASS_COLOURS)]


def class_rgb(k: int) -> tuple[int, int, int]:
    """Class k's colour as 0-255 integers."""
    hexcol = class_colour(k)
    return int(hexcol[1:3], 16), int(hexcol[3:5], 16), int(hexcol[5:7], 16)


def rgba_table(alpha: int = 255) -> np.ndarray:
    """(10, 4) uint8: each class's colour, row k for class k."""
    return np.array([(*class_rgb(k), alpha) for k in range(len(CLASS_COLOURS))], dtype=np.uint8)


def rgb_unit() -> np.ndarray:
    """(10, 3) float32 in [0, 1]: each class's colour, row k for class k."""
    return rgba_table()[:, :3].astype(np.float32) / 255.0
