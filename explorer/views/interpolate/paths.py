"""Walks between latent codes: straight (lerp) or along the great circle (slerp), through 2 or more keyframes.

Numpy only, so the interpolation view computes z(t) on its own thread and the engine and the benchmark use the
very same function: the picture under the slider is decode(z(t)) for exactly this z(t).

Why slerp for Gaussian latents: for z ~ N(0, I_d), |z| concentrates at sqrt(d) (its variance is about 1/2 in
any dimension), so nearly all the prior's mass lies on a thin shell. The straight line between two points of
the shell cuts through the inside, where |z| is smaller than the decoder ever saw in training; slerp stays on
the shell when both ends have the same norm.
"""
from __future__ import annotations

import numpy as np

LERP = "lerp"
SLERP = "slerp"
KINDS = (LERP, SLERP)


def lerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """(1 - t) a + t b. a, b: (d,); t: a scalar or (n,) -> (d,) or (n, d)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)
    return (1.0 - t)[..., None] * a + t[..., None] * b if t.ndim else (1.0 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 for generative models): the direction turns along the
    great circle while the length goes straight from |a| to |b|,

        slerp(a, b; t) = ((1 - t) |a| + t |b|) * (sin((1 - t) W) u_a + sin(t W) u_b) / sin W,
        u_a = a / |a|,  u_b = b / |b|,  cos W = u_a . u_b

    For |a| = |b| this is Shoemake's formula and keeps the norm at every t; for unequal ends the norm moves
    linearly instead of bulging out as the plain formula's does. Nearly parallel ends (sin W ~ 0) and a zero end
    (no direction to turn through) fall back to lerp."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < eps or nb < eps:
        return lerp(a, b, t)
    ua, ub = a / na, b / nb
    omega = float(np.arccos(np.clip(ua @ ub, -1.0, 1.0)))
    if np.sin(omega) < 1e-6:
        return lerp(a, b, t)
    t = np.asarray(t, np.float64)
    wa = np.sin((1.0 - t) * omega) / np.sin(omega)
    wb = np.sin(t * omega) / np.sin(omega)
    length = (1.0 - t) * na + t * nb
    if t.ndim:
        return length[..., None] * (wa[..., None] * ua + wb[..., None] * ub)
    return length * (wa * ua + wb * ub)


def path_point(keyframes: np.ndarray, t: float, kind: str = SLERP) -> np.ndarray:
    """z(t) on the path through keyframes (K, d), K >= 2, t in [0, 1]: K - 1 equal segments, each walked by
    lerp or slerp. Returns (d,) float32."""
    return path_points(keyframes, np.array([t]), kind)[0]


def path_points(keyframes: np.ndarray, ts: np.ndarray, kind: str = SLERP) -> np.ndarray:
    """z(t) for each t of ts (n,): (n, d) float32. t = 0 is the first keyframe, t = 1 the last."""
    if kind not in KINDS:
        raise ValueError(f"unknown path '{kind}'; use one of {', '.join(KINDS)}")
    z = np.asarray(keyframes, np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError("a path needs at least two keyframes, as an array (K, d)")
    segments = z.shape[0] - 1
    ts = np.clip(np.asarray(ts, np.float64).reshape(-1), 0.0, 1.0)
    pos = ts * segments
    index = np.minimum(pos.astype(np.int64), segments - 1)
    local = pos - index
    walk = slerp if kind == SLERP else lerp
    out = np.empty((ts.shape[0], z.shape[1]), np.float64)
    for i in range(segments):
        sel = index == i
        if sel.any():
            out[sel] = walk(z[i], z[i + 1], local[sel])
    return out.astype(np.float32)


def frame_times(n: int) -> np.ndarray:
    """n evenly spaced t from 0 to 1 inclusive: where a strip of n frames samples the path."""
    return np.linspace(0.0, 1.0, int(n))


def pixel_steps(frames: np.ndarray) -> np.ndarray:
    """Mean absolute pixel change between consecutive frames (n, H, W) -> (n - 1,): a jump shows as a spike."""
    f = np.asarray(frames, np.float64).reshape(len(frames), -1)
    return np.abs(np.diff(f, axis=0)).mean(axis=1).astype(np.float32)
