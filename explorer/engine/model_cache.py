"""The models the engine holds at once: loaded on demand, the least recently used dropped past a limit.

A job names its checkpoint; `ModelCache.get` answers with that model's `Slot` -- the network on the device, its
plain-values `ModelInfo`, and a dict of results cached for it (the encoded test set), which is dropped with it.
The limit is both a count and the bytes of parameters held; the classifiers are kept apart and always stay. A
model gets the classifier trained on its own data set at its own picture shape (`models.metrics.find_classifier`:
classifier.safetensors for Fashion-MNIST, classifier-NAME.safetensors for another set, in the weights folder or
beside the model), or none, and its ModelInfo says why; one is never applied to another data set's pictures.
Everything here runs on the engine thread; torch and `models` are imported inside the functions.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.catalog import DECODE, DENOISE, ModelInfo, data_classes

from .errors import NoModelError

MAX_MODELS = 8
MAX_BYTES = 512 * 2 ** 20
CLASSIFIER_FILE = "classifier.safetensors"      # Fashion-MNIST's; another data set's is classifier-NAME.safetensors
# A model that names no data set (a diffusers folder) is shown generated pictures at its own shape where a view
# needs test pictures (the forward process, inversion), and no classifier labels its samples.
STAND_IN_DATASET = "shapes"
UNKNOWN_DATA_REASON = ("this model does not say which data set it learned from, so no classifier labels its "
                       "pictures (the views noise and invert generated shapes instead)")


@dataclass
class Slot:
    """One loaded model and what lives and dies with it."""

    path: str
    model: Any
    info: ModelInfo
    nbytes: int
    stamp: tuple[int, int]                    # (mtime_ns, size) of the file when it was loaded
    classifier_ok: bool = False               # a classifier knows this model's data set and picture shape
    cache: dict[Any, Any] = field(default_factory=dict)
    classifier: Any = None                    # that classifier (None: no labels for this model's pictures)


def file_stamp(path: str | Path) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_mtime_ns, st.st_size


def family_capabilities(family: str) -> frozenset[str]:
    """What a checkpoint's family can do, from the library's registry (empty for a family it does not know)."""
    from models.registry import FAMILIES

    fam = FAMILIES.get(family)
    return frozenset(fam.model_cls.capabilities) if fam is not None else frozenset()


def resolve_weights_dir(explicit: str | None) -> Path:
    """--weights DIR, else $LATENT_EXPLORER_WEIGHTS, else the repo's weights/ (models.weights decides)."""
    from models.weights import weights_dir

    return weights_dir(explicit)


