"""Latency a user feels on the latent map: drag -> decoded pixels on screen, and launch -> interactive.

Drag: the real window offscreen, the real engine thread, the real map view. A probe is moved programmatically
(what a mouse drag does to it: `setPos`, which emits the same signal), and the clock stops when that move's
decoded image is in the probe's panel and the panel has been painted. Each move waits for the previous one to
be on screen, so every figure is one move's full trip: UI thread -> engine queue -> decode + classify on the
device -> numpy back through a queued signal -> image set -> paint. Beside it, in the same run, the bare
`model.decode(z)` time for one latent on the same device: the floor the app's own overhead sits on.

Launch: a fresh Python process (interpreter start and every import included) from its start until the window is
shown, the test set's scatter is drawn and both probes show their decoded images.

    python benchmarks/latency.py [--model vae-2d] [--moves 200] [--launches 3] [--device auto] [--json]

Targets on the machine this runs on: drag p95 <= 16 ms (one 60 Hz frame), launch <= 3 s.
"""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DRAG_TARGET_MS = 16.0
LAUNCH_TARGET_S = 3.0
READY_MARK = "LATENCY-READY "


def resolve_model(name: str, weights: str | None) -> tuple[Path, Path, str]:
    """(checkpoint, weights folder, note). A shipped model by name or a path; when the shipped weights are not
    there, a freshly built (untrained) model of the same family and size, which decodes exactly as fast."""
    from models.weights import shipped_checkpoints, weights_dir

    path = Path(name)
    if path.suffix == ".safetensors" and path.is_file():
        return path, path.parent, ""
    folder = weights_dir(weights)
    candidate = folder / f"{name}.safetensors"
    if candidate.is_file():
        return candidate, folder, ""
    import models  # noqa: F401  (registers the families)
    from models import checkpoint, core

    family, _, dim = name.partition("-")
    latent = int(dim.rstrip("d")) if dim.rstrip("d").isdigit() else 2
    if family not in core.FAMILIES:
        family, latent = "vae", 2
    tmp = Path(tempfile.mkdtemp(prefix="latency-weights-"))
    model = core.build(family, {"latent_dim": latent})
    model.eval()
    out = tmp / f"{family}-{latent}d.safetensors"
    checkpoint.save(model, out, dataset="fashion-mnist", train_steps=0)
    for shipped in shipped_checkpoints(folder):          # keep the shipped classifier, if any
        if shipped.stem == "classifier":
            (tmp / shipped.name).symlink_to(shipped)
    return out, tmp, f"note: {name} is not in {folder}; timed an untrained {family} ({latent}-d) of the same size"


_LOOP = []


def wait_for(app, condition, timeout_s: float = 120.0) -> None:
    """Run the event loop, blocking until events come (as the app's own loop does), until condition() holds."""
    from PySide6.QtCore import QEventLoop, QTimer

    if not _LOOP:
        _LOOP.append(QEventLoop())
        beat = QTimer(_LOOP[0])              # wakes the wait now and then, so a timeout is noticed
        beat.start(100)
        _LOOP.append(beat)
    loop = _LOOP[0]
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not get there in time")
        loop.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)


def open_map(model_path: Path, weights: Path, device: str):
    """The real main window offscreen on the map, with the model loaded and the map ready."""
    from explorer.app import build_window, make_application

    app = make_application("light")
    window = build_window(weights=str(weights), device=device, view="map", model=str(model_path), remember=False)
    window.resize(1280, 820)
    window.show()
    view = window.view_widgets["map"]
    wait_for(app, lambda: window.state.model is not None and window.view_is_ready("map") and window.engine.is_idle())
    return app, window, view


def drag_latencies(app, view, moves: int) -> tuple[list[float], list[float]]:
    """ms from a probe move to its decoded image painted in the panel, and to the classifier's label under it
    (which follows the pixels), one move at a time along a loop."""
    shown: dict[int, int] = {}
    labelled: dict[int, int] = {}
    view.probe_shown.connect(lambda i, job_id: shown.__setitem__(i, job_id))
    view.probe_labelled.connect(lambda i, job_id: labelled.__setitem__(i, job_id))
    has_labels = bool(view.info.has_classifier)
    probe, panel = view.probes[0], view.probe_panels[0]
    centre = probe.uv.copy()
    (x0, x1), (y0, y1) = view.vb.viewRange()
    radius = 0.15 * min(x1 - x0, y1 - y0)
    times, label_times = [], []
    for k in range(moves + 5):                             # the first 5 warm the path up and are not counted
        a = 2 * math.pi * k / 50
        uv = (centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a))
        t0 = time.perf_counter()
        probe.move_to(uv)
        target = view.channel.latest("decode:probe-0")
        wait_for(app, lambda: shown.get(0) == target)
        panel.panel.view.viewport().repaint()             # the new pixels, painted now
        t1 = time.perf_counter()
        if has_labels:
            wait_for(app, lambda: labelled.get(0) == target)
            panel.panel.caption.repaint()
        t2 = time.perf_counter()
        if k >= 5:
            times.append((t1 - t0) * 1e3)
            if has_labels:
                label_times.append((t2 - t0) * 1e3)
    return times, label_times


