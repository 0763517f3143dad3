"""How good the shipped models are, measured: one table over every checkpoint in weights/.

    python benchmarks/quality.py                    # the full yardstick (FID on 2,000 samples per model)
    python benchmarks/quality.py --fid-n 200 --json # a quick look; the sample count is printed with every FID

Per model, each on its own data set's test split (the one its checkpoint names, at its picture shape): test
reconstruction MSE next to PCA with the same number of components (an AE must beat it); test ELBO in nats per
image for models that have one; domain FID of samples from the prior (N(0, I) for the plain AEs too, which is
where their holes show; DDIM for diffusion), measured with that data set's own classifier (classifier.safetensors
for Fashion-MNIST, classifier-NAME.safetensors for the others; without one, no FID and one line says why);
sharpness (variance of the Laplacian) of reconstructions and samples next to real images; ms per sample at batch
1 and 64. A missing or unreadable checkpoint is reported and skipped, never fatal. `--record` also writes each
model's figures into its own checkpoint (metrics.quality, with the machine and date), so a file carries how good
it is; the app shows them.

`--json` prints one JSON object last: model name -> {fid, fid_n, recon_mse, pca_mse, elbo_nats, sharpness,
ms_per_sample_b1, ms_per_sample_b64} (null where a figure does not apply; sharpness is {"recon", "samples"}),
plus `prior_fid_ae` / `prior_fid_vae` (the conv pair cae-16 / conv-vae-16) and `real` (the same figures for
real Fashion-MNIST images: train-vs-test FID at the same n, the floor any model is measured against, and their
sharpness); `real:NAME` the same for each other data set a model was trained on.
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import benchmark_parser, latencies_ms, machine, pick, report, synchronize

import torch

from models import checkpoint, metrics
from models.catalog import dataset_info
from models.core import DECODE, DENOISE, ENCODE, SAMPLE, LatentModel, iter_batches
from models.data import DataMissingError, load_dataset
from models.weights import shipped_checkpoints, weights_dir

ORDER = ("ae-2d", "vae-2d", "cae-16", "conv-vae-16", "gan", "vaegan", "ddpm", "shapes-vae")
FASHION = "fashion-mnist"
FASHION_SHAPE = (1, 28, 28)
AE_PAIR = ("cae-16", "conv-vae-16")
BATCH = 250
PCA_IMAGES = 20_000     # PCA of another data set than Fashion-MNIST is fitted on at most this many training images


class Domain:
    """One data set at one picture shape, as its models are measured on it: the test split, PCA fitted on the
    training split, and the data set's own classifier with the test split's feature statistics (None, and
    `no_fid` saying why, when it has no classifier)."""

    def __init__(self, dataset: str, shape: tuple[int, int, int], folder: Path, device: torch.device) -> None:
        self.dataset, self.shape = dataset, shape
        kwargs = {} if (dataset, shape) == (FASHION, FASHION_SHAPE) else {"image_size": shape[1], "channels": shape[0]}
        test = load_dataset(dataset, "test", download=False, **kwargs)
        train = load_dataset(dataset, "train", download=False, **kwargs)
        self.test = test.tensor()
        self.train = train.tensor() if dataset == FASHION else train.tensor(PCA_IMAGES)
        self.pca = metrics.pca_fit(self.train)
        self.classifier, self.no_fid = metrics.fid_classifier(dataset, shape, [folder], device)
        self.ref = metrics.feature_stats(self.classifier, self.test) if self.classifier is not None else None

    @property
    def label(self) -> str:
        """The data set's name, with the picture's shape where it is not the data set's own."""
        own = tuple(dataset_info(self.dataset).image_shape) == self.shape
        return self.dataset if own else f"{self.dataset} {'x'.join(map(str, self.shape))}"

    def real(self, fid_n: int) -> dict[str, Any]:
        """The floor: train-vs-test FID at the models' n, and real images' sharpness."""
        row: dict[str, Any] = {"fid": None, "fid_n": None, "sharpness": metrics.sharpness(self.test)}
        if self.classifier is not None:
            n = min(fid_n, self.train.shape[0])
            result = metrics.fid_result(self.classifier, self.train[:n], self.ref)
            row["fid"], row["fid_n"] = result.fid, result.n
        return row


def draw(model: LatentModel, n: int, generator: torch.Generator, ddim_steps: int) -> torch.Tensor:
    """n samples from the model's prior, (n, C, H, W) in [0, 1]; diffusion models sample with DDIM."""
    if DENOISE in model.capabilities:
        return model.sample(n, generator, sampler="ddim", steps=ddim_steps)
    return model.sample(n, generator)


