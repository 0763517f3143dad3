"""What the UI asks the engine for: a Job, run on the engine thread against the loaded model.

A job is a frozen dataclass. Its `key` names what it updates ("decode:probe-0"); a job waiting in the queue is
replaced by a newer one with the same key (latest wins). `run(ctx)` runs on the engine thread and returns numpy
payloads only -- or a generator of them, for work that streams (diffusion frames, training steps); the engine
emits each item and checks for cancellation between items.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np


@dataclass
class EngineContext:
    """What a job can use on the engine thread. Owned by the engine; never touched from the UI thread."""

    device: Any                       # torch.device
    model: Any = None                 # models.LatentModel, or None before the first load
    model_path: str | None = None
    classifier: Any = None            # the Fashion-MNIST classifier, when one is shipped
    data: dict[str, Any] = field(default_factory=dict)   # loaded data sets by (name, split)
    cache: dict[str, Any] = field(default_factory=dict)  # per-model cached results (e.g. encoded test set)


@dataclass(frozen=True)
class Job:
    """Base of every request. Subclasses add their own fields and override `run`."""

    coalesce: ClassVar[bool] = False   # True for drag requests: a waiting job with the same key is dropped

    @property
    def key(self) -> str:
        return type(self).__name__

    def run(self, ctx: EngineContext) -> Any | Iterator[Any]:  # pragma: no cover - subclasses override
        raise NotImplementedError


@dataclass(frozen=True)
class Result:
    """One answer from the engine: the job's id and key, and its payload (numpy arrays and plain values)."""

    job_id: int
    key: str
    payload: Any
    final: bool = True               # False for items of a stream that has more to come
    elapsed_ms: float = 0.0          # engine time spent on this job (or stream item)


def to_image(x: Any) -> np.ndarray:
    """A (C, H, W) or (B, C, H, W) tensor in [0, 1] -> float32 numpy (H, W) / (B, H, W) for one channel."""
    arr = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    arr = np.clip(arr, 0.0, 1.0).astype(np.float32, copy=False)
    if arr.ndim >= 3 and arr.shape[-3] == 1:
        arr = arr[..., 0, :, :]
    elif arr.ndim >= 3 and arr.shape[-3] == 3:
        arr = np.moveaxis(arr, -3, -1)
    return np.ascontiguousarray(arr)
