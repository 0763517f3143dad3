"""Any picture file as a keyframe: converted to what the model was trained on.

For a grey model (Fashion-MNIST: a light garment on a black ground) a photo or a drawing is turned into that:
grey, fitted into the model's size with its aspect kept (the rest padded with its own background), and inverted
when its background is light, which is how a product photo or a sketch on paper usually comes. For a colour model
it is read in colour, resized with its aspect kept and centre-cropped to the model's size, as its data set was.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff)"


class ImageFileError(ValueError):
    """The file is not a picture this can read; str(err) is one sentence for the view."""


def background_level(grey: np.ndarray) -> float:
    """The picture's background, as the median of its outermost pixels (in [0, 1])."""
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge))


def convert(grey: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A grey picture (H, W) in [0, 1] -> (size) in [0, 1], light on dark: fitted with its aspect kept, padded
    with its background, inverted when that background is light."""
    from PIL import Image

    grey = np.asarray(grey, dtype=np.float32)
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise ImageFileError("the picture has no pixels")
    back = background_level(grey)
    h, w = grey.shape
    th, tw = size
    scale = min(th / h, tw / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = Image.fromarray(grey, mode="F").resize((nw, nh), Image.Resampling.LANCZOS)
    out = np.full(size, back, dtype=np.float32)
    top, left = (th - nh) // 2, (tw - nw) // 2
    out[top:top + nh, left:left + nw] = np.asarray(small, dtype=np.float32)
    out = np.clip(out, 0.0, 1.0)
    return 1.0 - out if back > 0.5 else out


def load_image(path: str | Path, size: tuple[int, ...] = (1, 28, 28)) -> np.ndarray:
    """Read a picture file (PNG, JPEG, GIF, BMP, WebP or TIFF; any size, colour or grey, 8 or 16 bits) through the
    project's one reader, `models.images.read_picture`, and convert it to a model's picture: `size` is its
    (C, H, W), or (H, W) for grey. Grey: see `convert`, (H, W); colour: (H, W, 3), resized with the aspect kept
    and centre-cropped. ImageFileError (one sentence) when it cannot be read as a picture, a decompression bomb
    included."""
    from models.images import PictureError, read_picture

    channels, hw = (1, tuple(size)) if len(size) == 2 else (int(size[0]), tuple(size[1:]))
    try:
        if channels == 3:
            return read_picture(path, channels=3, size=hw, ground=0.0).astype(np.float32)
        # see-through counts as paper (white); a large photo is read scaled down, never at full size
        grey = read_picture(path, channels=1, within=max(256, 4 * max(hw)), ground=1.0)
    except PictureError as err:
        raise ImageFileError(str(err)) from None
    return convert(grey, hw)
