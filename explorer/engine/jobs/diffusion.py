"""A diffusion model's two halves as jobs a person watches: noise added (the forward process, in closed form at
any t) and noise taken away (the reverse process, streamed one frame per denoising step).

Each reverse frame carries x_t, the network's guess of the clean image x̂_0 and its predicted noise eps, so a
view shows what happens inside a step, not only its end; with a classifier for the model's data it also carries
the label and confidence of x̂_0, which say when the content is decided. A run is an animation: the engine
serves drags between its frames, and its state (the current x_t, the noise generator) lives in the stream. A
branch resumes a run at its frame k from that frame's x_t (`x_raw`, the unclamped sample), with new noise for
the steps that remain, so frames 0..k are its parent's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from models.catalog import DENOISE, SAMPLERS

from .common import Stopwatch, class_kwargs, classify, require_model
from ..errors import MissingCapabilityError, UserError
from ..job import ANIMATION, EngineContext, Job, to_image

MAX_SAMPLES = 16
GUIDANCE_SCALES = (0.0, 1.0, 2.0, 3.0, 5.0, 7.5)    # the guidance strip: unconditional, conditional, then harder


@dataclass(frozen=True, eq=False)
class DiffusionFrame:
    """One step of a run: frame `index` of `total`, at schedule step t (descending)."""

    index: int
    total: int
    t: int
    x_t: np.ndarray          # (B, H, W) in [0, 1], or (B, H, W, 3) for a colour model (as every image here)
    x0: np.ndarray           # (B, H, W) in [0, 1]: the predicted clean image
    eps: np.ndarray          # (B, H, W) float32: the predicted noise, as the network gave it
    ms: float                # the network's time for this step on the device
    x_raw: np.ndarray | None = None          # (B, C, H, W) float32: x_t as the sampler holds it ([-1, 1] scale)
    labels: np.ndarray | None = None         # (B,) int64: the classifier's label of x0 (None: not this frame)
    confidences: np.ndarray | None = None    # (B,) float32


def raw_image(v: Any) -> np.ndarray:
    """A (B, C, H, W) tensor of raw values (noise, or x on the [-1, 1] scale) -> float32 numpy (B, H, W) for one
    channel, (B, H, W, 3) for three, unclipped: `to_image`'s layout without its [0, 1] clip."""
    arr = v.detach().float().cpu().numpy().astype(np.float32)
    return np.ascontiguousarray(arr[:, 0] if arr.shape[1] == 1 else np.moveaxis(arr, 1, -1))


def model_dataset(ctx: EngineContext) -> str:
    """The data set the job's model was trained on (its checkpoint's `dataset`), as the engine's cache read it;
    Fashion-MNIST for a model handed to the context without a file."""
    if ctx.models is not None and ctx.model_path:
        try:
            return ctx.models.get(ctx.model_path).info.dataset
        except Exception:  # a model that is no checkpoint of the cache (a test's stand-in): the default
            pass
    return "fashion-mnist"


def _diffusion_model(ctx: EngineContext) -> Any:
    model = require_model(ctx)
    if DENOISE not in model.capabilities:
        raise MissingCapabilityError(f"the {model.family} model does not denoise; pick a diffusion model")
    return model


def start_noise(model: Any, n: int, generator: Any):
    """x_T (n, C, H, W) ~ N(0, I) from `generator`: what a run from a seed starts from. Every job that shows "this
    seed" draws it here, so a guidance strip starts from exactly the run's noise."""
    import torch

    return torch.randn((int(n), *model.image_shape), generator=generator, device=model.device)


def seeded(ctx: EngineContext, seed: int):
    """A generator on the engine's device seeded with `seed` (a run's, a strip's)."""
    import torch

    return torch.Generator(device=ctx.device).manual_seed(int(seed))


def guidance_text(class_index: int | None, guidance: float) -> str:
    """', class 7 at w = 3' for an activity line; '' for any class."""
    return "" if class_index is None else f", class {class_index} at w = {guidance:g}"


