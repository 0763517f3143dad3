"""What a run leaves on the UI side: its frames as numpy arrays, kept so a person can scrub back through them,
and the pictures made from them (one frame of the animation, the label strip, the branch comparison).

No Qt and no torch here: a Track is a list of frames and a few numbers, testable on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..widgets.tiles import like_colour, tile

EPS_RANGE = 3.0          # eps is shown from -3 (black) to +3 (white): 99.7% of N(0, 1)


@dataclass(frozen=True, eq=False)
class KeptFrame:
    """One step as the view keeps it: x_t exactly as the sampler held it (a branch starts from it), the
    predicted clean image and noise (half precision: what the eye needs), the label of x̂_0 when asked."""

    index: int
    t: int
    x_raw: np.ndarray                      # (B, C, H, W) float32, [-1, 1] scale
    x0: np.ndarray                         # (B, H, W) float16 in [0, 1], (B, H, W, 3) for a colour model
    eps: np.ndarray                        # (B, H, W) float16, or (B, H, W, 3)
    ms: float
    labels: np.ndarray | None = None       # (B,) int64
    confidences: np.ndarray | None = None  # (B,) float32

    @classmethod
    def of(cls, f) -> "KeptFrame":
        """From an engine DiffusionFrame."""
        x_t = 2.0 * np.asarray(f.x_t, np.float32) - 1.0
        raw = f.x_raw if f.x_raw is not None else (x_t[:, None] if x_t.ndim == 3 else np.moveaxis(x_t, -1, 1))
        return cls(int(f.index), int(f.t), np.asarray(raw, np.float32), np.asarray(f.x0, np.float16),
                   np.asarray(f.eps, np.float16), float(f.ms), f.labels, f.confidences)

    @property
    def x_t(self) -> np.ndarray:
        """(B, H, W) in [0, 1] for the eye, (B, H, W, 3) for a colour model."""
        raw = self.x_raw[:, 0] if self.x_raw.shape[1] == 1 else np.moveaxis(self.x_raw, 1, -1)
        return np.clip((raw + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)

    @property
    def eps_image(self) -> np.ndarray:
        return eps_image(self.eps)


def eps_image(eps: np.ndarray) -> np.ndarray:
    """Noise in [0, 1] for the eye: -EPS_RANGE black, 0 mid grey, +EPS_RANGE white."""
    return np.clip(np.asarray(eps, np.float32) / (2.0 * EPS_RANGE) + 0.5, 0.0, 1.0)


@dataclass(eq=False)
class Track:
    """A run's frames so far. A branch starts at its parent's frame `start` with its own noise `seed`; its
    frames 0..start-1 are the parent's own arrays (shared, not copied), and frame `start` is its first."""

    name: str
    n: int
    sampler: str
    steps: int | None
    eta: float
    seed: int
    start: int = 0
    parent: "Track | None" = None
    frames: list[KeptFrame] = field(default_factory=list)
    total: int = 0
    done: bool = False
    stopped: bool = False                  # cancelled before its last frame
    wall_s: float | None = None            # submit -> last frame, as the user waited for it
    class_index: int | None = None         # a class-conditional model's class (None: any class) ...
    guidance: float = 1.0                  # ... and guidance scale w; a branch keeps its parent's

    @classmethod
    def branch_of(cls, parent: "Track", k: int, seed: int, name: str) -> "Track":
        if not 0 <= k < len(parent.frames):
            raise ValueError(f"frame {k} has not been computed yet")
        return cls(name, parent.n, parent.sampler, parent.steps, parent.eta, seed, k, parent,
                   list(parent.frames[:k]), parent.total, class_index=parent.class_index, guidance=parent.guidance)

    @property
    def guided(self) -> bool:
        """Whether each step runs the network twice (a class asked at a scale other than 0 and 1)."""
        return self.class_index is not None and self.guidance not in (0.0, 1.0)

    def add(self, frame: KeptFrame, total: int) -> None:
        if frame.index != len(self.frames):
            raise ValueError(f"frame {frame.index} arrived after {len(self.frames)} frames")
        self.frames.append(frame)
        self.total = total

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def final(self) -> KeptFrame | None:
        return self.frames[-1] if self.done and self.frames else None

    @property
    def unet_ms(self) -> float:
        """The network's own time for this track's frames (a branch's shared frames are its parent's)."""
        return float(sum(f.ms for f in self.frames[self.start:]))

    @property
    def ts(self) -> np.ndarray:
        return np.array([f.t for f in self.frames], dtype=np.int64)

    def label_series(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, confidences), each (B, frames so far): the last classified frame carried forward, -1 and 0
        before the first one."""
        b, k = self.n, len(self.frames)
        labels = np.full((b, k), -1, dtype=np.int64)
        confs = np.zeros((b, k), dtype=np.float32)
        last_l, last_c = labels[:, 0].copy() if k else None, confs[:, 0].copy() if k else None
        for j, f in enumerate(self.frames):
            if f.labels is not None:
                last_l, last_c = np.asarray(f.labels), np.asarray(f.confidences)
            if last_l is not None:
                labels[:, j], confs[:, j] = last_l, last_c
        return labels, confs


def grid_columns(n: int) -> int:
    """Columns for n samples: as square as it gets (16 -> 4, 6 -> 3, 2 -> 2)."""
    return max(1, int(np.ceil(np.sqrt(n))))


def text_band(width: int, height: int, lines: list[str], background: float = 1.0) -> np.ndarray:
    """A strip (height, width) in [0, 1] with `lines` of text, centred, in Pillow's built-in font."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (width, height), int(round(background * 255)))
    draw = ImageDraw.Draw(img)
    ink = 0 if background > 0.5 else 255
    y = 1
    for line in lines:
        box = draw.textbbox((0, 0), line)
        draw.text(((width - (box[2] - box[0])) / 2, y), line, fill=ink)
        y += box[3] - box[1] + 3
    return np.asarray(img, dtype=np.float32) / 255.0


