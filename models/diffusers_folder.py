"""Folders saved by diffusers, opened as models: checked in layers before anything is built, as checkpoints are.

Two layouts open: a pipeline (`model_index.json` naming DDPMPipeline or DDIMPipeline, `unet/config.json`,
`unet/diffusion_pytorch_model.safetensors`, `scheduler/scheduler_config.json`), and a bare UNet2DModel folder
(`config.json` and the weights) with a scheduler config beside it (in it, in `scheduler/` inside it, or in the
`scheduler/` next to it). A path to one of those files stands for its folder. Links to regular files are followed:
a model in the hub's cache is a folder of links into its blobs.

The layers, each failure one CheckpointError sentence: every JSON file (a regular file, small, parsed), the
pipeline's name, the scheduler settings (models.diffusers_model), the UNet config's sizes against what memory
allows (worked out from the numbers alone, then the network built on the meta device, which allocates nothing),
the weights' safetensors header (checkpoint's checks, reading the header only) against that network's tensors,
then the values. Weights are read from safetensors only; a pickle (`.bin`) is refused, and `import_folder` (the
explicit `python -m models import FOLDER`) writes the safetensors copy beside it, read with
`torch.load(weights_only=True)`.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import checkpoint
from .atomic import atomic_write_path
from .catalog import DECODE, DENOISE, SAMPLE
from .checkpoint import BadConfigError, CheckpointError, NonFiniteError, PickleRefusedError, TensorMismatchError
from .device import as_device
from .diffusers_model import (FAMILY, TITLE, DiffusersConfig, DiffusersDDPM, SchedulerConfigError, make_noise_schedule,
                              scheduler_settings)

PIPELINES = ("DDPMPipeline", "DDIMPipeline")
WEIGHTS = "diffusion_pytorch_model.safetensors"
PICKLED_WEIGHTS = "diffusion_pytorch_model.bin"
MAX_JSON_BYTES = 16 * 2 ** 20            # a UNet or scheduler config is a few KiB; trained_betas tens of KiB
MIN_SIDE, MAX_SIDE = 8, 2048
MAX_LEVELS, MAX_LAYERS, MAX_WIDTH, MAX_CLASSES = 8, 16, 16_384, 1_000_000
MAX_PARAMETER_BYTES = 16 * 2 ** 30        # float32 weights; also never more than half of this machine's memory
MAX_ACTIVATION_BYTES = 8 * 2 ** 30        # one picture's feature maps through the network, float32
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


@dataclass(frozen=True)
class FolderMeta(checkpoint.CheckpointMeta):
    """What a diffusers folder says, checked: a CheckpointMeta (`path` is the folder) whose config is a
    DiffusersConfig, with the UNet's own config and where its weights are."""

    unet_config: dict[str, Any] = field(default_factory=dict, repr=False)
    weights: Path | None = None
    capabilities: frozenset[str] = frozenset({DECODE, SAMPLE, DENOISE})

    @property
    def title(self) -> str:
        return f"{TITLE[:-1]}, {self.config.pipeline})"


# ---------------------------------------------------------------------------------------------------------------
# Where the pieces are

@dataclass(frozen=True)
class Layout:
    folder: Path              # what the user named (the pipeline's folder, or the UNet's)
    unet: Path                # the folder holding config.json and the weights
    scheduler: Path           # the scheduler config file
    pipeline: str             # "DDPMPipeline", "DDIMPipeline", or "UNet2DModel" for a bare UNet
    index: dict[str, Any] = field(default_factory=dict)


def folder_of(path: str | Path) -> Path | None:
    """The diffusers folder `path` names (itself, or the folder of model_index.json, config.json or the weights),
    or None when it names none: a file that is not one of those."""
    path = Path(path)
    path = Path(os.path.abspath(path))
    if path.is_dir():
        return path
    if path.name in ("model_index.json", "config.json", WEIGHTS, PICKLED_WEIGHTS) and path.parent.is_dir():
        if path.name != WEIGHTS or (path.parent / "config.json").exists():
            return path.parent
    return None


def is_diffusers_path(path: str | Path) -> bool:
    """Whether `path` is for this module to open (a folder, or a diffusers folder's own file)."""
    return folder_of(path) is not None


