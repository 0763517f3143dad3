"""A session file: what a user found (the model, the view, each view's probes, pins, keyframes and seeds), kept in
one small JSON file so the same pictures come back later. Plain Python, no Qt: a test reads and writes it without
a window; the window (window.py) collects and restores it.

    {"format": "latent-explorer-session", "version": 1,
     "models": [{"path": ".../vae-2d.safetensors", "sha256": "..."}],      the picker's model first
     "view": "map",
     "views": {"map": {...}, "interpolate": {...}}}                          each view's own part

A file is read whole or not at all: `read_session` checks the size, the JSON (no NaN, no infinity, no deep
nesting), the fields' types and ranges, and every view's part (its own `views/<name>/session.py`, a plain module
with `parse(raw) -> state` and `dump(state) -> dict`) before anything is shown; any fault is one `SessionError`
whose message is a sentence. Nothing in a file is ever run: it is JSON, and only JSON.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .views.tabs import view_names

FORMAT = "latent-explorer-session"
VERSION = 1
SUFFIX = ".json"
MAX_BYTES = 4 * 1024 * 1024          # a session is small: probes, seeds and a few keyframe pictures
MAX_DEPTH = 8                        # the deepest a session nests: views -> map -> probes -> [u, v]
MAX_ITEMS = 64                       # any list or object (a picture is one base64 string, not a list)
MAX_TEXT = 4096                      # any string but a picture's pixels: paths, names
MAX_PICTURE_SIDE = 512
MAX_PICTURE_TEXT = 2 * 1024 * 1024   # a picture's base64 pixels
MAX_MODELS = 8
VIEW_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json")
MAX_FOLDER_FILES = 512
HASH_CHUNK = 1 << 20


class SessionError(ValueError):
    """A session file that cannot be used; the message is one sentence for the banner."""


@dataclass(frozen=True)
class ModelRef:
    """A model the session shows: where it was, and a hash of its contents to tell whether it changed since."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Session:
    """A whole session, validated. `views` maps a view's name to its parsed part (what its session module's
    `parse` returned, or a bounded plain dict for a view without one)."""

    models: tuple[ModelRef, ...] = ()
    view: str | None = None
    views: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> ModelRef | None:
        """The picker's model: the one the session opens."""
        return self.models[0] if self.models else None


# -- content hashes ----------------------------------------------------------------------------------------------
# A model is read whole to hash it (hundreds of MB for a diffusers folder): a hash is kept per process, keyed by
# each file's size and mtime, so an unchanged model is read once. A file changed within RACY_S of its hashing may
# change again within one mtime tick at the same size (a trainer saving twice), so its hash is not kept.
RACY_S = 2.0
_known: dict[tuple, str] = {}
_known_lock = threading.Lock()


def content_hash(path: str | Path) -> str:
    """sha256 of a model file; for a folder (a diffusers model), of its config and weights files, each named by its
    path inside the folder, so a renamed or changed file changes the hash. Reads the files only the first time
    they are asked for unchanged; raises OSError when they cannot be read."""
    path = Path(path)
    files = _hashed_files(path)
    key = _memo_key(path, files)
    with _known_lock:
        known = _known.get(key)
    if known is not None:
        return known
    started = time.time()
    digest = _digest(path, files)
    if all(mtime_ns / 1e9 < started - RACY_S for _, _, mtime_ns in key[1]):
        with _known_lock:
            _known[key] = digest
    return digest


def known_hash(path: str | Path) -> str | None:
    """The hash content_hash would give without reading the model (it was hashed unchanged before), else None.
    Costs a stat per file: the UI thread may ask."""
    path = Path(path)
    try:
        key = _memo_key(path, _hashed_files(path))
    except OSError:
        return None
    with _known_lock:
        return _known.get(key)


def _hashed_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)
    if len(files) > MAX_FOLDER_FILES:
        raise OSError(f"{path} holds more than {MAX_FOLDER_FILES} config and weights files")
    return files


def _memo_key(path: Path, files: list[Path]) -> tuple:
    stats = [(file, file.stat()) for file in files]
    return str(path.resolve()), tuple((str(file), st.st_size, st.st_mtime_ns) for file, st in stats)


def _digest(path: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    if not path.is_dir():
        _hash_file(path, digest)
        return digest.hexdigest()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        _hash_file(file, digest)
        digest.update(b"\0")
    return digest.hexdigest()


def _hash_file(path: Path, digest) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)


def model_ref(path: str | Path) -> ModelRef:
    return ModelRef(str(path), content_hash(path))


