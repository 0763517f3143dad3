"""benchmarks/directions.py --quick: the table and its --json contract (transfer, analogy, ganspace, shapes) in
seconds on the shipped weights."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENCODERS = {"ae-2d", "vae-2d", "cae-16", "conv-vae-16", "vaegan"}


@pytest.mark.slow
def test_quick_json_has_transfer_analogy_ganspace_and_shapes():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "directions.py"), "--quick", "--json",
                           "--device", "cpu", "--threads", "1"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    assert set(figures["transfer"]) == ENCODERS and set(figures["analogy"]) == ENCODERS
    assert all(0.0 <= v <= 1.0 for v in [*figures["transfer"].values(), *figures["analogy"].values()])
    assert all(v > 0.2 for v in figures["transfer"].values())       # chance is 1 in 10
    gan = figures["ganspace"]["gan"]
    assert len(gan["rates"]) == 5 and gan["seconds"] < 10
    rows = figures["shapes"]["shapes-vae"]
    assert [r["factor"] for r in rows] == ["shape", "colour", "size", "x", "y"]
    assert all(0.0 <= r["intended_changes"] <= 1.0 and 0.0 <= r["others_stay"] <= 1.0 for r in rows)
    assert "Directions:" in done.stdout and "transfer A → B" in done.stdout
