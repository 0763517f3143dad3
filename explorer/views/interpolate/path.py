"""What the Interpolate tab walks, without a window: the keyframes, their codes and the kind of path between them.

    walk = KeyframePath()
    walk.add(Keyframe(image, "#0 T-shirt")); walk.add(Keyframe(other, "#42 Ankle boot"))
    walk.set_codes(codes)                 # from the engine: lerp or slerp follows the codes' prior
    walk.frames(16)                       # (16, d) codes along the path; walk.point(0.5) the one half way
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .paths import LERP, SLERP, frame_times, path_point, path_points

MIN_KEYFRAMES, MAX_KEYFRAMES = 2, 8


@dataclass
class Keyframe:
    image: np.ndarray          # (H, W) float32 in [0, 1], light on dark: what the model is given
    source: str                # "#123 Trouser", "shoe.jpg"

    @property
    def short(self) -> str:
        """What fits under a small tile: the test image's number, or the file name's start."""
        head = self.source.split(" ")[0] if self.source.startswith("#") else self.source
        return head if len(head) <= 9 else head[:8] + "…"


class KeyframePath:
    """2 to 8 keyframes, the codes found for them and the kind of path (lerp or slerp) between the codes.

    The kind follows the codes (slerp for a Gaussian prior, lerp otherwise) until the user chooses one; from then
    on it stays theirs. `codes` is None while the keyframes' codes are not known (`partial` is the newest item of
    a running search)."""

    def __init__(self) -> None:
        self.keyframes: list[Keyframe] = []
        self.codes: Any = None             # the engine's Codes: z (K, d), method, gaussian, ...
        self.partial: Any = None
        self.kind = SLERP
        self.kind_from_user = False

    @property
    def full(self) -> bool:
        return len(self.keyframes) >= MAX_KEYFRAMES

    def add(self, keyframe: Keyframe) -> bool:
        """Append `keyframe`; False if there are MAX_KEYFRAMES already."""
        if self.full:
            return False
        self.keyframes.append(keyframe)
        return True

    def remove_last(self) -> bool:
        """Drop the last keyframe; False if that would leave fewer than MIN_KEYFRAMES."""
        if len(self.keyframes) <= MIN_KEYFRAMES:
            return False
        self.keyframes.pop()
        return True

    def keep_only(self, shape: tuple[int, ...]) -> bool:
        """Drop every keyframe unless all are pictures of `shape` (another model's picture: another size or
        channel count); True when they were dropped."""
        if all(k.image.shape == tuple(shape) for k in self.keyframes):
            return False
        self.keyframes.clear()
        return True

    def replace(self, keyframes) -> None:
        """Another set of keyframes at once (a session's); their codes are to be found again."""
        self.keyframes = list(keyframes)[:MAX_KEYFRAMES]
        self.forget_codes()

    def restore_kind(self, kind: str | None) -> None:
        """A session's kind of path: the user's choice, or None to follow the codes' prior again."""
        self.kind_from_user = kind is not None
        self.kind = kind if kind is not None else SLERP

    def images(self) -> np.ndarray:
        """(K, H, W) or (K, H, W, 3) float32: the keyframes' pictures, as the engine is given them."""
        return np.stack([k.image for k in self.keyframes]).astype(np.float32)

    def forget_codes(self) -> None:
        self.codes = self.partial = None

    def set_codes(self, codes) -> None:
        """The final codes of the keyframes; the kind follows their prior unless the user chose it."""
        self.codes = codes
        if not self.kind_from_user:
            self.kind = SLERP if codes.gaussian else LERP

    def reset_kind(self) -> None:
        """A new model: slerp again, unless the user chose the kind."""
        if not self.kind_from_user:
            self.kind = SLERP

    def choose_kind(self, kind: str) -> bool:
        """The user's choice of lerp or slerp; True if it changed the path."""
        if kind == self.kind:
            return False
        self.kind_from_user = True
        self.kind = kind
        return True

    def point(self, t: float) -> np.ndarray | None:
        """z(t) of the path, (d,); None until the codes are known."""
        return None if self.codes is None else path_point(self.codes.z, t, self.kind)

    def frames(self, n: int) -> np.ndarray | None:
        """(n, d): the path's codes at n evenly spaced times from the first keyframe to the last."""
        return None if self.codes is None else path_points(self.codes.z, frame_times(n), self.kind)
