"""What an app needs to know about a model, in plain values and without torch.

A user interface imports this module, never the rest of `models/`: the capability names it asks a model about, the
class names of the data sets, and the two records it shows, a picker line (`ModelEntry`) and a loaded model
(`ModelInfo`). The engine that owns the device fills them in from a checkpoint; importing this module costs
microseconds and loads no torch, so a window can paint before the model library has arrived.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What a model can be asked; an app shows a control only when the model has the capability.
ENCODE = "encode"      # encode(x) -> Posterior
DECODE = "decode"      # decode(z) -> images
SAMPLE = "sample"      # sample(n, generator) -> images
CRITIC = "critic"      # critic(x) -> probability that x is real
DENOISE = "denoise"    # diffusion: frames(...) streams x_t, x0, eps per step
CLASSIFY = "classify"  # classify(x) -> (class index, confidence); the yardstick, not a latent model
CAPABILITIES = (ENCODE, DECODE, SAMPLE, CRITIC, DENOISE, CLASSIFY)

# The diffusion samplers a model with DENOISE takes (`frames(..., sampler=name)`), by name, with a menu label.
# "ddpm" is ancestral (new noise every step), "ddim" adds noise only with eta > 0, "dpm++" never does.
SAMPLERS = {"ddpm": "DDPM", "ddim": "DDIM", "dpm++": "DPM-Solver++(2M)"}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def data_classes(dataset: str) -> tuple[str, ...]:
    """The class names of a data set (by its `--data` name; a folder's are its subfolders); () for a data set
    without classes and for any name the library does not know."""
    try:
        return dataset_info(dataset).classes or ()
    except ValueError:
        return ()


# ---------------------------------------------------------------------------------------------------------------
# Data sets, by the name `python -m models train --data NAME` takes and a training dialog lists: the named sets
# below and `folder:PATH`, the user's own pictures. What a UI shows of one (its picture, classes, factors) is
# here, without torch; `models.data.load_dataset(name, split, image_size=..., channels=...)` loads it.

FOLDER_PREFIX = "folder:"
DEFAULT_DATASET = "fashion-mnist"


@dataclass(frozen=True)
class Factor:
    """A known factor of variation each picture of a data set is labelled with, and the values it takes."""

    name: str
    values: tuple[str, ...]
    rgb: tuple[tuple[int, int, int], ...] = ()     # a colour factor: each value's colour, so a map can show it


@dataclass(frozen=True)
class DatasetInfo:
    """A data set in plain values: what its pictures are and what is known about each."""

    name: str                              # as --data takes it; a folder as "folder:" + its absolute path
    title: str
    image_shape: tuple[int, int, int]      # (C, H, W) it gives unless asked for another size or channel count
    classes: tuple[str, ...] | None        # class names by label index; None when its pictures have no class
    factors: tuple[Factor, ...] = ()       # per-picture factors (the labels of `ImageData.factors`, in order)
    resizable: bool = True                 # --image-size applies (CIFAR-10 keeps its 32x32)
    where: str = ""                        # where its files come from, in words

    @property
    def labelled(self) -> bool:
        return self.classes is not None

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    @property
    def folder(self) -> str | None:
        """The folder of a `folder:` data set; None for a named one."""
        return self.name[len(FOLDER_PREFIX):] if self.name.startswith(FOLDER_PREFIX) else None

    def shape(self, image_size: int | None = None, channels: int | None = None) -> tuple[int, int, int]:
        """The (C, H, W) its pictures become with --image-size and --channels (None: its own); ValueError (one
        sentence) for a size or channel count it cannot give."""
        c, h, w = self.image_shape
        if channels is not None and channels not in (1, 3):
            raise ValueError(f"--channels must be 1 (grey) or 3 (colour), not {channels}")
        if image_size is not None and not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"--image-size must lie in {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} pixels, not {image_size}")
        if image_size is not None and image_size != h and not self.resizable:
            raise ValueError(f"{self.name}'s pictures are {h}x{w}; drop --image-size or give {h}")
        return (channels or c, image_size or h, image_size or w)


MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024

# `shapes`: generated from a seed, in the spirit of dSprites (Matthey et al. 2017): every combination of these
# factors (and a small jitter of the position) drawn once; the first factor is also the picture's class.
SHAPES_FACTORS = (
    Factor("shape", ("square", "circle", "triangle")),
    Factor("colour", ("red", "green", "blue", "yellow", "magenta", "cyan"),
           ((225, 45, 45), (45, 195, 70), (55, 105, 240), (235, 215, 45), (215, 65, 215), (45, 205, 220))),
    Factor("size", ("small", "medium", "large")),
    Factor("x", ("left", "left-centre", "right-centre", "right")),
    Factor("y", ("top", "upper-middle", "lower-middle", "bottom")),
)
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)

NAMED_DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("fashion-mnist", "Fashion-MNIST", (1, 28, 28), FASHION_CLASSES,
                where="Debian's dataset-fashion-mnist package, or downloaded by torchvision"),
    DatasetInfo("mnist", "MNIST", (1, 28, 28), DIGIT_CLASSES, where="downloaded by torchvision"),
    DatasetInfo("cifar10", "CIFAR-10", (3, 32, 32), CIFAR10_CLASSES, resizable=False,
                where="downloaded and checked by torchvision (cifar-10-python.tar.gz)"),
    DatasetInfo("celeba", "CelebA (aligned faces)", (3, 64, 64), None,
                tuple(Factor(a, ("no", "yes")) for a in CELEBA_ATTRIBUTES),
                where="torchvision's CelebA files (img_align_celeba and its five lists)"),
    DatasetInfo("shapes", "Shapes", (3, 32, 32), SHAPES_FACTORS[0].values, SHAPES_FACTORS,
                where="generated from a seed, offline"),
)}
DATASET_NAMES = tuple(NAMED_DATASETS)
FOLDER_IMAGE_SHAPE = (3, 64, 64)


def dataset_name(text: str) -> str:
    """The canonical name of what a user typed: a named set (any case), or "folder:" + the folder's absolute path
    (~ expanded); ValueError (one sentence) for anything else."""
    import os

    text = str(text).strip()
    if text.lower() in NAMED_DATASETS:
        return text.lower()
    if text.startswith(FOLDER_PREFIX):
        path = text[len(FOLDER_PREFIX):].strip()
        if not path:
            raise ValueError("folder: needs the folder's path, as in folder:~/pictures")
        return FOLDER_PREFIX + os.path.abspath(os.path.expanduser(path))
    raise ValueError(f"unknown data set '{text}'; choose one of: {', '.join(DATASET_NAMES)}, or folder:PATH "
                     "for a folder of your own pictures")


def dataset_info(name: str) -> DatasetInfo:
    """What a data set is (see `DatasetInfo`); a folder's classes are its subfolders, read now (one listing, no
    picture opened). ValueError for a name that is no data set."""
    name = dataset_name(name)
    if name in NAMED_DATASETS:
        return NAMED_DATASETS[name]
    folder = name[len(FOLDER_PREFIX):]
    return DatasetInfo(name, f"pictures in {folder}", FOLDER_IMAGE_SHAPE, folder_classes(folder),
                       where="your folder")


def data_factors(dataset: str) -> tuple[Factor, ...]:
    """The factors each picture of a data set is labelled with (shapes: shape, colour, size, x, y); () for none."""
    try:
        return dataset_info(dataset).factors
    except ValueError:
        return ()


def folder_classes(root: str) -> tuple[str, ...] | None:
    """A folder's classes: its subfolders' names, sorted (hidden ones and links to folders left out); None when
    it has no subfolder (its pictures are unlabelled) or cannot be listed."""
    import os

    try:
        with os.scandir(root) as it:
            names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
    except OSError:
        return None
    return tuple(names) or None


@dataclass(frozen=True)
class ModelEntry:
    """One line of a model picker: a checkpoint's header, read without loading its tensors."""

    path: str
    name: str                      # the file's stem, e.g. "vae-2d"
    family: str
    title: str                     # the family's title, e.g. "Variational autoencoder"
    shipped: bool                  # from the weights folder (else a file the user opened)
    latent_dim: int = 0

    @property
    def label(self) -> str:
        """'vae-2d — Variational autoencoder, 2-d latent'; a diffusion model (no latent size) by name and title."""
        if not self.title:
            return self.name
        return f"{self.name} — {self.title}" + (f", {self.latent_dim}-d latent" if self.latent_dim else "")


