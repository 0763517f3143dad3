"""Many small images as one picture: what strips, grids and exports draw."""
from __future__ import annotations

import numpy as np


def tile(images: np.ndarray, columns: int = 4, gap: int = 2, fill: float = 0.5) -> np.ndarray:
    """(n, H, W) or (n, H, W, 3) images in rows of `columns` with thin gaps: one picture, first image top-left."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape[:3]
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    out = np.full((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, *images.shape[3:]), fill,
                  dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = images[i]
    return out


def tile_origin(index: int, shape: tuple[int, int], columns: int, gap: int = 2) -> tuple[int, int]:
    """(x, y) of tile `index`'s top-left pixel in the picture `tile` makes."""
    h, w = shape
    r, c = divmod(index, max(1, columns))
    return c * (w + gap), r * (h + gap)


def tile_at(x: float, y: float, n: int, shape: tuple[int, int], columns: int, gap: int = 2) -> int | None:
    """Which tile the picture's pixel (x, y) lies on, or None (a gap, or past the last image)."""
    h, w = shape
    if x < 0 or y < 0:
        return None
    c, dx = divmod(int(x), w + gap)
    r, dy = divmod(int(y), h + gap)
    if dx >= w or dy >= h or c >= columns:
        return None
    i = r * columns + c
    return i if i < n else None


def picture_shape(image_shape) -> tuple[int, ...]:
    """A model's (C, H, W) as the UI holds its pictures: (H, W) for one channel, (H, W, 3) for three."""
    c, h, w = (int(s) for s in image_shape)
    return (h, w) if c == 1 else (h, w, c)


def like_colour(parts: list[np.ndarray], colour: bool | None = None) -> list[np.ndarray]:
    """Grey pictures (H, W) made (H, W, 3) when any part is colour (or `colour` says so), so they join; a list of
    grey ones comes back as it was."""
    if colour is None:
        colour = any(p.ndim == 3 for p in parts)
    if not colour:
        return parts
    return [p if p.ndim == 3 else np.repeat(p[..., None], 3, axis=-1) for p in parts]