def known_refs(paths: Iterable[str]) -> tuple[ModelRef, ...] | None:
    """The models' refs when every hash is known already (see known_hash), else None: one needs reading."""
    refs = tuple(ModelRef(str(p), known_hash(p)) for p in paths)
    return None if any(ref.sha256 is None for ref in refs) else refs


def hash_quietly(path: str | Path) -> str | None:
    """content_hash, or None when the model cannot be read: for hashing ahead, where nobody waits on a failure."""
    try:
        return content_hash(path)
    except OSError:
        return None


def check_model(ref: ModelRef) -> str | None:
    """None when the model is where the session says and unchanged; else the sentence that says what is wrong."""
    name = Path(ref.path).name
    if not Path(ref.path).exists():
        return f"The session's model {name} is missing ({ref.path}); what does not need it is restored."
    try:
        now = content_hash(ref.path)
    except OSError as err:
        return f"The session's model {name} cannot be read ({err.strerror or err}); the rest is restored."
    if now != ref.sha256:
        return f"The session's model {name} has changed since the session was saved; it is restored anyway."
    return None


def locate_model(ref: ModelRef, elsewhere: Iterable[str] = ()) -> tuple[str | None, str | None]:
    """Where to open the session's model (None: nowhere) and the one sentence to say about it (None: nothing).
    A model that moved (another checkout's weights folder) is found among `elsewhere` by its name and hash."""
    problem = check_model(ref)
    if Path(ref.path).exists():
        return ref.path, problem
    for other in elsewhere:
        if Path(other).name == Path(ref.path).name and Path(other).exists():
            try:
                if content_hash(other) == ref.sha256:
                    return other, None
            except OSError:
                continue
    return None, problem


def check_session(session: Session, elsewhere: Iterable[str] = ()) -> tuple[str | None, list[str]]:
    """Where to open the session's model (see locate_model) and the sentences to say about its models. Reads
    every model it names to hash it: run it off the UI thread."""
    ref = session.model
    model, problem = locate_model(ref, elsewhere) if ref else (None, None)
    problems = [problem] if problem else []
    return model, problems + [said for said in map(check_model, session.models[1:]) if said]


def is_session_file(path: str | Path) -> bool:
    """Whether a file dropped on the window is meant as a session: a .json file that is no diffusers folder's
    model_index.json (which opens its model)."""
    path = Path(path)
    return path.suffix.lower() == SUFFIX and path.name != "model_index.json" and path.is_file()


# -- writing -----------------------------------------------------------------------------------------------------
def session_dict(session: Session) -> dict:
    """The JSON-able form of a session: each view's part through its module's `dump` when it has one."""
    views = {}
    for name, part in session.views.items():
        module = view_module(name)
        views[name] = module.dump(part) if module is not None and not isinstance(part, dict) else part
    return {"format": FORMAT, "version": VERSION,
            "models": [{"path": m.path, "sha256": m.sha256} for m in session.models],
            "view": session.view, "views": views}


def dumps(session: Session) -> str:
    """The file's text; checked as a reader will check it, so a session that saves is one that opens."""
    text = json.dumps(session_dict(session), indent=1, allow_nan=False)
    if len(text.encode()) > MAX_BYTES:
        raise SessionError(f"The session would take more than {MAX_BYTES // (1024 * 1024)} MB; it is not saved.")
    parse_session(text)
    return text


def write_session(path: str | Path, session: Session) -> None:
    """Save atomically: a temp file beside the target, renamed over it, so a crash never leaves half a session."""
    from models.atomic import atomic_write_path      # torch-free

    text = dumps(session)
    with atomic_write_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# -- reading -----------------------------------------------------------------------------------------------------
