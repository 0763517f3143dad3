"""Is a VAE's walk smoother than an autoencoder's? And how fast is the interpolation slider?

Smoothness: the same random pairs of test images (seeded), each encoded (mu for a VAE) and walked in `--frames`
frames by lerp and by slerp (explorer.views.interpolate.paths, the view's own path), decoded, and measured by the mean
absolute pixel change from one frame to the next: its mean over the path (the mean step), its largest single
value (the largest jump, a hole crossed), their ratio, and how often the classifier's label changes along the
path. The tutorial's claim is that the VAE's latent space is continuous, so its walk has no jump much larger than
its typical step; a plain autoencoder's codes leave holes between them. The GAN has no encoder: its pairs' codes
come from models.inversion (Adam on z), walked by slerp, and the inversion's own error is reported.

Slider: the real window offscreen on the Interpolate tab, the slider moved programmatically (what a drag does:
`setValue`, the same valueChanged signal); the clock stops when that move's decoded picture is in the panel and
the panel has been painted, one move at a time. Beside it, in the same run, the bare `model.decode(z)` for one
latent on the same device.

    python benchmarks/interpolation.py [--weights DIR] [--pairs 100] [--gan-pairs 20] [--frames 16]
                                       [--inversion-steps 300] [--moves 200] [--device auto] [--json]

Target: slider p95 <= 16 ms (one 60 Hz frame) on the CPU box.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from _common import benchmark_parser, latencies_ms, percentile, pick, report  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

SLIDER_TARGET_MS = 16.0
ENCODERS = (("ae", "ae-2d"), ("vae", "vae-2d"), ("cae", "cae-16"), ("convvae", "conv-vae-16"))


def pairs_of(n_images: int, n: int, seed: int) -> np.ndarray:
    """n pairs of distinct test-image indices (n, 2), seeded."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 2), np.int64)
    for i in range(n):
        out[i] = rng.choice(n_images, size=2, replace=False)
    return out


def walk_figures(model, classifier, z_pairs: np.ndarray, frames: int, kind: str, device) -> dict[str, float]:
    """Mean step, largest jump (means over pairs), their ratio and label changes along each pair's path."""
    from explorer.views.interpolate.paths import frame_times, path_points, pixel_steps

    ts = frame_times(frames)
    z = np.concatenate([path_points(pair, ts, kind) for pair in z_pairs])       # (P * frames, d)
    with torch.no_grad():
        x = model.decode(torch.from_numpy(z).to(device))
        labels = classifier.classify(x)[0].cpu().numpy() if classifier is not None else None
    images = x[:, 0].float().cpu().numpy().reshape(len(z_pairs), frames, *x.shape[2:])
    steps = np.stack([pixel_steps(p) for p in images])                         # (P, frames - 1)
    largest = steps.max(axis=1)
    out = {"mean": float(steps.mean(axis=1).mean()), "max": float(largest.mean()),
           "max_se": float(largest.std(ddof=1) / np.sqrt(len(largest))) if len(largest) > 1 else 0.0,
           "ratio": float((steps.max(axis=1) / np.maximum(steps.mean(axis=1), 1e-12)).mean())}
    if labels is not None:
        lab = labels.reshape(len(z_pairs), frames)
        out["label_changes"] = float((lab[:, 1:] != lab[:, :-1]).sum(axis=1).mean())
    return out