def find_layout(path: str | Path) -> Layout:
    folder = folder_of(path)
    if folder is None:
        raise checkpoint.NotAFileError(f"{path} is not a diffusers folder")
    name = folder.name or str(folder)
    index_file = folder / "model_index.json"
    if index_file.exists():
        index = read_json(index_file, folder)
        pipeline = index.get("_class_name")
        if pipeline not in PIPELINES:
            raise BadConfigError(f"{name}'s model_index.json names the pipeline {_shown(pipeline)}, which Latent "
                                 f"Explorer does not open (it opens {' and '.join(PIPELINES)} folders)")
        for part, wanted in (("unet", "UNet2DModel"), ("scheduler", None)):
            entry = index.get(part)
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry)):
                raise BadConfigError(f"{name}'s model_index.json does not name its {part} as [library, class]")
            if wanted and entry[1] != wanted:
                raise BadConfigError(f"{name}'s model_index.json names a {_shown(entry[1])} as its unet; Latent "
                                     f"Explorer opens a {wanted}")
        return Layout(folder, folder / "unet", folder / "scheduler" / "scheduler_config.json", pipeline, index)
    if (folder / "config.json").exists():
        for candidate in (folder / "scheduler_config.json", folder / "scheduler" / "scheduler_config.json",
                          folder.parent / "scheduler" / "scheduler_config.json"):
            if candidate.exists():
                return Layout(folder, folder, candidate, "UNet2DModel")
        raise BadConfigError(f"{name} holds a network but no scheduler config beside it (scheduler_config.json "
                             "in it, or in a scheduler folder in it or next to it), so its noise schedule is unknown")
    raise checkpoint.NotAFileError(f"{name} is a folder, not a checkpoint file, and no diffusers folder either (it "
                                   "has neither model_index.json nor config.json)")


def _shown(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) and value.isprintable() else repr(value)


def _rel(path: Path, folder: Path) -> str:
    """A file as the user knows it: from the folder they named ('ddpm-cifar10/unet/config.json')."""
    try:
        return str(path.relative_to(folder.parent))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------------------------
# Layer 1: JSON files