def bare_decode_ms(model_path: Path, device) -> list[float]:
    """model.decode(z) for one latent, in a loop, on the same device: the floor under the drag figure."""
    import torch
    from models.checkpoint import load

    from _common import latencies_ms

    model = load(model_path, device).eval()
    z = torch.randn(1, model.latent_dim, device=device)
    with torch.no_grad():
        return latencies_ms(lambda: model.decode(z), device, repeats=200, warmup=10)


def launch_child(model_path: str, weights: str, device: str) -> None:
    """Inside the launched process: open the window, wait for the map, print the wall-clock time."""
    app, window, view = open_map(Path(model_path), Path(weights), device)
    window.repaint()                                       # the scatter and both panels, painted
    print(READY_MARK + repr(time.time()), flush=True)
    window.engine.shutdown()


def launch_seconds(model_path: Path, weights: Path, device: str) -> float:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    t0 = time.time()
    out = subprocess.run([sys.executable, __file__, "--launch-child", str(model_path), str(weights), device],
                         capture_output=True, text=True, env=env, timeout=300, cwd=str(ROOT))
    for line in out.stdout.splitlines():
        if line.startswith(READY_MARK):
            return float(line[len(READY_MARK):]) - t0
    raise RuntimeError(f"the launched app never became interactive:\n{out.stdout}\n{out.stderr}")


def torch_import_seconds() -> float:
    """The floor under any launch figure: a fresh Python that only imports torch."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=300)
    return time.perf_counter() - t0


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--launch-child":
        launch_child(*sys.argv[2:])       # before importing _common (and torch with it): as the app starts
        return
    from _common import benchmark_parser, percentile, pick, report

    parser = benchmark_parser("Latent map latency: drag -> pixels, launch -> interactive")
    parser.add_argument("--model", default="vae-2d", help="a shipped model's name or a .safetensors path")
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--moves", type=int, default=200, help="probe moves to time (default 200)")
    parser.add_argument("--launches", type=int, default=3, help="fresh launches to time (default 3; 0 skips)")
    args = parser.parse_args()
    device = pick(args.device)
    model_path, weights, note = resolve_model(args.model, args.weights)

    app, window, view = open_map(model_path, weights, args.device)
    drag, label = drag_latencies(app, view, args.moves)
    window.engine.shutdown()
    decode = bare_decode_ms(model_path, device)
    launches = [launch_seconds(model_path, weights, args.device) for _ in range(args.launches)]
    floor = torch_import_seconds() if launches else None

    figures = {
        "model": model_path.stem,
        "drag_p50_ms": round(percentile(drag, 50), 3),
        "drag_p95_ms": round(percentile(drag, 95), 3),
        "label_p50_ms": round(percentile(label, 50), 3) if label else None,
        "label_p95_ms": round(percentile(label, 95), 3) if label else None,
        "decode_p50_ms": round(percentile(decode, 50), 3),
        "decode_p95_ms": round(percentile(decode, 95), 3),
        "launch_s": round(statistics.median(launches), 3) if launches else None,
        "torch_import_s": round(floor, 3) if floor is not None else None,
        "moves": len(drag),
        "launches": len(launches),
    }
    rows = [
        ["drag -> pixels on screen", figures["drag_p50_ms"], figures["drag_p95_ms"], "ms", f"p95 <= {DRAG_TARGET_MS:g}"],
        ["bare model.decode(z), batch 1", figures["decode_p50_ms"], figures["decode_p95_ms"], "ms", ""],
    ]
    if label:
        rows.insert(1, ["drag -> classifier's label shown", figures["label_p50_ms"], figures["label_p95_ms"], "ms", ""])
    if launches:
        rows.append(["launch -> interactive (median)", figures["launch_s"], max(launches), "s",
                     f"<= {LAUNCH_TARGET_S:g}"])
        rows.append(["  of which no app can avoid: python -c 'import torch'", figures["torch_import_s"],
                     figures["torch_import_s"], "s", ""])
    notes = [f"model: {model_path.name}; {len(drag)} probe moves; {len(launches)} launches "
             f"({', '.join(f'{s:.2f}' for s in launches)} s)"]
    if note:
        notes.append(note)
    report("Latent map latency", ["what", "p50 / median", "p95 / max", "unit", "target"], rows, figures, device,
           as_json=args.json, notes=notes)


if __name__ == "__main__":
    main()
