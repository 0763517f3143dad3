"""The compare view's requests: the same test images rebuilt by every model, draws from every prior with the
same seed, and a look inside one network as an image passes through it.

Every job runs on the model it names and answers in numpy and plain values: the pictures, and the figures a
person compares beside them (MSE, Laplacian sharpness, milliseconds per sample measured here, on this device).
torch is imported inside `run`, so the UI can import this module to build requests.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from models.catalog import ENCODE, data_classes

from .common import Stopwatch, as_latents, classify, require_model
from .diffusion import DiffusionRun
from ..errors import MissingCapabilityError, UserError
from ..job import EngineContext, Job, from_images, to_image
from .loading import LoadModel
from .common import test_images

FEATURE_CHANNELS = 4      # channels shown per stage: the most varied ones


@dataclass(frozen=True)
class LoadColumn(LoadModel):
    """LoadModel keyed by its path, so several columns can ask at once and each hears its own answer (and its
    own error). The engine's cache answers; the picker's model is not touched."""

    @property
    def key(self) -> str:
        return f"compare:load:{self.path}"


@dataclass(frozen=True, eq=False)
class PickTestImages(Job):
    """Test images to reconstruct: `indices` if given, else one per class at random from `seed` (n of them,
    cycling through the classes; n at random for unlabelled pictures), at `image_shape` where given (the
    models' (C, H, W)), else the data set's own. labels are None for unlabelled pictures."""

    n: int = 8
    seed: int = 0
    indices: tuple[int, ...] = ()
    dataset: str = "fashion-mnist"
    image_shape: tuple[int, int, int] | None = None

    @property
    def key(self) -> str:
        return "compare:pick"

    @property
    def activity(self) -> str:
        return "picking test images"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        data = test_images(ctx, self.dataset, self.image_shape)
        labels = data.labels.numpy() if data.labels is not None else None
        total = len(data)
        if self.indices:
            bad = [i for i in self.indices if not 0 <= int(i) < total]
            if bad:
                raise UserError(f"there is no test image {bad[0]}: the {self.dataset} test set has {total:,}, "
                                f"numbered 0 to {total - 1:,}")
            chosen = np.asarray(self.indices, dtype=np.int64)
        elif labels is None:
            chosen = np.sort(np.random.default_rng(self.seed).choice(total, min(self.n, total), replace=False))
        else:
            chosen = pick_per_class(labels, self.n, self.seed)
        images = to_image(data.images[chosen])
        return {"indices": chosen, "labels": None if labels is None else labels[chosen].astype(np.int64),
                "images": images,
                "sharpness": sharpness_each(data.images[chosen]),
                "seed": int(self.seed), "classes": data_classes(self.dataset)}


def pick_per_class(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n indices, one per class in class order (cycling when n exceeds the classes), each drawn at random."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    out = []
    for k in range(n):
        pool = np.flatnonzero(labels == classes[k % len(classes)])
        pool = np.setdiff1d(pool, out) if len(pool) > len(out) else pool
        out.append(int(rng.choice(pool)))
    return np.asarray(out, dtype=np.int64)


def sharpness_each(x) -> np.ndarray:
    """Per-image variance of the Laplacian (models.metrics), (B,) float32: higher is sharper."""
    from models.metrics import laplacian_variance

    return laplacian_variance(x.float()).cpu().numpy().astype(np.float32)


def as_images(images: np.ndarray, model: Any, device: Any):
    """(B, H, W) or (B, H, W, 3) numpy in [0, 1] (as `to_image` made them) -> a (B, C, H, W) float tensor on the
    device; UserError when they are not the model's pictures."""
    return from_images(images, model.image_shape).to(device)


@dataclass(frozen=True, eq=False)
class Reconstruct(Job):
    """x̂ = model.reconstruct(x) for all rows at once, with the per-image MSE and sharpness of x̂.

    `sample`: a VAE decodes z = mu + sigma * eps (eps from `seed`) instead of mu, so repeated draws wobble by
    the encoder's uncertainty. A model whose encoder gives a point ignores it (and says so: `sampled` False)."""

    images: np.ndarray            # (B, H, W) or (B, H, W, 3) in [0, 1]
    sample: bool = False
    seed: int = 0
    tag: str = ""
    coalesce = True

    @property
    def key(self) -> str:
        return f"compare:recon:{self.tag or self.model}"

    @property
    def activity(self) -> str:
        return f"reconstructing {len(self.images)} test images"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch

        model = require_model(ctx)
        if ENCODE not in model.capabilities:
            raise MissingCapabilityError(f"the {model.family} model has no encoder: it cannot rebuild an image")
        x = as_images(self.images, model, ctx.device)
        sampled = False
        clock = Stopwatch(ctx.device)
        with torch.no_grad():
            post = model.encode(x)
            with clock:
                if self.sample and post.logvar is not None:
                    gen = torch.Generator(device=ctx.device).manual_seed(int(self.seed))
                    x_hat, sampled = model.reconstruct(x, sample=True, generator=gen), True
                else:
                    x_hat = model.reconstruct(x)
        mse = (x_hat.float() - x.float()).pow(2).flatten(1).mean(dim=1)
        return {"images": to_image(x_hat), "mse": mse.cpu().numpy().astype(np.float32),
                "sharpness": sharpness_each(x_hat), "sampled": sampled, "gaussian": post.logvar is not None,
                "seed": int(self.seed),
                "mu": post.mu.float().cpu().numpy().astype(np.float32), "ms": clock.ms}


@dataclass(frozen=True, eq=False)
class PriorSamples(Job):
    """n draws z ~ N(0, I) from `seed`, decoded, labelled by the classifier, with their sharpness and the decoder's
    milliseconds per sample measured here. The same seed gives every model of one latent size the same z."""

    n: int = 8
    seed: int = 0
    coalesce = True

    @property
    def key(self) -> str:
        return f"compare:prior:{self.model}"

    @property
    def activity(self) -> str:
        return f"sampling {self.n} images from the prior"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch

        model = require_model(ctx)
        gen = torch.Generator(device=ctx.device).manual_seed(int(self.seed))
        with torch.no_grad():
            z = as_latents(model.prior(int(self.n), gen).cpu().numpy(), ctx.device)
            model.decode(z)                                  # untimed: a first call at this batch size pays extra
            times: list[float] = []
            while len(times) < 3 and sum(times) < 20.0:      # a fast decoder is timed thrice (the median), so
                clock = Stopwatch(ctx.device)                # one hiccup of the machine is not its cost
                with clock:
                    x = model.decode(z)
                times.append(clock.ms)
            labels, confs = classify(ctx, x)
        return {"images": to_image(x), "labels": labels, "confidences": confs, "sharpness": sharpness_each(x),
                "ms_per_sample": float(np.median(times)) / max(int(self.n), 1), "seed": int(self.seed),
                "z": z.float().cpu().numpy().astype(np.float32)}


@dataclass(frozen=True, eq=False)
class FeatureMaps(Job):
    """How one image passes through the model: for conv networks, a few channels of the feature maps after each
    encoder stage and each decoder stage, with the code between; for dense ones, the layer sizes and the code.

    Stages come from forward hooks on the activations (and on the conv decoder's projection to its first map),
    so what is shown is what the network computed, in its own order."""

    image: np.ndarray             # (H, W) or (H, W, 3) in [0, 1]
    channels: int = FEATURE_CHANNELS
    coalesce = True

    @property
    def key(self) -> str:
        return "compare:inside"

    @property
    def activity(self) -> str:
        return "looking inside the network"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch

        model = require_model(ctx)
        if ENCODE not in model.capabilities:
            raise MissingCapabilityError(f"the {model.family} model has no encoder to look inside")
        encoder = getattr(model, "encoder", None)
        decoder = model.decoding_network() if hasattr(model, "decoding_network") else getattr(model, "decoder", None)
        if encoder is None or decoder is None:
            raise MissingCapabilityError(f"the {model.family} model does not show its layers")
        x = as_images(self.image[None], model, ctx.device)
        conv = any(isinstance(m, torch.nn.Conv2d) for m in encoder.modules())
        enc_maps, dec_maps, handles = [], [], []
        try:
            if conv:
                handles += _hook_stages(encoder, enc_maps)
                start = getattr(decoder, "start", None)
                project = getattr(decoder, "project", None)
                if project is not None and start is not None:
                    handles.append(project.register_forward_hook(
                        lambda _m, _i, out: dec_maps.append(out.detach().view(out.shape[0], *start))))
                handles += _hook_stages(getattr(decoder, "body", decoder), dec_maps)
            with torch.no_grad():
                post = model.encode(x)
                x_hat = model.decode(post.mu)
        finally:
            for h in handles:
                h.remove()
        code = post.mu[0].float().cpu().numpy().astype(np.float32)
        out: dict[str, Any] = {"kind": "conv" if conv else "dense", "input": to_image(x)[0], "code": code,
                               "output": to_image(x_hat)[0], "sizes": _layer_sizes(encoder, decoder, model)}
        if conv:
            image = to_image(x)[0]
            stages = [_stage("input", x[0], self.channels, image)]
            stages += [_stage(f"encoder {i + 1}", m[0], self.channels) for i, m in enumerate(enc_maps)]
            stages += [_stage("decoder start" if i == 0 else f"decoder {i}", m[0], self.channels)
                       for i, m in enumerate(dec_maps)]
            stages.append(_stage("output", x_hat[0], self.channels, out["output"]))
            out["stages"] = stages
        return out


def _hook_stages(net, store: list) -> list:
    """Hooks on each activation whose output is a feature map (B, C, H, W): a conv stage's result."""
    import torch

    acts = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.SiLU, torch.nn.GELU)

    def keep(_m, _i, out):
        if out.ndim == 4:
            store.append(out.detach())

    return [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, acts)]


