"""Training on the engine: one stream per run, one item per optimisation step, decodes served between them.

The run's state (the model, its optimizers, the noise generator: a models.train.Trainer) lives inside the
stream's generator, so the engine thread is its only owner. What the UI may ask of a running stream between two
of its items goes through a `TrainControl` (a lock and a queue, no Qt): hold (the stream trains no further while
paused) and single steps for the adversarial families, "one detective step" (D only) or "one forger step"
(G only). A paused stream is also paused in the engine (channel.pause), so it costs nothing while the user
looks; a single step is queued on the control and the stream resumed for the one item that runs it.

Every completed epoch writes the checkpoint (with how it was trained) and the training state, both atomically,
so a cancel, a crash or a NaN leaves the last good checkpoint and never half a file; a cancel also saves the
state at the step reached, so Train → Resume… continues from there. Items are small numpy `TrainProgress`es; a
step's item crosses to the UI at most every SEND_EVERY_S (the steps between ride along with the next one sent).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import UserError
from ..job import TRAINING, EngineContext, Job, to_image

DETECTIVE = "detective"         # one D update, G still
FORGER = "forger"               # one G update, D still
HIST_BINS = 20
VERDICT_GRID = 24               # the detective's verdict is drawn on a VERDICT_GRID x VERDICT_GRID grid
VERDICT_RANGE = 3.0             # ... over [-3, 3]^2 on its plane
LOSS_WINDOW = 50                # the checkpoint's metrics: mean losses over the last steps (as the CLI does)
SEND_EVERY_S = 0.05             # a step's losses cross to the UI with the next item sent at most this often


def state_path_for(out: str | Path) -> Path:
    """The training state beside a checkpoint: NAME.safetensors -> NAME.state.safetensors (the CLI's rule)."""
    from models.train import default_state_path

    return default_state_path(Path(out))


def checkpoint_path_for(state: str | Path) -> Path:
    """The checkpoint a training state belongs to: NAME.state.safetensors -> NAME.safetensors."""
    state = Path(state)
    name = state.name
    if name.endswith(".state.safetensors"):
        return state.with_name(f"{name[:-len('.state.safetensors')]}.safetensors")
    return state.with_name(f"{state.stem}-resumed.safetensors")     # never the state file itself


class TrainControl:
    """What the UI thread asks of a running stream, read by the stream between its items. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._steps: deque[str] = deque()
        self._outcome = "keep"          # when the stream is closed: "keep" its files, or "discard" them

    def hold(self, held: bool) -> None:
        with self._cond:
            self._held = held
            self._cond.notify_all()

    @property
    def held(self) -> bool:
        with self._cond:
            return self._held

    def request(self, kind: str) -> None:
        """Queue one single step (DETECTIVE or FORGER); the stream runs it as its next item."""
        if kind not in (DETECTIVE, FORGER):
            raise ValueError(f"a single step is '{DETECTIVE}' or '{FORGER}', not {kind!r}")
        with self._cond:
            self._steps.append(kind)
            self._cond.notify_all()

    def take(self, wait_s: float = 0.0) -> str | None:
        """The next single step asked for, waiting up to `wait_s` for one; None if there is none."""
        with self._cond:
            if not self._steps and wait_s > 0:
                self._cond.wait(wait_s)
            return self._steps.popleft() if self._steps else None

    def set_outcome(self, outcome: str) -> None:
        if outcome not in ("keep", "discard"):
            raise ValueError(f"outcome is 'keep' or 'discard', not {outcome!r}")
        with self._cond:
            self._outcome = outcome

    @property
    def outcome(self) -> str:
        with self._cond:
            return self._outcome


@dataclass(frozen=True, eq=False)
class TrainProgress:
    """One item of a training stream. `kind`: "start", "step", "single" (a slow-motion step), "saved" (an epoch's
    checkpoint written), "map" (the test images re-encoded after it), "done"."""

    kind: str
    step: int
    total: int
    steps_per_epoch: int
    family: str
    latent_dim: int
    adversarial: bool
    encodes: bool
    dataset: str = "fashion-mnist"
    denoises: bool = False                  # a diffusion model: its preview is the one-step x̂_0
    losses: dict[str, float] = field(default_factory=dict)
    samples_per_s: float = 0.0
    step_ms: float = 0.0                    # the last optimisation step's own time
    elapsed_s: float = 0.0                  # wall time since this run (this resume) started
    eta_s: float = math.nan                 # time left at the recent pace
    preview: np.ndarray | None = None       # (n, H, W) in [0, 1]: fixed-seed samples (DDPM: one-step x̂_0)
    codes: np.ndarray | None = None         # (N, 2): test images re-encoded (2-D latent models, once per epoch)
    labels: np.ndarray | None = None        # (N,) their classes (None: the data set has none)
    verdict: np.ndarray | None = None       # (G, G): D(G(z)) over the verdict plane (adversarial families)
    d_real_hist: np.ndarray | None = None   # (HIST_BINS,) counts of D(x) on real test images
    d_fake_hist: np.ndarray | None = None   # (HIST_BINS,) counts of D(G(z)) on fixed fakes
    d_real_mean: float = math.nan           # mean D(x) on those real images, exactly
    d_fake_mean: float = math.nan           # mean D(G(z)) on those fakes
    single: str = ""                        # DETECTIVE or FORGER for kind "single"
    single_steps: int = 0                   # slow-motion steps taken in this run so far
    saved: str = ""                         # the checkpoint written with this item, if any
    saved_step: int = 0                     # the step of the newest checkpoint on disk from this run (0: none)
    state_path: str = ""
    earlier: tuple[tuple[int, dict[str, float], float], ...] = ()   # (step, losses, step_ms) of steps not sent alone


@dataclass(frozen=True)
class TrainingChoices(Job):
    """Which data sets a run can train on here: those on disk (loaded once, kept for the run)."""

    @property
    def key(self) -> str:
        return "train:choices"

    @property
    def activity(self) -> str:
        return "looking for data sets"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        from models.data import DOWNLOADED_DATASETS, DataMissingError

        found, missing = [], []
        for name in DOWNLOADED_DATASETS:
            try:
                _train_images(ctx, name, None, download=False)
                found.append(name)
            except (DataMissingError, OSError, RuntimeError):
                missing.append(name)
        return {"datasets": found, "missing": missing}


@dataclass(frozen=True, eq=False)
class EstimateTraining(Job):
    """Time a few training steps of a fresh model with these settings on the device: the run's ms per step."""

    family: str
    config: dict = field(default_factory=dict)
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 2
    timed: int = 4
    device: str = ""

    @property
    def key(self) -> str:
        return "train:estimate"

    @property
    def activity(self) -> str:
        return f"timing a few {self.family} training steps"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch
        from models.train import TrainSettings, needs_labels

        device = _device(ctx, self.device)
        model = _build(self.family, self.config, device)
        settings = TrainSettings(batch_size=int(self.batch_size), lr=float(self.lr))
        opts = model.configure_optimizers(settings)
        gen = torch.Generator(device=device).manual_seed(0)
        x = torch.rand((int(self.batch_size), *model.image_shape), generator=gen, device=device)
        labelled = {}
        if needs_labels(model):         # a class-conditional model trains on labelled images: any labels will do
            labelled["y"] = torch.randint(0, model.null_class, (int(self.batch_size),), generator=gen, device=device)
        model.train()
        times = []
        try:
            for i in range(self.warmup + self.timed):
                t0 = time.perf_counter()
                model.training_step(x, opts, gen, settings, **labelled)
                _sync(device)
                if i >= self.warmup:
                    times.append(time.perf_counter() - t0)
        except (RuntimeError, MemoryError) as err:
            raise _maybe_oom(err, device, self.batch_size) from None
        n_params = sum(p.numel() for p in model.parameters())
        return {"step_ms": float(np.median(times) * 1e3), "parameters": int(n_params), "device": str(device)}


@dataclass(frozen=True, eq=False)
class TrainRun(Job):
    """Train a new model (family + config) or continue a saved run (`resume`: a training state) into `out`."""

    out: str
    family: str = ""
    config: dict = field(default_factory=dict)
    dataset: str = "fashion-mnist"
    subset: int | None = 10_000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    epochs: float = 1.0
    steps: int | None = None
    resume: str | None = None
    knobs: tuple[tuple[str, float], ...] = ()   # TrainSettings.extra of a new run; a resumed one keeps its own
    device: str = ""                        # "" the engine's device, else a name for models.device.pick_device
    preview_every_s: float = 2.0
    preview_n: int = 16
    map_n: int = 2000                       # test images re-encoded for the 2-D map
    verdict_basis: np.ndarray | None = None  # (2, d): the plane the detective's verdict is drawn on
    control: TrainControl | None = None
    tag: str = "run"
    priority = TRAINING

    @property
    def key(self) -> str:
        return f"train:{self.tag}"

    @property
    def activity(self) -> str:
        return f"training {Path(self.out).name}"

    def run(self, ctx: EngineContext) -> Iterator[TrainProgress | None]:
        from models import checkpoint, train
        from models.train import mean_losses, training_info

        device = _device(ctx, self.device)
        control = self.control or TrainControl()
        out = Path(self.out)
        state_path = state_path_for(out) if self.resume is None else Path(self.resume)
        trainer, resumed = self._trainer(device)
        model = trainer.model
        data = _train_images(ctx, trainer.dataset, trainer.meta.get("subset"), image_shape=model.image_shape)
        n_images = int(data.shape[0])
        try:
            spe = train.steps_per_epoch(trainer.settings, n_images)
        except ValueError as err:
            raise UserError(f"{err}: use a larger subset or a smaller batch") from None
        total = train.total_steps(trainer.settings, n_images)
        caps = model.capabilities
        from models.catalog import CRITIC, DENOISE, ENCODE
        from models.core import Adversarial

        adversarial = CRITIC in caps and isinstance(model, Adversarial)
        encodes = ENCODE in caps
        lat = int(model.latent_dim)
        probes = _Probes(ctx, model, trainer.dataset, self, adversarial, encodes and lat == 2, DENOISE in caps)
        created = {p: not p.exists() for p in (out, state_path)}
        saved_step = 0
        existing = out.exists()
        seconds_before = float(trainer.meta.get("seconds", 0.0))
        recent: deque[dict[str, float]] = deque(maxlen=LOSS_WINDOW)
        paces: deque[tuple[float, int]] = deque(maxlen=50)
        t_start = time.perf_counter()
        train_s = 0.0
        diverged = False
        finished = False
        singles = int(trainer.meta.get("single_steps", 0))

        def base(kind: str, **kw: Any) -> TrainProgress:
            return TrainProgress(kind, trainer.step, total, spe, model.family, lat, adversarial, encodes,
                                 trainer.dataset, DENOISE in caps, single_steps=singles, saved_step=saved_step,
                                 state_path=str(state_path), **kw)

        def save_checkpoint() -> str:
            nonlocal saved_step
            metrics = mean_losses(recent) if recent else dict(trainer.meta.get("losses", {}))
            info = training_info(trainer, device, n_images, seconds_before + train_s, resumed, len(recent))
            info["single_steps"] = singles
            trainer.meta["seconds"] = seconds_before + train_s
            trainer.meta["losses"] = metrics
            trainer.meta["single_steps"] = singles
            try:
                checkpoint.save(model, out, dataset=trainer.dataset, train_steps=trainer.step, metrics=metrics,
                                training=info)
                train.save_trainer(trainer, state_path)
            except checkpoint.NonFiniteError as err:
                raise UserError(f"Training stopped at step {trainer.step}: {err}. {self._kept(saved_step, out)}") \
                    from None
            except OSError as err:
                raise UserError(_disk_message(out, err, saved_step)) from None
            saved_step = trainer.step
            return str(out)

        try:
            _check_folder(out)
            yield base("start", **probes.all())
            labels = _train_labels(ctx, trainer.dataset, trainer.meta.get("subset"), model.image_shape) \
                if train.needs_labels(model) \
                else None
            events = train.run(trainer, data, labels=labels)
            last_preview = last_sent = time.perf_counter()
            unsent: list[tuple[int, dict[str, float], float]] = []     # (step, losses, ms) not sent yet
            last_pace: dict[str, Any] = {}

            def catch_up() -> TrainProgress:
                """The newest step, sent now with the unsent ones before it (a pause, a slow-motion step, a NaN
                must not leave the curves behind the step the run is at)."""
                nonlocal last_sent
                item = base("step", **last_pace, earlier=tuple(unsent[:-1]))
                unsent.clear()
                last_sent = time.perf_counter()
                return item

            while True:
                kind = control.take()
                if unsent and (kind is not None or control.held):
                    yield catch_up()
                if kind is None and control.held:
                    kind = control.take(wait_s=0.02)     # the UI's pause is on its way: wait, do not train
                    if kind is None:
                        yield None
                        continue
                if kind is not None:
                    losses = self._single_step(kind, trainer, data, device)
                    singles += 1
                    if not all(math.isfinite(v) for v in losses.values()):
                        diverged = True
                        raise UserError(self._nan_message(trainer.step, total, losses, saved_step, out))
                    yield base("single", losses=losses, single=kind, preview=probes.preview(),
                               **probes.adversarial())
                    continue
                try:
                    event = next(events)
                except StopIteration:
                    break
                except (RuntimeError, MemoryError) as err:
                    raise _maybe_oom(err, device, trainer.settings.batch_size) from None
                train_s = event.elapsed_s
                if not all(math.isfinite(v) for v in event.losses.values()):
                    diverged = True
                    if unsent:
                        yield catch_up()                 # the losses on the way up, then the message
                    raise UserError(self._nan_message(event.step, total, event.losses, saved_step, out))
                recent.append(event.losses)
                now = time.perf_counter()
                paces.append((now, event.step))
                extra: dict[str, Any] = {}
                epoch_end = event.step % spe == 0 or event.step == total
                if now - last_preview >= self.preview_every_s or epoch_end:
                    last_preview = now
                    extra["preview"] = probes.preview()
                    extra.update(probes.adversarial())
                pace = {"losses": event.losses, "samples_per_s": _pace(paces, trainer.settings.batch_size),
                        "step_ms": 1e3 * trainer.settings.batch_size / max(event.samples_per_s, 1e-9),
                        "elapsed_s": now - t_start, "eta_s": _eta(paces, total - event.step)}
                last_pace = pace
                if extra or epoch_end or event.step == total or now - last_sent >= SEND_EVERY_S:
                    yield base("step", **pace, **extra, earlier=tuple(unsent))
                    unsent.clear()
                    last_sent = now
                else:
                    # the step is still an item (a drag waits for one step at most), but a small one that
                    # nothing crosses for: its losses go with the next item sent
                    unsent.append((event.step, event.losses, pace["step_ms"]))
                    yield None
                if epoch_end:
                    # the epoch's save and its re-encoded map are items of their own: a drag that arrives
                    # meanwhile waits for one of them, not for the step, the save and the encoding together
                    saved = save_checkpoint()
                    finished = event.step == total
                    yield base("saved", saved=saved, **pace)
                    codes = probes.codes()
                    if codes:
                        yield base("map", **pace, **codes)
            finished = True
            yield base("done", losses=mean_losses(recent) if recent else {}, saved=str(out) if saved_step else "",
                       elapsed_s=time.perf_counter() - t_start, eta_s=0.0)
        finally:
            model.eval()
            if not finished and not diverged:
                self._on_close(control, trainer, state_path, out, created, existing, seconds_before + train_s,
                               singles)

    # -- pieces ------------------------------------------------------------------------------------------------
    def _trainer(self, device: Any):
        import torch
        from models import train

        if self.resume:
            trainer = train.load_trainer(self.resume, device)
            if self.steps is not None:
                import dataclasses

                trainer.settings = dataclasses.replace(trainer.settings, steps=int(self.steps))
            return trainer, True
        torch.manual_seed(int(self.seed))
        model = _build(self.family, self.config, device)
        settings = train.TrainSettings(batch_size=int(self.batch_size), lr=float(self.lr), seed=int(self.seed),
                                       epochs=float(self.epochs), steps=self.steps, extra=tuple(self.knobs))
        trainer = train.new_trainer(model, settings, self.dataset)
        trainer.meta["subset"] = self.subset
        return trainer, False

    @staticmethod
    def _single_step(kind: str, trainer: Any, data: Any, device: Any) -> dict[str, float]:
        import torch

        model = trainer.model
        s = trainer.settings
        idx = torch.randint(0, data.shape[0], (s.batch_size,), generator=torch.Generator().manual_seed(
            s.seed * 7919 + trainer.step * 31 + int(trainer.meta.get("single_steps", 0))))
        x = data[idx].to(device)
        model.train()
        try:
            step = model.discriminator_step if kind == DETECTIVE else model.generator_step
            losses = step(x, trainer.optimizers, trainer.generator, s)
        finally:
            model.eval()
        trainer.meta["single_steps"] = int(trainer.meta.get("single_steps", 0)) + 1
        return losses

    @staticmethod
    def _kept(saved_step: int, out: Path) -> str:
        if saved_step:
            return f"The last good checkpoint (step {saved_step}) is kept in {out}."
        if out.exists():
            return f"{out} is left as it was."
        return "No checkpoint had been written yet."

    def _nan_message(self, step: int, total: int, losses: dict[str, float], saved_step: int, out: Path) -> str:
        bad = ", ".join(k for k, v in losses.items() if not math.isfinite(v))
        return (f"Training stopped at step {step} of {total}: the {bad} loss became NaN or infinite. "
                f"{self._kept(saved_step, out)} Try a lower learning rate or a larger batch.")

    @staticmethod
    def _on_close(control: TrainControl, trainer: Any, state_path: Path, out: Path, created: dict[Path, bool],
                  existed: bool, seconds: float, singles: int) -> None:
        """Cancelled, or the app is closing: keep the state at this step for a resume, or discard this run."""
        from models import train

        try:
            if control.outcome == "discard":
                for path, new in created.items():
                    if new and path.exists():
                        path.unlink()
                return
            trainer.meta["seconds"] = seconds
            trainer.meta["single_steps"] = singles
            train.save_trainer(trainer, state_path)
        except OSError:
            pass        # the folder went away: the files written at the last epoch are what there is


class _Probes:
    """The fixed things a run is watched through: seeded samples, test images to re-encode, real and fake
    batches for D's histograms, and the verdict plane. All drawn once, so each look shows the same ones."""

    def __init__(self, ctx: EngineContext, model: Any, dataset: str, job: TrainRun, adversarial: bool,
                 maps: bool, denoises: bool) -> None:
        import torch

        from .common import test_images

        self.model = model
        self.device = model.device
        self.seed = 1234
        self.n = int(job.preview_n)
        self.adversarial_on = adversarial
        self.maps = maps
        self.denoises = denoises
        test = test_images(ctx, dataset, model.image_shape)
        n_map = min(int(job.map_n), len(test))
        self.map_x = test.images[:n_map]
        self.map_y = test.labels[:n_map].numpy().astype(np.int64) if test.labels is not None else None
        gen = torch.Generator().manual_seed(self.seed)
        d = int(model.latent_dim)
        if adversarial:
            self.real = test.images[:min(256, len(test))].to(self.device)
            self.z = torch.randn((256, d), generator=gen).to(self.device)
            basis = job.verdict_basis
            if basis is None or np.shape(basis) != (2, d):
                q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, 2)))
                basis = q.T
            u = np.linspace(-VERDICT_RANGE, VERDICT_RANGE, VERDICT_GRID, dtype=np.float32)
            uu, vv = np.meshgrid(u, u)
            plane = np.stack([uu.ravel(), vv.ravel()], axis=1) @ np.asarray(basis, np.float32)
            self.plane_z = torch.from_numpy(plane.astype(np.float32)).to(self.device)
        if denoises:
            sched = model.schedule
            self.t = torch.full((self.n,), sched.T // 2, dtype=torch.long,
                                device=self.device)
            self.noisy_x0 = test.images[:self.n].to(self.device)
            self.eps = torch.randn(self.noisy_x0.shape, generator=gen).to(self.device)

    def all(self) -> dict[str, Any]:
        return {"preview": self.preview(), **self.adversarial(), **self.codes()}

    def preview(self) -> np.ndarray:
        import torch

        with torch.no_grad():
            if self.denoises:
                return self._one_step_x0()
            from models.train import make_preview

            gen = torch.Generator(device=self.device).manual_seed(self.seed)
            return to_image(make_preview(self.model, self.n, gen))

    def _one_step_x0(self) -> np.ndarray:
        """The DDPM's one-step guess of the clean image from noised test images: one forward pass."""
        from models.ddpm import to_image_range, to_model_range
        from models.diffusion.schedule import predict_x0_from_eps, q_sample

        sched = self.model.schedule
        x_t = q_sample(sched, to_model_range(self.noisy_x0), self.t, self.eps)
        eps_hat = self.model.unet(x_t, self.t)
        return to_image(to_image_range(predict_x0_from_eps(sched, x_t, self.t, eps_hat)))

    def adversarial(self) -> dict[str, Any]:
        import torch

        if not self.adversarial_on:
            return {}
        edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
        with torch.no_grad():
            d_real = self.model.critic(self.real).float().cpu().numpy().ravel()
            d_fake = self.model.critic(self.model.decode(self.z)).float().cpu().numpy().ravel()
            verdict = self.model.critic(self.model.decode(self.plane_z)).float().cpu().numpy()
        return {"d_real_mean": float(d_real.mean()), "d_fake_mean": float(d_fake.mean()),
                "d_real_hist": np.histogram(d_real, edges)[0].astype(np.int64),
                "d_fake_hist": np.histogram(d_fake, edges)[0].astype(np.int64),
                "verdict": verdict.reshape(VERDICT_GRID, VERDICT_GRID).astype(np.float32)}

    def codes(self) -> dict[str, Any]:
        import torch

        if not self.maps:
            return {}
        with torch.no_grad():
            mu = torch.cat([self.model.encode(self.map_x[i:i + 1000].to(self.device)).mu
                            for i in range(0, self.map_x.shape[0], 1000)])
        return {"codes": mu.float().cpu().numpy().astype(np.float32), "labels": self.map_y}


