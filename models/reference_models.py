"""The field's two reference models, recognised by their tensors: pytorch/examples' VAE (`vae/main.py`) and its
DCGAN (`dcgan/main.py`), read as a Latent Explorer VAE and GAN.

A state dict holds names and shapes, no code and no config; they are enough to tell the models apart and to read
every size off them: the VAE's picture, hidden width and latent; the DCGAN's nz, ngf, nc (and the discriminator's
ndf). A reading maps the tensors onto one of our families by a key map, and `checkpoint.model_from_state_dict`
then checks them name by name and shape by shape against the model the config builds, the door every import
goes through. What does not fit either model is refused in one sentence that says what was expected.

    pytorch/examples VAE          fc1 (P -> h), fc21 and fc22 (h -> d), fc3 (d -> h), fc4 (h -> P)
      as our dense VAE            encoder.1 = fc1, encoder.3 = [fc21; fc22] (mu, then log-variance),
                                  decoder.0 = fc3, decoder.2 = fc4; hidden (h,), sigmoid out
    DCGAN generator netG          main.0 ... main.3k (ConvTranspose2d, BatchNorm2d, ReLU; tanh out)
      as our GAN, arch "dcgan"    G.main.N = main.N; decode(z) = (netG(z.view(n, nz, 1, 1)) + 1) / 2
    DCGAN discriminator netD      main.0 ... main.3k-1 (Conv2d, BatchNorm2d, LeakyReLU; sigmoid out)
      as that GAN's detective     D.main.N = main.N; critic(x) = netD(2 x - 1)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .checkpoint import TensorMismatchError
from .core import few_names
from .diffusers_folder import MAX_ACTIVATION_BYTES, MAX_SIDE
from .gan import GANConfig
from .vae import VAEConfig

EXAMPLES_VAE = "pytorch/examples' VAE (vae/main.py)"
EXAMPLES_GENERATOR = "pytorch/examples' DCGAN generator (dcgan/main.py, netG)"
EXAMPLES_DISCRIMINATOR = "pytorch/examples' DCGAN discriminator (dcgan/main.py, netD)"
EXPECTED = ("pytorch/examples' VAE (fc1, fc21, fc22, fc3, fc4) or DCGAN generator (main.0 ... main.12, "
            "ConvTranspose2d and BatchNorm2d)")
VAE_LAYERS = ("fc1", "fc21", "fc22", "fc3", "fc4")
BATCHNORM = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class UnknownModelError(TensorMismatchError):
    """A state dict that is none of the models this module reads."""

    kind = "unknown-model"


@dataclass(frozen=True)
class Reading:
    """A foreign state dict read as one of our models: what it was, the family and config it becomes, its
    tensors under that family's names, and the data set it was most likely trained on."""

    what: str
    family: str
    config: Any
    state: dict[str, Tensor]
    dataset: str


def read_as(path: str | Path, state: dict[str, Tensor], family: str | None = None) -> Reading | None:
    """How `python -m models import` reads a state dict: with no family, as the reference model it is (else
    UnknownModelError); with `family`, as that reference model when it is one of that family, else None: the
    family's own tensor names, which `--family` forces."""
    if family is None:
        return recognise(path, state)
    try:
        reading = recognise(path, state)
    except UnknownModelError:
        return None
    return reading if reading.family == family else None


def recognise(path: str | Path, state: dict[str, Tensor]) -> Reading:
    """The reading of a state dict from `path` (for the messages), or UnknownModelError naming what was expected.
    A discriminator alone is refused with the way to bring it in (beside its generator)."""
    path = Path(path)
    state = _without_wrapper(state)
    reading = examples_vae(path, state) or examples_generator(path, state)
    if reading is not None:
        return replace(reading, state=_float32(path, reading.what, reading.state))
    if examples_discriminator(path, state) is not None:
        raise UnknownModelError(f"{path.name} is {EXAMPLES_DISCRIMINATOR}, which judges pictures but draws none: "
                                f"import its generator (netG_epoch_N.pth) and add this file with --critic {path}")
    raise UnknownModelError(f"{path.name}'s tensors ({few_names(sorted(state))}) match no model Latent Explorer knows: "
                            f"expected {EXPECTED}, or one of its own families' named with --family")


