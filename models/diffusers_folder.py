"""Folders saved by diffusers: where their pieces are and what their configs say, checked before anything is built.

Two layouts open: a pipeline (`model_index.json` naming DDPMPipeline or DDIMPipeline, `unet/config.json`,
`unet/diffusion_pytorch_model.safetensors`, `scheduler/scheduler_config.json`), and a bare UNet2DModel folder
(`config.json` and the weights) with a scheduler config beside it (in it, in `scheduler/` inside it, or in the
`scheduler/` next to it). A path to one of those files stands for its folder. Links to regular files are followed:
a model in the hub's cache is a folder of links into its blobs.

The checks here, each failure one FolderError sentence: every JSON file (a regular file, small, parsed), the
pipeline's name, the scheduler settings (models.diffusers_model), the UNet config's block names, and its sizes
(feature maps and attention) against what memory allows (worked out from the numbers alone, then the network
built on the meta device, which allocates nothing), and the weights' tensor names and shapes against that
network. models.checkpoint reads the weights' safetensors header and values with its own layered checks and turns
a FolderError into its typed CheckpointError, so a folder opens wherever a checkpoint does. Weights are read from
safetensors only: a pickle (`.bin`) is refused, with the hint that `python -m models import FOLDER` writes the
safetensors copy beside it.
"""
from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .core import few_names
from .device import as_device
from .diffusers_model import (DECODE_STEPS, DiffusersConfig, DiffusersDDPM, SchedulerConfigError,
                              fit_steps, make_noise_schedule, scheduler_settings)

PIPELINES = ("DDPMPipeline", "DDIMPipeline")
WEIGHTS = "diffusion_pytorch_model.safetensors"
PICKLED_WEIGHTS = "diffusion_pytorch_model.bin"
MAX_JSON_BYTES = 16 * 2 ** 20            # a UNet or scheduler config is a few KiB; trained_betas tens of KiB
MIN_SIDE, MAX_SIDE = 8, 2048
MAX_LEVELS, MAX_LAYERS, MAX_WIDTH, MAX_CLASSES = 8, 16, 16_384, 1_000_000
MAX_PARAMETER_BYTES = 16 * 2 ** 30        # float32 weights; also never more than half of this machine's memory
MAX_ACTIVATION_BYTES = 8 * 2 ** 30        # one picture's feature maps through the network, float32
MAX_ATTENTION_BYTES = MAX_ACTIVATION_BYTES  # one attention layer's scores for one picture, float32
# The blocks a UNet2DModel runs (its forward gives each a time embedding and no text): `get_down_block` and
# `get_up_block` build others too (cross-attention, encoder, Kandinsky blocks), which fail only when called.
DOWN_BLOCKS = ("DownBlock2D", "ResnetDownsampleBlock2D", "AttnDownBlock2D", "SkipDownBlock2D", "AttnSkipDownBlock2D")
UP_BLOCKS = ("UpBlock2D", "ResnetUpsampleBlock2D", "AttnUpBlock2D", "SkipUpBlock2D", "AttnSkipUpBlock2D")
MID_BLOCKS = ("UNetMidBlock2D",)          # or null: no middle block; UNet2DModel builds this one for any name
DEFAULT_DOWN = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D")
DEFAULT_UP = ("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D")
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


class FolderError(ValueError):
    """A folder that would not open; str(err) is one sentence. `kind` names what went wrong, as CheckpointError's
    kinds do ("not-a-file", "bad-config", "tensor-mismatch", "pickle-refused"), for models.checkpoint to map."""

    def __init__(self, message: str, kind: str = "bad-config") -> None:
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------------------------------------------------------
# Where the pieces are

@dataclass(frozen=True)
class Layout:
    """Where a folder's pieces are, found before any of them is read."""

    folder: Path              # what the user named (the pipeline's folder, or the UNet's)
    unet: Path                # the folder holding config.json and the weights
    scheduler: Path           # the scheduler config file
    pipeline: str             # "DDPMPipeline", "DDIMPipeline", or "UNet2DModel" for a bare UNet
    index: dict[str, Any] = field(default_factory=dict)


