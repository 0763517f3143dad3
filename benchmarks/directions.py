"""Directions measured: does moving a code along a meaning change the picture's meaning, as the tutorial claims?

    python benchmarks/directions.py              # every shipped model with an encoder, the GAN, the shapes VAEs
    python benchmarks/directions.py --json       # the same, then the figures as one JSON line
    python benchmarks/directions.py --quick      # seconds: few images and triples, the table's shape for a test

transfer (each shipped model with an encoder: ae-2d, vae-2d, cae-16, conv-vae-16, vaegan): for every ordered
class pair A -> B (90 pairs), the first --per-class test images of class A are moved by one class-mean distance
along A -> B (z + mean_B - mean_A, codes = the posterior mean) and decoded; the share the shipped classifier calls B.
analogy: 50 seeded triples (a, b of one class, c of another, from the test images the model reconstructs as
their own class, `recognisable`): the share whose a - b + c decodes to c's class; `analogy_1000` the same over
1,000 triples, a steadier estimate; `analogy_any_1000` over 1,000 triples from all 10,000 test images, where a
decoder that already draws c as another class counts against the analogy too.
ganspace (the shipped GAN): its GANSpace directions (models.directions.ganspace, seed 0) and the time they take;
for each of the first five, the share of --gan-samples sampled z whose label changes at -3 sigma or +3 sigma
(each end counted), beside random directions moved as far.
shapes (weights/shapes-vae.safetensors, and shapes-vae-beta4 when it exists): per factor, its direction from the
first value's mean code to the last's; the pictures with the first value are moved one mean distance; the
shapes classifier judges the model's reconstruction before and the moved picture after: how often the intended
factor's value changes, and how often every other factor keeps its value (a measure of disentanglement).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import benchmark_parser, pick, report

import torch

from models import checkpoint
from models import directions as D
from models.catalog import data_factors
from models.weights import weights_dir

ENCODER_MODELS = ("ae-2d", "vae-2d", "cae-16", "conv-vae-16", "vaegan")
SHAPES_MODELS = ("shapes-vae", "shapes-vae-beta4")
GANSPACE_TARGET_S = 10.0


@dataclass(frozen=True)
class Plan:
    per_class: int = 200          # class-A images moved per pair
    triples: int = 50
    many_triples: int = 1000
    gan_samples: int = 500
    ganspace_n: int = D.GANSPACE_SAMPLES
    shapes_limit: int | None = None


FULL = Plan()
QUICK = Plan(per_class=10, triples=20, many_triples=40, gan_samples=40, ganspace_n=500, shapes_limit=300)


def decode_labels(model, classifier, z: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([classifier.classify(model.decode(zb))[0].cpu() for zb in z.split(batch)])


def transfer(model, classifier, codes: torch.Tensor, labels: torch.Tensor, per_class: int) -> float:
    """The share of class-A images called B after one class-mean distance along A -> B, over all ordered pairs."""
    classes = sorted(int(c) for c in labels.unique())
    moved, want = [], []
    for a in classes:
        z = codes[labels == a][:per_class]
        for b in classes:
            if a != b:
                d = D.class_mean_direction(codes, labels, a, b)
                moved.append(D.move(z, [d], [d.length]))
                want.append(torch.full((len(z),), b))
    return float((decode_labels(model, classifier, torch.cat(moved)) == torch.cat(want)).float().mean())


def analogy(model, classifier, codes: torch.Tensor, labels: torch.Tensor, triples: int, seed: int,
            pool: torch.Tensor | None = None) -> float:
    """The share of seeded triples (a, b of one class, c of another, from `pool`) whose a - b + c decodes to c's
    class."""
    a, b, c, want = D.analogy_triples(labels, triples, seed, pool)
    got = decode_labels(model, classifier, D.analogy(codes[a], codes[b], codes[c]))
    return float((got == want).float().mean())


def ganspace_rows(gan, classifier, plan: Plan, seed: int) -> dict[str, Any]:
    """GANSpace's time, and each of its first five directions' label change rate at -3 and +3 sigma."""
    t0 = time.perf_counter()
    dirs = D.ganspace(gan, k=5, n=plan.ganspace_n, generator=torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - t0
    z = gan.prior(plan.gan_samples, torch.Generator().manual_seed(seed + 1))
    base = decode_labels(gan, classifier, z)

    def change(d: D.Direction) -> float:
        ends = [decode_labels(gan, classifier, D.move(z, [d], [a])) != base for a in (-3.0, 3.0)]
        return float(torch.cat(ends).float().mean())

    g = torch.Generator().manual_seed(seed + 2)
    rates = [change(d) for d in dirs]
    randoms = []
    for d in dirs:             # a random way, moved as far in z as d is
        r = torch.randn(d.vector.shape, generator=g)
        randoms.append(change(D.Direction("random", D.PRINCIPAL, "random", r / r.norm() * d.vector.norm() * d.sigma)))
    return {"seconds": seconds, "n": plan.ganspace_n, "samples": plan.gan_samples, "rates": rates,
            "mean": sum(rates) / len(rates), "random_mean": sum(randoms) / len(randoms),
            "sigmas": [d.sigma for d in dirs]}


def shapes_rows(model, classifier, data, limit: int | None) -> list[dict[str, Any]]:
    """Per factor direction: how often the intended factor changes and how often the others stay."""
    n = len(data) if limit is None else min(limit, len(data))
    images, factors = data.images[:n], data.factors[:n]
    codes = D.latent_codes(model, images)
    info = data_factors(data.name)
    dirs = D.factor_directions(codes, factors, [f.name for f in info], [f.values for f in info])
    with torch.no_grad():
        before = torch.cat([classifier.classify_factors(model.decode(zb))[0].cpu() for zb in codes.split(500)])
    rows = []
    for f, d in enumerate(dirs):
        pick_ = factors[:, f] == 0
        moved = D.move(codes[pick_], [d], [d.length])
        with torch.no_grad():
            after = torch.cat([classifier.classify_factors(model.decode(zb))[0].cpu() for zb in moved.split(500)])
        was = before[pick_]
        others = [i for i in range(was.shape[1]) if i != f]
        rows.append({"factor": info[f].name, "direction": d.name, "n": int(pick_.sum()),
                     "intended_changes": float((after[:, f] != was[:, f]).float().mean()),
                     "reaches_last": float((after[:, f] == len(info[f].values) - 1).float().mean()),
                     "others_stay": float((after[:, others] == was[:, others]).all(dim=1).float().mean())})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="folder of the shipped weights and classifiers")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the triples and GANSpace (default 0)")
    parser.add_argument("--per-class", type=int, default=None, help="class-A images moved per pair (default 200)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="seconds: few images, triples and samples")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    if args.per_class is not None:
        plan = dataclasses.replace(plan, per_class=args.per_class)
    device = pick(args.device)
    folder = weights_dir(args.weights)
    started = time.perf_counter()

    from models.data import load_dataset

    test = load_dataset("fashion-mnist", "test", download=False)
    images, labels = test.images, test.labels
    classifier = checkpoint.load(folder / "classifier.safetensors", device).eval()
    out: dict[str, Any] = {"seed": args.seed, "quick": bool(args.quick), "per_class": plan.per_class,
                           "transfer": {}, "recognisable": {}, "analogy": {}, "analogy_1000": {},
                           "analogy_any_1000": {}}
    rows: list[list[Any]] = []
    notes: list[str] = []
    for name in ENCODER_MODELS:
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            notes.append(f"{name}: no {path.name} in {folder}")
            continue
        print(f"[directions] {name} ...", file=sys.stderr, flush=True)
        model = checkpoint.load(path, device).eval()
        codes = D.latent_codes(model, images)
        out["transfer"][name] = transfer(model, classifier, codes, labels, plan.per_class)
        seen = decode_labels(model, classifier, codes) == labels       # reconstructed as their own class
        out["recognisable"][name] = float(seen.float().mean())
        out["analogy"][name] = analogy(model, classifier, codes, labels, plan.triples, args.seed, seen)
        out["analogy_1000"][name] = analogy(model, classifier, codes, labels, plan.many_triples, args.seed, seen)
        out["analogy_any_1000"][name] = analogy(model, classifier, codes, labels, plan.many_triples, args.seed)
        rows.append([name, "transfer A → B", f"{100 * out['transfer'][name]:.1f}%",
                     f"{plan.per_class} images x 90 pairs"])
        rows.append([name, f"analogy, {plan.triples} triples", f"{100 * out['analogy'][name]:.0f}%",
                     f"{plan.many_triples} triples: {100 * out['analogy_1000'][name]:.1f}%"])
        rows.append([name, f"analogy, any {plan.many_triples} triples",
                     f"{100 * out['analogy_any_1000'][name]:.1f}%",
                     f"reconstructions of their own class: {100 * out['recognisable'][name]:.1f}%"])

    gan_path = folder / "gan.safetensors"
    if gan_path.is_file():
        print("[directions] gan: GANSpace ...", file=sys.stderr, flush=True)
        g = ganspace_rows(checkpoint.load(gan_path, device).eval(), classifier, plan, args.seed)
        out["ganspace"] = {"gan": g}
        for i, rate in enumerate(g["rates"], start=1):
            rows.append(["gan", f"GANSpace {i}, ±3σ label change", f"{100 * rate:.1f}%",
                         f"σ {g['sigmas'][i - 1]:.2f}"])
        rows.append(["gan", "random ways as far, label change", f"{100 * g['random_mean']:.1f}%",
                     "the baseline"])
        rows.append(["gan", "GANSpace time", f"{g['seconds']:.2f} s",
                     f"{g['n']:,} z; target ≤ {GANSPACE_TARGET_S:.0f} s"])

    shapes = None
    for name in SHAPES_MODELS:
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            notes.append(f"{name}: no {path.name} yet, so no row")
            continue
        print(f"[directions] {name} ...", file=sys.stderr, flush=True)
        if shapes is None:
            shapes = load_dataset("shapes", "test")
            shapes_classifier = checkpoint.load(folder / "classifier-shapes.safetensors", device).eval()
        result = shapes_rows(checkpoint.load(path, device).eval(), shapes_classifier, shapes, plan.shapes_limit)
        out.setdefault("shapes", {})[name] = result
        for r in result:
            rows.append([name, r["direction"], f"{100 * r['intended_changes']:.0f}% change",
                         f"others stay {100 * r['others_stay']:.0f}%; reach {r['direction'].split('→')[-1].strip()}"
                         f" {100 * r['reaches_last']:.0f}% (n {r['n']})"])

    out["seconds"] = time.perf_counter() - started
    notes += [
        "transfer: z + (mean_B - mean_A) for the first images of class A, decoded, labelled by the shipped "
        "classifier; codes are the posterior mean (an AE's code).",
        "analogy: a - b + c with a, b of one class and c of another, all three among the pictures the model "
        "reconstructs as their own class; the share labelled as c's class. 'any': drawn from all test images.",
        "ganspace: the share of (z, end) pairs whose label at -3σ or +3σ differs from z's own.",
        "shapes: the moved pictures had the factor's first value; changes and stays are judged against the "
        "classifier's reading of the model's own reconstruction.",
    ]
    if args.quick:
        notes.append("--quick: few images and triples; the figures show the table's shape, not the models")
    notes.append(f"took {out['seconds']:.0f} s")
    report("Directions: class transfer, analogies, GANSpace and the shapes factors", ["model", "what", "measured",
           "how"], rows, out, device, as_json=args.json, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
