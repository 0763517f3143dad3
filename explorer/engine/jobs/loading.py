"""The general jobs: open a model, list the models there are, set how many the engine keeps (decoding lives in
common.py, each tab's jobs in the module of its name).

Each runs on the engine thread and answers in plain values: a ModelInfo, or a list of ModelEntry (both from the
torch-free `models.catalog`). torch and the rest of `models` are imported inside `run`, so importing this module
(the UI does, to build requests) stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.catalog import DECODE, ModelEntry, ModelInfo

from ..job import EngineContext, Job
from ..model_cache import family_capabilities, resolve_weights_dir


@dataclass(frozen=True)
class ModelList:
    """The answer to ListModels: where the shipped weights were looked for, and what the picker lists."""

    weights_dir: str
    entries: list[ModelEntry]


@dataclass(frozen=True)
class ListModels(Job):
    """The shipped models plus `extra` files, keeping only models that can decode a latent.

    `weights` is a folder to list instead of the engine's own (its --weights, else the default folder); it is
    resolved here, on the engine thread, so the UI never imports the torch half of `models`. Reads headers only
    (no tensors). A file that cannot be read is left out here; opening it says why.
    """

    weights: str | None = None
    extra: tuple[str, ...] = ()
    activity = "listing models"

    @property
    def key(self) -> str:
        return "list-models"

    def run(self, ctx: EngineContext) -> ModelList:
        from models.checkpoint import CheckpointError, read_folder, read_metadata
        from models.weights import shipped_checkpoints

        own = ctx.models.weights if ctx.models is not None else None
        folder = resolve_weights_dir(self.weights if self.weights is not None else own)
        entries: list[ModelEntry] = []
        seen: set[str] = set()
        sources = [(p, True) for p in shipped_checkpoints(folder)]
        sources += [(Path(p), False) for p in self.extra]
        for path, shipped in sources:
            resolved = str(Path(path).resolve())
            if resolved in seen or not Path(path).exists():           # a file, or a folder diffusers saved
                continue
            try:       # a folder diffusers saved is looked at without building its network (or importing diffusers)
                meta = read_folder(path, network=False) if Path(path).is_dir() else read_metadata(path)
            except CheckpointError:
                continue
            if DECODE not in (getattr(meta, "capabilities", None) or family_capabilities(meta.family)):
                continue              # the classifier, and anything else with no latent to explore
            seen.add(resolved)
            latent = int(getattr(meta.config, "latent_dim", 0) or 0)
            entries.append(ModelEntry(resolved, Path(path).stem, meta.family, meta.title, shipped, latent))
        return ModelList(str(folder), entries)


@dataclass(frozen=True)
class LoadModel(Job):
    """Open the checkpoint at `path` (a file, or a shipped model's name) and say what it is.

    The model joins the engine's cache (a file that changed on disk since it was loaded is read again); the
    models already held stay, so a failure here leaves the app as it was. The engine's weights folder's
    classifier is loaded once, beside the first model.
    """

    path: str = ""

    def __post_init__(self) -> None:
        if self.model is None:
            object.__setattr__(self, "model", self.path)

    @property
    def key(self) -> str:
        return "load-model"

    @property
    def activity(self) -> str:
        return f"loading {Path(self.path).name}"

    def run(self, ctx: EngineContext) -> ModelInfo:
        return ctx.models.get(self.path, reload_changed=True).info


@dataclass(frozen=True)
class ModelLimits(Job):
    """How many models, and how many bytes of parameters, the engine keeps loaded; answers with what it holds."""

    max_models: int | None = None
    max_bytes: int | None = None

    def run(self, ctx: EngineContext) -> list[str]:
        if ctx.models is None:
            return []
        ctx.models.set_limits(self.max_models, self.max_bytes)
        return ctx.models.loaded()
