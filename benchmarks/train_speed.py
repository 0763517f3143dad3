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
from pathlib import Path
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
    decode_repeats: int = 100       # fewer for a decoder that runs a whole sampler (DDPM: 20 U-Net passes)


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


def bare_gan(model: models.LatentModel, settings: TrainSettings, generator: torch.Generator):
    """GAN: z ~ N(0, I); D step on (x, G(z)) with BCE on logits; G step, non-saturating; Adam(0.5, 0.999) each."""
    opt_g = torch.optim.Adam(model.G.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=settings.lr, betas=(0.5, 0.999))

    def loop(batches: list[Tensor]) -> None:
        for x in batches:
            z = torch.randn((x.shape[0], model.latent_dim), generator=generator, device=x.device)
            fake = torch.sigmoid(model.G(z))
            real_logits, fake_logits = model.D(x), model.D(fake.detach())
            loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            gen_logits = model.D(fake)
            loss_g = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

    return loop


def bare_vaegan(model: models.LatentModel, settings: TrainSettings, generator: torch.Generator):
    """VAE-GAN (Larsen et al.): one forward, then each loss backpropagated into its own network only."""
    nets = {"encoder": model.encoder, "decoder": model.decoder, "discriminator": model.D}
    opts = {k: torch.optim.Adam(n.parameters(), lr=settings.lr, betas=(0.5, 0.999)) for k, n in nets.items()}
    gamma = settings.knob("gamma", models.vaegan.DEFAULT_GAMMA)
    bce = F.binary_cross_entropy_with_logits

    def loop(batches: list[Tensor]) -> None:
        for x in batches:
            mu, logvar = model.encoder(x).chunk(2, dim=1)
            eps = torch.randn(mu.shape, generator=generator, device=x.device)
            z_p = torch.randn(mu.shape, generator=generator, device=x.device)
            x_tilde = torch.sigmoid(model.decoder(mu + torch.exp(0.5 * logvar) * eps))
            x_p = torch.sigmoid(model.decoder(z_p))
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
            llike = 0.5 * (model.D.features(x) - model.D.features(x_tilde)).pow(2).sum() / x.shape[0]
            l_x, l_t, l_p = model.D(x), model.D(x_tilde), model.D(x_p)
            one, zero = torch.ones_like(l_x), torch.zeros_like(l_x)
            losses = {"encoder": kl + llike,
                      "decoder": gamma * llike + bce(l_t, one) + bce(l_p, one),
                      "discriminator": bce(l_x, one) + bce(l_t, zero) + bce(l_p, zero)}
            for i, (name, net) in enumerate(nets.items()):
                params = list(net.parameters())
                for p, g in zip(params, torch.autograd.grad(losses[name], params, retain_graph=i < 2)):
                    p.grad = g
            for opt in opts.values():
                opt.step()

    return loop


def bare_ddpm(model: models.LatentModel, settings: TrainSettings, generator: torch.Generator):
    """DDPM: t ~ U{0..T-1}, eps ~ N(0, I), x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps, MSE(eps_theta(x_t, t), eps),
    AdamW on the U-Net, then the EMA copy moves towards it."""
    opt = torch.optim.AdamW(model.unet.parameters(), lr=settings.lr)
    alpha_bars = model.schedule.alpha_bars

    def loop(batches: list[Tensor]) -> None:
        for x in batches:
            x0 = 2 * x - 1
            t = torch.randint(0, alpha_bars.shape[0], (x.shape[0],), generator=generator, device=x.device)
            eps = torch.randn(x.shape, generator=generator, device=x.device)
            a = alpha_bars[t].view(-1, 1, 1, 1)
            loss = F.mse_loss(model.unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, t), eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for p_ema, p in zip(model.ema.parameters(), model.unet.parameters()):
                    p_ema.lerp_(p, 1 - model.config.ema_decay)

    return loop


