"""Data sets by name (`models.catalog.dataset_name`): torchvision's own classes where it has them, offline first,
the user's folders, and a generated colour set.

- `fashion-mnist` comes from Debian's `dataset-fashion-mnist` package when it is installed (no network): its
  gzipped IDX files are unpacked once into the folder layout torchvision expects; `mnist`, `cifar10` and `celeba`
  through torchvision's classes, which check the files' checksums before reading them (CIFAR-10's batches are
  pickles: they are read only by torchvision, after its check). Otherwise torchvision downloads into a per-user
  cache. `LATENT_EXPLORER_DATA` (or the CLI's `--data-root`) overrides the cache folder.
- `folder:PATH`: the user's pictures, labelled by subfolder when it has subfolders; indexed from the files'
  headers (`models.images.index_folder`), decoded by `models.images.read_picture` only when a batch needs them.
- `shapes`: squares, circles and triangles of known shape, colour, size and position, drawn when asked for.

A split is an `ImageData`. Its `images` are a tensor in memory (Fashion-MNIST and MNIST at their own size, as
always) or `LazyImages`, which make a batch when indexed: `images[idx]` is a tensor either way, which is all
`models.train.run` asks. `folder:` and `shapes` keep a seeded held-out part as their "test" split.
"""
from __future__ import annotations

import gzip
import os
import shutil
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from .atomic import atomic_write_path
from .catalog import (DIGIT_CLASSES, FASHION_CLASSES, FOLDER_PREFIX, SHAPES_FACTORS, DatasetInfo, dataset_info,
                      dataset_name)

DEBIAN_ROOTS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
DATA_ENV = "LATENT_EXPLORER_DATA"
# The named sets that come from disk or a download (`shapes` is drawn when asked for): the training dialog says which
# of them this machine lacks. Every name `--data` takes is catalog.DATASET_NAMES or folder:PATH.
DOWNLOADED_DATASETS = ("fashion-mnist", "mnist", "cifar10", "celeba")
TEST_FRACTION = 0.1             # the held-out part of a folder and of `shapes`
PIXEL_CACHE_BYTES = 1 << 30     # decoded folder pictures kept in memory (8 bits a channel), per split
CELEBA_CROP = 148               # the aligned faces' centre square (of 178x218) before resizing, as is usual for VAEs


class DataMissingError(RuntimeError):
    """The data set is neither on disk nor downloadable, or a folder holds nothing usable; the message is one
    sentence that says how to get it."""


@dataclass(frozen=True)
class ImageData:
    """A split: images (N, C, H, W) float32 in [0, 1], labels (N,) int64, and what is known about them.

    images: a tensor in memory, or `LazyImages` (indexing makes a batch tensor; `tensor(n)` loads a bounded part).
    labels/classes: each picture's class index and the class names; None for unlabelled pictures.
    factors/factor_names: (N, F) int64, each picture's value index of each known factor (shapes: shape, colour,
    size, x, y; CelebA: its 40 attributes, 0 or 1); None without. The factors' values are named in
    `models.catalog.data_factors(name)`.
    """

    name: str
    split: str
    images: Any                        # Tensor | LazyImages
    labels: Tensor | None
    classes: tuple[str, ...] | None
    factors: Tensor | None = None
    factor_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every picture."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    @property
    def info(self) -> DatasetInfo:
        """The data set's description in plain values (the torch-free catalog's record)."""
        return dataset_info(self.name)

    @property
    def skipped(self) -> list:
        """The files left out (`models.images.Skipped`: path and reason), for a folder; [] for other sets."""
        return self.images.skipped() if isinstance(self.images, LazyImages) else []

    def tensor(self, limit: int | None = None) -> Tensor:
        """The first `limit` pictures (all without one) as one tensor in memory."""
        n = len(self) if limit is None else min(int(limit), len(self))
        return self.images[:n]


