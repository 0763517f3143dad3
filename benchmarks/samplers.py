"""Samplers measured: domain FID and sampling time of DDIM, DPM-Solver++(2M) and DDPM, and classifier-free guidance.

    python benchmarks/samplers.py                     # the full table (issue 35): about 45 minutes on a CPU
    python benchmarks/samplers.py --json              # the same, then the figures as one JSON line
    python benchmarks/samplers.py --guided runs/ddpm-guided.state.safetensors    # a dry run on a model in training
    python benchmarks/samplers.py --quick --json      # seconds: a few small rows, the table's shape for a test

On the shipped DDPM (--ddpm): DDIM at 10, 20 and 50 steps and DPM-Solver++ at 10 and 20 steps, FID on n = 2,000
samples each; DDPM's ancestral sampler at its 1,000 steps beside DDIM 50 at n = 500. On the class-conditional
DDPM (--guided, default weights/ddpm-guided.safetensors; a training-state file *.state.safetensors also works),
when there is one: DDIM 50 at n = 500, class-balanced (image i asks class i mod 10), per guidance scale w in
{0, 1, 2, 3, 5, 7.5}: FID, and the share of samples the shipped classifier gives the asked class.

One seed for every row: x_T for the largest n is drawn once, on the CPU, from --seed, and a row of n images starts
from its first n (so every sampler denoises the same noise); DDPM's per-step noise comes from a second generator
on the same seed. FID: domain FID (Frechet distance of the shipped classifier's penultimate features, as in
benchmarks/quality.py) against all 10,000 test images. Time: the sampling loop's wall time only (every step of
every batch, the device synchronised), the same batch size and device for every row; loading, a warm-up call
per model, the classifier and the FID are outside it. A row of n = 500 that shares its sampler with a row of
n = 2,000 is that row's first 500 images and their batches' time, when the batch size divides 500.

The full table is 970,000 image-steps of the U-Net (DDPM's 1,000 steps on 500 images are half of them): about 45
minutes on one thread of this machine's CPU. Beside a training run that holds a core, give --threads 1: two
threads fighting a busy core run 10 to 40 times slower, and their times say nothing.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import benchmark_parser, pick, report, synchronize

import torch

from models import checkpoint, metrics
from models.ddpm import to_image_range
from models.weights import weights_dir
from quality import fmt

SCALES = (0.0, 1.0, 2.0, 3.0, 5.0, 7.5)
NUM_CLASSES = 10


@dataclass(frozen=True)
class Plan:
    """Which rows to measure; the full plan is the issue's, --quick a small one with the same kinds of row."""

    fid_n: int = 2000                  # samples per unconditional row
    small_n: int = 500                 # DDPM's row, DDIM's beside it, and every guided row
    ddim_steps: tuple[int, ...] = (10, 20, 50)
    dpm_steps: tuple[int, ...] = (10, 20)
    ddim_ref: int = 50                 # the DDIM row the targets compare with, and the guided rows' steps
    dpm_target: int = 20               # the DPM-Solver++ row with a target
    ddpm_steps: int | None = None      # None: all T steps
    scales: tuple[float, ...] = SCALES
    batch: int = 50                    # one CPU thread: 2.6 ms per image and step at 50, 4.6 at 250
    ref_n: int | None = None           # test images in the FID reference (None: all)


FULL = Plan()
QUICK = Plan(fid_n=20, small_n=20, ddim_steps=(5, 10), dpm_steps=(5,), ddim_ref=10, dpm_target=5, ddpm_steps=20,
             scales=(0.0, 3.0), batch=10, ref_n=1000)


@dataclass(frozen=True)
class Row:
    model: str                         # "ddpm" (unconditional) or "ddpm-guided"
    sampler: str
    steps: int
    n: int
    guidance: float | None = None      # a guided row's scale w; None: the unconditional model

    @property
    def label(self) -> str:
        return {"ddim": "DDIM", "dpm++": "DPM-Solver++(2M)", "ddpm": "DDPM"}[self.sampler]


def load_model(path: Path, device: torch.device):
    """A checkpoint, or the model inside a training-state file (a run still training), in eval mode."""
    if path.name.endswith(".state.safetensors"):
        from models import train

        return train.load_trainer(path, device).model.eval()
    return checkpoint.load(path, device).eval()


