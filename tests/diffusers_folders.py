"""Tiny folders saved by diffusers itself (`save_pretrained`), with seeded random weights, for the tests that open
them: a pipeline (DDPMPipeline or DDIMPipeline) or a bare UNet2DModel, grey or colour, any scheduler settings."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

UNET = dict(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=8,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"))


def tiny_unet(channels: int = 1, size: int | tuple[int, int] = 8, classes: int | None = None, seed: int = 0,
              **extra: Any):
    """A UNet2DModel of two levels (one with attention) and about 45,000 parameters, its weights drawn from
    `seed`; the output layer is scaled up so the prediction is far from zero and depends on the input."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels, num_class_embeds=classes,
                       **{**UNET, **extra})
    with torch.no_grad():
        unet.conv_out.weight.mul_(4.0)
    return unet.eval()


def save_pipeline(folder: Path, unet, scheduler: str = "DDPMScheduler", pipeline: str = "DDPMPipeline",
                  **settings: Any) -> Path:
    """`pipeline`(unet, scheduler(**settings)).save_pretrained(folder): model_index.json, unet/, scheduler/."""
    import diffusers

    sched = getattr(diffusers, scheduler)(**settings)
    getattr(diffusers, pipeline)(unet=unet, scheduler=sched).save_pretrained(folder)
    return Path(folder)


def save_bare_unet(folder: Path, unet, **settings: Any) -> Path:
    """A bare UNet2DModel folder (config.json and weights) with a DDPMScheduler's scheduler_config.json in it."""
    from diffusers import DDPMScheduler

    unet.save_pretrained(folder)
    DDPMScheduler(**settings).save_config(folder)
    return Path(folder)


def diffusers_ddim(folder: Path, unet, x_T: torch.Tensor, steps: int, classes: torch.Tensor | None = None):
    """diffusers' own DDIM loop at eta 0 with DDIMScheduler.from_config of the folder's scheduler config, from
    x_T: the images in [0, 1], as DDIMPipeline returns them."""
    import json

    from diffusers import DDIMScheduler

    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    sc = DDIMScheduler.from_config(config)
    sc.set_timesteps(steps)
    x = x_T.clone()
    with torch.no_grad():
        for t in sc.timesteps:
            x = sc.step(unet(x, t, class_labels=classes).sample, t, x, eta=0.0).prev_sample
    return (x / 2 + 0.5).clamp(0, 1)
