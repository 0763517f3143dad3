"""Retrain every shipped model in weights/ with one seeded, resumable command.

    python benchmarks/train_shipped.py                 # all, fast ones first; skips finished ones
    python benchmarks/train_shipped.py --only ddpm --force
    python benchmarks/train_shipped.py --plan          # print what would run, with step counts
    python benchmarks/train_shipped.py --only gan-careful --out runs/trials --fid-every 936   # a trial
    python benchmarks/train_shipped.py --promote gan-careful   # ship it, once a plan in PLANS has its recipe

Each run keeps a training state in runs/NAME.state.safetensors, saved every few minutes, so a stopped run
(a closed laptop, an ended session) continues where it stopped. The checkpoint's metadata records the steps,
the wall time, the device and the final losses. TRIALS are recipes that were tried against a shipped one
(benchmarks/RESULTS.md says what each gave); they run only when named. `--fid-every K` logs the domain FID
(n = 2,000, as benchmarks/quality.py measures it) of the model as it stands every K steps.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import models  # noqa: E402
from models import checkpoint, train  # noqa: E402
from models.data import load_dataset  # noqa: E402
from models.device import pick_device  # noqa: E402


@dataclass(frozen=True)
class Plan:
    """One shipped model: its file name, family, config and how it is trained."""

    name: str
    family: str
    config: dict
    settings: train.TrainSettings
    notes: str = ""
    extra_meta: dict = field(default_factory=dict)
    ships: bool = True          # False: a stage towards a shipped model, written beside the training states
    forger_from: str = ""       # a GAN or VAE-GAN plan whose finished forger this one starts from, with a fresh D
                                # (a VAE-GAN from a GAN: with the GAN's D and a fresh encoder)
    warmup: int = 0             # with forger_from: steps of the fresh network alone before training
    weights_from: str = ""      # a plan whose checkpoint's weights this one starts from; what the source lacks (a
                                # class embedding) must start at zero, so the model begins exactly as the source
    dataset: str = "fashion-mnist"   # what it trains on, at the picture its config's image_shape names


def plan_output(plan: Plan, out_dir: Path, state_dir: Path) -> Path:
    """Where a plan's checkpoint goes: out_dir (weights/) for a shipped model, beside the states for a stage."""
    return (out_dir if plan.ships else state_dir) / f"{plan.name}.safetensors"


def start_from_forger(plan: Plan, trainer: train.Trainer, images: torch.Tensor, state_dir: Path) -> None:
    """Give a new run the finished forger of plan.forger_from (all but its D), then let its fresh D catch up
    alone for plan.warmup steps, so that the forger's first updates follow a detective that already judges it.
    A VAE-GAN from a GAN takes the GAN's G and D, and its fresh encoder learns alone to invert G instead."""
    source_state = state_dir / f"{plan.forger_from}.state.safetensors"
    source_plan = next(pl for pl in PLANS + TRIALS if pl.name == plan.forger_from)
    if not source_state.exists():
        raise SystemExit(f"[{plan.name}] starts from {plan.forger_from}'s forger: train it first "
                         f"(--only {plan.forger_from})")
    source = train.load_trainer(source_state, trainer.model.device)
    if source.step < train.total_steps(source_plan.settings, images.shape[0]):
        raise SystemExit(f"[{plan.name}] {plan.forger_from} stopped at step {source.step}: finish it first "
                         f"(--only {plan.forger_from})")
    model = trainer.model
    if source_plan.family == "gan" and plan.family == "vaegan":
        model.take_generator(source.model)
        warm_step, fresh = model.encoder_step, "the encoder"
    else:
        model.take_generator(source.model)
        warm_step, fresh = model.discriminator_step, "D"
    model.train()
    for _ in range(plan.warmup):
        index = torch.randint(0, images.shape[0], (plan.settings.batch_size,), generator=trainer.generator)
        losses = warm_step(images[index].to(model.device), trainer.optimizers, trainer.generator, trainer.settings)
    model.eval()
    print(f"[{plan.name}] took {plan.forger_from}'s forger (step {source.step}); "
          f"{plan.warmup} steps of {fresh} alone" + (f", ending at {losses}" if plan.warmup else ""), flush=True)