class ModelCache:
    """name or path -> Slot, most recently used last. Engine-thread only."""

    def __init__(self, device: Any, weights: str | None = None, max_models: int = MAX_MODELS,
                 max_bytes: int = MAX_BYTES) -> None:
        self.device = device
        self.weights = weights              # the user's --weights; None: the default folder
        self.max_models = max_models
        self.max_bytes = max_bytes
        self._slots: OrderedDict[str, Slot] = OrderedDict()
        self._classifiers: dict[str, tuple[tuple[int, int], Any]] = {}    # path -> (file stamp, loaded model)
        self.loads = 0                      # how many times a checkpoint was read (a cache hit reads none)

    # -- names ---------------------------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """A shipped model's name ("vae-2d") -> its file in the weights folder; a path -> itself, absolute."""
        path = Path(name).expanduser()
        if path.suffix != ".safetensors" and not path.exists() and path.parent == Path("."):
            shipped = resolve_weights_dir(self.weights) / f"{name}.safetensors"
            if shipped.is_file():
                path = shipped
        return str(path.resolve())

    def loaded(self) -> list[str]:
        """Paths of the models held now, least recently used first."""
        return list(self._slots)

    @property
    def classifier(self) -> Any:
        """The classifier of the model `get` answered last (None where none applies to its pictures)."""
        return next(reversed(self._slots.values())).classifier if self._slots else None

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._slots.values())

    def set_limits(self, max_models: int | None = None, max_bytes: int | None = None) -> None:
        if max_models is not None:
            self.max_models = max(1, int(max_models))
        if max_bytes is not None:
            self.max_bytes = max(0, int(max_bytes))
        self._evict(keep=None)

    # -- loading -------------------------------------------------------------------------------------------------
    def get(self, name: str | None, reload_changed: bool = False) -> Slot:
        """The model called `name`, loaded if it is not held (or, with `reload_changed`, if its file changed)."""
        if not name:
            raise NoModelError("no model is loaded yet: pick one in the model picker, or File > Open a "
                               ".safetensors file")
        path = self.resolve(name)
        slot = self._slots.get(path)
        if slot is not None and reload_changed and Path(path).is_file() and file_stamp(path) != slot.stamp:
            self.drop(path)
            slot = None
        if slot is None:
            slot = self._load(path)
            self._slots[path] = slot
        self._slots.move_to_end(path)
        self._evict(keep=path)
        return slot

    def drop(self, path: str) -> None:
        slot = self._slots.pop(self.resolve(path), None)
        if slot is not None:
            slot.cache.clear()

    def _evict(self, keep: str | None) -> None:
        while len(self._slots) > 1 and (len(self._slots) > self.max_models or self.nbytes > self.max_bytes):
            oldest = next(p for p in self._slots if p != keep)
            self.drop(oldest)

    def _load(self, path: str) -> Slot:
        from models.checkpoint import CheckpointError, load, read_metadata

        meta = read_metadata(path)
        caps = getattr(meta, "capabilities", None) or family_capabilities(meta.family)   # a folder's meta says
        if DECODE not in caps:
            raise CheckpointError(f"{Path(path).name} is a {meta.title}, not a model with a latent space "
                                  "to explore; open an autoencoder, VAE, GAN, VAE-GAN or diffusion model")
        stamp = file_stamp(path)
        model = load(path, self.device)
        model.eval()
        self.loads += 1
        warm_up(model, self.device)
        if meta.dataset:
            classifier, reason = self._classifier_for(meta.dataset, meta.image_shape, path)
        else:
            classifier, reason = None, UNKNOWN_DATA_REASON
        ok = classifier is not None
        nbytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
        info = ModelInfo(
            path=path, name=Path(meta.path).name if Path(meta.path).is_dir() else Path(path).stem,   # a folder's own
            family=meta.family, title=meta.title, latent_dim=int(model.latent_dim),
            capabilities=frozenset(model.capabilities),     # this model's: a GAN may have come without its D
            image_shape=tuple(int(s) for s in meta.image_shape), dataset=meta.dataset or STAND_IN_DATASET,
            classes=data_classes(meta.dataset), has_classifier=ok, metrics=plain(meta.metrics),
            classifier_reason=reason, train_steps=int(meta.train_steps), training=plain(meta.training),
            parameters=sum(p.numel() for p in model.parameters()), num_classes=conditional_classes(model),
            any_class=bool(getattr(model, "has_null_class", True)))
        return Slot(path, model, info, int(nbytes), stamp, ok, classifier=classifier)

    def _classifier_for(self, dataset: str, image_shape: Any, model_path: str) -> tuple[Any, str]:
        """(the classifier trained on `dataset` at `image_shape`, '') from the weights folder or the model's own,
        loaded once per file; or (None, why there is none). Never one of another data set or picture shape."""
        from models.checkpoint import CheckpointError, load
        from models.metrics import find_classifier

        folders = [resolve_weights_dir(self.weights), Path(model_path).parent]
        match = find_classifier(dataset, image_shape, folders)
        if match.path is None:
            return None, match.reason
        key = str(match.path.resolve())
        held = self._classifiers.get(key)
        if held is not None and held[0] == file_stamp(key):
            return held[1], ""
        try:
            classifier = load(key, self.device).eval()
        except CheckpointError as err:
            return None, f"the classifier {match.path.name} could not be loaded: {err}"
        classifier.dataset = dataset
        self._classifiers[key] = (file_stamp(key), classifier)
        return classifier, ""


def conditional_classes(model: Any) -> int:
    """How many classes a class-conditional model takes (its null class is one past the last); 0 for any other."""
    return int(model.null_class) if getattr(model, "conditional", False) else 0


def warm_up(model: Any, device: Any) -> None:
    """One untimed pass, so the first cost shown under a probe is the model's, not the backend's start-up
    (kernel selection, allocator growth); for diffusion a single U-Net step is enough."""
    import torch

    with torch.no_grad():
        if DENOISE in model.capabilities:
            x_T = torch.zeros((1, *model.image_shape), device=device)
            no_null = getattr(model, "conditional", False) and not getattr(model, "has_null_class", True)
            cond = {"classes": 0} if no_null else {}          # a network without "no class" needs one
            next(iter(model.frames(x_T, sampler="ddim", steps=1, eta=0.0, **cond)), None)
        else:
            model.decode(torch.zeros((1, model.latent_dim), device=device))


def plain(value: Any) -> Any:
    """JSON-like metadata made of plain values only (what crosses to the UI)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
