"""GAN inversion: find the code z whose picture G(z) looks like a given image (Zhu et al. 2016, Creswell 2018).

A generator has no encoder, so there is no code to read off an image: it is searched for. Starting from a few
draws of the prior, Adam descends the pixel error

    L(z) = mean_pixels (G(z) - x)^2  +  lambda (|z|^2 / d - 1)^2

where the second term keeps z near the shell |z| ~ sqrt(d) where the prior's draws (and so G's training
inputs) lie. Each target keeps the best of its `restarts` candidates. The search is a generator: it yields an
`InversionStep` every `every` steps (the falling error, the best code so far), so a caller can show progress
and stop whenever it likes; only z is optimised (the model's weights get no gradients and are not changed).
Works for any model with `decode(z)`: a GAN, a VAE-GAN's decoder, an autoencoder's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from .core import LatentModel


@dataclass(frozen=True)
class InversionStep:
    """Where the search stands after `step` of `steps` Adam steps (per target: the best candidate so far)."""

    step: int
    steps: int
    z: Tensor          # (B, d)
    image: Tensor      # (B, C, H, W) in [0, 1]: decode(z)
    mse: Tensor        # (B,) mean squared pixel error of image against the target


def pixel_mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error per image: (B, ...) x (B, ...) -> (B,)."""
    return (a - b).pow(2).flatten(1).mean(dim=1)


def invert_decoder(model: LatentModel, target: Tensor, steps: int = 300, lr: float = 0.05, restarts: int = 4,
                   generator: torch.Generator | None = None, every: int = 10,
                   shell_weight: float = 1e-3) -> Iterator[InversionStep]:
    """Search z for each target image (B, C, H, W) in [0, 1]; yields an InversionStep every `every` steps and
    after the last one. `restarts` prior draws per target are optimised side by side (one batch)."""
    if steps < 1:
        raise ValueError("an inversion needs at least one step")
    device = model.device
    x = target.to(device=device, dtype=torch.float32)
    b, d, r = x.shape[0], model.latent_dim, max(1, int(restarts))
    z = model.prior(b * r, generator).detach().clone().requires_grad_(True)    # (B*R, d): target i owns rows i*R..
    x_rep = x.repeat_interleave(r, dim=0)
    opt = torch.optim.Adam([z], lr=lr)
    best_z = z.detach().view(b, r, d)[:, 0].clone()
    best_mse = torch.full((b,), float("inf"), device=device)
    best_img = torch.zeros_like(x)
    for step in range(1, steps + 1):
        # grad mode is per thread and a caller may switch it off between two items (torch.no_grad around a
        # loop, another stream's step): switched on for each step, never held across a yield
        with torch.enable_grad():
            image = model.decode(z)
            mse = pixel_mse(image, x_rep)                                          # (B*R,)
            shell = (z.pow(2).mean(dim=1) - 1.0).pow(2)
            loss = (mse + shell_weight * shell).sum()
            (grad,) = torch.autograd.grad(loss, [z])                               # z only: no weight grads
        with torch.no_grad():
            per = mse.detach().view(b, r)
            cand, which = per.min(dim=1)
            better = cand < best_mse
            rows = torch.arange(b, device=device) * r + which
            best_mse = torch.where(better, cand, best_mse)
            best_z[better] = z.detach()[rows][better]
            best_img[better] = image.detach()[rows][better]
        z.grad = grad
        opt.step()
        if step % every == 0 or step == steps:
            yield InversionStep(step, steps, best_z.clone(), best_img.clone(), best_mse.clone())
