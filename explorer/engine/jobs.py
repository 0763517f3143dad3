"""The general jobs: load a model and list the models there are (decoding lives in decoding.py).

Each runs on the engine thread and answers in plain values: a ModelInfo, or a list of ModelEntry.
torch and `models` are imported inside `run`, so importing this module (the UI does, to build requests) stays
cheap. The map's own jobs live beside this file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..state import ModelEntry, ModelInfo
from .job import EngineContext, Job

DECODE = "decode"


def data_classes(dataset: str) -> tuple[str, ...]:
    from models.data import DIGIT_CLASSES, FASHION_CLASSES

    return FASHION_CLASSES if dataset == "fashion-mnist" else DIGIT_CLASSES if dataset == "mnist" else ()


def _families():
    import models  # noqa: F401  (registers the latent families)
    from models import core

    try:
        import models.classifier  # noqa: F401  (so a classifier file is recognised, and kept out of the picker)
    except ImportError:  # pragma: no cover - the classifier module ships with the project
        pass
    return core.FAMILIES


def _capabilities(family: str) -> frozenset[str]:
    fam = _families().get(family)
    return frozenset(fam.model_cls.capabilities) if fam is not None else frozenset()


def _entry(meta: Any, shipped: bool) -> ModelEntry:
    latent = int(getattr(meta.config, "latent_dim", 0) or 0)
    return ModelEntry(str(meta.path), Path(meta.path).stem, meta.family, meta.title, shipped, latent)


@dataclass(frozen=True)
class ModelList:
    """The answer to ListModels: where the shipped weights were looked for, and what the picker lists."""

    weights_dir: str
    entries: list[ModelEntry]


def resolve_weights_dir(explicit: str | None) -> Path:
    """--weights DIR, else $LATENT_EXPLORER_WEIGHTS, else the repo's weights/ (models.weights decides)."""
    from models.weights import weights_dir

    return weights_dir(explicit)


@dataclass(frozen=True)
class ListModels(Job):
    """The shipped models plus `extra` files, keeping only models that can decode a latent.

    `weights` is the user's --weights (None: the default folder); it is resolved here, on the engine thread, so
    the UI never imports `models`. Reads headers only (no tensors). A file that cannot be read is left out here;
    opening it says why.
    """

    weights: str | None = None
    extra: tuple[str, ...] = ()
    activity = "listing models"

    @property
    def key(self) -> str:
        return "list-models"

    def run(self, ctx: EngineContext) -> ModelList:
        from models.checkpoint import CheckpointError, read_metadata
        from models.weights import shipped_checkpoints

        _families()
        folder = resolve_weights_dir(self.weights)
        entries: list[ModelEntry] = []
        seen: set[str] = set()
        sources = [(p, True) for p in shipped_checkpoints(folder)]
        sources += [(Path(p), False) for p in self.extra]
        for path, shipped in sources:
            resolved = str(Path(path).resolve())
            if resolved in seen or not Path(path).is_file():
                continue
            try:
                meta = read_metadata(path)
            except CheckpointError:
                continue
            if DECODE not in _capabilities(meta.family):
                continue              # the classifier, and anything else with no latent to explore
            seen.add(resolved)
            entries.append(_entry(meta, shipped))
        return ModelList(str(folder), entries)


@dataclass(frozen=True)
class LoadModel(Job):
    """Load the checkpoint at `path` onto the engine's device; on success it becomes ctx.model.

    The previous model stays loaded if this fails, so the app keeps working. The shipped classifier (when the
    weights folder has one) is loaded once, beside the first model, as ctx.classifier.
    """

    path: str
    weights: str | None = None      # the user's --weights; the classifier is looked for there


    @property
    def key(self) -> str:
        return "load-model"

    @property
    def activity(self) -> str:
        return f"loading {Path(self.path).name}"

    def run(self, ctx: EngineContext) -> ModelInfo:
        from models.checkpoint import CheckpointError, load, read_metadata

        _families()
        meta = read_metadata(self.path)
        caps = _capabilities(meta.family)
        if DECODE not in caps:
            raise CheckpointError(f"{Path(self.path).name} is a {meta.title}, not a model with a latent space "
                                  "to explore; open an autoencoder, VAE, GAN, VAE-GAN or diffusion model")
        model = load(self.path, ctx.device)
        model.eval()
        ctx.model, ctx.model_path = model, str(self.path)
        ctx.cache.clear()
        ctx.cache["classifier_ok"] = False          # until this model's classifier is known to fit its data
        warm_up(model, ctx.device)
        reason = self._ensure_classifier(ctx)
        if ctx.classifier is not None:
            cls_data = getattr(ctx.classifier, "dataset", None)
            if cls_data and cls_data != meta.dataset:
                reason = f"the classifier knows {cls_data}, and this model draws {meta.dataset}"
        ok = ctx.classifier is not None and not reason
        ctx.cache["classifier_ok"] = ok
        return ModelInfo(
            path=str(self.path), name=Path(self.path).stem, family=meta.family, title=meta.title,
            latent_dim=int(model.latent_dim), capabilities=caps, image_shape=tuple(int(s) for s in meta.image_shape),
            dataset=meta.dataset, classes=data_classes(meta.dataset), has_classifier=ok,
            metrics=_plain(meta.metrics), classifier_reason=reason, train_steps=int(meta.train_steps),
            training=_plain(meta.training))

    def _ensure_classifier(self, ctx: EngineContext) -> str:
        """Load the classifier once per path; returns why there is none ('' when there is one)."""
        from models.checkpoint import CheckpointError, load, read_metadata

        path = str(resolve_weights_dir(self.weights) / "classifier.safetensors")
        if not path or not Path(path).is_file():
            ctx.classifier = None
            return "there is no classifier in the weights folder (classifier.safetensors)"
        if ctx.classifier is not None and getattr(ctx.classifier, "source_path", None) == path:
            return ""
        try:
            meta = read_metadata(path)
            classifier = load(path, ctx.device)
        except CheckpointError as err:
            ctx.classifier = None
            return f"the classifier could not be loaded: {err}"
        classifier.eval()
        classifier.source_path = path
        classifier.dataset = meta.dataset
        ctx.classifier = classifier
        return ""


def warm_up(model: Any, device: Any) -> None:
    """One untimed pass, so the first cost shown under a probe is the model's, not the backend's start-up
    (kernel selection, allocator growth); for diffusion a single U-Net step is enough."""
    import torch

    with torch.no_grad():
        if "denoise" in model.capabilities:
            x_T = torch.zeros((1, *model.image_shape), device=device)
            next(iter(model.frames(x_T, sampler="ddim", steps=1, eta=0.0)), None)
        else:
            model.decode(torch.zeros((1, model.latent_dim), device=device))


def _plain(value: Any) -> Any:
    """JSON-like metadata made of plain values only (what crosses to the UI)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