def default_root() -> Path:
    """Where data sets live: $LATENT_EXPLORER_DATA, else the per-user cache folder."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "latent-explorer" / "data"


def load_dataset(name: str = "fashion-mnist", split: str = "train", *, root: str | Path | None = None,
                 subset: int | None = None, download: bool = True, image_size: int | None = None,
                 channels: int | None = None, seed: int = 0, progress: bool = False) -> ImageData:
    """Load a split ('train' or 'test') of a data set by name (see `models.catalog.dataset_name`).

    subset: keep the first n pictures (tests, quick runs). image_size/channels: the picture it becomes, where the
    set can be resized or converted (resized with the aspect kept, then centre-cropped); None keeps its own.
    seed: the seed of `shapes` and of a folder's held-out part. progress: a tqdm bar while a folder is indexed.
    Raises ValueError for an unknown name, split, size or channel count, DataMissingError (one sentence) when
    the data cannot be had.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not '{split}'")
    name = dataset_name(name)
    info = dataset_info(name)
    shape = info.shape(image_size, channels)
    root = Path(root).expanduser() if root is not None else default_root()
    if name.startswith(FOLDER_PREFIX):
        data = _load_folder(name, split, shape, seed, progress)
    elif name == "shapes":
        data = _load_shapes(split, shape, seed)
    elif name == "cifar10":
        data = _load_cifar10(root, split, shape, download)
    elif name == "celeba":
        data = _load_celeba(root, split, shape, download)
    else:
        data = _load_mnist_like(name, root, split, shape, download, subset)
    return _first(data, subset)


def _first(data: ImageData, subset: int | None) -> ImageData:
    if subset is None or isinstance(data.images, Tensor):     # tensors were cut before they were converted
        return data
    n = min(int(subset), len(data))
    return ImageData(data.name, data.split, data.images.take(n),
                     None if data.labels is None else data.labels[:n], data.classes,
                     None if data.factors is None else data.factors[:n], data.factor_names)


# ---------------------------------------------------------------------------------------------------------------
# Pictures made when a batch needs them

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads that decode a batch's files together (Pillow lets go of the GIL while it decodes)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="pictures")
        return _POOL


class _Failures:
    """Items of one source that could not be made, shared by its splits: {item id: reason}."""

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}
        self.lock = threading.Lock()


class LazyImages:
    """(N, C, H, W) float32 pictures in [0, 1] made when indexed: an int gives (C, H, W), a slice, a list, an
    array or an index tensor gives (B, C, H, W), as indexing a tensor does. `take(n)` is the first n, still lazy.

    An item that cannot be made (a file truncated past its header, say) is recorded (`skipped()`) and replaced in
    its batch by the next one that can be, of the same class where there is one, so a batch keeps its size.
    Subclasses make one item as uint8 (C, H, W) in `_item(id)`; ids are the source's, positions are this split's.
    """

    dtype = torch.float32
    ndim = 4
    cache_bytes = 0                    # >0: keep made items in memory up to this many bytes

    def __init__(self, ids: np.ndarray, image_shape: tuple[int, int, int], labels: np.ndarray | None = None,
                 failures: _Failures | None = None) -> None:
        self._ids = np.asarray(ids, dtype=np.int64)
        self._image_shape = tuple(int(s) for s in image_shape)
        self._labels = labels
        self._failures = failures or _Failures()
        self._cache: dict[int, np.ndarray] = {}
        self._cached = 0
        self._cache_lock = threading.Lock()

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self._ids), *self._image_shape))

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={tuple(self.shape)})"

    def take(self, n: int) -> "LazyImages":
        """The first n pictures, made as lazily."""
        import copy

        part = copy.copy(self)          # shares the cache and the failures
        part._ids = self._ids[:n]
        part._labels = None if self._labels is None else self._labels[:n]
        return part

    def __getitem__(self, key: Any) -> Tensor:
        if isinstance(key, tuple):
            head = self[key[0]]
            rest = key[1:] if _is_int(key[0]) else (slice(None), *key[1:])
            return head[rest]
        if _is_int(key):
            pos = int(key)
            if not -len(self) <= pos < len(self):
                raise IndexError(f"index {pos} is out of range for {len(self)} pictures")
            return self._batch(np.array([pos % len(self)]))[0]
        if isinstance(key, slice):
            return self._batch(np.arange(len(self))[key])
        if isinstance(key, Tensor):
            key = key.detach().cpu().numpy()
        positions = np.asarray(key)
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        positions = positions.astype(np.int64).reshape(-1)
        if positions.size and (positions.min() < -len(self) or positions.max() >= len(self)):
            raise IndexError(f"an index is out of range for {len(self)} pictures")
        return self._batch(positions % max(len(self), 1))

    def skipped(self) -> list:
        """What could not be made, as `models.images.Skipped` records (a folder's also lists its index's)."""
        from .images import Skipped

        with self._failures.lock:
            return [Skipped(self._describe(i), why) for i, why in sorted(self._failures.reasons.items())]

    # what a subclass supplies
    def _item(self, item: int) -> np.ndarray:
        raise NotImplementedError

    def _describe(self, item: int) -> str:
        return f"item {item}"

    # the batch, with failures replaced
    def _batch(self, positions: np.ndarray) -> Tensor:
        c, h, w = self._image_shape
        if positions.size == 0:
            return torch.empty((0, c, h, w), dtype=torch.float32)
        if positions.size > 4:
            arrays = list(_pool().map(self._at, positions.tolist()))
        else:
            arrays = [self._at(int(p)) for p in positions]
        return torch.from_numpy(np.stack(arrays)).to(torch.float32).div_(255.0)

    def _at(self, pos: int) -> np.ndarray:
        made = self._made(int(self._ids[pos]))
        if made is not None:
            return made
        for other in self._stand_ins(pos):
            made = self._made(int(self._ids[other]))
            if made is not None:
                return made
        raise DataMissingError(f"none of the {len(self)} pictures of this data set can be read any more "
                               f"(the last reason: {self._failures.reasons.get(int(self._ids[pos]), '?')})")

    def _made(self, item: int) -> np.ndarray | None:
        """The item's pixels (uint8 C, H, W), from the cache or made now; None when it cannot be made."""
        if item in self._failures.reasons:
            return None
        cached = self._cache.get(item)
        if cached is not None:
            return cached
        try:
            pixels = self._item(item)
        except (ValueError, OSError, SyntaxError, EOFError) as err:   # models.images.PictureError is a ValueError
            with self._failures.lock:
                self._failures.reasons[item] = _short(err, Path(self._describe(item)).name)
            return None
        if self.cache_bytes:
            with self._cache_lock:
                if self._cached + pixels.nbytes <= self.cache_bytes and item not in self._cache:
                    self._cache[item] = pixels
                    self._cached += pixels.nbytes
        return pixels

    def _stand_ins(self, pos: int) -> np.ndarray:
        """The positions to try instead of `pos`, next ones first: those of its class, then the rest."""
        n = len(self)
        order = (pos + 1 + np.arange(n - 1)) % n
        if self._labels is None:
            return order
        same = self._labels[order] == self._labels[pos]
        return np.concatenate([order[same], order[~same]])