def folder_of(path: str | Path) -> Path | None:
    """The diffusers folder `path` names (itself, or the folder of model_index.json, config.json or the weights),
    or None when it names none: a file that is not one of those."""
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
    """Where the pieces of the folder `path` names are, from its file names and model_index.json alone (a
    pipeline's name and parts checked here, so a folder of another kind is refused before any config is read)."""
    folder = folder_of(path)
    if folder is None:
        raise FolderError(f"{path} is not a diffusers folder", "not-a-file")
    name = folder.name or str(folder)
    index_file = folder / "model_index.json"
    if index_file.exists():
        index = read_json(index_file, folder)
        pipeline = index.get("_class_name")
        if pipeline not in PIPELINES:
            raise FolderError(f"{name}'s model_index.json names the pipeline {_shown(pipeline)}, which Latent "
                              f"Explorer does not open (it opens {' and '.join(PIPELINES)} folders)")
        for part, wanted in (("unet", "UNet2DModel"), ("scheduler", None)):
            entry = index.get(part)
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry)):
                raise FolderError(f"{name}'s model_index.json does not name its {part} as [library, class]")
            if wanted and entry[1] != wanted:
                raise FolderError(f"{name}'s model_index.json names a {_shown(entry[1])} as its unet; Latent "
                                  f"Explorer opens a {wanted}")
        return Layout(folder, folder / "unet", folder / "scheduler" / "scheduler_config.json", pipeline, index)
    if (folder / "config.json").exists():
        for candidate in (folder / "scheduler_config.json", folder / "scheduler" / "scheduler_config.json",
                          folder.parent / "scheduler" / "scheduler_config.json"):
            if candidate.exists():
                return Layout(folder, folder, candidate, "UNet2DModel")
        raise FolderError(f"{name} holds a network but no scheduler config beside it (scheduler_config.json "
                          "in it, or in a scheduler folder in it or next to it), so its noise schedule is unknown")
    raise FolderError(f"{name} is a folder, not a checkpoint file, and no diffusers folder either (it has neither "
                      "model_index.json nor config.json)", "not-a-file")


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
        link = " (a link to nothing)" if path.is_symlink() else ""
        raise FolderError(f"{folder.name}'s {what} {shown} is missing{link}", "not-a-file") from None
    except OSError as err:
        raise FolderError(f"{shown} cannot be read ({err.strerror or err})", "not-a-file") from None
    if not stat.S_ISREG(st.st_mode):
        link = " (a link to one that is not)" if path.is_symlink() else ""
        raise FolderError(f"{shown} is not a regular file{link}", "not-a-file")
    return st


def _infinities_only(name: str) -> float:
    """JSON has no NaN or infinities, but Python's json writes them; diffusers saves lambda_min_clipped = -inf
    as -Infinity, so the infinities are read (each setting then checks its own range) and NaN is refused."""
    if name == "NaN":
        raise ValueError(f"{name} is not a number JSON allows")
    return float(name)


def read_json(path: Path, folder: Path, what: str = "config") -> dict[str, Any]:
    """The JSON object in a small regular file (links followed); one sentence for anything else."""
    shown = _rel(path, folder)
    st = _regular_file(path, folder, what)
    if st.st_size > MAX_JSON_BYTES:
        raise FolderError(f"{shown} is {st.st_size:,} bytes, too large for a config (at most "
                          f"{MAX_JSON_BYTES // 2 ** 20} MiB)")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except OSError as err:
        raise FolderError(f"{shown} cannot be read ({err.strerror or err})") from None
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_infinities_only)
    except UnicodeDecodeError:
        raise FolderError(f"{shown} is not a JSON file (it is not UTF-8 text)") from None
    except ValueError as err:
        raise FolderError(f"{shown} is not valid JSON ({str(err).splitlines()[0]})") from None
    except RecursionError:     # json's decoder recurses once per nested list or object
        raise FolderError(f"{shown} nests its values too deeply to be a config") from None
    if not isinstance(value, dict):
        raise FolderError(f"{shown} is not a JSON object")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Layer 2: the UNet config against what memory allows, from its numbers alone

