"""Training as a generator: one event per optimisation step, stoppable between any two, resumable bit for bit.

Every family supplies two methods: `configure_optimizers(settings) -> dict[name, Optimizer]` and
`training_step(x, optimizers, generator, settings) -> dict[loss name, float]`; the step reads its loss weights
(a VAE's beta, a VAE-GAN's gamma) from `settings` each time, so the model itself holds no training
hyperparameters (settings=None means the defaults). A family whose `conditional` is true (a class-conditional
DDPM) or whose `supervised` is (a classifier) also takes the batch's labels, `training_step(..., y=labels)`; the
others are never passed any. This module
owns everything around them: the seeded data order, the noise generator, timing, previews, and the training-state
file.

Resume identity: the data order of epoch e is a permutation seeded by (seed, e), and all training noise comes
from one torch.Generator whose state is saved; so N steps in one go and N/2 + save + resume + N/2 give the
same weights on CPU.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor

from . import core, registry
from .atomic import atomic_write_path
from .checkpoint import TRAIN_STATE_KEY, CheckpointError, checked_config, read_safetensors
from .device import as_device
from .distributed import Group, gather_states, noise_seed, shard

TRAIN_STATE_VERSION = 1


@dataclass(frozen=True)
class TrainSettings:
    """How to train: every field is saved in the training state, so a resume continues the same run."""

    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    epochs: float = 1.0                 # used when steps is None
    steps: int | None = None            # total optimisation steps; overrides epochs
    preview_every: int = 0              # yield a preview grid every k steps; 0 = never
    preview_n: int = 16
    beta: float = 1.0                   # VAE and VAE-GAN: weight of the KL term
    extra: tuple[tuple[str, float], ...] = ()   # knobs, e.g. (("gamma", 1e-2),) or (("lr_decay_from", 18720),)

    def knob(self, name: str, default: float) -> float:
        return dict(self.extra).get(name, default)

    def with_knobs(self, knobs: dict[str, float]) -> "TrainSettings":
        """These settings with `knobs` set, the others kept (a resume may add a rate decay)."""
        return dataclasses.replace(self, extra=tuple({**dict(self.extra), **knobs}.items()))


@dataclass
class TrainEvent:
    step: int                           # optimisation steps done, counting this one
    total_steps: int
    epoch: int                          # 0-based epoch this step belongs to
    losses: dict[str, float]
    samples_per_s: float
    elapsed_s: float                    # wall time spent in steps since this run (not the resume) started
    preview: Tensor | None = None       # (n, C, H, W) in [0, 1], on the CPU


@dataclass
class Trainer:
    """Everything a run needs to continue: the model, its optimizers, the step count and the noise generator."""

    model: core.LatentModel
    settings: TrainSettings
    optimizers: dict[str, torch.optim.Optimizer]
    generator: torch.Generator
    dataset: str = "fashion-mnist"
    step: int = 0
    meta: dict[str, Any] = field(default_factory=dict)   # free notes carried into the checkpoint (e.g. time)


def new_trainer(model: core.LatentModel, settings: TrainSettings, dataset: str = "fashion-mnist",
                group: Group | None = None) -> Trainer:
    """A fresh run; in a torchrun job each rank draws its own training noise (rank 0 as a single process)."""
    gen = torch.Generator(device=model.device)
    gen.manual_seed(noise_seed(settings.seed, group.rank if group else 0))
    return Trainer(model, settings, model.configure_optimizers(settings), gen, dataset)


def total_steps(settings: TrainSettings, n_images: int) -> int:
    if settings.steps is not None:
        return settings.steps
    return max(1, int(round(settings.epochs * steps_per_epoch(settings, n_images))))


def steps_per_epoch(settings: TrainSettings, n_images: int) -> int:
    if n_images < settings.batch_size:
        raise ValueError(f"the data set has {n_images} images, fewer than one batch of {settings.batch_size}")
    return n_images // settings.batch_size


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The shuffled image order of one epoch; a pure function of (seed, epoch) so a resume repeats it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def rate_factor(settings: TrainSettings, step: int, total: int) -> float:
    """The `lr_decay_from` knob: from that step on, every learning rate falls linearly towards zero at the last
    step (as in Zhu et al. 2017), so two players that circle each other settle; 1.0 before it or without it."""
    start = int(settings.knob("lr_decay_from", total))
    return 1.0 if step < start else max(0.0, (total - step) / (total - start))


def scale_rates(optimizers: dict[str, torch.optim.Optimizer], factor: float) -> None:
    """Set every group's rate to `factor` times the rate it started with (kept in the group, so saved with it)."""
    for opt in optimizers.values():
        for g in opt.param_groups:
            g["lr"] = g.setdefault("initial_lr", g["lr"]) * factor


def flush_denormals() -> None:
    """Treat denormal floats as zero on this thread and on the worker threads torch starts from it later (call it
    before any torch work). Training then keeps its pace as its values grow tiny (see `run`)."""
    torch.set_flush_denormal(True)