@dataclass(frozen=True)
class ModelInfo:
    """A loaded model, in plain values. Decide what to show from `capabilities`, never from `family`."""

    path: str
    name: str
    family: str
    title: str
    latent_dim: int
    capabilities: frozenset[str]   # a subset of CAPABILITIES
    image_shape: tuple[int, int, int]
    dataset: str                   # what it was trained on
    classes: tuple[str, ...]       # that data set's class names
    has_classifier: bool           # decoded images can be labelled by the shipped classifier
    metrics: dict[str, Any] = field(default_factory=dict)
    classifier_reason: str = ""    # why there is no label under decoded images, when there is none
    train_steps: int = 0
    training: dict[str, Any] = field(default_factory=dict)   # how it was trained: seconds, device, settings
    parameters: int = 0            # how many numbers the network holds
    num_classes: int = 0           # a class-conditional model's classes (0: it takes no class); names: `class_names`
    any_class: bool = True         # a conditional model also draws with no class, so "any class" and guidance apply
                                   # (False: a diffusers UNet with class embeddings has no null class)

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def conditional(self) -> bool:
        """Whether the model takes a class to draw (and a guidance scale): a class-conditional DDPM."""
        return self.num_classes > 0

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes a conditional model takes, by index: its data set's names ('class k' past them); ()."""
        return tuple(self.classes[k] if k < len(self.classes) else f"class {k}" for k in range(self.num_classes))


