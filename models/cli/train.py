"""`python -m models train`: train a family on a real data set with a progress bar, resumable, Ctrl-C safe.

A training state (weights, optimizer, RNG, step) is saved every few minutes and at the end, so a run killed by
Ctrl-C, a crash or a lost GPU box continues from the last save with `--resume`, bit for bit on the CPU.
`--family classifier` trains a data set's own classifier on its labels (one head per factor where the data set
has factors, as `shapes` has), and records its test accuracy; the app and the domain FID use it for that data
set's pictures only (`models.metrics.find_classifier`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import torch

from .. import checkpoint, core, distributed, registry, train
from ..catalog import KNOBS, DEFAULT_DATASET, DatasetInfo, dataset_name, knob_named
from ..data import ImageData, load_dataset
from ..device import pick_device
from .common import UsageError, add_config_flags, data_choice, make_config

LOSS_WINDOW = 50    # final metrics are the mean loss over this many last steps, not one noisy batch
CLASSIFIER = "classifier"
ACCURACY_IMAGES = 10_000    # a classifier's test accuracy is measured on at most this many test pictures


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    generative = sorted(n for n, f in registry.FAMILIES.items() if core.SAMPLE in f.model_cls.capabilities)
    p = sub.add_parser("train", parents=parents, help="train a model and save a checkpoint",
                       description="Train a model on a real data set and save it as one .safetensors checkpoint.")
    p.add_argument("--family", choices=[*generative, CLASSIFIER], default=None,
                   help="model family (required unless --resume); classifier: the data set's own classifier, "
                        "for its pictures' labels and domain FID (one head per factor where it has factors)")
    add_config_flags(p)
    p.add_argument("--classes", action="store_true",
                   help="class-conditional, with classifier-free guidance (ddpm): one class per label of the data "
                        "set, each label dropped to 'no class' with probability p_uncond (a --knob, default 0.1)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, default=None, help="passes over the data (default 1)")
    length.add_argument("--steps", type=int, default=None, help="optimisation steps (instead of --epochs)")
    defaults = train.TrainSettings()
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    p.add_argument("--beta", type=float, default=defaults.beta, help="VAE and VAE-GAN: weight of the KL term")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="set a training knob; repeatable; on --resume only those read at every step. "
                        + "; ".join(f"{k.name}: {k.meaning}" + (f" ({', '.join(k.families)})" if k.families else "")
                                    for k in KNOBS))
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    p.add_argument("--resume", default=None, metavar="STATE", help="continue the run saved in this training state")
    p.add_argument("--state", default=None, metavar="PATH",
                   help="where to keep the training state (default: beside --out, NAME.state.safetensors)")
    p.add_argument("--save-every-s", type=float, default=300.0, metavar="S",
                   help="save the training state every S seconds (0: only at the end)")
    p.set_defaults(run=run)


class StopOnCtrlC:
    """The first Ctrl-C (or SIGTERM, as torchrun and schedulers send) asks the loop to stop after the current
    step; a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopOnCtrlC":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def run(args: argparse.Namespace) -> int:
    """One process, or one rank of a torchrun job (WORLD_SIZE > 1): then rank 0 alone prints and writes."""
    train.flush_denormals()                 # before any torch work, so torch's worker threads flush too
    device = pick_device(args.device)
    group = distributed.join(device)
    together = False
    try:
        code = _run(args, distributed.local_device(device, group), group)
        together = True
        return code
    except RuntimeError as err:
        if group is None or isinstance(err, distributed.DistributedError):
            raise
        print(f"rank {group.rank}: the job lost one of its {group.world_size} processes "
              f"({' '.join(str(err).split())[:200]}); stopping. Resume from the last saved training state with "
              "--resume.", file=sys.stderr)
        return 1
    finally:
        distributed.leave(group, together)


