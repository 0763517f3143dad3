"""A session's model hashes are made off the UI thread: saving a session, opening one from the menu or from the
command line never reads a model on it. A session opened while the app is still starting waits for the start, and
then comes back on its own model, pixel for pixel."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer import session as S
from explorer.views.map.view import LatentMapView

from conftest import new_window, settled, wait_for_model

TIMEOUT = 60_000
SLOW_READ_S = 0.2          # each model file takes this long to hash, as a model of hundreds of MB does


@pytest.fixture(autouse=True)
def fewer_test_images(monkeypatch):
    monkeypatch.setattr(LatentMapView, "test_limit", 1000)


@pytest.fixture()
def hashed_on(monkeypatch) -> list[threading.Thread]:
    """The threads that read a model file to hash it, each read slow; no hash is known yet in this process."""
    threads: list[threading.Thread] = []
    real = S._hash_file

    def slow(path, digest) -> None:
        threads.append(threading.current_thread())
        time.sleep(SLOW_READ_S)
        real(path, digest)

    monkeypatch.setattr(S, "_hash_file", slow)
    monkeypatch.setattr(S, "_known", {}, raising=False)
    return threads


def map_ready(qtbot, win) -> LatentMapView:
    view = win.view("map")
    qtbot.waitUntil(lambda: view.plane is not None and all(p.image is not None for p in view.probe_panels),
                    timeout=TIMEOUT)
    settled(qtbot, win)
    return view


def probes_are(qtbot, view: LatentMapView, pictures: list[np.ndarray]) -> None:
    qtbot.waitUntil(lambda: all(p.image is not None and np.array_equal(p.image, want)
                                for p, want in zip(view.probe_panels, pictures)), timeout=TIMEOUT)


def off_the_ui_thread(threads: list[threading.Thread]) -> bool:
    return bool(threads) and all(t is not threading.main_thread() for t in threads)


def test_saving_and_opening_a_session_never_hash_a_model_on_the_ui_thread(qtbot, window, tiny_weights, tmp_path,
                                                                           hashed_on):
    the_map = map_ready(qtbot, window)
    the_map.probes[0].move_to((0.8, -0.4), finished=True)
    settled(qtbot, window)
    pictures = [np.array(p.image) for p in the_map.probe_panels]
    path = tmp_path / "s.json"

    with qtbot.waitSignal(window.session_saved, timeout=TIMEOUT):
        assert window.save_session(path)
        assert window.activity_label.text() == "Saving the session…" and not path.exists()
    assert off_the_ui_thread(hashed_on) and S.read_session(path).model.path == window.state.model.path

    the_map.probes[0].move_to((-1.5, 1.0), finished=True)
    settled(qtbot, window)
    hashed_on.clear()
    S._known.clear()
    with qtbot.waitSignal(window.session_restored, timeout=TIMEOUT) as restored:
        assert window.open_session(path)
        assert window.activity_label.text() == "Checking the session's model…" and window.session_pending
    assert restored.args == [[]] and off_the_ui_thread(hashed_on)
    probes_are(qtbot, the_map, pictures)

    hashed_on.clear()
    S._known.clear()
    again = new_window(qtbot, tiny_weights, session=str(path))        # latent-explorer SESSION.json
    with qtbot.waitSignal(again.session_restored, timeout=TIMEOUT) as restored:
        pass
    assert restored.args == [[]] and off_the_ui_thread(hashed_on)
    probes_are(qtbot, again.view("map"), pictures)


def test_a_model_that_opens_is_hashed_ahead_so_a_save_is_written_at_once(qtbot, window, tiny_weights, tmp_path):
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes((tiny_weights / "ae-2d.safetensors").read_bytes())
    long_ago = time.time() - 3600
    os.utime(mine, (long_ago, long_ago))            # not just written: its hash may be kept
    window.open_path(mine)
    wait_for_model(qtbot, window.state, "mine", TIMEOUT)
    qtbot.waitUntil(lambda: S.known_hash(mine) is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(window.session_saved, timeout=1000):
        assert window.save_session(tmp_path / "s.json")
        assert (tmp_path / "s.json").exists()         # no thread to wait for: the hash was made when it opened
    assert S.read_session(tmp_path / "s.json").model == S.ModelRef(str(mine), S.content_hash(mine))


@pytest.mark.parametrize("when", ["listing the models", "loading the first model"])
def test_a_session_opened_while_the_app_starts_is_restored_on_its_model_once_the_start_is_done(
        qtbot, tiny_weights, tmp_path, hashed_on, when):
    first = new_window(qtbot, tiny_weights)
    wait_for_model(qtbot, first.state, timeout=TIMEOUT)
    first.state.open_model(str(tiny_weights / "conv-vae-16.safetensors"))
    wait_for_model(qtbot, first.state, "conv-vae-16", TIMEOUT)
    the_map = map_ready(qtbot, first)
    the_map.probes[0].move_to((0.6, 0.2), finished=True)
    the_map.probes[1].move_to((-0.3, -0.7), finished=True)
    settled(qtbot, first)
    pictures = [np.array(p.image) for p in the_map.probe_panels]
    path = tmp_path / "mine.json"
    with qtbot.waitSignal(first.session_saved, timeout=TIMEOUT):
        assert first.save_session(path)
    first.close()
    other = tmp_path / "other.json"                 # opened first, then replaced by mine.json
    S.write_session(other, S.Session((S.model_ref(tiny_weights / "vae-2d.safetensors"),), "interpolate", {}))
    hashed_on.clear()
    S._known.clear()

    win = new_window(qtbot, tiny_weights)
    restored = []
    win.session_restored.connect(restored.append)

    def open_both(*_) -> None:
        assert not win.startup_done
        assert win.open_session(other) and win.open_session(path)

    if when == "listing the models":
        open_both()
    else:
        win.state.loading.connect(open_both, type=Qt.ConnectionType.SingleShotConnection)
    qtbot.waitUntil(lambda: bool(restored), timeout=TIMEOUT)
    assert restored == [[]] and win.state.model.name == "conv-vae-16" and win.current_view() == "map"
    if when == "listing the models":               # the start opened the session's model, and no other first
        assert [Path(p).name for p in win.startup.tried] == ["conv-vae-16.safetensors"]
    probes_are(qtbot, win.view("map"), pictures)
    settled(qtbot, win)
    assert restored == [[]] and off_the_ui_thread(hashed_on)



def test_closing_the_window_drops_the_hashes_nobody_waits_for_and_still_writes_a_save(qtbot, window, tmp_path,
                                                                                      hashed_on):
    map_ready(qtbot, window)
    S.write_session(tmp_path / "other.json", S.Session((S.model_ref(window.state.model.path),), "map", {}))
    S._known.clear()
    restored = []
    window.session_restored.connect(restored.append)
    assert window.save_session(tmp_path / "saved.json")          # hashes the model, slowly, on the thread
    assert window.open_session(tmp_path / "other.json")          # its check waits behind the save
    check = window._session.check
    window.close()
    qtbot.waitUntil(lambda: (tmp_path / "saved.json").exists(), timeout=TIMEOUT)
    qtbot.wait(4 * int(SLOW_READ_S * 1000))
    assert check.cancelled() and restored == []                  # no session opens on a closed window
    with pytest.raises(RuntimeError):                             # the thread ends: nothing keeps the exit waiting
        window._hashing.submit(int)


def test_models_listed_again_while_a_moved_model_is_looked_for_never_block_the_ui_thread(
        qtbot, tiny_weights, tmp_path, hashed_on, monkeypatch):
    import shutil
    from concurrent.futures import Future

    waited = []
    real_result = Future.result

    def result(self, timeout=None):
        if threading.current_thread() is threading.main_thread() and not self.done():
            waited.append(self)
        return real_result(self, timeout)

    monkeypatch.setattr(Future, "result", result)
    monkeypatch.setattr(S, "RACY_S", 1e9)                      # no hash is kept: each check reads the model again
    monkeypatch.setitem(globals(), "SLOW_READ_S", 1.0)          # a read outlasts listing the models again
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(tiny_weights / "conv-vae-16.safetensors", weights)
    moved = tmp_path / "another-checkout" / "conv-vae-16.safetensors"
    digest = S.content_hash(weights / "conv-vae-16.safetensors")
    S.write_session(tmp_path / "s.json", S.Session((S.ModelRef(str(moved), digest),), "map", {}))

    win = new_window(qtbot, weights, session=str(tmp_path / "s.json"))
    restored = []
    win.session_restored.connect(restored.append)
    win.state.models_listed.connect(lambda _: win.state.list_models(()),   # listed again while the check reads
                                    type=Qt.ConnectionType.SingleShotConnection)
    qtbot.waitUntil(lambda: bool(restored), timeout=TIMEOUT)
    assert waited == [] and restored == [[]] and win.state.model.name == "conv-vae-16"
