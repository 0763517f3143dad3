"""A small CNN per data set: the yardstick behind the domain FID and the label under every decoded image.

The shipped one reads Fashion-MNIST (weights/classifier.safetensors); any data set with labels gets its own with
`python -m models train --family classifier --data NAME`, kept beside it as classifier-NAME.safetensors. A
checkpoint records the data set and picture shape it was trained on, and `models.metrics.find_classifier` hands
out one only for pictures of that data set and shape: a classifier is never applied to anything else.

It is not a latent model (no decode, no sample), so the app's model picker never lists it; it is registered
only so that a checkpoint of it loads like any other. Three conv stages (conv 3x3, BatchNorm, ReLU, max-pool
2x2: 28 -> 14 -> 7 -> 3) and a small dense head; about 8 M multiply-adds per 28x28 image, so batch-1
classification is about a millisecond on a laptop CPU. A data set with known factors (`shapes`: shape, colour,
size, x, y) gets one head per factor: one linear layer gives every head's logits side by side, split by
`heads`, so a one-head classifier holds exactly the tensors it always did.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .catalog import CLASSIFY, DEFAULT_DATASET, FOLDER_PREFIX
from .core import Model, iter_batches

CLASSIFIER_FILE = "classifier.safetensors"      # the shipped Fashion-MNIST classifier's file


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128              # the penultimate layer: the space the domain FID is measured in
    num_classes: int = 10               # the first (or only) head's classes
    dropout: float = 0.3
    image_shape: tuple[int, int, int] = (1, 28, 28)
    heads: tuple[int, ...] = ()         # one head per factor, its number of values (shapes: (3, 6, 3, 4, 4));
                                        # () is one head of num_classes; heads[0] must be num_classes

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ValueError("channels must be a non-empty tuple of positive widths")
        if self.feature_dim < 1 or self.num_classes < 2:
            raise ValueError("feature_dim must be at least 1 and num_classes at least 2")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.heads and (min(self.heads) < 2 or self.heads[0] != self.num_classes):
            raise ValueError(f"heads must each have at least 2 values, the first num_classes ({self.num_classes}); "
                             f"got {list(self.heads)}")
        _, h, w = self.image_shape
        if min(h, w) >> len(self.channels) < 1:
            raise ValueError(f"{h}x{w} pictures are too small for {len(self.channels)} pooling stages")

    @property
    def head_sizes(self) -> tuple[int, ...]:
        """The classes of each head, first head first: (num_classes,) for a one-head classifier."""
        return self.heads or (self.num_classes,)


class Classifier(Model):
    family = "classifier"
    capabilities = frozenset({CLASSIFY})
    supervised = True                   # trains on labels: models.train passes the batch's (y), one column a head

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        c, h, w = config.image_shape
        layers: list[nn.Module] = []
        for ch in config.channels:
            layers += [nn.Conv2d(c, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = ch, h // 2, w // 2
        self.body = nn.Sequential(*layers, nn.Flatten())                     # (B, C_k * H_k * W_k)
        self.penultimate = nn.Sequential(nn.Linear(c * h * w, config.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(config.dropout),
                                  nn.Linear(config.feature_dim, sum(config.head_sizes)))   # every head, side by side

    @property
    def head_sizes(self) -> tuple[int, ...]:
        return self.config.head_sizes

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations (B, feature_dim) of images (B, C, H, W) in [0, 1]: the FID's feature space."""
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"this classifier reads {shape_text(self.image_shape)} pictures, not "
                             f"{shape_text(x.shape[1:])}; a data set's pictures need that data set's own classifier")
        return self.penultimate(self.body(x))

    def head_logits(self, x: Tensor) -> list[Tensor]:
        """Each head's logits, [(B, k_0), (B, k_1), ...]: the split of one (B, sum k) layer."""
        return list(self.head(self.features(x)).split(self.head_sizes, dim=1))

    def logits(self, x: Tensor) -> Tensor:
        """The first head's logits (B, num_classes): the class, or the first factor (shapes: the shape)."""
        return self.head(self.features(x))[:, :self.config.num_classes]

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)

    @torch.no_grad()
    def classify(self, x: Tensor, batch_size: int = 1024) -> tuple[Tensor, Tensor]:
        """(class index (B,), softmax confidence (B,)) of the first head. Confidence is a label, not a realism
        score: off the data the network is over-confident (uniform noise can score 0.95)."""
        labels, confs = self.classify_factors(x, batch_size)
        return labels[:, 0].contiguous(), confs[:, 0].contiguous()

    @torch.no_grad()
    def classify_factors(self, x: Tensor, batch_size: int = 1024) -> tuple[Tensor, Tensor]:
        """Every head's prediction: (value index (B, F) int64, softmax confidence (B, F)), one column a head,
        in the order of the data set's factors (`models.catalog.data_factors`); F = 1 for a one-head classifier."""
        was_training = self.training
        self.eval()
        labels, confs = [], []
        for xb in iter_batches(x, batch_size):
            parts = [F.softmax(part, dim=1).max(dim=1) for part in self.head_logits(xb.to(self.device))]
            confs.append(torch.stack([p.values for p in parts], dim=1))
            labels.append(torch.stack([p.indices for p in parts], dim=1))
        self.train(was_training)
        if not labels:
            empty = torch.empty((0, len(self.head_sizes)), device=self.device)
            return empty.long(), empty
        return torch.cat(labels), torch.cat(confs)

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor, batch_size: int = 1024) -> float:
        """Fraction of images whose predicted class (the first head's) equals the label (B,)."""
        labels, _ = self.classify(x, batch_size)
        return float((labels.cpu() == y.cpu()).float().mean())

    @torch.no_grad()
    def factor_accuracy(self, x: Tensor, factors: Tensor, batch_size: int = 1024) -> list[float]:
        """Per head, the fraction of images whose predicted value equals the label; factors (B, F) or (B,)."""
        labels, _ = self.classify_factors(x, batch_size)
        y = _as_columns(factors).cpu()
        return [float(v) for v in (labels.cpu() == y).float().mean(dim=0)]

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.AdamW(self.parameters(), lr=settings.lr, weight_decay=1e-4)}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, settings=None,
                      y: Tensor | None = None) -> dict[str, float]:
        """One cross-entropy step, the mean over heads of each head's CE. Unlike the generative families it needs
        labels `y`: (B,) class indices for one head, (B, F) value indices for F heads."""
        if y is None:
            raise ValueError("the classifier trains on labelled images: pass y, the class indices")
        y = _as_columns(y)
        if y.shape[1] != len(self.head_sizes):
            raise ValueError(f"the classifier has {len(self.head_sizes)} head(s) and the labels have "
                             f"{y.shape[1]} column(s)")
        opt = optimizers["model"]
        logits = self.head_logits(x)
        losses = [F.cross_entropy(part, y[:, k]) for k, part in enumerate(logits)]
        loss = torch.stack(losses).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hits = [(part.detach().argmax(1) == y[:, k]).float().mean().item() for k, part in enumerate(logits)]
        out = {"ce": loss.item(), "acc": hits[0]}
        if len(hits) > 1:
            out.update({f"acc_{k}": h for k, h in enumerate(hits)})
        return out


def _as_columns(y: Tensor) -> Tensor:
    return y[:, None] if y.ndim == 1 else y


def shape_text(shape: Sequence[int]) -> str:
    """(3, 32, 32) as 3x32x32."""
    return "x".join(str(int(s)) for s in shape)


# ---------------------------------------------------------------------------------------------------------------
# Which classifier applies to which pictures

def classifier_file(dataset: str) -> str:
    """The file a data set's classifier is kept in: classifier.safetensors for Fashion-MNIST (as shipped),
    classifier-NAME.safetensors for the others (a folder's by the folder's name: classifier-folder-photos)."""
    if dataset == DEFAULT_DATASET:
        return CLASSIFIER_FILE
    name = dataset
    if dataset.startswith(FOLDER_PREFIX):
        name = "folder-" + Path(dataset[len(FOLDER_PREFIX):]).name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "data"
    return f"classifier-{slug}.safetensors"