class Sampler:
    """One model's samples from the shared x_T, cached per (sampler, steps, w), with each batch's loop time."""

    def __init__(self, model, x_T: torch.Tensor, seed: int, batch: int, device: torch.device) -> None:
        self.model, self.x_T, self.seed, self.batch, self.device = model, x_T, seed, batch, device
        self.done: dict[tuple, tuple[torch.Tensor, list[float]]] = {}
        self.warm: set[float | None] = set()

    def classes(self, n: int, guidance: float | None) -> torch.Tensor | None:
        return None if guidance is None else torch.arange(n) % NUM_CLASSES

    def _loop(self, x_T: torch.Tensor, sampler: str, steps: int, guidance: float | None,
              classes: torch.Tensor | None, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """(images (B, C, H, W) in [0, 1] on the CPU, seconds of the sampling loop)."""
        kwargs = {} if guidance is None else {"classes": classes, "guidance": guidance}
        x_T = x_T.to(self.device)
        synchronize(self.device)
        t0 = time.perf_counter()
        last = None
        for last in self.model.raw_frames(x_T, generator, sampler, steps, **kwargs):
            pass
        synchronize(self.device)
        seconds = time.perf_counter() - t0
        return to_image_range(last.x0).float().cpu(), seconds

    @torch.no_grad()
    def run(self, row: Row) -> tuple[torch.Tensor, float]:
        """(the row's n images, the seconds its sampling loop took)."""
        key = (row.sampler, row.steps, row.guidance)
        if key in self.done:
            images, times = self.done[key]
            if row.n == images.shape[0] or (row.n < images.shape[0] and row.n % self.batch == 0):
                return images[:row.n], sum(times[:row.n // self.batch])
        if row.guidance not in self.warm:            # start-up (first calls, allocations) outside every timing
            b = min(self.batch, row.n)
            self._loop(self.x_T[:b], "ddim", 1, row.guidance, self.classes(b, row.guidance), None)
            self.warm.add(row.guidance)
        noise = torch.Generator(device=self.device).manual_seed(self.seed)     # DDPM's per-step noise
        classes = self.classes(row.n, row.guidance)
        parts, times = [], []
        for start in range(0, row.n, self.batch):
            stop = min(start + self.batch, row.n)
            c = None if classes is None else classes[start:stop].to(self.device)
            images, seconds = self._loop(self.x_T[start:stop], row.sampler, row.steps, row.guidance, c, noise)
            parts.append(images)
            times.append(seconds)
        images = torch.cat(parts)
        if key not in self.done or self.done[key][0].shape[0] < row.n:
            self.done[key] = (images, times)
        return images, sum(times)


def plan_rows(plan: Plan, T: int, guided: bool, part: str = "all") -> list[Row]:
    """The rows to measure; `part` "samplers" or "guidance" keeps one half (the latter with the unconditional
    DDIM row its scale-0 target compares with), so the halves can run as two processes side by side."""
    reference = Row("ddpm", "ddim", plan.ddim_ref, plan.small_n)
    rows = [Row("ddpm", "ddim", k, plan.fid_n) for k in plan.ddim_steps]
    rows += [Row("ddpm", "dpm++", k, plan.fid_n) for k in plan.dpm_steps]
    rows += [reference, Row("ddpm", "ddpm", plan.ddpm_steps or T, plan.small_n)]
    scaled = [Row("ddpm-guided", "ddim", plan.ddim_ref, plan.small_n, w) for w in plan.scales] if guided else []
    if part == "samplers":
        return rows
    if part == "guidance":
        return [reference, *scaled]
    return rows + scaled


def find(figures: list[dict[str, Any]], **match) -> dict[str, Any] | None:
    return next((f for f in figures if all(f[k] == v for k, v in match.items())), None)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(plan: Plan, figures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The issue's three targets, each with its measured ratios and whether it is met (None: rows missing)."""
    ref = find(figures, model="ddpm", sampler="ddim", steps=plan.ddim_ref, n=plan.fid_n)
    dpm = find(figures, model="ddpm", sampler="dpm++", steps=plan.dpm_target, n=plan.fid_n)
    ref_small = find(figures, model="ddpm", sampler="ddim", steps=plan.ddim_ref, n=plan.small_n)
    w0 = find(figures, model="ddpm-guided", guidance=0.0)
    w3 = find(figures, model="ddpm-guided", guidance=3.0)
    out: dict[str, dict[str, Any]] = {}
    fid_x, time_x = ratio(dpm and dpm["fid"], ref and ref["fid"]), ratio(dpm and dpm["seconds"], ref and ref["seconds"])
    out["dpm_vs_ddim"] = {
        "target": f"DPM-Solver++ {plan.dpm_target} steps: FID <= 1.1x and time <= 0.45x DDIM {plan.ddim_ref}'s",
        "fid_ratio": fid_x, "time_ratio": time_x,
        "met": None if fid_x is None or time_x is None else bool(fid_x <= 1.1 and time_x <= 0.45)}
    fid0 = ratio(w0 and w0["fid"], ref_small and ref_small["fid"])
    out["guided_w0"] = {
        "target": f"guided at w 0: FID <= 1.1x the unconditional DDPM's (DDIM {plan.ddim_ref}, n {plan.small_n})",
        "fid_ratio": fid0, "met": None if fid0 is None else bool(fid0 <= 1.1)}
    fid3 = ratio(w3 and w3["fid"], w0 and w0["fid"])
    share = w3["asked_class"] if w3 else None
    out["guided_w3"] = {
        "target": "guided at w 3: >= 95% of samples of the asked class, FID <= 1.5x its own at w 0",
        "asked_class": share, "fid_ratio": fid3,
        "met": None if fid3 is None or share is None else bool(share >= 0.95 and fid3 <= 1.5)}
    return out


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "NOT met")


def x(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}x"


def beside(plan: Plan, row: dict[str, Any], goals: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(the target, what was measured against it) for the rows the issue sets a target on; dashes elsewhere."""
    if row["model"] == "ddpm" and row["sampler"] == "dpm++" and row["steps"] == plan.dpm_target:
        g = goals["dpm_vs_ddim"]
        return (f"FID <= 1.1x, time <= 0.45x DDIM {plan.ddim_ref}",
                f"{x(g['fid_ratio'])}, {x(g['time_ratio'])}: {verdict(g['met'])}")
    if row["model"] == "ddpm-guided" and row["guidance"] == 0.0:
        g = goals["guided_w0"]
        return (f"FID <= 1.1x unconditional DDIM {plan.ddim_ref} n {plan.small_n}",
                f"{x(g['fid_ratio'])}: {verdict(g['met'])}")
    if row["model"] == "ddpm-guided" and row["guidance"] == 3.0:
        g = goals["guided_w3"]
        share = "?" if g["asked_class"] is None else f"{100 * g['asked_class']:.1f}%"
        return (">= 95% asked class, FID <= 1.5x w 0", f"{share}, {x(g['fid_ratio'])}: {verdict(g['met'])}")
    return "-", "-"


def json_safe(value: Any) -> Any:
    """NaN or infinity (a diverged sampler) becomes null, in dicts and lists alike, so the JSON line parses."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--ddpm", default=None, metavar="PATH",
                        help="the unconditional DDPM (default: the shipped weights/ddpm.safetensors)")
    parser.add_argument("--guided", default=None, metavar="PATH",
                        help="the class-conditional DDPM (default: weights/ddpm-guided.safetensors when it exists; "
                             "a training-state file runs/NAME.state.safetensors also works)")
    parser.add_argument("--weights", default=None, help="folder of the shipped weights and the classifier")
    parser.add_argument("--seed", type=int, default=0, help="the one seed of every row (default 0)")
    parser.add_argument("--batch", type=int, default=None, help="images per sampling call, every row (default 50)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--part", choices=("all", "samplers", "guidance"), default="all",
                        help="measure every row (default), only the samplers' rows, or only the guidance rows")
    parser.add_argument("--quick", action="store_true",
                        help="seconds, not minutes: n = 20, few steps, scales 0 and 3; the same kinds of row")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    if args.batch is not None:
        if args.batch < 1:
            parser.error("--batch must be at least 1")
        plan = dataclasses.replace(plan, batch=args.batch)
    device = pick(args.device)
    folder = weights_dir(args.weights)
    started = time.perf_counter()
    notes: list[str] = []

    from models.data import load_dataset

    test = load_dataset("fashion-mnist", "test", download=False).images
    if plan.ref_n:
        test = test[:plan.ref_n]
    classifier = checkpoint.load(folder / "classifier.safetensors", device)   # the Fashion-MNIST yardstick
    ref = metrics.feature_stats(classifier, test)

    models_by_name = {"ddpm": load_model(Path(args.ddpm) if args.ddpm else folder / "ddpm.safetensors", device)}
    guided_path = Path(args.guided) if args.guided else folder / "ddpm-guided.safetensors"
    if guided_path.exists():
        guided = load_model(guided_path, device)
        if not getattr(guided, "conditional", False):
            parser.error(f"{guided_path.name} has no classes, so it has no guidance to measure")
        models_by_name["ddpm-guided"] = guided
    elif args.guided:
        parser.error(f"no file {guided_path}")
    else:
        notes.append(f"no guided rows: {guided_path} does not exist yet (--guided PATH names another file)")

    uncond = models_by_name["ddpm"]
    rows = plan_rows(plan, uncond.schedule.T, "ddpm-guided" in models_by_name, args.part)
    n_max = max(r.n for r in rows)
    image_shape = uncond.image_shape
    x_T = torch.randn((n_max, *image_shape), generator=torch.Generator().manual_seed(args.seed))
    samplers = {name: Sampler(m, x_T, args.seed, plan.batch, device) for name, m in models_by_name.items()}

    figures: list[dict[str, Any]] = []
    for row in rows:
        t0 = time.perf_counter()
        scale = "" if row.guidance is None else f", w {row.guidance:g}"
        print(f"[samplers] {row.model}: {row.label} {row.steps} steps, n {row.n}{scale} ...", file=sys.stderr,
              flush=True)
        images, seconds = samplers[row.model].run(row)
        fid = metrics.fid_result(classifier, images, ref)
        share = None
        if row.guidance is not None:
            labels, _ = metrics.classify(classifier, images)
            share = float((labels.cpu() == torch.arange(row.n) % NUM_CLASSES).float().mean())
        figures.append({"model": row.model, "sampler": row.sampler, "steps": row.steps, "guidance": row.guidance,
                        "n": row.n, "fid": fid.fid, "seconds": seconds, "ms_per_image": 1e3 * seconds / row.n,
                        "asked_class": share})
        print(f"[samplers] done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    goals = targets(plan, figures)
    table_rows = []
    for f in figures:
        target, measured = beside(plan, f, goals)
        table_rows.append([f["model"], {"ddim": "DDIM", "dpm++": "DPM-Solver++", "ddpm": "DDPM"}[f["sampler"]],
                           f["steps"], "-" if f["guidance"] is None else f["guidance"], f["n"], fmt(f["fid"]),
                           fmt(f["seconds"]), fmt(f["ms_per_image"]),
                           "-" if f["asked_class"] is None else f"{100 * f['asked_class']:.1f}%", target, measured])
    notes += [
        f"one seed ({args.seed}) for every row: the same x_T, a row of n images takes the first n; batch "
        f"{plan.batch}, device {device}; time = the sampling loop only (loading and a warm-up excluded).",
        f"FID: domain FID against {test.shape[0]:,} test images (the shipped classifier's features); lower is "
        "better, and fewer samples bias it up: compare rows at the same n.",
        "guided rows: class-balanced (image i asks class i mod 10); asked class = the share the classifier labels "
        "as asked; w 0 is the unconditional model, w 1 the plain conditional one.",
    ]
    for g in goals.values():
        notes.append(f"target: {g['target']}: {verdict(g['met'])}")
    if args.quick:
        notes.append("--quick: small n and few steps; the figures show the table's shape, not the models' quality")
    notes.append(f"took {time.perf_counter() - started:.0f} s")
    headers = ["model", "sampler", "steps", "w", "n", "FID", "time s", "ms/image", "asked class",
               "target (issue 35)", "measured"]
    out = {"seed": args.seed, "batch": plan.batch, "quick": bool(args.quick), "fid_reference_n": int(test.shape[0]),
           "rows": figures, "targets": goals}
    report("Samplers: DDIM, DPM-Solver++(2M), DDPM and classifier-free guidance", headers, table_rows,
           json_safe(out), device, as_json=args.json, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