def with_critic(reading: Reading, path: str | Path, state: dict[str, Tensor]) -> Reading:
    """The DCGAN generator's reading with its discriminator from `path` joined as the detective D."""
    path = Path(path)
    if reading.family != "gan" or reading.config.arch != "dcgan":
        raise UnknownModelError(f"--critic joins a discriminator to a DCGAN generator, and the model imported is "
                                f"{reading.what}")
    state = _without_wrapper(state)
    channels = examples_discriminator(path, state)
    if channels is None:
        raise UnknownModelError(f"{path.name}'s tensors ({few_names(sorted(state))}) are not {EXAMPLES_DISCRIMINATOR}, "
                                "which --critic expects (main.0 ... main.11, Conv2d and BatchNorm2d)")
    c, h, _ = reading.config.image_shape
    colours, side = state["main.0.weight"].shape[1], 4 << len(channels)
    _check_size(path, EXAMPLES_DISCRIMINATOR, side, [(w, side >> (j + 1)) for j, w in enumerate(channels)])
    if colours != c or side != h:
        raise UnknownModelError(f"{path.name} judges {colours}-channel {side}x{side} pictures, but the generator "
                                f"draws {c}-channel {h}x{h} ones")
    config = replace(reading.config, detective=True, d_channels=channels)
    tensors = {**reading.state, **_float32(path, EXAMPLES_DISCRIMINATOR, {f"D.{k}": v for k, v in state.items()})}
    return replace(reading, config=config, state=tensors, what=f"{reading.what} with its discriminator")


# ---------------------------------------------------------------------------------------------------------------
# pytorch/examples vae/main.py

def examples_vae(path: Path, state: dict[str, Tensor]) -> Reading | None:
    """fc1 (h, P), fc21 and fc22 (d, h), fc3 (h, d), fc4 (P, h) with their biases; None for other names."""
    if set(state) != {f"{layer}.{p}" for layer in VAE_LAYERS for p in ("weight", "bias")}:
        return None
    weight = state["fc1.weight"]
    if weight.ndim != 2:
        _refuse(path, EXAMPLES_VAE, "fc1.weight", tuple(weight.shape), "(hidden, pixels)")
    h, pixels = weight.shape
    d = state["fc21.weight"].shape[0] if state["fc21.weight"].ndim == 2 else 0
    for key, shape in {"fc1.bias": (h,), "fc21.weight": (d, h), "fc21.bias": (d,), "fc22.weight": (d, h),
                       "fc22.bias": (d,), "fc3.weight": (h, d), "fc3.bias": (h,), "fc4.weight": (pixels, h),
                       "fc4.bias": (pixels,)}.items():
        if tuple(state[key].shape) != shape or d < 1:
            _refuse(path, EXAMPLES_VAE, key, tuple(state[key].shape), str(shape))
    image_shape = picture_of(pixels)
    if image_shape is None:
        raise UnknownModelError(f"{path.name} is {EXAMPLES_VAE} on {pixels}-pixel pictures, which is no square "
                                "grey or colour picture")
    config = VAEConfig(latent_dim=d, arch="dense", hidden=(h,), image_shape=image_shape)
    tensors = {
        "encoder.1.weight": state["fc1.weight"], "encoder.1.bias": state["fc1.bias"],
        # one (2d, h) layer whose output chunks into mu and log-variance, as fc21 and fc22 give them
        "encoder.3.weight": torch.cat([state["fc21.weight"], state["fc22.weight"]]),
        "encoder.3.bias": torch.cat([state["fc21.bias"], state["fc22.bias"]]),
        "decoder.0.weight": state["fc3.weight"], "decoder.0.bias": state["fc3.bias"],
        "decoder.2.weight": state["fc4.weight"], "decoder.2.bias": state["fc4.bias"],
    }
    return Reading(EXAMPLES_VAE, "vae", config, tensors, "mnist" if image_shape[0] == 1 else "cifar10")