def needs_labels(model: core.Model) -> bool:
    """Whether the model trains on labelled images: a class-conditional one (its `conditional` says so: a
    class-conditional DDPM) or a supervised one (its `supervised`: a classifier, (N, F) labels for F heads)."""
    return bool(getattr(model, "conditional", False) or getattr(model, "supervised", False))


def run(trainer: Trainer, images: Tensor, group: Group | None = None,
        labels: Tensor | None = None) -> Iterator[TrainEvent]:
    """Train until `total_steps`, yielding after every step. Stop by not asking for the next event.

    images: (N, C, H, W) in [0, 1], on any device; batches are moved to the model's device. In a torchrun job
    (`group`), every rank walks the same data order and trains on its shard of each global batch.
    labels: (N,) class indices (a classifier with F heads: (N, F)), passed (the batch's, as y) only to a model
    that `needs_labels`; such a model without them is refused.

    On the CPU, call `flush_denormals` first in a program that owns its threads (the app's engine thread and
    the CLI do): a VAE's values grow tiny as it learns, and with denormal floats its steps here slowed to 60 % of
    their pace within a thousand steps. It is not done here: it is the calling thread's state, and a notebook's
    own arithmetic would change with it.
    """
    s = trainer.settings
    model = trainer.model
    conditional = needs_labels(model)
    if conditional and labels is None:
        raise ValueError(f"a '{model.family}' model that learns classes trains on labelled images, and no labels "
                         "were given")
    if conditional and labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels were given for {images.shape[0]} images")
    if (getattr(model, "conditional", False) and labels.numel()
            and not 0 <= int(labels.min()) <= int(labels.max()) < model.null_class):
        raise ValueError(f"the labels must lie in 0..{model.null_class - 1}, the model's classes")
    spe = steps_per_epoch(s, images.shape[0])
    total = total_steps(s, images.shape[0])
    device = model.device
    preview_gen = torch.Generator(device=device)
    order: Tensor | None = None
    order_epoch = -1
    elapsed = 0.0
    while trainer.step < total:
        epoch, index = divmod(trainer.step, spe)
        if epoch != order_epoch:
            order, order_epoch = epoch_order(s.seed, epoch, images.shape[0]), epoch
        idx = shard(order[index * s.batch_size:(index + 1) * s.batch_size], group)
        x = images[idx].to(device, non_blocking=True)
        factor = rate_factor(s, trainer.step, total)
        if factor != 1.0:
            scale_rates(trainer.optimizers, factor)
        t0 = time.perf_counter()
        model.train()
        if conditional:
            y = labels[idx].to(device, non_blocking=True)
            losses = model.training_step(x, trainer.optimizers, trainer.generator, s, y=y)
        else:
            losses = model.training_step(x, trainer.optimizers, trainer.generator, s)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        elapsed += dt
        trainer.step += 1
        model.eval()    # between steps (paused, stopped, previewing) the model decodes as a finished one does
        preview = None
        if s.preview_every and (trainer.step % s.preview_every == 0 or trainer.step == total):
            preview = make_preview(model, s.preview_n, preview_gen.manual_seed(s.seed))
        yield TrainEvent(trainer.step, total, epoch, losses, s.batch_size / max(dt, 1e-9), elapsed, preview)
    model.eval()


@torch.no_grad()
def make_preview(model: core.LatentModel, n: int, generator: torch.Generator) -> Tensor:
    """A fixed-seed grid of samples, so successive previews show the same draws getting better."""
    was_training = model.training
    model.eval()
    preview = getattr(model, "preview", model.sample)(n, generator).detach().cpu()
    model.train(was_training)
    return preview


# ---------------------------------------------------------------------------------------------------------------
# The training-state file: safetensors for every tensor (weights, optimizer moments, RNG state), JSON for the rest.

def save_trainer(trainer: Trainer, path: str | Path, group: Group | None = None) -> None:
    """Write the whole run atomically so a crash mid-save never loses the previous state.

    In a torchrun job every rank must call it (their noise generators are gathered); rank 0 alone writes."""
    from safetensors.torch import save_file

    states = gather_states(trainer.generator.get_state().cpu(), group)
    if group is not None and not group.is_main:
        return

    tensors: dict[str, Tensor] = {f"model.{k}": v.detach().contiguous().cpu()
                                  for k, v in trainer.model.state_dict().items()}
    optim_meta: dict[str, Any] = {}
    for name, opt in trainer.optimizers.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in sd["state"].items():
            for key, value in pstate.items():
                if isinstance(value, Tensor):
                    tensors[f"optim.{name}.{pid}.{key}"] = value.detach().contiguous().cpu()
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        optim_meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars,
                            "tensor_ids": sorted({str(p) for p in sd["state"]})}
    tensors["rng.noise"] = states[0]
    for rank, state in enumerate(states[1:], start=1):
        tensors[f"rng.noise.{rank}"] = state
    meta = {
        "world_size": len(states),
        "format_version": TRAIN_STATE_VERSION,
        "family": trainer.model.family,
        "config": dataclasses.asdict(trainer.model.config),
        "settings": dataclasses.asdict(trainer.settings),
        "dataset": trainer.dataset,
        "step": trainer.step,
        "optimizers": optim_meta,
        "meta": trainer.meta,
    }
    with atomic_write_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={TRAIN_STATE_KEY: json.dumps(meta)})


