"""A folder saved by diffusers opens in the app like any checkpoint: the diffusion tab runs on it (its first run,
then DDIM and DDPM runs whose last frame is the model's own sample), the forward process noises pictures at its
shape, and the map's noise plane decodes through it. The folder is a tiny colour DDPMPipeline with seeded random
weights, v-prediction on the cosine schedule."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine.jobs.common import DecodePoints
from explorer.engine.jobs.diffusion import ForwardProcess
from explorer.engine.worker import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from diffusers_folders import save_pipeline, tiny_unet

TIMEOUT = 60_000
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return save_pipeline(tmp_path_factory.mktemp("diffusers") / "ddpm-colour", tiny_unet(3, 16),
                         num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")


@pytest.fixture()
def engine(qapp, tiny_weights):
    eng = Engine(device="cpu", weights=str(tiny_weights))
    yield eng
    eng.shutdown()


def test_the_diffusion_tab_runs_on_a_diffusers_folder(qtbot, engine, tiny_weights, folder):
    from explorer.state import AppState
    from explorer.views.diffusion.view import DiffusionView

    from conftest import shown_view

    state = AppState(engine, str(tiny_weights))
    with qtbot.waitSignal(state.models_listed, timeout=TIMEOUT):
        state.list_models([str(folder)])
    view = shown_view(qtbot, DiffusionView, state, (1200, 800))
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        state.open_model(str(folder))
    qtbot.waitUntil(lambda: engine.is_idle() and not view.running(), timeout=TIMEOUT)
    info = state.model
    assert info is not None and info.family == "diffusers" and info.image_shape == (3, 16, 16)
    assert info.can("denoise") and not info.has_classifier and "does not say" in info.classifier_reason
    assert view.run is not None and view.run.done and view.forward.T == 100
    assert view.run.final.x0.shape[-3:] == (16, 16, 3)              # colour frames, at the folder's size
    # it names no data set: no Fashion-MNIST key or labels, one line saying why; the forward process's pictures
    # are named as the generated shapes they are
    key = view.decided.key.text()
    assert key.startswith("No labels: this model does not say which data set") and "T-shirt" not in key
    assert view.decided.plot.rgba is None and not view.decided.plot.isVisible() and not any(view.grids[1].captions)
    with qtbot.waitSignal(view.forward.shown, timeout=TIMEOUT):
        view.forward.ask()
    caption = view.forward.panels["x0"].caption.text()
    assert any(name in caption for name in ("square", "circle", "triangle")), caption

    from models.checkpoint import load

    model = load(folder, "cpu")
    for sampler, steps in (("ddim", 6), ("ddpm", 100)):          # the tab's DDPM runs all T steps
        view.sampler.setCurrentIndex(view.sampler.findData(sampler))
        view.samples.setValue(2)
        view.seed.setValue(3)
        view.steps.setValue(steps)
        view.eta.setValue(0.0)
        view.start_run()
        qtbot.waitUntil(lambda: engine.is_idle() and not view.running(), timeout=TIMEOUT)
        assert len(view.run) == steps
        with torch.no_grad():
            gen = torch.Generator().manual_seed(3)
            x_T = torch.randn((2, 3, 16, 16), generator=gen)
            *_, last = model.raw_frames(x_T, gen, sampler, steps)
        expected = ((last.x0 + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(view.run.final.x0, expected, atol=1e-3)      # kept as float16


def test_the_forward_process_and_the_noise_plane_run_on_a_diffusers_folder(qtbot, engine, folder):
    channel, answers, errors = engine.channel("test"), {}, []
    channel.submit(ForwardProcess(index=0, t=20, model=str(folder)),
                   lambda r: answers.__setitem__("peek", r.payload), errors.append)
    channel.submit(DecodePoints("probe", np.zeros((2, 3 * 16 * 16), np.float32), model=str(folder)),
                   lambda r: answers.__setitem__("decoded", r.payload), errors.append)
    qtbot.waitUntil(lambda: len(answers) == 2 or bool(errors), timeout=TIMEOUT)
    assert not errors
    peek, decoded = answers["peek"], answers["decoded"]
    assert peek.T == 100 and peek.x_t.shape == (16, 16, 3) and np.isfinite(peek.eps_pred).all()
    assert decoded.images.shape == (2, 16, 16, 3)
    assert np.array_equal(decoded.images[0], decoded.images[1])     # the same z, the same picture


def test_a_class_conditional_folder_tells_the_views_it_has_classes_but_no_any_class(qtbot, engine, tmp_path):
    from explorer.engine.jobs.loading import LoadModel

    cond = save_pipeline(tmp_path / "cond", tiny_unet(1, 8, classes=3), num_train_timesteps=60)
    channel, answers = engine.channel("test"), []
    channel.submit(LoadModel(str(cond)), lambda r: answers.append(r.payload), answers.append)
    qtbot.waitUntil(lambda: bool(answers), timeout=TIMEOUT)
    info = answers[0]
    assert (info.num_classes, info.conditional, info.any_class) == (3, True, False)
    assert info.class_names == ("class 0", "class 1", "class 2")        # it names no data set, so no names


def test_a_job_asking_a_class_conditional_folder_for_any_class_or_guidance_is_one_sentence(tmp_path):
    from explorer.engine.errors import UserError
    from explorer.engine.jobs.common import class_kwargs
    from models.checkpoint import load

    model = load(save_pipeline(tmp_path / "cond", tiny_unet(1, 8, classes=3), num_train_timesteps=60), "cpu")
    assert class_kwargs(model, 2) == {"classes": 2, "guidance": 1.0}
    for class_index, guidance, words in ((None, 1.0, "0 to 2"), (1, 3.0, "no guidance")):
        with pytest.raises(UserError, match=words):
            class_kwargs(model, class_index, guidance)


def test_a_class_conditional_folder_offers_its_classes_only_and_no_guidance_in_every_picker(qtbot, engine, tiny_weights,
                                                                                           tmp_path):
    """No "any class" entry, no guidance slider or strip: the diffusion tab's first run asks for class 0 and
    finishes (a job asking for any class would fail in one sentence); the map's and the interpolation's pickers
    say the same; compare's per-class rows are drawn at w = 1."""
    from explorer.state import AppState
    from explorer.views.compare.view import CompareView
    from explorer.views.diffusion.view import DiffusionView
    from explorer.views.interpolate.view import InterpolationView
    from explorer.views.map.sidebar import MapSidebar

    from conftest import shown_view

    cond = str(save_pipeline(tmp_path / "cond", tiny_unet(1, 8, classes=3), num_train_timesteps=60))
    state = AppState(engine, str(tiny_weights))
    with qtbot.waitSignal(state.models_listed, timeout=TIMEOUT):
        state.list_models([cond])
    view = shown_view(qtbot, DiffusionView, state, (1200, 800))
    failures = []
    view.job_failed = lambda key, message: failures.append(message)
    view.samples.setValue(2)
    view.steps.setValue(4)
    with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
        state.open_model(cond)
    qtbot.waitUntil(lambda: engine.is_idle() and not view.running(), timeout=TIMEOUT)
    assert not failures
    picker = view.picker
    names = ["0 · class 0", "1 · class 1", "2 · class 2"]
    assert [picker.box.itemText(i) for i in range(picker.box.count())] == names       # no "any class"
    assert picker.isVisible() and not picker.slider.isVisible() and not picker.guided
    assert view.run.done and (view.run.class_index, view.run.guidance) == (0, 1.0)
    assert view.guidance_box.title() == "Class" and "no 'no class' input" in view.guidance_note.text()
    assert not view.strip_grid.isVisible() and view.strip_job is None
    picker.set_class(2)                                  # another class: a run for it, still at w = 1
    qtbot.waitUntil(lambda: engine.is_idle() and not view.running(), timeout=TIMEOUT)
    assert not failures and (view.run.class_index, view.run.guidance) == (2, 1.0)
    assert "w =" not in view.status.text() and "Guidance" not in view.cost.text()

    info = state.model
    side = MapSidebar()
    qtbot.addWidget(side)
    side.configure(info)
    assert [side.picker.box.itemText(i) for i in range(side.picker.box.count())] == names
    assert side.picker.slider.isHidden() and "no 'no class' input" in side.class_note.text()
    interp = InterpolationView(state)
    qtbot.addWidget(interp)
    interp.class_picker.configure(info)
    assert interp.class_picker.box.itemText(0) == names[0] and interp.class_picker.slider.isHidden()

    compare = CompareView(state)
    qtbot.addWidget(compare)
    compare.infos[cond] = info
    compare.rows[cond] = type("Row", (), {"classes": info.class_names})()
    assert compare._row_guidance(cond) == 1.0 and "guided" not in compare._row_note(cond)