def picture_of(pixels: int) -> tuple[int, int, int] | None:
    """(C, S, S) of a flattened square picture: grey where `pixels` is a square, else colour; None for neither."""
    for c in (1, 3):
        side = math.isqrt(pixels // c)
        if pixels % c == 0 and side * side * c == pixels and side > 0:
            return (c, side, side)
    return None


# ---------------------------------------------------------------------------------------------------------------
# pytorch/examples dcgan/main.py

def examples_generator(path: Path, state: dict[str, Tensor]) -> Reading | None:
    """netG's tensors: k + 1 transposed 4x4 convolutions at main.0, main.3, ..., main.3k, a BatchNorm after each
    but the last; nz, the widths and nc come from their shapes. None for other names."""
    last = _last_layer(state)
    k = last // 3
    if last % 3 != 0 or k < 1 or set(state) != _dcgan_names(convs=[3 * i for i in range(k + 1)],
                                               norms=[3 * i + 1 for i in range(k)]):
        return None
    widths = [_conv(path, state, 0, EXAMPLES_GENERATOR)[0]]             # nz, then each stage's width
    for i in range(k + 1):
        c_in, c_out = _conv(path, state, 3 * i, EXAMPLES_GENERATOR)
        if c_in != widths[-1]:
            _refuse(path, EXAMPLES_GENERATOR, f"main.{3 * i}.weight", tuple(state[f"main.{3 * i}.weight"].shape),
                    f"({widths[-1]}, ..., 4, 4) after the previous layer's {widths[-1]} channels")
        if i < k:
            _norm(path, state, 3 * i + 1, c_out, EXAMPLES_GENERATOR)
        widths.append(c_out)
    nz, *stages, nc = widths
    side = 4 << k
    _check_size(path, EXAMPLES_GENERATOR, side, [(c, 4 << i) for i, c in enumerate(widths[1:])])
    config = GANConfig(latent_dim=nz, channels=tuple(reversed(stages)), image_shape=(nc, side, side),
                       arch="dcgan", detective=False)
    tensors = {f"G.{key}": value for key, value in state.items()}
    return Reading(EXAMPLES_GENERATOR, "gan", config, tensors, "cifar10" if nc == 3 else "mnist")


def examples_discriminator(path: Path, state: dict[str, Tensor]) -> tuple[int, ...] | None:
    """netD's widths (ndf, 2 ndf, ...) from its tensors: 4x4 convolutions at main.0, main.2, main.5, ...,
    main.3k-1 (the last to one logit), a BatchNorm after each inner one; None for other names."""
    last = _last_layer(state)
    k = (last + 1) // 3
    if last % 3 != 2 or k < 1:
        return None
    convs = [0, *(3 * j - 1 for j in range(1, k + 1))]                    # the last, main.3k-1, to one logit
    if set(state) != _dcgan_names(convs=convs, norms=[3 * j for j in range(1, k)]):
        return None
    widths = [_conv(path, state, 0, EXAMPLES_DISCRIMINATOR, transposed=False)[0]]   # nc, then each stage's width
    for j, index in enumerate(convs):
        c_in, c_out = _conv(path, state, index, EXAMPLES_DISCRIMINATOR, transposed=False)
        if c_in != widths[-1] or (index == convs[-1] and c_out != 1):
            _refuse(path, EXAMPLES_DISCRIMINATOR, f"main.{index}.weight", tuple(state[f"main.{index}.weight"].shape),
                    f"({1 if index == convs[-1] else 'width'}, {widths[-1]}, 4, 4)")
        if 0 < j < k:
            _norm(path, state, index + 1, c_out, EXAMPLES_DISCRIMINATOR)
        widths.append(c_out)
    return tuple(widths[1:-1])


def _check_size(path: Path, what: str, side: int, maps: list[tuple[int, int]]) -> None:
    """Refuse, from the shapes alone, a picture side past MAX_SIDE or feature maps (channels, side) of one picture
    past MAX_ACTIVATION_BYTES in float32: a few kilobytes of weights can ask for either."""
    if side > MAX_SIDE:
        raise UnknownModelError(f"{path.name} is {what} for {side}x{side} pictures; Latent Explorer opens sides up "
                                f"to {MAX_SIDE} pixels")
    nbytes = 4 * sum(c * s * s for c, s in maps)
    if nbytes > MAX_ACTIVATION_BYTES:
        raise UnknownModelError(f"{path.name} is {what} whose feature maps for one {side}x{side} picture need "
                                f"{nbytes / 2 ** 30:.1f} GiB, more than Latent Explorer allows "
                                f"({MAX_ACTIVATION_BYTES // 2 ** 30} GiB)")


def _last_layer(state: dict[str, Tensor]) -> int:
    """N of the last layer with tensors in a `main.N.` Sequential (3k in netG, 3k - 1 in netD); -1 for names of
    another kind."""
    found = [re.fullmatch(r"main\.(\d+)\.[a-z_]+", key) for key in state]
    if not found or not all(found):
        return -1
    return max(int(m.group(1)) for m in found if m)


def _dcgan_names(convs: list[int], norms: list[int]) -> set[str]:
    return {f"main.{i}.weight" for i in convs} | {f"main.{i}.{p}" for i in norms for p in BATCHNORM}


def _conv(path: Path, state: dict[str, Tensor], index: int, what: str, transposed: bool = True) -> tuple[int, int]:
    """(in, out) channels of the 4x4 convolution at main.index; a ConvTranspose2d stores (in, out, 4, 4), a
    Conv2d (out, in, 4, 4)."""
    key = f"main.{index}.weight"
    shape = tuple(state[key].shape)
    if len(shape) != 4 or shape[2:] != (4, 4) or min(shape) < 1:
        _refuse(path, what, key, shape, "(channels, channels, 4, 4)")
    return (shape[0], shape[1]) if transposed else (shape[1], shape[0])


def _norm(path: Path, state: dict[str, Tensor], index: int, width: int, what: str) -> None:
    """The BatchNorm at main.index: its shapes, and running statistics a network can divide by (eval mode
    computes (x - mean) / sqrt(var + eps), so a negative or non-finite variance draws NaN)."""
    for p in BATCHNORM:
        key = f"main.{index}.{p}"
        shape = () if p == "num_batches_tracked" else (width,)
        if tuple(state[key].shape) != shape:
            _refuse(path, what, key, tuple(state[key].shape), str(shape))
    key = f"main.{index}.running_var"
    var = state[key]
    if var.is_meta or not var.is_floating_point() or bool((torch.isfinite(var) & (var >= 0)).all()):
        return                                         # shapes alone, or integers the import refuses later
    bad = "NaN or Inf" if not bool(torch.isfinite(var).all()) else f"negative ({float(var.min()):.3g})"
    raise UnknownModelError(f"{path.name} is {what}, but the running variance of its BatchNorm layer main.{index} "
                            f"('{key}') is {bad}, which no training produces, so it would draw NaN pictures")


# ---------------------------------------------------------------------------------------------------------------

def _float32(path: Path, what: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The weights as float32, the dtype our models hold, so a file saved in half precision (float16, bfloat16)
    or in double imports too; a weight of integers (or complex numbers) is refused. A BatchNorm's step count
    stays the integer it is."""
    for key, value in state.items():
        if not value.is_floating_point() and not key.endswith(".num_batches_tracked"):
            raise UnknownModelError(f"{path.name} has the tensor names of {what}, but its '{key}' holds "
                                    f"{str(value.dtype).removeprefix('torch.')} values, not the floating-point "
                                    "weights a network holds")
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}


def _without_wrapper(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Names as the bare module has them: nn.DataParallel saves every one under 'module.'."""
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module."):]: value for key, value in state.items()}
    return state


def _refuse(path: Path, what: str, key: str, shape: tuple[int, ...], expected: str) -> None:
    raise UnknownModelError(f"{path.name} has the tensor names of {what}, but its '{key}' has shape {shape} "
                            f"where {expected} was expected")

