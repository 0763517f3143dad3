"""What every benchmark shares: the machine line, an aligned table, `--json`, and honest timing helpers.

A benchmark builds its figures as a dict, then calls `report(...)`: a title, the machine it ran on and an
aligned table go to stdout; with `--json` the same figures follow as ONE JSON object on the last line, so a
script can read `stdout.splitlines()[-1]`.

    parser = benchmark_parser("Training speed")          # adds --device and --json
    args = parser.parse_args()
    device = pick(args.device)
    ...
    report("Training speed", ["family", "samples/s"], rows, figures, device, as_json=args.json)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

# Running `python benchmarks/x.py` from a checkout that is not pip-installed still finds `models`.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import torch  # noqa: E402

from models.device import synchronize  # noqa: E402  (the benchmarks time GPU work with it)


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else whatever `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine(device: torch.device | str | None = None) -> dict[str, Any]:
    """What the figures were measured on; a benchmark number means nothing without it."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device) if device is not None else "cpu",
    }
    if device is not None and torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def machine_line(info: dict[str, Any]) -> str:
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ""
    return (f"machine: {info['cpu']}, {info['cores']} cores ({info['torch_threads']} torch threads){gpu}; "
            f"torch {info['torch']}, Python {info['python']}; device {info['device']}")


def format_value(value: Any) -> str:
    """Numbers to a width a reader can compare down a column: 3 significant figures, thousands kept whole."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if abs(value) >= 999.5:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned plain-text table: text columns left-aligned, numeric columns right-aligned."""
    cells = [[format_value(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows) if rows
               else False for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def report(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], figures: dict[str, Any],
           device: torch.device | str | None = None, *, as_json: bool = False, notes: Sequence[str] = (),
           file=None) -> None:
    """Print title, machine line, the table and notes; with `as_json`, `figures` as one JSON line last."""
    file = file or sys.stdout
    print(title, file=file)
    print(machine_line(machine(device)), file=file)
    print(file=file)
    print(table(headers, rows), file=file)
    for note in notes:
        print(note, file=file)
    if as_json:
        print(json.dumps(figures, sort_keys=False, allow_nan=False), file=file, flush=True)


def benchmark_parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser that already knows --device and --json, the options every benchmark has."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--json", action="store_true",
                        help="after the table, print the same figures as one JSON object on the last line")
    return parser


def pick(name: str) -> torch.device:
    """The device the user asked for, via the library's checked picker."""
    from models.device import pick_device

    return pick_device(name)


def latencies_ms(fn: Callable[[], Any], device: torch.device, *, repeats: int = 50, warmup: int = 5) -> list[float]:
    """Wall time of each of `repeats` calls of fn(), in ms, after `warmup` calls, synchronising the device."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between order statistics (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
