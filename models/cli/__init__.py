"""The headless command line: `python -m models train|sample|info|import|list`.

Every user error (a bad checkpoint, missing data, a device this machine lacks, a config that does not fit)
prints one line to stderr and exits with status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .. import core
from ..checkpoint import CheckpointError
from ..data import DataMissingError
from ..device import DeviceError
from ..distributed import DistributedError
from .common import UsageError, data_parser, printable

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from . import info, sample, train
    from . import list as list_command

    parser = argparse.ArgumentParser(prog="python -m models", description="Train, sample and inspect "
                                     "Latent Explorer models without the app.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,info,import,list}")
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    train.add_parser(sub, [device, data_parser()])
    sample.add_parser(sub, [device])
    info.add_parsers(sub, [device])
    list_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 user error, 130 interrupted)."""

    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (CheckpointError, DataMissingError, DeviceError, core.ConfigError, UsageError, DistributedError) as err:
        return _fail(str(err))
    except OSError as err:
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        return _fail(f"{where}{err.strerror or err}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str) -> int:
    print(printable(" ".join(message.split())) or "error", file=sys.stderr)
    return EXIT_USER_ERROR
