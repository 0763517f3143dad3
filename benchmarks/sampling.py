"""Sampling speed: milliseconds per generated image, at batch 1 and batch 16, for every family the app ships.

A one-pass decoder (AE, VAE, CAE, GAN, VAE-GAN) pays one forward pass; the diffusion model pays one U-Net pass
per step, so it is timed with the DDPM sampler at its full 1000 steps and with DDIM at 50, 20 and 10 steps.
Models are untrained builds of the shipped configs (benchmarks/train_shipped.py): speed does not depend on the
weights. Each figure is the median over repeated calls (eval mode, no grad), divided by the batch size.

    python benchmarks/sampling.py [--device auto] [--repeats 5] [--ddpm-batch16] [--json]

DDPM-1000 at batch 16 is 16 x 1000 U-Net image passes (minutes on a CPU); it is skipped unless --ddpm-batch16
is given or the device is a GPU, and the table says so.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

import _common
import models
from train_shipped import PLANS

BATCHES = (1, 16)
DDIM_STEPS = (50, 20, 10)


def time_call(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: bool = True) -> float:
    """Median wall time of fn() in ms over `repeats` calls, after one warm-up call unless told otherwise."""
    if warmup:
        fn()
        _common.synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _common.synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def cases(model: models.LatentModel) -> list[tuple[str, int | None, dict[str, Any]]]:
    """(sampler label, steps, sample() keyword arguments) for one model."""
    if models.core.DENOISE not in model.capabilities:
        return [("decode", 1, {})]
    T = model.config.timesteps
    return [("ddpm", T, {"sampler": "ddpm", "steps": None})] + \
           [("ddim", k, {"sampler": "ddim", "steps": k, "eta": 0.0}) for k in DDIM_STEPS]


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = _common.benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (default 5; 1 for DDPM-1000)")
    parser.add_argument("--ddpm-batch16", action="store_true", help="also time DDPM-1000 at batch 16 on a CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="shipped model names to time")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _common.pick(args.device)
    plans = [p for p in PLANS if args.only is None or p.name in args.only]

    figures: dict[str, dict[str, Any]] = {}
    rows, skipped = [], []
    for plan in plans:
        torch.manual_seed(0)
        model = models.build(plan.family, plan.config).to(device).eval()
        for label, steps, kwargs in cases(model):
            key = f"{plan.name}/{label}-{steps}" if label != "decode" else plan.name
            entry: dict[str, Any] = {"family": plan.family, "sampler": label, "steps": steps}
            for batch in BATCHES:
                slow = label == "ddpm" and batch > 1 and device.type == "cpu" and not args.ddpm_batch16
                if slow:
                    entry[f"ms_per_sample_b{batch}"] = None
                    skipped.append(key)
                    continue
                repeats = 1 if label == "ddpm" else max(1, args.repeats)
                gen = torch.Generator(device=device).manual_seed(0)

                def draw() -> None:
                    with torch.no_grad():
                        model.sample(batch, gen.manual_seed(0), **kwargs)

                # DDPM-1000 warms itself up over its first few of 1000 steps; a separate warm-up call would
                # double a minutes-long figure for nothing.
                entry[f"ms_per_sample_b{batch}"] = time_call(draw, device, repeats, warmup=label != "ddpm") / batch
            figures[key] = entry
            rows.append([plan.name, label, steps] + [("skipped" if entry[f"ms_per_sample_b{b}"] is None
                                                      else entry[f"ms_per_sample_b{b}"]) for b in BATCHES])
    notes = [f"median of {args.repeats} calls after a warm-up call (DDPM-1000: one call, no warm-up); "
             "untrained builds of the shipped configs."]
    if skipped:
        notes.append(f"skipped on the CPU (minutes each; pass --ddpm-batch16): batch 16 of {', '.join(skipped)}")
    _common.report("Sampling speed: ms per image", ["model", "sampler", "steps", "ms/img b1", "ms/img b16"],
                   rows, figures, device, as_json=args.json, notes=notes)
    return figures


if __name__ == "__main__":
    main()
