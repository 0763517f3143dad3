"""What the Directions tab keeps that is not a widget: the picked picture, and the two groups and the analogy's
three pictures set aside to make a direction. A test drives it without a window."""
from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

SLOTS = 4                        # sliders, one direction each
MAX_DIRECTIONS = 64              # a session never lists more
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