# Training knobs: settings only some families read (models.train.TrainSettings.extra), named here so a training
# dialog and the command line offer the same ones.
@dataclass(frozen=True)
class Knob:
    """A training setting some families read from `TrainSettings.extra`, named so a user can set it."""

    name: str
    families: tuple[str, ...]           # the families that read it; () for every family
    meaning: str
    below: float = float("inf")         # values lie in [0, below)
    at_start: bool = False              # read once, when the optimizers are built: a resume cannot change it

    def applies_to(self, family: str) -> bool:
        return not self.families or family in self.families


KNOBS: tuple[Knob, ...] = (
    Knob("lr_decay_from", (), "the step from which every learning rate falls linearly to zero at the last step"),
    Knob("lr_d", ("gan", "vaegan"), "the discriminator's own learning rate (TTUR, Heusel et al. 2017)",
         at_start=True),
    Knob("beta1", ("gan", "vaegan"), "Adam's beta1 for every player (0.5 by default, as in DCGAN)", below=1.0,
         at_start=True),
    Knob("gamma", ("vaegan",), "the weight of the feature-space reconstruction against the GAN loss (1 by default)"),
    Knob("mmd", ("vaegan",), "the weight of MMD^2 between the batch's codes and N(0, I) in the encoder's loss "
         "(0 by default, as in the paper; WAE-MMD, Tolstikhin et al. 2018)"),
    Knob("p_uncond", ("ddpm",), "a class-conditional DDPM's chance of training each image with 'no class' instead "
         "of its label (0.1 by default; classifier-free guidance, Ho & Salimans 2022)", below=1.0),
)


def knob_named(name: str) -> Knob:
    """The knob of that name; KeyError for one the library does not know."""
    return {k.name: k for k in KNOBS}[name]
