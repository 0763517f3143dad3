"""What the map keeps in a session: where its probes are, which test image is pinned, which plane (a GAN's or a
diffusion model's seed, a re-centring), which layers are on, how the dots are coloured and the class asked.
Plain Python (no Qt): the session file is checked with it before the view is touched."""
from __future__ import annotations

from dataclasses import dataclass

from ...session import Fields, SessionError

MAX_PROBES = 8
LAYERS = ("grid", "regions", "critic", "distance")
MAX_INDEX = 10 ** 7
MAX_SEED = 2 ** 31 - 1
BOUND = 1e6


@dataclass(frozen=True)
class MapSession:
    probes: tuple[tuple[float, float], ...] = ()      # (u, v) of each probe, on the plane below
    seed: int = 0                                     # the noise plane's seed (GAN, diffusion)
    recentred_on: int | None = None                   # the test image the plane passes through, if re-centred
    pinned: int | None = None
    layers: tuple[str, ...] = ()                      # the layers switched on
    colour_by: str | None = None
    class_index: int | None = None
    guidance: float | None = None
    view_range: tuple[tuple[float, float], tuple[float, float]] | None = None


def parse(raw: dict) -> MapSession:
    f = Fields(raw, "the map's part")
    layers = f.items("layers", len(LAYERS), optional=True)
    if not all(isinstance(x, str) and x in LAYERS for x in layers):
        raise SessionError(f"the map's layers are not among {', '.join(LAYERS)}; nothing was changed.")
    ranges = f.points("view_range", 2, 2, BOUND, optional=True) or None
    if ranges is not None and (len(ranges) != 2 or not all(lo < hi for lo, hi in ranges)):
        raise SessionError("the map's view range is not two ranges (low, high); nothing was changed.")
    return MapSession(
        probes=f.points("probes", MAX_PROBES, 2, BOUND, optional=True),
        seed=f.integer("seed", 0, MAX_SEED, optional=True, default=0),
        recentred_on=f.integer("recentred_on", 0, MAX_INDEX, optional=True),
        pinned=f.integer("pinned", 0, MAX_INDEX, optional=True), layers=tuple(dict.fromkeys(layers)),
        colour_by=f.text("colour_by", optional=True), class_index=f.integer("class_index", 0, 10_000, optional=True),
        guidance=f.number("guidance", 0.0, 100.0, optional=True), view_range=ranges)


def dump(s: MapSession) -> dict:
    return {"probes": [list(p) for p in s.probes], "seed": s.seed, "recentred_on": s.recentred_on,
            "pinned": s.pinned, "layers": list(s.layers), "colour_by": s.colour_by, "class_index": s.class_index,
            "guidance": s.guidance, "view_range": None if s.view_range is None else [list(r) for r in s.view_range]}
