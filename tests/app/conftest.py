"""Fixtures for the app's tests: tiny real weights, an engine held on a gate, and the real window offscreen.

- `tiny_weights`: a folder with small ae-2d, vae-2d, cae-16, conv-vae-16 (and gan when that family exists) plus a
  small classifier, each trained a few dozen steps on 2,000 Fashion-MNIST images. Built once per session.
- `fake_engine`: the real Engine class, held (no job starts until `release()`), running against a stand-in
  decoder instead of a checkpoint, and recording every submit and every result, whichever channel asked.
- `window`: the real main window on the real engine and `tiny_weights`, with a model loaded.
QSettings go to a temp folder for every test, and file dialogs are never shown.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pyqtgraph as pg
import torch
from PySide6.QtCore import QSettings
from torch import nn


pg.setConfigOptions(imageAxisOrder="row-major")

TINY_STEPS = 30


# ---------------------------------------------------------------------------------------------------------------
# Tiny weights

def _train(model, images, labels=None, steps=TINY_STEPS, seed=0):
    from models.train import TrainSettings

    settings = TrainSettings(batch_size=64, lr=2e-3, seed=seed, steps=steps)
    opts = model.configure_optimizers(settings)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, images.shape[0], (settings.batch_size,), generator=gen)
        if labels is None:
            model.training_step(images[idx], opts, gen)
        else:
            model.training_step(images[idx], opts, gen, y=labels[idx])
    model.eval()
    return model


TINY_SPECS = [
    ("ae-2d", "ae", {"latent_dim": 2, "hidden": [128, 64]}),
    ("vae-2d", "vae", {"latent_dim": 2, "hidden": [128, 64]}),
    ("cae-16", "cae", {"latent_dim": 16, "channels": [8, 16]}),
    ("conv-vae-16", "vae", {"latent_dim": 16, "arch": "conv", "channels": [8, 16]}),
    ("gan", "gan", {"latent_dim": 16, "channels": [8, 16]}),
    ("vaegan", "vaegan", {"latent_dim": 16, "channels": [8, 16]}),
]
CLASSIFIER_SPEC = {"channels": [8, 16, 16], "feature_dim": 32}


def _source_hash() -> str:
    """Changes whenever the models library or these specs change, so a cached folder is never stale."""
    root = Path(__file__).resolve().parents[2] / "models"
    digest = hashlib.sha256(repr((TINY_SPECS, CLASSIFIER_SPEC, TINY_STEPS)).encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _build_tiny_weights(folder: Path) -> None:
    import models
    import models.classifier  # noqa: F401
    from models import checkpoint, registry
    from models.data import load_dataset

    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", "train", subset=2000)
    for name, family, config in TINY_SPECS:
        if family not in registry.FAMILIES:
            continue
        try:
            model = registry.build(family, config)
        except Exception:  # a family whose config takes other fields: its defaults, with the latent size
            model = registry.build(family, {"latent_dim": config["latent_dim"]})
        _train(model, data.images)
        checkpoint.save(model, folder / f"{name}.safetensors", dataset="fashion-mnist", train_steps=TINY_STEPS)
    classifier = registry.build("classifier", CLASSIFIER_SPEC)
    _train(classifier, data.images, data.labels, steps=40)
    checkpoint.save(classifier, folder / "classifier.safetensors", dataset="fashion-mnist", train_steps=40)


@pytest.fixture(scope="session")
def tiny_weights(request, tmp_path_factory) -> Path:
    """A weights folder of small, briefly trained models (seconds on a laptop CPU).

    Kept in pytest's cache folder under a hash of the models' source, so a rerun does not retrain; the tests
    get a fresh copy, so nothing they do leaks into the next run.
    """
    cache = _cached_folder(request, f"tiny-weights-{_source_hash()}", "classifier.safetensors", _build_tiny_weights)
    folder = tmp_path_factory.mktemp("tiny-weights")
    for path in cache.glob("*.safetensors"):
        shutil.copy2(path, folder / path.name)
    return folder


TINY_DDPM = {"base_channels": 8, "channel_mults": [1, 2], "timesteps": 50, "decode_steps": 6}


def tiny_ddpm(num_classes: int = 0, seed: int = 0):
    """A tiny untrained DDPM (T = 50), as the diffusion tests use. With classes it is made to show what a class
    does without training: the weights a U-Net starts at zero (its output, each block's last conv, the class
    embedding), which make eps and the class count for nothing, are drawn at random, and its cosine schedule
    clips x̂_0, so the pictures stay in range and change with the class and the guidance scale."""
    from models.registry import build

    torch.manual_seed(seed)
    if not num_classes:
        return build("ddpm", TINY_DDPM).eval()
    model = build("ddpm", {**TINY_DDPM, "num_classes": num_classes, "schedule": "cosine"})
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0.0, 1.0 if name.startswith("class_emb") else 0.2)
        model.ema.load_state_dict(model.unet.state_dict())
    return model.eval()


@pytest.fixture(scope="session")
def guided_weights(tiny_weights, tmp_path_factory) -> Path:
    """tiny_weights plus a tiny unconditional DDPM ("ddpm") and a tiny class-conditional one ("ddpm-guided",
    Fashion-MNIST's 10 classes), both untrained, T = 50."""
    from models import checkpoint

    folder = tmp_path_factory.mktemp("guided-weights")
    for path in tiny_weights.glob("*.safetensors"):
        shutil.copy2(path, folder / path.name)
    checkpoint.save(tiny_ddpm(), folder / "ddpm.safetensors", dataset="fashion-mnist", train_steps=0)
    checkpoint.save(tiny_ddpm(10), folder / "ddpm-guided.safetensors", dataset="fashion-mnist", train_steps=0)
    return folder


@pytest.fixture()
def corrupt_file(tmp_path) -> Path:
    """A file that claims to be a model but is a truncated safetensors header."""
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\": {\"dtype\": \"F32\"")
    return path


