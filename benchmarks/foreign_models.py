"""Models made elsewhere, trained here: the demo artefacts of the README's foreign-model pictures.

Two small runs, each as the field's own tools train them, so the app opens files it did not write:

  dcgan      pytorch/examples' dcgan/main.py: its Generator and Discriminator (tests/pytorch_examples.py, as
             published), BCE, Adam lr 2e-4 betas (0.5, 0.999), nz 100, weights_init N(0, 0.02), pictures in
             [-1, 1]; ngf = ndf = 64 as published, on 64 x 64 pictures (colour shapes, or with --data
             fashion-mnist --channels 1 grey ones, as dcgan/main.py's --dataset mnist does). At ngf = ndf = 32
             the detective won within 50 steps on both data sets and G collapsed to one grey texture for every z
             (2,000 steps tried); at 64 G drew varied, darkening pictures by step 100. Saves netG_epoch_N.pth /
             netD_epoch_N.pth with torch.save(state_dict) at each epoch's end as the original does; open it with
             `python -m models import OUT/netG_epoch_N.pth --critic OUT/netD_epoch_N.pth --out dcgan.safetensors`.
  diffusers  a small diffusers UNet2DModel (32 x 32 colour, block_out_channels (32, 64, 64), one layer a block)
             with DDPMScheduler, trained with the epsilon loss of diffusers' train_unconditional example (AdamW,
             gradients clipped at 1, an EMA of the weights, which is what is saved) and saved with
             DDPMPipeline(unet, scheduler).save_pretrained(OUT): a folder the app opens as it is.

    nice -n 5 .venv/bin/python benchmarks/foreign_models.py dcgan --data fashion-mnist --channels 1 \\
        --threads 2 --steps 5000 --minutes 80 --out runs/trials/foreign/dcgan-fashion64
    nice -n 19 .venv/bin/python benchmarks/foreign_models.py diffusers --batch 32 --lr 1.5e-3 --steps 2000 \\
        --out runs/trials/foreign/ddpm-shapes

One torch thread unless --threads says otherwise; --minutes stops a run early (it still saves). A log line every
--log-every steps.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from models.data import load_dataset  # noqa: E402


def data_batches(name: str, size: int, channels: int, batch: int, seed: int):
    """Endless shuffled batches of a data set's training split at size x size, in [-1, 1] (the examples'
    Normalize((0.5,) * nc, (0.5,) * nc)), with the epoch each batch belongs to."""
    data = load_dataset(name, "train", image_size=size, channels=channels)
    g = torch.Generator().manual_seed(seed)
    epoch = 0
    while True:
        order = torch.randperm(len(data), generator=g)
        for i in range(0, len(order) - batch + 1, batch):
            yield epoch, data.images[order[i:i + batch].numpy()] * 2.0 - 1.0
        epoch += 1


def weights_init(m: nn.Module) -> None:
    """dcgan/main.py's weights_init."""
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def log_or_stop(args: argparse.Namespace, step: int, start: float, line: str) -> bool:
    """Print the step's line every --log-every steps and at the end; True once --steps or --minutes is reached."""
    elapsed = time.perf_counter() - start
    done = step >= args.steps or elapsed > args.minutes * 60
    if step % args.log_every == 0 or done:
        print(f"step {step}/{args.steps} {line} ({elapsed:.0f} s)", flush=True)
    return done


def train_dcgan(args: argparse.Namespace) -> None:
    from tests.pytorch_examples import Discriminator, Generator

    nz = 100
    netG = Generator(nz=nz, ngf=args.width, nc=args.channels)
    netD = Discriminator(ndf=args.width, nc=args.channels)
    netG.apply(weights_init)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    start = time.perf_counter()
    epoch = 0
    args.out.mkdir(parents=True, exist_ok=True)

    def save(epoch: int) -> None:          # as dcgan/main.py does at every epoch's end
        torch.save(netG.state_dict(), args.out / f"netG_epoch_{epoch}.pth")
        torch.save(netD.state_dict(), args.out / f"netD_epoch_{epoch}.pth")
        print(f"saved {args.out / f'netG_epoch_{epoch}.pth'} and netD_epoch_{epoch}.pth", flush=True)

    for step, (batch_epoch, real) in enumerate(data_batches(args.data, 64, args.channels, args.batch, args.seed),
                                               start=1):
        if batch_epoch != epoch:
            save(epoch)
            epoch = batch_epoch
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        label = torch.full((real.shape[0],), real_label)
        output = netD(real)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(real.shape[0], nz, 1, 1)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optimizerD.step()
        # (2) Update G: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        optimizerG.step()
        if log_or_stop(args, step, start, f"epoch {epoch} Loss_D {errD.item():.4f} Loss_G {errG.item():.4f} "
                       f"D(x) {D_x:.4f} D(G(z)) {D_G_z1:.4f} / {D_G_z2:.4f}"):
            break
    save(epoch)


def train_diffusers(args: argparse.Namespace) -> None:
    import copy

    import torch.nn.functional as F
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(args.seed)
    unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(32, 64, 64), norm_num_groups=8,
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    ema = copy.deepcopy(unet).requires_grad_(False)
    params = sum(p.numel() for p in unet.parameters())
    print(f"UNet2DModel with {params:,} parameters", flush=True)
    start = time.perf_counter()
    smoothed = None
    for step, (epoch, clean) in enumerate(data_batches("shapes", 32, 3, args.batch, args.seed), start=1):
        noise = torch.randn_like(clean)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (clean.shape[0],))
        noisy = scheduler.add_noise(clean, noise, t)
        loss = F.mse_loss(unet(noisy, t).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        decay = min(args.ema, (1 + step) / (10 + step))          # diffusers' EMAModel warm-up
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1.0 - decay)
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        if log_or_stop(args, step, start, f"epoch {epoch} loss {loss.item():.4f} (smoothed {smoothed:.4f})"):
            break
    DDPMPipeline(unet=ema.eval(), scheduler=scheduler).save_pretrained(args.out)
    print(f"saved {args.out}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["dcgan", "diffusers"])
    parser.add_argument("--out", type=Path, required=True, help="the folder the files go to")
    parser.add_argument("--data", default="shapes", help="the data set the DCGAN trains on (the UNet: shapes)")
    parser.add_argument("--channels", type=int, default=3, help="the DCGAN's nc: 3, or 1 as dcgan/main.py's mnist")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--minutes", type=float, default=9.5, help="stop (and save) after this long")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64, help="the DCGAN's ngf = ndf (64 as published)")
    parser.add_argument("--lr", type=float, default=1e-3, help="the diffusers UNet's AdamW learning rate")
    parser.add_argument("--ema", type=float, default=0.995, help="the diffusers UNet's EMA decay")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=200)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    (train_dcgan if args.which == "dcgan" else train_diffusers)(args)


if __name__ == "__main__":
    main()
