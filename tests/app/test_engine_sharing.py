"""One engine for many views: several models at once, answers only to whoever asked, and long streams that give
the device back to a drag between their items, pause, resume and cancel."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from explorer.engine.jobs.common import DecodePoints
from explorer.engine.job import ANIMATION, TRAINING, Job, Result
from explorer.engine.jobs.loading import LoadModel, ModelLimits
from explorer.engine.model_cache import ModelCache
from explorer.engine.worker import Engine

TIMEOUT = 30_000


def decoded_by(path, z) -> np.ndarray:
    from models.checkpoint import load

    model = load(path)
    with torch.no_grad():
        return model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32))[0, 0].numpy()


@pytest.fixture()
def engine(qapp, tiny_weights):
    eng = Engine("cpu", weights=str(tiny_weights))
    yield eng
    eng.shutdown()


def answers(engine, qtbot, jobs: list[Job]) -> list[Result]:
    """Submit jobs straight to the engine; their final results, in submit order, once it is idle."""
    got: dict[int, Result] = {}
    engine.result.connect(lambda r: got.__setitem__(r.job_id, r) if r.final else None)
    ids = [engine.submit(j) for j in jobs]
    qtbot.waitUntil(lambda: engine.is_idle() and all(i in got for i in ids), timeout=TIMEOUT)
    return [got[i] for i in ids]


# ---------------------------------------------------------------------------------------------------------------
# Several models at once

def test_two_models_answer_their_own_decodes_side_by_side(qtbot, engine, tiny_weights):
    ae, cae = str(tiny_weights / "ae-2d.safetensors"), str(tiny_weights / "cae-16.safetensors")
    z2 = np.array([0.4, -1.1], np.float32)
    z16 = np.linspace(-1, 1, 16).astype(np.float32)
    jobs = [DecodePoints("a", z2, model=ae), DecodePoints("b", z16, model=cae),
            DecodePoints("c", z2 * 2, model=ae), DecodePoints("d", z16[::-1].copy(), model="cae-16")]
    a, b, c, d = (r.payload.images[0] for r in answers(engine, qtbot, jobs))
    np.testing.assert_allclose(a, decoded_by(ae, z2), atol=1e-5)
    np.testing.assert_allclose(b, decoded_by(cae, z16), atol=1e-5)
    np.testing.assert_allclose(c, decoded_by(ae, z2 * 2), atol=1e-5)
    np.testing.assert_allclose(d, decoded_by(cae, z16[::-1].copy()), atol=1e-5)   # a shipped name works too
    held = answers(engine, qtbot, [ModelLimits()])[0].payload
    assert sorted(held) == sorted(str((tiny_weights / n).resolve()) for n in ("ae-2d.safetensors",
                                                                            "cae-16.safetensors"))


@pytest.mark.parametrize("second_key", ["probe-0", "probe-1"])
def test_a_decode_queued_before_a_model_switch_is_dropped_or_runs_on_its_own_model(qtbot, engine, tiny_weights,
                                                                                    second_key):
    """The bug a monkey found: a 16-d probe decode queued just before the user picked a 2-d model."""
    cae, ae = str(tiny_weights / "cae-16.safetensors"), str(tiny_weights / "ae-2d.safetensors")
    answers(engine, qtbot, [LoadModel(cae)])
    failures: list[str] = []
    engine.failed.connect(lambda _i, _k, message: failures.append(message))
    engine.hold()
    z16 = np.full(16, 0.3, np.float32)
    jobs = [DecodePoints("probe-0", z16, model=cae), LoadModel(ae), DecodePoints(second_key, z16[:2], model=ae)]
    got: dict[int, Result] = {}
    engine.result.connect(lambda r: got.__setitem__(r.job_id, r))
    ids = [engine.submit(j) for j in jobs]
    engine.release()
    qtbot.waitUntil(lambda: engine.is_idle() and ids[2] in got, timeout=TIMEOUT)
    assert failures == []
    if second_key == "probe-0":
        assert ids[0] not in got                        # the same picture asked again: the old request is dropped
    else:
        np.testing.assert_allclose(got[ids[0]].payload.images[0], decoded_by(cae, z16), atol=1e-5)
    assert got[ids[1]].payload.latent_dim == 2
    np.testing.assert_allclose(got[ids[2]].payload.images[0], decoded_by(ae, z16[:2]), atol=1e-5)


def test_past_its_limit_the_cache_drops_the_least_recently_used_and_reloads_it(tiny_weights):
    names = ["ae-2d", "cae-16", "conv-vae-16"]
    cache = ModelCache(torch.device("cpu"), str(tiny_weights), max_models=2)
    first = cache.get(names[0])
    first.cache["encoded"] = "something cached for ae-2d"
    assert cache.get(names[0]).cache == {"encoded": "something cached for ae-2d"}    # held: still there
    slots = [first] + [cache.get(n) for n in names[1:]]
    assert [p.split("/")[-1] for p in cache.loaded()] == ["cae-16.safetensors", "conv-vae-16.safetensors"]
    assert cache.loads == 3 and slots[0].cache == {}          # its cached results went with it
    assert cache.get("conv-vae-16") is slots[2] and cache.loads == 3      # held: no second read
    again = cache.get("ae-2d")                                  # dropped: read again, on demand
    assert cache.loads == 4 and again is not slots[0]
    assert [p.split("/")[-1] for p in cache.loaded()] == ["conv-vae-16.safetensors", "ae-2d.safetensors"]
    assert cache.classifier is not None                          # the classifier is kept apart, always
    cache.set_limits(max_bytes=again.nbytes)                    # by bytes: room for the largest one only
    assert [p.split("/")[-1] for p in cache.loaded()] == ["ae-2d.safetensors"]
    assert cache.classifier is not None


def test_the_model_limit_is_set_through_the_engine(qtbot, tiny_weights):
    engine = Engine("cpu", weights=str(tiny_weights), max_models=1)
    try:
        held = answers(engine, qtbot, [LoadModel("ae-2d"), LoadModel("vae-2d"), ModelLimits()])[-1].payload
        assert [p.split("/")[-1] for p in held] == ["vae-2d.safetensors"]
        held = answers(engine, qtbot, [ModelLimits(max_models=3), LoadModel("ae-2d"), ModelLimits()])[-1].payload
        assert [p.split("/")[-1] for p in held] == ["vae-2d.safetensors", "ae-2d.safetensors"]
    finally:
        engine.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# Answers to whoever asked

def test_two_views_with_the_same_job_names_get_only_their_own_results(qtbot, fake_engine, stand_in):
    left, right = fake_engine.channel("left"), fake_engine.channel("right")
    seen = {"left": [], "right": []}
    za, zb = np.array([1.0, 0.5], np.float32), np.array([-2.0, -0.5], np.float32)
    a1 = left.submit(DecodePoints("probe-0", za * 0), seen["left"].append)
    b = right.submit(DecodePoints("probe-0", zb), seen["right"].append)     # same key, other requester
    a2 = left.submit(DecodePoints("probe-0", za), seen["left"].append)      # replaces left's waiting one only
    assert fake_engine.waiting_keys() == ["decode:probe-0", "decode:probe-0"]
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)
    assert [r.job_id for r in seen["left"]] == [a2] and [r.job_id for r in seen["right"]] == [b]
    assert a1 not in [r.job_id for r in fake_engine.results]
    want = lambda z: stand_in.decode(torch.from_numpy(z)[None])[0, 0].numpy()   # noqa: E731
    np.testing.assert_allclose(seen["left"][0].payload.images[0], want(za), atol=1e-6)
    np.testing.assert_allclose(seen["right"][0].payload.images[0], want(zb), atol=1e-6)


def test_an_error_reaches_its_requester_and_the_banner_but_no_other_view(qtbot, fake_engine):
    @dataclass(frozen=True)
    class Broken(Job):
        def run(self, ctx):
            raise ValueError("no such picture")

    mine, other = fake_engine.channel("mine"), fake_engine.channel("other")
    said: dict[str, list[str]] = {"mine": [], "other": []}
    mine.submit(Broken(), on_error=said["mine"].append)
    other.submit(DecodePoints("p", np.zeros(2, np.float32)), on_error=said["other"].append)
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)
    assert said == {"mine": ["ValueError: no such picture"], "other": []}
    assert [f[2] for f in fake_engine.failures] == ["ValueError: no such picture"]


# ---------------------------------------------------------------------------------------------------------------
# Long work shares the device

@dataclass(frozen=True, eq=False)
class SlowStream(Job):
    """n items, each `pause` seconds of "device work"; logs when each item starts, on the engine thread."""

    n: int = 1000
    pause: float = 0.02
    log: list = None
    name: str = "stream"

    @property
    def key(self) -> str:
        return self.name

    def run(self, ctx):
        for i in range(self.n):
            self.log.append((self.name, i, time.perf_counter()))
            time.sleep(self.pause)
            yield np.int64(i)


class AnimationStream(SlowStream):
    priority = ANIMATION


class TrainingStream(SlowStream):
    priority = TRAINING


@dataclass(frozen=True, eq=False)
class LoggedDecode(DecodePoints):
    log: list = None

    def run(self, ctx):
        self.log.append((f"drag:{self.name}", 0, time.perf_counter()))
        return super().run(ctx)


@pytest.mark.parametrize("stream_cls", [AnimationStream, TrainingStream])
def test_a_drag_during_a_long_stream_is_answered_before_the_streams_next_item(qtbot, fake_engine, stream_cls):
    log: list = []
    stream = fake_engine.channel("diffusion")
    drags = fake_engine.channel("map")
    items: list[Result] = []
    stream.submit(stream_cls(log=log), items.append)
    fake_engine.release()
    qtbot.waitUntil(lambda: len(items) >= 3, timeout=TIMEOUT)
    answered: list[tuple[float, int]] = []
    for k in range(5):                                           # five drags, each while the stream streams
        submitted_at = time.perf_counter()
        drags.submit(LoggedDecode(f"probe-{k}", np.full(2, 0.1 * k, np.float32), log=log),
                     lambda r: answered.append((time.perf_counter(), r.job_id)))
        qtbot.waitUntil(lambda: len(answered) == k + 1, timeout=TIMEOUT)
        ran = next(t for who, _, t in log if who == f"drag:probe-{k}")
        started = [i for who, i, t in log if who == "stream" and submitted_at < t < ran]
        # the scheduler may have picked the stream's next item just as the drag was queued, and that item may log
        # its start a moment after `submitted_at`; it must not pick another one while the drag waits
        assert len(started) <= 1, f"drag {k} waited for stream items {started}"
        qtbot.wait(30)
    assert not any(r.final for r in items)                     # the stream is still going ...
    n = len(items)
    qtbot.waitUntil(lambda: len(items) > n + 2, timeout=TIMEOUT)   # ... and carries on after the drags
    stream.cancel()
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)


@pytest.mark.parametrize("stream_cls", [AnimationStream, TrainingStream])
def test_the_moves_of_a_drag_do_not_wait_for_a_streams_items_but_the_stream_goes_on(qtbot, fake_engine, stream_cls):
    """A drag is a burst of moves: they do not wait for a stream's items (each takes 60 ms here), except for the
    one item the stream still gets every `starve_s` while the drag lasts; it gets its full pace back after."""
    fake_engine._q.grace_s, fake_engine._q.starve_s = 0.25, 0.5      # roomy, for a loaded test machine
    log: list = []
    trainer, drags = fake_engine.channel("train"), fake_engine.channel("map")
    trainer.submit(stream_cls(pause=0.06, log=log, name="train"))
    fake_engine.release()
    qtbot.waitUntil(lambda: len(log) >= 3, timeout=TIMEOUT)
    answered: list[int] = []
    waited = 0                                                  # moves that waited for an item of the stream
    t_start = time.perf_counter()
    k = 0
    while time.perf_counter() - t_start < 1.6:                 # moves, each as soon as the last one is drawn
        submitted_at = time.perf_counter()
        drags.submit(LoggedDecode(f"probe-{k}", np.full(2, 0.01 * k, np.float32), log=log),
                     lambda r: answered.append(r.job_id))
        qtbot.waitUntil(lambda: len(answered) == k + 1, timeout=TIMEOUT)
        ran = next(t for who, _, t in log if who == f"drag:probe-{k}")
        running = [t for who, _, t in log if who == "train" and t < submitted_at]
        started = [t for who, _, t in log if who == "train" and submitted_at <= t < ran]
        if k and (started or (running and running[-1] + 0.06 > submitted_at)):
            waited += 1
        k += 1
    t_end = time.perf_counter()
    during = [t for who, _, t in log if who == "train" and t_start < t < t_end]
    assert 1 <= len(during) <= 5, f"{len(during)} stream items during the 1.6 s drag, not one per 0.5 s"
    assert waited <= len(during), f"{waited} of {k} moves waited for an item of the stream"
    n = sum(who == "train" for who, _, _ in log)
    time.sleep(0.05)
    qtbot.waitUntil(lambda: sum(who == "train" for who, _, _ in log) >= n + 5, timeout=TIMEOUT)
    trainer.cancel()
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)


def test_interactive_first_then_animation_then_training(qtbot, fake_engine):
    log: list = []
    channel = fake_engine.channel("all")
    channel.submit(TrainingStream(n=3, pause=0.0, log=log, name="train"))     # submitted first ...
    channel.submit(AnimationStream(n=3, pause=0.0, log=log, name="anim"))
    channel.submit(LoggedDecode("drag", np.zeros(2, np.float32), log=log))   # ... but the drag goes first
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)
    assert [who for who, _, _ in log] == ["drag:drag", "anim", "anim", "anim", "train", "train", "train"]


def test_a_stream_pauses_resumes_and_cancels_within_one_item(qtbot, fake_engine):
    log: list = []
    channel = fake_engine.channel("train")
    items: list[Result] = []
    job_id = channel.submit(TrainingStream(n=400, pause=0.01, log=log, name="run"), items.append)
    fake_engine.release()
    qtbot.waitUntil(lambda: len(items) >= 3, timeout=TIMEOUT)
    assert channel.pause("run") and fake_engine.is_paused(job_id)
    qtbot.wait(50)
    frozen = len(log)
    qtbot.wait(200)
    assert len(log) == frozen                                  # paused: no item starts
    assert not fake_engine.is_idle()                           # ... but the run is still there, with its state
    other: list[Result] = []
    channel.submit(DecodePoints("probe", np.zeros(2, np.float32)), other.append)   # the device is free meanwhile
    qtbot.waitUntil(lambda: len(other) == 1, timeout=TIMEOUT)
    assert channel.resume("run")
    qtbot.waitUntil(lambda: len(log) > frozen + 3, timeout=TIMEOUT)
    indices = [i for who, i, _ in log if who == "run"]
    assert indices == list(range(len(indices)))                # it carried on where it stopped
    channel.cancel("run")
    at_cancel = len(log)
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)
    assert len(log) <= at_cancel + 1                           # at most the item that was running
    delivered = len(items)
    qtbot.wait(100)
    assert len(items) == delivered and not any(r.final for r in items)


def test_two_requesters_runs_of_one_kind_keep_their_own_state_and_both_finish(qtbot, fake_engine):
    """The state of a run (here, its counter) lives in its own generator, not in anything the runs share."""
    log_a, log_b = [], []
    a, b = fake_engine.channel("a"), fake_engine.channel("b")
    got_a, got_b = [], []
    a.submit(AnimationStream(n=5, pause=0.0, log=log_a), got_a.append)
    b.submit(AnimationStream(n=5, pause=0.0, log=log_b), got_b.append)
    fake_engine.release()
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)
    assert [int(r.payload) for r in got_a] == [0, 1, 2, 3, 4, 4]
    assert [int(r.payload) for r in got_b] == [0, 1, 2, 3, 4, 4]
    assert [who for who, _, _ in log_a + log_b] == ["stream"] * 10


def test_shutdown_closes_streams_still_waiting_so_their_cleanup_runs(qtbot, qapp):
    """A run's generator may hold files or save its state in `finally`: the engine runs that before it exits."""
    from explorer.engine.job import EngineContext

    cleaned: list[str] = []

    @dataclass(frozen=True, eq=False)
    class Careful(Job):
        name: str = "careful"
        priority = TRAINING

        @property
        def key(self) -> str:
            return self.name

        def run(self, ctx):
            try:
                for i in range(10_000):
                    time.sleep(0.005)
                    yield np.int64(i)
            finally:
                cleaned.append(self.name)

    engine = Engine(context_factory=lambda: EngineContext(device=torch.device("cpu")))
    got: list[Result] = []
    channel = engine.channel("runs")
    channel.submit(Careful(name="a"), got.append)
    channel.submit(Careful(name="b"), got.append)
    qtbot.waitUntil(lambda: len(got) >= 4, timeout=TIMEOUT)   # both started, taking turns
    engine.shutdown()
    assert sorted(cleaned) == ["a", "b"]