@torch.no_grad()
def reconstruction(model: LatentModel, images: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """(per-pixel test MSE, mean sharpness) of reconstructions from the posterior mean."""
    sq_err = sharp = 0.0
    for x in iter_batches(images, BATCH):
        x = x.to(device)
        x_hat = model.reconstruct(x) if hasattr(model, "reconstruct") else model.decode(model.encode(x).mu)
        sq_err += float((x_hat - x).pow(2).sum())
        sharp += float(metrics.laplacian_variance(x_hat).sum())
    return sq_err / images.numel(), sharp / images.shape[0]


@torch.no_grad()
def test_elbo(model: LatentModel, images: torch.Tensor, device: torch.device, seed: int) -> float:
    """Mean one-sample ELBO over the test set, nats per image (a lower bound on log p(x); higher is better)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    for x in iter_batches(images, BATCH):
        total += float(model.elbo(x.to(device), gen).sum())
    return total / images.shape[0]


@torch.no_grad()
def samples(model: LatentModel, n: int, device: torch.device, seed: int, ddim_steps: int) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    out, left = [], n
    while left > 0:
        k = min(BATCH, left)
        out.append(draw(model, k, gen, ddim_steps).cpu())
        left -= k
    return torch.cat(out)


@torch.no_grad()
def ms_per_sample(model: LatentModel, batch: int, device: torch.device, seed: int, ddim_steps: int,
                  budget_s: float = 3.0) -> float:
    """Median wall time of one call of sample(batch), divided by batch; repeats fit a small time budget."""
    gen = torch.Generator(device=device).manual_seed(seed)
    def call() -> None:
        draw(model, batch, gen, ddim_steps)

    t0 = time.perf_counter()
    call()                                              # warm-up, and a first estimate of the cost
    synchronize(device)
    once = time.perf_counter() - t0
    repeats = max(3, min(30, int(budget_s / max(once, 1e-6))))
    return statistics.median(latencies_ms(call, device, repeats=repeats, warmup=0)) / batch


def evaluate(model: LatentModel, *, test: torch.Tensor, pca: metrics.PCAFit, classifier, ref, fid_n: int,
             device: torch.device, seed: int, ddim_steps: int) -> dict[str, Any]:
    caps = model.capabilities
    row: dict[str, Any] = dict.fromkeys(("fid", "fid_n", "recon_mse", "pca_mse", "elbo_nats", "sharpness",
                                         "ms_per_sample_b1", "ms_per_sample_b64"))
    sharp = {"recon": None, "samples": None}
    if ENCODE in caps and DECODE in caps:
        row["recon_mse"], sharp["recon"] = reconstruction(model, test, device)
        row["pca_mse"] = metrics.pca_mse(pca, test, model.latent_dim)
    if hasattr(model, "elbo"):
        row["elbo_nats"] = test_elbo(model, test, device, seed)
    if SAMPLE in caps or DENOISE in caps:
        x = samples(model, fid_n, device, seed, ddim_steps)
        sharp["samples"] = metrics.sharpness(x)
        if classifier is not None:
            result = metrics.fid_result(classifier, x, ref)
            row["fid"], row["fid_n"] = result.fid, result.n
        row["ms_per_sample_b1"] = ms_per_sample(model, 1, device, seed, ddim_steps)
        row["ms_per_sample_b64"] = ms_per_sample(model, 64, device, seed, ddim_steps)
    row["sharpness"] = sharp
    return row


def record(path: Path, row: dict[str, Any], args, device: torch.device, diffusion: bool, train_steps: int) -> None:
    """Keep the figures with the weights they describe, with how and where they were measured."""
    figures = dict(_json_safe(row), measured_on=machine(device), date=time.strftime("%Y-%m-%d"), seed=args.seed)
    if diffusion:
        figures["sampler"] = f"DDIM, {args.ddim_steps} steps, eta 0"
    checkpoint.record_metrics(path, {"quality": figures}, measured_at_step=train_steps)


def order_key(path: Path) -> tuple[int, str]:
    name = path.stem
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def fmt(value: Any) -> Any:
    """Numbers as numbers (the table aligns them); a figure that does not apply as a dash."""
    if value is None:
        return "-"
    return round(value, 6) if isinstance(value, float) else value


def real_row(domain: Domain, real: dict[str, Any]) -> list[Any]:
    name = "real images" if domain.dataset == FASHION else f"real images ({domain.label})"
    return [name, "-", "-", "-", fmt(real["fid"]), fmt(real["fid_n"]), "-", fmt(real["sharpness"]), "-", "-"]


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="folder of checkpoints (default: the shipped weights/)")
    parser.add_argument("--fid-n", type=int, default=2000, help="samples per model for the FID (default 2000)")
    parser.add_argument("--ddim-steps", type=int, default=50, help="DDIM steps for diffusion samples (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help="evaluate only these model names")
    parser.add_argument("--record", action="store_true",
                        help="also write each model's figures into its checkpoint's metadata (metrics.quality)")
    args = parser.parse_args(argv)
    if args.fid_n < 2:
        parser.error("--fid-n must be at least 2 (a covariance needs two samples)")
    device = pick(args.device)
    folder = weights_dir(args.weights)
    notes: list[str] = []
    started = time.perf_counter()

    # Fashion-MNIST's real images first: the floor (train vs test FID at the same n) and the sharpness every
    # model is next to; another data set's come when its first model does.
    domains: dict[tuple[str, tuple[int, int, int]], Domain] = {}
    fashion = domains[(FASHION, FASHION_SHAPE)] = Domain(FASHION, FASHION_SHAPE, folder, device)
    if fashion.classifier is None:
        notes.append(f"{fashion.label}: {fashion.no_fid}")

    figures: dict[str, Any] = {}
    rows: list[list[Any]] = []
    paths = sorted(shipped_checkpoints(folder), key=order_key)
    if args.only:
        paths = [p for p in paths if p.stem in args.only]
    missing = [name for name in ORDER if not (folder / f"{name}.safetensors").exists()]
    if missing and not args.only:
        notes.append(f"not in {folder}: {', '.join(missing)}")

    real = fashion.real(args.fid_n)
    rows.append(real_row(fashion, real))

    for path in paths:
        name = path.stem
        try:
            meta = checkpoint.read_metadata(path)
            if not ({DECODE, DENOISE} & meta_capabilities(meta)):
                continue                        # a classifier, or anything else that draws no pictures
            train_steps = meta.train_steps
            model = checkpoint.load(path, device)
        except checkpoint.CheckpointError as err:
            notes.append(f"{name}: skipped, {err}")
            continue
        key = (meta.dataset, tuple(int(s) for s in meta.image_shape))
        if key not in domains:
            try:
                domain = domains[key] = Domain(*key, folder, device)
            except (DataMissingError, ValueError) as err:
                notes.append(f"{name}: skipped, its data set cannot be loaded ({' '.join(str(err).split())})")
                continue
            if domain.classifier is None:
                notes.append(f"{domain.label}: {domain.no_fid}")
            figures[f"real:{domain.dataset}"] = domain.real(args.fid_n)
            rows.append(real_row(domain, figures[f"real:{domain.dataset}"]))
        domain = domains[key]
        t0 = time.perf_counter()
        print(f"[quality] {name} ...", file=sys.stderr, flush=True)
        row = evaluate(model, test=domain.test, pca=domain.pca, classifier=domain.classifier, ref=domain.ref,
                       fid_n=args.fid_n, device=device, seed=args.seed, ddim_steps=args.ddim_steps)
        print(f"[quality] {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        figures[name] = row
        if args.record:
            try:
                record(path, row, args, device, DENOISE in model.capabilities, train_steps)
            except checkpoint.CheckpointError as err:
                notes.append(f"{name}: figures not recorded, {err}")
        rows.append([name, fmt(row["recon_mse"]), fmt(row["pca_mse"]), fmt(row["elbo_nats"]), fmt(row["fid"]),
                     fmt(row["fid_n"]), fmt(row["sharpness"]["recon"]), fmt(row["sharpness"]["samples"]),
                     fmt(row["ms_per_sample_b1"]), fmt(row["ms_per_sample_b64"])])
        if DENOISE in model.capabilities:
            notes.append(f"{name}: samples by DDIM with {args.ddim_steps} steps (eta 0), "
                         f"FID on {row['fid_n']} samples")
        if row["recon_mse"] is not None and row["recon_mse"] >= row["pca_mse"]:
            notes.append(f"{name}: reconstruction MSE does NOT beat PCA with {model.latent_dim} components")

    figures["prior_fid_ae"] = figures.get(AE_PAIR[0], {}).get("fid")
    figures["prior_fid_vae"] = figures.get(AE_PAIR[1], {}).get("fid")
    figures["real"] = real
    notes += [
        "FID: domain FID (Frechet distance of the penultimate features of the model's own data set's classifier) "
        "of prior samples against all its test images (Fashion-MNIST: "
        f"{fashion.test.shape[0]:,}); n = samples; lower is better. Few samples bias it up. Not comparable "
        "across data sets.",
        "Samples come from the prior N(0, I) for every latent model, plain autoencoders included.",
        "recon MSE: per pixel on the test set, from the posterior mean; PCA MSE: PCA (fitted on the training set) "
        "with as many components as the latent has dimensions.",
        "ELBO: one-sample estimate, nats per image (higher is better). sharpness: variance of the Laplacian.",
        f"took {time.perf_counter() - started:.0f} s",
    ]
    headers = ["model", "recon MSE", "PCA MSE", "ELBO nats", "FID", "FID n", "sharp recon", "sharp samples",
               "ms/sample b1", "ms/sample b64"]
    report("Quality of the shipped models", headers, rows, _json_safe(figures), device, as_json=args.json,
           notes=notes)
    return 0


def meta_capabilities(meta: checkpoint.CheckpointMeta) -> frozenset[str]:
    from models.registry import FAMILIES

    return frozenset(FAMILIES[meta.family].model_cls.capabilities)


def _json_safe(value: Any) -> Any:
    """NaN or infinity (a diverged model) becomes null, so the JSON line always parses."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    raise SystemExit(main())
