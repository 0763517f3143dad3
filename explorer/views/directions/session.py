"""What the Directions tab keeps in a session: the picked picture (its code, where it came from, and a file's exact
pixels), every direction listed with its vector and sigma, each slider's direction and value, and the strip's
slider. Plain Python (no Qt): the session file is checked with it before the view is touched; that the vectors
fit the model's latent is the view's check, once the model is open."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...engine.jobs.directions import DirectionData
from ...session import MAX_ITEMS, Fields, SessionError, encode_picture
from .picks import KINDS, MAX_DIRECTIONS, SLIDER_RANGE, SLOTS, Picture

BOUND = 1e6                       # no code or vector entry is larger


@dataclass(frozen=True)
class DirectionsSession:
    picture: Picture | None = None
    directions: tuple[DirectionData, ...] = ()
    sliders: tuple[tuple[int, float], ...] = ()      # (direction index or -1, value in sigma), one per slider
    strip: int = 0


def vector(raw: Any, what: str) -> np.ndarray:
    """A list of 1 to MAX_ITEMS finite numbers within ±BOUND, as float32."""
    ok = isinstance(raw, list) and 0 < len(raw) <= MAX_ITEMS and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and abs(x) <= BOUND
        for x in raw)
    if not ok:
        raise SessionError(f"{what} is not a list of finite numbers, one per latent axis; nothing was changed.")
    return np.asarray(raw, dtype=np.float32)


def parse(raw: dict) -> DirectionsSession:
    f = Fields(raw, "the directions' part")
    directions = []
    for i, item in enumerate(f.items("directions", MAX_DIRECTIONS, optional=True)):
        d = Fields(item, f"direction {i + 1}")
        v = vector(d.get("vector"), f"direction {i + 1}'s vector")
        if not np.any(v):
            raise SessionError(f"direction {i + 1}'s vector is all zeros; nothing was changed.")
        directions.append(DirectionData(d.text("name"), d.text("kind", choices=KINDS),
                                        d.text("source", optional=True, default=""), v,
                                        d.number("sigma", 1e-12, BOUND)))
    if len({len(d.vector) for d in directions}) > 1:
        raise SessionError("the directions' vectors are of different lengths; nothing was changed.")
    sliders = []
    for i, item in enumerate(f.items("sliders", SLOTS, optional=True)):
        s = Fields(item, f"slider {i + 1}")
        sliders.append((s.integer("direction", -1, len(directions) - 1),
                        s.number("value", -SLIDER_RANGE, SLIDER_RANGE)))
    picture = None
    if f.has("picture"):
        p = Fields(f.get("picture"), "the picked picture")
        z = vector(p.get("z"), "the picked picture's code")
        if directions and len(z) != len(directions[0].vector):
            raise SessionError("the picked picture's code and the directions are of different lengths; nothing was "
                               "changed.")
        image = p.picture("image") if p.has("image") else None
        picture = Picture(z, image, p.text("source", optional=True, default="a picture"),
                          p.integer("index", 0, 10 ** 9, optional=True), p.integer("seed", 0, 2 ** 63, optional=True))
    return DirectionsSession(picture, tuple(directions), tuple(sliders),
                             f.integer("strip", 0, SLOTS - 1, optional=True, default=0))


def dump(s: DirectionsSession) -> dict:
    picture = None
    if s.picture is not None:
        p = s.picture
        picture = {"z": [float(v) for v in p.z], "source": p.source, "index": p.index, "seed": p.seed}
        if p.image is not None and p.index is None and p.seed is None:     # a file: its exact pixels
            picture["image"] = encode_picture(p.image)
    return {"picture": picture, "directions": [d.to_json() for d in s.directions],
            "sliders": [{"direction": i, "value": v} for i, v in s.sliders], "strip": s.strip}
