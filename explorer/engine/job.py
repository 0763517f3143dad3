"""What the UI asks the engine for: a Job, run on the engine thread against the model it names.

A job is a frozen dataclass. `model` names the checkpoint it runs on (a path, or a shipped model's name): the
engine binds the job to that model and no other, loading it into its cache if needed. Its `key` names what it
updates ("decode:probe-0"); within one requester, a waiting job is replaced by a newer one with the same key
(latest wins). `run(ctx)` runs on the engine thread and returns numpy payloads only -- or a generator of them,
for work that streams (diffusion frames, training steps). A stream gives the device back between items whenever
other work waits: `priority` says who goes first (interactive, then animation, then training).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

INTERACTIVE = 0     # a drag, a click: answered before anything else
ANIMATION = 1       # a diffusion run, frames a person watches
TRAINING = 2        # hours of steps: whatever time is left over


@dataclass
class EngineContext:
    """What a job can use on the engine thread. Owned by the engine; never touched from the UI thread.

    The engine hands each job a copy bound to the job's own model: `model`, `model_path` and `cache` (that
    model's cached results, which live and die with it) are the job's model's, whatever else is loaded.
    """

    device: Any                       # torch.device
    model: Any = None                 # the job's model (models.LatentModel), or None for a job that needs none
    model_path: str | None = None
    classifier: Any = None            # the data set's classifier, when it applies to this model's data
    data: dict[str, Any] = field(default_factory=dict)   # loaded data sets by (name, split), shared
    cache: dict[str, Any] = field(default_factory=dict)  # the model's own cached results (e.g. encoded test set)
    models: Any = None                # the engine's ModelCache: every loaded model (None: only `model`)


@dataclass(frozen=True)
class Job:
    """Base of every request. Subclasses add their own fields and override `run`."""

    model: str | None = field(default=None, kw_only=True)   # the checkpoint this job runs on
    coalesce: ClassVar[bool] = False   # True for drag requests: a waiting job with the same key is dropped
    priority: ClassVar[int] = INTERACTIVE

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
    """A (C, H, W) or (B, C, H, W) tensor in [0, 1] -> float32 numpy (H, W) / (B, H, W) for one channel, (H, W, 3)
    / (B, H, W, 3) for three: the picture's shape is the model's, never assumed."""
    arr = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    arr = np.clip(arr, 0.0, 1.0).astype(np.float32, copy=False)
    if arr.ndim >= 3 and arr.shape[-3] == 1:
        arr = arr[..., 0, :, :]
    elif arr.ndim >= 3 and arr.shape[-3] == 3:
        arr = np.moveaxis(arr, -3, -1)
    return np.ascontiguousarray(arr)


def from_images(images: np.ndarray, image_shape: tuple[int, int, int]) -> Any:
    """What `to_image` made of a batch, back: numpy (B, H, W) or (B, H, W, 3) in [0, 1] -> a float tensor
    (B, C, H, W) on the CPU, checked against a model's (C, H, W); UserError (one sentence) when it does not fit."""
    import torch

    from .errors import UserError

    arr = np.ascontiguousarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] == 3:
        arr = np.ascontiguousarray(np.moveaxis(arr, -1, 1))
    c, h, w = (int(s) for s in image_shape)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != (c, h, w):
        got = "x".join(str(s) for s in arr.shape[1:]) if arr.ndim == 4 else str(arr.shape)
        raise UserError(f"these pictures are {got} (channels x height x width) and the model takes {c}x{h}x{w}")
    return torch.from_numpy(arr)
