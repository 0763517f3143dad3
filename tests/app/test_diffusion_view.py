"""The diffusion tab as a user meets it, through the real engine on a tiny DDPM (T = 50) saved beside the tiny
weights: a run streams one frame per step, in order, while it goes; DDIM at η = 0 repeats itself; Stop stops
within a step and the tab still works; a map drag is answered within one step of a run; the forward slider
shows the closed form and the network's x̂_0 is the closed form of its eps; a branch from frame k shares frames
0..k with its parent; the player steps and scrubs; the cost, the GIF and the PNG are there."""
from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.engine.jobs.common import DecodePoints
from explorer.engine.jobs.diffusion import DiffusionRun, ForwardProcess
from explorer.engine.worker import Engine
from explorer.state import AppState
from explorer.views.diffusion import view as view_module
from explorer.views.diffusion.view import DiffusionView

TIMEOUT = 60_000
T = 50


@pytest.fixture(scope="module")
def weights(tiny_weights, tmp_path_factory):
    """The tiny weights plus a tiny untrained DDPM (T = 50): a folder the engine reads like the shipped one."""
    from models import checkpoint
    from models.registry import build

    folder = tmp_path_factory.mktemp("diffusion-weights")
    for path in tiny_weights.glob("*.safetensors"):
        shutil.copy2(path, folder / path.name)
    torch.manual_seed(0)
    model = build("ddpm", {"base_channels": 8, "channel_mults": [1, 2], "timesteps": T, "decode_steps": 6})
    checkpoint.save(model.eval(), folder / "ddpm.safetensors", dataset="fashion-mnist", train_steps=0)
    return folder


@pytest.fixture()
def engine(qapp, weights):
    eng = Engine(device="cpu", weights=str(weights))
    yield eng
    eng.shutdown()


@pytest.fixture()
def make_view(make_diffusion_view, engine, weights):
    """make_view(picked="vae-2d") -> a shown DiffusionView whose first run (the defaults) has finished."""

    def make(picked: str = "vae-2d") -> DiffusionView:
        return make_diffusion_view(engine, weights, picked, (1200, 800), TIMEOUT)

    return make


def settle(qtbot, view) -> None:
    qtbot.waitUntil(lambda: view.engine.is_idle() and not view.running(), timeout=TIMEOUT)
    qtbot.wait(20)


def run_with(qtbot, view, sampler="ddpm", n=4, seed=0, steps=10, eta=0.0) -> None:
    view.sampler.setCurrentIndex(view.sampler.findData(sampler))
    view.samples.setValue(n)
    view.seed.setValue(seed)
    view.steps.setValue(steps)
    view.eta.setValue(eta)
    view.start_run()
    settle(qtbot, view)


def load_ddpm(weights):
    from models.checkpoint import load

    return load(weights / "ddpm.safetensors", "cpu").eval()


# ---------------------------------------------------------------------------------------------------------------
# Which model, and the first run

def test_a_picker_model_that_cannot_denoise_falls_back_to_the_shipped_ddpm_and_says_so(make_view, weights):
    view = make_view("vae-2d")
    assert view.target == str((weights / "ddpm.safetensors").resolve()) or view.target.endswith("ddpm.safetensors")
    assert "ddpm" in view.model_note.text() and "vae-2d does not denoise" in view.model_note.text()
    run = view.run
    assert run.done and len(run) == run.total == 50          # the default: 50 DDIM steps, 16 samples
    assert view.grids[0].count == view.grids[1].count == view.grids[2].count == 16
    assert view.forward.T == T                                 # the schedules came too


