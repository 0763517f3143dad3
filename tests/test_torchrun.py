"""The same CLI under torchrun, on this box's CPU with gloo and 2 processes: the same weights as one process at the
same global batch, an ordinary checkpoint, a bit-for-bit resume, a resume on another world size, and a job that
ends (with torchrun's message) when one of its ranks dies."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
COMMON = ["--subset", "512", "--batch-size", "64", "--device", "cpu", "--no-download", "--save-every-s", "0"]


def env(**extra) -> dict[str, str]:
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), LATENT_EXPLORER_DIST_TIMEOUT="30")
    e.update(extra)
    return e


def train(args: list[str], processes: int = 1, cwd: Path | None = None, **extra) -> subprocess.CompletedProcess:
    if processes == 1:
        cmd = [sys.executable, "-m", "models", "train", *args]
    else:
        cmd = [TORCHRUN, "--standalone", "--nproc_per_node", str(processes), "-m", "models", "train", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env(**extra), timeout=300, cwd=cwd or ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_two_ranks_at_half_the_batch_train_what_one_rank_at_the_whole_batch_trains(tmp_path):
    args = ["--family", "ae", "--latent-dim", "2", "--steps", "6", *COMMON]
    train([*args, "--out", str(tmp_path / "one.safetensors")])
    done = train([*args, "--out", str(tmp_path / "two.safetensors")], processes=2)
    assert "on 2 processes (gloo)" in done.stdout
    one, two = weights(tmp_path / "one.safetensors"), weights(tmp_path / "two.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=0)
    # an ordinary checkpoint: it loads like any other and says how it was trained
    import models
    from models import checkpoint

    model = models.load(tmp_path / "two.safetensors")
    assert model.family == "ae" and model.latent_dim == 2
    meta = checkpoint.read_metadata(tmp_path / "two.safetensors")
    assert meta.training["world_size"] == 2 and meta.training["backend"] == "gloo"
    info = subprocess.run([sys.executable, "-m", "models", "info", str(tmp_path / "two.safetensors")],
                          capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
    assert "processes:    2 (gloo)" in info.stdout


def test_a_resume_with_the_same_world_size_continues_bit_for_bit(tmp_path):
    """A VAE: each rank draws its own noise, so the resume must give every rank its own generator back."""
    args = ["--family", "vae", "--latent-dim", "2", *COMMON]
    train([*args, "--steps", "6", "--out", str(tmp_path / "whole.safetensors")], processes=2)
    train([*args, "--steps", "3", "--out", str(tmp_path / "part.safetensors")], processes=2)
    train(["--resume", str(tmp_path / "part.state.safetensors"), "--steps", "6", "--device", "cpu",
           "--no-download", "--save-every-s", "0", "--out", str(tmp_path / "part.safetensors")], processes=2)
    whole, resumed = weights(tmp_path / "whole.safetensors"), weights(tmp_path / "part.safetensors")
    for k in whole:
        assert torch.equal(whole[k], resumed[k]), k


def test_a_resume_on_another_world_size_works_and_says_what_differs(tmp_path):
    args = ["--family", "vae", "--latent-dim", "2", *COMMON]
    train([*args, "--steps", "3", "--out", str(tmp_path / "run.safetensors")])
    done = train(["--resume", str(tmp_path / "run.state.safetensors"), "--steps", "6", "--device", "cpu",
                  "--no-download", "--save-every-s", "0", "--out", str(tmp_path / "run.safetensors")], processes=2)
    assert "saved by 1 process(es), resumed by 2" in done.stderr and "not bit for bit" in done.stderr
    from models import checkpoint

    meta = checkpoint.read_metadata(tmp_path / "run.safetensors")
    assert meta.train_steps == 6 and meta.training["world_size"] == 2


def test_a_batch_that_does_not_split_over_the_ranks_is_refused_in_one_line(tmp_path):
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "models", "train", "--family", "ae",
           "--latent-dim", "2", "--steps", "2", "--subset", "512", "--batch-size", "63", "--device", "cpu",
           "--no-download", "--out", str(tmp_path / "x.safetensors")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300, cwd=ROOT)
    assert done.returncode != 0
    assert "does not split over 2 processes" in done.stderr


def _worker(tag: str, local_rank: int) -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"LE_TEST_TAG={tag}".encode() in environ and f"LOCAL_RANK={local_rank}".encode() in environ:
            return int(proc.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks through /proc")
def test_when_a_rank_dies_the_job_ends_with_a_message_in_bounded_time(tmp_path):
    tag = uuid.uuid4().hex
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "models", "train", "--family", "ae",
           "--latent-dim", "2", "--steps", "100000", *COMMON, "--out", str(tmp_path / "long.safetensors")]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(LE_TEST_TAG=tag),
                           cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.5)
            victim = _worker(tag, 1)
        assert victim is not None, "rank 1 never started"
        time.sleep(4)                                  # let it get into its training loop
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        out, err = job.communicate(timeout=90)
        took = time.monotonic() - killed_at
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert took < 60, f"the job took {took:.0f} s to notice"
    assert "local_rank: 1" in err and ("SIGKILL" in err or "exitcode" in err)   # which rank failed, and how
    assert _worker(tag, 0) is None                     # and rank 0 did not linger
