"""Directions on their own, to keep or to hand to someone: NAME.npy holds the vectors (K, d) as float32, NAME.json
describes them (each one's name, kind, source and sigma). Read back with every field checked: a numpy file is read
with allow_pickle=False, so nothing in it can run; anything wrong is one sentence and nothing is loaded.
Plain Python, no Qt."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ...engine.jobs.directions import DirectionData
from .picks import KINDS, MAX_DIRECTIONS

FORMAT = "latent-explorer-directions"
VERSION = 1
MAX_JSON_BYTES = 1 << 20
MAX_NPY_BYTES = 64 << 20
MAX_TEXT = 500


class DirectionsFileError(ValueError):
    """The files could not be written or read as directions; str(err) is one sentence."""


def paths(path: str | Path) -> tuple[Path, Path]:
    """(NAME.json, NAME.npy) for whichever of the two (or the bare name) the user gave."""
    p = Path(path).expanduser()
    base = p.with_suffix("") if p.suffix.lower() in (".json", ".npy") else p
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".npy")


def save_directions(directions: list[DirectionData], path: str | Path) -> tuple[Path, Path]:
    """Write the two files atomically; DirectionsFileError when they cannot be written."""
    from models.atomic import atomic_write_path

    if not directions:
        raise DirectionsFileError("there are no directions to save")
    description, vectors = paths(path)
    meta = {"format": FORMAT, "version": VERSION,
            "directions": [{"name": d.name, "kind": d.kind, "source": d.source, "sigma": float(d.sigma)}
                           for d in directions]}
    try:
        with atomic_write_path(vectors) as tmp, open(tmp, "wb") as f:
            np.save(f, np.stack([np.asarray(d.vector, np.float32) for d in directions]), allow_pickle=False)
        with atomic_write_path(description) as tmp:
            tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    except OSError as err:
        raise DirectionsFileError(f"cannot write {description.name} and {vectors.name}: {err.strerror or err}") \
            from None
    return description, vectors


def load_directions(path: str | Path, latent_dim: int) -> list[DirectionData]:
    """The directions the two files hold, for a latent of `latent_dim`; DirectionsFileError (one sentence) when
    either file is missing, too large, malformed, or for another latent size."""
    description, vectors = paths(path)
    for p, most in ((description, MAX_JSON_BYTES), (vectors, MAX_NPY_BYTES)):
        if not p.is_file():
            raise DirectionsFileError(f"{p.name} is not there; directions come as NAME.json and NAME.npy together")
        if p.stat().st_size > most:
            raise DirectionsFileError(f"{p.name} is larger than any directions file")
    try:
        meta = json.loads(description.read_text(encoding="utf-8"), parse_constant=_refuse)
        array = np.load(vectors, allow_pickle=False)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise DirectionsFileError(f"{description.name} or {vectors.name} cannot be read ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DirectionsFileError(f"{description.name} is not a Latent Explorer directions file")
    items = meta.get("directions")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_DIRECTIONS:
        raise DirectionsFileError(f"{description.name} lists no directions, or more than {MAX_DIRECTIONS}")
    if array.dtype.kind != "f" or array.ndim != 2 or array.shape[0] != len(items):
        raise DirectionsFileError(f"{vectors.name} is not one row of numbers per direction {description.name} lists")
    if array.shape[1] != latent_dim:
        raise DirectionsFileError(f"these directions are for a {array.shape[1]}-d latent and this model's is "
                                  f"{latent_dim}-d")
    array = array.astype(np.float32)
    if not np.isfinite(array).all() or not np.abs(array).sum(axis=1).all():
        raise DirectionsFileError(f"{vectors.name} holds a row that is not finite or is all zeros")
    out = []
    for i, (item, vector) in enumerate(zip(items, array)):
        out.append(_direction(item, vector, i))
    return out


def _direction(item, vector: np.ndarray, i: int) -> DirectionData:
    ok = isinstance(item, dict) and all(isinstance(item.get(k), str) and 0 < len(item[k]) <= MAX_TEXT
                                        for k in ("name", "kind")) \
        and isinstance(item.get("source", ""), str) and len(item.get("source", "")) <= MAX_TEXT \
        and item.get("kind") in KINDS
    sigma = item.get("sigma") if isinstance(item, dict) else None
    if not ok or isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma)
                                                                                         and sigma > 0):
        raise DirectionsFileError(f"direction {i + 1} needs a name, a kind ({', '.join(KINDS)}) and a positive sigma")
    return DirectionData(item["name"], item["kind"], item.get("source", ""), vector.copy(), float(sigma))


def _refuse(token: str):
    raise ValueError(f"{token} is not a number a directions file holds")
