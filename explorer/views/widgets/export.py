"""Saving what a view shows: a PNG of one picture, an animated GIF of frames, written through Pillow.

Saves are atomic (a temporary file beside the target, then a rename), so a failed save never leaves half a file
where a good one was, and a destination that cannot be written raises ExportError with one sentence to show.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class ExportError(OSError):
    """The picture could not be written; str(err) says where and why, in one sentence."""


def to_uint8(image: np.ndarray, scale: int = 1) -> np.ndarray:
    """[0, 1] floats (H, W) or (H, W, 3) -> uint8, each pixel repeated `scale` times (crisp, no blur)."""
    arr = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    arr = np.round(arr * 255.0).astype(np.uint8)
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    return arr


def _atomic_save(path: str | Path, write) -> Path:
    """Write through `write(file)` into a temporary file, then rename it over `path` (models.atomic's way)."""
    from models.atomic import atomic_write_path

    path = Path(path).expanduser()
    try:
        with atomic_write_path(path) as tmp, open(tmp, "wb") as f:
            write(f)
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def save_png(image: np.ndarray, path: str | Path, scale: int = 4) -> Path:
    """One picture ([0, 1], grey or RGB) as a PNG, each pixel a `scale`-sized square."""
    from PIL import Image

    img = Image.fromarray(to_uint8(image, scale))
    return _atomic_save(path, lambda f: img.save(f, format="PNG"))


def save_gif(frames: list[np.ndarray] | np.ndarray, path: str | Path, scale: int = 4, frame_ms: int = 80,
             bounce: bool = False) -> Path:
    """Frames ([0, 1], all one shape) as a looping animated GIF; `bounce` plays them forward then back."""
    from PIL import Image

    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ExportError("there are no frames to save")
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    images = [Image.fromarray(to_uint8(f, scale)) for f in frames]
    return _atomic_save(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                        duration=frame_ms, loop=0, disposal=2))


def save_strip(frames: np.ndarray, path: str | Path, kind: str, scale: int, bounce: bool = True) -> tuple[bool, str]:
    """A strip of frames saved as a looping GIF (`kind` "gif") or as one row of a PNG: (saved, the sentence the
    view shows). The interpolation and directions strips export through this one door."""
    from .tiles import tile

    try:
        if kind == "gif":
            return True, f"Saved {len(frames)} frames to {save_gif(list(frames), path, scale=scale, bounce=bounce)}."
        return True, f"Saved the strip to {save_png(tile(frames, columns=len(frames), fill=0.0), path, scale=scale)}."
    except ExportError as err:
        return False, str(err)
