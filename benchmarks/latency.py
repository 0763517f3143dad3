"""Latency a user feels on the latent map: drag -> decoded pixels on screen, and launch -> interactive.

Drag: the real window offscreen, the real engine thread, the real map view. A probe is moved programmatically
(what a mouse drag does to it: `setPos`, which emits the same signal), and the clock stops when that move's
decoded image is in the probe's panel and the panel has been painted. Each move waits for the previous one to
be on screen, so every figure is one move's full trip: UI thread -> engine queue -> decode + classify on the
device -> numpy back through a queued signal -> image set -> paint. Beside it, in the same run, the bare
`model.decode(z)` time for one latent on the same device: the floor the app's own overhead sits on.

Drag while streaming: the same drags while a real DDPM run (the shipped `ddpm`, 16 samples, 1,000 ancestral
steps) streams on the same engine, as the diffusion view's does; beside it that run's median step. The engine
serves a drag between two steps, so a drag waits at most for the step that is running; and while a drag's moves
keep coming, the run waits for them (it still gets a step every 0.5 s), so most moves do not wait at all.

Directions slider: in the same run and window, the Directions tab's first slider (the model's first principal
direction) moved back and forth over -3 sigma ... +3 sigma as a drag moves it; the clock stops when that move's
picture is painted. The move along the direction is computed on the engine, so the trip is a probe drag's.

Launch: a fresh Python process (interpreter start and every import included) from its start until the window is
first painted (before torch is imported), and until it is interactive: the test set's scatter is drawn and both
probes show their decoded images (the other tabs are still being built, one per event-loop turn, with their
first jobs). The floor beside it: a fresh Python that only imports torch.

    python benchmarks/latency.py [--model vae-2d] [--moves 200] [--launches 3] [--device auto] [--json]
    python benchmarks/latency.py --quick      # seconds: 20 moves of each, no stream, no launch (the script works)

Targets on the machine this runs on: drag p95 <= 16 ms (one 60 Hz frame), the Directions slider's too; while
streaming, <= one stream step + 16 ms; first paint <= 1 s; launch <= the torch import + 1 s.
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
FIRST_PAINT_TARGET_S = 1.0
LAUNCH_OVER_TORCH_S = 1.0
READY_MARK = "LATENCY-READY "
PAINT_MARK = "LATENCY-PAINTED "
STREAM_SAMPLES = 16


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
    from models import checkpoint, registry

    family, _, dim = name.partition("-")
    latent = int(dim.rstrip("d")) if dim.rstrip("d").isdigit() else 2
    if family not in registry.FAMILIES:
        family, latent = "vae", 2
    tmp = Path(tempfile.mkdtemp(prefix="latency-weights-"))
    model = registry.build(family, {} if family == "ddpm" else {"latent_dim": latent})
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


def open_map(model_path: Path, weights: Path, device: str, on_paint=None, settle: bool = True,
             as_main: bool = False):
    """The real main window offscreen on the map, with the model loaded and the map ready: its scatter drawn and
    both probes decoded (what a user sees and can drag). With `settle`, also until the engine is idle, so what is
    measured next does not share the engine with the views built after the map nor with their first jobs; a
    launch is interactive without that. `as_main`: the process starts as the app's main() starts it."""
    from explorer.app import build_window, hold_collector, make_application

    app = make_application("light")
    # no --view: the map is the first tab, and a start as a user makes it (views built after the first paint)
    window = build_window(weights=str(weights), device=device, model=str(model_path), remember=False)
    if as_main:
        hold_collector(window)
    if on_paint is not None:
        window.first_painted.connect(on_paint)
    window.resize(1280, 820)
    window.show()
    wait_for(app, lambda: window.state.model is not None and window.view_is_ready("map"))
    if settle:
        wait_for(app, lambda: bool(window.view_widgets) and window.engine.is_idle())
    return app, window, window.view("map")


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


