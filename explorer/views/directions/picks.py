"""What the Directions tab keeps that is not a widget: the picked picture, the directions listed, the two groups
and the analogy's three pictures, and its session state read back with every field checked. A test drives it
without a window."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...engine.jobs.directions import DirectionData

SLOTS = 4                        # sliders, one direction each
MAX_DIRECTIONS = 64              # a session never lists more
MAX_LATENT = 4096                # nor a vector longer than this
SLIDER_RANGE = 3.0               # -3 sigma ... +3 sigma
KINDS = ("principal", "attribute", "groups", "analogy")


@dataclass
class Picture:
    """The picture the sliders move: its code z (d,), what it is shown as, and how to find it again."""

    z: np.ndarray
    image: np.ndarray | None
    source: str
    index: int | None = None     # a test image
    seed: int | None = None      # a generator's prior draw


@dataclass
class Picks:
    """Pictures the user set aside to make a direction: group A, group B, and the analogy's a, b and c."""

    group_a: list[Picture] = field(default_factory=list)
    group_b: list[Picture] = field(default_factory=list)
    analogy: dict[str, Picture] = field(default_factory=dict)

    def clear_groups(self) -> None:
        self.group_a.clear()
        self.group_b.clear()

    def groups_ready(self) -> bool:
        return bool(self.group_a) and bool(self.group_b)

    def analogy_ready(self) -> bool:
        return all(k in self.analogy for k in "abc")

    def summary(self) -> str:
        def names(group: list[Picture]) -> str:
            return f"{len(group)} picture{'s' if len(group) != 1 else ''}"

        parts = [f"group A: {names(self.group_a)}", f"group B: {names(self.group_b)}"]
        parts += [f"{k} = {self.analogy[k].source}" for k in "abc" if k in self.analogy]
        return "; ".join(parts)


def direction_from_json(item: Any, latent_dim: int) -> DirectionData:
    """A direction from a session's JSON, every field checked; ValueError (one sentence) when it is not one."""
    if not isinstance(item, dict):
        raise ValueError("a direction must be a JSON object")
    name, kind, source = item.get("name"), item.get("kind"), item.get("source", "")
    vector, sigma = item.get("vector"), item.get("sigma")
    if not isinstance(name, str) or not 0 < len(name) <= 200 or not isinstance(source, str) or len(source) > 500:
        raise ValueError("a direction needs a name (and a source) in words")
    if kind not in KINDS:
        raise ValueError(f"the direction '{name}' has an unknown kind")
    if not isinstance(vector, list) or len(vector) != latent_dim or len(vector) > MAX_LATENT:
        raise ValueError(f"the direction '{name}' is not a list of {latent_dim} numbers, one per latent axis")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vector):
        raise ValueError(f"the direction '{name}' holds something that is not a finite number")
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"the direction '{name}' needs a positive sigma")
    v = np.asarray(vector, dtype=np.float32)
    if not np.isfinite(v).all() or float(np.linalg.norm(v)) == 0.0:
        raise ValueError(f"the direction '{name}' points nowhere")
    return DirectionData(name, kind, source, v, float(sigma))


def code_from_json(value: Any, latent_dim: int) -> np.ndarray | None:
    """A picture's code from a session (a list of latent_dim finite numbers), or None when it is not one."""
    if not isinstance(value, list) or len(value) != latent_dim:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return np.asarray(value, dtype=np.float32)


def slider_value(value: Any) -> float | None:
    """A slider's value from a session, within -3 ... +3 sigma; None when it is not a number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(min(SLIDER_RANGE, max(-SLIDER_RANGE, value)))