def _run(args: argparse.Namespace, device: torch.device, group: distributed.Group | None) -> int:
    from tqdm import tqdm

    main = group is None or group.is_main
    out = Path(args.out)
    trainer, resumed = _trainer(args, device, group)
    state_path = Path(args.state) if args.state else Path(args.resume) if args.resume else train.default_state_path(out)
    data = _training_data(args, trainer, main)
    skipped = report_skipped(data, out, args.verbose) if main else 0
    try:
        total = train.total_steps(trainer.settings, len(data))
        distributed.shard(torch.arange(trainer.settings.batch_size), group)
    except (ValueError, distributed.DistributedError) as err:
        raise UsageError(f"{err}; use a larger --subset or a smaller --batch-size"
                         if isinstance(err, ValueError) else str(err)) from None
    labels = training_labels(trainer.model, data)
    if train.needs_labels(trainer.model) and labels is None:
        raise UsageError(f"{trainer.dataset} has no class labels for a class-conditional model")
    if getattr(trainer.model, "conditional", False) and int(labels.max()) >= trainer.model.null_class:
        raise UsageError(f"{trainer.dataset} has {int(labels.max()) + 1} classes, more than the model's "
                         f"{trainer.model.config.num_classes}")
    trainer.model = distributed.prepare(trainer.model, trainer.optimizers, group)
    note = trainer.meta.get("resume_note")
    if note and main:
        print(f"note: {note}", file=sys.stderr)

    seconds_before = float(trainer.meta.get("seconds", 0.0))
    recent: deque[dict[str, float]] = deque(maxlen=LOSS_WINDOW)
    elapsed = 0.0
    last_save = time.monotonic()

    def save_state() -> None:
        trainer.meta["seconds"] = seconds_before + elapsed
        if recent:
            trainer.meta["losses"] = distributed.mean_values(train.mean_losses(recent), group)
        train.save_trainer(trainer, state_path, group)

    bar = tqdm(total=total, initial=min(trainer.step, total), unit="step", desc=trainer.model.family,
               dynamic_ncols=True, mininterval=0.5, disable=not main)
    with StopOnCtrlC() as ctrl_c:
        given = (data.images,) if group is None else (data.images, group)
        events = (train.run(trainer, *given, labels=labels) if train.needs_labels(trainer.model)
                  else train.run(trainer, *given))         # labels only where the model trains on them
        for event in events:
            recent.append(event.losses)
            elapsed = event.elapsed_s
            bar.set_postfix({k: f"{v:.4g}" for k, v in event.losses.items()}, refresh=False)
            bar.update(1)
            save_due = args.save_every_s > 0 and time.monotonic() - last_save >= args.save_every_s
            stop, save_due = distributed.agree([ctrl_c.requested, save_due], group)
            if save_due and not stop:
                save_state()
                last_save = time.monotonic()
            if stop:
                bar.close()
                save_state()
                if main:
                    print(f"stopped at step {trainer.step}/{total}; training state saved to {state_path}; "
                          f"continue with: python -m models train --resume {state_path} --out {out}",
                          file=sys.stderr)
                return 130
    bar.close()
    save_state()
    if not main:
        return 0
    report_skipped(data, out, args.verbose, before=skipped)
    metrics = dict(trainer.meta.get("losses", {}))
    if trainer.model.family == CLASSIFIER:
        metrics.update(classifier_accuracy(trainer.model, args, trainer))
    info = train.training_info(trainer, device, len(data), seconds_before + elapsed, resumed, len(recent), group)
    info["data"] = {"image_shape": list(data.image_shape), "skipped": len(data.skipped)}
    checkpoint.save(trainer.model, out, dataset=trainer.dataset, train_steps=trainer.step, metrics=metrics,
                    training=info)
    summary = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
    processes = f" on {group.world_size} processes ({group.backend})" if group else ""
    print(f"saved {out} ({trainer.model.family}, {trainer.step} steps{processes}"
          f"{'; ' + summary if summary else ''}); training state in {state_path}")
    return 0


