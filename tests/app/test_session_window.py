"""Sessions in the window: saved and opened again (from the command line or the menu), the same pictures come
back pixel for pixel; a missing or changed model is one sentence and the rest is restored; a hostile file is one
sentence and changes nothing."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from explorer import session as S
from explorer.views.interpolate.view import InterpolationView
from explorer.views.map.view import LatentMapView

from conftest import new_window, settled, wait_for_model

TIMEOUT = 60_000


@pytest.fixture(autouse=True)
def fewer_test_images(monkeypatch):
    monkeypatch.setattr(LatentMapView, "test_limit", 1000)
    monkeypatch.setattr(InterpolationView, "test_limit", 200)


def open_model(qtbot, win, weights, name: str) -> None:
    win.state.open_model(str(Path(weights) / f"{name}.safetensors"))
    wait_for_model(qtbot, win.state, name, TIMEOUT)


def map_ready(qtbot, win):
    view = win.view("map")
    qtbot.waitUntil(lambda: view.plane is not None and all(p.image is not None for p in view.probe_panels),
                    timeout=TIMEOUT)
    settled(qtbot, win)
    return view


def walk_ready(qtbot, win):
    win.show_view("interpolate")
    view = win.view("interpolate")
    qtbot.waitUntil(lambda: view.codes is not None and view.slider_image is not None, timeout=TIMEOUT)
    settled(qtbot, win)
    return view


def save(qtbot, win, path) -> None:
    """Save the session and wait until it is written (a model's hash may still be in the making)."""
    with qtbot.waitSignal(win.session_saved, timeout=TIMEOUT) as saved:
        assert win.save_session(path)
    assert saved.args == [str(path)]


def views_state(win) -> dict:
    """What every built view would save, as JSON: equal before and after means nothing changed. (Not the map's
    visible range: the banner that says why a file was refused takes a few pixels from the map's height.)"""
    views = S.session_dict(S.Session(views={n: v.session_state() for n, v in win._views.items()}))["views"]
    views["map"].pop("view_range")
    return views


def test_a_saved_session_opens_again_with_the_same_probe_pictures_and_keyframes(qtbot, tiny_weights, tmp_path):
    win = new_window(qtbot, tiny_weights)
    wait_for_model(qtbot, win.state, timeout=TIMEOUT)
    open_model(qtbot, win, tiny_weights, "conv-vae-16")      # 16-d: a PCA plane, re-centred on a pin
    the_map = map_ready(qtbot, win)
    the_map.pin(5)
    the_map.recentre()
    the_map.probes[0].move_to((0.4, -0.3), finished=True)
    the_map.probes[1].move_to((-1.2, 0.8), finished=True)
    the_map.set_layer("grid", True)
    settled(qtbot, win)
    walk = walk_ready(qtbot, win)
    assert walk.add_keyframe(np.asarray(the_map.probe_panels[0].image), "map: probe 1")
    walk.set_kind("lerp")
    walk.set_t(0.3)
    qtbot.waitUntil(lambda: walk.codes is not None and len(walk.codes.z) == 3, timeout=TIMEOUT)
    settled(qtbot, win)

    path = tmp_path / "mine.json"
    save(qtbot, win, path)
    saved = json.loads(path.read_text())
    assert saved["view"] == "interpolate" and saved["models"][0]["path"].endswith("conv-vae-16.safetensors")
    probes = [np.array(p.image) for p in the_map.probe_panels]
    keyframes = [np.array(k.image) for k in walk.keyframes]
    under_slider = np.array(walk.slider_image)
    map_state, walk_state = the_map.session_state(), walk.session_state()
    assert win.recent_sessions() == [str(path)]
    win.close()

    again = new_window(qtbot, tiny_weights, session=str(path))     # latent-explorer SESSION.json
    with qtbot.waitSignal(again.session_restored, timeout=TIMEOUT) as restored:
        pass
    assert restored.args == [[]] and not again.banner.isVisible()
    assert again.state.model.name == "conv-vae-16" and again.current_view() == "interpolate"
    map2, walk2 = again.view("map"), again.view("interpolate")
    qtbot.waitUntil(lambda: all(p.image is not None and np.array_equal(p.image, want)
                                for p, want in zip(map2.probe_panels, probes)), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: walk2.slider_image is not None and np.array_equal(walk2.slider_image, under_slider),
                    timeout=TIMEOUT)
    assert len(walk2.keyframes) == 3
    assert all(np.array_equal(k.image, want) for k, want in zip(walk2.keyframes, keyframes))
    again_map, again_walk = map2.session_state(), walk2.session_state()
    assert (again_map.probes, again_map.pinned, again_map.recentred_on, again_map.layers) == (
        map_state.probes, 5, 5, ("grid",))
    assert (again_walk.kind, again_walk.t, again_walk.frames) == (walk_state.kind, walk_state.t, walk_state.frames)


def test_a_session_from_the_recent_menu_brings_the_probes_back_on_the_same_window(qtbot, window, tiny_weights,
                                                                                     tmp_path):
    the_map = map_ready(qtbot, window)
    the_map.probes[0].move_to((1.1, 0.6), finished=True)
    settled(qtbot, window)
    picture = np.array(the_map.probe_panels[0].image)
    save(qtbot, window, tmp_path / "s.json")
    the_map.probes[0].move_to((-2.0, -1.0), finished=True)
    settled(qtbot, window)
    assert not np.array_equal(the_map.probe_panels[0].image, picture)
    window.recent_sessions_menu.aboutToShow.emit()
    first = window.recent_sessions_menu.actions()[0]
    assert first.text() == "s.json"
    with qtbot.waitSignal(window.session_restored, timeout=TIMEOUT):
        first.trigger()
    qtbot.waitUntil(lambda: np.array_equal(the_map.probe_panels[0].image, picture), timeout=TIMEOUT)
    assert tuple(the_map.probes[0].uv) == pytest.approx((1.1, 0.6), abs=1e-6)


def test_a_session_naming_a_missing_model_opens_with_the_sentence(qtbot, window, tiny_weights, tmp_path):
    mine = tmp_path / "mine" / "my-vae.safetensors"
    mine.parent.mkdir()
    shutil.copy(tiny_weights / "vae-2d.safetensors", mine)
    window.open_path(mine)
    wait_for_model(qtbot, window.state, "my-vae", TIMEOUT)
    the_map = map_ready(qtbot, window)
    the_map.probes[1].move_to((0.7, -0.9), finished=True)
    settled(qtbot, window)
    save(qtbot, window, tmp_path / "s.json")
    open_model(qtbot, window, tiny_weights, "ae-2d")
    the_map = map_ready(qtbot, window)
    mine.unlink()

    with qtbot.waitSignal(window.session_restored, timeout=TIMEOUT) as restored:
        assert window.open_session(tmp_path / "s.json")
    problems = restored.args[0]
    assert len(problems) == 1 and "my-vae.safetensors is missing" in problems[0]
    assert window.banner.text == problems[0] and problems[0].count(". ") == 0
    assert window.state.model.name == "ae-2d"                          # what it can: the probes, on this model
    qtbot.waitUntil(lambda: tuple(the_map.probes[1].uv) == pytest.approx((0.7, -0.9), abs=1e-6), timeout=TIMEOUT)


def test_a_session_whose_model_changed_says_so_and_restores(qtbot, window, tiny_weights, tmp_path):
    mine = tmp_path / "my-ae.safetensors"
    shutil.copy(tiny_weights / "ae-2d.safetensors", mine)
    window.open_path(mine)
    wait_for_model(qtbot, window.state, "my-ae", TIMEOUT)
    the_map = map_ready(qtbot, window)
    the_map.probes[0].move_to((0.25, 0.5), finished=True)
    settled(qtbot, window)
    save(qtbot, window, tmp_path / "s.json")
    open_model(qtbot, window, tiny_weights, "ae-2d")
    map_ready(qtbot, window)
    shutil.copy(tiny_weights / "vae-2d.safetensors", mine)               # trained on: other weights, same name

    with qtbot.waitSignal(window.session_restored, timeout=TIMEOUT) as restored:
        window.open_session(tmp_path / "s.json")
    assert restored.args[0] == ["The session's model my-ae.safetensors has changed since the session was saved; "
                                "it is restored anyway."]
    assert window.state.model.path == str(mine)
    qtbot.waitUntil(lambda: tuple(the_map.probes[0].uv) == pytest.approx((0.25, 0.5), abs=1e-6), timeout=TIMEOUT)


HOSTILE = {
    "not-json.json": "{ this is not json",
    "nan.json": '{"format": "latent-explorer-session", "version": 1, "views": {"map": {"probes": [[NaN, 0], [0, 0]]}}}',
    "huge-array.json": json.dumps({"format": "latent-explorer-session", "version": 1,
                                   "views": {"map": {"probes": [[0, 0]] * 200_000}}}),
    "deep.json": '{"format": "latent-explorer-session", "version": 1, "view": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "wrong-types.json": json.dumps({"format": "latent-explorer-session", "version": 1, "view": "compare",
                                    "models": [{"path": "/nowhere/at/all.safetensors", "sha256": "0" * 64}],
                                    "views": {"map": {"probes": [[0.5, 0.5], [0.1, 0.1]], "pinned": "all"}}}),
    "too-big.json": '{"format": "latent-explorer-session", "version": 1, "x": "' + "a" * (5 << 20) + '"}',
}