def smoothness(weights: Path, args, device) -> tuple[dict, list[list], list[str]]:
    from models.checkpoint import load
    from models.data import load_dataset
    from models.inversion import invert_decoder, pixel_mse

    data = load_dataset("fashion-mnist", "test")
    classifier_path = weights / "classifier.safetensors"
    classifier = load(classifier_path, device).eval() if classifier_path.is_file() else None
    pairs = pairs_of(len(data), args.pairs, args.seed)
    figures: dict[str, float] = {}
    rows, notes = [], []
    for key, name in ENCODERS if args.pairs > 0 else ():
        path = weights / f"{name}.safetensors"
        if not path.is_file():
            notes.append(f"note: {name} is not in {weights}; skipped")
            continue
        model = load(path, device).eval()
        with torch.no_grad():
            mu = model.encode(data.images[pairs.reshape(-1)].to(device)).mu.float().cpu().numpy()
        z_pairs = mu.reshape(len(pairs), 2, -1)
        for kind in ("lerp", "slerp"):
            f = walk_figures(model, classifier, z_pairs, args.frames, kind, device)
            rows.append([name, kind, len(pairs), f["mean"], f["max"], f["max_se"], f["ratio"], f.get("label_changes")])
            suffix = "" if kind == "lerp" else "_slerp"
            figures[f"interp_mean_step_{key}{suffix}"] = round(f["mean"], 5)
            figures[f"interp_max_step_{key}{suffix}"] = round(f["max"], 5)
            figures[f"interp_max_step_se_{key}{suffix}"] = round(f["max_se"], 5)
            figures[f"interp_jump_ratio_{key}{suffix}"] = round(f["ratio"], 3)
            if "label_changes" in f:
                figures[f"interp_label_changes_{key}{suffix}"] = round(f["label_changes"], 3)
    gan_path = weights / "gan.safetensors"
    if gan_path.is_file() and args.gan_pairs > 0 and args.pairs > 0:
        g = load(gan_path, device).eval()
        gp = pairs[:args.gan_pairs]
        x = data.images[gp.reshape(-1)].to(device)
        t0 = time.perf_counter()
        last = None
        for last in invert_decoder(g, x, steps=args.inversion_steps, generator=torch.Generator(device=device)
                                   .manual_seed(args.seed), every=args.inversion_steps):
            pass
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            prior_mean = pixel_mse(g.decode(torch.zeros(1, g.latent_dim, device=device)).expand(len(x), -1, -1, -1), x)
        figures["gan_inversion_mse"] = round(float(last.mse.mean()), 5)
        figures["gan_prior_mean_mse"] = round(float(prior_mean.mean()), 5)
        figures["gan_inversion_s"] = round(seconds, 2)
        z_pairs = last.z.cpu().numpy().reshape(len(gp), 2, -1)
        for kind in ("lerp", "slerp"):
            f = walk_figures(g, classifier, z_pairs, args.frames, kind, device)
            rows.append(["gan (inverted)", kind, len(gp), f["mean"], f["max"], f["max_se"], f["ratio"],
                         f.get("label_changes")])
            suffix = "" if kind == "lerp" else "_slerp"
            figures[f"interp_mean_step_gan{suffix}"] = round(f["mean"], 5)
            figures[f"interp_max_step_gan{suffix}"] = round(f["max"], 5)
        notes.append(f"gan inversion: {args.inversion_steps} Adam steps for {len(x)} images in {seconds:.1f} s; "
                     f"pixel MSE {figures['gan_inversion_mse']:.4f} against {figures['gan_prior_mean_mse']:.4f} "
                     "for the prior mean's picture G(0)")
    return figures, rows, notes


def slider_latencies(weights: Path, model_name: str, device: str, moves: int) -> tuple[list[float], Path]:
    """ms from a slider move to its decoded picture painted under the slider, one move at a time."""
    from explorer.app import build_window, make_application
    from latency import wait_for

    path = weights / f"{model_name}.safetensors"
    app = make_application("light")
    window = build_window(weights=str(weights), device=device, view="interpolate", model=str(path), remember=False)
    window.resize(1280, 820)
    window.show()
    wait_for(app, lambda: window.state.model is not None and window.view_is_ready("interpolate")
             and window.engine.is_idle())
    view = window.view_widgets["interpolate"]
    shown: list[int] = []
    view.slider_shown.connect(shown.append)
    top = view.slider.maximum()
    times = []
    for k in range(moves + 5):                            # the first 5 warm the path up and are not counted
        value = int(round(top * (0.5 + 0.45 * np.sin(k / 7.0))))
        if value == view.slider.value():
            value = max(0, value - 1)
        t0 = time.perf_counter()
        view.slider.setValue(value)
        target = view.channel.latest("decode:interp-slider")
        wait_for(app, lambda: bool(shown) and shown[-1] == target)
        view.panel.view.viewport().repaint()
        t1 = time.perf_counter()
        if k >= 5:
            times.append((t1 - t0) * 1e3)
    wait_for(app, window.engine.is_idle)
    window.engine.shutdown()
    return times, path