def test_a_run_streams_one_frame_per_step_in_order_while_it_goes(qtbot, make_view):
    view = make_view("ddpm")
    assert view.model_note.text().startswith("Model: ddpm") and "picker's" in view.model_note.text()
    seen = []                                                  # (frame on screen, frames there were then)
    view.frame_shown.connect(lambda j, k: seen.append((k, len(view.run), view.run.done)))
    run_with(qtbot, view, "ddpm", n=3, seed=1)
    run = view.run
    assert [f.index for f in run.frames] == list(range(T))     # DDPM: all T steps, one frame each, in order
    ts = [f.t for f in run.frames]
    assert ts == sorted(ts, reverse=True) and ts[0] == T - 1 and ts[-1] == 0
    assert seen[0][0] == 0 and not seen[0][2]                  # the first frame was on screen mid-run
    assert any(not done for _, _, done in seen[1:])            # and more followed before the end
    # every frame was labelled (a short run): the strip has a colour for every sample at every step
    assert all(f.labels is not None and f.labels.shape == (3,) for f in run.frames)
    assert view.decided.rgba.shape == (3, T, 4) and (view.decided.rgba[..., 3] > 0).all()
    assert "frame" in view.frame_label.text() and view.titles[0].text().startswith("x_t at t = ")


def test_ddim_at_eta_zero_with_a_fixed_seed_gives_identical_images_twice(qtbot, make_view):
    view = make_view("ddpm")
    run_with(qtbot, view, "ddim", n=4, seed=5, steps=8, eta=0.0)
    first = view.run.final
    run_with(qtbot, view, "ddim", n=4, seed=5, steps=8, eta=0.0)
    second = view.run.final
    assert len(view.run) == 8
    np.testing.assert_array_equal(first.x0, second.x0)
    np.testing.assert_array_equal(first.x_raw, second.x_raw)
    run_with(qtbot, view, "ddim", n=4, seed=6, steps=8, eta=0.0)
    assert not np.array_equal(view.run.final.x0, first.x0)     # another seed, another picture
    # and a branch of a deterministic run is refused with the reason
    assert not view.branch_button.isEnabled()
    assert view.branch(3) is None and "η = 0" in view.status.text()


def test_a_dpm_solver_run_is_the_models_own_dpm_solver_sample_and_refuses_a_branch(qtbot, make_view, weights):
    from models.ddpm import to_image_range

    view = make_view("ddpm")
    run_with(qtbot, view, "dpm++", n=3, seed=4, steps=8)
    run = view.run
    assert run.sampler == "dpm++" and len(run) == run.total == 8 and not view.eta.isEnabled()
    assert "8 DPM-Solver++ steps" in view.cost.text()
    model = load_ddpm(weights)
    with torch.no_grad():
        x_T = torch.randn((3, *model.image_shape), generator=torch.Generator().manual_seed(4))
        *_, last = model.raw_frames(x_T, None, "dpm++", 8)
    np.testing.assert_allclose(run.final.x0.reshape(3, -1).astype(np.float32),
                               to_image_range(last.x0).reshape(3, -1).numpy(), atol=1e-3)   # frames keep float16
    assert not view.branch_button.isEnabled()
    assert view.branch(3) is None and "DPM-Solver++" in view.status.text()


# ---------------------------------------------------------------------------------------------------------------
# Stop, and other work during a run

@dataclass(frozen=True, eq=False)
class CountingRun(DiffusionRun):
    """A DiffusionRun that notes each frame its stream produced, on the engine thread."""

    def run(self, ctx):
        for frame in super().run(ctx):
            PRODUCED.append(frame.index)
            yield frame


PRODUCED: list[int] = []


def test_stop_ends_a_run_within_one_step_and_the_tab_stays_usable(qtbot, make_view, monkeypatch):
    view = make_view("ddpm")
    monkeypatch.setattr(view_module, "DiffusionRun", CountingRun)
    PRODUCED.clear()
    view.sampler.setCurrentIndex(view.sampler.findData("ddpm"))
    view.samples.setValue(16)
    view.start_run()
    qtbot.waitUntil(lambda: len(view.run) >= 5, timeout=TIMEOUT)
    assert view.stop_button.isEnabled()
    view.stop()
    shown, produced = len(view.run), len(PRODUCED)
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    assert len(PRODUCED) <= produced + 1                       # at most the step that was on the device
    assert len(view.run) == shown and view.run.stopped and not view.run.done
    assert not view.stop_button.isEnabled() and "Stopped" in view.status.text()
    view.show_frame(2)                                         # the frames so far stay to scrub through
    assert view.pos == 2
    run_with(qtbot, view, "ddim", n=2, seed=0, steps=5)        # and the next run works
    assert view.run.done and len(view.run) == 5


