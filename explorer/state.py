"""What the user has chosen, in one QObject: the model, the data set, the list of models to pick from.

Views change the state and listen to it; they never talk to each other. The state asks the engine for the work
(loading a model, listing the weights folder) and emits plain values once the engine has answered, so every view
sees the same model at the same moment. The picker's model is the default for views that follow it; a view may
show other models too, since every job names its own. No torch here: a ModelInfo (from the torch-free
`models.catalog`) is built on the engine thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from PySide6.QtCore import QObject, Signal

from models.catalog import ModelEntry, ModelInfo

from .engine.job import Result


@dataclass(frozen=True, eq=False)
class Arrows:
    """The Directions tab's picture and sliders as the map draws them: the picked picture's code `start` (d,), the
    +3 sigma end of each slider's direction `ends` (K, d) with its slider's number, and the moved code (d,)."""

    start: np.ndarray
    ends: np.ndarray
    slots: tuple[int, ...]
    moved: np.ndarray


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def model_summary(info: ModelInfo) -> str:
    """What a model's file says about itself, in lines a person reads: how it was trained and how good it is.

    The quality line comes from benchmarks/quality.py --record (metrics.quality); a file without it says nothing
    about quality rather than guess.
    """
    lines = [info.path]
    trained = f"trained {info.train_steps:,} steps on {info.dataset}"
    if info.conditional:
        trained += f" with its {info.num_classes} classes (classifier-free guidance)"
    seconds, device = info.training.get("seconds"), info.training.get("device")
    if isinstance(seconds, (int, float)) and seconds > 0:
        trained += f" ({_hours(float(seconds))}" + (f" on {device})" if device else ")")
    target = info.training.get("target_steps")
    if info.training.get("finished") is False and isinstance(target, int):
        trained += f", {info.train_steps / max(target, 1):.0%} of its planned {target:,}"
    lines.append(trained)
    quality = info.metrics.get("quality")
    if isinstance(quality, dict):
        parts = []
        if isinstance(quality.get("fid"), (int, float)):
            n = quality.get("fid_n")
            parts.append(f"domain FID {quality['fid']:.0f}" + (f" on {n:,} samples" if isinstance(n, int) else "")
                         + (f" ({quality['sampler']})" if quality.get("sampler") else ""))
        if isinstance(quality.get("recon_mse"), (int, float)):
            parts.append(f"test reconstruction MSE {quality['recon_mse']:.4f}")
        if isinstance(quality.get("ms_per_sample_b64"), (int, float)):
            parts.append(f"{quality['ms_per_sample_b64']:.3g} ms per sample (batch 64)")
        if parts:
            lines.append("measured: " + "; ".join(parts))
    return "\n".join(lines)


class AppState(QObject):
    """The app's shared state. `engine` is the one engine every view submits through (each on its own channel)."""

    model_changed = Signal(object)      # ModelInfo, or None
    models_listed = Signal(list)        # [ModelEntry]
    model_failed = Signal(str, str)     # path, one-line message: the file could not be opened
    loading = Signal(str)               # path of the model being loaded
    keyframe_requested = Signal(object, str)   # a picture (H, W) in [0, 1] for the interpolation, and its source
    path_changed = Signal(str, object)  # model path, the interpolation's path z (N, d) or None: the map draws it
    test_image_pinned = Signal(int)     # a test image the user pinned on the map (its index): others may use it
    arrows_changed = Signal(str, object)  # model path, the Directions tab's Arrows or None: the map draws them

    def __init__(self, engine: Any, weights: str | Path | None = None, dataset: str = "fashion-mnist",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.weights = str(weights) if weights else None   # the user's --weights; None: the default folder
        self.weights_dir: str | None = None                  # where the engine found it (after list_models)
        self.dataset = dataset
        self.model: ModelInfo | None = None
        self.models: list[ModelEntry] = []
        self.channel = engine.channel("state")
        self._opening: str | None = None    # the path being opened; which answer is current, the channel says

    def open_model(self, path: str | Path) -> int:
        """Ask the engine to open `path`; `model_changed` follows, or `model_failed` with the reason."""
        from .engine.jobs.loading import LoadModel

        path = str(path)
        job_id = self.channel.submit(LoadModel(path), self._on_loaded,
                                     lambda message: self._on_failed(path, message))
        self._opening = path                # an older open still on its way is overtaken: latest wins
        self.loading.emit(path)
        return job_id

    def list_models(self, extra: list[str] | tuple[str, ...] = ()) -> int:
        """Ask the engine for the shipped models plus `extra` files (recently opened); `models_listed` follows."""
        from .engine.jobs.loading import ListModels

        return self.channel.submit(ListModels(self.weights, tuple(str(p) for p in extra)), self._on_listed)

    @property
    def is_loading(self) -> bool:
        return self._opening is not None

    def _on_loaded(self, result: Result) -> None:
        if not self.channel.is_current(result):
            return                          # an older open, overtaken by a newer one
        self._opening = None
        self.model = result.payload
        self.model_changed.emit(self.model)

    def _on_failed(self, path: str, message: str) -> None:
        self._opening = None
        self.model_failed.emit(path, message)

    def _on_listed(self, result: Result) -> None:
        self.weights_dir = result.payload.weights_dir
        self.models = list(result.payload.entries)
        self.models_listed.emit(self.models)
