"""What the Interpolate tab keeps in a session: its keyframes (their exact pixels and where they came from), the
kind of path if the user chose it, the frame count, where the slider is, the class asked and the search's steps.
Plain Python (no Qt): the session file is checked with it before the view is touched."""
from __future__ import annotations

from dataclasses import dataclass

from ...session import Fields, SessionError, decode_picture, encode_picture
from .path import MAX_KEYFRAMES, MIN_KEYFRAMES, Keyframe
from .paths import KINDS


@dataclass(frozen=True)
class InterpolateSession:
    keyframes: tuple[Keyframe, ...] = ()
    kind: str | None = None              # None: the path follows the codes' prior (the user never chose)
    frames: int | None = None
    t: float = 0.0
    class_index: int | None = None
    guidance: float | None = None
    inversion_steps: int | None = None


def parse(raw: dict) -> InterpolateSession:
    f = Fields(raw, "the interpolation's part")
    keyframes = []
    for i, item in enumerate(f.items("keyframes", MAX_KEYFRAMES, optional=True)):
        k = Fields(item, f"keyframe {i + 1}")
        keyframes.append(Keyframe(decode_picture(k.get("picture"), f"keyframe {i + 1}'s picture"),
                                  k.text("source", optional=True, default=f"keyframe {i + 1}")))
    if 0 < len(keyframes) < MIN_KEYFRAMES:
        raise SessionError(f"the interpolation has {len(keyframes)} keyframe; a path needs {MIN_KEYFRAMES}; "
                           "nothing was changed.")
    if len({k.image.shape for k in keyframes}) > 1:
        raise SessionError("the interpolation's keyframes are pictures of different sizes; nothing was changed.")
    return InterpolateSession(
        tuple(keyframes), f.text("kind", optional=True, choices=KINDS), f.integer("frames", 2, 1000, optional=True),
        f.number("t", 0.0, 1.0, optional=True, default=0.0), f.integer("class_index", 0, 10_000, optional=True),
        f.number("guidance", 0.0, 100.0, optional=True), f.integer("inversion_steps", 1, 100_000, optional=True))


def dump(s: InterpolateSession) -> dict:
    return {"keyframes": [{"picture": encode_picture(k.image), "source": k.source} for k in s.keyframes],
            "kind": s.kind, "frames": s.frames, "t": s.t, "class_index": s.class_index, "guidance": s.guidance,
            "inversion_steps": s.inversion_steps}
