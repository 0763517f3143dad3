"""Checkpoints: one .safetensors file per model, its JSON metadata under the header key `latent_explorer`.

A checkpoint is boring on purpose: tensors in safetensors, everything else in one JSON object, a format version,
and a temp-file-then-rename save. Loading reads the file once and checks it in layers before any tensor is used:
the file itself, the safetensors header against the bytes that follow it, the JSON metadata, the tensor names,
shapes and dtypes against a model built from the config (on the meta device, so a lying config allocates
nothing), then the values. Each failure is one typed error whose str() is one human sentence.

Pickles (`torch.save` files, whatever they are called) are refused: unpickling can run arbitrary code. The one
opt-in door is `import_state_dict`, which reads a plain state dict through `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pickletools
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import core, registry
from .atomic import atomic_write_path
from .device import as_device

METADATA_KEY = "latent_explorer"
TRAIN_STATE_KEY = "latent_explorer_train"   # models.train's key; a state file is not a model
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100_000_000      # safetensors' own limit on the JSON header
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
SNIFF_BYTES = 64_000_000            # what is read of a file that starts with no safetensors header, to name it

# safetensors dtype names -> bytes per element, and the torch dtypes a model's state dict can hold.
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
TORCH_DTYPE_NAMES = {torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
                     torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32", torch.float32: "F32",
                     torch.int64: "I64", torch.float64: "F64"}


class CheckpointError(Exception):
    """A file that cannot be used as a model; str(err) is one human sentence, fit for a dialog or a CLI line."""

    kind = "invalid"


class NotAFileError(CheckpointError):
    kind = "not-a-file"


class NotSafetensorsError(CheckpointError):
    kind = "not-safetensors"


class TruncatedError(CheckpointError):
    kind = "truncated"


class HeaderMismatchError(CheckpointError):
    """The header's offsets or dtypes/shapes do not add up to the bytes in the file."""
    kind = "header-lies"


class UnknownFamilyError(CheckpointError):
    kind = "unknown-family"


class BadConfigError(CheckpointError):
    kind = "bad-config"


class TensorMismatchError(CheckpointError):
    kind = "tensor-mismatch"


class NewerFormatError(CheckpointError):
    kind = "newer-format"


class NonFiniteError(CheckpointError):
    kind = "non-finite"


class StaleFiguresError(CheckpointError):
    kind = "stale-figures"


class PickleRefusedError(CheckpointError):
    kind = "pickle-refused"


class TooLargeError(CheckpointError):
    """A file, or what a zip in it unpacks to, larger than the model it could hold, or a config asking for more
    than memory allows: refused before it is read or built."""
    kind = "too-large"


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a safetensors header, checked against the file: dtype name, shape, byte range in the data."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about itself, validated; `config` is the family's frozen config instance."""

    path: Path
    format_version: int
    family: str
    config: Any
    image_shape: tuple[int, int, int]
    dataset: str
    train_steps: int
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, TensorInfo] = field(default_factory=dict, repr=False)
    file_bytes: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)   # the whole JSON object, extra keys included

    @property
    def title(self) -> str:
        return registry.FAMILIES[self.family].title

    @property
    def n_parameters(self) -> int:
        """Elements in floating-point tensors (weights and buffers such as BatchNorm statistics)."""
        return sum(math.prod(t.shape) for t in self.tensors.values() if t.dtype.startswith(("F", "BF")))


# ---------------------------------------------------------------------------------------------------------------
# Save

def save(model: core.LatentModel, path: str | Path, *, dataset: str, train_steps: int,
         metrics: dict | None = None, training: dict | None = None) -> None:
    """Write `model` as one .safetensors file with its metadata, atomically (a crash never leaves half a file).

    Refuses (NonFiniteError) a model whose weights hold NaN or Inf: such a file could never be loaded.
    """
    from safetensors.torch import save_file

    # clone() breaks any storage sharing (tied weights), which safetensors will not write.
    tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in model.state_dict().items()}
    bad = _first_non_finite(tensors)
    if bad is not None:
        raise NonFiniteError(f"the model's tensor '{bad}' holds NaN or Inf values, so it was not saved "
                             "(training probably diverged; try a lower learning rate)")
    meta = {
        "format_version": FORMAT_VERSION,
        "family": model.family,
        "config": dataclasses.asdict(model.config),
        "image_shape": list(model.image_shape),
        "dataset": dataset,
        "train_steps": int(train_steps),
        "metrics": dict(metrics or {}),
        "training": dict(training or {}),
    }
    text = json.dumps(meta)
    with atomic_write_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: text})