def _regular_file(path: Path, folder: Path, what: str) -> os.stat_result:
    """stat() of the regular file at `path`, links followed; a missing file, a folder, a device or a pipe raises."""
    shown = _rel(path, folder)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{folder.name}'s {what} {shown} is missing"
                              + (" (a link to nothing)" if path.is_symlink() else "")) from None
    except OSError as err:
        raise CheckpointError(f"{shown} cannot be read ({err.strerror or err})") from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{shown} is not a regular file" + (" (a link to one that is not)"
                                                                   if path.is_symlink() else ""))
    return st


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, folder: Path, what: str = "config") -> dict[str, Any]:
    """The JSON object in a small regular file (links followed); one sentence for anything else."""
    shown = _rel(path, folder)
    st = _regular_file(path, folder, what)
    if st.st_size > MAX_JSON_BYTES:
        raise BadConfigError(f"{shown} is {st.st_size:,} bytes, too large for a config (at most "
                             f"{MAX_JSON_BYTES // 2 ** 20} MiB)")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except OSError as err:
        raise CheckpointError(f"{shown} cannot be read ({err.strerror or err})") from None
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadConfigError(f"{shown} is not a JSON file (it is not UTF-8 text)") from None
    except ValueError as err:
        raise BadConfigError(f"{shown} is not valid JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise BadConfigError(f"{shown} is not a JSON object")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Layer 2: the UNet config against what memory allows, from its numbers alone

def _int(cfg: dict[str, Any], key: str, where: str, low: int, high: int, default: Any = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadConfigError(f"{where} has no valid '{key}' (an integer), got {_shown(value)}")
    if not low <= value <= high:
        raise BadConfigError(f"{where} has '{key}' {value:,}; Latent Explorer opens {low:,} to {high:,}")
    return value


def _image_shape(cfg: dict[str, Any], where: str) -> tuple[int, int, int]:
    channels = _int(cfg, "in_channels", where, 1, 64, 3)
    out = cfg.get("out_channels", 3)
    if out != channels:
        raise BadConfigError(f"{where} has 'out_channels' {_shown(out)} against 'in_channels' {channels}; Latent "
                             "Explorer opens networks that predict one value per input channel (no learned "
                             "variance)")
    size = cfg.get("sample_size")
    sides = [size, size] if isinstance(size, int) and not isinstance(size, bool) else size
    if not (isinstance(sides, list) and len(sides) == 2 and all(
            isinstance(s, int) and not isinstance(s, bool) for s in sides)):
        raise BadConfigError(f"{where} has no valid 'sample_size' (the picture's side, or [height, width]), got "
                             f"{_shown(size)}")
    h, w = sides
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise BadConfigError(f"{where} asks for {h} x {w} pictures; Latent Explorer opens sides from {MIN_SIDE} "
                             f"to {MAX_SIDE} pixels")
    return channels, h, w


def memory_limit() -> int:
    """Bytes of weights a model may hold: MAX_PARAMETER_BYTES, and at most half this machine's memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return MAX_PARAMETER_BYTES
    return min(MAX_PARAMETER_BYTES, total // 2)


def check_unet_config(cfg: dict[str, Any], where: str) -> tuple[tuple[int, int, int], int]:
    """(image shape, class count) of a UNet2DModel config whose sizes fit in memory; BadConfigError otherwise.
    Worked out from the numbers before anything is built: one picture's feature maps, summed over the levels,
    ~ (2 layers_per_block + 3) * width_i * (H / 2^i) * (W / 2^i) floats."""
    name = cfg.get("_class_name", "UNet2DModel")
    if name != "UNet2DModel":
        raise BadConfigError(f"{where} describes a {_shown(name)}; Latent Explorer opens a UNet2DModel")
    shape = _image_shape(cfg, where)
    widths = cfg.get("block_out_channels", [224, 448, 672, 896])
    if not (isinstance(widths, list) and 1 <= len(widths) <= MAX_LEVELS
            and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c for c in widths)):
        raise BadConfigError(f"{where} has no valid 'block_out_channels' (1 to {MAX_LEVELS} positive integers)")
    if max(widths) > MAX_WIDTH:
        raise BadConfigError(f"{where} asks for {max(widths):,} channels in a block, a network too large for "
                             f"memory (Latent Explorer opens up to {MAX_WIDTH:,})")
    layers = _int(cfg, "layers_per_block", where, 1, MAX_LAYERS, 2)
    for key in ("down_block_types", "up_block_types"):
        kinds = cfg.get(key)
        if kinds is not None and not (isinstance(kinds, list) and len(kinds) == len(widths)):
            raise BadConfigError(f"{where}'s '{key}' must list one block per entry of 'block_out_channels'")
    _, h, w = shape
    if h % 2 ** (len(widths) - 1) or w % 2 ** (len(widths) - 1):
        raise BadConfigError(f"{where} asks for {h} x {w} pictures, which {len(widths)} levels cannot halve "
                             f"{len(widths) - 1} times ('sample_size' against 'block_out_channels')")
    activations = sum((2 * layers + 3) * c * (h >> i) * (w >> i) * 4 for i, c in enumerate(widths))
    if activations > MAX_ACTIVATION_BYTES:
        raise BadConfigError(f"{where} describes a network whose feature maps for one {h} x {w} picture need "
                             f"{activations / 2 ** 30:.1f} GiB, more than Latent Explorer allows "
                             f"({MAX_ACTIVATION_BYTES // 2 ** 30} GiB)")
    classes = cfg.get("num_class_embeds")
    if classes is not None:
        classes = _int(cfg, "num_class_embeds", where, 1, MAX_CLASSES)
        if cfg.get("class_embed_type") is not None:
            raise BadConfigError(f"{where} sets 'class_embed_type' {_shown(cfg.get('class_embed_type'))}; Latent "
                                 "Explorer opens class embeddings looked up by label only")
    elif cfg.get("class_embed_type") is not None:
        raise BadConfigError(f"{where} sets 'class_embed_type' {_shown(cfg.get('class_embed_type'))}, which needs "
                             "inputs Latent Explorer does not give")
    return shape, int(classes or 0)


def expected_tensors(cfg: dict[str, Any], where: str) -> dict[str, tuple[int, ...]]:
    """The UNet's tensor names and shapes, from the network built on the meta device (no memory is allocated);
    refused if its weights would not fit in memory."""
    from .diffusers_model import quiet_diffusers

    quiet_diffusers()
    from diffusers import UNet2DModel

    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            unet = UNet2DModel.from_config(dict(cfg))
    except Exception as err:   # a config diffusers itself cannot build a network from
        raise BadConfigError(f"{where} cannot build a UNet2DModel: {str(err).splitlines()[0] if str(err) else err}") \
            from None
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    nbytes = 4 * sum(math.prod(s) for s in shapes.values())
    limit = memory_limit()
    if nbytes > limit:
        raise BadConfigError(f"{where} describes a network of {nbytes / 4:,.0f} parameters ({nbytes / 2 ** 30:.1f} "
                             f"GiB), more than this machine can hold ({limit / 2 ** 30:.1f} GiB)")
    return shapes


# ---------------------------------------------------------------------------------------------------------------
# Layer 3: the weights' header against the network, then the values

# diffusers renamed its attention layers; folders saved before keep the old names (diffusers maps them on load)
_OLD_ATTENTION = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def current_name(key: str, expected: dict[str, Any]) -> str:
    """A tensor name as today's UNet2DModel calls it (old attention names mapped, where the new one is expected)."""
    for old, new in _OLD_ATTENTION.items():
        if old in key and key.replace(old, new) in expected and key not in expected:
            return key.replace(old, new)
    return key


def check_weights(found: dict[str, tuple[str, tuple[int, ...]]], expected: dict[str, tuple[int, ...]],
                  shown: str) -> None:
    """Names, shapes and dtypes of the weights against the network the config builds."""
    found = {current_name(k, expected): v for k, v in found.items()}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        parts = ([f"missing {checkpoint._few(missing)}"] if missing else []) + \
                ([f"unexpected {checkpoint._few(extra)}"] if extra else [])
        raise TensorMismatchError(f"{shown}'s tensors do not match its config: {'; '.join(parts)}")
    for key, shape in expected.items():
        dtype, got = found[key]
        if tuple(got) != shape:
            raise TensorMismatchError(f"{shown}'s tensor '{key}' has shape {tuple(got)} but its config needs {shape} "
                                      "(the config's channels or sizes disagree with the weights)")
        if dtype not in FLOAT_DTYPES:
            raise TensorMismatchError(f"{shown}'s tensor '{key}' is {dtype}, not floating point")


def _weights_file(layout: Layout) -> Path:
    weights = layout.unet / WEIGHTS
    if weights.exists() or weights.is_symlink():
        return weights
    pickled = layout.unet / PICKLED_WEIGHTS
    if pickled.exists():
        raise PickleRefusedError(f"{_rel(pickled, layout.folder)} is a pickle, which Latent Explorer does not "
                                 "open because unpickling can run any code; if you trust it, `python -m models "
                                 f"import {layout.folder}` writes the safetensors copy beside it (reading it with "
                                 "torch.load(weights_only=True), so nothing in it runs)")
    if (layout.unet / f"{WEIGHTS}.index.json").exists():
        raise CheckpointError(f"{layout.folder.name}'s weights are split into shards, which Latent Explorer does "
                              "not read")
    raise CheckpointError(f"{layout.folder.name} has no weights: {_rel(weights, layout.folder)} is missing")


def _header(path: Path, shown: str) -> tuple[dict[str, checkpoint.TensorInfo], int]:
    """The safetensors header of the weights, read alone (checkpoint's checks); the whole file only where its
    first bytes are no plausible header, so the message can say what it is."""
    head, size = checkpoint._read_head(path)
    if head is None:
        head = checkpoint._read_file(path)
        size = len(head)
    tensors, _ = checkpoint._parse_header(path, head, size)
    return tensors, size


# ---------------------------------------------------------------------------------------------------------------
# Opening

def read_metadata(path: str | Path, network: bool = True) -> FolderMeta:
    """Check a diffusers folder's configs and its weights' header against the network they describe (no tensor is
    read) and say what it is; one CheckpointError for anything that would not open. network=False leaves out
    the network (built on the meta device, which imports diffusers): a quick look for a list of models."""
    layout = find_layout(path)
    folder = layout.folder
    unet_where = _rel(layout.unet / "config.json", folder)
    unet_cfg = read_json(layout.unet / "config.json", folder)
    sched_cfg = read_json(layout.scheduler, folder, "scheduler config")
    try:
        settings = scheduler_settings(sched_cfg, _rel(layout.scheduler, folder))
    except SchedulerConfigError as err:
        raise BadConfigError(str(err)) from None
    shape, classes = check_unet_config(unet_cfg, unet_where)
    expected = expected_tensors(unet_cfg, unet_where) if network else None
    weights = _weights_file(layout)
    shown = _rel(weights, folder)
    _regular_file(weights, folder, "weights")
    tensors, size = _header(weights, shown)
    if expected is not None:
        check_weights({k: (t.dtype, t.shape) for k, t in tensors.items()}, expected, shown)
    config = DiffusersConfig(image_shape=shape, num_classes=classes, pipeline=layout.pipeline,
                             decode_steps=min(DiffusersConfig.decode_steps, settings["timesteps"]), **settings)
    try:
        make_noise_schedule(config, _rel(layout.scheduler, folder))
    except SchedulerConfigError as err:
        raise BadConfigError(str(err)) from None
    raw = {"model_index": layout.index, "unet": unet_cfg, "scheduler": sched_cfg}
    return FolderMeta(path=folder, format_version=0, family=FAMILY, config=config, image_shape=shape, dataset="",
                      train_steps=0, metrics={}, training={"opened_from": layout.pipeline}, tensors=tensors,
                      file_bytes=size, raw=raw, unet_config=unet_cfg, weights=weights)


def load(path: str | Path, device: torch.device | str | None = None) -> DiffusersDDPM:
    """A diffusers folder as a ready DiffusersDDPM in eval mode on `device`, or one CheckpointError."""
    meta = read_metadata(path)
    shown = _rel(meta.weights, meta.path)
    data = checkpoint._read_file(meta.weights)
    infos, _ = checkpoint._parse_header(meta.weights, data)          # again: the file may have changed meanwhile
    expected = {k: tuple(v.shape) for k, v in meta.tensors.items()}
    if {k: (v.dtype, v.shape) for k, v in infos.items()} != {k: (v.dtype, v.shape) for k, v in meta.tensors.items()}:
        raise CheckpointError(f"{shown} changed while it was being opened; open it again")
    state = checkpoint._decode_tensors(meta.weights, data)
    del data
    return build(meta, state, expected, device)


def build(meta: FolderMeta, state: dict[str, Tensor], expected: Any, device: torch.device | str | None):
    shown = _rel(meta.weights, meta.path) if meta.weights else meta.path.name
    bad = checkpoint._first_non_finite(state)
    if bad is not None:
        raise NonFiniteError(f"{shown}'s tensor '{bad}' holds NaN or Inf values, so the model cannot be used")
    with torch.random.fork_rng(devices=[]):
        model = DiffusersDDPM(meta.config, meta.unet_config)
    names = model.unet.state_dict()
    model.unet.load_state_dict({current_name(k, names): v.to(torch.float32) for k, v in state.items()}, strict=True)
    return model.to(as_device(device)).eval()


# ---------------------------------------------------------------------------------------------------------------
# The explicit import of pickled weights

def import_folder(path: str | Path) -> Path:
    """Write `unet/diffusion_pytorch_model.safetensors` beside a folder's pickled `.bin` weights, read with
    `torch.load(weights_only=True)` (nothing in the pickle runs), checked against the config (names, shapes,
    finite values) first; returns the file written. The folder then opens as any other."""
    layout = find_layout(path)
    folder = layout.folder
    pickled = layout.unet / PICKLED_WEIGHTS
    target = layout.unet / WEIGHTS
    if target.exists():
        raise CheckpointError(f"{_rel(target, folder)} already exists; {folder.name} opens as it is")
    if not pickled.exists():
        raise CheckpointError(f"{folder.name} has no {_rel(pickled, folder)} to import")
    unet_where = _rel(layout.unet / "config.json", folder)
    unet_cfg = read_json(layout.unet / "config.json", folder)
    check_unet_config(unet_cfg, unet_where)
    expected = expected_tensors(unet_cfg, unet_where)
    _regular_file(pickled, folder, "weights")
    data = checkpoint._read_file(pickled)
    obj = checkpoint._torch_load_weights_only(pickled, data)
    state = checkpoint._unwrap_state_dict(pickled, obj)
    shown = _rel(pickled, folder)
    check_weights({k: (checkpoint._dtype_name(v.dtype), tuple(v.shape)) for k, v in state.items()}, expected,
                  shown)
    bad = checkpoint._first_non_finite(state)
    if bad is not None:
        raise NonFiniteError(f"{shown}'s tensor '{bad}' holds NaN or Inf values, so it was not imported")
    from safetensors.torch import save_file

    tensors = {current_name(k, expected): v.contiguous().clone() for k, v in state.items()}
    with atomic_write_path(target) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return target


__all__ = ["FolderMeta", "find_layout", "folder_of", "import_folder",
           "is_diffusers_path", "load", "read_metadata"]
