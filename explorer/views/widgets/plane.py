"""The 2-D plane the map shows, inside a latent space of any size: numpy only, shared by the view and the jobs.

A plane is an origin o (d,) and two spanning vectors B (2, d): the map point (u, v) is the latent

    z = o + u * b1 + v * b2                      (to_latent)

and a latent projects back with the pseudo-inverse, (u, v) = (z - o) B^+, which is the exact inverse for every z
that lies in the plane (project). A 2-D latent is its own plane (o = 0, B = I); a larger one is shown on its PCA
plane through the data mean; a GAN's on two random orthonormal directions through the origin; a diffusion model's
on the plane through three noise seeds x1, x2, x3 (o = x1, B = [x2 - x1, x3 - x1]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Plane:
    """z = origin + (u, v) @ basis. `axes` name the two map axes for the user."""

    origin: np.ndarray            # (d,)
    basis: np.ndarray             # (2, d)
    axes: tuple[str, str] = ("z1", "z2")
    kind: str = "latent"          # "latent" (the 2-D latent itself), "pca", "random", "seeds"

    @property
    def dim(self) -> int:
        return int(self.origin.shape[0])

    @property
    def coords(self) -> np.ndarray:
        """B^+ (d, 2): (u, v) = (z - o) @ coords. Equal to B^T when the basis is orthonormal."""
        return np.linalg.pinv(self.basis.astype(np.float64))

    def to_latent(self, uv: np.ndarray) -> np.ndarray:
        """Map points (N, 2) or (2,) -> latents (N, d) or (d,), float32."""
        uv = np.asarray(uv, dtype=np.float64)
        z = self.origin.astype(np.float64) + uv @ self.basis.astype(np.float64)
        return z.astype(np.float32)

    def project(self, z: np.ndarray) -> np.ndarray:
        """Latents (N, d) or (d,) -> map points (N, 2) or (2,): the nearest point of the plane, in its coordinates."""
        z = np.asarray(z, dtype=np.float64)
        return ((z - self.origin.astype(np.float64)) @ self.coords).astype(np.float32)

    def project_cov(self, variances: np.ndarray) -> np.ndarray:
        """A diagonal Gaussian's covariance diag(sigma^2) (d,) seen on the plane: A^T diag(sigma^2) A, A = B^+ (2, 2).

        For an orthonormal basis P this is P diag(sigma^2) P^T; for the 2-D latent itself, diag(sigma^2).
        """
        a = self.coords
        return (a.T * np.asarray(variances, dtype=np.float64)) @ a

    def recentred(self, z: np.ndarray) -> "Plane":
        """The same directions through a new origin z (d,): the map's (0, 0) becomes that latent."""
        return Plane(np.asarray(z, dtype=np.float32).copy(), self.basis, self.axes, self.kind)


def identity_plane(d: int = 2) -> Plane:
    """A 2-D latent is the map itself: u = z1, v = z2."""
    if d != 2:
        raise ValueError("the identity plane is for a 2-D latent; use pca_plane or random_plane")
    return Plane(np.zeros(2, np.float32), np.eye(2, dtype=np.float32), ("z1", "z2"), "latent")


def pca_plane(codes: np.ndarray) -> tuple[Plane, np.ndarray]:
    """The plane through the codes' mean spanned by their first two principal directions.

    Returns the plane and the fraction of the codes' variance along each of the two axes.
    """
    x = np.asarray(codes, dtype=np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)     # rows of vt: principal directions, unit length
    var = s ** 2
    frac = var[:2] / max(var.sum(), 1e-12)
    basis = vt[:2]
    # A sign convention so the same model gives the same picture every time: largest component positive.
    signs = np.sign(basis[np.arange(2), np.abs(basis).argmax(axis=1)])
    basis = basis * signs[:, None]
    axes = (f"PC1 ({100 * frac[0]:.0f}% of variance)", f"PC2 ({100 * frac[1]:.0f}% of variance)")
    return Plane(mean.astype(np.float32), basis.astype(np.float32), axes, "pca"), frac.astype(np.float32)


def random_plane(d: int, seed: int) -> Plane:
    """The plane through the origin of z ~ N(0, I) spanned by two orthonormal random directions (QR of a Gaussian)."""
    if d < 2:
        raise ValueError("a plane needs a latent of at least 2 dimensions")
    if d == 2:
        return Plane(np.zeros(2, np.float32), np.eye(2, dtype=np.float32), ("z1", "z2"), "latent")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    return Plane(np.zeros(d, np.float32), q.T.astype(np.float32),
                 ("random direction 1", "random direction 2"), "random")