def record_metrics(path: str | Path, figures: dict[str, Any], *,
                   measured_at_step: int | None = None) -> CheckpointMeta:
    """Merge `figures` into a checkpoint's metadata metrics, keeping its tensors and every other field as they are.

    How a file comes to carry figures measured after training (benchmarks/quality.py --record). The file is
    checked first (a broken one raises CheckpointError, untouched) and rewritten atomically. `measured_at_step`
    is the train_steps of the weights that were measured: if a training run has saved newer weights since, the
    figures describe another model, and they are refused (StaleFiguresError) rather than attached to it.
    """
    from safetensors.torch import load, save_file

    path = Path(path)
    data = _read_file(path)
    infos, header_meta = _parse_header(path, data)
    meta = _parse_metadata(path, header_meta, infos, len(data))
    if measured_at_step is not None and meta.train_steps != measured_at_step:
        raise StaleFiguresError(f"{path.name} changed while it was measured (step {measured_at_step} then, "
                                f"{meta.train_steps} now): measure it again")
    raw = dict(meta.raw)
    raw["metrics"] = {**dict(raw.get("metrics") or {}), **figures}
    tensors = load(data)
    with atomic_write_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={**header_meta, METADATA_KEY: json.dumps(raw)})
    return read_metadata(path)


# ---------------------------------------------------------------------------------------------------------------
# Load

def read_metadata(path: str | Path) -> CheckpointMeta:
    """Check the file, its header and its metadata (not the tensor values) and return what it says.

    Reads the header alone (listing every shipped model must not read megabytes of weights); of a file whose first
    bytes are no plausible safetensors header, its first SNIFF_BYTES, so the message can say what it is instead.
    A folder (or a file of one) saved by diffusers is read by `read_folder`."""
    path = Path(path)
    if _diffusers_folder(path):
        return read_folder(path)
    head, size = _read_head(path)
    tensors, header_meta = _parse_header(path, head, size)
    return _parse_metadata(path, header_meta, tensors, size)


def load(path: str | Path, device: torch.device | str | None = None) -> core.LatentModel:
    """Load a checkpoint as a ready model in eval mode on `device` (None: the CPU), or raise one CheckpointError.
    A folder (or a file of one) saved by diffusers opens too (see `read_folder`)."""
    path = Path(path)
    if _diffusers_folder(path):
        return _load_folder(path, device)
    data = _read_file(path)
    tensors, header_meta = _parse_header(path, data)
    meta = _parse_metadata(path, header_meta, tensors, len(data))
    model_cls = registry.FAMILIES[meta.family].model_cls
    expected = _expected_tensors(path, meta.family, meta.config)
    _check_tensors(path, expected, core.current_names(model_cls, {k: (t.dtype, t.shape) for k, t in tensors.items()}))
    state = core.current_names(model_cls, _decode_tensors(path, data))
    return _finish(path, meta.family, meta.config, state, device)


