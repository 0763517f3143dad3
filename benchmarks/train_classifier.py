"""Train the Fashion-MNIST classifier behind the domain FID and save it to weights/classifier.safetensors.

    python benchmarks/train_classifier.py                 # ~6 epochs, a few minutes on a CPU
    python benchmarks/train_classifier.py --epochs 1 --out /tmp/c.safetensors

A plain supervised loop with a random horizontal flip (clothing is nearly symmetric), kept as the recipe of the
shipped file; its data order reuses train.epoch_order, so a run is a pure function of --seed. Any other data
set's classifier (one head per factor where the set has factors) trains through models.train's loop, with
labels, resumable: `python -m models train --family classifier --data NAME --out
weights/classifier-NAME.safetensors`, or the plan `classifier-shapes` in benchmarks/train_shipped.py.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import report  # noqa: E402

from models import checkpoint  # noqa: E402
from models.classifier import Classifier, ClassifierConfig  # noqa: E402
from models.data import load_dataset  # noqa: E402
from models.device import pick_device  # noqa: E402
from models.train import TrainSettings, epoch_order  # noqa: E402

DEFAULT_OUT = ROOT / "weights" / "classifier.safetensors"


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half the batch left-right: clothing is (nearly) symmetric, so the label does not change."""
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--subset", type=int, default=None, help="train on the first n images (quick checks)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--json", action="store_true", help="after the table, print its figures as one JSON line")
    args = p.parse_args(argv)

    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    train = load_dataset("fashion-mnist", "train", subset=args.subset)
    test = load_dataset("fashion-mnist", "test")
    model = Classifier(ClassifierConfig()).to(device)
    settings = TrainSettings(batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    opt = model.configure_optimizers(settings)
    spe = len(train) // args.batch_size
    total = spe * args.epochs
    # One-cycle style: linear warm-up over the first 5% of steps, then cosine decay to zero.
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt["model"], lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s, total) / total))))
    gen = torch.Generator(device=device).manual_seed(args.seed)
    print(f"training {sum(p.numel() for p in model.parameters())} parameters on {device}: "
          f"{args.epochs} epochs x {spe} steps of {args.batch_size}", flush=True)
    t_start = time.perf_counter()
    step = 0
    for epoch in range(args.epochs):
        order = epoch_order(args.seed, epoch, len(train))
        model.train()
        run_ce = run_acc = 0.0
        for i in range(spe):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            x = random_hflip(train.images[idx].to(device), gen)
            losses = model.training_step(x, opt, gen, y=train.labels[idx].to(device))
            sched.step()
            step += 1
            run_ce += losses["ce"]
            run_acc += losses["acc"]
            if (i + 1) % 100 == 0:
                print(f"epoch {epoch + 1} step {i + 1}/{spe} ce {run_ce / 100:.4f} acc {run_acc / 100:.4f} "
                      f"({time.perf_counter() - t_start:.0f} s)", flush=True)
                run_ce = run_acc = 0.0
        acc = model.accuracy(test.images.to(device), test.labels)
        print(f"epoch {epoch + 1} done: test accuracy {acc:.4f} ({time.perf_counter() - t_start:.0f} s)", flush=True)
    train_s = time.perf_counter() - t_start
    model.eval()
    acc = model.accuracy(test.images.to(device), test.labels)
    train_meta = {"steps": step, "seconds": round(train_s, 1), "device": str(device),
                  "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "command": "python benchmarks/train_classifier.py " + " ".join(argv or sys.argv[1:]),
                  "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                  "train_images": len(train), "augmentation": "random horizontal flip"}
    checkpoint.save(model.cpu(), args.out, dataset="fashion-mnist", train_steps=step,
                    metrics={"test_accuracy": round(acc, 4)}, training=train_meta)
    print(f"saved {args.out}", flush=True)
    figures = {"test_accuracy": round(acc, 4), "steps": step, "seconds": round(train_s, 1), "epochs": args.epochs}
    report("Fashion-MNIST classifier", ["test accuracy", "steps", "epochs", "seconds"],
           [[f"{acc:.4f}", step, args.epochs, round(train_s, 1)]], figures, device, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