def start_from_weights(plan: Plan, trainer: train.Trainer, out_dir: Path, state_dir: Path) -> None:
    """Give a new run the weights (live and averaged) of plan.weights_from's checkpoint as it stands, in out_dir
    or else in weights/. Every tensor the source lacks must be all zeros in the new model (a zero-initialised
    class embedding), so the new model computes exactly what the source did; its optimizer starts fresh."""
    source_plan = next(pl for pl in PLANS + TRIALS if pl.name == plan.weights_from)
    path = next((p for p in (plan_output(source_plan, d, state_dir) for d in (out_dir, ROOT / "weights"))
                 if p.exists()), None)
    if path is None:
        raise SystemExit(f"[{plan.name}] starts from {plan.weights_from}'s weights: train it first "
                         f"(--only {plan.weights_from})")
    meta = checkpoint.read_metadata(path)
    weights = checkpoint.load(path, trainer.model.device).state_dict()
    model = trainer.model
    new = sorted(k for k in model.state_dict() if k not in weights)
    unknown = sorted(k for k in weights if k not in model.state_dict())
    nonzero = [k for k in new if bool(model.state_dict()[k].any())]
    if unknown or nonzero:
        raise SystemExit(f"[{plan.name}] cannot start from {path.name}: the model lacks its tensors {unknown}, or "
                         f"its own new tensors {nonzero} do not start at zero")
    model.load_state_dict(weights, strict=False)
    trainer.meta["weights_from"] = {"plan": plan.weights_from, "file": path.name, "steps": meta.train_steps,
                                    "new_tensors": new}
    print(f"[{plan.name}] took {path.name} ({meta.train_steps} steps); new, at zero: {', '.join(new)}", flush=True)


DENSE = {"hidden": [512, 256]}
WIDE = {"channels": [64, 128]}
# An EMA of the generator that decodes (benchmarks/RESULTS.md); CAREFUL adds the hinge loss against a
# spectrally normalised D.
EMA = {"ema_decay": 0.999}
CAREFUL = {"loss": "hinge", "spectral_norm": True, **EMA}
DDPM: dict = {}             # the shipped DDPM's config: the family's defaults
GUIDED_STEPS = 4_500
GUIDED_STAGE2_STEPS = 2_400
# The colour models, on `shapes` (3x32x32, 19,440 training pictures, 152 steps an epoch at batch 128), sized to
# train on one shared CPU core in well under 40 minutes each (benchmarks/RESULTS.md): the classifier behind their
# labels and domain FID, one head per factor (shape, colour, size, x, y); and a conv VAE with an 8-d latent, room
# for the five factors (colour alone takes two or three axes) that the KL term does not spend on nothing.
SHAPES = {"image_shape": [3, 32, 32]}
SHAPES_HEADS = [3, 6, 3, 4, 4]
SHAPES_VAE_STEPS = 10_000