# -- helpers ------------------------------------------------------------------------------------------------------
def _device(ctx: EngineContext, name: str) -> Any:
    if not name:
        return ctx.device
    from models.device import pick_device

    return pick_device(name)


def _sync(device: Any) -> None:
    from models.device import synchronize

    synchronize(device)


def _build(family: str, config: dict, device: Any) -> Any:
    from models import registry

    if family not in registry.FAMILIES:
        raise UserError(f"there is no model family '{family}'")
    try:
        return registry.build(family, dict(config)).to(device)
    except (TypeError, ValueError) as err:
        raise UserError(f"these settings cannot build a {family} model: {err}") from None


def _train_key(dataset: str, image_shape: Any) -> tuple:
    from .common import data_shape

    shape = data_shape(dataset, image_shape)
    return (dataset, "train") if shape is None else (dataset, "train", shape)


def _train_images(ctx: EngineContext, dataset: str, subset: int | None, download: bool = True,
                  image_shape: Any = None) -> Any:
    """The data set's training split (loaded once per engine), its first `subset` images, at `image_shape` (the
    model's (C, H, W)) where given and the data set can give it, else at its own."""
    key = _train_key(dataset, image_shape)
    data = ctx.data.get(key)
    if data is None:
        from models.data import load_dataset

        size = {} if len(key) == 2 else {"image_size": key[2][1], "channels": key[2][0]}
        data = load_dataset(dataset, "train", download=download, **size)
        ctx.data[key] = data
    return data.images if subset is None else data.images[:int(subset)]


