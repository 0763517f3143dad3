"""Classifier-free guidance in the app, on a tiny class-conditional DDPM (T = 50, its class embedding random so a
class changes the picture): the diffusion tab's class picker and guidance slider rerun the same seed (the same
x_T) and the picture changes with the scale, a slider drag queues no runs, the strip shows one sample at six
scales with the classifier's labels, the cost line measures what guidance costs, and branches keep the class;
an unconditional model shows none of it. The map, the interpolation and compare take the class, and the Training
tab trains a class-conditional DDPM."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.engine.jobs.common import DecodePoints
from explorer.engine.jobs.diffusion import GUIDANCE_SCALES, DiffusionRun, GuidanceStrip
from explorer.engine.jobs.interpolate import KeyframeCodes
from explorer.engine.jobs.map import DenoisePoint
from explorer.engine.worker import Engine
from explorer.state import AppState
from explorer.views.diffusion.view import DiffusionView

from conftest import tiny_ddpm
from stand_ins import ddpm_info

TIMEOUT = 60_000
SNEAKER = 7


def load(path):
    from models.checkpoint import load as load_checkpoint

    return load_checkpoint(path, "cpu").eval()


def recorded(view) -> list:
    """Every job the view submits from now on, in order."""
    jobs: list = []
    real = view.channel.submit
    view.channel.submit = lambda job, *a, **k: (jobs.append(job), real(job, *a, **k))[1]
    return jobs


@pytest.fixture()
def engine(qapp, guided_weights):
    eng = Engine(device="cpu", weights=str(guided_weights))
    yield eng
    eng.shutdown()


@pytest.fixture()
def make_view(make_diffusion_view, engine, guided_weights):
    """make_view(picked) -> a shown DiffusionView on that model, its first run (any class) finished."""

    def make(picked: str = "ddpm-guided") -> DiffusionView:
        return make_diffusion_view(engine, guided_weights, picked, (1200, 860), TIMEOUT)

    return make


def settle(qtbot, view) -> None:
    qtbot.waitUntil(lambda: view.engine.is_idle() and not view.running(), timeout=TIMEOUT)
    qtbot.wait(20)


def deterministic(view, n=3, steps=8, seed=4) -> None:
    """DDIM with η = 0, so a run from a seed is a function of its x_T, its class and its scale alone."""
    view.sampler.setCurrentIndex(view.sampler.findData("ddim"))
    view.samples.setValue(n)
    view.steps.setValue(steps)
    view.eta.setValue(0.0)
    view.seed.setValue(seed)


# ---------------------------------------------------------------------------------------------------------------
# The diffusion tab

def test_an_unconditional_model_shows_no_class_picker_and_no_slider(qtbot, make_view):
    view = make_view("ddpm")
    assert not view.guidance_box.isVisible() and not view.picker.isVisible()
    assert not view.picker.conditional and view.picker.class_index is None and view.picker.guidance == 1.0
    jobs = recorded(view)
    view.start_run()
    settle(qtbot, view)
    run = next(j for j in jobs if isinstance(j, DiffusionRun))
    assert run.class_index is None and run.guidance == 1.0          # the model is asked what it always was
    assert not any(isinstance(j, GuidanceStrip) for j in jobs)
    assert "Guidance" not in view.cost.text()


def test_a_conditional_model_offers_any_class_then_the_ten_classes_and_a_slider_from_0_to_10(qtbot, make_view):
    from models.catalog import FASHION_CLASSES

    view = make_view()
    assert view.guidance_box.isVisible() and view.picker.isVisible()
    box = view.picker.box
    assert [box.itemText(i) for i in range(box.count())] == ["any class"] + [
        f"{k} · {name}" for k, name in enumerate(FASHION_CLASSES)]
    assert view.picker.class_index is None and not view.picker.slider.isEnabled()   # w has nothing to pull to
    assert (view.picker.slider.minimum(), view.picker.slider.maximum()) == (0.0, 10.0)
    assert view.run.class_index is None                               # the first run: any class
    assert "w = 0 ignores the class" in view.guidance_note.text() and "w = 1" in view.guidance_note.text()


def test_the_guidance_slider_reruns_the_same_seed_and_the_picture_changes_with_the_scale(qtbot, make_view):
    view = make_view()
    deterministic(view)
    jobs = recorded(view)
    view.picker.set_guidance(1.0)
    view.picker.set_class(SNEAKER)                  # a class: a run at w = 1, the plain conditional model
    settle(qtbot, view)
    at_1 = view.run.final
    qtbot.waitUntil(lambda: view.strip is not None and len(view.strip.scales) == len(GUIDANCE_SCALES),
                    timeout=TIMEOUT)
    view.picker.set_guidance(5.0)                   # the slider: the same seed again, pulled harder
    settle(qtbot, view)
    at_5 = view.run.final
    runs = [j for j in jobs if isinstance(j, DiffusionRun)]
    assert [(r.class_index, r.guidance) for r in runs] == [(SNEAKER, 1.0), (SNEAKER, 5.0)]
    assert runs[0].seed == runs[1].seed == 4 and runs[0].n == runs[1].n == 3
    model = load(view.target)
    x_T = [r.start_noise(model, torch.Generator().manual_seed(r.seed)) for r in runs]
    torch.testing.assert_close(x_T[0], x_T[1])     # the same noise, x_T, for both scales
    assert not np.allclose(at_1.x0.astype(np.float32), at_5.x0.astype(np.float32), atol=1e-3)
    # and both runs start from the strip's x_T: its pictures at w = 1 and w = 5 are the runs' own sample
    strip = view.strip
    for w, final in ((1.0, at_1), (5.0, at_5)):
        k = strip.scales.index(w)
        np.testing.assert_allclose(strip.images[k], final.x0[0].astype(np.float32), atol=2e-3)
    # what it is: the model's own sampler from that x_T, class and scale
    with torch.no_grad():
        want = model.sample_from(x_T[1], 8, classes=SNEAKER, guidance=5.0)[:, 0].numpy()
    np.testing.assert_allclose(at_5.x0.astype(np.float32), want, atol=2e-3)
    assert len(strip.scales) == len(GUIDANCE_SCALES)   # the scale alone does not ask for the strip again
    assert sum(isinstance(j, GuidanceStrip) for j in jobs) == 1


def test_a_drag_of_the_slider_queues_no_runs(qtbot, make_view):
    view = make_view()
    deterministic(view, steps=6)
    view.picker.set_class(2)
    settle(qtbot, view)
    jobs = recorded(view)
    slider = view.picker.slider
    slider.setSliderDown(True)                      # a drag: many values, faster than the rerun's pause
    for w in (3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5):
        slider.setValue(w)
    assert not any(isinstance(j, DiffusionRun) for j in jobs)
    slider.setSliderDown(False)                     # let go: one run, at the last value
    settle(qtbot, view)
    runs = [j for j in jobs if isinstance(j, DiffusionRun)]
    assert [r.guidance for r in runs] == [6.5] and view.run.done and view.run.guidance == 6.5
    # a drag that rests on a value reruns there (latest wins: the older run is cancelled, never queued)
    slider.setSliderDown(True)
    slider.setValue(8.0)
    qtbot.waitUntil(lambda: len([j for j in jobs if isinstance(j, DiffusionRun)]) == 2, timeout=5_000)
    slider.setValue(9.0)
    slider.setSliderDown(False)
    settle(qtbot, view)
    runs = [j for j in jobs if isinstance(j, DiffusionRun)]
    assert [r.guidance for r in runs] == [6.5, 8.0, 9.0] and view.run.guidance == 9.0 and view.run.done
    assert len(view.tracks) == 1 and len(view.run) == 6


def test_the_strip_shows_one_sample_at_six_scales_with_the_classifiers_labels(qtbot, make_view):
    view = make_view()
    deterministic(view, n=4, steps=5, seed=9)
    view.picker.set_guidance(3.0)
    with qtbot.waitSignal(view.strip_shown, timeout=TIMEOUT, check_params_cb=lambda k: k == 6):
        view.picker.set_class(SNEAKER)
    settle(qtbot, view)
    assert view.strip_grid.count == 6 and view.strip.scales == (0.0, 1.0, 2.0, 3.0, 5.0, 7.5)
    captions = view.strip_grid.captions
    assert [c.split("\n")[0].split(" ◂")[0] for c in captions] == ["w = 0", "w = 1", "w = 2", "w = 3", "w = 5",
                                                                    "w = 7.5"]
    assert "◂" in captions[3] and all("%" in c.split("\n")[1] for c in captions)   # the label and confidence
    assert "seed 9" in view.strip_title.text() and "only w differs" in view.strip_title.text()
    model = load(view.target)
    x_T = DiffusionRun(n=4, seed=9).start_noise(model, torch.Generator().manual_seed(9))[:1]
    with torch.no_grad():
        for k, w in enumerate(GUIDANCE_SCALES):
            want = model.sample_from(x_T, 5, classes=SNEAKER, guidance=w)[0, 0].numpy()
            np.testing.assert_allclose(view.strip.images[k], want, atol=1e-5)
    assert not np.allclose(view.strip.images[0], view.strip.images[-1], atol=1e-3)
    # another sample of the seed: a click on it, and the strip follows
    with qtbot.waitSignal(view.strip_shown, timeout=TIMEOUT, check_params_cb=lambda k: k == 6):
        view._say_sample(2)
    assert view.strip_job.index == 2 and "Sample 3 of seed 9" in view.strip_title.text()
    view.picker.set_class(None)                     # any class: no strip, and why
    assert view.strip_grid.count == 0 and "Pick a class" in view.strip_title.text()


def test_the_cost_line_says_in_measured_ms_that_guidance_doubles_the_work_per_step(qtbot, make_view):
    view = make_view()
    deterministic(view, n=4, steps=6)
    view.picker.set_guidance(3.0)
    view.picker.set_class(1)
    settle(qtbot, view)
    qtbot.waitUntil(lambda: view.costs is not None and "step_ms" in view.costs, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "doubles" in view.cost.text(), timeout=TIMEOUT)
    step = view.costs["step_ms"]
    assert step["plain"] > 0 and step["guided"] > 0
    text = view.cost.text()
    assert "guided at w = 3: the U-Net sees every image twice a step" in text and "ms" in text
    assert "Guidance doubles the network's work per step" in text and "unguided" in text


def test_branches_and_the_label_strip_keep_the_class_and_the_scale(qtbot, make_view):
    view = make_view()
    view.sampler.setCurrentIndex(view.sampler.findData("ddpm"))
    view.samples.setValue(2)
    view.picker.set_guidance(2.0)
    jobs = recorded(view)
    view.picker.set_class(4)
    settle(qtbot, view)
    run = view.run
    assert run.done and len(run) == 50 and (run.class_index, run.guidance) == (4, 2.0)
    assert all(f.labels is not None for f in run.frames)              # the label over t, every frame
    assert view.decided.rgba.shape == (2, 50, 4)
    view.show_frame(20)
    j = view.branch(seed=5)
    settle(qtbot, view)
    branch = view.tracks[j]
    assert branch.done and (branch.class_index, branch.guidance) == (4, 2.0)
    job = [x for x in jobs if isinstance(x, DiffusionRun)][-1]
    assert (job.start, job.class_index, job.guidance) == (20, 4, 2.0)
    assert not np.allclose(branch.final.x0, run.final.x0)


def test_an_unconditional_model_asked_for_a_class_says_so_in_one_sentence(qtbot, engine):
    channel = engine.channel("diffusion")
    errors: list[str] = []
    channel.submit(DiffusionRun(n=1, steps=2, class_index=3, guidance=2.0, model="ddpm"), on_error=errors.append)
    channel.submit(GuidanceStrip(n=1, steps=2, model="ddpm"), on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=TIMEOUT)
    assert any("trained without classes" in e for e in errors), errors
    assert all(e.count(".") <= 1 and "\n" not in e for e in errors)


# ---------------------------------------------------------------------------------------------------------------
# The map, the interpolation and compare

def conditional_info(path: str = "ddpm-guided"):
    import dataclasses

    from models.catalog import FASHION_CLASSES

    return dataclasses.replace(ddpm_info(path), classes=FASHION_CLASSES, num_classes=10)


def _engine_on(model):
    from explorer.engine.job import EngineContext

    return Engine(context_factory=lambda: EngineContext(device=torch.device("cpu"), model=model))


@pytest.fixture()
def guided_view(qtbot, tmp_path):
    """(model, open_): a tiny conditional DDPM, and open_(ViewClass) -> (view, state, engine), the view shown on
    an engine that runs that model (engines stop afterwards)."""
    model = tiny_ddpm(10)
    engines = []

    def open_(cls):
        engine = _engine_on(model)
        engines.append(engine)
        state = AppState(engine, tmp_path)
        view = cls(state)
        qtbot.addWidget(view)
        view.show()
        return view, state, engine

    yield model, open_
    for engine in engines:
        engine.shutdown()


def test_the_maps_noise_plane_takes_the_class_and_the_scale(qtbot, guided_view):
    from explorer.views.map.view import LatentMapView

    model, open_ = guided_view
    view, state, engine = open_(LatentMapView)
    info = ddpm_info()
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        state.model = info
        state.model_changed.emit(info)
    assert not view.side.class_box.isVisible()        # an unconditional model: no class to pick
    info = conditional_info()
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        state.model = info
        state.model_changed.emit(info)
    assert view.side.class_box.isVisible() and view.side.picker.class_index is None
    qtbot.waitUntil(engine.is_idle, timeout=TIMEOUT)
    jobs = recorded(view)
    view.set_layer("grid", True)
    view.side.picker.set_guidance(4.0)
    view.side.picker.set_class(SNEAKER)
    qtbot.waitUntil(lambda: engine.is_idle() and not view.channel.alive(), timeout=TIMEOUT)
    probes = [j for j in jobs if isinstance(j, DenoisePoint) and j.class_index == SNEAKER]
    assert {j.name for j in probes} == {"probe-0", "probe-1"} and all(j.guidance == 4.0 for j in probes)
    grids = [j for j in jobs if isinstance(j, DecodePoints) and j.name == "map-grid"]
    assert grids and (grids[-1].class_index, grids[-1].guidance) == (SNEAKER, 4.0)
    z = view.plane.to_latent(view.probes[0].uv)
    with torch.no_grad():
        want = model.decode(torch.from_numpy(z)[None], classes=SNEAKER, guidance=4.0)[0, 0].numpy()
        plain = model.decode(torch.from_numpy(z)[None])[0, 0].numpy()
    np.testing.assert_allclose(view.probe_panels[0].image, want, atol=1e-5)
    assert not np.allclose(want, plain, atol=1e-3)
    assert "Sneaker, w = 4" in view.status.text()


def test_the_interpolation_runs_the_keyframes_back_and_the_path_forward_with_the_class(qtbot, guided_view,
                                                                                         monkeypatch):
    from explorer.views.interpolate.view import InterpolationView

    monkeypatch.setattr(InterpolationView, "test_limit", 200)
    model, open_ = guided_view
    view, state, engine = open_(InterpolationView)
    view.set_frames(4)
    info = conditional_info()
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        state.model = info
        state.model_changed.emit(info)
    assert view.class_group.isVisible() and view.codes.method == "ddim inversion"
    qtbot.waitUntil(engine.is_idle, timeout=TIMEOUT)
    jobs = recorded(view)
    view.class_picker.set_guidance(2.0)
    with qtbot.waitSignal(view.codes_shown, timeout=TIMEOUT):
        view.class_picker.set_class(3)
    qtbot.waitUntil(lambda: engine.is_idle() and view.strip_images is not None, timeout=TIMEOUT)
    codes = [j for j in jobs if isinstance(j, KeyframeCodes)]
    assert codes and (codes[-1].class_index, codes[-1].guidance) == (3, 2.0)
    path_jobs = [j for j in jobs if isinstance(j, DenoisePoint)]
    assert path_jobs and all((j.class_index, j.guidance) == (3, 2.0) for j in path_jobs)
    x = torch.from_numpy(np.stack([k.image for k in view.keyframes]))[:, None]
    with torch.no_grad():
        want_z = model.invert(x, classes=3, guidance=2.0)
        want_strip = model.decode(torch.from_numpy(view.frames_z()), classes=3, guidance=2.0)[:, 0].numpy()
    np.testing.assert_allclose(view.codes.z, want_z.numpy(), atol=1e-4)
    np.testing.assert_allclose(view.strip_images, want_strip, atol=1e-4)


def test_compare_shows_a_conditional_models_samples_one_row_per_class(qtbot, guided_weights, tmp_path):
    import shutil

    from explorer.engine.jobs.compare import PriorStream
    from explorer.views.compare.view import GUIDANCE, N_SAMPLES, CompareView

    folder = tmp_path / "guided-only"
    folder.mkdir()
    for name in ("classifier", "ddpm-guided", "vae-2d"):
        shutil.copy2(guided_weights / f"{name}.safetensors", folder / f"{name}.safetensors")
    engine = Engine(device="cpu", weights=str(folder))
    try:
        state = AppState(engine, folder)
        view = CompareView(state)
        qtbot.addWidget(view)
        view.resize(1280, 900)
        jobs = recorded(view)
        with qtbot.waitSignal(view.ready, timeout=120_000):
            view.show()
            state.list_models()
        path = next(p for p in view.rows if view.names[p] == "ddpm-guided")
        row = view.rows[path]
        assert len(row.classes) == 10 and row.done
        assert row.grid.count == 10 * N_SAMPLES and row.grid.columns == N_SAMPLES
        assert "one row per class" in row.info_label.text() and f"w = {GUIDANCE:g}" in row.info_label.text()
        stream = next(j for j in jobs if isinstance(j, PriorStream))
        assert stream.per_class and stream.guidance == GUIDANCE
        model = load(folder / "ddpm-guided.safetensors")
        x_T = stream.start_noise(model, torch.Generator().manual_seed(stream.seed))
        assert x_T.shape[0] == 10 * N_SAMPLES
        torch.testing.assert_close(x_T[:N_SAMPLES], x_T[-N_SAMPLES:])      # every class row: the same x_T
        with torch.no_grad():
            want = model.sample_from(x_T[:N_SAMPLES], 50, classes=SNEAKER, guidance=GUIDANCE)[:, 0].numpy()
        got = row.grid.images[SNEAKER * N_SAMPLES:(SNEAKER + 1) * N_SAMPLES]
        np.testing.assert_allclose(got, want, atol=1e-4)
        # the other models' rows are as they were
        vae = view.rows[next(p for p in view.rows if view.names[p] == "vae-2d")]
        assert vae.grid.count == N_SAMPLES and not vae.classes
    finally:
        engine.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# The Training tab

def test_the_training_tab_trains_a_class_conditional_ddpm(training_dialog, tmp_path):
    from models import checkpoint

    view, dialog, run = training_dialog
    dialog.select_family("vae")
    assert not dialog.conditional.isEnabled()                # only a DDPM learns classes
    dialog.select_family("ddpm")
    assert dialog.conditional.isEnabled() and not dialog.conditional.isChecked()
    assert "num_classes" not in dialog.request().config
    dialog.conditional.setChecked(True)
    assert dialog.request().config["num_classes"] == 10 and "guided" in dialog.out.text()
    out = tmp_path / "my-ddpm-guided.safetensors"
    run(out)                                                  # the estimate is timed with labels too
    assert view.last is not None and view.last.step == 4 and math_finite(view.last.losses)
    model = checkpoint.load(out, "cpu")
    assert model.conditional and model.null_class == 10
    assert checkpoint.read_metadata(out).config.num_classes == 10


def math_finite(losses: dict) -> bool:
    return bool(losses) and all(np.isfinite(v) for v in losses.values())