def read_safetensors(path: str | Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    """(header metadata, tensors) of any safetensors file, checked as `load` checks a checkpoint's file and
    header first: the one reader of this format, for checkpoints and training states alike."""
    path = Path(path)
    data = _read_file(path)
    _, header_meta = _parse_header(path, data)
    return header_meta, _decode_tensors(path, data)


def import_state_dict(path: str | Path, family: str, config: Any,
                      device: torch.device | str | None = None) -> core.LatentModel:
    """The explicit opt-in for a plain state dict saved by torch.save (or a bare safetensors file).

    Reads through `torch.load(weights_only=True)`, which only rebuilds tensors and plain containers and refuses
    any other object, so a malicious pickle cannot run code. The names and shapes must fit `family`'s model
    built from `config` (a config instance or a dict of its fields).
    """
    path = Path(path)
    if family not in registry.FAMILIES:
        raise UnknownFamilyError(f"there is no model family '{family}'; known families: {_known_families()}")
    config = _build_config(path, family, config)
    return model_from_state_dict(path, family, config, read_state_dict(path), device)


def read_state_dict(path: str | Path, max_bytes: int | None = None, why: str = "") -> dict[str, Tensor]:
    """The tensors of a plain state dict, {name: tensor} on the CPU, from a torch.save file (read with
    `torch.load(weights_only=True)`, the one place a pickle is read, so nothing in it runs) or a bare
    safetensors file; a dict nested under 'state_dict' or 'model' is taken out. The file, and what a zip in it
    unpacks to (torch.load allocates that), may hold max_bytes (None: what memory allows a model); `why` says
    where a smaller bound comes from, for the message."""
    path = Path(path)
    limit = _memory_limit() if max_bytes is None else max_bytes
    data = _read_file(path, limit, why)
    if _looks_like_safetensors(data):
        _parse_header(path, data)
        state = _decode_tensors(path, data)
    else:
        if not data:
            raise TruncatedError(f"{path.name} is empty (0 bytes)")
        unpacked = _zip_unpacked_bytes(data)
        if unpacked > limit:
            raise TooLargeError(f"{path.name} unpacks to {_size(unpacked)}, more than {_size(limit)}"
                                f"{why or ', what this machine can hold for a model'}")
        state = _torch_load_weights_only(path, data)
    return _unwrap_state_dict(path, state)


def model_from_state_dict(path: str | Path, family: str, config: Any, state: dict[str, Tensor],
                          device: torch.device | str | None = None) -> core.LatentModel:
    """`family`'s model built from `config` holding `state`, once every name, shape and dtype fits it and every
    value is finite (`path` is the file the tensors came from, for the messages)."""
    path = Path(path)
    config = _build_config(path, family, config)
    state = core.current_names(registry.FAMILIES[family].model_cls, state)
    expected = _expected_tensors(path, family, config)
    _check_tensors(path, expected, {k: (_dtype_name(v.dtype), tuple(v.shape)) for k, v in state.items()})
    return _finish(path, family, config, state, device)


# ---------------------------------------------------------------------------------------------------------------
# Layer 1: the file

def _diffusers_folder(path: Path) -> bool:
    """A folder, or model_index.json, config.json or the weights file of a folder diffusers saved."""
    from .diffusers_folder import is_diffusers_path

    return is_diffusers_path(path)

def _read_file(path: Path, max_bytes: int | None = None, why: str = "") -> bytes:
    """The whole regular file, refused unread when larger than max_bytes (None: what memory allows a model)."""
    _read_file_checks(path)
    limit = _memory_limit() if max_bytes is None else max_bytes
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size      # of the file opened: a link into a huge blob is caught here
            if size > limit:
                raise TooLargeError(f"{path.name} is {_size(size)}, more than {_size(limit)}"
                                    f"{why or ', what this machine can hold for a model'}")
            return f.read(size)          # read(n) allocates n bytes first: never more than the file holds
    except OSError as err:
        raise NotAFileError(f"{path} cannot be read ({err.strerror or err})") from None


def _memory_limit() -> int:
    from .diffusers_folder import memory_limit

    return memory_limit()


def _size(nbytes: int) -> str:
    if nbytes < 2 ** 20:
        return f"{nbytes:,} bytes"
    return f"{nbytes / 2 ** 20:.1f} MiB" if nbytes < 2 ** 30 else f"{nbytes / 2 ** 30:,.1f} GiB"


def _zip_unpacked_bytes(data: bytes) -> int:
    """What the members of a zip (torch.save's format) unpack to, by its directory; 0 for no readable zip."""
    import zipfile

    if data[:4] != b"PK\x03\x04":
        return 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return 0                     # torch.load says what is wrong with it


def _read_file_checks(path: Path) -> None:
    if not path.exists():
        raise NotAFileError(f"{path} does not exist")
    if path.is_dir():
        raise NotAFileError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise NotAFileError(f"{path} is not a regular file")


def _read_head(path: Path) -> tuple[bytes, int]:
    """(the length prefix and JSON header, the file's size); where they are no plausible header, the file's first
    SNIFF_BYTES instead (for `_parse_header` to say what the file is), never the whole of a huge one."""
    _read_file_checks(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size      # of the file opened (a save may replace the path meanwhile)
            prefix = f.read(9)
            n = struct.unpack("<Q", prefix[:8])[0] if len(prefix) == 9 and prefix[8:9] == b"{" else 0
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                return prefix + f.read(max(0, min(size, SNIFF_BYTES) - len(prefix))), size
            return prefix + f.read(n - 1), size
    except OSError as err:
        raise NotAFileError(f"{path} cannot be read ({err.strerror or err})") from None


def _looks_like_safetensors(data: bytes) -> bool:
    """A safetensors file starts with an 8-byte length and then a JSON object, so byte 8 is '{'."""
    return len(data) >= 9 and data[8:9] == b"{"


def _is_pickle(path: Path, data: bytes) -> str | None:
    """Name the pickle-based format `data` is in, or None. Only looks at bytes; never unpickles."""
    if data[:4] == b"PK\x03\x04":
        return "a PyTorch zip archive (what torch.save writes)"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return f"a Python pickle (protocol {data[1]}, as torch.save writes)"
    if data[-1:] == b"." and len(data) < SNIFF_BYTES:
        # Protocols 0 and 1 have no magic number: parse the opcodes (without executing them) up to STOP.
        try:
            ops = list(pickletools.genops(io.BytesIO(data)))
        except Exception:
            return None
        if ops and ops[-1][0].name == "STOP":
            return "a Python pickle"
    return None


def _refuse_pickle(path: Path, data: bytes) -> None:
    what = _is_pickle(path, data)
    if what:
        raise PickleRefusedError(_pickle_message(path, what))


def _pickle_message(path: Path, what: str) -> str:
    return (f"{path.name} is {what}, which Latent Explorer refuses to open because unpickling can run any code; "
            f"if you trust it and it holds a plain state dict, convert it with: python -m models import "
            f"{path} --family FAMILY --latent-dim D --out {path.with_suffix('.safetensors').name}")


# ---------------------------------------------------------------------------------------------------------------
# Layer 2: the safetensors header against the bytes in the file

def _parse_header(path: Path, data: bytes, size: int | None = None) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """`data` is the whole file, or its first bytes up to the header's end when `size` (the file's) is given."""
    name = path.name
    size = len(data) if size is None else size
    if not _looks_like_safetensors(data):
        _refuse_pickle(path, data)
        if not data:
            raise TruncatedError(f"{name} is empty (0 bytes)")
        if len(data) < 9:
            raise TruncatedError(f"{name} is only {len(data)} bytes long, too short to be a checkpoint")
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise PickleRefusedError(_pickle_message(path, f"a {path.suffix} file, not safetensors"))
        raise NotSafetensorsError(f"{name} is not a safetensors file (it does not start with a safetensors header)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        _refuse_pickle(path, data)
        raise NotSafetensorsError(f"{name} is not a safetensors file (its header length {n} is implausible)")
    if 8 + n > size:
        _refuse_pickle(path, data)
        raise TruncatedError(f"{name} is truncated: its header should be {n} bytes long but the file ends "
                             f"after {size - 8}")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):     # RecursionError: lists nested past the stack
        raise NotSafetensorsError(f"{name} is not a valid safetensors file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise NotSafetensorsError(f"{name} is not a valid safetensors file (its header is not a JSON object)")

    header_meta = header.pop("__metadata__", None) or {}
    if not isinstance(header_meta, dict) or not all(isinstance(v, str) for v in header_meta.values()):
        raise HeaderMismatchError(f"{name} has a malformed safetensors header: '__metadata__' must map names "
                                  "to strings")
    tensors = {key: _tensor_info(name, key, entry) for key, entry in header.items()}

    data_len = size - 8 - n
    position = 0
    for key, info in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if info.begin != position:
            raise HeaderMismatchError(f"{name}'s header lies about offsets: tensor {core.quoted(key)} starts at byte "
                                      f"{info.begin} of the data, but the previous one ends at {position}")
        position = info.end
    if position > data_len:
        raise TruncatedError(f"{name} is truncated: its header promises {position} bytes of tensor data but "
                             f"only {data_len} follow")
    if position < data_len:
        raise HeaderMismatchError(f"{name}'s header lies about sizes: it describes {position} bytes of tensor "
                                  f"data but {data_len} follow")
    return tensors, header_meta


def _tensor_info(name: str, key: str, entry: Any) -> TensorInfo:
    if not isinstance(entry, dict):
        raise HeaderMismatchError(f"{name}'s header entry for {core.quoted(key)} is not a tensor description")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise HeaderMismatchError(f"{name}'s header gives tensor {core.quoted(key)} an unknown dtype {dtype!r}")
    if not (isinstance(shape, list) and all(_is_count(s) for s in shape)):
        raise HeaderMismatchError(f"{name}'s header gives tensor {core.quoted(key)} an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise HeaderMismatchError(f"{name}'s header gives tensor {core.quoted(key)} invalid data offsets {offsets!r}")
    nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
    if offsets[1] - offsets[0] != nbytes:
        raise HeaderMismatchError(f"{name}'s header lies about tensor {core.quoted(key)}: a {dtype} tensor of shape "
                                  f"{tuple(shape)} needs {nbytes} bytes, but its offsets span "
                                  f"{offsets[1] - offsets[0]}")
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63


# ---------------------------------------------------------------------------------------------------------------
# Layer 3: the JSON metadata

def _parse_metadata(path: Path, header_meta: dict[str, str], tensors: dict[str, TensorInfo],
                    file_bytes: int) -> CheckpointMeta:
    name = path.name
    text = header_meta.get(METADATA_KEY)
    if text is None and TRAIN_STATE_KEY in header_meta:
        raise BadConfigError(f"{name} is a training state, not a model checkpoint; finish it with "
                             f"`python -m models train --resume {path} --out MODEL.safetensors`")
    if text is None:
        raise BadConfigError(f"{name} is a safetensors file but not a Latent Explorer checkpoint (its header has "
                             f"no '{METADATA_KEY}' metadata); a plain state dict can be brought in with "
                             "`python -m models import`")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        raise BadConfigError(f"{name}'s '{METADATA_KEY}' metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise BadConfigError(f"{name}'s '{METADATA_KEY}' metadata is not a JSON object")

    version = meta.get("format_version")
    if not (isinstance(version, int) and not isinstance(version, bool)):
        raise BadConfigError(f"{name}'s metadata has no valid 'format_version'")
    if version > FORMAT_VERSION:
        raise NewerFormatError(f"{name} was written by a newer Latent Explorer (checkpoint format {version}, "
                               f"this one reads up to {FORMAT_VERSION}); upgrade to open it")
    if version < 1:
        raise BadConfigError(f"{name}'s metadata has an invalid format_version {version}")

    family = meta.get("family")
    if not isinstance(family, str):
        raise BadConfigError(f"{name}'s metadata does not name a model family")
    if family not in registry.FAMILIES:
        raise UnknownFamilyError(f"{name} holds a model of family '{family}', which this Latent Explorer does "
                                 f"not know (known families: {_known_families()})")
    if "config" not in meta:
        raise BadConfigError(f"{name}'s metadata has no model config")
    config = _build_config(path, family, meta["config"])

    image_shape = meta.get("image_shape")
    if not (isinstance(image_shape, list) and len(image_shape) == 3 and all(_is_count(s) for s in image_shape)):
        raise BadConfigError(f"{name}'s metadata has no valid image_shape (three integers C, H, W)")
    config_shape = getattr(config, "image_shape", None)
    if config_shape is not None and tuple(config_shape) != tuple(image_shape):
        raise BadConfigError(f"{name}'s metadata says images are {tuple(image_shape)} but its config says "
                             f"{tuple(config_shape)}")
    dataset = meta.get("dataset")
    if not isinstance(dataset, str):
        raise BadConfigError(f"{name}'s metadata does not name the data set the model was trained on")
    steps = meta.get("train_steps")
    if not _is_count(steps):
        raise BadConfigError(f"{name}'s metadata has no valid train_steps (a non-negative integer)")
    metrics, training = meta.get("metrics", {}), meta.get("training", {})
    if not isinstance(metrics, dict) or not isinstance(training, dict):
        raise BadConfigError(f"{name}'s metadata fields 'metrics' and 'training' must be JSON objects")
    return CheckpointMeta(path, version, family, config, tuple(image_shape), dataset, steps, metrics, training,
                          tensors, file_bytes, meta)


def _build_config(path: Path, family: str, config: Any) -> Any:
    fam = registry.FAMILIES[family]
    if not isinstance(config, fam.config_cls):
        try:
            config = core.config_from_dict(fam.config_cls, config)
        except core.ConfigError as err:
            raise BadConfigError(f"{path.name} has a config that does not fit family '{family}': {err}") from None
    _check_config_size(path, config)
    return config


def checked_config(path: str | Path, family: Any, config: Any) -> Any:
    """`family`'s config from its JSON (or instance), once its numbers and the parameters it builds fit in memory:
    what a file's config must pass before a model is built from it on a real device (models.train's resume)."""
    path = Path(path)
    if not isinstance(family, str) or family not in registry.FAMILIES:
        raise UnknownFamilyError(f"{path.name} names the model family {family!r}, which this Latent Explorer does "
                                 f"not know (known families: {_known_families()})")
    config = _build_config(path, family, config)
    _expected_tensors(path, family, config)
    return config


# the config fields that size a layer: a latent, a hidden layer's units, a convolution's channels
WIDTH_FIELDS = ("latent_dim", "hidden", "channels", "d_channels", "feature_dim", "heads")


def _check_config_size(path: Path, config: Any) -> None:
    """Refuse a config whose numbers ask for more than memory allows, before anything is built from it: the
    limits a diffusers folder's UNet config meets (models.diffusers_folder), for a file's own JSON: a picture's
    sides, a layer's width, the steps of a noise schedule, the classes, and one picture's feature maps,
    ~ 2 sum_i c_i (H / 2^i) (W / 2^i) floats (encoder and decoder, each level halving the picture)."""
    from .diffusers_folder import MAX_ACTIVATION_BYTES, MAX_CLASSES, MAX_SIDE, MAX_WIDTH
    from .diffusers_model import MAX_TIMESTEPS

    name = path.name
    c, h, w = getattr(config, "image_shape", (1, 1, 1))
    if not (c <= 64 and h <= MAX_SIDE and w <= MAX_SIDE):
        raise TooLargeError(f"{name}'s config asks for {c}-channel {h:,} x {w:,} pictures; Latent Explorer opens "
                            f"up to 64 channels and sides up to {MAX_SIDE} pixels")
    levels = _widths(config, "channels")
    if not levels and hasattr(config, "base_channels"):             # the DDPM's U-Net: base width times each mult
        levels = [config.base_channels * m for m in config.channel_mults]
    widths = levels + [v for key in WIDTH_FIELDS for v in _widths(config, key)]
    if widths and max(widths) > MAX_WIDTH:
        raise TooLargeError(f"{name}'s config asks for a layer {max(widths):,} wide, a network too large for "
                            f"memory (Latent Explorer opens up to {MAX_WIDTH:,})")
    for key, most in (("timesteps", MAX_TIMESTEPS), ("num_classes", MAX_CLASSES)):
        value = getattr(config, key, 0)
        if isinstance(value, int) and value > most:
            raise TooLargeError(f"{name}'s config asks for {key} {value:,}; Latent Explorer opens up to {most:,}")
    maps = 4 * 2 * sum(width * (h >> i) * (w >> i) for i, width in enumerate(levels))
    if maps > MAX_ACTIVATION_BYTES:
        raise TooLargeError(f"{name}'s config describes a network whose feature maps for one {h} x {w} picture "
                            f"need {maps / 2 ** 30:.1f} GiB, more than Latent Explorer allows "
                            f"({MAX_ACTIVATION_BYTES // 2 ** 30} GiB)")


def _widths(config: Any, key: str) -> list[int]:
    """A config field's integers: one, or each of a tuple; none for a field the config lacks."""
    value = getattr(config, key, ())
    values = value if isinstance(value, tuple) else (value,)
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _known_families() -> str:
    return ", ".join(sorted(registry.FAMILIES)) or "none"


# ---------------------------------------------------------------------------------------------------------------
# Layer 4: tensor names, shapes and dtypes against the model the config describes

def _expected_tensors(path: Path, family: str, config: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Build the model on the meta device (no memory, no init cost) and list its state dict.

    A family whose constructor needs real values (e.g. `.item()` on a schedule) cannot be built on meta; it is
    then built on the CPU, which is only reached for a config its dataclass has already accepted.
    """
    model_cls = registry.FAMILIES[family].model_cls
    try:
        with torch.random.fork_rng(devices=[]):
            try:
                with torch.device("meta"):
                    model = model_cls(config)
            except Exception:
                model = model_cls(config)   # raises again if the config itself is at fault
        state = model.state_dict()
    except Exception as err:  # a config the dataclass accepts but the network cannot be built from
        raise BadConfigError(f"{path.name}'s config cannot build a '{family}' model: {err}") from None
    nbytes, limit = sum(v.numel() * v.element_size() for v in state.values()), _memory_limit()
    if nbytes > limit:
        raise TooLargeError(f"{path.name}'s config describes a '{family}' model of {_size(nbytes)}, more than this "
                            f"machine can hold for a model ({_size(limit)})")
    return {k: (_dtype_name(v.dtype), tuple(v.shape)) for k, v in state.items()}


def _dtype_name(dtype: torch.dtype) -> str:
    return TORCH_DTYPE_NAMES.get(dtype, str(dtype))


def _check_tensors(path: Path, expected: dict[str, tuple[str, tuple[int, ...]]],
                   found: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    name = path.name
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {core.few_names(missing)}")
        if extra:
            parts.append(f"unexpected {core.few_names(extra)}")
        raise TensorMismatchError(f"{name}'s tensors do not match its config: {'; '.join(parts)}")
    for key, (dtype, shape) in expected.items():
        got_dtype, got_shape = found[key]
        if tuple(got_shape) != shape:
            raise TensorMismatchError(f"{name}'s tensor '{key}' has shape {tuple(got_shape)} but its config "
                                      f"needs {shape}")
        if got_dtype != dtype:
            raise TensorMismatchError(f"{name}'s tensor '{key}' is {got_dtype} but the model needs {dtype}")


# ---------------------------------------------------------------------------------------------------------------
# Layer 5: the values, then the model

def _decode_tensors(path: Path, data: bytes) -> dict[str, Tensor]:
    from safetensors.torch import load as load_bytes

    try:
        return load_bytes(data)
    except Exception as err:  # a backstop: the checks above should have caught anything safetensors rejects
        raise HeaderMismatchError(f"{path.name} has a safetensors header that cannot be read: {err}") from None


def _first_non_finite(state: dict[str, Tensor]) -> str | None:
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key
    return None


def _finish(path: Path, family: str, config: Any, state: dict[str, Tensor],
            device: torch.device | str | None) -> core.LatentModel:
    bad = _first_non_finite(state)
    if bad is not None:
        raise NonFiniteError(f"{path.name}'s tensor '{bad}' holds NaN or Inf values, so the model cannot be used")
    with torch.random.fork_rng(devices=[]):   # building initialises weights; keep the caller's RNG untouched
        model = registry.FAMILIES[family].model_cls(config)
    model.load_state_dict(state, strict=True)
    return model.to(as_device(device)).eval()


# ---------------------------------------------------------------------------------------------------------------
# The opt-in import of a plain state dict

def _torch_load_weights_only(path: Path, data: bytes) -> Any:
    """torch.load(weights_only=True): a pickle asking for anything but tensors and plain containers is refused
    before it is built (PickleRefusedError, naming what it asked for); a file torch cannot read is damaged."""
    import pickle

    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            raise TruncatedError(f"{path.name} cannot be read: its pickle is damaged or truncated "
                                 f"({_first_line(err)})") from None
        asked = re.search(r"GLOBAL ([\w.]+)", str(err))       # what it would have called or built
        raise PickleRefusedError(f"{path.name} holds more than tensors and plain containers"
                                 f"{f' (it asks for {asked.group(1)})' if asked else ''}, so it was refused "
                                 "unread and nothing in it ran") from None
    except Exception as err:
        raise TruncatedError(f"{path.name} cannot be read by torch.load: it is damaged, truncated or not a "
                             f"torch.save file ({_first_line(err)})") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0].rstrip(".") if text else type(err).__name__


def _unwrap_state_dict(path: Path, obj: Any) -> dict[str, Tensor]:
    """Accept {name: tensor}, or one nested under 'state_dict' / 'model' as training scripts often save it."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, Tensor)
                                                  for k, v in obj.items())):
        raise TensorMismatchError(f"{path.name} does not hold a plain state dict (a mapping of names to tensors)")
    return {k: v.detach().cpu() for k, v in obj.items()}


# ---------------------------------------------------------------------------------------------------------------
# Folders saved by diffusers: models.diffusers_folder checks the layout and the configs, and the weights go
# through this module's layers 1, 2 and 5, so a folder opens wherever a checkpoint does, as safely.

@dataclass(frozen=True)
class FolderMeta(CheckpointMeta):
    """What a diffusers folder says, checked: a CheckpointMeta whose `path` is the folder and whose config is a
    DiffusersConfig; `spec` holds the UNet's own config and where the weights are."""

    spec: Any = field(default=None, repr=False)

    @property
    def title(self) -> str:
        return f"Diffusion model (diffusers {self.config.pipeline})"

    @property
    def capabilities(self) -> frozenset[str]:
        from .diffusers_model import DiffusersDDPM

        return DiffusersDDPM.capabilities


_FOLDER_ERRORS = {"not-a-file": NotAFileError, "tensor-mismatch": TensorMismatchError,
                  "pickle-refused": PickleRefusedError}


def _folder_error(err: Exception) -> CheckpointError:
    return _FOLDER_ERRORS.get(getattr(err, "kind", ""), BadConfigError)(str(err))


def read_folder(path: str | Path, network: bool = True) -> FolderMeta:
    """Check a diffusers folder (models.diffusers_folder) and its weights' safetensors header against the network
    its config builds, reading no tensor, and say what it is; one CheckpointError for anything that would not
    open. network=False leaves out the network (which imports diffusers): a quick look for a list of models."""
    from .diffusers_folder import FolderError, check_weights, read_folder as read_spec
    from .diffusers_model import FAMILY

    try:
        spec = read_spec(path, network)
        head, size = _read_head(spec.weights)
        tensors, _ = _parse_header(spec.weights, head, size)
        if spec.expected is not None:
            check_weights({k: (t.dtype, t.shape) for k, t in tensors.items()}, spec.expected,
                          spec.shown(spec.weights))
    except FolderError as err:
        raise _folder_error(err) from None
    return FolderMeta(path=spec.layout.folder, format_version=0, family=FAMILY, config=spec.config,
                      image_shape=spec.config.image_shape, dataset="", train_steps=0,
                      training={"opened_from": spec.layout.pipeline}, tensors=tensors, file_bytes=size, raw=spec.raw,
                      spec=spec)


def _load_folder(path: str | Path, device: torch.device | str | None) -> core.LatentModel:
    from .diffusers_folder import build

    meta = read_folder(path)
    weights = meta.spec.weights
    data = _read_file(weights)
    tensors, _ = _parse_header(weights, data)
    if {k: (t.dtype, t.shape) for k, t in tensors.items()} != {k: (t.dtype, t.shape) for k, t in meta.tensors.items()}:
        raise CheckpointError(f"{meta.spec.shown(weights)} changed while it was being opened; open it again")
    state = _decode_tensors(weights, data)
    del data
    bad = _first_non_finite(state)
    if bad is not None:
        raise NonFiniteError(f"{meta.spec.shown(weights)}'s tensor '{bad}' holds NaN or Inf values, so the model "
                             "cannot be used")
    return build(meta.spec, state, device)


def import_diffusers_folder(path: str | Path) -> Path:
    """Write `unet/diffusion_pytorch_model.safetensors` beside a diffusers folder's pickled `.bin` weights, read
    with `torch.load(weights_only=True)` (nothing in the pickle runs) and checked against its config (names,
    shapes, finite values) first, atomically; returns the file written. The folder then opens as any other."""
    from safetensors.torch import save_file

    from .diffusers_folder import FolderError, check_weights, current_name, pickled_weights, unet_tensors

    try:
        layout, pickled, target = pickled_weights(path)
        expected = unet_tensors(layout)
        params = sum(math.prod(shape) for shape in expected.values())
        # float64 at most, and the zip's and pickle's own bytes around each tensor
        state = read_state_dict(pickled, 8 * params + 2 ** 20 + 4096 * len(expected),
                                f", what its config's {params:,} weights can fill")
        shown = str(pickled.relative_to(layout.folder.parent))
        check_weights({k: (_dtype_name(v.dtype), tuple(v.shape)) for k, v in state.items()}, expected, shown)
    except FolderError as err:
        raise _folder_error(err) from None
    bad = _first_non_finite(state)
    if bad is not None:
        raise NonFiniteError(f"{shown}'s tensor '{bad}' holds NaN or Inf values, so it was not imported")
    tensors = {current_name(k, expected): v.contiguous().clone() for k, v in state.items()}
    with atomic_write_path(target) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return target