def test_a_hostile_session_file_changes_nothing(qtbot, window, tiny_weights, tmp_path):
    the_map = map_ready(qtbot, window)
    walk = walk_ready(qtbot, window)
    window.show_view("map")
    before, model, view = views_state(window), window.state.model.path, window.current_view()
    pictures = [np.array(p.image) for p in the_map.probe_panels] + [np.array(k.image) for k in walk.keyframes]
    restored = []
    window.session_restored.connect(restored.append)
    for name, text in HOSTILE.items():
        path = tmp_path / name
        path.write_text(text)
        assert not window.open_session(path), name
        assert window.banner.text.startswith(name) and window.banner.text.endswith(".") and \
            "\n" not in window.banner.text, window.banner.text
        qtbot.wait(20)
        settled(qtbot, window)
        assert views_state(window) == before, name
        assert (window.state.model.path, window.current_view()) == (model, view)
    assert not window.open_session(tmp_path / "not-there.json")
    assert "no session file" in window.banner.text
    assert restored == []
    now = [p.image for p in the_map.probe_panels] + [k.image for k in walk.keyframes]
    assert all(np.array_equal(a, b) for a, b in zip(now, pictures))


def test_a_session_whose_model_moved_finds_it_by_name_and_hash(qtbot, tiny_weights, tmp_path):
    """Another checkout's weights folder: the path is gone, a model of the same name and contents is here."""
    digest = S.content_hash(tiny_weights / "vae-2d.safetensors")
    moved = S.ModelRef("/another/checkout/weights/vae-2d.safetensors", digest)
    path = tmp_path / "s.json"
    S.write_session(path, S.Session((moved,), "map", {}))
    win = new_window(qtbot, tiny_weights, session=str(path))
    with qtbot.waitSignal(win.session_restored, timeout=TIMEOUT) as restored:
        pass
    assert restored.args == [[]] and win.state.model.name == "vae-2d"
    open_model(qtbot, win, tiny_weights, "ae-2d")
    with qtbot.waitSignal(win.session_restored, timeout=TIMEOUT) as restored:     # and from the menu
        assert win.open_session(path)
    assert restored.args == [[]]
    wait_for_model(qtbot, win.state, "vae-2d", TIMEOUT)