def classify_every(total: int, n: int) -> int:
    """How often a run asks the classifier about x̂_0: every frame for a few samples; else every 3rd frame, and
    no more than about 100 points a run (every 10th of DDPM's 1,000). On a 2-core CPU the classifier takes 15 ms
    for 16 images (more with training in the background) against 95 ms for the U-Net step, so labelling every
    frame would make a run 15% slower or more; every 3rd, 5%; every 10th, 1.5%."""
    return 1 if n <= 4 else max(3, total // 100)


@dataclass(frozen=True, eq=False)
class DiffusionRun(Job):
    """n samples from seed `seed`, DDPM (`steps` None: the model's T) or DDIM (`steps`, `eta`), streamed.

    A branch: `start` = k and `x_start` = the parent's frame-k `x_raw`; `seed` then seeds only the noise of the
    steps that remain. `labels_every`: classify x̂_0 every that many frames (None: `classify_every`; 0: never);
    the last frame is always classified when there is a classifier.
    `class_index`, `guidance`: a class-conditional model draws that class (None: any class) at that guidance scale
    w; the same seed at another w starts from the same x_T (and, for DDPM or DDIM with η > 0, the same noise).
    """

    n: int = 16
    seed: int = 0
    sampler: str = "ddim"
    steps: int | None = 50
    eta: float = 0.0
    tag: str = "run"
    start: int = 0
    x_start: np.ndarray | None = None
    labels_every: int | None = None
    class_index: int | None = None
    guidance: float = 1.0
    priority = ANIMATION

    @property
    def key(self) -> str:
        return f"diffusion:{self.tag}"

    @property
    def activity(self) -> str:
        steps = self.steps or "T"
        what = f"branching {self.n} samples from frame {self.start}" if self.start else f"denoising {self.n} samples"
        return f"{what} ({steps} {self.sampler.upper()} steps{guidance_text(self.class_index, self.guidance)})"

    def start_noise(self, model: Any, generator: Any):
        """x_T of this run's n samples (drawn from `generator`, seeded with the run's seed)."""
        return start_noise(model, self.n, generator)

    def frames(self, model: Any, generator: Any) -> Iterator[Any]:
        """The sampler's raw frames (models.diffusion.samplers.Frame, [-1, 1] scale) for this run."""
        import torch

        from models.ddpm import DDIM_STEPS, DPM_STEPS

        if not 1 <= int(self.n) <= MAX_SAMPLES:
            raise UserError(f"a run draws 1 to {MAX_SAMPLES} samples, not {self.n}")
        if self.x_start is not None:
            x = torch.from_numpy(np.ascontiguousarray(self.x_start, dtype=np.float32)).to(model.device)
            x = x.reshape(-1, *model.image_shape)
        elif self.start:
            raise UserError("a branch needs its parent's x_t at the frame it starts from")
        else:
            x = self.start_noise(model, generator)
        T = model.schedule.T
        if self.sampler not in SAMPLERS:
            raise UserError(f"unknown sampler '{self.sampler}'; use one of {', '.join(SAMPLERS)}")
        steps = int(self.steps or {"ddim": DDIM_STEPS, "dpm++": DPM_STEPS}.get(self.sampler, T))
        if self.sampler == "dpm++" and self.start:
            raise UserError("DPM-Solver++ adds no noise after x_T, so a branch would repeat its parent: "
                            "branch a DDPM run, or DDIM with eta > 0")
        if not 1 <= steps <= T:
            raise UserError(f"steps must lie between 1 and the model's T = {T}, not {steps}")
        if not 0 <= int(self.start) < steps:
            raise UserError(f"a run of {steps} frames has no frame {self.start} to branch from")
        return model.raw_frames(x, generator, self.sampler, steps, float(self.eta), start=int(self.start),
                                **self.condition(model))

    def condition(self, model: Any) -> dict[str, Any]:
        """The class and guidance scale the sampler is given (nothing for any class at w = 1)."""
        return class_kwargs(model, self.class_index, self.guidance)

    def run(self, ctx: EngineContext) -> Iterator[DiffusionFrame]:
        import torch

        from models.ddpm import to_image_range

        model = _diffusion_model(ctx)
        gen = seeded(ctx, self.seed)
        frames = self.frames(model, gen)           # the generator runs nothing until its first next()
        every = None
        while True:
            # no_grad around each step, never across a yield: work served between two frames keeps its own mode
            with torch.no_grad():
                clock = Stopwatch(ctx.device)
                with clock:
                    frame = next(frames, None)
                if frame is None:
                    return
                total = frame.total
                if every is None:
                    every = self.labels_every if self.labels_every is not None else classify_every(total, self.n)
                x0 = to_image_range(frame.x0)
                labels = confs = None
                # every `every`-th frame from the run's (or branch's) start, the first one only when every == 1,
                # so the first frame is never held up by the classifier; and always the last
                if every and ((frame.index - self.start + 1) % every == 0 or frame.index == total - 1):
                    labels, confs = classify(ctx, x0)
                item = DiffusionFrame(frame.index, total, int(frame.t), to_image(to_image_range(frame.x_t)),
                                      to_image(x0), raw_image(frame.eps),
                                      clock.ms, frame.x_t.float().cpu().numpy().astype(np.float32), labels, confs)
            yield item


@dataclass(frozen=True, eq=False)
class GuidedSamples:
    """The guidance strip so far: one sample of a seed drawn at each scale done, in the order asked."""

    scales: tuple[float, ...]          # the scales drawn so far
    images: np.ndarray                 # (k, H, W) in [0, 1]
    labels: np.ndarray | None          # (k,) int64: the classifier's label of each (None: no classifier)
    confidences: np.ndarray | None     # (k,) float32
    total: int                         # how many scales the strip has
    steps: int                         # DDIM steps per sample
    ms: float                          # the network's time so far


@dataclass(frozen=True, eq=False)
class GuidanceStrip(Job):
    """Sample `index` of seed `seed`'s x_T (the run's own: n samples drawn as a run draws them) denoised at every
    scale of `scales` for class `class_index`, by deterministic DDIM (η = 0) in `steps` steps, so only w differs
    from one picture to the next. Streamed, one scale an item; latest wins, so a new class or seed stops it."""

    seed: int = 0
    n: int = 16
    index: int = 0
    class_index: int = 0
    steps: int = 50
    scales: tuple[float, ...] = GUIDANCE_SCALES
    coalesce = True
    priority = ANIMATION

    @property
    def key(self) -> str:
        return "diffusion:guidance-strip"

    @property
    def activity(self) -> str:
        return f"drawing one sample at {len(self.scales)} guidance scales (class {self.class_index})"

    def run(self, ctx: EngineContext) -> Iterator[GuidedSamples]:
        import torch

        model = _diffusion_model(ctx)
        if not getattr(model, "conditional", False):
            raise UserError("this model was trained without classes: there is no guidance to show")
        if not 0 <= int(self.index) < int(self.n) <= MAX_SAMPLES:
            raise UserError(f"seed {self.seed} has samples 0 to {self.n - 1}, not {self.index}")
        if not 1 <= int(self.steps) <= model.schedule.T:
            raise UserError(f"steps must lie between 1 and the model's T = {model.schedule.T}, not {self.steps}")
        x_T = start_noise(model, self.n, seeded(ctx, self.seed))[int(self.index):int(self.index) + 1]
        clock = Stopwatch(ctx.device)
        images, labels, confs = [], [], []
        for k, w in enumerate(self.scales):
            with torch.no_grad():
                with clock:
                    x0 = model.sample_from(x_T, int(self.steps), classes=int(self.class_index), guidance=float(w))
                lab, conf = classify(ctx, x0)
            images.append(to_image(x0))
            if lab is not None:
                labels.append(lab)
                confs.append(conf)
            yield GuidedSamples(tuple(float(v) for v in self.scales[:k + 1]), np.concatenate(images),
                                np.concatenate(labels) if labels else None,
                                np.concatenate(confs) if confs else None, len(self.scales), int(self.steps),
                                clock.ms)


@dataclass(frozen=True, eq=False)
class ForwardPeek:
    """The forward process at step t for one test image, and what the network makes of it."""

    index: int               # the test image
    t: int                   # 0-based schedule step (0: the least noise)
    T: int
    label: int               # the test image's own class (-1: its data set has none)
    alpha_bar: float
    x0: np.ndarray           # (H, W) in [0, 1]: the clean image
    eps: np.ndarray          # (H, W) float32: the fixed noise
    x_t: np.ndarray          # (H, W) in [0, 1] for the eye
    x_t_raw: np.ndarray      # (H, W) float32, [-1, 1] scale: sqrt(a) x0 + sqrt(1 - a) eps exactly
    eps_pred: np.ndarray     # (H, W) float32: the U-Net's eps at (x_t, t)
    x0_pred: np.ndarray      # (H, W) in [0, 1]: (x_t - sqrt(1 - a) eps_pred) / sqrt(a), clamped for the eye
    x0_pred_raw: np.ndarray  # (H, W) float32, [-1, 1] scale, unclamped
    mse_eps: float           # mean (eps_pred - eps)^2
    mse_x0: float            # mean (x0_pred - x0)^2 on the [0, 1] scale, clamped as shown
    ms: float
    test_count: int = 0      # how many test images the data set has (the index's range)


@dataclass(frozen=True, eq=False)
class ForwardProcess(Job):
    """x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·eps for test image `index` and the noise of `noise_seed`, with the
    U-Net's predicted eps and x̂_0 at that t. Latest wins: a scrubbed slider never queues stale steps."""

    index: int = 0
    t: int = 0
    noise_seed: int = 0
    dataset: str | None = None         # None: the data set the job's model was trained on
    coalesce = True

    @property
    def key(self) -> str:
        return "diffusion:forward"

    @property
    def activity(self) -> str:
        return f"noising test image {self.index} to step {self.t}"

    def run(self, ctx: EngineContext) -> ForwardPeek:
        import torch

        from models.ddpm import to_model_range
        from models.diffusion.schedule import predict_x0_from_eps, q_sample

        from .common import test_images

        model = _diffusion_model(ctx)
        dataset = self.dataset or model_dataset(ctx)
        data = test_images(ctx, dataset, model.image_shape)
        if not 0 <= self.index < data.images.shape[0]:
            raise UserError(f"the {dataset} test set has images 0 to {data.images.shape[0] - 1}, "
                            f"not {self.index}")
        T = model.schedule.T
        if not 0 <= self.t < T:
            raise UserError(f"t runs from 0 to {T - 1} for this model, not {self.t}")
        x0 = to_model_range(data.images[self.index:self.index + 1].to(ctx.device))        # (1, C, H, W)
        gen = torch.Generator(device=ctx.device).manual_seed(int(self.noise_seed))
        eps = torch.randn(x0.shape, generator=gen, device=ctx.device)
        with torch.no_grad():
            x_t = q_sample(model.schedule, x0, self.t, eps)
            clock = Stopwatch(ctx.device)
            with clock:
                eps_pred = model.predict_eps(x_t, torch.full((1,), self.t, device=ctx.device, dtype=torch.long))
            x0_pred = predict_x0_from_eps(model.schedule, x_t, self.t, eps_pred)
        def shown(v):                  # [-1, 1] -> an image in [0, 1]
            return to_image((v + 1.0) / 2.0)[0]

        def flat(v):                   # the raw values, (H, W) or (H, W, 3), for the histograms and the eye
            return raw_image(v)[0]

        x0_img, x0_pred_img = shown(x0), shown(x0_pred)
        label = int(data.labels[self.index]) if data.labels is not None else -1
        return ForwardPeek(self.index, int(self.t), T, label,
                           float(model.schedule.alpha_bars[self.t]), x0_img, flat(eps), shown(x_t), flat(x_t),
                           flat(eps_pred), x0_pred_img, flat(x0_pred),
                           float(((eps_pred - eps) ** 2).mean()), float(((x0_pred_img - x0_img) ** 2).mean()),
                           clock.ms, int(data.images.shape[0]))


@dataclass(frozen=True, eq=False)
class ScheduleCurves(Job):
    """ᾱ_t of the model's schedule and of the other one (linear and cosine), over the model's T steps; and how many
    classes the model takes (0: none), for a view that runs a model the picker did not describe."""

    @property
    def key(self) -> str:
        return "diffusion:schedules"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        from models.diffusion.schedule import make_schedule

        model = _diffusion_model(ctx)
        T = model.schedule.T
        curves = {kind: make_schedule(kind, T).alpha_bars.double().numpy() for kind in ("linear", "cosine")}
        classes = int(model.null_class) if getattr(model, "conditional", False) else 0
        return {"T": T, "model": str(model.config.schedule), "num_classes": classes, **curves}


@dataclass(frozen=True, eq=False)
class GeneratorCosts(Job):
    """What n samples cost other generators on this device, now: {name: ms} per model in `others` (shipped names
    or paths), each timed after one warm-up draw. A model that is not there is left out, with its reason."""

    others: tuple[str, ...] = ("conv-vae-16", "gan")
    n: int = 16
    repeats: int = 5                   # a class-conditional model's U-Net step is timed this often (the median)

    @property
    def key(self) -> str:
        return "diffusion:costs"

    @property
    def activity(self) -> str:
        return f"timing {self.n} samples from {', '.join(self.others)}"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch

        times: dict[str, float] = {}
        missing: dict[str, str] = {}
        for name in self.others:
            try:
                model = ctx.models.get(name).model if ctx.models is not None else None
            except Exception as err:
                missing[name] = str(err).splitlines()[0] if str(err) else type(err).__name__
                continue
            if model is None:
                missing[name] = "no model cache on this engine"
                continue
            gen = torch.Generator(device=ctx.device).manual_seed(0)
            with torch.no_grad():
                model.sample(int(self.n), gen)                      # warm-up: first-call allocations
                clock = Stopwatch(ctx.device)
                with clock:
                    model.sample(int(self.n), gen)
            times[name] = clock.ms
        out = {"n": int(self.n), "ms": times, "missing": missing, "device": str(ctx.device)}
        if (ctx.model is not None and getattr(ctx.model, "conditional", False)
                and getattr(ctx.model, "has_null_class", True)):          # guidance needs a "no class" input
            out["step_ms"] = guidance_step_ms(ctx, ctx.model, int(self.n), int(self.repeats))
        return out


def guidance_step_ms(ctx: EngineContext, model: Any, n: int, repeats: int = 3) -> dict[str, float]:
    """One sampling step's U-Net time for n images, measured now: "plain", one eps (w = 0 or 1, or any class),
    and "guided", eps(c) and eps(∅) both (any other w: one pass of 2n images); each the median of `repeats`
    after one untimed warm-up."""
    import torch

    x = start_noise(model, n, seeded(ctx, 0))
    t = torch.full((n,), model.schedule.T // 2, dtype=torch.long, device=model.device)
    scales = {"plain": 1.0, "guided": 2.0}
    times: dict[str, list[float]] = {name: [] for name in scales}
    with torch.no_grad():
        for w in scales.values():
            model.predict_eps(x, t, 0, w)
        for _ in range(max(1, repeats)):          # in turns, so a busy moment of the machine hits both alike
            for name, w in scales.items():
                clock = Stopwatch(ctx.device)
                with clock:
                    model.predict_eps(x, t, 0, w)
                times[name].append(clock.ms)
    return {name: float(np.median(ms)) for name, ms in times.items()}
