"""The latent map's requests to the engine: encode the test set once, denoise a diffusion model's point of the
plane, measure how far the plane is from the data, and draw from a VAE's posterior (plain decodes: common.py).
Each runs on the engine thread and answers with numpy only (dicts of arrays and plain values).

The encoded test set is cached in ctx.cache per model, so switching views, re-centring the plane or
computing the distance layer never re-encodes. torch is imported inside the jobs, so the UI can import this
module to build requests without loading torch on its own thread.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from models.catalog import ENCODE, FOLDER_PREFIX, data_classes, data_factors

from .common import (Decoded, NamedDecode, Stopwatch, as_latents, class_kwargs, decode_points, judge,
                     require_model, test_images)
from ..errors import MissingCapabilityError
from ..job import EngineContext, Job, to_image
from ..result_cache import checkpoint_digest, entry_path, load_arrays, save_arrays

ENCODE_BATCH = 1000


def nearest_distance(points: np.ndarray, codes: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each point (M, d), the Euclidean distance to the nearest code (N, d): (M,).

    ||p - c||^2 = ||p||^2 + ||c||^2 - 2 p.c, in chunks so memory stays M_chunk x N.
    """
    p = np.asarray(points, dtype=np.float64)
    c = np.asarray(codes, dtype=np.float64)
    c2 = (c ** 2).sum(axis=1)
    out = np.empty(p.shape[0], dtype=np.float64)
    for start in range(0, p.shape[0], chunk):
        pb = p[start:start + chunk]
        d2 = (pb ** 2).sum(axis=1)[:, None] + c2[None, :] - 2.0 * pb @ c.T
        out[start:start + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out.astype(np.float32)


def latent_spread(codes: np.ndarray) -> float:
    """The data's latent std per axis, sqrt(trace(Cov) / d): the unit the distance layer is drawn in."""
    x = np.asarray(codes, dtype=np.float64)
    return float(np.sqrt(x.var(axis=0).mean()))



def encode_test_set(ctx: EngineContext, dataset: str, limit: int | None) -> dict[str, Any]:
    """Encode the test split once per (model, data set, limit); mu for a VAE, with its log-variance kept.

    The split is read at the model's own picture shape (`common.test_images`). Kept in the model's own cache while
    it is loaded, and on disk for the next start (keyed by the checkpoint's bytes; never for a folder, whose
    pictures may change), so a start needs neither the data set nor the encoder before the map shows its dots.
    labels are None for unlabelled pictures; factors (N, F) and their names come with a data set that has them."""
    key = ("map:encoded", dataset, limit)                # ctx.cache is the model's own: it dies with it
    cached = ctx.cache.get(key)
    if cached is not None:
        return cached
    model = require_model(ctx)
    if ENCODE not in model.capabilities:
        raise MissingCapabilityError(f"the {model.family} model has no encoder: there is no test set to place "
                                     "on its map")
    digest = checkpoint_digest(ctx.model_path) if not dataset.startswith(FOLDER_PREFIX) else None
    stored = entry_path("encoded", digest, dataset, limit or "all") if digest else None
    arrays = load_arrays(stored) if stored is not None else None
    if arrays is None or not {"codes", "images"} <= set(arrays):
        arrays = _encode(ctx, model, dataset, limit)
        if stored is not None:
            save_arrays(stored, arrays)
    codes = arrays["codes"].astype(np.float32, copy=False)
    labels = arrays["labels"].astype(np.int64, copy=False) if "labels" in arrays else None
    factors = arrays["factors"].astype(np.int64, copy=False) if "factors" in arrays else None
    result = {
        "codes": codes,
        "logvar": arrays["logvar"].astype(np.float32, copy=False) if "logvar" in arrays else None,
        "labels": labels,
        "images": arrays["images"].astype(np.uint8, copy=False),
        "classes": data_classes(dataset) or (() if labels is None else tuple(str(c) for c in np.unique(labels))),
        "factors": factors,
        "factor_names": tuple(f.name for f in data_factors(dataset)) if factors is not None else (),
        "factor_values": tuple(f.values for f in data_factors(dataset)) if factors is not None else (),
        "factor_rgb": tuple(f.rgb for f in data_factors(dataset)) if factors is not None else (),
        "spread": latent_spread(codes),
    }
    ctx.cache[key] = result
    return result


def _encode(ctx: EngineContext, model: Any, dataset: str, limit: int | None) -> dict[str, np.ndarray]:
    """Run the encoder over the test split: codes (mu), log-variances when it has them, labels and factors when
    the data set has them, uint8 images (N, H, W) or (N, H, W, 3)."""
    import torch

    data = test_images(ctx, dataset, model.image_shape)
    n = len(data) if limit is None else min(int(limit), len(data))
    mus, logvars, pictures = [], [], []
    with torch.no_grad():
        for start in range(0, n, ENCODE_BATCH):
            x = data.images[start:min(start + ENCODE_BATCH, n)]
            post = model.encode(x.to(ctx.device))
            mus.append(post.mu.float().cpu().numpy())
            pictures.append(np.round(to_image(x) * 255.0).astype(np.uint8))
            if post.logvar is not None:
                logvars.append(post.logvar.float().cpu().numpy())
    arrays = {"codes": np.concatenate(mus).astype(np.float32), "images": np.concatenate(pictures)}
    if data.labels is not None:
        arrays["labels"] = data.labels[:n].numpy().astype(np.int64)
    if data.factors is not None and len(data_factors(dataset)) == data.factors.shape[1]:
        arrays["factors"] = data.factors[:n].numpy().astype(np.int64)
    if logvars:
        arrays["logvar"] = np.concatenate(logvars).astype(np.float32)
    return arrays


def missing_data(ctx: EngineContext, dataset: str) -> str | None:
    """One sentence when the model's data set cannot be read any more (a folder it was trained on has gone), so
    the map says so and shows no test images; None when it is there."""
    from models.data import DataMissingError

    try:
        test_images(ctx, dataset, require_model(ctx).image_shape)
    except DataMissingError as err:
        if not dataset.startswith(FOLDER_PREFIX):
            raise
        folder = dataset[len(FOLDER_PREFIX):]
        return (f"The folder this model was trained on, {folder}, has gone ({err}), so the map shows no test "
                "images; the probes and the other tabs still work.")
    return None


@dataclass(frozen=True, eq=False)
class EncodeTestSet(Job):
    """Place the test set on the map: codes (N, d), logvar (N, d) or None, labels (or None), factors (or None),
    uint8 images for hover; or {"missing": one sentence} when a folder the model was trained on has gone."""

    dataset: str = "fashion-mnist"
    limit: int | None = None          # the first n test images (tests, quick looks); None for all

    @property
    def key(self) -> str:
        return "map:encode"

    @property
    def activity(self) -> str:
        return "encoding the test set"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        # only a folder can go missing; a named set's encoding may come from the disk cache without reading the
        # data set (and importing torchvision) at all, which is most of a start's wait for the dots
        if self.dataset.startswith(FOLDER_PREFIX):
            missing = missing_data(ctx, self.dataset)
            if missing is not None:
                return {"missing": missing}
        return encode_test_set(ctx, self.dataset, self.limit)


@dataclass(frozen=True, eq=False)
class DenoisePoint(NamedDecode):
    """A diffusion model's x_T decoded with deterministic DDIM (eta = 0), streamed: one item per step with the
    current prediction of the clean image, so the panel shows progress; the last item is the final image."""

    steps: int = 20
    class_index: int | None = None     # a class-conditional model's class (None: any class) and guidance scale
    guidance: float = 1.0

    @property
    def activity(self) -> str:
        return f"denoising {self.name} ({self.steps} DDIM steps)"

    def run(self, ctx: EngineContext) -> Iterator[Decoded]:
        model = require_model(ctx)
        cond = class_kwargs(model, self.class_index, self.guidance)
        # at most `steps`, and never more than the model's own decode(z), so the last frame IS decode(z)
        steps = min(self.steps, int(getattr(model.config, "decode_steps", self.steps)))
        x_T = as_latents(self.z, ctx.device)
        clock = Stopwatch(ctx.device)        # U-Net time only: the frames' trip to the UI is not the model's cost
        frames = model.frames(x_T, sampler="ddim", steps=steps, eta=0.0, **cond)
        last = None
        while True:
            with clock:
                frame = next(frames, None)
            if frame is None:
                break
            last = frame
            if frame.index + 1 < steps:
                yield Decoded(self.name, to_image(frame.x0), labelled=False, step=frame.index + 1, steps=steps,
                              ms=clock.ms)
        if last is not None:
            yield dataclasses.replace(judge(ctx, self.name, last.x0), step=steps, steps=steps, ms=clock.ms)


@dataclass(frozen=True, eq=False)
class DistanceToData(Job):
    """For latents (M, d) on the plane: the distance to the nearest encoded test image in the FULL latent space,
    in units of the data's latent std per axis (sqrt(trace Cov / d)), so every model is drawn on one scale."""

    z: np.ndarray
    dataset: str = "fashion-mnist"
    limit: int | None = None
    coalesce = True

    @property
    def key(self) -> str:
        return "map:distance"

    @property
    def activity(self) -> str:
        return "measuring the distance to the data"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        enc = encode_test_set(ctx, self.dataset, self.limit)
        dist = nearest_distance(np.atleast_2d(self.z), enc["codes"])
        return {"distance": dist / max(enc["spread"], 1e-12), "spread": enc["spread"]}


@dataclass(frozen=True, eq=False)
class SamplePosterior(Job):
    """The reparameterisation made visible: z = mu + sigma * eps, eps ~ N(0, I), for one encoded test image."""

    index: int
    n: int = 8
    seed: int = 0
    dataset: str = "fashion-mnist"
    limit: int | None = None
    coalesce = True

    @property
    def key(self) -> str:
        return "map:posterior-samples"

    @property
    def activity(self) -> str:
        return "sampling the encoder's Gaussian"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch
        from models.core import reparameterize

        enc = encode_test_set(ctx, self.dataset, self.limit)
        if enc["logvar"] is None:
            raise MissingCapabilityError("this model's encoder gives a point, not a Gaussian: there is nothing to "
                                         "sample")
        gen = torch.Generator().manual_seed(self.seed)
        mu = torch.from_numpy(enc["codes"][self.index]).expand(self.n, -1)
        logvar = torch.from_numpy(enc["logvar"][self.index]).expand(self.n, -1)
        eps = torch.randn(mu.shape, generator=gen)
        z = reparameterize(mu, logvar, eps).numpy().astype(np.float32)
        out = decode_points(ctx, z, with_verdicts=False)
        return {"index": self.index, "z": z, "eps": eps.numpy(), "images": out.images}