def _trainer(args: argparse.Namespace, device: torch.device,
             group: distributed.Group | None = None) -> tuple[train.Trainer, bool]:
    """A fresh run from the flags, or the saved run with only its length changed by --steps/--epochs."""
    if args.resume:
        trainer = train.load_trainer(args.resume, device, group)
        if args.family and args.family != trainer.model.family:
            raise UsageError(f"{args.resume} is a '{trainer.model.family}' run, not '{args.family}'")
        if args.data and _canonical(args.data) != trainer.dataset:
            raise UsageError(f"{args.resume} was trained on {trainer.dataset}, not {args.data}")
        if args.latent_dim is not None or args.arch or args.config or args.classes:
            raise UsageError("the model's config comes from the training state when resuming; drop "
                             "--latent-dim/--arch/--config/--classes")
        if args.image_size is not None or args.channels is not None:
            raise UsageError("the pictures' size comes from the training state when resuming; drop "
                             "--image-size/--channels")
        if args.steps is not None:
            trainer.settings = dataclasses.replace(trainer.settings, steps=args.steps)
        elif args.epochs is not None:
            trainer.settings = dataclasses.replace(trainer.settings, steps=None, epochs=args.epochs)
        if args.subset is not None:
            trainer.meta["subset"] = args.subset
        if args.knob:
            trainer.settings = trainer.settings.with_knobs(parse_knobs(args.knob, trainer.model.family, True))
        decay_from = trainer.settings.knob("lr_decay_from", float("inf"))
        if decay_from < trainer.step and (args.steps is not None or args.epochs is not None):
            print(f"note: this run's rates fall from step {decay_from:.0f} to zero at its last step; a new length "
                  "moves that last step, so they rise again from here", file=sys.stderr)
        return trainer, True
    if not args.family:
        raise UsageError("train needs --family (or --resume STATE)")
    data, shape = data_choice(args)
    config = make_config(args.family, args.latent_dim, args.arch,
                         args.config + class_config(args, data) + head_config(args, data) + shape_config(args, shape))
    settings = train.TrainSettings(batch_size=args.batch_size, lr=args.lr, seed=args.seed, beta=args.beta,
                                   epochs=args.epochs if args.epochs is not None else 1.0, steps=args.steps,
                                   extra=tuple(parse_knobs(args.knob, args.family).items()))
    torch.manual_seed(args.seed)
    try:
        model = registry.build(args.family, config).to(device)
    except (TypeError, ValueError) as err:
        raise UsageError(f"this config cannot build a '{args.family}' model: {err}") from None
    try:
        trainer = train.new_trainer(model, settings, data.name, group)
    except ValueError as err:           # an optimizer refusing a setting, e.g. Adam's betas
        raise UsageError(f"these settings cannot train a '{args.family}' model: {err}") from None
    trainer.meta["subset"] = args.subset
    trainer.meta["channels"], trainer.meta["image_size"] = shape[0], shape[1]    # what a resume loads again
    return trainer, False


def _canonical(name: str) -> str:
    try:
        return dataset_name(name)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _training_data(args: argparse.Namespace, trainer: train.Trainer, main: bool) -> ImageData:
    """The run's training split, as the run's pictures: the size and channels it started with (a state saved
    before they were recorded trained on the data set's own)."""
    try:
        data = load_dataset(trainer.dataset, "train", root=args.data_root, subset=trainer.meta.get("subset"),
                            download=not args.no_download, image_size=trainer.meta.get("image_size"),
                            channels=trainer.meta.get("channels"), progress=main)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if data.image_shape != tuple(trainer.model.image_shape):
        raise UsageError(f"the model draws {tuple(trainer.model.image_shape)} pictures and {trainer.dataset} gives "
                         f"{data.image_shape}; this run cannot train on them")
    return data


def shape_config(args: argparse.Namespace, shape: tuple[int, int, int]) -> list[str]:
    """The data's picture (C, H, W) as the config's image_shape, which --config may name only to agree."""
    fields = {f.name for f in dataclasses.fields(registry.FAMILIES[args.family].config_cls)}
    if "image_shape" not in fields:
        return []
    for item in args.config:
        key, _, raw = item.partition("=")
        if key.strip() != "image_shape":
            continue
        try:
            given = tuple(json.loads(raw))
        except (ValueError, TypeError, RecursionError):      # RecursionError: nested past the stack
            given = None
        if given != tuple(shape):
            raise UsageError(f"--config {item} disagrees with the data's pictures {tuple(shape)}; choose the "
                             "picture with --image-size and --channels instead")
        return []
    return [f"image_shape={json.dumps(list(shape))}"]


def skip_log_path(out: Path) -> Path:
    """Where a run lists the files it skipped: beside the checkpoint, NAME.skipped.txt."""
    return out.with_name(out.name.removesuffix(".safetensors") + ".skipped.txt")


def report_skipped(data: ImageData, out: Path, verbose: bool, before: int = 0) -> int:
    """One line on stderr when files were skipped (more than `before`): how many, and where their names are
    (a log beside the output; with --verbose on the terminal too). Returns how many are skipped now."""
    skipped = data.skipped
    if len(skipped) <= before:
        return len(skipped)
    lines = [s.line() for s in skipped]
    log = skip_log_path(out)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="backslashreplace")
        where = f"listed in {log}"
    except OSError:
        where = "not listed (the log beside the output cannot be written; run with --verbose to see them)"
    if verbose:
        for line in lines[before:]:
            print(f"skipped {line}", file=sys.stderr)
    folder = data.info.folder or data.name
    new = len(skipped) - before
    if before:
        print(f"skipped {new} more {_files(new)} of {folder} while training (they could not be decoded); all "
              f"{len(skipped)} are {where}", file=sys.stderr)
    else:
        print(f"skipped {new} {_files(new)} of {folder} that are not readable pictures; "
              f"{'it is' if new == 1 else 'they are'} {where}", file=sys.stderr)
    return len(skipped)