def _int(cfg: dict[str, Any], key: str, where: str, low: int, high: int, default: Any = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FolderError(f"{where} has no valid '{key}' (an integer), got {_shown(value)}")
    if not low <= value <= high:
        raise FolderError(f"{where} has '{key}' {value:,}; Latent Explorer opens {low:,} to {high:,}")
    return value


def _image_shape(cfg: dict[str, Any], where: str) -> tuple[int, int, int]:
    channels = _int(cfg, "in_channels", where, 1, 64, 3)
    out = cfg.get("out_channels", 3)
    if out != channels:
        raise FolderError(f"{where} has 'out_channels' {_shown(out)} against 'in_channels' {channels}; Latent "
                          "Explorer opens networks that predict one value per input channel (no learned "
                          "variance)")
    size = cfg.get("sample_size")
    sides = [size, size] if isinstance(size, int) and not isinstance(size, bool) else size
    if not (isinstance(sides, list) and len(sides) == 2 and all(
            isinstance(s, int) and not isinstance(s, bool) for s in sides)):
        raise FolderError(f"{where} has no valid 'sample_size' (the picture's side, or [height, width]), got "
                          f"{_shown(size)}")
    h, w = sides
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise FolderError(f"{where} asks for {h} x {w} pictures; Latent Explorer opens sides from {MIN_SIDE} "
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
    """(image shape, class count) of a UNet2DModel config whose sizes fit in memory; FolderError otherwise.
    Worked out from the numbers before anything is built: one picture's feature maps, summed over the levels,
    ~ (2 layers_per_block + 3) * width_i * (H / 2^i) * (W / 2^i) floats."""
    name = cfg.get("_class_name", "UNet2DModel")
    if name != "UNet2DModel":
        raise FolderError(f"{where} describes a {_shown(name)}; Latent Explorer opens a UNet2DModel")
    shape = _image_shape(cfg, where)
    widths = cfg.get("block_out_channels", [224, 448, 672, 896])
    if not (isinstance(widths, list) and 1 <= len(widths) <= MAX_LEVELS
            and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c for c in widths)):
        raise FolderError(f"{where} has no valid 'block_out_channels' (1 to {MAX_LEVELS} positive integers)")
    if max(widths) > MAX_WIDTH:
        raise FolderError(f"{where} asks for {max(widths):,} channels in a block, a network too large for "
                          f"memory (Latent Explorer opens up to {MAX_WIDTH:,})")
    layers = _int(cfg, "layers_per_block", where, 1, MAX_LAYERS, 2)
    down, up, mid = _block_types(cfg, where, len(widths))
    _, h, w = shape
    if h % 2 ** (len(widths) - 1) or w % 2 ** (len(widths) - 1):
        raise FolderError(f"{where} asks for {h} x {w} pictures, which {len(widths)} levels cannot halve "
                          f"{len(widths) - 1} times ('sample_size' against 'block_out_channels')")
    activations = sum((2 * layers + 3) * c * (h >> i) * (w >> i) * 4 for i, c in enumerate(widths))
    if activations > MAX_ACTIVATION_BYTES:
        raise FolderError(f"{where} describes a network whose feature maps for one {h} x {w} picture need "
                          f"{activations / 2 ** 30:.1f} GiB, more than Latent Explorer allows "
                          f"({MAX_ACTIVATION_BYTES // 2 ** 30} GiB)")
    _check_attention(cfg, where, widths, (h, w), down, up, mid)
    classes = cfg.get("num_class_embeds")
    if classes is not None:
        classes = _int(cfg, "num_class_embeds", where, 1, MAX_CLASSES)
        if cfg.get("class_embed_type") is not None:
            raise FolderError(f"{where} sets 'class_embed_type' {_shown(cfg.get('class_embed_type'))}; Latent "
                              "Explorer opens class embeddings looked up by label only")
    elif cfg.get("class_embed_type") is not None:
        raise FolderError(f"{where} sets 'class_embed_type' {_shown(cfg.get('class_embed_type'))}, which needs "
                          "inputs Latent Explorer does not give")
    return shape, int(classes or 0)


def _block_types(cfg: dict[str, Any], where: str, levels: int) -> tuple[list[str], list[str], str | None]:
    """(down, up, mid) block names, each one a UNet2DModel runs, refused before diffusers builds anything: it
    builds a middle block whatever the name, and some blocks it builds fail only when the network is called."""
    found = []
    for key, known, default in (("down_block_types", DOWN_BLOCKS, DEFAULT_DOWN),
                                ("up_block_types", UP_BLOCKS, DEFAULT_UP)):
        kinds = cfg.get(key, list(default))
        if not (isinstance(kinds, list) and len(kinds) == levels):
            raise FolderError(f"{where}'s '{key}' must list one block per entry of 'block_out_channels'")
        for kind in kinds:
            if _unprefixed(kind) not in known:
                raise FolderError(f"{where}'s '{key}' names the block {_shown(kind)}, which Latent Explorer does "
                                  f"not run (it runs {few_names(known, len(known))})")
        found.append([_unprefixed(k) for k in kinds])
    mid = cfg.get("mid_block_type", MID_BLOCKS[0])
    if mid is not None and mid not in MID_BLOCKS:
        raise FolderError(f"{where}'s 'mid_block_type' names the block {_shown(mid)}, which Latent Explorer does "
                          f"not run (it runs {few_names(MID_BLOCKS)} or null)")
    return found[0], found[1], mid


def _unprefixed(kind: Any) -> Any:
    """A block's name as diffusers looks it up ('UNetResDownBlock2D' is 'DownBlock2D')."""
    return kind[len("UNetRes"):] if isinstance(kind, str) and kind.startswith("UNetRes") else kind


def _check_attention(cfg: dict[str, Any], where: str, widths: list[int], size: tuple[int, int],
                     down: list[str], up: list[str], mid: str | None) -> None:
    """Refuse attention too large for memory: a layer at h x w compares every position with every other, so its
    scores and their softmax hold 2 * heads * (h w)^2 floats for one picture, heads = width // attention_head_dim
    (one head where that is null). Only the largest layer counts: they run one after another."""
    head = cfg.get("attention_head_dim", 8)
    if head is not None:
        head = _int(cfg, "attention_head_dim", where, 1, MAX_WIDTH)
    levels = [i for i, kind in enumerate(down) if kind.startswith("Attn")]
    levels += [len(widths) - 1 - j for j, kind in enumerate(up) if kind.startswith("Attn")]
    if mid is not None and cfg.get("add_attention", True) is not False:
        levels.append(len(widths) - 1)
    if not levels:
        return
    h, w = size
    nbytes, level = max((2 * max(1, widths[i] // (head or widths[i])) * ((h >> i) * (w >> i)) ** 2 * 4, i)
                        for i in levels)
    if nbytes > MAX_ATTENTION_BYTES:
        raise FolderError(f"{where} describes a network whose attention at {h >> level} x {w >> level} needs "
                          f"{nbytes / 2 ** 30:,.1f} GiB for one picture, more than Latent Explorer allows "
                          f"({MAX_ATTENTION_BYTES // 2 ** 30} GiB); attention costs the square of the positions "
                          "it compares")


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
        raise FolderError(f"{where} cannot build a UNet2DModel: {str(err).splitlines()[0] if str(err) else err}") \
            from None
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    nbytes = 4 * sum(math.prod(s) for s in shapes.values())
    limit = memory_limit()
    if nbytes > limit:
        raise FolderError(f"{where} describes a network of {nbytes / 4:,.0f} parameters ({nbytes / 2 ** 30:.1f} "
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
        parts = [f"{word} {few_names(names)}" for word, names in (("missing", missing), ("unexpected", extra))
                 if names]
        raise FolderError(f"{shown}'s tensors do not match its config: {'; '.join(parts)}", "tensor-mismatch")
    for key, shape in expected.items():
        dtype, got = found[key]
        if tuple(got) != shape:
            raise FolderError(f"{shown}'s tensor '{key}' has shape {tuple(got)} but its config needs {shape} (the "
                              "config's channels or sizes disagree with the weights)", "tensor-mismatch")
        if dtype not in FLOAT_DTYPES:
            raise FolderError(f"{shown}'s tensor '{key}' is {dtype}, not floating point", "tensor-mismatch")


def weights_file(layout: Layout) -> Path:
    """The folder's safetensors weights; a pickle alone is refused with the way to import it."""
    weights = layout.unet / WEIGHTS
    if weights.exists() or weights.is_symlink():
        _regular_file(weights, layout.folder, "weights")
        return weights
    pickled = layout.unet / PICKLED_WEIGHTS
    if pickled.exists():
        raise FolderError(f"{_rel(pickled, layout.folder)} is a pickle, which Latent Explorer does not open because "
                          f"unpickling can run any code; if you trust it, `python -m models import {layout.folder}` "
                          "writes the safetensors copy beside it (reading it with torch.load(weights_only=True), so "
                          "nothing in it runs)", "pickle-refused")
    if (layout.unet / f"{WEIGHTS}.index.json").exists():
        raise FolderError(f"{layout.folder.name}'s weights are split into shards, which Latent Explorer does not "
                          "read")
    raise FolderError(f"{layout.folder.name} has no weights: {_rel(weights, layout.folder)} is missing",
                      "not-a-file")


# ---------------------------------------------------------------------------------------------------------------
# The whole folder

@dataclass(frozen=True)
class FolderSpec:
    """A folder's configs, checked: what its model is, and the tensors its weights must hold."""

    layout: Layout
    config: DiffusersConfig
    unet_config: dict[str, Any] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)
    weights: Path
    expected: dict[str, tuple[int, ...]] | None = field(repr=False)    # None: not worked out (network=False)

    def shown(self, path: Path) -> str:
        return _rel(path, self.layout.folder)


def read_folder(path: str | Path, network: bool = True) -> FolderSpec:
    """Check a folder's layout, configs and sizes, and find its weights (not read here); FolderError otherwise.
    network=False leaves out the network built on the meta device (which imports diffusers): a quick look."""
    layout = find_layout(path)
    folder = layout.folder
    unet_where = _rel(layout.unet / "config.json", folder)
    unet_cfg = read_json(layout.unet / "config.json", folder)
    sched_where = _rel(layout.scheduler, folder)
    sched_cfg = read_json(layout.scheduler, folder, "scheduler config")
    try:
        settings = scheduler_settings(sched_cfg, sched_where)
    except SchedulerConfigError as err:
        raise FolderError(str(err)) from None
    shape, classes = check_unet_config(unet_cfg, unet_where)
    config = DiffusersConfig(image_shape=shape, num_classes=classes, pipeline=layout.pipeline, **settings)
    config = replace(config, decode_steps=fit_steps(config, DECODE_STEPS))
    try:
        make_noise_schedule(config, sched_where)
    except SchedulerConfigError as err:
        raise FolderError(str(err)) from None
    expected = expected_tensors(unet_cfg, unet_where) if network else None
    weights = weights_file(layout)
    raw = {"model_index": layout.index, "unet": unet_cfg, "scheduler": sched_cfg}
    return FolderSpec(layout, config, unet_cfg, raw, weights, expected)


def build(spec: FolderSpec, state: dict[str, Tensor], device: torch.device | str | None = None) -> DiffusersDDPM:
    """The folder's model holding `state` (checked against spec.expected already), in eval mode on `device`."""
    with torch.random.fork_rng(devices=[]):
        model = DiffusersDDPM(spec.config, spec.unet_config)
    names = model.unet.state_dict()
    model.unet.load_state_dict({current_name(k, names): v.to(torch.float32) for k, v in state.items()}, strict=True)
    return model.to(as_device(device)).eval()


def pickled_weights(path: str | Path) -> tuple[Layout, Path, Path]:
    """For `python -m models import FOLDER`: (the layout, its pickled weights, the safetensors file to write)."""
    layout = find_layout(path)
    pickled, target = layout.unet / PICKLED_WEIGHTS, layout.unet / WEIGHTS
    if target.exists():
        raise FolderError(f"{_rel(target, layout.folder)} already exists; {layout.folder.name} opens as it is")
    if not pickled.exists():
        raise FolderError(f"{layout.folder.name} has no {_rel(pickled, layout.folder)} to import", "not-a-file")
    _regular_file(pickled, layout.folder, "weights")
    return layout, pickled, target


def unet_tensors(layout: Layout) -> dict[str, tuple[int, ...]]:
    """The tensors the folder's UNet config builds (its sizes checked first)."""
    where = _rel(layout.unet / "config.json", layout.folder)
    cfg = read_json(layout.unet / "config.json", layout.folder)
    check_unet_config(cfg, where)
    return expected_tensors(cfg, where)


__all__ = ["FolderError", "FolderSpec", "Layout", "build", "check_weights", "current_name", "find_layout",
           "folder_of", "is_diffusers_path", "pickled_weights", "read_folder", "unet_tensors", "weights_file"]