def _stage(name: str, fmap, k: int, image: np.ndarray | None = None) -> dict[str, Any]:
    """A stage's shape and its k most varied channels, each scaled to [0, 1] on its own."""
    arr = fmap.float().cpu().numpy()                          # (C, H, W)
    c = arr.shape[0]
    order = np.argsort(-arr.reshape(c, -1).std(axis=1), kind="stable")[:k]
    tiles = arr[np.sort(order)] if image is None else image[None].astype(np.float32)
    if image is None:
        lo = tiles.reshape(len(tiles), -1).min(axis=1)[:, None, None]
        hi = tiles.reshape(len(tiles), -1).max(axis=1)[:, None, None]
        tiles = (tiles - lo) / np.maximum(hi - lo, 1e-8)
    return {"name": name, "shape": tuple(int(s) for s in arr.shape), "tiles": tiles.astype(np.float32),
            "channels": np.sort(order).astype(np.int64)}


def _layer_sizes(encoder, decoder, model) -> dict[str, list[int]]:
    """Widths along the path: the input's pixels and every Linear's output in the encoder (its last is the code,
    or 2d for a VAE's mu and log-variance), then every Linear's output in the decoder."""
    import math

    import torch

    enc = [math.prod(model.image_shape)] + [int(m.out_features) for m in encoder.modules()
                                            if isinstance(m, torch.nn.Linear)]
    dec = [int(m.out_features) for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    return {"encoder": enc, "decoder": dec}


@dataclass(frozen=True, eq=False)
class PriorStream(DiffusionRun):
    """A diffusion model's prior row: DiffusionRun (DDIM 50 from `seed`, at animation priority, cancellable
    between frames) sent as light frames, x_t and x̂_0 per step, and on the last one the classifier's labels
    and the sharpness of the samples, measured like every other row's."""

    n: int = 8
    tag: str = "compare-prior"
    labels_every: int | None = 0      # no labels per frame: the last one is labelled here, once
    per_class: bool = False           # a class-conditional model: the n samples' x_T again for every class, in
                                      # class order (one row per class), at the guidance scale `guidance`

    @property
    def key(self) -> str:
        return f"compare:prior:{self.model}"

    def _per_class(self, model: Any) -> bool:
        return self.per_class and getattr(model, "conditional", False)

    def frames(self, model: Any, generator: Any) -> Iterator[Any]:
        """The row's DDIM run in `steps`, or in the most steps a short schedule allows (a folder trained with
        T = 20 cannot take 50): the row is the model's samples, whatever its T."""
        steps = model.fit_steps(int(self.steps)) if self.steps and hasattr(model, "fit_steps") else self.steps
        return DiffusionRun.frames(dataclasses.replace(self, steps=steps), model, generator)

    def start_noise(self, model: Any, generator: Any):
        x = super().start_noise(model, generator)
        return x.repeat(model.null_class, 1, 1, 1) if self._per_class(model) else x   # (K n, C, H, W)

    def condition(self, model: Any) -> dict[str, Any]:
        if not self._per_class(model):
            return super().condition(model)
        import torch

        classes = torch.arange(model.null_class, device=model.device).repeat_interleave(int(self.n))   # (K n,)
        return {"classes": classes, "guidance": float(self.guidance)}

    def run(self, ctx: EngineContext) -> Iterator[dict[str, Any]]:
        import torch

        spent = 0.0
        for frame in super().run(ctx):
            spent += float(frame.ms)
            item: dict[str, Any] = {"index": int(frame.index), "total": int(frame.total), "x_t": frame.x_t,
                                    "x0": frame.x0, "ms": spent, "final": frame.index + 1 == frame.total}
            if item["final"]:
                x0 = torch.from_numpy(np.ascontiguousarray(frame.x0, dtype=np.float32))
                x0 = (x0[:, None] if x0.ndim == 3 else x0.permute(0, 3, 1, 2)).to(ctx.device)
                with torch.no_grad():
                    item["labels"], item["confidences"] = classify(ctx, x0)
                item["sharpness"] = sharpness_each(x0)
                item["ms_per_sample"] = spent / max(len(frame.x0), 1)
            yield item
