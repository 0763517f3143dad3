"""Training inside the app, measured against what a user feels and against the bare library loop.

The real window offscreen on the latent map, and a VAE (the dialog's defaults: dense, 2-d latent) training in
the training view on the same engine, as Train → New model… starts it. Measured in one run:
- the UI event loop's stall: a 5 ms QTimer on the UI thread, each gap past its interval, p99 over the run;
- drag → decoded pixels on the map (latency.py's drag loop), p95, while the run trains, beside the training
  step's own time (the engine serves a drag between two steps, so a drag waits at most for one step);
- training throughput in the app (images per second while nothing else is asked of the engine; epoch saves,
  the map's re-encoding and previews included) over the bare models.train.run loop on the same settings, in
  interleaved rounds (the app's run paused while the bare loop runs), so a machine whose load changes
  meanwhile weighs on both alike: the ratio is the images per second over all app rounds over those of all bare
  rounds; beside it the median over rounds of each app round's rate over the bare round just before it (this
  box's pace drifts by a quarter between rounds).
- how far training got while the drags went on: the engine lets a drag's moves go first and gives training a
  step at least every 0.5 s meanwhile (explorer/engine/job_queue.py).

    python benchmarks/training_ui.py [--model vae-2d] [--data fashion-mnist] [--subset 10000] [--batch 128]
                                     [--seconds 20] [--moves 100] [--device auto] [--json]

Targets on the CPU box: ui_stall_p99_ms <= 33; drag_p95_ms_while_training <= train_step_ms + 16;
throughput_ratio >= 0.85.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from latency import DRAG_TARGET_MS, drag_latencies, open_map, resolve_model, wait_for  # noqa: E402

STALL_TIMER_MS = 5
STALL_TARGET_MS = 33.0
RATIO_TARGET = 0.85
VAE = {"latent_dim": 2, "hidden": [512, 256]}


def vae_config(dataset: str) -> dict:
    """The dialog's default VAE for a data set's own picture (3x32x32 for `shapes`)."""
    from models.catalog import dataset_info

    return {**VAE, "image_shape": list(dataset_info(dataset).image_shape)}


class BareLoop:
    """models.train.run alone on the same settings and device: the loop the app's run is measured against.
    One trainer, continued round after round, so each round times warm steps."""

    def __init__(self, dataset: str, subset: int, batch: int, device) -> None:
        import torch
        from models import registry, train
        from models.data import load_dataset

        self.batch = batch
        train.flush_denormals()             # as the app's engine thread and the CLI do before they train
        images = load_dataset(dataset, "train", subset=subset).images
        torch.manual_seed(0)
        model = registry.build("vae", vae_config(dataset)).to(device)
        trainer = train.new_trainer(model, train.TrainSettings(batch_size=batch, lr=1e-3, epochs=1e6))
        self.events = train.run(trainer, images)
        for _ in range(5):
            next(self.events)

    def rate(self, steps: int) -> float:
        """Images per second over the next `steps` steps."""
        t0 = time.perf_counter()
        for _ in range(steps):
            next(self.events)
        return steps * self.batch / (time.perf_counter() - t0)


class StallMeter:
    """A QTimer every STALL_TIMER_MS on the UI thread: how late each tick comes is how long the loop stalled."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setInterval(STALL_TIMER_MS)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(max(0.0, (now - self._last) * 1e3 - STALL_TIMER_MS))
        self._last = now


