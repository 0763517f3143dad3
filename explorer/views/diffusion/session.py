"""What the Diffusion tab keeps in a session: the run's seed, sampler, steps, eta and sample count, the class and
guidance asked, the branch seed, and the forward half's test image, noise seed and t. Plain Python (no Qt): the
session file is checked with it before the view is touched."""
from __future__ import annotations

from dataclasses import dataclass

from ...session import Fields

SAMPLERS = ("ddim", "dpm++", "ddpm")
MAX_SEED = 2 ** 31 - 1


@dataclass(frozen=True)
class DiffusionSession:
    seed: int | None = None
    sampler: str | None = None
    steps: int | None = None
    eta: float | None = None
    samples: int | None = None
    class_index: int | None = None
    guidance: float | None = None
    branch_seed: int | None = None
    forward_index: int | None = None
    forward_seed: int | None = None
    forward_t: int | None = None


def parse(raw: dict) -> DiffusionSession:
    f = Fields(raw, "the diffusion view's part")
    seeds = {k: f.integer(k, 0, MAX_SEED, optional=True) for k in ("seed", "branch_seed", "forward_seed")}
    return DiffusionSession(
        sampler=f.text("sampler", optional=True, choices=SAMPLERS), steps=f.integer("steps", 1, 100_000, True),
        eta=f.number("eta", 0.0, 1.0, optional=True), samples=f.integer("samples", 1, 1024, optional=True),
        class_index=f.integer("class_index", 0, 10_000, True), guidance=f.number("guidance", 0.0, 100.0, True),
        forward_index=f.integer("forward_index", 0, 10 ** 7, True), forward_t=f.integer("forward_t", 0, 100_000, True),
        **seeds)


def dump(s: DiffusionSession) -> dict:
    return {k: v for k, v in vars(s).items()}
