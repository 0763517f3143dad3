"""Pieces the subcommands share: the user-error type, the data flags, and building a family's config from flags."""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from .. import core, registry
from ..catalog import DATASET_NAMES, DEFAULT_DATASET, DatasetInfo, dataset_info, dataset_name


class UsageError(ValueError):
    """A command line that cannot be carried out; the message says what to change."""


def printable(text: str) -> str:
    """`text` with every control character written as its escape: a file's own strings (a data set's name, a
    tensor's) reach the terminal as text, never as a sequence that clears or retitles it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def data_parser() -> argparse.ArgumentParser:
    """The flags of every command that takes a data set: the same names as `models.data.load_dataset` takes."""
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data", default=None, metavar="NAME",
                      help=f"data set: {', '.join(DATASET_NAMES)}, or folder:PATH for your own pictures (labelled "
                           f"by subfolder when it has subfolders); default {DEFAULT_DATASET}")
    data.add_argument("--data-root", default=None, help="data folder (default $LATENT_EXPLORER_DATA or the cache)")
    data.add_argument("--subset", type=int, default=None, metavar="N", help="use only the first N images")
    data.add_argument("--no-download", action="store_true", help="never download; fail if the data is not on disk")
    data.add_argument("--image-size", type=int, default=None, metavar="N",
                      help="make the pictures NxN (resized with the aspect kept, then centre-cropped) where the "
                           "data set allows: folders, shapes, celeba, fashion-mnist, mnist; default its own size")
    data.add_argument("--channels", type=int, choices=(1, 3), default=None,
                      help="1 (grey) or 3 (colour); default the data set's own")
    data.add_argument("--verbose", action="store_true",
                      help="list every file of a folder that was skipped on the terminal too")
    return data


def data_choice(args: argparse.Namespace) -> tuple[DatasetInfo, tuple[int, int, int]]:
    """The data set the flags name (its catalog record) and the (C, H, W) its pictures become; UsageError."""
    try:
        info = dataset_info(dataset_name(args.data or DEFAULT_DATASET))
        return info, info.shape(args.image_size, args.channels)
    except ValueError as err:
        raise UsageError(str(err)) from None


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latent-dim", type=int, default=None, metavar="D", help="size of the latent space")
    parser.add_argument("--arch", choices=("dense", "conv"), default=None,
                        help="network body, for families that offer both (e.g. vae)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="set any config field; VALUE is JSON (e.g. hidden=[256,128]); repeatable")


def make_config(family: str, latent_dim: int | None, arch: str | None, overrides: list[str]) -> Any:
    """The family's default config with the flags applied, checked by core.config_from_dict."""
    cls = registry.FAMILIES[family].config_cls
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        values: dict[str, Any] = dataclasses.asdict(cls())
    except TypeError:       # a config with required fields: the flags must give them all
        values = {}
    if latent_dim is not None:
        if "latent_dim" not in names:
            raise UsageError(f"family '{family}' has no latent size to set; drop --latent-dim")
        values["latent_dim"] = latent_dim
    if arch is not None:
        if "arch" not in names:
            with_arch = sorted(n for n, f in registry.FAMILIES.items()
                               if "arch" in {x.name for x in dataclasses.fields(f.config_cls)})
            raise UsageError(f"family '{family}' has a fixed architecture; --arch applies to "
                             f"{', '.join(with_arch) or 'no family'} (for a conv autoencoder use --family cae)")
        values["arch"] = arch
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--config expects KEY=VALUE, got '{item}'")
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw       # a bare word is a string
        except RecursionError:              # json's decoder recurses once per nested list or object
            raise UsageError(f"--config {key.strip()}= nests its lists too deeply to be a config value") from None
    return core.config_from_dict(cls, values)
