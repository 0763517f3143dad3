"""The engine: one thread, latest wins, stale results dropped, errors become messages, only numpy comes back."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from explorer.engine.job import ANIMATION, Job, Result
from explorer.engine.jobs.common import DecodePoints, Decoded, Sample
from explorer.engine.jobs.loading import ListModels, LoadModel
from explorer.engine.worker import Engine, PayloadError, check_payload



def expected_image(model, z) -> np.ndarray:
    return model.decode(torch.tensor(np.array([z]), dtype=torch.float32))[0, 0].numpy()


def finals(engine, key: str) -> list[Result]:
    return [r for r in engine.results if r.key == key and r.final]


@dataclass(frozen=True)
class Boom(Job):
    def run(self, ctx):
        raise ValueError("the decoder caught fire\nsecond line")


@dataclass(frozen=True)
class Leaky(Job):
    def run(self, ctx):
        return {"image": torch.zeros(2, 2)}


@dataclass(frozen=True)
class Count(Job):
    """A stream of n numbers, `pause` seconds apart."""

    n: int = 5
    pause: float = 0.0
    name: str = "count"
    coalesce = True

    @property
    def key(self) -> str:
        return self.name

    def run(self, ctx):
        for i in range(self.n):
            if self.pause:
                time.sleep(self.pause)
            yield np.int64(i)


@dataclass(frozen=True)
class Value(Job):
    """Answers `value` under the key `name`; not coalesced, so every one submitted runs."""

    name: str = "value"
    value: int = 0

    @property
    def key(self) -> str:
        return self.name

    def run(self, ctx):
        return np.int64(self.value)


@dataclass(frozen=True)
class SlowValue(Value):
    """The same as animation work: interactive work submitted after it runs before it."""

    priority = ANIMATION


@dataclass(frozen=True)
class Fails(Job):
    name: str = "fails"

    @property
    def key(self) -> str:
        return self.name

    def run(self, ctx):
        raise ValueError(f"{self.name} broke")


def test_fifty_drags_then_release_decode_at_most_twice_and_the_last_is_the_release(qtbot, fake_engine, stand_in):
    ids = [fake_engine.submit(DecodePoints("probe-0", np.array([0.05 * i, 0.0], np.float32))) for i in range(50)]
    release_z = np.array([1.5, -2.0], np.float32)
    ids.append(fake_engine.submit(DecodePoints("probe-0", release_z)))
    assert fake_engine.waiting_keys() == ["decode:probe-0"]     # 51 requests, one waiting job
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    runs = finals(fake_engine, "decode:probe-0")
    assert 1 <= len(runs) <= 2
    assert runs[-1].job_id == ids[-1]
    np.testing.assert_allclose(runs[-1].payload.images[0], expected_image(stand_in, release_z), atol=1e-6)


def test_coalescing_keeps_other_keys_and_order(qtbot, fake_engine):
    a = fake_engine.submit(DecodePoints("probe-0", np.zeros(2, np.float32)))
    b = fake_engine.submit(DecodePoints("probe-1", np.ones(2, np.float32)))
    a2 = fake_engine.submit(DecodePoints("probe-0", np.full(2, 2.0, np.float32)))
    assert fake_engine.waiting_keys() == ["decode:probe-0", "decode:probe-1"]
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    assert [r.job_id for r in fake_engine.results] == [a2, b]
    assert a not in [r.job_id for r in fake_engine.results]


def test_stale_results_are_dropped_by_the_channel(qtbot, fake_engine):
    channel = fake_engine.channel("view")
    shown: list[Result] = []
    fake_engine.release()
    old = channel.submit(DecodePoints("probe-0", np.zeros(2, np.float32)), shown.append)
    channel.invalidate("decode:probe-0")                    # e.g. the model changed after the request
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    new = channel.submit(DecodePoints("probe-0", np.ones(2, np.float32)), shown.append)
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    delivered = [r.job_id for r in fake_engine.results if r.key == "decode:probe-0"]
    assert delivered == [old, new]                         # the engine ran both ...
    assert [r.job_id for r in shown] == [new]             # ... the view showed only the newer one
    # A result that arrives after a newer one for the same key has been shown is dropped too.
    late = Result(new - 1, "decode:probe-0", None)
    assert not channel.accept(late)
    assert not channel.accept(Result(new + 5, "someone-else", None))   # a key this channel never asked for


def test_a_result_older_than_one_shown_is_dropped_without_any_invalidate(qtbot, fake_engine):
    """An older job for a key answers after a newer one's result was shown (here: the older one is animation
    work, the newer interactive, so the newer runs first): the view keeps the newer picture."""
    channel = fake_engine.channel("view")
    shown: list[Result] = []
    old = channel.submit(SlowValue("picture", 1), shown.append)
    new = channel.submit(Value("picture", 2), shown.append)
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    assert [r.job_id for r in fake_engine.results] == [new, old]          # the engine ran both, newer first ...
    assert [(r.job_id, int(r.payload)) for r in shown] == [(new, 2)]     # ... the view kept the newer one


def test_a_failure_reaches_its_requester_only_while_its_job_is_the_current_one(qtbot, fake_engine):
    """The banner hears every failure; the view that asked hears one only if nothing newer was asked for that
    key since and the key was not invalidated (a new model): an old job's error must not cover a fresh answer."""
    channel = fake_engine.channel("view")
    errors: dict[str, list[str]] = {"superseded": [], "invalidated": [], "current": []}
    shown: list[Result] = []
    superseded = channel.submit(Fails("superseded"), on_error=errors["superseded"].append)
    newer = channel.submit(Value("superseded", 1), shown.append, errors["superseded"].append)
    invalidated = channel.submit(Fails("invalidated"), on_error=errors["invalidated"].append)
    channel.invalidate("invalidated")
    current = channel.submit(Fails("current"), on_error=errors["current"].append)
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    assert [f[0] for f in fake_engine.failures] == [superseded, invalidated, current]
    assert errors == {"superseded": [], "invalidated": [], "current": ["ValueError: current broke"]}
    assert [r.job_id for r in shown] == [newer]