# ---------------------------------------------------------------------------------------------------------------
# Settings and dialogs

@pytest.fixture(autouse=True)
def temp_settings(tmp_path, monkeypatch):
    """Every test gets its own QSettings folder; the user's settings are never read or written."""
    folder = tmp_path / "settings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    yield folder


@pytest.fixture(autouse=True)
def no_dialogs(monkeypatch):
    """A test that forgets to answer a dialog fails instead of hanging on a modal window."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    def refuse(*args, **kwargs):
        raise AssertionError("a modal dialog was opened in a test; monkeypatch it")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", refuse)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", refuse)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", refuse)
    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, refuse)


# ---------------------------------------------------------------------------------------------------------------
# The engine on a gate

class StandInModel(nn.Module):
    """A decoder you can read: the image is a horizontal ramp whose brightness is sigmoid(z1) and whose
    left-right tilt is z2. Enough to see that a decoded image follows its latent."""

    family = "stand-in"
    capabilities = frozenset({"encode", "decode", "sample"})
    latent_dim = 2
    image_shape = (1, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("ramp", torch.linspace(-1.0, 1.0, 28))

    @property
    def device(self) -> torch.device:
        return self.ramp.device

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        base = torch.sigmoid(z[:, :1])[:, :, None, None]                  # (B, 1, 1, 1)
        tilt = z[:, 1:2, None, None] * self.ramp[None, None, None, :]    # (B, 1, 1, 28)
        return (base + 0.2 * tilt).clamp(0, 1).expand(-1, 1, 28, 28).contiguous()

    def prior(self, n: int, generator=None) -> torch.Tensor:
        return torch.randn((n, 2), generator=generator)


@pytest.fixture()
def stand_in() -> StandInModel:
    """The stand-in decoder the fake engine uses, to compute what a decode should show."""
    return StandInModel()


@pytest.fixture()
def fake_engine(qapp):
    """The real Engine, held: jobs queue (and coalesce) until the test calls `release()`. It decodes with
    StandInModel. `submitted` lists (id, job) in submit order; `results` every Result delivered."""
    from explorer.engine.job import EngineContext
    from explorer.engine.worker import Engine

    class RecordingEngine(Engine):
        def __init__(self) -> None:
            super().__init__(context_factory=lambda: EngineContext(device=torch.device("cpu"),
                                                                     model=StandInModel()))
            self.submitted: list[tuple[int, object]] = []
            self.results: list = []
            self.failures: list[tuple[int, str, str]] = []
            self.failed.connect(lambda *args: self.failures.append(args))

        def enqueue(self, job, owner) -> int:          # every submit, through any channel
            job_id = super().enqueue(job, owner)
            self.submitted.append((job_id, job))
            return job_id

        def _delivered(self, result) -> None:          # every result, whoever asked
            self.results.append(result)

    engine = RecordingEngine()
    engine.hold()
    yield engine
    engine.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# The real window

def wait_for_model(qtbot, state, name: str | None = None, timeout: int = 30_000):
    """Block until the state has a model (called `name`, if given) and the engine has gone quiet."""
    qtbot.waitUntil(lambda: state.model is not None and (name is None or state.model.name == name),
                    timeout=timeout)
    qtbot.waitUntil(state.engine.is_idle, timeout=timeout)


def new_window(qtbot, weights, session: str | None = None):
    """A main window as `latent-explorer [SESSION.json]` opens it, offscreen at the README's size, on `weights`."""
    from explorer.app import build_window

    win = build_window(weights=str(weights), device="cpu", session=session)
    qtbot.addWidget(win)
    win.resize(1280, 820)
    win.show()
    return win


