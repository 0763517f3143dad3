"""Real data through torchvision's own dataset classes, offline first.

Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package when it is installed (no network): its gzipped
IDX files are unpacked once into the folder layout torchvision expects. Otherwise torchvision downloads into a
per-user cache. `LATENT_EXPLORER_DATA` (or the CLI's `--data-root`) overrides the cache folder.
"""
from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .atomic import atomic_write_path
from .catalog import DIGIT_CLASSES, FASHION_CLASSES

DEBIAN_ROOTS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
DATA_ENV = "LATENT_EXPLORER_DATA"
DATASETS = ("fashion-mnist", "mnist")



class DataMissingError(RuntimeError):
    """The data set is neither on disk nor downloadable; the message says both ways to get it."""


@dataclass(frozen=True)
class ImageData:
    """A whole split in memory: images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64."""

    name: str
    split: str
    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def default_root() -> Path:
    """Where data sets live: $LATENT_EXPLORER_DATA, else the per-user cache folder."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "latent-explorer" / "data"


def _torchvision_class(name: str):
    from torchvision import datasets

    if name == "fashion-mnist":
        return datasets.FashionMNIST
    if name == "mnist":
        return datasets.MNIST
    raise ValueError(f"unknown data set '{name}'; choose one of: {', '.join(DATASETS)}")


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


def load_dataset(name: str = "fashion-mnist", split: str = "train", *, root: str | Path | None = None,
                 subset: int | None = None, download: bool = True) -> ImageData:
    """Load a split ('train' or 'test') as tensors; `subset` keeps the first n images (tests, quick runs)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not '{split}'")
    if name not in DATASETS:
        raise ValueError(f"unknown data set '{name}'; choose one of: {', '.join(DATASETS)}")
    root = Path(root).expanduser() if root is not None else default_root()
    try:
        _unpack_debian_copy(name, root)
    except OSError:
        pass  # a read-only or full cache: fall through to torchvision's own check and message
    cls = _torchvision_class(name)
    try:
        ds = cls(str(root), train=(split == "train"), download=False)
    except RuntimeError:
        if not download:
            raise DataMissingError(missing_message(name, root)) from None
        try:
            ds = cls(str(root), train=(split == "train"), download=True)
        except Exception:
            raise DataMissingError(missing_message(name, root)) from None
    images, labels = ds.data, ds.targets
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    images = images.unsqueeze(1).to(torch.float32).div_(255.0)
    classes = FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES
    return ImageData(name, split, images, labels.to(torch.int64), classes)


def missing_message(name: str, root: Path) -> str:
    debian = ("install Debian's package 'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist), "
              if name == "fashion-mnist" else "")
    return (f"The {name} data set is not on this machine and could not be downloaded. To get it, {debian}"
            f"{'or ' if debian else ''}connect to the internet once so torchvision can download it into {root} "
            f"(set {DATA_ENV} or --data-root to use another folder).")
