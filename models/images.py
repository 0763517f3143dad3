"""Every picture a user hands the project, read one way: never trusted, never a crash, one sentence when refused.

The files of a `folder:` data set, the interpolation's "Add image file…" and any picture a view takes later go
through `read_picture`. It opens only regular files (a FIFO or a device would hang a reader), lets Pillow try only
the plain raster formats (no EPS, whose reader starts Ghostscript), refuses a picture that claims more pixels than
Pillow's limit (`PIL.Image.MAX_IMAGE_PIXELS`: a decompression bomb) before decoding it, and converts what is odd
but valid: 16-bit grey with its whole range (not clipped to 8 bits), CMYK, palettes, transparency composited on a
ground, the first frame of an animation, the EXIF orientation, any aspect ratio. Whatever goes wrong becomes a
`PictureError` whose text is one sentence naming the file.

`index_folder` lists a folder's pictures by opening each one's header only (the pixels are decoded when a batch
needs them): labelled by subfolder when it has subfolders, unlabelled otherwise, with every file it skipped and
why. Neither module needs torch: a window's thread may read pictures with it.
"""
from __future__ import annotations

import functools
import os
import stat
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .catalog import folder_classes

# The raster formats a picture may be in; Pillow tries no other reader on a user's file (its JPEG reader also
# opens a camera's multi-picture JPEG, MPO).
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, WebP or TIFF"
DEFAULT_PIXEL_LIMIT = 89_478_485          # Pillow's own default for MAX_IMAGE_PIXELS
ORIENTATION = 0x0112                      # the EXIF tag that says how the camera was held
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)    # ITU-R 601-2, as Pillow's convert("L")

# A picture between Pillow's limit and twice it only warns in Pillow; it is refused here before any decoding,
# so the warning would only repeat that on the terminal.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class PictureError(ValueError):
    """A file that cannot be read as a picture; str(err) is one sentence naming the file and why."""


@functools.lru_cache(maxsize=1)
def _formats() -> tuple[str, ...]:
    """FORMATS that this Pillow has a reader for (WebP needs its library)."""
    Image.init()
    return tuple(f for f in FORMATS if f in Image.OPEN)


def pixel_limit() -> int:
    """The most pixels a picture may claim: Pillow's MAX_IMAGE_PIXELS (its default where a program unset it)."""
    return int(Image.MAX_IMAGE_PIXELS or DEFAULT_PIXEL_LIMIT)