def settled(qtbot, win, timeout: int = 60_000) -> None:
    """The engine quiet, and quiet again once the last results have reached the views."""
    qtbot.waitUntil(win.engine.is_idle, timeout=timeout)
    qtbot.wait(50)
    qtbot.waitUntil(win.engine.is_idle, timeout=timeout)


@pytest.fixture()
def window(qtbot, tiny_weights):
    """The main window offscreen, on the real engine and `tiny_weights`, with its first model loaded."""
    from explorer.app import build_window

    win = build_window(weights=str(tiny_weights), device="cpu")
    qtbot.addWidget(win)
    win.show()
    wait_for_model(qtbot, win.state)
    yield win
    win.close()


@pytest.fixture()
def open_view(qtbot):
    """open_view(ViewClass, weights, name, size) -> that view, shown, on a real CPU engine and state, with the
    model `name` of the folder `weights` loaded and the view drawn (it said `ready`). Engines stop afterwards."""
    from explorer.engine.worker import Engine
    from explorer.state import AppState

    engines = []

    def open_(cls, weights, name: str, size: tuple[int, int] = (1100, 720), timeout: int = 60_000):
        engine = Engine(device="cpu", weights=str(weights))
        engines.append(engine)
        state = AppState(engine, weights)
        view = shown_view(qtbot, cls, state, size)
        with qtbot.waitSignal(view.ready, timeout=timeout):
            state.open_model(str(Path(weights) / f"{name}.safetensors"))
        qtbot.waitUntil(engine.is_idle, timeout=timeout)
        return view

    yield open_
    for engine in engines:
        engine.shutdown()


def shown_view(qtbot, cls, state, size: tuple[int, int] | None = None):
    """A view of class `cls` on `state`, owned by qtbot, resized to `size` if given, and shown."""
    view = cls(state)
    qtbot.addWidget(view)
    if size is not None:
        view.resize(*size)
    view.show()
    return view


@pytest.fixture()
def make_diffusion_view(qtbot):
    """make_diffusion_view(engine, weights, picked, size) -> a shown DiffusionView on the model `picked` of the
    folder `weights`, its first run finished and the engine idle."""
    from explorer.state import AppState
    from explorer.views.diffusion.view import DiffusionView

    def make(engine, weights, picked: str, size: tuple[int, int], timeout: int = 60_000):
        state = AppState(engine, weights)
        with qtbot.waitSignal(state.models_listed, timeout=timeout):
            state.list_models()
        view = shown_view(qtbot, DiffusionView, state, size)
        with qtbot.waitSignal(view.ready, timeout=timeout):
            state.open_model(str(Path(weights) / f"{picked}.safetensors"))
        qtbot.waitUntil(lambda: view.engine.is_idle() and not view.running(), timeout=timeout)
        qtbot.wait(20)
        return view

    return make


