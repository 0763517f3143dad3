"""Latents in, pictures out: the engine's one way to decode, shared by every view.

A decode answers with a `Decoded`: the images, the classifier's label and confidence when there is a classifier
for the model's data, and the discriminator's verdict D(x) when the model has one (a GAN, a VAE-GAN). The jobs
here are keyed "decode:<name>", so a waiting request for the same picture is replaced by a newer one, whichever
kind of decode it is: a fast drag never queues up stale work. torch is imported inside the functions, so the UI
can import this module to build requests without loading torch on its own thread.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from models.catalog import CRITIC

from ..errors import NoModelError, UserError
from ..job import EngineContext, Job, to_image

DECODE_BATCH = 256


def require_model(ctx: EngineContext) -> Any:
    """The job's own model (the engine bound it from the job's `model`)."""
    if ctx.model is None:
        raise NoModelError("no model is loaded yet: pick one in the model picker, or File > Open a .safetensors file")
    return ctx.model


def test_images(ctx: EngineContext, dataset: str, image_shape: tuple[int, int, int] | None = None):
    """The data set's test split, loaded once per engine (ctx.data) and shared by every view: at `image_shape`
    (a model's (C, H, W)) where given and the data set can give it, else at its own."""
    shape = data_shape(dataset, image_shape)
    key = (dataset, "test") if shape is None else (dataset, "test", shape)
    data = ctx.data.get(key)
    if data is None:
        from models.data import load_dataset

        size = {} if shape is None else {"image_size": shape[1], "channels": shape[0]}
        data = load_dataset(dataset, "test", **size)
        ctx.data[key] = data
    return data


def data_shape(dataset: str, image_shape) -> tuple[int, int, int] | None:
    """The (C, H, W) to ask a data set for so its pictures fit a model of `image_shape`; None for its own (the
    data set's own shape, or no shape asked). A size or channel count it cannot give raises ValueError."""
    from models.catalog import dataset_info

    if image_shape is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    info = dataset_info(dataset)
    if shape == tuple(info.image_shape):
        return None
    info.shape(shape[1], shape[0])
    return shape


@dataclass(frozen=True, eq=False)
class Decoded:
    """Decoded images with what the two judges say of them.

    labels/confidences: the classifier's class and softmax confidence (a label, never a realism score);
    critic: the discriminator's probability that each image is real, D(x) -- the detective's verdict.
    A streamed decode sends the pixels first (labelled False) and the verdicts in a second item.
    """

    name: str
    images: np.ndarray                      # (B, H, W) float32 in [0, 1], or (B, H, W, 3)
    labels: np.ndarray | None = None        # (B,) int64
    confidences: np.ndarray | None = None   # (B,) float32
    critic: np.ndarray | None = None        # (B,) float32 in [0, 1]
    labelled: bool = True                   # False: the verdicts follow in the next item of the stream
    step: int | None = None                 # a diffusion decode in progress: DDIM step `step` of `steps`
    steps: int | None = None
    ms: float | None = None                 # the generator's own time for these images (judges not counted)


class Stopwatch:
    """Milliseconds of model work on the engine's device, summed over the `with` blocks it timed.

    GPU work is queued, so each block ends by waiting for the device: the figure is the work, not its launch.
    It is what the app shows under a decoded picture, so a diffusion model's cost is measured, not told.
    """

    def __init__(self, device: Any) -> None:
        self.device = device
        self.ms = 0.0

    def __enter__(self) -> "Stopwatch":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        from models.device import synchronize      # imports torch: never at module level (the UI imports this)

        synchronize(self.device)
        self.ms += (time.perf_counter() - self._t0) * 1e3


def class_kwargs(model: Any, class_index: int | None, guidance: float = 1.0) -> dict[str, Any]:
    """The `classes=`/`guidance=` a job passes to a model's sampling calls: nothing for "any class" at w = 1,
    which every model takes as it always did; else the class and the guidance scale, which only a
    class-conditional model takes (any other is refused in one sentence). A network with classes but no "no class"
    input (a diffusers UNet's, ModelInfo.any_class False) needs a class, and takes no guidance scale."""
    if getattr(model, "conditional", False) and not getattr(model, "has_null_class", True):
        if class_index is None:
            raise UserError(f"this model's network has no 'no class' input: pick one of its classes "
                            f"(0 to {int(model.num_classes) - 1})")
        if float(guidance) != 1.0:
            raise UserError("this model's network has no 'no class' input, so it takes no guidance scale")
    if class_index is None and float(guidance) == 1.0:
        return {}
    if not getattr(model, "conditional", False):
        raise UserError(f"the {model.family} model was trained without classes, so it takes neither a class nor a "
                        "guidance scale")
    return {"classes": None if class_index is None else int(class_index), "guidance": float(guidance)}


def as_latents(z: np.ndarray, device: Any):
    """(N, d) float latents on the device (a diffusion model's x_T comes flattened: d = C*H*W)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(device)
    return t[None] if t.ndim == 1 else t


def classifier_applies(ctx: EngineContext) -> bool:
    """Whether there is a classifier for the job's model's data (the engine binds one only where it applies: the
    one trained on the model's data set at its picture shape, `ModelCache`)."""
    return ctx.classifier is not None


def has_critic(ctx: EngineContext) -> bool:
    return ctx.model is not None and CRITIC in ctx.model.capabilities


def classify(ctx: EngineContext, images) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The classifier's (label, confidence) per image, or (None, None) when there is none for this model's data."""
    if not classifier_applies(ctx) or tuple(images.shape[1:]) != tuple(ctx.classifier.image_shape):
        return None, None
    labels, conf = ctx.classifier.classify(images)
    return labels.cpu().numpy().astype(np.int64), conf.float().cpu().numpy().astype(np.float32)


def classify_factors(ctx: EngineContext, images) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Every head's (value index, confidence) per image, (B, F) each, one column per factor of the model's data set
    (shapes: shape, colour, size, x, y; one column for a data set of classes), or (None, None) without a
    classifier for this model's data."""
    if not classifier_applies(ctx) or tuple(images.shape[1:]) != tuple(ctx.classifier.image_shape):
        return None, None
    labels, conf = ctx.classifier.classify_factors(images)
    return labels.cpu().numpy().astype(np.int64), conf.float().cpu().numpy().astype(np.float32)


def critic(ctx: EngineContext, images) -> np.ndarray | None:
    """D(x) per image when the loaded model has a discriminator, else None."""
    if not has_critic(ctx):
        return None
    return ctx.model.critic(images).float().cpu().numpy().astype(np.float32).reshape(-1)


def has_judges(ctx: EngineContext) -> bool:
    """Whether a decode of the loaded model gets any verdict: a classifier for its data, or a discriminator."""
    return classifier_applies(ctx) or has_critic(ctx)


def judge(ctx: EngineContext, name: str, x, images: np.ndarray | None = None) -> Decoded:
    """A Decoded for images x (B, C, H, W) with both verdicts; `images` reuses pixels already converted."""
    import torch

    with torch.no_grad():
        labels, confs = classify(ctx, x)
        verdict = critic(ctx, x)
    return Decoded(name, to_image(x) if images is None else images, labels, confs, verdict)


def decode_points(ctx: EngineContext, z: np.ndarray, with_verdicts: bool = True, name: str = "",
                  class_index: int | None = None, guidance: float = 1.0) -> Decoded:
    """Decode latents (N, d) in batches of DECODE_BATCH, with the classifier's and the critic's verdicts; a
    class-conditional model draws class `class_index` at guidance scale `guidance` (None: any class)."""
    import torch

    model = require_model(ctx)
    cond = class_kwargs(model, class_index, guidance)
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    parts: list[Decoded] = []
    clock = Stopwatch(ctx.device)
    with torch.no_grad():
        for start in range(0, z.shape[0], DECODE_BATCH):
            with clock:
                x = model.decode(as_latents(z[start:start + DECODE_BATCH], ctx.device), **cond)
            parts.append(judge(ctx, name, x) if with_verdicts else Decoded(name, to_image(x)))

    def joined(field: str) -> np.ndarray | None:
        values = [getattr(p, field) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    return Decoded(name, joined("images"), joined("labels"), joined("confidences"), joined("critic"), ms=clock.ms)


@dataclass(frozen=True, eq=False)
class NamedDecode(Job):
    """Base of the jobs that turn latents into the picture called `name` (a probe, the thumbnail grid)."""

    name: str
    z: np.ndarray
    coalesce = True

    @property
    def key(self) -> str:
        return f"decode:{self.name}"

    @property
    def activity(self) -> str:
        return f"decoding {self.name}"


@dataclass(frozen=True, eq=False)
class DecodePoints(NamedDecode):
    """Decode latents (N, d) -- a probe (N = 1) or the thumbnail grid -- with both verdicts in one answer."""

    with_verdicts: bool = True
    class_index: int | None = None     # a class-conditional model's class (None: any class) and guidance scale
    guidance: float = 1.0

    def run(self, ctx: EngineContext) -> Decoded:
        return decode_points(ctx, self.z, self.with_verdicts, self.name, self.class_index, self.guidance)


@dataclass(frozen=True, eq=False)
class DecodeProbe(NamedDecode):
    """A probe's latent (d,) decoded, streamed in two items: the pixels as soon as the decoder is done, then the
    same picture with the verdicts. During a fast drag the engine stops the stream after the pixels when a newer
    position is waiting, so the judges never hold up the next picture."""

    def run(self, ctx: EngineContext) -> Iterator[Decoded]:
        import torch

        model = require_model(ctx)
        with torch.no_grad(), Stopwatch(ctx.device) as clock:
            x = model.decode(as_latents(self.z, ctx.device))
        images = to_image(x)
        if not has_judges(ctx):
            yield Decoded(self.name, images, ms=clock.ms)     # nothing more will come: this is the whole answer
            return
        yield Decoded(self.name, images, labelled=False, ms=clock.ms)
        yield dataclasses.replace(judge(ctx, self.name, x, images), ms=clock.ms)


@dataclass(frozen=True)
class Sample(Job):
    """n images from the model's prior, seeded, so the same seed shows the same draws."""

    n: int = 16
    seed: int = 0
    tag: str = "samples"
    coalesce = True

    @property
    def key(self) -> str:
        return f"sample:{self.tag}"

    @property
    def activity(self) -> str:
        return f"sampling {self.n} images"

    def run(self, ctx: EngineContext) -> Decoded:
        import torch

        model = require_model(ctx)
        gen = torch.Generator(device=ctx.device).manual_seed(self.seed)
        with torch.no_grad():
            z = model.prior(self.n, gen)
        return decode_points(ctx, z.cpu().numpy(), name=self.tag)
