"""`python -m models info` (what a checkpoint says about itself) and `import` (the opt-in state-dict door)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import checkpoint, reference_models, registry
from ..catalog import DEFAULT_DATASET
from ..device import pick_device
from .common import UsageError, add_config_flags, make_config, printable


def add_parsers(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("info", help="print a checkpoint's metadata",
                       description="Check that a checkpoint loads (its header, metadata and every tensor's "
                                   "name, shape, dtype and values, as `load` does) and print its metadata; a "
                                   "file that does not load gives one line and exit status 2.")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--json", action="store_true", help="print the raw metadata as JSON")
    p.add_argument("--no-check", action="store_true",
                   help="only read the header and metadata (quick; the tensors are not checked)")
    p.set_defaults(run=run_info)

    q = sub.add_parser("import", parents=parents, help="convert a plain torch state dict into a checkpoint",
                       description="Opt-in import of a plain state dict (torch.save of model.state_dict()). It is "
                                   "read with torch.load(weights_only=True), which cannot run pickle code. "
                                   "pytorch/examples' VAE and DCGAN generator are recognised by their tensors; "
                                   "a state dict of one of our own families needs --family and its config.")
    q.add_argument("state_dict", metavar="FILE|FOLDER",
                   help="a state dict, or a diffusers folder whose .bin weights get their safetensors copy beside "
                        "them (no other flag needed)")
    q.add_argument("--family", choices=sorted(registry.FAMILIES), default=None,
                   help="read FILE as this family's own tensors (default: recognise the reference model it is)")
    add_config_flags(q)
    q.add_argument("--critic", default=None, metavar="NETD",
                   help="a DCGAN generator's discriminator (netD_epoch_N.pth), joined as its detective")
    q.add_argument("--out", default=None, help="checkpoint to write (.safetensors; not for a diffusers folder)")
    q.add_argument("--dataset", default=None,
                   help=f"data set the weights were trained on (default: the reference model's, else "
                        f"{DEFAULT_DATASET})")
    q.add_argument("--train-steps", type=int, default=0, help="training steps, if known")
    q.set_defaults(run=run_import)


def run_info(args: argparse.Namespace) -> int:
    meta = checkpoint.read_metadata(args.checkpoint)
    if not args.no_check:
        checkpoint.load(args.checkpoint, "cpu")     # raises the one-line CheckpointError load would
    if args.json:
        print(json.dumps(meta.raw, indent=2))
        return 0
    for line in describe(meta):
        print(printable(line))
    return 0


def describe(meta: checkpoint.CheckpointMeta) -> list[str]:
    """The metadata as aligned 'name  value' lines, nested objects indented."""
    if meta.format_version == 0:            # a folder diffusers saved: no format, data set or training of ours
        return [_row("folder", f"{meta.path} (weights {meta.file_bytes / 1024:.1f} KiB)"),
                _row("family", f"{meta.family} ({meta.title})"),
                _row("image shape", " x ".join(str(s) for s in meta.image_shape)),
                _row("parameters", f"{meta.n_parameters:,} in {len(meta.tensors)} tensors"),
                "config:", *_nested({k: v for k, v in _config_dict(meta.config).items() if k != "trained_betas"},
                                    "  ")]
    lines = [
        _row("file", f"{meta.path.name} ({meta.file_bytes / 1024:.1f} KiB)"),
        _row("family", f"{meta.family} ({meta.title})"),
        _row("format", str(meta.format_version)),
        _row("dataset", meta.dataset),
        _row("trained", f"{meta.train_steps} steps"),
        _row("image shape", " x ".join(str(s) for s in meta.image_shape)),
        _row("parameters", f"{meta.n_parameters:,} in {len(meta.tensors)} tensors"),
    ]
    world = meta.training.get("world_size")
    if isinstance(world, int):
        backend = meta.training.get("backend")
        lines.append(_row("processes", f"{world}" + (f" ({backend})" if backend else " (no process group)")))
    for title, values in (("config", _config_dict(meta.config)), ("metrics", meta.metrics),
                          ("training", meta.training)):
        lines.append(f"{title}:" if values else _row(title, "(none)"))
        lines += _nested(values, "  ")
    return lines


def _config_dict(config: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(config)


def _row(name: str, value: str) -> str:
    return f"{name + ':':<14}{value}"


def _nested(values: dict[str, Any], indent: str) -> list[str]:
    width = max((len(str(k)) for k in values), default=0) + 2
    lines = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            lines += _nested(value, indent + "  ")
        else:
            lines.append(f"{indent}{str(key) + ':':<{width}}{_fmt(value)}")
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def run_import(args: argparse.Namespace) -> int:
    path = Path(args.state_dict)
    if path.is_dir():
        return import_diffusers_folder(path, args)
    if args.out is None:
        raise UsageError("import needs --out FILE.safetensors, the checkpoint to write")
    state = checkpoint.read_state_dict(path)
    reading = reference_models.read_as(path, state, args.family)
    flags = [f for f, given in (("--latent-dim", args.latent_dim is not None), ("--arch", args.arch is not None),
                                ("--config", bool(args.config))) if given]
    if reading is None:
        if args.critic is not None:
            raise UsageError("--critic joins pytorch/examples' DCGAN discriminator to its generator, and "
                             f"{path.name} is read as a '{args.family}' model of our own")
        family, config, what = args.family, make_config(args.family, args.latent_dim, args.arch, args.config), ""
    else:
        if flags:
            raise UsageError(f"{path.name} is {reading.what}, whose sizes are read from its tensors: drop "
                             f"{', '.join(flags)}")
        if args.critic is not None:
            reading = reference_models.with_critic(reading, args.critic, checkpoint.read_state_dict(args.critic))
        family, config, state, what = reading.family, reading.config, reading.state, f" ({reading.what})"
    model = checkpoint.model_from_state_dict(path, family, config, state, pick_device(args.device))
    dataset = args.dataset or (reading.dataset if reading is not None else DEFAULT_DATASET)
    checkpoint.save(model, args.out, dataset=dataset, train_steps=args.train_steps,
                    training={"imported_from": path.name})
    print(f"imported {path.name}{what} as a '{family}' model into {args.out} (data set: {dataset})")
    return 0


def import_diffusers_folder(folder: Path, args: argparse.Namespace) -> int:
    """A diffusers folder's pickled UNet weights -> the safetensors file beside them, which then opens."""
    given = [flag for flag, value in (("--out", args.out), ("--family", args.family), ("--critic", args.critic),
                                      ("--latent-dim", args.latent_dim), ("--arch", args.arch),
                                      ("--dataset", args.dataset)) if value is not None] + \
        (["--config"] if args.config else [])
    if given:
        raise UsageError(f"{folder.name} is a folder: import writes its safetensors weights beside the pickled "
                         f"ones, so drop {', '.join(given)}")
    written = checkpoint.import_diffusers_folder(folder)
    print(f"wrote {written} from the pickled weights beside it; {folder} now opens as a model")
    return 0