@pytest.fixture()
def training_dialog(qtbot, tiny_weights, tmp_path, monkeypatch):
    """(view, dialog, run): the Training tab on tiny_weights with its New-model dialog open; run(out) sets a small
    run (128 images, 1 epoch, batch 32) to write `out`, starts it with OK and waits for it to finish."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialogButtonBox

    from explorer.engine.worker import Engine
    from explorer.state import AppState
    from explorer.views.train.view import TrainingView

    timeout = 60_000
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    engine = Engine(device="cpu", weights=str(tiny_weights))
    state = AppState(engine, tiny_weights)
    state.list_models()
    view = shown_view(qtbot, TrainingView, state)
    qtbot.waitUntil(lambda: bool(state.models), timeout=timeout)
    dialog = view.new_model()

    def run(out: Path) -> None:
        dialog.subset.setValue(128)
        dialog.epochs.setValue(1.0)
        dialog.batch.setValue(32)
        dialog.out.setText(str(out))
        qtbot.waitUntil(lambda: dialog.step_ms is not None, timeout=timeout)
        with qtbot.waitSignal(view.run_started, timeout=timeout):
            qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
        with qtbot.waitSignal(view.run_finished, timeout=timeout):
            pass

    yield view, dialog, run
    engine.shutdown()


def _cached_folder(request, name: str, marker: str, build: Callable[[Path], None]) -> Path:
    """pytest's cache folder `name`, built by `build(folder)` unless it already holds `marker` (atomically: a
    build that fails leaves no half folder)."""
    cache = request.config.cache.mkdir(name)
    if not (cache / marker).is_file():
        tmp = Path(tempfile.mkdtemp(dir=cache.parent))
        build(tmp)
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
    return cache


# ---------------------------------------------------------------------------------------------------------------
# Colour: tiny models on `shapes` (3x32x32) and on a folder of unlabelled colour pictures

COLOUR_SHAPE = (3, 32, 32)
COLOUR_STEPS = 300
COLOUR_VAE = {"latent_dim": 8, "hidden": [128], "image_shape": list(COLOUR_SHAPE)}


def _train_colour(model, images, steps=COLOUR_STEPS, seed=0):
    """A few hundred quick steps at a higher learning rate: enough for a dense VAE to draw a shape's colour."""
    from models.train import TrainSettings

    settings = TrainSettings(batch_size=64, lr=3e-3, seed=seed, steps=steps)
    opts = model.configure_optimizers(settings)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        model.training_step(images[torch.randint(0, images.shape[0], (64,), generator=gen)], opts, gen)
    return model.eval()


def write_colour_pictures(folder: Path, n: int = 24, side: int = 32) -> Path:
    """A folder of `n` colour PNGs and no subfolder (so unlabelled): coloured squares on a dark ground."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.full((side, side, 3), 20, np.uint8)
        x, y = rng.integers(2, side // 2, size=2)
        img[y:y + side // 3, x:x + side // 3] = rng.integers(60, 255, size=3)
        Image.fromarray(img).save(folder / f"picture-{i:02d}.png")
    return folder


def _build_colour_weights(folder: Path) -> None:
    from models import checkpoint, registry
    from models.data import load_dataset

    torch.manual_seed(0)
    data = load_dataset("shapes", "train")
    vae = _train_colour(registry.build("vae", COLOUR_VAE), data.tensor(3000))
    checkpoint.save(vae, folder / "shapes-vae.safetensors", dataset="shapes", train_steps=COLOUR_STEPS)


@pytest.fixture(scope="session")
def colour_weights(request, tiny_weights, tmp_path_factory) -> Path:
    """tiny_weights plus colour models at (3, 32, 32): "shapes-vae", a small dense VAE trained a few hundred
    steps on `shapes` (it draws a red shape red), and "shapes-ddpm", a tiny untrained DDPM (T = 50) on `shapes`.
    Neither has a classifier (there is none for `shapes` in the folder). The trained one is cached as
    tiny_weights is."""
    from models import checkpoint
    from models.registry import build

    cache = _cached_folder(request, f"colour-weights-{_source_hash()}-{COLOUR_STEPS}", "shapes-vae.safetensors",
                           _build_colour_weights)
    folder = tmp_path_factory.mktemp("colour-weights")
    for path in [*tiny_weights.glob("*.safetensors"), *cache.glob("*.safetensors")]:
        shutil.copy2(path, folder / path.name)
    torch.manual_seed(0)
    ddpm = build("ddpm", {**TINY_DDPM, "image_shape": list(COLOUR_SHAPE)}).eval()
    checkpoint.save(ddpm, folder / "shapes-ddpm.safetensors", dataset="shapes", train_steps=0)
    return folder


@pytest.fixture()
def folder_weights(tmp_path, tiny_weights) -> Path:
    """A weights folder whose "folder-vae" (a tiny dense VAE, 3x32x32, a few steps) was trained on an unlabelled
    folder of colour pictures, `tmp_path / "pictures"`: there are no labels and no classifier for it. The
    folder is the test's own, so a test may delete it."""
    from models import checkpoint
    from models.catalog import dataset_name
    from models.data import load_dataset
    from models.registry import build

    name = dataset_name(f"folder:{write_colour_pictures(tmp_path / 'pictures')}")
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in tiny_weights.glob("*.safetensors"):
        shutil.copy2(path, folder / path.name)
    torch.manual_seed(0)
    data = load_dataset(name, "train", image_size=32, channels=3)
    vae = _train_colour(build("vae", COLOUR_VAE), data.tensor(), steps=5)
    checkpoint.save(vae, folder / "folder-vae.safetensors", dataset=name, train_steps=5)
    return folder