def main() -> None:
    from _common import benchmark_parser, percentile, pick, report

    parser = benchmark_parser("Training in the app: UI stall, drags while training, throughput")
    parser.add_argument("--model", default="vae-2d", help="the map's model for the drags (name or path)")
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data", default="fashion-mnist", help="the data set it trains on (default fashion-mnist; "
                        "shapes: colour)")
    parser.add_argument("--subset", type=int, default=10_000, help="training images (default 10,000)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20.0, help="throughput stretch in the app (default 20)")
    parser.add_argument("--moves", type=int, default=100, help="probe moves while training (default 100)")
    parser.add_argument("--bare-steps", type=int, default=60, help="steps of each bare round (default 60)")
    parser.add_argument("--rounds", type=int, default=5, help="bare and app rounds, interleaved (default 5)")
    args = parser.parse_args()
    device = pick(args.device)
    model_path, weights, note = resolve_model(args.model, args.weights)

    app, window, map_view = open_map(model_path, weights, args.device)

    bare = BareLoop(args.data, args.subset, args.batch, device)   # torch has the threads the engine left it: the same

    from explorer.views.train.dialog import TrainRequest

    view = window.view_widgets["train"]
    out = Path(tempfile.mkdtemp(prefix="training-ui-")) / "bench-vae.safetensors"
    steps_per_epoch = args.subset // args.batch
    request = TrainRequest("vae", vae_config(args.data), args.data, args.subset, 1000.0, args.batch, 1e-3, 0, "",
                           str(out))
    step_ms: list[float] = []
    seen_steps: set[int] = set()

    def took(_step: int) -> None:
        """Every step's own time, those sent along with a later item included (each step once)."""
        p = view.last
        if p is None or p.kind != "step":
            return
        for step, _, ms in (*p.earlier, (p.step, None, p.step_ms)):
            if ms and step not in seen_steps:
                seen_steps.add(step)
                step_ms.append(ms)

    view.progressed.connect(took)
    stall = StallMeter()
    stall.start()
    view.start(request)
    wait_for(app, lambda: view.last is not None and view.last.step >= 5, timeout_s=300)

    # throughput: rounds of the bare loop (the app's run paused) and of the app's run (nothing else asked of the
    # engine), interleaved, so a machine whose load changes meanwhile weighs on both alike
    app_images = app_time = bare_images = bare_time = 0.0
    bare_rates: list[float] = []
    app_rates: list[float] = []
    for _ in range(args.rounds):
        view.pause()
        wait_for(app, lambda: True)
        paused_at = view.last.step
        rate = bare.rate(args.bare_steps)
        bare_rates.append(rate)
        bare_images += args.bare_steps * args.batch
        bare_time += args.bare_steps * args.batch / rate
        stall.start()                                 # the bare loop blocks this thread: not the app's stall
        view.resume_run()
        wait_for(app, lambda: view.last.kind == "step" and view.last.step > paused_at and not view.paused)
        s0, t0 = view.last.step, time.perf_counter()
        wait_for(app, lambda: time.perf_counter() - t0 >= args.seconds / args.rounds, timeout_s=args.seconds + 60)
        s1, t1 = view.last.step, time.perf_counter()
        app_images += (s1 - s0) * args.batch
        app_time += t1 - t0
        app_rates.append((s1 - s0) * args.batch / (t1 - t0))
    app_rate = app_images / app_time
    bare_rate = bare_images / bare_time

    # drags on the map while it trains
    d0, t_drag = view.last.step, time.perf_counter()
    busy, _ = drag_latencies(app, map_view, args.moves)
    drag_steps, drag_s = view.last.step - d0, time.perf_counter() - t_drag
    stall.stop()
    view.control.set_outcome("discard")
    view.channel.cancel("train:run")
    wait_for(app, window.engine.is_idle, timeout_s=120)
    window.engine.shutdown()

    def r(x):
        return round(float(x), 3)

    train_step = statistics.median(step_ms) if step_ms else float("nan")
    figures = {
        "ui_stall_p99_ms": r(percentile(stall.gaps, 99)),
        "ui_stall_p50_ms": r(percentile(stall.gaps, 50)),
        "drag_p95_ms_while_training": r(percentile(busy, 95)),
        "drag_p50_ms_while_training": r(percentile(busy, 50)),
        "train_step_ms": r(train_step),
        "train_step_p95_ms": r(percentile(step_ms, 95)) if step_ms else None,
        "throughput_ratio": r(app_rate / bare_rate),
        "throughput_ratio_paired_median": r(statistics.median(a / b for a, b in zip(app_rates, bare_rates))),
        "train_steps_during_drags": int(drag_steps),
        "drags_s": r(drag_s),
        "app_images_per_s": r(app_rate),
        "bare_images_per_s": r(bare_rate),
        "rounds": args.rounds,
        "steps_in_app": int(view.last.step),
        "moves": len(busy),
        "data": args.data,
        "subset": args.subset,
        "batch": args.batch,
    }
    rows = [
        ["UI event loop stall, p99 (p50)", figures["ui_stall_p99_ms"], figures["ui_stall_p50_ms"], "ms",
         f"<= {STALL_TARGET_MS:g}"],
        ["drag -> pixels while training, p95 (p50)", figures["drag_p95_ms_while_training"],
         figures["drag_p50_ms_while_training"], "ms",
         f"<= step + {DRAG_TARGET_MS:g} = {train_step + DRAG_TARGET_MS:.0f}"],
        ["  the training step, median (p95)", figures["train_step_ms"], figures["train_step_p95_ms"], "ms", ""],
        ["training in the app", figures["app_images_per_s"], "", "images/s", ""],
        ["  bare models.train.run (per round)", figures["bare_images_per_s"],
         " / ".join(f"{x:.0f}" for x in bare_rates), "images/s", ""],
        ["  throughput ratio, pooled (median of paired rounds)", figures["throughput_ratio"],
         figures["throughput_ratio_paired_median"], "", f">= {RATIO_TARGET:g}"],
        ["training steps while the drags went on", figures["train_steps_during_drags"],
         f"in {figures['drags_s']:.1f} s", "steps", ""],
    ]
    notes = [f"VAE {vae_config(args.data)} on {args.subset:,} {args.data} images, batch {args.batch} "
             f"({steps_per_epoch} steps an epoch, each epoch saved and re-encoded); {len(busy)} drags on "
             f"{model_path.name} while training; {len(stall.gaps):,} stall ticks"]
    if note:
        notes.append(note)
    report("Training in the app", ["what", "value", "p50 / detail", "unit", "target"], rows, figures, device,
           as_json=args.json, notes=notes)


if __name__ == "__main__":
    main()
