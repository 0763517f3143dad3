"""A diffusion model's reverse process as a stream a person watches: one frame per denoising step.

Each frame carries x_t, the network's guess of the clean image x̂_0 and its predicted noise eps, so a view shows
what happens inside a step, not only its end. The run is an animation: the engine serves drags between its
frames, and its state (the current x_t, the noise generator) lives in the stream itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from models.catalog import DENOISE

from .decoding import Stopwatch, require_model
from .errors import MissingCapabilityError
from .job import ANIMATION, EngineContext, Job, to_image


@dataclass(frozen=True, eq=False)
class DiffusionFrame:
    """One step of a run: frame `index` of `total`, at schedule step t (descending)."""

    index: int
    total: int
    t: int
    x_t: np.ndarray          # (B, H, W) in [0, 1]
    x0: np.ndarray           # (B, H, W) in [0, 1]: the predicted clean image
    eps: np.ndarray          # (B, H, W) float32: the predicted noise, as the network gave it
    ms: float                # the network's time for this step on the device


@dataclass(frozen=True, eq=False)
class DiffusionRun(Job):
    """n samples from seed `seed`, DDPM (`steps` None: the model's T) or DDIM (`steps`, `eta`), streamed."""

    n: int = 16
    seed: int = 0
    sampler: str = "ddim"
    steps: int | None = 50
    eta: float = 0.0
    tag: str = "run"
    priority = ANIMATION

    @property
    def key(self) -> str:
        return f"diffusion:{self.tag}"

    @property
    def activity(self) -> str:
        steps = self.steps or "T"
        return f"denoising {self.n} samples ({steps} {self.sampler.upper()} steps)"

    def run(self, ctx: EngineContext) -> Iterator[DiffusionFrame]:
        import torch

        model = require_model(ctx)
        if DENOISE not in model.capabilities:
            raise MissingCapabilityError(f"the {model.family} model does not denoise; pick a diffusion model")
        gen = torch.Generator(device=ctx.device).manual_seed(int(self.seed))
        frames = model.frames(int(self.n), gen, sampler=self.sampler, steps=self.steps, eta=float(self.eta))
        while True:
            clock = Stopwatch(ctx.device)
            with clock:
                frame = next(frames, None)
            if frame is None:
                return
            yield DiffusionFrame(frame.index, frame.total, int(frame.t), to_image(frame.x_t), to_image(frame.x0),
                                 frame.eps.float().cpu().numpy()[:, 0].astype(np.float32), clock.ms)
