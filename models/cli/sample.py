"""`python -m models sample`: draw images from a checkpoint into a PNG grid or a .npy array.

For an AE or CAE this decodes z ~ N(0, I) exactly as for a VAE, so a plain autoencoder's holes show.
"""
from __future__ import annotations

import argparse
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import torch

from .. import checkpoint, core
from ..catalog import SAMPLERS
from ..atomic import atomic_write_path
from ..device import pick_device
from .common import UsageError

if TYPE_CHECKING:
    import numpy as np

DIFFUSION_FLAGS = ("sampler", "steps", "eta")
DEFAULT_N = 64
NPY_MAGIC = b"\x93NUMPY"
GUIDANCE_FLAGS = {"classes": "--class", "guidance": "--guidance"}


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sample", parents=parents, help="draw samples from a checkpoint",
                       description="Draw n samples; .png writes an 8-per-row grid, .npy an (n, C, H, W) "
                                   "float32 array in [0, 1].")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--n", type=int, default=None, help="how many images (default 64, or the --noise file's rows)")
    p.add_argument("--noise", default=None, metavar="FILE.npy",
                   help="start from this noise instead of the seed's: z of shape (n, d) for a decoder, x_T of "
                        "shape (n, C, H, W) for a diffusion model (float, as np.save writes it)")
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.png (grid) or FILE.npy (array)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    diffusion = p.add_argument_group("diffusion models only")
    diffusion.add_argument("--sampler", choices=tuple(SAMPLERS), default=None,
                           help="ddpm (ancestral, T steps), ddim (the default, 50 steps) or dpm++ "
                                "(DPM-Solver++(2M), 20 steps)")
    diffusion.add_argument("--steps", type=int, default=None, help="denoising steps")
    diffusion.add_argument("--eta", type=float, default=None, help="DDIM noise: 0 deterministic, 1 like DDPM")
    diffusion.add_argument("--class", dest="classes", type=int, default=None, metavar="K",
                           help="class-conditional models: draw class K (the label's index; default any class)")
    diffusion.add_argument("--guidance", type=float, default=None, metavar="W",
                           help="class-conditional models: classifier-free guidance scale (0 unconditional, "
                                "1 the plain conditional model, the default)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    kind = out.suffix.lower()
    if kind not in (".png", ".npy"):
        raise UsageError(f"--out must end in .png (a grid) or .npy (an array), not '{out.name}'")
    if args.n is not None and args.n < 1:
        raise UsageError("--n must be at least 1")
    device = pick_device(args.device)
    model = checkpoint.load(args.checkpoint, device)
    extra = {k: getattr(args, k) for k in DIFFUSION_FLAGS if getattr(args, k) is not None}
    if extra and core.DENOISE not in model.capabilities:
        flags = ", ".join(f"--{k}" for k in extra)
        raise UsageError(f"{flags} only appl{'ies' if len(extra) == 1 else 'y'} to diffusion models; "
                         f"{Path(args.checkpoint).name} is a '{model.family}' model")
    if core.SAMPLE not in model.capabilities:
        raise UsageError(f"a '{model.family}' model cannot draw samples")
    if args.sampler == "dpm++" and args.eta is not None:
        raise UsageError("--eta is DDIM's noise scale, and DPM-Solver++ (--sampler dpm++) is deterministic: "
                         "drop --eta, or use --sampler ddim")
    asked = {k: getattr(args, k) for k in GUIDANCE_FLAGS if getattr(args, k) is not None}
    if asked and not getattr(model, "conditional", False):
        flags = " and ".join(GUIDANCE_FLAGS[k] for k in asked)
        raise UsageError(f"{flags} need{'s' if len(asked) == 1 else ''} a class-conditional model, and "
                         f"{Path(args.checkpoint).name} has no classes")
    if getattr(model, "conditional", False) and not getattr(model, "has_null_class", True) and args.classes is None:
        raise UsageError(f"{Path(args.checkpoint).name}'s network has no 'no class' input, so it draws one class "
                         f"at a time: pick it with --class K (0..{model.num_classes - 1})")
    extra.update(asked)
    noise = None if args.noise is None else read_noise(Path(args.noise), noise_shape(model), args.n)
    n = len(noise) if noise is not None else args.n or DEFAULT_N
    try:
        if noise is not None:
            images = draw_from(model, noise, args.seed, max(1, args.batch_size), **extra)
        else:
            images = draw(model, n, args.seed, max(1, args.batch_size), **extra)
    except ValueError as err:
        if not extra:
            raise
        flags = " ".join(f"{GUIDANCE_FLAGS.get(k, '--' + k)} {v}" for k, v in extra.items())
        raise UsageError(f"cannot sample with {flags}: {err}") from None
    except RuntimeError as err:           # torch.OutOfMemoryError is one
        if not out_of_memory(err):
            raise
        cpu = "" if device.type == "cpu" else ", or --device cpu"
        raise UsageError(f"{device} ran out of memory drawing {n} samples {min(n, max(1, args.batch_size))} at a "
                         f"time: try fewer samples (--n), a smaller --batch-size{cpu}") from None
    write_images(images, out)
    print(f"wrote {n} samples from {Path(args.checkpoint).name} to {out}")
    return 0


def out_of_memory(err: BaseException) -> bool:
    """Whether `err` is the device running out of memory: torch.OutOfMemoryError on CUDA, a RuntimeError whose
    message says so on MPS ("out of memory") and on the CPU ("not enough memory")."""
    text = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in text or "not enough memory" in text


@torch.no_grad()
def draw(model: core.LatentModel, n: int, seed: int, batch_size: int, **kwargs) -> torch.Tensor:
    """n samples (n, C, H, W) in [0, 1] on the CPU, from one seeded generator on the model's device."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    parts = [model.sample(min(batch_size, n - start), generator, **kwargs).detach().float().cpu()
             for start in range(0, n, batch_size)]
    return torch.cat(parts).clamp_(0.0, 1.0)


def noise_shape(model: core.LatentModel) -> tuple[int, ...]:
    """One row of the noise a model starts from: x_T (C, H, W) for a diffusion model, z (d,) for a decoder."""
    return tuple(model.image_shape) if core.DENOISE in model.capabilities else (model.latent_dim,)


def read_noise(path: Path, shape: tuple[int, ...], n: int | None) -> torch.Tensor:
    """The rows of a .npy file as float32 noise of shape (rows, *shape), or UsageError in one sentence: a file
    that is no regular .npy file, holds Python objects (never unpickled), non-float, NaN or Inf values, another
    shape, another row count than --n, or fewer bytes than its header promises. The header is checked before any
    array is allocated from it, and a pipe or device is refused unopened (opening one waits for a writer)."""
    import numpy as np

    name = f"--noise {path.name}"
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise UsageError(f"{name} is not a regular file")
        with path.open("rb") as fh:
            if fh.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise UsageError(f"{name} is not a .npy array (write one with numpy.save)")
            fh.seek(0)
            rows, dtype = _npy_header(fh, name, shape)
            if n is not None and n != rows:
                raise UsageError(f"--n {n} disagrees with {name}, which holds {rows} rows: drop --n")
            if os.fstat(fh.fileno()).st_size - fh.tell() < rows * math.prod(shape) * dtype.itemsize:
                raise UsageError(f"{name} is truncated: its header promises {rows} rows of {dtype} values")
            fh.seek(0)
            array = np.load(fh, allow_pickle=False)
    except OSError as err:
        raise UsageError(f"{name} cannot be read ({err.strerror or err})") from None
    except (ValueError, EOFError) as err:
        if isinstance(err, UsageError):
            raise
        raise UsageError(f"{name} is damaged or truncated ({str(err).strip().split('. ')[0] or type(err).__name__})") \
            from None
    if not np.isfinite(array).all():
        raise UsageError(f"{name} holds NaN or Inf values")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _npy_header(fh: BinaryIO, name: str, shape: tuple[int, ...]) -> tuple[int, np.dtype]:
    """(rows, dtype) from a .npy header at fh, once they fit noise rows of `shape`; UsageError otherwise."""
    import numpy as np

    version = np.lib.format.read_magic(fh)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in read_header:
        raise UsageError(f"{name} is a .npy file of format {version[0]}.{version[1]}, which holds no plain array "
                         "of floats")
    array_shape, _, dtype = read_header[version](fh)
    what = "x_T" if len(shape) == 3 else "z"
    if dtype.hasobject:
        raise UsageError(f"{name} holds Python objects, which are never unpickled: save an array of floats")
    if dtype.kind != "f":
        raise UsageError(f"{name} holds {dtype} values, but {what} must be floating point")
    if tuple(array_shape[1:]) != shape:
        raise UsageError(f"{name} has shape {tuple(array_shape)}, but this model starts from {what} of shape "
                         f"(n, {', '.join(str(s) for s in shape)})")
    if array_shape[0] == 0:
        raise UsageError(f"{name} holds no rows")
    return array_shape[0], dtype


@torch.no_grad()
def draw_from(model: core.LatentModel, noise: torch.Tensor, seed: int, batch_size: int, **kwargs) -> torch.Tensor:
    """Images (n, C, H, W) in [0, 1] on the CPU from given noise: decode(z) for a decoder; for a diffusion model
    its sampler run from x_T (the last frame's x0), any noise it adds on the way drawn from one seeded generator."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    parts = []
    for chunk in core.iter_batches(noise, batch_size):
        chunk = chunk.to(model.device)
        if core.DENOISE in model.capabilities:
            last = None
            for last in model.frames(chunk, generator, **kwargs):
                pass
            parts.append(last.x0.detach().float().cpu())
        else:
            parts.append(model.decode(chunk).detach().float().cpu())
    return torch.cat(parts).clamp_(0.0, 1.0)


def write_images(images: torch.Tensor, out: Path) -> None:
    """A .png grid (torchvision's save_image, 8 per row, padding 2) or a float32 .npy array, written atomically."""
    import numpy as np

    with atomic_write_path(out) as tmp:
        if out.suffix.lower() == ".png":
            from torchvision.utils import save_image

            save_image(images, str(tmp), nrow=8, padding=2, format="png")
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, images.numpy().astype(np.float32))
