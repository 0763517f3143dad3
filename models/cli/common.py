"""Pieces the subcommands share: the user-error type and building a family's config from flags."""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from .. import core, registry


class UsageError(ValueError):
    """A command line that cannot be carried out; the message says what to change."""


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
    return core.config_from_dict(cls, values)
