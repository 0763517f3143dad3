"""`python -m models list`: the shipped models, what each one is, and where its file is.

The folder is found as the app finds it (models/weights.py): --weights DIR, $LATENT_EXPLORER_WEIGHTS, the checkout's
weights/, else the copy installed inside the package. Reads headers only, so it is quick.
"""
from __future__ import annotations

import argparse

from .. import checkpoint, weights
from .common import UsageError

SOURCES = {"flag": "--weights", "environment": f"${weights.WEIGHTS_ENV}", "checkout": "the checkout's weights/",
           "installed": "the installed copy"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="name the shipped models and where they are",
                       description="List the shipped models (name, family, file) in the folder the app opens on, "
                                   "and the folder for models you train or save.")
    p.add_argument("--weights", metavar="DIR", default=None,
                   help="look here (default: $LATENT_EXPLORER_WEIGHTS, the checkout's weights/, else the "
                        "installed copy)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    where = weights.locate_weights(args.weights)
    files = weights.shipped_checkpoints(where.path)
    if not files:
        raise UsageError(f"no models in {where.path} (from {SOURCES[where.source]})")
    rows = []
    for path in files:
        try:
            title = checkpoint.read_metadata(path).title
        except checkpoint.CheckpointError as err:
            title = f"unreadable: {err}"
        rows.append((path.stem, title, str(path)))
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    print(f"shipped models in {where.path} (from {SOURCES[where.source]}):")
    for name, title, path in rows:
        print(f"  {name:<{width[0]}}  {title:<{width[1]}}  {path}")
    print(f"models you train or save go to {weights.user_models_dir()} by default")
    return 0