@contextmanager
def open_picture(path: str | Path) -> Iterator[Image.Image]:
    """The picture's header, opened safely (see the module's docstring); its pixels are not decoded yet."""
    path = Path(path)
    name = path.name or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)        # non-blocking: opening a FIFO does not wait for a writer
    except FileNotFoundError:
        raise PictureError(f"there is no file {name}") from None
    except IsADirectoryError:
        raise PictureError(f"{name} is a folder, not a picture") from None
    except OSError as err:
        raise PictureError(f"{name} cannot be opened: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise PictureError(f"{name} is a folder, not a picture")
        if not stat.S_ISREG(info.st_mode):
            raise PictureError(f"{name} is not a regular file")
        if info.st_size == 0:
            raise PictureError(f"{name} is empty (zero bytes)")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        try:
            img = Image.open(f, formats=_formats())
        except Image.DecompressionBombError:
            raise PictureError(f"{name} claims more pixels than Pillow's limit of {pixel_limit():,} "
                               "(a decompression bomb); it was not decoded") from None
        except UnidentifiedImageError:
            raise PictureError(f"{name} is not a picture in a format read here ({FORMAT_NAMES})") from None
        except Exception as err:         # a damaged header: Pillow's readers raise many kinds
            raise PictureError(f"{name} has a damaged header ({type(err).__name__})") from None
        with img:
            w, h = img.size
            if w < 1 or h < 1:
                raise PictureError(f"{name} has no pixels ({w}x{h})")
            if w * h > pixel_limit():
                raise PictureError(f"{name} claims {w:,}x{h:,} pixels, more than Pillow's limit of "
                                   f"{pixel_limit():,} (a decompression bomb); it was not decoded")
            yield img


def probe(path: str | Path) -> tuple[str, tuple[int, int]]:
    """(format, (width, height)) from the header alone; PictureError when the file is no picture read here."""
    with open_picture(path) as img:
        return str(img.format), img.size


def read_picture(path: str | Path, *, channels: int = 3, size: int | tuple[int, int] | None = None,
                 within: int | None = None, ground: float | Sequence[float] = 0.0) -> np.ndarray:
    """A picture file as float32 in [0, 1]: (H, W) for channels=1, (H, W, 3) for channels=3.

    size: (H, W) (or one int for a square): resized with the aspect kept until it covers that size, then
    centre-cropped to it (done as one resize of the centre box, so a 1x100,000 strip costs no more than a square).
    within: otherwise, scaled down (never up) so its longer side is at most this; None keeps every pixel.
    ground: the grey level or RGB colour a transparent pixel shows (alpha is composited on it).
    16-bit grey keeps its range; colour becomes grey by ITU-R 601 luma; grey becomes colour by repetition.
    Raises PictureError (one sentence) for anything that is not a readable picture.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    target = (size, size) if isinstance(size, int) else tuple(size) if size is not None else None
    name = Path(path).name or str(path)
    with open_picture(path) as img:
        try:
            if target is not None or within is not None:
                want = max(target) if target is not None else int(within)
                img.draft("RGB" if channels == 3 else "L", (want, want))   # JPEG: decode at 1/2, 1/4 or 1/8
            img.load()                   # the first frame of an animation
            img = _upright(img)
            img = _plain_mode(img)
            img = _fit(img, target, within)
            pixels, alpha = _as_float(img)
        except PictureError:
            raise
        except MemoryError:
            raise PictureError(f"{name} is too large to decode in this machine's memory") from None
        except Exception as err:         # truncated or damaged data: Pillow's decoders raise many kinds
            raise PictureError(f"{name} is truncated or damaged ({type(err).__name__}: "
                               f"{' '.join(str(err).split())[:80]})") from None
    if alpha is not None:
        back = np.broadcast_to(np.asarray(ground, dtype=np.float32), (pixels.shape[-1],))
        pixels = pixels * alpha[..., None] + back * (1.0 - alpha[..., None])
    if channels == 1 and pixels.shape[-1] == 3:
        pixels = pixels @ LUMA
    elif channels == 1:
        pixels = pixels[..., 0]
    elif pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0), dtype=np.float32)


def _upright(img: Image.Image) -> Image.Image:
    """Turn the picture as its EXIF orientation says; a damaged EXIF block leaves it as stored."""
    try:
        if img.getexif().get(ORIENTATION, 1) in (1, None):
            return img
        return ImageOps.exif_transpose(img) or img
    except Exception:   # EXIF is metadata: a damaged block must not lose the picture
        return img


def _plain_mode(img: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA (8 bits a channel) or F (grey of more than 8 bits, scaled to [0, 1])."""
    mode = img.mode
    if mode in ("L", "RGB", "P") and "transparency" in img.info:
        return img.convert("RGBA")       # a tRNS colour or a palette's alpha
    if mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey (PNG, TIFF): every level kept; "I" holds 16-bit samples as 32-bit integers
        values = np.asarray(img, dtype=np.float32) / 65535.0
        return Image.fromarray(np.clip(values, 0.0, 1.0).astype(np.float32), mode="F")
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return Image.fromarray(np.clip(values, 0.0, 1.0), mode="F")
    if mode in ("1",):
        return img.convert("L")
    if mode in ("La",):
        return img.convert("LA")
    if mode in ("PA", "RGBa"):
        return img.convert("RGBA")
    return img.convert("RGB")            # P, CMYK, YCbCr, LAB, HSV, RGBX, ...


def _fit(img: Image.Image, target: tuple[int, int] | None, within: int | None) -> Image.Image:
    w, h = img.size
    resample = Image.Resampling.BILINEAR
    if target is not None:
        th, tw = int(target[0]), int(target[1])
        if th < 1 or tw < 1:
            raise ValueError(f"size must be positive, not {target}")
        # the centre box with the target's aspect: resizing it is resize-to-cover then centre-crop
        if w * th > h * tw:
            bw, bh = h * tw / th, float(h)
        else:
            bw, bh = float(w), w * th / tw
        box = ((w - bw) / 2, (h - bh) / 2, (w + bw) / 2, (h + bh) / 2)
        if (w, h) == (tw, th):
            return img
        return img.resize((tw, th), resample, box=box, reducing_gap=3.0)
    if within is not None and max(w, h) > within:
        scale = within / max(w, h)
        return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample, reducing_gap=3.0)
    return img


def _as_float(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, C) float32 in [0, 1] with C 1 or 3, and the alpha (H, W) or None."""
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)[..., None], None
    values = np.asarray(img, dtype=np.float32) / 255.0
    if values.ndim == 2:
        values = values[..., None]
    if img.mode in ("LA", "RGBA"):
        return values[..., :-1], values[..., -1]
    return values, None


# ---------------------------------------------------------------------------------------------------------------
# A folder of pictures

@dataclass(frozen=True)
class Skipped:
    """A file a folder's index or a batch left out, and why (one phrase)."""

    path: str
    reason: str

    def line(self) -> str:
        """'path: reason' on one line (a name with control characters is shown escaped)."""
        shown = self.path if self.path.isprintable() else ascii(self.path)
        return f"{shown}: {self.reason}"