def test_an_exception_becomes_one_line_and_the_next_job_still_runs(qtbot, fake_engine):
    bad = fake_engine.submit(Boom())
    good = fake_engine.submit(DecodePoints("probe-0", np.zeros(2, np.float32)))
    with qtbot.waitSignal(fake_engine.failed, timeout=10_000) as failure:
        fake_engine.release()
    job_id, key, message = failure.args
    assert (job_id, key) == (bad, "Boom")
    assert message == "ValueError: the decoder caught fire second line"
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    assert [r.job_id for r in fake_engine.results] == [good]


def test_a_corrupt_checkpoint_message_reaches_the_ui_verbatim(qtbot, fake_engine, corrupt_file):
    from models.checkpoint import CheckpointError, read_metadata

    with pytest.raises(CheckpointError) as err:
        read_metadata(corrupt_file)
    fake_engine.submit(LoadModel(str(corrupt_file)))
    with qtbot.waitSignal(fake_engine.failed, timeout=10_000) as failure:
        fake_engine.release()
    assert failure.args[2] == " ".join(str(err.value).split())
    assert "\n" not in failure.args[2]


def test_only_numpy_crosses_back(qtbot, fake_engine):
    fake_engine.submit(Leaky())
    with qtbot.waitSignal(fake_engine.failed, timeout=10_000) as failure:
        fake_engine.release()
    assert "torch.Tensor" in failure.args[2] and "payload['image']" in failure.args[2]
    assert fake_engine.results == []

    fake_engine.submit(Sample(3, seed=0))
    qtbot.waitUntil(lambda: len(fake_engine.results) == 1, timeout=10_000)
    payload = fake_engine.results[0].payload
    assert isinstance(payload, Decoded) and isinstance(payload.images, np.ndarray)
    assert payload.images.shape == (3, 28, 28) and payload.images.dtype == np.float32


def test_check_payload_accepts_plain_values_and_rejects_the_rest():
    check_payload({"a": np.zeros(3), "b": [1, 2.0, "x", None], "c": (np.float32(1),)})
    check_payload(Decoded("probe-0", np.zeros((1, 2, 2), np.float32), critic=np.ones(1, np.float32)))
    for bad in (torch.zeros(1), [object()], np.array([object()], dtype=object), {"k": {"deep": torch.ones(1)}}):
        with pytest.raises(PayloadError):
            check_payload(bad)


def test_a_stream_sends_every_item_then_a_final_one(qtbot, fake_engine):
    fake_engine.submit(Count(4))
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    assert [(int(r.payload), r.final) for r in fake_engine.results] == [
        (0, False), (1, False), (2, False), (3, False), (3, True)]


def test_cancel_stops_a_running_stream_and_drops_its_late_results(qtbot, fake_engine):
    fake_engine.release()
    fake_engine.submit(Count(200, pause=0.01))
    qtbot.waitUntil(lambda: len(fake_engine.results) >= 2, timeout=10_000)
    fake_engine.cancel("count")
    seen = len(fake_engine.results)
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    assert len(fake_engine.results) == seen              # nothing delivered after cancel
    assert not any(r.final for r in fake_engine.results)