CASES: dict[str, Case] = {
    "ae": Case("ae", {"latent_dim": 2, "hidden": [512, 256]}, bare_autoencoder),
    "cae": Case("cae", {"latent_dim": 16, "channels": [32, 64]}, bare_autoencoder),
    "vae": Case("vae", {"latent_dim": 2, "arch": "dense", "hidden": [512, 256]}, bare_vae),
    "gan": Case("gan", {"latent_dim": 16, "channels": [32, 64]}, bare_gan),
    "vaegan": Case("vaegan", {"latent_dim": 16, "channels": [32, 64]}, bare_vaegan),
    # decode = 20 deterministic DDIM steps of the U-Net (config.decode_steps): what a dragged probe pays
    "ddpm": Case("ddpm", {}, bare_ddpm, decode_repeats=10),
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
        times = _common.latencies_ms(lambda: decode(lib, z), device, repeats=case.decode_repeats,
                                     warmup=max(1, case.decode_repeats // 10))

    samples = steps * batch_size
    lib_rate, bare_rate = samples / lib_s, samples / bare_s
    return {
        "samples_per_s": lib_rate,
        "bare_samples_per_s": bare_rate,
        "ratio": lib_rate / bare_rate,
        "decode_p50_ms": _common.percentile(times, 50),
        "decode_p95_ms": _common.percentile(times, 95),
    }


def processes_speed(processes: int, steps: int, batch_size: int, device: str) -> float:
    """Samples per second of `python -m models train` (a dense AE) on `processes` processes (torchrun, gloo or
    NCCL), as the checkpoint records it: the global batch over each step's time."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from models import checkpoint

    out = Path(tempfile.mkdtemp(prefix="train-speed-")) / "ae.safetensors"
    args = ["train", "--family", "ae", "--latent-dim", "2", "--steps", str(steps), "--batch-size", str(batch_size),
            "--subset", str(max(2048, batch_size * 4)), "--device", device, "--no-download", "--save-every-s", "0",
            "--out", str(out)]
    if processes == 1:
        cmd = [sys.executable, "-m", "models", *args]
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
        cmd = [torchrun, "--standalone", "--nproc_per_node", str(processes), "-m", "models", *args]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=900)
    speed = float(checkpoint.read_metadata(out).training["samples_per_s"])
    shutil.rmtree(out.parent, ignore_errors=True)
    return speed


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = _common.benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per side and family (30)")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size (128, the default)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--families", nargs="+", choices=sorted(CASES), default=list(CASES),
                        help="rows to run (default: all)")
    parser.add_argument("--processes", type=int, nargs="*", default=[],
                        help="also time `python -m models train` on these process counts side by side, under "
                             "torchrun (e.g. --processes 1 2)")
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
             "decode: batch 1, eval mode, 100 calls" + "".join(
                 f", {n}: {CASES[n].decode_repeats}" for n in args.families if CASES[n].decode_repeats != 100) + "."]
    if low:
        notes.append(f"below the 0.8 target: {', '.join(low)}")
    if args.processes:
        dev = "cuda" if device.type == "cuda" else "cpu"
        speeds = {n: processes_speed(n, max(args.steps, 20), args.batch_size, dev) for n in args.processes}
        base = speeds[min(speeds)]
        figures["processes"] = {f"samples_per_s_{n}": round(v, 1) for n, v in speeds.items()}
        figures["processes"].update({f"ratio_{n}": round(v / base, 3) for n, v in speeds.items()})
        notes.append("python -m models train (dense AE, global batch " f"{args.batch_size}) on " + ", ".join(
            f"{n} process{'es' if n > 1 else ''}: {v:,.0f} samples/s ({v / base:.2f}x)" for n, v in speeds.items())
            + ("; on 2 CPU cores no gain is expected, the figure is there for GPU boxes" if dev == "cpu" else ""))
    _common.report("Training speed: library (models.train.run) vs a bare torch loop of the same network",
                   ["family", "samples/s", "bare samples/s", "ratio", "decode p50 ms", "decode p95 ms"],
                   rows, figures, device, as_json=args.json, notes=notes)
    return figures


if __name__ == "__main__":
    main()