def test_a_stream_inside_no_grad_does_not_switch_gradients_off_for_the_jobs_between_its_items(qtbot, fake_engine):
    seen: dict[str, list[bool]] = {"stream": [], "between": []}

    @dataclass(frozen=True, eq=False)
    class Inference(Job):
        priority = ANIMATION

        def run(self, ctx):
            with torch.no_grad():
                for i in range(6):
                    seen["stream"].append(torch.is_grad_enabled())
                    time.sleep(0.01)
                    yield np.int64(i)

    @dataclass(frozen=True, eq=False)
    class NeedsGradients(Job):
        def run(self, ctx):
            seen["between"].append(torch.is_grad_enabled())
            return np.int64(0)

    channel = fake_engine.channel("grad")
    items: list[Result] = []
    channel.submit(Inference(), items.append)
    fake_engine.release()
    qtbot.waitUntil(lambda: len(items) >= 2, timeout=TIMEOUT)
    for _ in range(3):
        channel.submit(NeedsGradients())
        qtbot.wait(15)
    qtbot.waitUntil(fake_engine.is_idle, timeout=TIMEOUT)
    assert seen["between"] == [True, True, True]        # the jobs between its items have their gradients
    assert seen["stream"] == [False] * 6                # and the stream kept its own no_grad throughout


@dataclass(frozen=True)
class TinyTimesOne(Job):
    """1e-39 (a denormal float32) times one, computed on the engine thread."""

    @property
    def key(self) -> str:
        return "tiny"

    def run(self, ctx):
        return np.float32((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item())


def test_the_engine_thread_flushes_denormals_so_training_keeps_its_pace(qtbot, engine):
    """A VAE's values grow tiny as it trains; with denormal arithmetic its steps slowed to 60 % of their pace."""
    got = answers(engine, qtbot, [TinyTimesOne()])[0].payload
    if torch.backends.cpu.get_cpu_capability() != "NO AVX":       # x86 with SSE: what torch can flush
        assert got == 0.0