def _is_int(key: Any) -> bool:
    if isinstance(key, (bool, np.bool_)):
        return False
    if isinstance(key, (int, np.integer)):
        return True
    return isinstance(key, Tensor) and key.ndim == 0 and not key.is_floating_point() and key.dtype != torch.bool


def _short(err: BaseException, name: str) -> str:
    """Why an item could not be made, as a phrase after its name."""
    from .images import PictureError

    text = " ".join(str(err).split())
    if not isinstance(err, PictureError):
        return f"{type(err).__name__}: {text[:120]}"
    return text[len(name) + 1:] if name and text.startswith(name + " ") else text


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """float (H, W) or (H, W, C) in [0, 1] -> uint8 (C, H, W)."""
    q = np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    return q[None] if q.ndim == 2 else np.ascontiguousarray(q.transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------------------------------
# folder:PATH

class FolderImages(LazyImages):
    """A folder's pictures, read by `models.images.read_picture` (never trusted) when a batch needs them, resized
    with the aspect kept and centre-cropped to (C, H, W), 8 bits a channel; transparency shows the dark ground."""

    cache_bytes = PIXEL_CACHE_BYTES

    def __init__(self, source: "_FolderSource", ids: np.ndarray, image_shape: tuple[int, int, int]) -> None:
        labels = None if source.labels is None else source.labels[ids]
        super().__init__(ids, image_shape, labels, source.failures)
        self._source = source

    def _item(self, item: int) -> np.ndarray:
        from .images import read_picture

        c, h, w = self._image_shape
        return _to_uint8(read_picture(self._source.files[item], channels=c, size=(h, w), ground=0.0))

    def _describe(self, item: int) -> str:
        return self._source.files[item]

    def skipped(self) -> list:
        return list(self._source.index_skipped) + super().skipped()


@dataclass
class _FolderSource:
    root: Path
    files: list[str]
    labels: np.ndarray | None
    classes: tuple[str, ...] | None
    index_skipped: list
    failures: _Failures
    stamp: tuple


_FOLDERS: dict[str, _FolderSource] = {}
_FOLDERS_LOCK = threading.Lock()


def _folder_stamp(root: Path, classes: Sequence[str] | None) -> tuple:
    """The folders' modification times: a file added, removed or renamed in any of them changes one."""
    folders = [root, *(root / c for c in classes or ())]
    stamp = []
    for folder in folders:
        try:
            stamp.append((str(folder), os.stat(folder).st_mtime_ns))
        except OSError:
            stamp.append((str(folder), None))
    return tuple(stamp)


def _folder_source(root: Path, progress: bool) -> _FolderSource:
    """The folder's index, made once per process while none of its folders changes (a train and a test split
    share it)."""
    from .catalog import folder_classes
    from .images import FolderError, index_folder

    key = str(root)
    with _FOLDERS_LOCK:
        known = _FOLDERS.get(key)
    if known is not None and known.stamp == _folder_stamp(root, folder_classes(str(root))):
        return known
    try:
        index = index_folder(root, progress=progress)
    except FolderError as err:
        raise DataMissingError(str(err)) from None
    if not index.files:
        if not index.skipped:
            raise DataMissingError(f"there is no picture in {root}; put PNG, JPEG, GIF, BMP, WebP or TIFF files in "
                                   "it, or in one subfolder per class")
        first = index.skipped[0]
        raise DataMissingError(f"there is no readable picture in {root}: all {len(index.skipped)} entries were "
                               f"skipped (for example {Path(first.path).name}: {first.reason})")
    labels = None if index.labels is None else np.asarray(index.labels, dtype=np.int64)
    source = _FolderSource(root, index.files, labels, index.classes, index.skipped, _Failures(),
                           _folder_stamp(root, index.classes))
    with _FOLDERS_LOCK:
        _FOLDERS[key] = source
    return source


def held_out(keys: Sequence[str], seed: int, fraction: float = TEST_FRACTION) -> np.ndarray:
    """Which items are held out (a bool per key): a seeded hash of each key, so a picture keeps its split when
    files are added or removed; at least one of two or more is held out, and at least one is kept."""
    n = len(keys)
    scores = np.array([zlib.crc32(f"{seed}/{k}".encode("utf-8", "surrogateescape")) / 2.0 ** 32 for k in keys])
    test = scores < fraction
    if n >= 2 and not test.any():
        test[int(np.argmin(scores))] = True
    if n >= 1 and test.all():
        test[int(np.argmax(scores))] = False
    return test


def _load_folder(name: str, split: str, shape: tuple[int, int, int], seed: int, progress: bool) -> ImageData:
    root = Path(name[len(FOLDER_PREFIX):])
    source = _folder_source(root, progress)
    keys = [os.path.relpath(f, root) for f in source.files]
    test = held_out(keys, seed)
    ids = np.flatnonzero(test if split == "test" else ~test)
    ids = ids[np.random.default_rng(seed).permutation(len(ids))]   # so that a --subset takes every class
    images = FolderImages(source, ids, shape)
    labels = None if source.labels is None else torch.from_numpy(source.labels[ids].copy())
    return ImageData(name, split, images, labels, source.classes)


# ---------------------------------------------------------------------------------------------------------------
# shapes

SHAPES_JITTER = 5                      # each position also moves by -2..2 steps of 1/48 of the side
SHAPES_GROUND = (20, 20, 26)           # a dark ground
SHAPES_COLOURS = SHAPES_FACTORS[1].rgb    # what `colour` 0..5 paints
SHAPES_SIZES = (0.22, 0.32, 0.42)      # side (or diameter) as a fraction of the picture's side
SHAPES_XY = (0.29, 0.43, 0.57, 0.71)   # centres, as fractions of the side
SHAPES_SUPERSAMPLE = 4


def shapes_table() -> np.ndarray:
    """Every picture of `shapes` as value indices (M, 7): shape, colour, size, x, y (the factors) and the two
    jitter steps; M = 3 * 6 * 3 * 4 * 4 * 5 * 5 = 21,600."""
    dims = tuple(len(f.values) for f in SHAPES_FACTORS) + (SHAPES_JITTER, SHAPES_JITTER)
    return np.stack(np.unravel_index(np.arange(int(np.prod(dims))), dims), axis=1).astype(np.int64)


def draw_shape(shape: int, colour: int, size: int, x: int, y: int, dx: int = 2, dy: int = 2, side: int = 32,
               channels: int = 3) -> np.ndarray:
    """One `shapes` picture, uint8 (side, side, 3) or (side, side): drawn 4x larger and averaged down, so edges
    are smooth and a jitter step of a fraction of a pixel still shows."""
    from PIL import Image, ImageDraw

    ss = SHAPES_SUPERSAMPLE
    big = side * ss
    img = Image.new("RGB", (big, big), SHAPES_GROUND)
    draw = ImageDraw.Draw(img)
    step = 1 / 48
    cx = (SHAPES_XY[x] + (dx - SHAPES_JITTER // 2) * step) * big
    cy = (SHAPES_XY[y] + (dy - SHAPES_JITTER // 2) * step) * big
    r = SHAPES_SIZES[size] * big / 2
    fill = SHAPES_COLOURS[colour]
    if shape == 0:
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == 1:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    img = img.reduce(ss)
    if channels == 1:
        img = img.convert("L")
    return np.asarray(img)


class ShapesImages(LazyImages):
    """`shapes` pictures, drawn when a batch needs them (a few tens of microseconds each)."""

    def __init__(self, table: np.ndarray, ids: np.ndarray, image_shape: tuple[int, int, int]) -> None:
        super().__init__(ids, image_shape, table[ids, 0])
        self._table = table

    def _item(self, item: int) -> np.ndarray:
        c, h, w = self._image_shape
        pixels = draw_shape(*(int(v) for v in self._table[item]), side=h, channels=c)
        return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def shapes_split(seed: int, split: str) -> np.ndarray:
    """The ids of a `shapes` split: a seeded permutation of every combination, its first tenth held out."""
    n = len(shapes_table())
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * TEST_FRACTION))
    return order[:n_test] if split == "test" else order[n_test:]


def _load_shapes(split: str, shape: tuple[int, int, int], seed: int) -> ImageData:
    c, h, w = shape
    if h != w:
        raise ValueError("shapes are drawn square")
    table = shapes_table()
    ids = shapes_split(seed, split)
    factors = torch.from_numpy(table[ids, :len(SHAPES_FACTORS)].copy())
    return ImageData("shapes", split, ShapesImages(table, ids, shape), factors[:, 0].clone(),
                     SHAPES_FACTORS[0].values, factors, tuple(f.name for f in SHAPES_FACTORS))


# ---------------------------------------------------------------------------------------------------------------
# torchvision's sets

class ArrayImages(LazyImages):
    """uint8 pictures held in memory as (N, H, W) or (N, H, W, 3), converted a batch at a time: to float, to the
    channel count (ITU-R 601 luma, or grey repeated), resized with the aspect kept and centre-cropped (torchvision
    transforms)."""

    def __init__(self, array: Any, ids: np.ndarray, image_shape: tuple[int, int, int]) -> None:
        super().__init__(ids, image_shape)
        self._array = torch.as_tensor(array)

    def _batch(self, positions: np.ndarray) -> Tensor:
        from torchvision.transforms.v2 import functional as TF

        c, h, w = self._image_shape
        x = self._array[torch.from_numpy(self._ids[positions])]
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        x = x.to(torch.float32).div_(255.0)
        if x.shape[1] != c:
            x = TF.rgb_to_grayscale(x) if c == 1 else x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != (h, w):
            x = TF.center_crop(TF.resize(x, [min(h, w)], antialias=True), [h, w]).clamp_(0.0, 1.0)
        return x.contiguous()


class TorchvisionImages(LazyImages):
    """A torchvision data set's pictures through its own __getitem__ and transform (uint8 C, H, W)."""

    def __init__(self, dataset: Any, ids: np.ndarray, image_shape: tuple[int, int, int]) -> None:
        super().__init__(ids, image_shape)
        self._dataset = dataset

    def _item(self, item: int) -> np.ndarray:
        return np.asarray(self._dataset[item][0])

    def _describe(self, item: int) -> str:
        names = getattr(self._dataset, "filename", None)
        return str(names[item]) if names is not None else f"item {item}"


def _torchvision_class(name: str):
    from torchvision import datasets

    classes = {"fashion-mnist": datasets.FashionMNIST, "mnist": datasets.MNIST, "cifar10": datasets.CIFAR10,
               "celeba": datasets.CelebA}
    if name not in classes:
        raise ValueError(f"'{name}' is not one of torchvision's data sets")
    return classes[name]


def _unpack_debian_copy(name: str, root: Path) -> None:
    """Unpack Debian's gzipped IDX files into root/<Class>/raw/, where torchvision looks for them."""
    source = DEBIAN_ROOTS.get(name)
    if source is None or not source.is_dir():
        return
    raw = root / _torchvision_class(name).__name__ / "raw"
    for gz in sorted(source.glob("*-ubyte.gz")):
        target = raw / gz.name[:-3]
        if target.exists():
            continue
        raw.mkdir(parents=True, exist_ok=True)
        # a temporary name of its own: two processes starting together (two trainings, the app beside a
        # benchmark) must not write into one another's half-unpacked file
        with atomic_write_path(target) as tmp, gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _open(name: str, root: Path, download: bool, **kwargs: Any) -> Any:
    """torchvision's data set from its checked files; downloaded (and checked) when allowed and missing."""
    cls = _torchvision_class(name)
    try:
        return cls(str(root), download=False, **kwargs)
    except RuntimeError:
        archive = getattr(cls, "filename", None)      # CIFAR-10's official archive, put there by the user
        if not download and not (isinstance(archive, str) and (root / archive).is_file()):
            raise DataMissingError(missing_message(name, root)) from None
    try:
        return cls(str(root), download=True, **kwargs)     # torchvision checks the archive's MD5 before unpacking
    except Exception:   # no network, a refused or corrupt download: one sentence says what to do instead
        raise DataMissingError(missing_message(name, root)) from None


def _load_mnist_like(name: str, root: Path, split: str, shape: tuple[int, int, int], download: bool,
                     subset: int | None) -> ImageData:
    try:
        _unpack_debian_copy(name, root)
    except OSError:
        pass  # a read-only or full cache: fall through to torchvision's own check and message
    ds = _open(name, root, download, train=(split == "train"))
    images, labels = ds.data, ds.targets
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    classes = FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES
    if shape == (1, 28, 28):            # as always: the whole split as one tensor
        images = images.unsqueeze(1).to(torch.float32).div_(255.0)
    else:
        images = ArrayImages(images, np.arange(len(images)), shape)
    return ImageData(name, split, images, labels.to(torch.int64), classes)


def _load_cifar10(root: Path, split: str, shape: tuple[int, int, int], download: bool) -> ImageData:
    ds = _open("cifar10", root, download, train=(split == "train"))
    images = ArrayImages(np.asarray(ds.data), np.arange(len(ds.data)), shape)
    return ImageData("cifar10", split, images, torch.as_tensor(ds.targets, dtype=torch.int64), tuple(ds.classes))


def _load_celeba(root: Path, split: str, shape: tuple[int, int, int], download: bool) -> ImageData:
    from torchvision import transforms

    from .catalog import CELEBA_ATTRIBUTES

    c, h, w = shape
    steps = [transforms.CenterCrop(CELEBA_CROP), transforms.Resize(min(h, w)), transforms.CenterCrop((h, w))]
    steps += [transforms.Grayscale(1)] if c == 1 else [transforms.Lambda(lambda img: img.convert("RGB"))]
    transform = transforms.Compose([*steps, transforms.PILToTensor()])
    ds = _open("celeba", root, download, split=split, target_type="attr", transform=transform)
    names = tuple(a for a in getattr(ds, "attr_names", ()) if a) or CELEBA_ATTRIBUTES
    factors = torch.as_tensor(ds.attr, dtype=torch.int64)
    return ImageData("celeba", split, TorchvisionImages(ds, np.arange(len(ds)), shape), None, None, factors, names)


def missing_message(name: str, root: Path) -> str:
    if name == "cifar10":
        return (f"The cifar10 data set is not on this machine and could not be downloaded. To get it, connect to "
                f"the internet once so torchvision can download and check it into {root}, or put the official "
                f"cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) in {root} "
                f"(set {DATA_ENV} or --data-root to use another folder).")
    if name == "celeba":
        return (f"The celeba data set is not on this machine and could not be downloaded (torchvision fetches it "
                f"from Google Drive, which needs the gdown package and often refuses). To get it, put the folder "
                f"img_align_celeba and the files list_attr_celeba.txt, identity_CelebA.txt, list_bbox_celeba.txt, "
                f"list_landmarks_align_celeba.txt and list_eval_partition.txt from "
                f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html in {root / 'celeba'} "
                f"(set {DATA_ENV} or --data-root to use another folder).")
    debian = ("install Debian's package 'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist), "
              if name == "fashion-mnist" else "")
    return (f"The {name} data set is not on this machine and could not be downloaded. To get it, {debian}"
            f"{'or ' if debian else ''}connect to the internet once so torchvision can download it into {root} "
            f"(set {DATA_ENV} or --data-root to use another folder).")