def test_a_newer_stream_of_the_same_key_supersedes_the_running_one(qtbot, fake_engine):
    fake_engine.release()
    first = fake_engine.submit(Count(200, pause=0.01))
    qtbot.waitUntil(lambda: len(fake_engine.results) >= 1, timeout=10_000)
    second = fake_engine.submit(Count(3))
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    from_first = [r for r in fake_engine.results if r.job_id == first]
    assert len(from_first) < 200 and not any(r.final for r in from_first)
    assert [int(r.payload) for r in fake_engine.results if r.job_id == second] == [0, 1, 2, 2]


def test_cancel_drops_waiting_jobs(qtbot, fake_engine):
    fake_engine.submit(DecodePoints("probe-0", np.zeros(2, np.float32)))
    keep = fake_engine.submit(DecodePoints("probe-1", np.zeros(2, np.float32)))
    fake_engine.cancel("decode:probe-0")
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    assert [r.job_id for r in fake_engine.results] == [keep]


def test_activity_says_what_runs_then_goes_quiet(qtbot, fake_engine):
    said: list[str] = []
    fake_engine.activity.connect(said.append)
    fake_engine.submit(DecodePoints("probe-1", np.zeros(2, np.float32)))
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=10_000)
    qtbot.waitUntil(lambda: said[-1:] == [""], timeout=5_000)
    assert "decoding probe-1" in said


def test_the_real_engine_lists_and_loads_tiny_weights(qtbot, tiny_weights):
    engine = Engine("cpu", weights=str(tiny_weights))
    results: list[Result] = []
    engine.result.connect(results.append)
    vae = str(tiny_weights / "vae-2d.safetensors")
    try:
        engine.submit(ListModels())
        engine.submit(LoadModel(vae))
        engine.submit(DecodePoints("probe-0", np.array([0.5, -0.5], np.float32), model=vae))
        qtbot.waitUntil(lambda: len(results) == 3, timeout=30_000)
    finally:
        engine.shutdown()
    assert engine.device_name == "cpu"
    listing, info, decoded = (r.payload for r in results)
    names = [e.name for e in listing.entries]
    assert "classifier" not in names                      # no latent to explore: never in the picker
    assert {"ae-2d", "vae-2d", "cae-16", "conv-vae-16"} <= set(names)
    assert all(e.shipped for e in listing.entries)
    assert info.name == "vae-2d" and info.family == "vae" and info.latent_dim == 2
    assert "encode" in info.capabilities and "decode" in info.capabilities
    assert info.has_classifier and info.classes[9] == "Ankle boot"
    assert decoded.images.shape == (1, 28, 28)
    assert decoded.labels is not None and 0 <= int(decoded.labels[0]) < 10
    assert 0.0 < float(decoded.confidences[0]) <= 1.0


def test_loading_the_classifier_as_a_model_is_refused_with_a_reason(qtbot, tiny_weights):
    engine = Engine("cpu", weights=str(tiny_weights))
    try:
        engine.submit(LoadModel(str(tiny_weights / "classifier.safetensors")))
        with qtbot.waitSignal(engine.failed, timeout=30_000) as failure:
            pass
    finally:
        engine.shutdown()
    assert "not a model with a latent space" in failure.args[2]


def test_emitting_signals_never_wears_down_true(qapp):
    """PySide6 6.12.0's emit() dropped a reference to True on every call, and pyproject.toml excludes it: the
    installed release must not."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Pinger(QObject):
        ping = Signal(object)

    pinger = Pinger()
    got: list[object] = []
    pinger.ping.connect(got.append)
    before = sys.getrefcount(True)
    for i in range(5000):
        pinger.ping.emit(i % 2 == 0)
    after = sys.getrefcount(True)
    assert got.count(True) == 2500 and got.count(False) == 2500        # every emit arrived, as a real bool
    assert all(v is True or v is False for v in got)
    # True's count is where it was (or vast: immortal from 3.12, or the guard's cushion); never worn down
    assert after >= before - 16 and (after < before + 5000 or after > 1 << 29)


def test_a_device_that_is_not_there_falls_back_with_a_message(qtbot):
    engine = Engine("tpu-of-dreams")
    try:
        with qtbot.waitSignal(engine.failed, timeout=30_000) as failure:
            pass
        qtbot.waitUntil(lambda: engine.device_name != "starting", timeout=10_000)
    finally:
        engine.shutdown()
    job_id, key, message = failure.args
    assert (job_id, key) == (0, "engine")
    assert "unknown device 'tpu-of-dreams'" in message and "Using" in message
    assert engine.device_name in ("cpu", "mps") or engine.device_name.startswith("cuda")