def test_a_session_dropped_on_the_window_opens(qtbot, window, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    the_map = map_ready(qtbot, window)
    the_map.probes[0].move_to((0.9, 0.1), finished=True)
    settled(qtbot, window)
    save(qtbot, window, tmp_path / "dropped.json")
    the_map.probes[0].move_to((-0.9, 0.4), finished=True)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.json"))])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.session_restored, timeout=TIMEOUT):
        window.dropEvent(event)
    qtbot.waitUntil(lambda: tuple(the_map.probes[0].uv) == pytest.approx((0.9, 0.1), abs=1e-6), timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------------------------
# Each view's part on its own: compare's columns and seeds, diffusion's seed and sampler

def test_compare_gets_back_its_columns_images_and_seeds(qtbot, tiny_weights):
    from explorer.engine.worker import Engine
    from explorer.state import AppState
    from explorer.views.compare.view import CompareView

    engine = Engine(device="cpu", weights=str(tiny_weights))
    try:
        state = AppState(engine, tiny_weights)
        view = CompareView(state)
        qtbot.addWidget(view)
        view.resize(1280, 760)
        with qtbot.waitSignal(view.ready, timeout=TIMEOUT):
            view.show()
            state.list_models()
        kept = S.parse_session(S.dumps(S.Session(views={"compare": view.session_state()}))).views["compare"]
        originals = np.array(view.picked["images"])
        rows = {p: np.array(r.result["images"]) for p, r in view.rows.items()}
        hidden = next(iter(view.columns))
        view.set_column_shown(hidden, False)
        view.new_images()
        view.new_samples()
        qtbot.waitUntil(lambda: view.picked is not None and view.image_seed == 1 and engine.is_idle(), timeout=TIMEOUT)
        assert view.hidden == {hidden} and not np.array_equal(view.picked["images"], originals)

        assert view.restore_session(kept) == []
        qtbot.waitUntil(lambda: engine.is_idle() and view.picked is not None and view.picked["seed"] == 0
                        and all(r.result is not None for r in view.rows.values()), timeout=TIMEOUT)
        qtbot.wait(50)
        assert view.hidden == set() and view.columns[hidden].isVisible()
        assert (view.image_seed, view.sample_seed) == (0, 0)
        assert np.array_equal(view.picked["images"], originals)
        assert all(np.array_equal(view.rows[p].result["images"], want) for p, want in rows.items())
    finally:
        engine.shutdown()


def test_diffusion_runs_again_from_the_sessions_seed_and_sampler(qtbot, guided_weights, make_diffusion_view):
    from explorer.engine.worker import Engine

    engine = Engine(device="cpu", weights=str(guided_weights))
    try:
        view = make_diffusion_view(engine, guided_weights, "ddpm", (1200, 800), TIMEOUT)
        view.seed.setValue(11)
        view.sampler.setCurrentIndex(view.sampler.findData("dpm++"))
        view.steps.setValue(5)
        view.forward.index.setValue(7)
        view.start_run()
        qtbot.waitUntil(lambda: engine.is_idle() and not view.running() and view.run.done, timeout=TIMEOUT)
        kept = S.parse_session(S.dumps(S.Session(views={"diffusion": view.session_state()}))).views["diffusion"]
        last = np.array(view.run.frames[-1].x0)
        view.seed.setValue(3)
        view.sampler.setCurrentIndex(view.sampler.findData("ddim"))
        view.forward.index.setValue(2)
        view.start_run()
        qtbot.waitUntil(lambda: engine.is_idle() and not view.running(), timeout=TIMEOUT)

        assert view.restore_session(kept) == []
        qtbot.waitUntil(lambda: view.run is not None and view.run.done and engine.is_idle(), timeout=TIMEOUT)
        run = view.run
        assert (run.seed, run.sampler, run.steps) == (11, "dpm++", 5)
        assert view.forward.index.value() == 7
        assert np.array_equal(run.frames[-1].x0, last)
    finally:
        engine.shutdown()
