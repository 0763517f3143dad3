"""The interpolation view's requests: test images to pick keyframes from, and each keyframe's code.

Every family finds its keyframes' codes its own way, in one stream (`KeyframeCodes`):
- an encoder family reads them off its encoder (a VAE's mu), in one item;
- a generator without an encoder (the GAN) searches for them: models.inversion's Adam steps, an item every few
  steps with the falling error and the best picture so far, so the view shows progress and can cancel;
- a diffusion model runs deterministic DDIM backwards to x_T (models.ddpm.DDPM.invert), an item per keyframe.
The last item carries the codes and decode(z) of each, so the view puts what the model can draw beside the
target. Decoding the path itself is a plain decode (common.DecodeProbe / DecodePoints, map.DenoisePoint).
torch is imported inside the jobs, so the UI can import this module to build requests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from models.catalog import DENOISE, ENCODE, data_classes

from .common import Stopwatch, class_kwargs, require_model
from ..job import ANIMATION, EngineContext, Job, from_images, to_image
from .common import test_images

ENCODER, INVERSION, DDIM = "encoder", "inversion", "ddim inversion"
INVERSION_STEPS = 300
INVERSION_EVERY = 10


@dataclass(frozen=True, eq=False)
class TestImages(Job):
    """The first `limit` test images (uint8 (N, H, W), or (N, H, W, 3) in colour), at the job's model's picture
    shape, and their labels (None for unlabelled pictures): what the keyframe picker offers."""

    dataset: str = "fashion-mnist"
    limit: int = 2000

    @property
    def key(self) -> str:
        return "interp:test-images"

    @property
    def activity(self) -> str:
        return f"reading the {self.dataset} test set"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        data = test_images(ctx, self.dataset, ctx.model.image_shape if ctx.model is not None else None)
        n = min(int(self.limit), int(data.images.shape[0]))
        images = np.round(to_image(data.images[:n]) * 255.0).astype(np.uint8)
        if data.labels is None:
            return {"images": images, "labels": None, "classes": ()}
        labels = data.labels[:n].numpy().astype(np.int64)
        classes = data_classes(self.dataset) or tuple(str(c) for c in np.unique(labels))
        return {"images": images, "labels": labels, "classes": tuple(classes)}


@dataclass(frozen=True, eq=False)
class Codes:
    """One item of a KeyframeCodes stream: where the search stands (`step` of `steps`), or its end (`done`)."""

    method: str                       # ENCODER, INVERSION or DDIM
    step: int
    steps: int
    z: np.ndarray                     # (K, d): the codes (the best so far, while an inversion runs)
    recon: np.ndarray                 # (K, H, W) or (K, H, W, 3): decode(z), what the model draws from them
    mse: np.ndarray                   # (K,) mean squared pixel error of recon against the keyframe
    gaussian: bool                    # the latent's prior is N(0, I) (slerp is the natural walk)
    done: bool = False
    baseline_mse: np.ndarray | None = None   # inversion: the prior mean's picture G(0) against each keyframe
    ms: float = 0.0                   # model time so far


@dataclass(frozen=True, eq=False)
class KeyframeCodes(Job):
    """The codes of keyframe images (K, H, W) or (K, H, W, 3) in [0, 1], streamed (see the module doc)."""

    images: np.ndarray
    inversion_steps: int = INVERSION_STEPS
    seed: int = 0
    class_index: int | None = None     # a class-conditional diffusion model inverts and decodes with this class
    guidance: float = 1.0              # ... and this guidance scale, so decode(invert(x)) gives x back
    priority = ANIMATION

    @property
    def key(self) -> str:
        return "interp:keyframes"

    @property
    def activity(self) -> str:
        return f"finding the codes of {len(self.images)} keyframes"

    def run(self, ctx: EngineContext) -> Iterator[Codes]:
        import torch

        model = require_model(ctx)
        x = from_images(self.images, model.image_shape).to(ctx.device)
        clock = Stopwatch(ctx.device)
        k = x.shape[0]
        if ENCODE in model.capabilities:
            with torch.no_grad(), clock:
                post = model.encode(x)
                recon = model.decode(post.mu)
            yield self._codes(ENCODER, 1, 1, post.mu, recon, x, post.logvar is not None, True, ms=clock.ms)
        elif DENOISE in model.capabilities:
            cond = class_kwargs(model, self.class_index, self.guidance)
            zs = []
            for i in range(k):                        # one keyframe per item: the progress a person sees
                with torch.no_grad(), clock:
                    zs.append(model.invert(x[i:i + 1], **cond))
                done_z = torch.cat(zs + [torch.zeros(k - i - 1, zs[0].shape[1], device=ctx.device)])
                if i + 1 < k:
                    yield Codes(DDIM, i + 1, k + 1, done_z.cpu().numpy().astype(np.float32),
                                to_image(torch.zeros_like(x)), np.full(k, np.nan, np.float32), True,
                                ms=clock.ms)
            z = torch.cat(zs)
            with torch.no_grad(), clock:
                recon = model.decode(z, **cond)
            yield self._codes(DDIM, k + 1, k + 1, z, recon, x, True, True, ms=clock.ms)
        else:
            from models.inversion import invert_decoder, pixel_mse

            gen = torch.Generator(device=ctx.device).manual_seed(int(self.seed))
            with torch.no_grad():
                baseline = pixel_mse(model.decode(torch.zeros(1, model.latent_dim, device=ctx.device)).expand(
                    k, -1, -1, -1), x).cpu().numpy().astype(np.float32)
            search = invert_decoder(model, x, steps=int(self.inversion_steps), generator=gen,
                                    every=INVERSION_EVERY)
            while True:
                with clock:
                    step = next(search, None)
                if step is None:
                    return
                yield self._codes(INVERSION, step.step, step.steps, step.z, step.image, x, True,
                                  step.step == step.steps, step.mse, baseline, clock.ms)

    @staticmethod
    def _codes(method, step, steps, z, recon, x, gaussian, done, mse=None, baseline=None, ms=0.0) -> Codes:
        from models.inversion import pixel_mse

        if mse is None:
            mse = pixel_mse(recon, x)
        return Codes(method, int(step), int(steps), z.detach().float().cpu().numpy().astype(np.float32),
                     to_image(recon), mse.detach().float().cpu().numpy().astype(np.float32), bool(gaussian),
                     bool(done), baseline, float(ms))