@dataclass
class FolderIndex:
    """A folder's readable pictures in a fixed order (by class, then name), with what was left out and why."""

    root: Path
    files: list[str]                      # paths as found in the folder (a link keeps its own name)
    labels: list[int] | None              # the class of each file; None for an unlabelled folder
    classes: tuple[str, ...] | None       # the subfolders' names, sorted; None for an unlabelled folder
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)


class FolderError(ValueError):
    """The folder itself cannot be used (absent, not a folder, nothing readable in it); one sentence."""


def index_folder(root: str | Path, *, progress: bool = False, workers: int = 8) -> FolderIndex:
    """List a folder's pictures: with subfolders, each (real, not hidden) subfolder is a class and its files are
    that class's pictures; without, the files are unlabelled pictures. Only headers are read (a thread pool
    hides the disk's latency); `progress` shows a tqdm bar on stderr. Skipped, with the reason: files that are no
    readable picture, links to nothing, to folders or to non-pictures (a link to a picture is followed), files
    beside class folders, and folders nested deeper than the classes. Hidden names (a leading dot) are ignored.
    Raises FolderError when the folder is absent or not a folder; an index with no files is returned as it is
    (the caller says that nothing was usable)."""
    root = Path(root).expanduser()
    try:
        info = os.stat(root)
    except OSError:
        raise FolderError(f"there is no folder {root}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise FolderError(f"{root} is a file, not a folder of pictures")
    classes = folder_classes(root)
    skipped: list[Skipped] = []
    candidates: list[tuple[str, int, bool]] = []      # path, label, whether it is a symbolic link

    def visit(folder: Path, label: int, in_class: bool) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as err:
            skipped.append(Skipped(str(folder), f"the folder cannot be read ({err.strerror or err})"))
            return
        for entry in entries:
            path = os.path.join(folder, entry.name)
            try:
                real_dir = entry.is_dir(follow_symlinks=False)
                link = entry.is_symlink()
            except OSError:
                real_dir, link = False, True      # unknown: checked as a link is
            if real_dir:
                if not in_class:
                    continue            # a class folder, visited below
                skipped.append(Skipped(path, "a folder nested deeper than the class folders"))
            elif classes is not None and not in_class:
                skipped.append(Skipped(path, "beside the class folders (pictures go in one subfolder per class)"))
            else:
                candidates.append((path, label, link))

    if classes is None:
        visit(root, -1, in_class=False)
    else:
        for k, name in enumerate(classes):
            visit(root / name, k, in_class=True)
        visit(root, -1, in_class=False)   # what lies beside the class folders

    bar = None
    if progress and candidates:
        from tqdm import tqdm

        bar = tqdm(total=len(candidates), unit="file", desc=f"indexing {root.name or root}", dynamic_ncols=True,
                   mininterval=0.5, delay=1.0, leave=False)       # shown once indexing takes a second
    files: list[str] = []
    labels: list[int] = []
    chunks = [candidates[i:i + INDEX_CHUNK] for i in range(0, len(candidates), INDEX_CHUNK)]
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for chunk, reasons in zip(chunks, pool.map(_check_chunk, chunks)):
                for (path, label, _), reason in zip(chunk, reasons):
                    if reason is None:
                        files.append(path)
                        labels.append(label)
                    else:
                        skipped.append(Skipped(path, reason))
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return FolderIndex(root, files, labels if classes is not None else None, classes, skipped)


INDEX_CHUNK = 256      # files a thread checks in one go (one task each would cost more than the check)


def _check_chunk(chunk: list[tuple[str, int, bool]]) -> list[str | None]:
    return [check_file(path, link) for path, _, link in chunk]


def check_file(path: str | Path, link: bool | None = None) -> str | None:
    """None when `path` (a file, or a link followed to one) opens as a picture within the pixel limit; else why
    not, as a phrase for the skip list. `link`: whether it is a symbolic link, when the caller knows."""
    try:
        if link if link is not None else os.path.islink(path):
            try:
                target = os.stat(path)
            except OSError:
                return "a link to nothing"
            if stat.S_ISDIR(target.st_mode):
                return "a link to a folder"
            if not stat.S_ISREG(target.st_mode):
                return "a link to something that is not a file"
        probe(path)
    except PictureError as err:
        return _reason(err, Path(path).name)
    return None


def _reason(err: PictureError, name: str) -> str:
    """The sentence without the file's name in front (the skip list names the file already)."""
    text = str(err)
    return text[len(name) + 1:] if text.startswith(name + " ") else text