PLANS: tuple[Plan, ...] = (
    Plan("ae-2d", "ae", {"latent_dim": 2, **DENSE},
         train.TrainSettings(batch_size=128, lr=1e-3, seed=1, epochs=30)),
    Plan("vae-2d", "vae", {"latent_dim": 2, "arch": "dense", **DENSE},
         train.TrainSettings(batch_size=128, lr=1e-3, seed=1, epochs=30)),
    # the CAE and the conv VAE share the GAN's and VAE-GAN's conv decoder, at the same width
    Plan("cae-16", "cae", {"latent_dim": 16, **WIDE},
         train.TrainSettings(batch_size=128, lr=1e-3, seed=1, epochs=15)),
    Plan("conv-vae-16", "vae", {"latent_dim": 16, "arch": "conv", **WIDE},
         train.TrainSettings(batch_size=128, lr=1e-3, seed=1, epochs=15)),
    # the GAN in stages: the DCGAN to its plateau at lr 1e-3, its rates falling to zero over the last 10 of 32
    # epochs; then that G (and its EMA) against a fresh D twice as wide, 400 steps of D alone and 6 epochs of both at
    # 2e-4 falling to zero; then the same against a fresh D four times as wide, four times, the last two for 4
    # epochs, the last drawn from another seed (benchmarks/RESULTS.md: FID 48 after the first stage, then 41, 38,
    # 37, 36 and 35). Each stage starts from the last one's finished state.
    Plan("gan-base", "gan", {"latent_dim": 16, **WIDE, **EMA},
         train.TrainSettings(batch_size=128, lr=1e-3, seed=1, epochs=32, extra=(("lr_decay_from", 10_296),)),
         ships=False),
    *(Plan(name, "gan", {"latent_dim": 16, **WIDE, **EMA, "d_channels": d_channels},
           train.TrainSettings(batch_size=128, lr=2e-4, seed=seed, epochs=epochs, extra=(("lr_decay_from", 0),)),
           ships=name == "gan", forger_from=forger_from, warmup=400)
      for name, d_channels, forger_from, epochs, seed in (("gan-stage-2", [128, 256], "gan-base", 6, 1),
                                                          ("gan-stage-3", [256, 512], "gan-stage-2", 6, 1),
                                                          ("gan-stage-4", [256, 512], "gan-stage-3", 6, 1),
                                                          ("gan-stage-5", [256, 512], "gan-stage-4", 4, 1),
                                                          ("gan", [256, 512], "gan-stage-5", 4, 2))),
    # Larsen et al.'s game started from the finished GAN: its G and D, and a fresh encoder that first learns alone,
    # for 600 steps, to invert G; then 3 epochs of Algorithm 1 at 2e-4 falling to zero. Prior draws start where the
    # GAN's are, instead of in the holes a VAE-GAN trained from scratch leaves (vaegan-scratch, benchmarks/RESULTS.md)
    Plan("vaegan", "vaegan", {"latent_dim": 16, **WIDE, **EMA, "d_channels": [256, 512]},
         train.TrainSettings(batch_size=128, lr=2e-4, seed=1, epochs=3, extra=(("lr_decay_from", 0),)),
         forger_from="gan", warmup=600),
    Plan("ddpm", "ddpm", DDPM,
         train.TrainSettings(batch_size=64, lr=1e-3, seed=1, steps=40_000)),
    # classifier-free guidance (Ho & Salimans 2022): the shipped DDPM's weights as they stand, a zero-initialised
    # class embedding added to the time embedding (so it starts as exactly that DDPM), each label dropped to
    # "no class" with probability 0.1; fine-tuned at half the DDPM's rate, falling linearly to zero over the last
    # third of the run
    # The guided DDPM in three stages from the shipped DDPM. The first teaches the class (the null class one example
    # in ten, as Ho & Salimans train); it left the no-class half worse than the DDPM it started from (FID 33.5
    # against 19.0 at w = 0), so the second, at a lower rate, gives the null class half of the examples, and the
    # third four in five.
    Plan("ddpm-guided-stage1", "ddpm", {**DDPM, "num_classes": 10},
         train.TrainSettings(batch_size=128, lr=5e-4, seed=1, steps=GUIDED_STEPS,
                             extra=(("p_uncond", 0.1), ("lr_decay_from", GUIDED_STEPS * 2 // 3))),
         weights_from="ddpm", ships=False),
    Plan("ddpm-guided-stage2", "ddpm", {**DDPM, "num_classes": 10},
         train.TrainSettings(batch_size=128, lr=2e-4, seed=2, steps=GUIDED_STAGE2_STEPS,
                             extra=(("p_uncond", 0.5), ("lr_decay_from", GUIDED_STAGE2_STEPS // 2))),
         weights_from="ddpm-guided-stage1", ships=False),
    # the third: the null class four examples in five at half stage 2's rate, which closed the last of the gap
    # (w = 0 at 0.996x the unconditional DDPM's FID) and kept w = 3's class (96.2 %)
    Plan("ddpm-guided", "ddpm", {**DDPM, "num_classes": 10},
         train.TrainSettings(batch_size=128, lr=1e-4, seed=3, steps=1_200,
                             extra=(("p_uncond", 0.8), ("lr_decay_from", 600))),
         weights_from="ddpm-guided-stage2"),
    Plan("classifier-shapes", "classifier", {**SHAPES, "num_classes": SHAPES_HEADS[0], "heads": SHAPES_HEADS},
         train.TrainSettings(batch_size=128, lr=3e-3, seed=1, epochs=12, extra=(("lr_decay_from", 1_208),)),
         dataset="shapes"),
    # the conv VAE's encoder and decoder three stages deep (32 -> 16 -> 8 -> 4), its rate falling linearly to zero
    # over the last third
    Plan("shapes-vae", "vae", {**SHAPES, "latent_dim": 8, "arch": "conv", "channels": [32, 64, 128]},
         train.TrainSettings(batch_size=128, lr=1e-3, seed=1, steps=SHAPES_VAE_STEPS,
                             extra=(("lr_decay_from", SHAPES_VAE_STEPS * 2 // 3),)),
         dataset="shapes"),
    # shapes-vae as a beta-VAE (Higgins et al. 2017): the same recipe with the KL weighed 4 times, shipped beside it
    # so the Directions tab and benchmarks/directions.py show what beta does to the factors' directions
    Plan("shapes-vae-beta4", "vae", {**SHAPES, "latent_dim": 8, "arch": "conv", "channels": [32, 64, 128]},
         train.TrainSettings(batch_size=128, lr=1e-3, seed=1, steps=SHAPES_VAE_STEPS, beta=4.0,
                             extra=(("lr_decay_from", SHAPES_VAE_STEPS * 2 // 3),)),
         dataset="shapes"),
)

# Tried against the shipped recipe; run only when named (--only NAME), best with --out runs/trials.
TRIALS: tuple[Plan, ...] = (
    # hinge + spectral norm + TTUR (D at twice G's rate): level with the plain loss at 2 and 4 epochs, 20% slower
    Plan("gan-careful", "gan", {"latent_dim": 16, **WIDE, **CAREFUL},
         train.TrainSettings(batch_size=128, lr=2e-4, seed=1, epochs=40, extra=(("lr_d", 4e-4),))),
    # the GAN shipped until the seventh session: the DCGAN at lr 2e-4 for 50 epochs, the rates falling linearly
    # to zero from 40 (step 18,720); FID 49.7
    Plan("gan-lr2e-4", "gan", {"latent_dim": 16, **WIDE, **EMA},
         train.TrainSettings(batch_size=128, lr=2e-4, seed=1, epochs=50, extra=(("lr_decay_from", 18_720),))),
    # gan-lr2e-4 stretched to 66 epochs, its decay still from 40: goes on from a copy of its finished state
    # (cp runs/gan-lr2e-4.state.safetensors runs/gan-longer.state.safetensors) at 62% of the rate, falling to zero
    Plan("gan-longer", "gan", {"latent_dim": 16, **WIDE, **EMA},
         train.TrainSettings(batch_size=128, lr=2e-4, seed=1, epochs=66, extra=(("lr_decay_from", 18_720),))),
    # the VAE-GAN shipped until the tenth session, from scratch: 40 epochs, then 6 with its rates falling linearly to
    # zero (from step 18,720); FID 106. The trials below go on from it
    Plan("vaegan-scratch", "vaegan", {"latent_dim": 16, **WIDE, **CAREFUL},
         train.TrainSettings(batch_size=128, lr=3e-4, seed=1, epochs=46, extra=(("lr_decay_from", 18_720),))),
    # vaegan-scratch stretched to 52 epochs with gamma lowered, so that the decoder leans on the GAN term
    # more than on the feature reconstruction: goes on from a copy of its finished state at half the rate
    *(Plan(f"vaegan-gamma-{gamma}", "vaegan", {"latent_dim": 16, **WIDE, **CAREFUL},
           train.TrainSettings(batch_size=128, lr=3e-4, seed=1, epochs=52,
                               extra=(("lr_decay_from", 18_720), ("gamma", gamma))))
      for gamma in (0.3, 0.1)),
    # the same stretch with the KL weighted by beta, pulling the codes of the data towards the prior
    *(Plan(f"vaegan-beta-{beta}", "vaegan", {"latent_dim": 16, **WIDE, **CAREFUL},
           train.TrainSettings(batch_size=128, lr=3e-4, seed=1, epochs=52, beta=beta,
                               extra=(("lr_decay_from", 18_720),)))
      for beta in (2.0, 4.0)),
    # the GAN's second stage for vaegan-scratch: its finished encoder and decoder against a fresh spectrally normalised
    # D twice as wide (which also measures llike), 400 steps of D alone, then 4 epochs at 2e-4 falling to zero
    Plan("vaegan-wide-d", "vaegan", {"latent_dim": 16, **WIDE, **CAREFUL, "d_channels": [128, 256]},
         train.TrainSettings(batch_size=128, lr=2e-4, seed=1, epochs=4, extra=(("lr_decay_from", 0),)),
         forger_from="vaegan-scratch", warmup=400),
    # stretched to 54 epochs (from a copy of the finished state, at 57% of the rate falling to zero again) with an
    # MMD term pulling the batch's codes as a whole towards N(0, I): prior draws fell in the holes between them
    *(Plan(f"vaegan-mmd-{mmd:g}", "vaegan", {"latent_dim": 16, **WIDE, **CAREFUL},
           train.TrainSettings(batch_size=128, lr=3e-4, seed=1, epochs=54,
                               extra=(("lr_decay_from", 18_720), ("mmd", mmd))))
      for mmd in (100.0, 300.0)),
)


def promote(trial: Plan, plans: tuple[Plan, ...], trial_dir: Path, out_dir: Path, state_dir: Path) -> Plan:
    """Ship a finished trial as the shipped plan given the same recipe (family, config, settings; edit PLANS
    first): its training state takes the plan's name, so that a later run continues it, and its checkpoint goes
    to out_dir with a command that names the plan. The plan's old state must have been renamed first."""
    plan = next((pl for pl in plans if pl.ships and (pl.family, pl.config, pl.settings)
                 == (trial.family, trial.config, trial.settings)), None)
    if plan is None:
        raise SystemExit(f"no shipped plan has {trial.name}'s recipe: give one in PLANS first")
    old_state, new_state = (state_dir / f"{name}.state.safetensors" for name in (trial.name, plan.name))
    if new_state.exists():
        raise SystemExit(f"{new_state} still holds the plan's old run: rename it after the stage it becomes")
    source = trial_dir / f"{trial.name}.safetensors"
    meta = checkpoint.read_metadata(source)
    if not meta.training.get("finished"):
        raise SystemExit(f"{source} has not finished its plan: train it first (--only {trial.name})")
    training = {**meta.training, "command": f"python benchmarks/train_shipped.py --only {plan.name}"}
    checkpoint.save(checkpoint.load(source), plan_output(plan, out_dir, state_dir), dataset=meta.dataset,
                    train_steps=meta.train_steps, metrics=meta.metrics, training=training)
    old_state.rename(new_state)
    return plan


def run_plan(plan: Plan, images: torch.Tensor, test_images: torch.Tensor, out_dir: Path, state_dir: Path,
             device: torch.device, save_every_s: float, stop_after_s: float | None,
             fid: "FidProbe | None" = None, fid_every: int = 0, labels: torch.Tensor | None = None,
             test_labels: torch.Tensor | None = None) -> bool:
    """Train (or resume) one plan; returns True when the model reached its last step and was saved.
    labels: the images' classes (a classifier with a head per factor: their factors, (N, F)), which a
    class-conditional model or a classifier trains on (the others ignore them); test_labels: the test images'."""
    state_path = state_dir / f"{plan.name}.state.safetensors"
    if state_path.exists():
        trainer = train.load_trainer(state_path, device)
        # A plan may grow longer than the run that was saved, or add a rate decay from a step the saved run has
        # not passed: the data order depends only on (seed, epoch), so continuing is the same as having planned
        # the longer run from the start.
        trainer.settings = dataclasses.replace(trainer.settings, epochs=plan.settings.epochs,
                                               steps=plan.settings.steps, beta=plan.settings.beta,
                                               extra=plan.settings.extra)
        print(f"[{plan.name}] resuming at step {trainer.step}", flush=True)
    else:
        torch.manual_seed(plan.settings.seed)
        model = models.build(plan.family, plan.config).to(device)
        trainer = train.new_trainer(model, plan.settings, dataset=plan.dataset)
        trainer.meta["train_seconds"] = 0.0
        if plan.forger_from:
            start_from_forger(plan, trainer, images, state_dir)
            train.save_trainer(trainer, state_path)
        if plan.weights_from:
            start_from_weights(plan, trainer, out_dir, state_dir)
            train.save_trainer(trainer, state_path)
    total = train.total_steps(trainer.settings, images.shape[0])
    started = time.perf_counter()
    last_save = started
    seconds_before = float(trainer.meta.get("train_seconds", 0.0))
    window: list[dict[str, float]] = []
    finished = True
    for event in train.run(trainer, images, labels=labels):
        window.append(event.losses)
        window = window[-200:]
        now = time.perf_counter()
        trainer.meta["train_seconds"] = seconds_before + (now - started)
        if event.step % 200 == 0 or event.step == total:
            mean = {k: sum(w[k] for w in window) / len(window) for k in window[-1]}
            print(f"[{plan.name}] step {event.step}/{total} epoch {event.epoch} "
                  f"{event.samples_per_s:.0f} img/s " + " ".join(f"{k}={v:.4g}" for k, v in mean.items()),
                  flush=True)
        if fid is not None and fid_every and event.step % fid_every == 0:
            print(f"[{plan.name}] step {event.step} domain FID {fid(trainer.model):.1f} (n=2000)", flush=True)
        if now - last_save > save_every_s:
            train.save_trainer(trainer, state_path)
            last_save = now
        if stop_after_s is not None and now - started > stop_after_s and event.step < total:
            finished = False
            break
    train.save_trainer(trainer, state_path)
    if not finished:
        print(f"[{plan.name}] paused at step {trainer.step}/{total}; rerun to continue", flush=True)
    model = trainer.model.eval()
    final_losses = {k: sum(w[k] for w in window) / len(window) for k in window[-1]} if window else {}
    metrics = {f"train_{k}": round(v, 5) for k, v in final_losses.items()}
    metrics.update(quick_metrics(model, test_images, test_labels, data_factor_names(plan.dataset)))
    training = {
        "steps": trainer.step, "target_steps": total, "seconds": round(trainer.meta["train_seconds"], 1),
        "device": str(device), "settings": json.loads(json.dumps(trainer.settings.__dict__)),
        "command": f"python benchmarks/train_shipped.py --only {plan.name}", "finished": finished,
        "torch": torch.__version__,
    }
    if "weights_from" in trainer.meta:
        training["weights_from"] = trainer.meta["weights_from"]
    target = plan_output(plan, out_dir, state_dir)
    checkpoint.save(model, target, dataset=plan.dataset, train_steps=trainer.step, metrics=metrics,
                    training=training)
    print(f"[{plan.name}] saved {target} {metrics}", flush=True)
    return finished


class FidProbe:
    """The domain FID of a model as it stands, measured as benchmarks/quality.py does (same seed, n = 2,000)."""

    def __init__(self, test_images: torch.Tensor, weights: Path, device: torch.device) -> None:
        from models import metrics

        self.classifier = checkpoint.load(weights / "classifier.safetensors", device)
        self.ref = metrics.feature_stats(self.classifier, test_images)

    def __call__(self, model: models.LatentModel) -> float:
        from quality import samples

        from models import metrics

        was_training = model.training
        model.eval()
        x = samples(model, 2000, model.device, 0, 50)
        model.train(was_training)
        return metrics.fid_result(self.classifier, x, self.ref).fid


@torch.no_grad()
def quick_metrics(model: models.LatentModel, test_images: torch.Tensor, test_labels: torch.Tensor | None = None,
                  factor_names: tuple[str, ...] = ()) -> dict:
    """Cheap figures every checkpoint carries: test reconstruction MSE for families with an encoder; a
    classifier's test accuracy on the whole split (with a head per factor: their mean, and each factor's, named
    as `python -m models train --family classifier` names them)."""
    if "classify" in model.capabilities and test_labels is not None:
        per_head = model.factor_accuracy(test_images.to(model.device), test_labels)
        figures: dict = {"test_accuracy": round(sum(per_head) / len(per_head), 4), "test_images": len(test_images)}
        if len(per_head) > 1:
            names = factor_names or tuple(f"head {k}" for k in range(len(per_head)))
            figures["test_accuracy_per_factor"] = {n: round(a, 4) for n, a in zip(names, per_head)}
        return figures
    if "encode" not in model.capabilities:
        return {}
    x = test_images[:2000].to(model.device)
    recon = torch.cat([model.decode(model.encode(b).mu) for b in x.split(500)])
    return {"test_recon_mse": round(float(((recon - x) ** 2).mean()), 6)}


def data_factor_names(dataset: str) -> tuple[str, ...]:
    from models.catalog import data_factors

    return tuple(f.name for f in data_factors(dataset))


class PlanData:
    """Each data set a plan trains on, loaded once, as tensors in memory (a generated set drawn once)."""

    def __init__(self) -> None:
        self._splits: dict[tuple[str, tuple, str], "models.data.ImageData"] = {}

    def split(self, plan: Plan, split: str):
        shape = tuple(plan.config.get("image_shape", ())) or None
        key = (plan.dataset, shape, split)
        if key not in self._splits:
            kwargs = {"image_size": shape[1], "channels": shape[0]} if shape else {}
            data = load_dataset(plan.dataset, split, **kwargs)
            if not isinstance(data.images, torch.Tensor):
                data = dataclasses.replace(data, images=data.tensor())
            self._splits[key] = data
        return self._splits[key]

    def labels(self, plan: Plan, split: str) -> torch.Tensor | None:
        """What the plan's model learns from, if anything: a classifier with a head per factor the factors,
        any other model the classes."""
        data = self.split(plan, split)
        return data.factors if len(plan.config.get("heads", ())) > 1 else data.labels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", help="names to train (default: all, in order)")
    p.add_argument("--force", action="store_true", help="retrain even if weights/NAME.safetensors exists")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(ROOT / "weights"))
    p.add_argument("--state-dir", default=str(ROOT / "runs"))
    p.add_argument("--save-every-s", type=float, default=240.0)
    p.add_argument("--stop-after-s", type=float, default=None, help="pause each run after this long")
    p.add_argument("--plan", action="store_true", help="print the plan and exit")
    p.add_argument("--fid-every", type=int, default=0, help="log the domain FID (n=2,000) every K steps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="after the table, print its figures as one JSON line")
    p.add_argument("--promote", metavar="TRIAL", help="ship this finished trial (from --trial-dir) as the plan "
                   "with its recipe, then exit")
    p.add_argument("--trial-dir", default=str(ROOT / "runs" / "trials"), help="where --promote finds the trial")
    args = p.parse_args(argv)
    if args.promote:
        trial = next((pl for pl in TRIALS if pl.name == args.promote), None)
        if trial is None:
            p.error(f"unknown trial: {args.promote}")
        plan = promote(trial, PLANS, Path(args.trial_dir), Path(args.out), Path(args.state_dir))
        print(f"[{trial.name}] shipped as {plan.name}", flush=True)
        return 0
    names = args.only or [pl.name for pl in PLANS]
    unknown = set(names) - {pl.name for pl in PLANS + TRIALS}
    if unknown:
        p.error(f"unknown model name(s): {', '.join(sorted(unknown))}")
    if args.threads:
        torch.set_num_threads(args.threads)
    train.flush_denormals()                 # before any torch work, so torch's worker threads flush too
    device = pick_device(args.device)
    data_of = PlanData()
    out_dir, state_dir = Path(args.out), Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    fashion = [pl for pl in PLANS + TRIALS if pl.name in names and pl.dataset == "fashion-mnist"]
    fid = FidProbe(data_of.split(fashion[0], "test").images, Path(args.out)
                   if (Path(args.out) / "classifier.safetensors").exists() else ROOT / "weights",
                   device) if args.fid_every and fashion else None
    for plan in PLANS + TRIALS:
        if plan.name not in names:
            continue
        data, test = data_of.split(plan, "train"), data_of.split(plan, "test")
        steps = train.total_steps(plan.settings, len(data))
        target = plan_output(plan, out_dir, state_dir)
        state_path = state_dir / f"{plan.name}.state.safetensors"
        if args.plan:
            continue
        if args.force and state_path.exists():
            state_path.unlink()
        if target.exists() and not args.force and checkpoint.read_metadata(target).train_steps >= steps:
            print(f"[{plan.name}] finished; --force retrains it", flush=True)
            continue
        run_plan(plan, data.images, test.images, out_dir, state_dir, device, args.save_every_s,
                 args.stop_after_s, fid if plan.dataset == "fashion-mnist" else None, args.fid_every,
                 labels=data_of.labels(plan, "train"), test_labels=data_of.labels(plan, "test"))
    summarize([pl for pl in PLANS + TRIALS if pl.name in names], out_dir, state_dir, data_of, device, args.json)
    return 0


def summarize(plans: list[Plan], out_dir: Path, state_dir: Path, data_of: PlanData, device: torch.device,
              as_json: bool) -> None:
    """One table of every planned model: its steps against the plan, and the time and device it took."""
    from _common import report

    rows, figures = [], {}
    for plan in plans:
        target = plan_output(plan, out_dir, state_dir)
        planned = train.total_steps(plan.settings, len(data_of.split(plan, "train")))
        meta = checkpoint.read_metadata(target) if target.exists() else None
        training = meta.training if meta else {}
        figures[plan.name] = {"family": plan.family, "planned_steps": planned,
                              "steps": meta.train_steps if meta else 0,
                              "seconds": training.get("seconds"), "device": training.get("device")}
        f = figures[plan.name]
        rows.append([plan.name, plan.family, plan.settings.batch_size, planned, f["steps"],
                     f["seconds"] if f["seconds"] is not None else "-", f["device"] or "-"])
    report("Shipped models: planned and trained", ["model", "family", "batch", "planned steps", "trained steps",
           "seconds", "device"], rows, figures, device, as_json=as_json)


if __name__ == "__main__":
    raise SystemExit(main())