def seeds_plane(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray) -> Plane:
    """The plane through three noise seeds: (0,0) is x1, (1,0) is x2, (0,1) is x3."""
    x1, x2, x3 = (np.asarray(x, dtype=np.float32).ravel() for x in (x1, x2, x3))
    return Plane(x1.copy(), np.stack([x2 - x1, x3 - x1]), ("towards seed 2", "towards seed 3"), "seeds")


def noise_seeds(d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three x_T ~ N(0, I) of size d from one integer seed."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, d)).astype(np.float32)
    return x[0], x[1], x[2]


def grid_centres(x_range: tuple[float, float], y_range: tuple[float, float], n: int) -> np.ndarray:
    """Centres of an n x n grid of cells covering the rectangle, (n*n, 2), row-major from the TOP row down.

    Row r, column c is point r*n + c, at u = x0 + (c + 1/2) w / n and v = y1 - (r + 1/2) h / n, so a mosaic
    of the decoded images laid out row by row reads like the map (v grows upwards on screen).
    """
    (x0, x1), (y0, y1) = x_range, y_range
    u = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    v = y1 - (np.arange(n) + 0.5) * (y1 - y0) / n
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu.ravel(), vv.ravel()], axis=1).astype(np.float32)


def mosaic(images: np.ndarray, n: int) -> np.ndarray:
    """(n*n, H, W) images in grid_centres order -> one (n*H, n*W) picture, top row first."""
    b, h, w = images.shape[:3]
    if b != n * n:
        raise ValueError(f"expected {n * n} images, got {b}")
    rest = images.shape[3:]
    return images.reshape(n, n, h, w, *rest).swapaxes(1, 2).reshape(n * h, n * w, *rest)


def ellipse(centre: np.ndarray, cov: np.ndarray, k: float, n: int = 96) -> np.ndarray:
    """Points (n+1, 2) of the k-sigma ellipse {x : (x - c)^T cov^-1 (x - c) = k^2}, closed."""
    w, v = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    t = np.linspace(0.0, 2.0 * np.pi, n + 1)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)                   # (n+1, 2)
    pts = (circle * (k * np.sqrt(np.maximum(w, 0.0)))) @ v.T
    return (pts + np.asarray(centre, dtype=np.float64)).astype(np.float32)


def default_range(plane: Plane, uv: np.ndarray | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where the map opens: the data's middle 99% with a margin; a little beyond the typical radius sqrt(d) of
    z ~ N(0, I) on a plane through 0; the three seeds on a seed plane. Plain floats (pyqtgraph's range checks
    overflow on float32)."""
    if uv is not None and len(uv):
        lo = np.percentile(uv, 0.5, axis=0).astype(float)
        hi = np.percentile(uv, 99.5, axis=0).astype(float)
    elif plane.kind == "seeds":
        lo, hi = np.array([-0.6, -0.6]), np.array([1.6, 1.6])
    else:
        r = 1.25 * math.sqrt(plane.dim)
        lo, hi = np.array([-r, -r]), np.array([r, r])
    pad = 0.08 * (hi - lo)
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0])), (float(lo[1] - pad[1]), float(hi[1] + pad[1]))


def describe(plane: Plane, frac: np.ndarray | None, family_title: str, ddim_steps: int) -> str:
    """What the user is looking at, in a sentence or three."""
    if plane.kind == "latent":
        return "A 2-D latent: the map is the latent space itself, z = (u, v)."
    if plane.kind == "pca":
        share = f"; {100 * float(frac.sum()):.0f}% of their variance lies in it" if frac is not None else ""
        return (f"A {plane.dim}-D latent, seen on the plane of the codes' two main directions (PCA) through "
                f"their mean{share}. Dots off the plane are drawn at their nearest point on it; a probe "
                "decodes exactly z = mean + u·e1 + v·e2.")
    if plane.kind == "random":
        return (f"The {family_title.lower()} has no encoder, so there is no data to place: this is a plane "
                f"through z = 0 of its {plane.dim}-D noise, along two random orthonormal directions. Draws "
                f"z ~ N(0, I) lie near |z| = √{plane.dim} ≈ {math.sqrt(plane.dim):.1f} (the dashed ring), "
                "so that is where its pictures look most like its samples.")
    return ("A diffusion model's latent is its start noise x_T. This plane runs through three noise seeds "
            "(probe 1 sits on seed 1, probe 2 on seed 2); each point is denoised by "
            f"{ddim_steps} deterministic DDIM steps when you let go.")