def animation_frame(frame: KeptFrame, columns: int, gap: int = 2) -> np.ndarray:
    """One picture of a step: x_t | x̂_0 | eps, grids side by side, with t and the panels' names above; (H, W)
    for a grey model, (H, W, 3) for a colour one."""
    parts = [tile(frame.x_t, columns, gap, fill=1.0), tile(frame.x0.astype(np.float32), columns, gap, fill=1.0),
             tile(frame.eps_image, columns, gap, fill=1.0)]
    h, w = parts[0].shape[:2]
    sep = np.ones((h, 6), dtype=np.float32)
    heads = [text_band(w, 13, [name]) for name in (f"x_t, t = {frame.t}", "x0 guess", "eps guess")]
    sep_h = np.ones((13, 6), dtype=np.float32)
    body = np.concatenate(like_colour([parts[0], sep, parts[1], sep, parts[2]]), axis=1)
    head = np.concatenate(like_colour([heads[0], sep_h, heads[1], sep_h, heads[2]], body.ndim == 3), axis=1)
    return np.concatenate([head, body], axis=0)


def gif_frames(track: Track, columns: int, max_frames: int = 120) -> list[np.ndarray]:
    """At most `max_frames` evenly spaced frames of the track, always with its last, as pictures."""
    k = len(track.frames)
    if k == 0:
        return []
    picks = sorted(set(np.linspace(0, k - 1, min(k, max_frames)).round().astype(int).tolist()))
    return [animation_frame(track.frames[i], columns) for i in picks]


def comparison_picture(images: np.ndarray, captions: list[list[str]], columns: int, gap: int = 4,
                       band: int = 26) -> np.ndarray:
    """Images (m, H, W) or (m, H, W, 3) in rows of `columns`, each with its caption lines under it, on white: the
    PNG export of a branch comparison, readable without the app."""
    m, h, w = images.shape[:3]
    rest = images.shape[3:]
    scale = max(1, 96 // w)
    big = np.asarray(images, np.float32).repeat(scale, axis=1).repeat(scale, axis=2)
    cell_w, cell_h = w * scale, h * scale + band
    rows = -(-m // columns)
    out = np.ones((rows * (cell_h + gap) + gap, columns * (cell_w + gap) + gap, *rest), dtype=np.float32)
    for i in range(m):
        r, c = divmod(i, columns)
        y, x = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
        out[y:y + h * scale, x:x + cell_w] = big[i]
        text = text_band(cell_w, band, captions[i])
        out[y + h * scale:y + cell_h, x:x + cell_w] = text[..., None] if rest else text
    return out

