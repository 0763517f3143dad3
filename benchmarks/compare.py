"""How long the compare view takes to fill: from opening its tab to every decoder family's prior row drawn.

The real main window offscreen, on the real engine, started on the map with its default model (as a user
would have it); then the Compare tab is opened and the clock runs until every prior row but the diffusion one
(it streams, frame by frame, and is timed on its own) shows its samples, labels and figures. That includes
reading every other checkpoint into the engine's cache, the decodes, the classifier and the sharpness. Also
timed from the same click: every reconstruction column drawn (this reads the test set) and the DDPM row done.

Beside it, in the same run, the bare baseline: the same checkpoints loaded and the same prior decodes,
labels and sharpness done directly with torch, no app around them.

    python benchmarks/compare.py [--weights DIR] [--repeats 3] [--device auto] [--json]

Target on the machine this runs on: compare_open_s <= 1 s.
"""
from __future__ import annotations

import statistics
import sys
import time

from _common import benchmark_parser, pick, report
from latency import wait_for      # latency sets Qt offscreen and puts the repository on the path

TARGET_S = 1.0
N = 8


def open_compare(weights: str, device: str) -> dict[str, float | int]:
    """One fresh window on the map, then the Compare tab: seconds to its prior rows, columns and DDPM row."""
    from explorer.app import build_window, make_application

    app = make_application("light")
    window = build_window(weights=weights, device=device, view="map", remember=False)
    window.resize(1280, 820)
    window.show()
    wait_for(app, lambda: window.state.model is not None and window.view_is_ready("map")
             and window.engine.is_idle())
    view = window.view_widgets["compare"]
    marks: dict[str, float] = {}
    view.priors_drawn.connect(lambda: marks.setdefault("priors", time.perf_counter()))
    view.rows_drawn.connect(lambda: marks.setdefault("columns", time.perf_counter()))
    view.ready.connect(lambda: marks.setdefault("ready", time.perf_counter()))
    t0 = time.perf_counter()
    window.show_view("compare")
    wait_for(app, lambda: "ready" in marks, timeout_s=600)
    streams = sum(1 for r in view.rows.values() if r.stream)
    out = {"open_s": marks["priors"] - t0, "columns_s": marks["columns"] - t0, "ready_s": marks["ready"] - t0,
           "rows": len(view.rows) - streams, "streams": streams, "columns": len(view.columns)}
    window.close()
    window.engine.shutdown()
    app.processEvents()
    return out


def bare(weights: str, device) -> dict[str, float]:
    """The same prior decodes, labels and sharpness as the view's rows, straight through torch."""
    import torch

    from models import checkpoint
    from models.catalog import DECODE, DENOISE
    from models.metrics import laplacian_variance
    from models.weights import shipped_checkpoints

    t0 = time.perf_counter()
    classifier = None
    decode_s = 0.0
    for path in shipped_checkpoints(weights):
        model = checkpoint.load(path, device).eval()       # every file, as the view reads every one
        if path.stem == "classifier":
            classifier = model
            continue
        if DECODE not in model.capabilities or DENOISE in model.capabilities:
            continue
        t1 = time.perf_counter()
        with torch.no_grad():
            x = model.decode(model.prior(N, torch.Generator(device=device).manual_seed(0)))
            if classifier is not None:
                classifier.classify(x)
            laplacian_variance(x)
        decode_s += time.perf_counter() - t1
    return {"bare_s": time.perf_counter() - t0, "decode_s": decode_s}


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="folder of checkpoints (default: the shipped weights/)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh windows to open the view in (default 3)")
    args = parser.parse_args(argv)
    device = pick(args.device)
    from models.weights import weights_dir

    weights = str(weights_dir(args.weights))
    runs, bases = [], []
    for _ in range(max(1, args.repeats)):
        runs.append(open_compare(weights, args.device))
        bases.append(bare(weights, device))
    def med(key: str, xs: list[dict]) -> float:
        return float(statistics.median(x[key] for x in xs))

    figures = {
        "compare_open_s": med("open_s", runs),
        "compare_columns_s": med("columns_s", runs),
        "compare_ready_s": med("ready_s", runs),
        "bare_decodes_s": med("bare_s", bases),
        "bare_decode_only_s": med("decode_s", bases),
        "rows": runs[0]["rows"], "streams": runs[0]["streams"], "columns": runs[0]["columns"],
        "repeats": len(runs), "target_s": TARGET_S,
    }
    rows = [
        ["open -> every decoder row drawn (compare_open_s)", figures["compare_open_s"], TARGET_S],
        ["bare: load + the same decodes (bare_decodes_s)", figures["bare_decodes_s"], "-"],
        ["bare: the decodes alone", figures["bare_decode_only_s"], "-"],
        ["open -> every reconstruction column too", figures["compare_columns_s"], "-"],
        ["open -> the diffusion row done too", figures["compare_ready_s"], "-"],
    ]
    notes = [f"{figures['rows']} decoder rows, {figures['streams']} streamed (left out of compare_open_s), "
             f"{figures['columns']} reconstruction columns; median of {len(runs)} fresh windows, each started on "
             "the map with its default model",
             "the columns' figure includes reading the test set; the diffusion row is DDIM 50 on 8 samples"]
    report("Compare view: open -> rows drawn", ["figure", "seconds", "target"], rows, figures, device,
           as_json=args.json, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