@dataclass(frozen=True, eq=False)
class TimedRun(DiffusionRun):
    """A DiffusionRun that notes when each of its steps starts, on the engine thread."""

    log: list | None = None

    def run(self, ctx):
        steps = super().run(ctx)
        while True:
            started = time.perf_counter()
            try:
                frame = next(steps)
            except StopIteration:
                return
            self.log.append(("frame", started))
            yield frame


@dataclass(frozen=True, eq=False)
class TimedDecode(DecodePoints):
    log: list | None = None

    def run(self, ctx):
        self.log.append((self.name, time.perf_counter()))
        return super().run(ctx)


def test_a_map_drag_during_a_run_is_answered_within_one_step(qtbot, engine, weights):
    """Counted on the engine thread: a step that ran before the drag was submitted, but whose frame reached the
    UI after, is not one the drag waited for."""
    run_channel, map_channel = engine.channel("diffusion"), engine.channel("map")
    log: list[tuple[str, float]] = []
    frames: list = []
    warm = threading.Event()
    run_channel.submit(TimedRun(n=16, seed=0, sampler="ddpm", steps=None, model="ddpm", log=log), frames.append)
    map_channel.submit(DecodePoints("probe-0", np.zeros((1, 2), np.float32), model="vae-2d"),
                       lambda r: warm.set())                      # loaded, so the drags below are pure decodes
    qtbot.waitUntil(lambda: warm.is_set() and len(frames) >= 3, timeout=TIMEOUT)
    for k in range(5):                                             # a drag: five moves, each answered in turn
        answered = threading.Event()
        submitted_at = time.perf_counter()
        map_channel.submit(TimedDecode(f"drag-{k}", np.full((1, 2), 0.1 * k, np.float32), model="vae-2d", log=log),
                           lambda r: answered.set())
        qtbot.waitUntil(answered.is_set, timeout=TIMEOUT)
        ran = next(t for who, t in log if who == f"drag-{k}")
        started = [t for who, t in log if who == "frame" and submitted_at <= t < ran]
        # at most the step the engine picked as the drag was queued: the "after at most one item"
        assert len(started) <= 1, f"drag {k} waited for {len(started)} steps that started after it"
    assert not any(r.final for r in frames) and len(frames) < T    # the run was still going throughout
    run_channel.cancel()
    qtbot.waitUntil(engine.is_idle, timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------------------------
# The forward process

def _peek(qtbot, view, t: int, index: int = 0, seed: int = 0):
    view.halves.setCurrentIndex(0)
    with qtbot.waitSignal(view.forward.shown, timeout=TIMEOUT,
                          check_params_cb=lambda shown_t: shown_t == t and view.forward.peek.index == index
                          and view.forward.noise_seed.value() == seed):
        view.forward.noise_seed.setValue(seed)
        view.forward.index.setValue(index)
        view.forward.slider.setValue(t)
        view.forward.ask()
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    return view.forward.peek


def test_the_forward_slider_shows_the_closed_form(qtbot, make_view, weights):
    from models.data import load_dataset

    view = make_view("ddpm")
    schedule = load_ddpm(weights).schedule
    x0 = 2.0 * load_dataset("fashion-mnist", "test").images[7:8] - 1.0
    for t, seed in ((3, 0), (30, 0), (30, 4)):
        peek = _peek(qtbot, view, t, index=7, seed=seed)
        eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
        a = float(schedule.alpha_bars[t])
        want = np.sqrt(a) * x0[0, 0].numpy() + np.sqrt(1.0 - a) * eps[0, 0].numpy()
        np.testing.assert_allclose(peek.x_t_raw, want, atol=1e-5)
        np.testing.assert_allclose(view.forward.panels["x_t"].image, np.clip((want + 1) / 2, 0, 1), atol=1e-5)
        np.testing.assert_allclose(view.forward.panels["x0"].image, (x0[0, 0].numpy() + 1) / 2, atol=1e-6)
        assert f"t = {t}" in view.forward.readout.text() and peek.alpha_bar == pytest.approx(a)
    # the re-drawn noise is another noise: the same image and t, another x_t
    assert not np.allclose(_peek(qtbot, view, 30, 7, 0).x_t_raw, _peek(qtbot, view, 30, 7, 5).x_t_raw)
    # both schedules are drawn, the model's own marked
    names = [item.name() for item in view.forward.alpha_plot.listDataItems()]
    assert names == ["linear (this model)", "cosine"]


def test_the_networks_x0_at_the_scrubbed_t_is_the_closed_form_of_its_eps(qtbot, make_view, weights):
    view = make_view("ddpm")
    model = load_ddpm(weights)
    peek = _peek(qtbot, view, 25, index=3, seed=2)
    a = peek.alpha_bar
    with torch.no_grad():
        eps = model.ema(torch.from_numpy(peek.x_t_raw)[None, None], torch.tensor([25]))[0, 0].numpy()
    np.testing.assert_allclose(peek.eps_pred, eps, atol=1e-5)           # the U-Net's own eps, at that x_t and t
    want = (peek.x_t_raw - np.sqrt(1 - a) * peek.eps_pred) / np.sqrt(a)
    np.testing.assert_allclose(peek.x0_pred_raw, want, atol=1e-4)
    np.testing.assert_allclose(view.forward.panels["x0_pred"].image, np.clip((want + 1) / 2, 0, 1), atol=1e-4)
    assert peek.mse_eps == pytest.approx(float(((peek.eps_pred - peek.eps) ** 2).mean()), rel=1e-4)
    assert "MSE" in view.forward.panels["eps_pred"].caption.text()


# ---------------------------------------------------------------------------------------------------------------
# Branches, the player, the cost, export

def test_a_branch_from_frame_k_shares_frames_0_to_k_with_its_parent(qtbot, make_view):
    view = make_view("ddpm")
    run_with(qtbot, view, "ddpm", n=4, seed=3)
    parent = view.run
    k = 20
    view.show_frame(k)
    j = view.branch(seed=77)                                  # from the frame on screen
    settle(qtbot, view)
    branch = view.tracks[j]
    assert branch.done and branch.start == k and len(branch) == T
    assert all(a is b for a, b in zip(branch.frames[:k], parent.frames[:k]))   # the parent's own frames
    np.testing.assert_array_equal(branch.frames[k].x_raw, parent.frames[k].x_raw)
    np.testing.assert_allclose(branch.frames[k].x0.astype(np.float32), parent.frames[k].x0.astype(np.float32),
                               atol=1e-3)
    assert not np.allclose(branch.frames[k + 1].x_raw, parent.frames[k + 1].x_raw)   # new noise after k
    assert not np.allclose(branch.final.x0, parent.final.x0)
    # side by side with the parent, each with its final label
    assert view.comparison.count == 2
    assert view.comparison.captions[0].startswith("run") and view.comparison.captions[1].startswith(
        f"t={parent.frames[k].t}")
    assert all("%" in c for c in view.comparison.captions)
    view.track_box.setCurrentIndex(j)                         # the branch plays like the run
    view.show_frame(T - 1)
    np.testing.assert_allclose(view.grids[1].images, branch.final.x0.astype(np.float32))


def test_the_player_plays_steps_and_scrubs_through_the_frames(qtbot, make_view):
    view = make_view("ddpm")
    run_with(qtbot, view, "ddim", n=4, seed=0, steps=12)
    run = view.run
    view.set_playing(False)                                    # (the player may still be catching up)
    view.scrub.setValue(0 if view.scrub.value() == 3 else 3)
    view.scrub.setValue(3)                                     # as a click on the slider does
    assert view.pos == 3 and not view.playing
    np.testing.assert_allclose(view.grids[0].images, run.frames[3].x_t)
    view.step_once()
    assert view.pos == 4 and view.scrub.value() == 4
    np.testing.assert_allclose(view.grids[2].images, run.frames[4].eps_image)
    view.speed.setCurrentIndex(view.speed.findData(250))
    view.set_playing(True)
    qtbot.waitUntil(lambda: not view.playing, timeout=5_000)   # plays to the end, then stops there
    assert view.pos == 11 and view.play_button.text() == "Play"


def test_the_runs_cost_stands_beside_the_vae_and_the_gan_measured_now(qtbot, make_view):
    view = make_view("ddpm")
    qtbot.waitUntil(lambda: view.costs is not None, timeout=TIMEOUT)
    text = view.cost.text()
    assert "16 samples in 50 DDIM steps" in text and "conv-vae-16" in text and "gan" in text
    assert set(name.rsplit("/", 1)[-1] for name in view.costs["ms"]) == {"conv-vae-16.safetensors",
                                                                        "gan.safetensors"}
    assert all(ms > 0 for ms in view.costs["ms"].values()) and view.costs["n"] == 16


def test_the_animation_saves_as_a_gif_and_the_branches_as_a_png(qtbot, make_view, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    view = make_view("ddpm")
    run_with(qtbot, view, "ddim", n=4, seed=0, steps=10, eta=1.0)
    path = view.save_animation(tmp_path / "run.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 10
    assert not view.save_png_button.isEnabled()
    view.branch(2, seed=9)
    view.branch(7, seed=9)
    settle(qtbot, view)
    assert view.save_png_button.isEnabled()
    png = view.save_comparison(tmp_path / "branches.png")
    with Image.open(png) as img:
        # 4 samples in rows, the run + 2 branches in columns: 84-px tiles (28 x 3), a 26-px caption band, 4-px gaps
        assert img.size == (3 * (84 + 4) + 4, 4 * (84 + 26 + 4) + 4)
    # a place that cannot be written: one sentence, and the view goes on
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: ("/proc/no/such/dir/x.png", ""))
    view._ask_png()
    assert "cannot write" in view.status.text()


def test_a_run_the_model_cannot_take_says_why(qtbot, engine):
    channel = engine.channel("diffusion")
    errors = []
    channel.submit(DiffusionRun(n=2, sampler="ddim", steps=T + 5, tag="a", model="ddpm"), on_error=errors.append)
    channel.submit(ForwardProcess(index=0, t=T, model="ddpm"), on_error=errors.append)
    channel.submit(DiffusionRun(n=2, tag="b", model="vae-2d"), on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 3, timeout=TIMEOUT)
    for words in ("between 1 and the model's T = 50", "t runs from 0 to 49", "does not denoise"):
        assert any(words in e for e in errors), (words, errors)      # (interactive work answers first)


# ---------------------------------------------------------------------------------------------------------------
# benchmarks/diffusion.py keeps its --json contract

@pytest.mark.slow
def test_diffusion_benchmark_reports_its_figures_as_json(weights):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    started = time.time()
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "diffusion.py"), "--weights", str(weights),
                           "--samples", "2", "--ddpm-steps", "12", "--device", "cpu", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    for key in ("first_frame_ms", "animation_fps", "overhead_ratio", "total_s_ddpm_1000", "total_s_ddim_50",
                "total_s_ddim_20"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["total_s_ddim_20"] <= figures["total_s_ddim_50"] * 1.5
    assert figures["samples"] == 2 and time.time() - started < 600
    assert "first frame" in done.stdout


def test_a_dot_pinned_on_the_map_is_the_image_the_forward_half_noises(qtbot, make_view):
    view = make_view("ddpm")
    view.state.test_image_pinned.emit(42)                  # what the latent map says when a dot is pinned
    assert view.forward.index.value() == 42
    qtbot.waitUntil(lambda: "test image 42" in view.forward.panels["x0"].caption.text(), timeout=30_000)


def test_a_start_on_another_tab_runs_nothing_until_the_diffusion_tab_is_shown(qtbot, engine, weights):
    from explorer.views.diffusion.view import DiffusionView

    state = AppState(engine, weights)
    view = DiffusionView(state)                            # built, never shown: as behind the map's tab
    qtbot.addWidget(view)
    state.open_model(str(weights / "ddpm.safetensors"))
    qtbot.waitUntil(lambda: state.model is not None and engine.is_idle(), timeout=60_000)
    assert not any(track.frames for track in view.tracks)
    with qtbot.waitSignal(view.ready, timeout=120_000):
        view.show()
    assert view.tracks and view.tracks[0].frames