def directions_slider_latencies(app, window, moves: int) -> list[float]:
    """ms from a Directions slider move to its moved picture painted, one move at a time, back and forth over
    -3 sigma ... +3 sigma on the first slider (the tab shown, as a user drags it): the same trip as a probe drag,
    with the move along the direction computed on the engine."""
    window.show_view("directions")
    wait_for(app, lambda: window.view_is_ready("directions"))
    view = window.view("directions")
    wait_for(app, window.engine.is_idle)
    shown: dict[str, int] = {}
    view.moved_shown.connect(lambda job_id: shown.__setitem__("moved", job_id))
    slot = view.slots[0]
    times = []
    for k in range(moves + 5):                             # the first 5 warm the path up and are not counted
        i = k % 120                                        # a triangle wave in 0.1 sigma steps: every move moves
        value = -3.0 + 0.1 * i if i < 60 else 3.0 - 0.1 * (i - 60)
        t0 = time.perf_counter()
        slot.slider.setSliderDown(True)                    # a drag: the label lines wait for the release
        slot.set_value(value)
        target = view.channel.latest("decode:directions-moved")
        wait_for(app, lambda: shown.get("moved") == target)
        view.moved_panel.view.viewport().repaint()
        t1 = time.perf_counter()
        if k >= 5:
            times.append((t1 - t0) * 1e3)
    slot.slider.setSliderDown(False)
    window.show_view("map")
    wait_for(app, window.engine.is_idle)
    return times


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
    """Inside the launched process: open the window, wait for the map, print the wall-clock times."""
    painted: list[float] = []
    app, window, view = open_map(Path(model_path), Path(weights), device, on_paint=lambda: painted.append(time.time()),
                                 settle=False, as_main=True)
    window.repaint()                                       # the scatter and both panels, painted
    print(READY_MARK + repr(time.time()), flush=True)
    if painted:
        print(PAINT_MARK + repr(painted[0]), flush=True)
    window.engine.shutdown()


