"""What the Compare tab keeps in a session: the columns the user hid, the test images (a seed, or the numbers
typed), the prior rows' seed and the two switches. Plain Python (no Qt): the session file is checked with it before
the view is touched."""
from __future__ import annotations

from dataclasses import dataclass

from ...session import Fields, SessionError

MAX_SEED = 2 ** 31 - 1
MAX_PICKED = 16


@dataclass(frozen=True)
class CompareSession:
    hidden: tuple[str, ...] = ()          # the paths of the reconstruction columns hidden
    image_seed: int = 0
    indices: tuple[int, ...] = ()         # the test images typed in (empty: one per class, from image_seed)
    sample_seed: int = 0
    sample: bool = False                  # z = mu + sigma * eps
    difference: bool = False              # |x - x^|


def parse(raw: dict) -> CompareSession:
    f = Fields(raw, "the compare view's part")
    hidden = f.items("hidden", 32, optional=True)
    if not all(isinstance(p, str) and 0 < len(p) <= 4096 and "\0" not in p for p in hidden):
        raise SessionError("the compare view's hidden columns are not paths; nothing was changed.")
    indices = f.items("indices", MAX_PICKED, optional=True)
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= 10 ** 7 for i in indices):
        raise SessionError("the compare view's test images are not image numbers; nothing was changed.")
    return CompareSession(tuple(hidden), f.integer("image_seed", 0, MAX_SEED, True, 0), tuple(indices),
                          f.integer("sample_seed", 0, MAX_SEED, True, 0), f.boolean("sample", True, False),
                          f.boolean("difference", True, False))


def dump(s: CompareSession) -> dict:
    return {"hidden": list(s.hidden), "image_seed": s.image_seed, "indices": list(s.indices),
            "sample_seed": s.sample_seed, "sample": s.sample, "difference": s.difference}