def main() -> None:
    parser = benchmark_parser("Interpolation: smoothness of latent walks, slider latency")
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--pairs", type=int, default=100, help="random test-image pairs per encoder model "
                        "(0: time the slider only)")
    parser.add_argument("--gan-pairs", type=int, default=20, help="pairs for the GAN (through inversion)")
    parser.add_argument("--frames", type=int, default=16, help="frames per path (default 16)")
    parser.add_argument("--inversion-steps", type=int, default=300, help="Adam steps of the GAN inversion")
    parser.add_argument("--moves", type=int, default=200, help="slider moves to time (default 200)")
    parser.add_argument("--slider-model", default="vae-2d", help="the model under the timed slider")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = pick(args.device)
    from models.weights import weights_dir

    weights = Path(args.weights) if args.weights else weights_dir(None)
    from models.checkpoint import load

    slider_path = weights / f"{args.slider_model}.safetensors"
    model = load(slider_path, device).eval()
    z = torch.randn(1, model.latent_dim, device=device)

    def bare_decode() -> list[float]:
        with torch.no_grad():
            return latencies_ms(lambda: model.decode(z), device, repeats=100, warmup=10)

    bare = bare_decode()                                  # the floor, just before the slider and just after it
    slider, _ = slider_latencies(weights, args.slider_model, args.device, args.moves)
    bare += bare_decode()
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None   # what else wanted the CPU meanwhile
    figures, rows, notes = smoothness(weights, args, device)    # after the slider: its batches leave no trace there
    figures.update({
        "slider_p50_ms": round(percentile(slider, 50), 3),
        "slider_p95_ms": round(percentile(slider, 95), 3),
        "decode_p50_ms": round(percentile(bare, 50), 3),
        "decode_p95_ms": round(percentile(bare, 95), 3),
        "slider_model": slider_path.stem,
        "load_avg_1m": None if load_avg is None else round(load_avg, 2),
        "moves": len(slider),
        "pairs": args.pairs,
        "frames": args.frames,
    })
    table_rows = [[*r[:3], round(r[3], 4), round(r[4], 4), round(r[5], 4), round(r[6], 2),
                   None if r[7] is None else round(r[7], 2)] for r in rows]
    report("Interpolation: smoothness of latent walks", ["model", "walk", "pairs", "mean step", "largest jump",
                                                          "± s.e.", "jump / mean", "label changes"], table_rows, {},
           device)
    print()
    lat_rows = [["slider -> pixels on screen", figures["slider_p50_ms"], figures["slider_p95_ms"], "ms",
                 f"p95 <= {SLIDER_TARGET_MS:g}"],
                ["bare model.decode(z), batch 1", figures["decode_p50_ms"], figures["decode_p95_ms"], "ms", ""]]
    notes = [f"{args.frames}-frame paths; mean step and largest jump: mean |pixel change| between consecutive "
             "frames, averaged over the path and at its largest, each then averaged over pairs",
             f"slider: {len(slider)} moves on {slider_path.name} through the real window; 1-minute load average "
             f"{figures['load_avg_1m']} on {os.cpu_count()} CPUs while it ran"] + notes
    report("Interpolation: slider latency", ["what", "p50", "p95", "unit", "target"], lat_rows, figures, device,
           as_json=args.json, notes=notes)


if __name__ == "__main__":
    main()