def load_trainer(path: str | Path, device: torch.device | str | None = None, group: Group | None = None) -> Trainer:
    """Rebuild a run saved by `save_trainer` on `device`, ready for `run` to continue.

    With the world size it was saved with, each rank takes back its own noise generator: the run continues bit
    for bit. With another world size it continues too (same data order, same global batch, same weights and
    optimizer), but ranks without a saved generator draw fresh noise: trainer.meta["resume_note"] says so."""
    path = Path(path)
    header, tensors = read_safetensors(path)      # the checkpoints' reader: file and header checked first
    raw = header.get(TRAIN_STATE_KEY)
    if raw is None:
        raise CheckpointError(f"{path.name} is not a training-state file (no '{TRAIN_STATE_KEY}' metadata)")
    meta = state_metadata(path, raw)
    if meta.get("format_version", 0) > TRAIN_STATE_VERSION:
        raise CheckpointError(f"{path.name} was written by a newer Latent Explorer (training-state format "
                              f"{meta['format_version']}); upgrade to resume it")
    config = checked_config(path, meta.get("family"), meta.get("config"))     # sized before anything is built
    device = as_device(device)
    model = registry.build(meta["family"], config).to(device)
    model.load_state_dict(core.current_names(type(model), {k[6:]: v for k, v in tensors.items()
                                                            if k.startswith("model.")}))
    settings = core.config_from_dict(TrainSettings, meta["settings"])
    optimizers = model.configure_optimizers(settings)
    for name, opt in optimizers.items():
        om = meta["optimizers"][name]
        state: dict[int, dict[str, Any]] = {}
        for pid in om["tensor_ids"]:
            state[int(pid)] = dict(om["scalars"].get(pid, {}))
        for key, value in tensors.items():
            prefix = f"optim.{name}."
            if key.startswith(prefix):
                pid, skey = key[len(prefix):].split(".", 1)
                state.setdefault(int(pid), {})[skey] = value
        opt.load_state_dict({"state": state, "param_groups": om["param_groups"]})
    rank, world = (group.rank, group.world_size) if group else (0, 1)
    saved_world = int(meta.get("world_size", 1))
    gen = torch.Generator(device=device)
    own = tensors.get("rng.noise" if rank == 0 else f"rng.noise.{rank}")
    notes = dict(meta.get("meta", {}))
    notes.pop("resume_note", None)
    if own is not None and saved_world == world:
        gen.set_state(own)
    elif saved_world == world:
        gen.manual_seed(noise_seed(settings.seed, rank))
    else:
        if own is not None:
            gen.set_state(own)
        else:
            gen.manual_seed(noise_seed(settings.seed + meta["step"], rank))
        notes["resume_note"] = (f"saved by {saved_world} process(es), resumed by {world}: the same data order, "
                                "global batch and weights, but other training noise, so not bit for bit")
    return Trainer(model, settings, optimizers, gen, meta["dataset"], meta["step"], notes)


def state_metadata(path: Path, raw: str) -> dict[str, Any]:
    """A training state's JSON metadata, a JSON object with an integer format_version; one sentence for any other
    text. json's decoder recurses once per nested list or object, so text nested past Python's stack raises
    RecursionError, which is a damaged file like any other."""
    try:
        meta = json.loads(raw)
    except RecursionError:
        raise CheckpointError(f"{path.name}'s training-state metadata nests its values too deeply to be one, so "
                              "the file is damaged") from None
    except ValueError:
        raise CheckpointError(f"{path.name}'s training-state metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path.name}'s training-state metadata is not a JSON object")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path.name}'s training-state metadata has no valid 'format_version'")
    return meta


def default_state_path(out: Path) -> Path:
    """NAME.state.safetensors beside the checkpoint NAME.safetensors: where a run keeps what a resume needs."""
    stem = out.name[:-len(".safetensors")] if out.name.endswith(".safetensors") else out.name
    return out.with_name(f"{stem}.state.safetensors")


def mean_losses(recent: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each loss averaged over the recent steps: the figure a checkpoint records, steadier than the last step's."""
    keys = recent[-1].keys()
    return {k: sum(e.get(k, 0.0) for e in recent) / len(recent) for k in keys}


def training_info(trainer: Trainer, device: torch.device, n_images: int, seconds: float,
                  resumed: bool, window: int, group: Group | None = None) -> dict[str, Any]:
    """How a run went, for the checkpoint's `training` metadata: steps, epochs, time, pace, device, settings."""
    s = trainer.settings
    info: dict[str, Any] = {
        "steps": trainer.step,
        "epochs": trainer.step / steps_per_epoch(s, n_images),
        "seconds": round(seconds, 3),
        "samples_per_s": round(trainer.step * s.batch_size / seconds, 1) if seconds > 0 else None,
        "device": str(device),
        "images": n_images,
        "subset": trainer.meta.get("subset"),
        "settings": dataclasses.asdict(s),
        "resumed": resumed,
        "loss_window_steps": window,
        "torch": torch.__version__,
        "world_size": group.world_size if group else 1,
        "backend": group.backend if group else None,
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info
