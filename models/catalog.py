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


def data_classes(dataset: str) -> tuple[str, ...]:
    """The class names of a data set the library knows; () for any other."""
    return {"fashion-mnist": FASHION_CLASSES, "mnist": DIGIT_CLASSES}.get(dataset, ())


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