def _train_labels(ctx: EngineContext, dataset: str, subset: int | None, image_shape: Any = None) -> Any:
    """The labels (N,) of `_train_images`' images, for a model that trains on labelled images."""
    _train_images(ctx, dataset, subset, image_shape=image_shape)   # loads the split once, images and labels
    labels = ctx.data[_train_key(dataset, image_shape)].labels
    return labels if subset is None else labels[:int(subset)]


def _check_folder(out: Path) -> None:
    """Fail at once, with a sentence, when the folder cannot take the checkpoint (before any step is spent)."""
    import tempfile

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".write-test-"):
            pass
    except OSError as err:
        raise UserError(f"Cannot write into {out.parent}: {err.strerror or err}. Pick another folder.") from None


def _disk_message(out: Path, err: OSError, saved_step: int) -> str:
    why = err.strerror or str(err)
    kept = (f"the checkpoint of step {saved_step} is still whole in {out}" if saved_step else
            "no earlier file was touched")
    return (f"Could not save into {out.parent} ({why}); saves replace a file only once the new one is complete, "
            f"so {kept}. Free some space or pick another folder, then Train → Resume….")


def _maybe_oom(err: BaseException, device: Any, batch: int) -> BaseException:
    if isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        smaller = max(1, batch // 2)
        return UserError(f"The {getattr(device, 'type', device)} ran out of memory at a batch of {batch}; "
                         f"try a batch of {smaller} or smaller.")
    return err


def _pace(paces: deque, batch: int) -> float:
    if len(paces) < 2:
        return 0.0
    (t0, s0), (t1, s1) = paces[0], paces[-1]
    return (s1 - s0) * batch / max(t1 - t0, 1e-9)


def _eta(paces: deque, left: int) -> float:
    if len(paces) < 2:
        return math.nan
    (t0, s0), (t1, s1) = paces[0], paces[-1]
    return left * (t1 - t0) / max(s1 - s0, 1)
