"""The Directions tab as a user meets it: a class-mean slider carries a picture's label from A to B, the moved
picture follows the slider, the strip saves as GIF and PNG, a GAN gets GANSpace's directions (cached on disk),
a diffusion model says why it has none, and the tab's session state comes back as it was."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.engine.jobs.directions import flip_point
from explorer.views.directions.view import DirectionsView

TIMEOUT = 60_000
ROOT = Path(__file__).resolve().parents[2]
TROUSER, DRESS = 1, 3


@pytest.fixture()
def make_view(open_view, monkeypatch):
    """make_view(weights, name) -> a shown DirectionsView on that model, its first picture moved and drawn."""
    monkeypatch.setattr(DirectionsView, "test_limit", 2000)
    return lambda weights, name: open_view(DirectionsView, weights, name, (1200, 800), TIMEOUT)


def settle(qtbot, view) -> None:
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    qtbot.wait(200)                            # a slot's settle timer (150 ms) may submit the label lines
    qtbot.waitUntil(view.engine.is_idle, timeout=TIMEOUT)
    qtbot.wait(20)


def slot_of(view, name: str):
    index = [d.name for d in view.directions].index(name)
    return next(s for s in view.slots if s.direction_index == index)


def test_the_flip_point_lies_half_way_between_the_last_step_with_the_label_and_the_first_without():
    amounts = np.linspace(-3, 3, 13)
    labels = np.array([5, 5, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3])
    assert flip_point(amounts, labels, 0.0) == (-2.25, 1.25)
    assert flip_point(amounts, labels, 2.0) == (1.25, None)           # from +2σ, only going down
    assert flip_point(amounts, np.ones(13), 0.0) == (None, None)


def test_a_class_mean_slider_moves_the_label_from_a_to_b_at_a_positive_value(qtbot, make_view):
    view = make_view(ROOT / "weights", "conv-vae-16")
    with qtbot.waitSignal(view.directions_changed, timeout=TIMEOUT):
        view.make_attribute(TROUSER, DRESS)
    d = view.directions[-1]
    assert d.name == "Trouser → Dress" and d.kind == "attribute" and 0 < d.length < 3
    slot = slot_of(view, "Trouser → Dress")
    trousers = np.flatnonzero(view.test["labels"] == TROUSER)
    flipped = None
    for index in trousers[:5]:                 # the first trouser the classifier reads as one, moved
        view.pick_test_image(int(index))
        slot.set_value(0.0)
        settle(qtbot, view)
        if view.moved_label != TROUSER:
            continue
        slot.set_value(d.length)
        settle(qtbot, view)
        if view.moved_label == DRESS:
            flipped = index
            break
    assert flipped is not None, "no trouser became a dress after one class-mean distance"
    down, up = slot.line.flip_at                   # drawn relative to the slider's value: flips going down
    assert down is not None and 0 < down < d.length
    assert "Trouser" in slot.text.text()
    # from 0 the label line flips to Dress at a positive value, and the strip shows it
    along = view.along
    k = along["slots"].index(view.slots.index(slot))
    low, high = flip_point(along["amounts"], along["labels"][k], 0.0)
    assert high is not None and high > 0
    assert int(along["labels"][k][np.argmin(np.abs(along["amounts"]))]) == TROUSER


def test_pictures_change_with_the_slider_and_the_strip_saves(qtbot, make_view, tiny_weights, tmp_path):
    view = make_view(tiny_weights, "conv-vae-16")
    assert [d.name for d in view.directions[:2]] == ["PC 1", "PC 2"]
    assert view.slots[0].direction_index == 0 and view.slots[1].direction_index == 1
    at_zero = view.moved_image.copy()
    view.slots[0].set_value(2.5)
    settle(qtbot, view)
    moved = view.moved_image.copy()
    assert np.abs(moved - at_zero).mean() > 1e-3
    view.slots[0].set_value(0.0)
    settle(qtbot, view)
    np.testing.assert_allclose(view.moved_image, at_zero, atol=1e-6)       # back where it started
    frames = view.strip_frames()
    assert frames.shape[0] == 13 and np.abs(frames[-1] - frames[0]).mean() > 1e-3
    assert view.export_gif(tmp_path / "pc1.gif") and view.export_png(tmp_path / "pc1.png")
    with Image.open(tmp_path / "pc1.gif") as gif:
        assert gif.n_frames == 2 * 13 - 2                                  # forward and back
    with Image.open(tmp_path / "pc1.png") as png:
        assert png.size[1] == frames.shape[1]


def test_groups_and_an_analogy_make_directions_from_picked_pictures(qtbot, make_view, tiny_weights):
    view = make_view(tiny_weights, "conv-vae-16")
    codes = {}
    for i, where in ((0, "a"), (1, "b"), (2, "c")):
        view.pick_test_image(i)
        settle(qtbot, view)
        codes[where] = view.picture.z.copy()
        view.set_analogy(where)
        view.add_to_group("A" if i < 2 else "B")
    with qtbot.waitSignal(view.directions_changed, timeout=TIMEOUT):
        view.make_groups()
    groups = view.directions[-1]
    assert groups.kind == "groups"
    np.testing.assert_allclose(groups.vector, codes["c"] - (codes["a"] + codes["b"]) / 2, atol=1e-5)
    with qtbot.waitSignal(view.directions_changed, timeout=TIMEOUT):
        view.make_analogy()
    settle(qtbot, view)
    analogy = view.directions[-1]
    assert analogy.kind == "analogy" and view.picture.source == "test image 2"
    slot = slot_of(view, analogy.name)
    assert slot.value == pytest.approx(min(3.0, analogy.length), abs=0.01)


def test_a_gan_gets_ganspace_directions_cached_on_disk(qtbot, make_view, tiny_weights, own_result_cache):
    view = make_view(tiny_weights, "gan")
    assert [d.name for d in view.directions[:2]] == ["GANSpace 1", "GANSpace 2"]
    assert view.seed_row.isVisibleTo(view) and not view.picker.isVisibleTo(view)
    assert list((own_result_cache / "ganspace").glob("*.npz"))
    before = view.moved_image.copy()
    view.pick_seed(5)
    settle(qtbot, view)
    assert view.picture.seed == 5 and np.abs(view.moved_image - before).mean() > 1e-3
    assert not view.pick_file(ROOT / "README.md")          # no encoder: says why, changes nothing
    assert "no encoder" in view.status.text()


def test_a_diffusion_model_says_why_it_has_no_directions_and_shows_its_pictures(qtbot, make_view, guided_weights):
    view = make_view(guided_weights, "ddpm")
    assert view.directions == [] and view.picture is None
    assert "no latent code" in view.status.text()
    assert not view.slots[0].isVisibleTo(view) and not view.moved_panel.isVisibleTo(view)
    assert view.start_panel.image is not None and view.picker.isVisibleTo(view)      # its test pictures
    view._picked(3)
    np.testing.assert_allclose(view.start_panel.image, view.test["images"][view._picker_indices[3]] / 255.0, atol=1e-6)
    assert view.restore_session({"directions": []}) == [
        "The Directions tab needs a model with a latent code, so its part of the session is not used."]


def test_the_tabs_session_state_comes_back_pixel_for_pixel(qtbot, make_view, tiny_weights):
    from explorer.views.directions.session import dump, parse

    view = make_view(tiny_weights, "conv-vae-16")
    view.pick_test_image(3)
    settle(qtbot, view)
    view.slots[1].set_value(-1.5)
    settle(qtbot, view)
    text = json.dumps(dump(view.session_state()))
    image = view.moved_image.copy()
    other = make_view(tiny_weights, "conv-vae-16")
    assert other.restore_session(parse(json.loads(text))) == []
    settle(qtbot, other)
    assert [d.name for d in other.directions] == [d.name for d in view.directions]
    np.testing.assert_array_equal(other.directions[0].vector, view.directions[0].vector)
    assert other.slots[1].value == pytest.approx(-1.5)
    assert other.picture.index == 3
    np.testing.assert_array_equal(other.moved_image, image)


def test_a_hostile_or_foreign_session_part_changes_nothing(qtbot, make_view, tiny_weights):
    from explorer.session import SessionError
    from explorer.views.directions.session import dump, parse

    view = make_view(tiny_weights, "conv-vae-16")
    names = [d.name for d in view.directions]
    good = dump(view.session_state())
    hostile = [
        {**good, "directions": [{"name": "x", "kind": "principal", "vector": ["a"], "sigma": 1.0}]},
        {**good, "directions": [{"name": "x", "kind": "rm -rf", "vector": [1.0], "sigma": 1.0}]},
        {**good, "directions": [{"name": "x", "kind": "principal", "vector": [1.0] * 100, "sigma": 1.0}]},
        {**good, "sliders": [{"direction": 999, "value": 0.0}]},
        {**good, "sliders": "no"},
        {**good, "picture": {"z": [1e300]}},
        {**good, "strip": 7},
    ]
    for raw in hostile:
        with pytest.raises(SessionError):
            parse(raw)
        problems = view.restore_session(raw)
        assert len(problems) == 1 and problems[0].endswith(".")
    # a session of another model's latent (a 2-d one on this 16-d model): one sentence, nothing changes
    small = {**good, "directions": [{"name": "x", "kind": "principal", "vector": [1.0, 0.0], "sigma": 1.0}],
             "picture": None, "sliders": []}
    assert view.restore_session(parse(small)) == [
        "The session's directions are for a 2-d latent and conv-vae-16's is 16-d, so the Directions tab is unchanged."]
    assert [d.name for d in view.directions] == names


def test_a_saved_session_brings_the_directions_tab_back(qtbot, tiny_weights, tmp_path, monkeypatch):
    """File > Save session on the Directions tab, then the session opened in a new window: the same directions,
    sliders and moved picture, pixel for pixel."""
    from explorer.views.map.view import LatentMapView

    from conftest import new_window, wait_for_model

    monkeypatch.setattr(DirectionsView, "test_limit", 500)
    monkeypatch.setattr(LatentMapView, "test_limit", 500)

    win = new_window(qtbot, tiny_weights)
    wait_for_model(qtbot, win.state, timeout=TIMEOUT)
    win.state.open_model(str(tiny_weights / "conv-vae-16.safetensors"))
    wait_for_model(qtbot, win.state, "conv-vae-16", TIMEOUT)
    win.show_view("directions")
    view = win.view("directions")
    qtbot.waitUntil(lambda: view.moved_image is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(view.directions_changed, timeout=TIMEOUT):
        view.make_attribute(TROUSER, DRESS)
    view.pick_test_image(7)
    view.slots[2].set_value(1.25)
    settle(qtbot, view)
    path = tmp_path / "directions.json"
    with qtbot.waitSignal(win.session_saved, timeout=TIMEOUT):          # written once its model's hash is made
        assert win.save_session(path)
    moved, names = view.moved_image.copy(), [d.name for d in view.directions]
    win.close()

    again = new_window(qtbot, tiny_weights, session=str(path))
    with qtbot.waitSignal(again.session_restored, timeout=TIMEOUT) as restored:
        pass
    assert restored.args == [[]] and again.current_view() == "directions"
    view2 = again.view("directions")
    qtbot.waitUntil(lambda: view2.moved_image is not None and np.array_equal(view2.moved_image, moved),
                    timeout=TIMEOUT)
    assert [d.name for d in view2.directions] == names and view2.picture.index == 7
    assert view2.slots[2].value == pytest.approx(1.25) and view2.slots[2].direction_index == len(names) - 1


def test_the_map_draws_the_sliders_as_arrows_and_the_moved_code_follows(qtbot, window, tiny_weights, monkeypatch):
    from conftest import wait_for_model

    monkeypatch.setattr(DirectionsView, "test_limit", 500)
    window.state.open_model(str(tiny_weights / "vae-2d.safetensors"))
    wait_for_model(qtbot, window.state, "vae-2d", TIMEOUT)
    the_map = window.view("map")
    qtbot.waitUntil(lambda: the_map.plane is not None, timeout=TIMEOUT)
    window.show_view("directions")
    view = window.view("directions")
    qtbot.waitUntil(lambda: view.moved_image is not None, timeout=TIMEOUT)
    settle(qtbot, view)
    overlay = the_map.arrows
    assert overlay.shown and overlay.heads[0].isVisibleTo(the_map.plot) and overlay.heads[1].isVisibleTo(the_map.plot)
    assert not overlay.heads[2].isVisibleTo(the_map.plot)                   # slider 3 has no direction
    start = the_map.plane.project(view.picture.z)
    np.testing.assert_allclose(overlay.moved_uv, start, atol=1e-5)        # every slider at 0: on the picture
    view.slots[0].set_value(2.0)
    pc1 = view.directions[view.slots[0].direction_index]
    want = the_map.plane.project(view.picture.z + 2.0 * pc1.sigma * pc1.unit)
    np.testing.assert_allclose(overlay.moved_uv, want, atol=1e-4)         # the star follows the slider at once
    x, y = overlay.lines.getData()
    np.testing.assert_allclose([x[1], y[1]], the_map.plane.project(view.picture.z + 3.0 * pc1.sigma * pc1.unit),
                               atol=1e-4)                                  # arrow 1 ends at +3σ
    # another model: the old arrows go at once, the new model's come when its picture is moved
    window.state.open_model(str(tiny_weights / "conv-vae-16.safetensors"))
    qtbot.waitUntil(lambda: the_map.info is not None and the_map.info.name == "conv-vae-16", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: view.picture is not None and len(view.picture.z) == 16, timeout=TIMEOUT)
    settle(qtbot, view)
    qtbot.waitUntil(lambda: the_map.plane is not None and the_map.plane.dim == 16, timeout=TIMEOUT)
    assert overlay.shown
    np.testing.assert_allclose(overlay.moved_uv, the_map.plane.project(view.picture.z), atol=1e-4)
    # a test image pinned on the map is one click away here
    assert not view.pin_button.isEnabled()
    the_map.pin(5)
    assert view.pin_button.isEnabled()
    view.pin_button.click()
    settle(qtbot, view)
    assert view.picture.index == 5
    np.testing.assert_allclose(overlay.moved_uv, the_map.plane.project(the_map.enc["codes"][5]), atol=1e-4)


def test_directions_save_to_npy_and_json_and_load_back_checked(qtbot, make_view, tiny_weights, tmp_path):
    from explorer.views.directions.files import DirectionsFileError, load_directions, paths

    view = make_view(tiny_weights, "conv-vae-16")
    assert view.save_directions(tmp_path / "mine.json")
    description, vectors = paths(tmp_path / "mine")
    assert np.load(vectors, allow_pickle=False).shape == (len(view.directions), 16)
    back = load_directions(vectors, 16)
    assert [d.name for d in back] == [d.name for d in view.directions]
    np.testing.assert_array_equal(back[0].vector, view.directions[0].vector)
    n = len(view.directions)
    assert view.load_directions(description) and len(view.directions) == 2 * n
    # another latent size, a pickled array, a wrong description: one sentence each, nothing added
    with pytest.raises(DirectionsFileError, match="16-d latent and this model's is 2-d"):
        load_directions(description, 2)
    np.save(tmp_path / "evil.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "evil.json").write_text(description.read_text())
    assert not view.load_directions(tmp_path / "evil.json") and "no direction was added" in view.status.text()
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    np.save(tmp_path / "bad.npy", np.ones((1, 16), np.float32))
    with pytest.raises(DirectionsFileError, match="not a Latent Explorer directions file"):
        load_directions(tmp_path / "bad.npy", 16)
    assert len(view.directions) == 2 * n


def test_a_picture_file_is_encoded_and_moved(qtbot, make_view, tiny_weights, tmp_path):
    view = make_view(tiny_weights, "conv-vae-16")
    path = tmp_path / "sample 3.png"                   # a name like a generator's sample: still a file
    Image.fromarray(view.test["images"][5]).save(path)
    assert view.pick_file(path)
    settle(qtbot, view)
    assert view.picture.source == "sample 3.png" and view.picture.index is None and view.picture.seed is None
    np.testing.assert_allclose(view.picture.image, view.test["images"][5] / 255.0, atol=1 / 255)
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    assert not view.pick_file(tmp_path / "broken.png") and view.picture.source == "sample 3.png"
