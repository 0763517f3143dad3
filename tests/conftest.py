"""Shared fixtures: tiny configs per family, a small real data set, one torch thread, checkpoint and resume
helpers, and no network for any test."""
from __future__ import annotations

import json
import socket
import struct
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Small configs so a test builds, trains or saves any family in milliseconds. Families without an entry get
# their defaults; add an entry when you register a family whose defaults are slow.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "ae": {"latent_dim": 2, "hidden": [16]},
    "cae": {"latent_dim": 3, "channels": [4, 8]},
    "vae": {"latent_dim": 2, "hidden": [16]},
    "classifier": {"channels": [4, 8], "feature_dim": 16},
    "gan": {"latent_dim": 3, "channels": [4, 8]},
    "vaegan": {"latent_dim": 3, "channels": [4, 8]},
    "ddpm": {"base_channels": 8, "channel_mults": [1, 2], "timesteps": 50, "decode_steps": 4},
}


@pytest.fixture
def tiny_config() -> Callable[[str], dict[str, Any]]:
    """tiny_config(family) -> a small config dict (a fresh copy) for `models.build(family, ...)`."""

    def make(family: str) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in TINY_CONFIGS.get(family, {}).items()}

    return make


@pytest.fixture(scope="session")
def fmnist_512():
    """The first 512 Fashion-MNIST training images (ImageData), loaded once per test session."""
    from models.data import load_dataset

    return load_dataset("fashion-mnist", "train", subset=512, download=False)


@pytest.fixture(scope="session")
def train_shipped():
    """benchmarks/train_shipped.py as a module: its plans, and the functions that train and ship them."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("train_shipped", ROOT / "benchmarks" / "train_shipped.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny CPU models run faster on one thread, and far faster when other processes share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def denormals_as_they_were():
    """Training turns on flush-to-zero for the whole process (models.train.flush_denormals), as the CLI and the
    engine do; a test after it must not inherit that (Hypothesis refuses to draw floats under it)."""
    import torch

    yield
    torch.set_flush_denormal(False)


@pytest.fixture
def rewrite_config() -> Callable[[Path, Path, dict], Path]:
    """rewrite_config(src, dst, config) -> dst: a copy of checkpoint `src` whose metadata claims `config`."""
    from models import checkpoint as ck

    def rewrite(src: Path, dst: Path, config: dict) -> Path:
        raw = src.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        meta = json.loads(header["__metadata__"][ck.METADATA_KEY])
        meta["config"] = config
        header["__metadata__"][ck.METADATA_KEY] = json.dumps(meta)
        text = json.dumps(header).encode()
        dst.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
        return dst

    return rewrite


@pytest.fixture
def train_whole_and_save_at():
    """train_whole_and_save_at(fresh, images, stop, path) -> (whole, first), the two halves of a resume test:
    `whole` = fresh() run to the end, `first` = fresh() run to step `stop` and saved with save_trainer at `path`."""
    from models.train import run, save_trainer

    def go(fresh: Callable[[], Any], images, stop: int, path: Path) -> tuple[Any, Any]:
        whole = fresh()
        for _ in run(whole, images):
            pass
        first = fresh()
        for event in run(first, images):
            if event.step == stop:
                break
        save_trainer(first, path)
        return whole, first

    return go


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:     # AF_UNIX paths and the like
        return True
    if address[0] is None:
        return True
    host = str(address[0])
    return host in ("localhost", "::1", "") or host.startswith("127.")


def pytest_addoption(parser) -> None:
    parser.addoption("--monkey-seed", type=int, default=20261202,
                     help="the seed of tests/app/test_monkey.py (replay a failure with the seed it printed)")
    parser.addoption("--monkey-seconds", type=float, default=15.0,
                     help="how long the monkey plays with each view (default 15 s)")


@pytest.fixture(autouse=True)
def own_result_cache(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps the app's on-disk results (the encoded test set) in a folder of its own, never the user's."""
    folder = tmp_path_factory.mktemp("results-cache")
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(folder))
    return folder


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the internet: a download attempt fails at once instead of hanging offline."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if not _is_local(address):
            raise OSError(f"network access is disabled in tests (tried {address!r})")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local((host,)):
            raise socket.gaierror(f"network access is disabled in tests (tried to resolve {host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


UMASKS = (0o022, 0o077, 0o002)


@pytest.fixture(params=UMASKS, ids=[f"umask{u:03o}" for u in UMASKS])
def umask(request) -> int:
    """Run the test under each of a few umasks (restored afterwards); the value is the umask in force."""
    import os

    old = os.umask(request.param)
    yield request.param
    os.umask(old)

