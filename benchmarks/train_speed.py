"""Training speed of each family through the library, next to a bare torch loop of the same network.

For every row of CASES: a model trained through `models.train.run` (data order, timing, events, the family's
own `training_step`) and an identically initialised copy trained by a hand-written loop (forward, loss, backward,
step on pre-made batches) take turns step by step in the same process, so both see the same machine load.
`ratio` = library samples/s / bare samples/s; the library's overhead is acceptable at >= 0.8. Then the batch-1
decode latency (eval mode, no grad) that a dragged probe in the app pays, as p50/p95 over repeated calls.

    python benchmarks/train_speed.py [--device auto] [--steps 30] [--json]

Another family adds a row: CASES["gan"] = Case("gan", {...config...}, bare_gan) with its own bare loop.
The images are uniform noise of Fashion-MNIST's shape: speed does not depend on their content.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

import _common
import models
from models.train import TrainSettings, new_trainer, run

# A bare loop: given an identically initialised model, the settings and the noise generator, build whatever
# optimizers a plain script would and return `loop(batches)`, which trains on each pre-made batch in turn.
BareLoop = Callable[[models.LatentModel, TrainSettings, torch.Generator], Callable[[list[Tensor]], None]]


@dataclass(frozen=True)
class Case:
    family: str
    config: dict[str, Any]          # the realistic config the app ships, not a toy
    bare_loop: BareLoop
    decode: Callable[[models.LatentModel, Tensor], Tensor] | None = None   # default: model.decode(z)


def bernoulli_nats(logits: Tensor, x: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def bare_autoencoder(model: models.LatentModel, settings: TrainSettings, generator: torch.Generator):
    """AE and CAE: x -> encoder -> decoder -> Bernoulli nats, Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)

    def loop(batches: list[Tensor]) -> None:
        for x in batches:
            loss = bernoulli_nats(model.decoder(model.encoder(x)), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return loop


def bare_vae(model: models.LatentModel, settings: TrainSettings, generator: torch.Generator):
    """VAE: mu, logvar -> z = mu + sigma * eps -> decoder; loss = Bernoulli nats + beta * closed-form KL, Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)

    def loop(batches: list[Tensor]) -> None:
        for x in batches:
            mu, logvar = model.encoder(x).chunk(2, dim=1)
            eps = torch.randn(mu.shape, generator=generator, device=x.device)
            z = mu + torch.exp(0.5 * logvar) * eps
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1).mean()
            loss = bernoulli_nats(model.decoder(z), x) + settings.beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return loop


CASES: dict[str, Case] = {
    "ae": Case("ae", {"latent_dim": 2, "hidden": [512, 256]}, bare_autoencoder),
    "cae": Case("cae", {"latent_dim": 16, "channels": [32, 64]}, bare_autoencoder),
    "vae": Case("vae", {"latent_dim": 2, "arch": "dense", "hidden": [512, 256]}, bare_vae),
}


def twin_models(case: Case, device: torch.device) -> tuple[models.LatentModel, models.LatentModel]:
    """Two copies of the same network with the same initial weights: one for the library, one for the bare loop."""
    torch.manual_seed(0)
    lib = models.build(case.family, case.config).to(device)
    bare = models.build(case.family, case.config).to(device)
    bare.load_state_dict(lib.state_dict())
    return lib, bare


def measure(case: Case, device: torch.device, steps: int, batch_size: int, warmup: int = 3) -> dict[str, float]:
    settings = TrainSettings(batch_size=batch_size, steps=warmup + steps, seed=0)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand((warmup + steps) * batch_size, 1, 28, 28, generator=gen)   # one epoch, on the CPU

    lib, bare = twin_models(case, device)
    events = run(new_trainer(lib, settings), images)           # the library pulls batches itself, as in use
    bare.train()
    bare_gen = torch.Generator(device=device).manual_seed(0)
    loop = case.bare_loop(bare, settings, bare_gen)
    batches = [b.to(device) for b in images.split(batch_size)]  # pre-made, already on the device

    for _ in islice(events, warmup):
        pass
    loop(batches[:warmup])
    _common.synchronize(device)

    lib_s = bare_s = 0.0
    for i in range(warmup, warmup + steps):         # alternate step by step, so load spikes hit both sides alike
        t0 = time.perf_counter()
        next(events)
        _common.synchronize(device)
        lib_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        loop(batches[i:i + 1])
        _common.synchronize(device)
        bare_s += time.perf_counter() - t0
    for _ in events:                                # let the generator finish (puts the model in eval mode)
        pass

    lib.eval()
    z = torch.randn(1, lib.latent_dim, device=device)
    decode = case.decode or (lambda model, z: model.decode(z))
    with torch.no_grad():
        times = _common.latencies_ms(lambda: decode(lib, z), device, repeats=100, warmup=10)

    samples = steps * batch_size
    lib_rate, bare_rate = samples / lib_s, samples / bare_s
    return {
        "samples_per_s": lib_rate,
        "bare_samples_per_s": bare_rate,
        "ratio": lib_rate / bare_rate,
        "decode_p50_ms": _common.percentile(times, 50),
        "decode_p95_ms": _common.percentile(times, 95),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = _common.benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per side and family (30)")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size (128, the default)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--families", nargs="+", choices=sorted(CASES), default=list(CASES),
                        help="rows to run (default: all)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _common.pick(args.device)

    figures: dict[str, dict[str, float]] = {}
    for name in args.families:
        figures[name] = measure(CASES[name], device, args.steps, args.batch_size)

    rows = [[name, f["samples_per_s"], f["bare_samples_per_s"], f["ratio"], f["decode_p50_ms"],
             f["decode_p95_ms"]] for name, f in figures.items()]
    low = [name for name, f in figures.items() if not math.isfinite(f["ratio"]) or f["ratio"] < 0.8]
    notes = [f"{args.steps} timed steps of batch {args.batch_size} per side, library and bare steps alternating; "
             "decode: batch 1, eval mode, 100 calls."]
    if low:
        notes.append(f"below the 0.8 target: {', '.join(low)}")
    _common.report("Training speed: library (models.train.run) vs a bare torch loop of the same network",
                   ["family", "samples/s", "bare samples/s", "ratio", "decode p50 ms", "decode p95 ms"],
                   rows, figures, device, as_json=args.json, notes=notes)
    return figures


if __name__ == "__main__":
    main()