def read_session(path: str | Path) -> Session:
    """Read and validate a session file; SessionError (one sentence) for anything that is not a good session."""
    path = Path(path)
    name = path.name
    try:
        if not path.is_file():
            raise SessionError(f"There is no session file at {path}.")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)            # never more: a 1 GB file costs 4 MB to refuse
    except OSError as err:
        raise SessionError(f"{name} could not be read: {err.strerror or err}.") from None
    if len(raw) > MAX_BYTES:
        raise SessionError(f"{name} is larger than a session can be ({MAX_BYTES // (1024 * 1024)} MB); "
                           "nothing was changed.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SessionError(f"{name} is not a session file (it is not text); nothing was changed.") from None
    try:
        session = parse_session(text)
    except SessionError as err:
        raise SessionError(f"{name}: {err}") from None
    # a path written by hand may be relative: to the session file's folder, wherever the app was started
    models = tuple(ModelRef(str(path.parent / m.path), m.sha256) if not Path(m.path).is_absolute() else m
                   for m in session.models)
    return Session(models, session.view, session.views)


def _no_constant(token: str):
    raise SessionError(f"the file holds {token}, which no session field takes; nothing was changed.")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise SessionError(f"the file holds the number {token[:20]}, too large for any session field; "
                           "nothing was changed.")
    return value


def _bounded_int(token: str) -> int:
    if len(token) > 20:
        raise SessionError("the file holds an integer too long for any session field; nothing was changed.")
    return int(token)


def parse_session(text: str) -> Session:
    """The session in `text`, validated whole (see read_session)."""
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except SessionError:
        raise
    except RecursionError:
        raise SessionError("it nests deeper than a session does; nothing was changed.") from None
    except ValueError:
        raise SessionError("it is not a session file (not valid JSON); nothing was changed.") from None
    _check_bounds(data)
    top = Fields(data, "the session")
    if top.get("format") != FORMAT:
        raise SessionError("it is not a Latent Explorer session (its format field is missing or wrong); "
                           "nothing was changed.")
    version = top.integer("version", 1, 10 ** 6)
    if version > VERSION:
        raise SessionError(f"it was written by a newer Latent Explorer (session version {version}, this one "
                           f"reads {VERSION}); nothing was changed.")
    models = tuple(_model(m) for m in top.items("models", MAX_MODELS, optional=True))
    view = top.name("view", optional=True)
    views: dict[str, Any] = {}
    known = set(view_names())
    for name, part in top.mapping("views", optional=True).items():
        if not isinstance(part, dict):
            raise SessionError("a view's part is not an object; nothing was changed.")
        if name not in known:
            continue                               # a view this app does not have: nothing to give it
        module = view_module(name)
        views[name] = module.parse(part) if module is not None else part
    return Session(models, view, views)


def _model(raw: Any) -> ModelRef:
    m = Fields(raw, "a model")
    digest = m.text("sha256")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise SessionError("a model's sha256 is not a sha256 hash; nothing was changed.")
    return ModelRef(m.path("path"), digest)


def _check_bounds(data: Any) -> None:
    """No nesting deeper than MAX_DEPTH, no list or object longer than MAX_ITEMS, no string longer than a
    picture's pixels, anywhere (walked with a stack: a hostile file cannot make this recurse)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_PICTURE_TEXT:
                raise SessionError("it holds a string longer than any session field takes; nothing was changed.")
        elif isinstance(value, (list, dict)):
            if depth > MAX_DEPTH:
                raise SessionError("it nests deeper than a session does; nothing was changed.")
            if len(value) > MAX_ITEMS:
                raise SessionError(f"it holds a list of {len(value):,} items, more than any session field "
                                   "takes; nothing was changed.")
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not set(name) <= VIEW_NAME_CHARS:
        raise SessionError("a view's name in it is not a view name; nothing was changed.")


def view_module(name: str):
    """A registered view's session part, `explorer.views.<name>.session` (plain Python, no Qt), or None when it
    has none. Only registered names are ever imported."""
    if name not in view_names():
        return None
    try:
        return import_module(f"explorer.views.{name}.session")
    except ModuleNotFoundError as err:
        if err.name and (err.name == f"explorer.views.{name}" or err.name.endswith(f"{name}.session")):
            return None
        raise


# -- reading fields: what each view's session module uses -------------------------------------------------------
class Fields:
    """Typed reads of one JSON object, each raising SessionError with a sentence that names the field."""

    def __init__(self, raw: Any, what: str) -> None:
        if not isinstance(raw, dict):
            raise SessionError(f"{what} is not an object; nothing was changed.")
        self.raw = raw
        self.what = what

    def fail(self, key: str, wants: str) -> SessionError:
        return SessionError(f"{self.what}'s {key} is not {wants}; nothing was changed.")

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def _missing(self, key: str, optional: bool) -> bool:
        if self.raw.get(key) is None:
            if optional:
                return True
            raise SessionError(f"{self.what} has no {key}; nothing was changed.")
        return False

    def integer(self, key: str, lo: int, hi: int, optional: bool = False, default: int | None = None) -> int | None:
        if self._missing(key, optional):
            return default
        v = self.raw[key]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(key, f"a whole number from {lo} to {hi}")
        return v

    def number(self, key: str, lo: float, hi: float, optional: bool = False,
               default: float | None = None) -> float | None:
        if self._missing(key, optional):
            return default
        v = self.raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise self.fail(key, f"a number from {lo:g} to {hi:g}")
        return float(v)

    def boolean(self, key: str, optional: bool = False, default: bool | None = None) -> bool | None:
        if self._missing(key, optional):
            return default
        v = self.raw[key]
        if not isinstance(v, bool):
            raise self.fail(key, "true or false")
        return v

    def text(self, key: str, optional: bool = False, default: str | None = None,
             choices: tuple[str, ...] | None = None) -> str | None:
        if self._missing(key, optional):
            return default
        v = self.raw[key]
        if not isinstance(v, str) or len(v) > MAX_TEXT or "\0" in v:
            raise self.fail(key, "a short text")
        if choices is not None and v not in choices:
            raise self.fail(key, "one of " + ", ".join(choices))
        return v

    def name(self, key: str, optional: bool = False) -> str | None:
        v = self.text(key, optional)
        if v is not None:
            _check_name(v)
        return v

    def path(self, key: str, optional: bool = False) -> str | None:
        """A file's path: text, absolute or relative, with no NUL; whether it leads anywhere is asked later."""
        v = self.text(key, optional)
        if v is not None and not v.strip():
            raise self.fail(key, "a path")
        return v

    def items(self, key: str, most: int, optional: bool = False) -> list:
        if self._missing(key, optional):
            return []
        v = self.raw[key]
        if not isinstance(v, list) or len(v) > most:
            raise self.fail(key, f"a list of at most {most}")
        return v

    def mapping(self, key: str, optional: bool = False) -> dict:
        if self._missing(key, optional):
            return {}
        v = self.raw[key]
        if not isinstance(v, dict):
            raise self.fail(key, "an object")
        return v

    def point(self, key: str, size: int = 2, bound: float = 1e6, optional: bool = False) -> tuple | None:
        """A short list of finite numbers, each within ±bound (a probe's (u, v))."""
        if self._missing(key, optional):
            return None
        if not _is_point(self.raw[key], size, bound):
            raise self.fail(key, f"{size} numbers within ±{bound:g}")
        return tuple(float(x) for x in self.raw[key])

    def points(self, key: str, most: int, size: int = 2, bound: float = 1e6,
               optional: bool = False) -> tuple[tuple[float, ...], ...]:
        """A list of at most `most` points (see `point`)."""
        items = self.items(key, most, optional)
        if not all(_is_point(v, size, bound) for v in items):
            raise self.fail(key, f"a list of points of {size} numbers within ±{bound:g}")
        return tuple(tuple(float(x) for x in v) for v in items)


def _is_point(v: Any, size: int, bound: float) -> bool:
    return isinstance(v, list) and len(v) == size and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) <= bound for x in v)

    def picture(self, key: str) -> np.ndarray:
        return decode_picture(self.raw.get(key), f"{self.what}'s {key}")