def test_the_class_picker_keeps_any_class_and_the_slider_for_a_model_with_a_no_class_input(qtbot):
    """The guidance issue's models (ddpm-guided) keep "any class" and the slider; a network without a "no class"
    input gets its classes only; a picker moved from one to the other follows."""
    from types import SimpleNamespace

    from explorer.views.widgets.condition import ClassPicker

    picker = ClassPicker()
    qtbot.addWidget(picker)
    picker.show()
    guided = SimpleNamespace(conditional=True, class_names=("a", "b"), any_class=True)
    plain = SimpleNamespace(conditional=True, class_names=("a", "b"), any_class=False)
    for info, items, slider in ((guided, ["any class", "0 · a", "1 · b"], True), (plain, ["0 · a", "1 · b"], False),
                                (guided, ["any class", "0 · a", "1 · b"], True)):
        assert picker.configure(info)
        assert [picker.box.itemText(i) for i in range(picker.box.count())] == items
        assert picker.slider.isVisible() == slider == picker.guided
    picker.configure(plain)
    picker.set_guidance(5.0)
    picker.set_class(1)
    assert (picker.class_index, picker.guidance, picker.text()) == (1, 1.0, "b")
    picker.configure(guided)
    picker.set_class(1)
    assert (picker.class_index, picker.guidance, picker.text()) == (1, 5.0, "b, w = 5")


def test_compares_prior_row_fits_its_steps_to_a_short_schedule(tmp_path):
    """Compare asks every diffusion row for DDIM 50; a folder trained with T = 20 (and steps_offset 1) draws in the
    most steps its spacing allows instead of failing the row."""
    from explorer.engine.job import EngineContext
    from explorer.engine.jobs.compare import PriorStream
    from models.checkpoint import load

    path = save_pipeline(tmp_path / "short", tiny_unet(1, 8), num_train_timesteps=20, steps_offset=1)
    model = load(path, "cpu")
    ctx = EngineContext(device=torch.device("cpu"), model=model, model_path=str(path))
    frames = list(PriorStream(n=2, seed=0, sampler="ddim", steps=50, model=str(path)).run(ctx))
    assert frames[-1]["final"] and len(frames) == frames[-1]["total"] == model.fit_steps(50) < 50
    assert frames[-1]["x0"].shape[0] == 2