def _files(n: int) -> str:
    return "file" if n == 1 else "files"


def head_config(args: argparse.Namespace, data: DatasetInfo) -> list[str]:
    """A classifier's heads as --config items: one per factor where the data set has factors (shapes: shape,
    colour, size, x, y), else one over its classes; a data set with neither cannot train one."""
    if args.family != CLASSIFIER:
        return []
    if data.factors:
        heads = [len(f.values) for f in data.factors]
        return [f"num_classes={heads[0]}", f"heads={json.dumps(heads)}"]
    if not data.classes or len(data.classes) < 2:
        what = "one class" if data.classes else "no labels"
        raise UsageError(f"{args.data or DEFAULT_DATASET} has {what}; a classifier learns from two or more classes "
                         "(a folder with one subfolder per class)")
    return [f"num_classes={len(data.classes)}"]


def training_labels(model: Any, data: ImageData) -> Any:
    """What a model learns from besides the pictures: a classifier with a head per factor the data's factors
    (N, F), a classifier or class-conditional model the classes (N,), any other model nothing."""
    if not train.needs_labels(model):
        return None
    if len(getattr(model.config, "heads", ())) > 1:
        return data.factors
    return data.labels


def classifier_accuracy(model: Any, args: argparse.Namespace, trainer: train.Trainer) -> dict[str, Any]:
    """A classifier's accuracy on (at most ACCURACY_IMAGES of) its data set's test split, at the run's picture:
    test_accuracy (the mean over heads) and, with a head per factor, each factor's."""
    try:
        test = load_dataset(trainer.dataset, "test", root=args.data_root, download=not args.no_download,
                            image_size=trainer.meta.get("image_size"), channels=trainer.meta.get("channels"))
    except (ValueError, RuntimeError) as err:
        print(f"note: no test accuracy ({' '.join(str(err).split())[:200]})", file=sys.stderr)
        return {}
    labels = training_labels(model, test)
    if labels is None or len(test) == 0:
        return {}
    n = min(len(test), ACCURACY_IMAGES)
    per_head = model.factor_accuracy(test.tensor(n).to(model.device), labels[:n])
    figures: dict[str, Any] = {"test_accuracy": round(sum(per_head) / len(per_head), 4), "test_images": n}
    if len(per_head) > 1:
        names = test.factor_names or tuple(f"head {k}" for k in range(len(per_head)))
        figures["test_accuracy_per_factor"] = {name: round(a, 4) for name, a in zip(names, per_head)}
    return figures


def class_config(args: argparse.Namespace, data: DatasetInfo | None = None) -> list[str]:
    """--classes as a --config item: num_classes = the number of the data set's classes (none without it)."""
    if not args.classes:
        return []
    if "num_classes" not in {f.name for f in dataclasses.fields(registry.FAMILIES[args.family].config_cls)}:
        conditional = sorted(n for n, f in registry.FAMILIES.items() if core.SAMPLE in f.model_cls.capabilities
                             and "num_classes" in {x.name for x in dataclasses.fields(f.config_cls)})
        raise UsageError(f"--classes applies to {', '.join(conditional)}, not to '{args.family}'")
    if data is None:
        data, _ = data_choice(args)
    if not data.classes:
        raise UsageError(f"{args.data or DEFAULT_DATASET} has no class labels to condition on")
    return [f"num_classes={len(data.classes)}"]


def parse_knobs(texts: list[str], family: str, resuming: bool = False) -> dict[str, float]:
    """`--knob NAME=VALUE` flags: each names a knob this family reads and gives it a number in its range; a
    resume may only add knobs read at every step, since the saved optimizers already hold the others."""
    knobs: dict[str, float] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep:
            raise UsageError(f"--knob takes NAME=VALUE, not '{text}'")
        try:
            knob = knob_named(name.strip())
        except KeyError:
            raise UsageError(f"there is no training knob '{name}'; the knobs are "
                             f"{', '.join(k.name for k in KNOBS)}") from None
        if not knob.applies_to(family):
            raise UsageError(f"the knob '{knob.name}' applies to {' and '.join(knob.families)}, not to '{family}'")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or not 0 <= number < knob.below:
            upper = f" and below {knob.below:g}" if math.isfinite(knob.below) else ""
            raise UsageError(f"--knob {knob.name} takes a number of zero or more{upper}, not '{value}'")
        if resuming and knob.at_start:
            raise UsageError(f"the knob '{knob.name}' is set when a run starts, in its optimizers; a resume keeps "
                             "the saved run's")
        knobs[knob.name] = number
    return knobs
