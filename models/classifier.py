"""A small Fashion-MNIST CNN: the yardstick behind the domain FID and the label under every decoded image.

It is not a latent model (no decode, no sample), so the app's model picker never lists it; it is registered
only so that a checkpoint of it loads like any other. Three conv stages (conv 3x3, BatchNorm, ReLU, max-pool
2x2: 28 -> 14 -> 7 -> 3) and a small dense head; about 8 M multiply-adds per image, so batch-1 classification
is about a millisecond on a laptop CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import Model, iter_batches

from .catalog import CLASSIFY


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128              # the penultimate layer: the space the domain FID is measured in
    num_classes: int = 10
    dropout: float = 0.3
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ValueError("channels must be a non-empty tuple of positive widths")
        if self.feature_dim < 1 or self.num_classes < 2:
            raise ValueError("feature_dim must be at least 1 and num_classes at least 2")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")


class Classifier(Model):
    family = "classifier"
    capabilities = frozenset({CLASSIFY})

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        c, h, w = config.image_shape
        layers: list[nn.Module] = []
        for ch in config.channels:
            layers += [nn.Conv2d(c, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = ch, h // 2, w // 2
        self.body = nn.Sequential(*layers, nn.Flatten())                     # (B, C_k * H_k * W_k)
        self.penultimate = nn.Sequential(nn.Linear(c * h * w, config.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations (B, feature_dim) of images (B, C, H, W) in [0, 1]: the FID's feature space."""
        return self.penultimate(self.body(x))

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)

    @torch.no_grad()
    def classify(self, x: Tensor, batch_size: int = 1024) -> tuple[Tensor, Tensor]:
        """(class index (B,), softmax confidence (B,)). Confidence is a label, not a realism score:
        off the data the network is over-confident (uniform noise can score 0.95)."""
        was_training = self.training
        self.eval()
        labels, confs = [], []
        for xb in iter_batches(x, batch_size):
            p = F.softmax(self.logits(xb.to(self.device)), dim=1)
            conf, label = p.max(dim=1)
            labels.append(label)
            confs.append(conf)
        self.train(was_training)
        return torch.cat(labels), torch.cat(confs)

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor, batch_size: int = 1024) -> float:
        """Fraction of images whose predicted class equals the label."""
        labels, _ = self.classify(x, batch_size)
        return float((labels.cpu() == y.cpu()).float().mean())

    def configure_optimizers(self, settings) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.AdamW(self.parameters(), lr=settings.lr, weight_decay=1e-4)}

    def training_step(self, x: Tensor, optimizers, generator: torch.Generator, y: Tensor | None = None
                      ) -> dict[str, float]:
        """One cross-entropy step. Unlike the generative families it needs labels `y` (B,)."""
        if y is None:
            raise ValueError("the classifier trains on labelled images: pass y, the class indices")
        opt = optimizers["model"]
        logits = self.logits(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = (logits.detach().argmax(1) == y).float().mean()
        return {"ce": loss.item(), "acc": acc.item()}