# -- pictures: exact float32 pixels, as base64 -------------------------------------------------------------------
def encode_picture(image: np.ndarray) -> dict:
    """A picture (H, W) or (H, W, 3) in [0, 1] as JSON, bit for bit: its shape and its float32 bytes in base64."""
    image = np.ascontiguousarray(image, dtype="<f4")
    return {"shape": list(image.shape), "f32": base64.b64encode(image.tobytes()).decode("ascii")}


def decode_picture(raw: Any, what: str) -> np.ndarray:
    """The picture `encode_picture` wrote, checked: a plausible shape, the right number of bytes, finite pixels in
    [0, 1]."""
    p = Fields(raw, what)
    shape = p.items("shape", 3)
    ok = len(shape) in (2, 3) and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_PICTURE_SIDE
                                      for s in shape) and (len(shape) == 2 or shape[2] == 3)
    if not ok:
        raise SessionError(f"{what} is not the shape of a picture (H, W or H, W, 3); nothing was changed.")
    text = p.get("f32")
    if not isinstance(text, str) or len(text) > MAX_PICTURE_TEXT:
        raise SessionError(f"{what} has no pixels; nothing was changed.")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SessionError(f"{what}'s pixels are not base64; nothing was changed.") from None
    if len(data) != 4 * math.prod(shape):
        raise SessionError(f"{what}'s pixels do not fill its shape; nothing was changed.")
    image = np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
    if not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
        raise SessionError(f"{what}'s pixels are not all in [0, 1]; nothing was changed.")
    return image