def launch_seconds(model_path: Path, weights: Path, device: str) -> tuple[float, float]:
    """(first paint, interactive) in seconds from the moment the process was started."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    t0 = time.time()
    out = subprocess.run([sys.executable, __file__, "--launch-child", str(model_path), str(weights), device],
                         capture_output=True, text=True, env=env, timeout=300, cwd=str(ROOT))
    marks = {}
    for line in out.stdout.splitlines():
        for mark in (READY_MARK, PAINT_MARK):
            if line.startswith(mark):
                marks[mark] = float(line[len(mark):]) - t0
    if READY_MARK not in marks or PAINT_MARK not in marks:
        raise RuntimeError(f"the launched app never became interactive:\n{out.stdout}\n{out.stderr}")
    return marks[PAINT_MARK], marks[READY_MARK]


def stream_while(app, window, stream_path: Path, work):
    """Run `work()` while a 1,000-step DDPM run of STREAM_SAMPLES images streams on the window's engine;
    returns (what work returned, the run's step times in ms after its first, how many steps it took during
    `work`: a stream yields to a drag's moves, so there may be none)."""
    from explorer.engine.jobs.diffusion import DiffusionRun

    channel = window.engine.channel("benchmark-stream")
    steps: list[float] = []
    channel.submit(DiffusionRun(n=STREAM_SAMPLES, seed=0, sampler="ddpm", steps=None, model=str(stream_path)),
                   lambda r: steps.append(r.payload.ms) if not r.final else None)
    wait_for(app, lambda: len(steps) >= 3)                  # loaded, warmed up and streaming
    first = len(steps)
    out = work()
    during = len(steps) - first
    wait_for(app, lambda: len(steps) >= first + during + 3)  # a few more steps, with no drag to wait for
    channel.cancel()
    wait_for(app, window.engine.is_idle)
    return out, steps[1:], during


def compile_bytecode() -> None:
    """Compile the app's modules as `make run` does, so a launch reads bytecode as a user's does (an editable
    install compiles nothing, and with PYTHONDONTWRITEBYTECODE set nothing is ever cached)."""
    import compileall

    for package in ("explorer", "models"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


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
    parser.add_argument("--stream-model", default="ddpm", help="the diffusion model that streams meanwhile")
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--moves", type=int, default=200, help="probe moves to time (default 200)")
    parser.add_argument("--launches", type=int, default=3, help="fresh launches to time (default 3; 0 skips)")
    parser.add_argument("--quick", action="store_true",
                        help="seconds: 20 moves, no launch and no stream; the figures' shape, not the app's speed")
    args = parser.parse_args()
    if args.quick:
        args.moves, args.launches = 20, 0
    device = pick(args.device)
    model_path, weights, note = resolve_model(args.model, args.weights)
    stream_path, _, stream_note = resolve_model(args.stream_model, args.weights)

    app, window, view = open_map(model_path, weights, args.device)
    drag, label = drag_latencies(app, view, args.moves)
    slider = directions_slider_latencies(app, window, args.moves)       # the same run, the same window
    if args.quick:
        busy, steps, steps_during = [], [], 0
    else:
        (busy, _), steps, steps_during = stream_while(app, window, stream_path,
                                                      lambda: drag_latencies(app, view, args.moves))
    window.engine.shutdown()
    decode = bare_decode_ms(model_path, device)
    if args.launches:
        compile_bytecode()
    launches, floors = [], []
    for _ in range(args.launches):        # the floor beside each launch: this box's speed drifts between runs
        launches.append(launch_seconds(model_path, weights, args.device))
        floors.append(torch_import_seconds())
    floor = statistics.median(floors) if floors else None

    def r(x):
        return round(x, 3) if x is not None else None

    figures = {
        "model": model_path.stem,
        "drag_p50_ms": r(percentile(drag, 50)),
        "drag_p95_ms": r(percentile(drag, 95)),
        "slider_p50_ms_directions": r(percentile(slider, 50)),
        "slider_p95_ms_directions": r(percentile(slider, 95)),
        "label_p50_ms": r(percentile(label, 50)) if label else None,
        "label_p95_ms": r(percentile(label, 95)) if label else None,
        "decode_p50_ms": r(percentile(decode, 50)),
        "decode_p95_ms": r(percentile(decode, 95)),
        "drag_p50_ms_while_streaming": r(percentile(busy, 50)) if busy else None,
        "drag_p95_ms_while_streaming": r(percentile(busy, 95)) if busy else None,
        "stream_step_ms": r(statistics.median(steps)) if steps else None,
        "stream_steps": len(steps),
        "stream_steps_during_drags": steps_during,
        "first_paint_s": r(statistics.median(p for p, _ in launches)) if launches else None,
        "launch_s": r(statistics.median(i for _, i in launches)) if launches else None,
        "torch_import_s": r(floor),
        "moves": len(drag),
        "launches": len(launches),
    }
    stream_target = (figures["stream_step_ms"] or 0) + DRAG_TARGET_MS
    rows = [
        ["drag -> pixels on screen", figures["drag_p50_ms"], figures["drag_p95_ms"], "ms",
         f"p95 <= {DRAG_TARGET_MS:g}"],
        ["bare model.decode(z), batch 1", figures["decode_p50_ms"], figures["decode_p95_ms"], "ms", ""],
        ["drag -> pixels, while DDPM streams", figures["drag_p50_ms_while_streaming"],
         figures["drag_p95_ms_while_streaming"], "ms", f"p95 <= step + {DRAG_TARGET_MS:g} = {stream_target:.0f}"],
        [f"  that run's step ({STREAM_SAMPLES} images)", figures["stream_step_ms"], max(steps) if steps else None,
         "ms", ""],
    ]
    if not busy:                                              # --quick: no stream was run
        rows = rows[:2]
    rows.insert(1, ["Directions slider -> moved picture on screen", figures["slider_p50_ms_directions"],
                    figures["slider_p95_ms_directions"], "ms", f"p95 <= {DRAG_TARGET_MS:g}"])
    if label:
        rows.insert(1, ["drag -> classifier's label shown", figures["label_p50_ms"], figures["label_p95_ms"], "ms", ""])
    if launches:
        rows.append(["launch -> first paint (median)", figures["first_paint_s"], max(p for p, _ in launches), "s",
                     f"<= {FIRST_PAINT_TARGET_S:g}"])
        rows.append(["launch -> interactive (median)", figures["launch_s"], max(i for _, i in launches), "s",
                     f"<= torch + {LAUNCH_OVER_TORCH_S:g} = {floor + LAUNCH_OVER_TORCH_S:.2f}"])
        rows.append(["  the floor: python -c 'import torch'", figures["torch_import_s"],
                     figures["torch_import_s"], "s", ""])
    notes = [f"model: {model_path.name}; {len(drag)} probe moves, {len(busy)} more while {stream_path.name} "
             f"streamed; {len(launches)} launches "
             f"({', '.join(f'{p:.2f}/{i:.2f}' for p, i in launches)} s, paint/interactive)",
             f"the DDPM run took {steps_during} steps during those {len(busy)} moves: a stream lets a drag's moves "
             "go first and still gets an item every 0.5 s (explorer/engine/job_queue.py)"]
    notes += [n for n in (note, stream_note) if n]
    report("Latent map latency", ["what", "p50 / median", "p95 / max", "unit", "target"], rows, figures, device,
           as_json=args.json, notes=notes)


if __name__ == "__main__":
    main()
