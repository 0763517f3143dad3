"""The engine: one long-lived QThread that owns the device and runs every job, one piece at a time.

Why one thread: two jobs must never touch the device at once, and a drag must never wait behind a pile of
outdated requests or a long run. So the queue is ours, not Qt's (job_queue.py): latest wins within a requester,
and a stream gives the device back after every item when other work waits. Each job is bound to the model it
names (model_cache.py). Results travel back as queued signals and `Engine` hands each one, on the UI thread, to
the channel that asked (channel.py), so a view hears only its own answers and its slots never run on the engine
thread. Everything a job returns is checked to be numpy or plain values before it leaves the thread.
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import time
import weakref
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, Qt, Signal, Slot

from .channel import Channel
from .errors import UserError, one_line, user_errors
from .job import EngineContext, Job, Result
from .model_cache import MAX_BYTES, MAX_MODELS, ModelCache
from .job_queue import JobQueue, Task

log = logging.getLogger(__name__)

_PLAIN = (str, int, float, bool, bytes, type(None), np.ndarray, np.generic)


class PayloadError(TypeError):
    """A job tried to send something other than numpy or plain values back to the UI thread."""


def check_payload(value: Any, where: str = "payload", depth: int = 0) -> None:
    """Raise PayloadError unless `value` is numpy arrays / plain Python / dataclasses, lists, dicts of those.

    The rule keeps torch (and the device) on the engine thread: a tensor reaching a widget would tie the UI to
    the device and to torch's threads.
    """
    if isinstance(value, _PLAIN):
        if isinstance(value, np.ndarray) and value.dtype == object:
            raise PayloadError(f"{where} is a numpy array of Python objects; send numeric arrays")
        return
    if depth > 8:
        raise PayloadError(f"{where} is nested too deeply to check")
    if isinstance(value, (list, tuple, frozenset, set)):
        for i, item in enumerate(value):
            check_payload(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            check_payload(k, f"{where} key", depth + 1)
            check_payload(item, f"{where}[{k!r}]", depth + 1)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            check_payload(getattr(value, f.name), f"{where}.{f.name}", depth + 1)
        return
    raise PayloadError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}; "
                       "the engine sends only numpy arrays and plain values to the UI")




def activity_text(job: Job) -> str:
    """What the status bar says while `job` runs: its `activity` attribute if it has one, else its key."""
    text = getattr(job, "activity", None)
    return str(text) if text else job.key


def describe_device(device: Any) -> str:
    """'cpu', 'mps', or 'cuda:0 (NVIDIA H100)': what the status bar shows."""
    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        import torch

        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(kind)


def default_context(device_request: str, weights: str | None = None, max_models: int = MAX_MODELS,
                    max_bytes: int = MAX_BYTES) -> tuple[EngineContext, str]:
    """Pick the device on the engine thread (CUDA, then MPS, then CPU unless asked); a bad request falls back.
    This is where torch is first imported: on the engine thread, after the window has painted."""
    from models.device import DeviceError, pick_device

    warning = ""
    try:
        device = pick_device(device_request)
    except DeviceError as err:
        device = pick_device("auto")
        warning = f"{err}. Using {device.type} instead."
    leave_a_core_for_the_ui()
    from models.train import flush_denormals

    flush_denormals()                   # before any torch work starts the thread pool, which inherits it
    return EngineContext(device=device, models=ModelCache(device, weights, max_models, max_bytes)), warning


def leave_a_core_for_the_ui() -> int:
    """torch's CPU threads: one fewer than the cores, so the UI thread always has one to paint with.

    With every core busy in torch's thread pool, the UI thread and the pool's own threads take turns on the
    same cores, and a 2-core machine runs a diffusion step ten times slower than with one pool thread."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores - 1)
    torch.set_num_threads(threads)
    return threads


def bind(ctx: EngineContext, job: Job) -> EngineContext:
    """The context `job` runs in: its own model's, whatever else is loaded (a job that names none gets `ctx`).

    A context made with a fixed `model` (a stand-in, in tests) runs every job on it; it can still open files."""
    name = getattr(job, "model", None)
    if name is None or ctx.model is not None or ctx.models is None:
        return ctx                      # no model asked for, or an engine made around one fixed model (tests)
    slot = ctx.models.get(name)
    return dataclasses.replace(ctx, model=slot.model, model_path=slot.path, cache=slot.cache,
                               classifier=ctx.models.classifier if slot.classifier_ok else None)



class _EngineThread(QThread):
    """Runs tasks from the shared schedule; talks to `Engine` only through these queued signals."""

    started_job = Signal(int, str)
    emitted = Signal(object)
    errored = Signal(int, str, str)
    finished_job = Signal(int)
    device_known = Signal(str, str)                # device name, warning ('' if none)

    def __init__(self, schedule: JobQueue, make_context: Callable[[], tuple[EngineContext, str]],
                 check: bool) -> None:
        super().__init__()
        self.setObjectName("latent-explorer-engine")
        self.q = schedule
        self.make_context = make_context
        self.check = check

    def run(self) -> None:
        ctx: EngineContext | None = None
        try:
            ctx, warning = self.make_context()
            if ctx.models is None:
                ctx.models = ModelCache(ctx.device)
            self.device_known.emit(describe_device(ctx.device), warning)
        except Exception as err:  # the app still runs and says why no job can
            log.exception("the engine could not start")
            self.device_known.emit("none", f"The engine could not start: {one_line(err)}")
        on_device: int | None = None
        while True:
            task = self.q.take()
            if task is None:
                for left in self.q.drain():      # streams still waiting: their finally blocks run here, on time
                    self._close(left)
                return
            if task.stop:                                   # cancelled while it waited: close, say nothing
                self._close(task)
                self.q.done()
                self.finished_job.emit(task.id)
                continue
            if task.id != on_device:
                on_device = task.id
                self.started_job.emit(task.id, activity_text(task.job))
            try:
                if ctx is None:
                    raise UserError("the engine could not start, so no model can run (the first message says why)")
                done = self._step(ctx, task)
            except Exception as err:
                if not isinstance(err, user_errors()):
                    log.error("job %s (%s) failed", task.id, task.key, exc_info=True)
                self.errored.emit(task.id, task.key, one_line(err))
                done = True
            if not done and self.q.put_back(task):
                continue                                    # a stream between items: it waits for its turn
            self._close(task)
            self.q.done()
            self.finished_job.emit(task.id)

    def _step(self, ctx: EngineContext, task: Task) -> bool:
        """Run a job, or one item of a stream, in the stream's own grad mode; True when the task is over.

        torch's grad mode belongs to the thread, and a generator suspended inside `with torch.no_grad()` would
        leave it off for every job that runs between its items (a GAN inversion that needs gradients), or a
        training stream would leave it on for them. So each task gets back the mode it left, and the thread
        gets back its own after every item."""
        import torch

        outer = torch.is_grad_enabled()
        if task.grad_enabled is not None:
            torch.set_grad_enabled(task.grad_enabled)
        try:
            return self._advance(ctx, task)
        finally:
            task.grad_enabled = torch.is_grad_enabled()
            torch.set_grad_enabled(outer)

    def _advance(self, ctx: EngineContext, task: Task) -> bool:
        t0 = time.perf_counter()
        if task.stream is None:
            out = task.job.run(bind(ctx, task.job))
            if not isinstance(out, Iterator):
                if self.check:
                    check_payload(out)
                self.emitted.emit(Result(task.id, task.key, out, True, (time.perf_counter() - t0) * 1e3))
                return True
            task.stream = out
        try:
            item = next(task.stream)
        except StopIteration:
            # the stream is done: its last item once more, final, so a view never waits one extra step for it
            self.emitted.emit(Result(task.id, task.key, task.last, True, 0.0))
            return True
        if item is None:
            return False            # an item with nothing to show: the stream gave the device back, nothing crosses
        if self.check:
            check_payload(item)
        task.last = item
        self.emitted.emit(Result(task.id, task.key, item, False, (time.perf_counter() - t0) * 1e3))
        return False

    @staticmethod
    def _close(task: Task) -> None:
        """Close a stream on the engine thread, so its cleanup (finally blocks) runs beside the device."""
        close = getattr(task.stream, "close", None)
        task.stream = None
        if close is not None:
            try:
                close()
            except Exception:  # a generator that fails while closing must not take the engine with it
                log.error("job %s (%s) failed while closing", task.id, task.key, exc_info=True)


_LIVE: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """A script that never quits its QApplication still stops the engine thread before Python tears down."""
    for engine in list(_LIVE):
        try:
            engine.shutdown(timeout_ms=2_000)
        except RuntimeError:       # the Qt object is already gone
            pass


class Engine(QObject):
    """The UI's handle on the engine thread. Create it on the UI thread; every signal arrives there.

    A view asks through its own `channel()`; a script or a test may `submit` straight here and hear every answer
    of those jobs on `result`. `failed` carries every failure, whoever asked: the window's banner listens to it.
    `start=False` leaves the thread (and torch's import) for `start()`, once the window has painted.
    """

    result = Signal(object)             # Result of a job submitted straight to the engine
    failed = Signal(int, str, str)      # job id, key, one-line message (job id 0: the engine itself)
    activity = Signal(str)              # what runs now; "" when idle
    device_ready = Signal(str)          # the device's name, once the engine thread has picked it
    idle = Signal()                     # every submitted job has finished and its results were delivered

    def __init__(self, device: str = "auto", context_factory: Callable[[], EngineContext] | None = None,
                 parent: QObject | None = None, check_payloads: bool = __debug__, weights: str | None = None,
                 max_models: int = MAX_MODELS, max_bytes: int = MAX_BYTES, start: bool = True) -> None:
        super().__init__(parent)
        self.device_name = "starting"
        self.weights = weights
        self._q = JobQueue()
        self._cancelled: set[int] = set()       # ids whose late results are dropped here
        self._owners: dict[int, Channel] = {}   # job id -> the channel that asked
        def make() -> tuple[EngineContext, str]:
            if context_factory is not None:
                return context_factory(), ""
            return default_context(device, weights, max_models, max_bytes)

        self._thread = _EngineThread(self._q, make, check_payloads)
        queued = Qt.ConnectionType.QueuedConnection
        self._thread.started_job.connect(self._on_started, queued)
        self._thread.emitted.connect(self._on_result, queued)
        self._thread.errored.connect(self._on_failed, queued)
        self._thread.finished_job.connect(self._on_finished, queued)
        self._thread.device_known.connect(self._on_device, queued)
        self._direct = Channel(self, "direct", keep_stale=True)
        _LIVE.add(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        if start:
            self.start()

    # -- called from the UI thread -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine thread (it imports torch and picks the device first). Safe to call twice."""
        if not self._thread.isRunning() and not self._thread.isFinished() and not self._q.stopping:
            self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.isRunning() or self._thread.isFinished()

    def channel(self, name: str = "") -> Channel:
        """A requester's own line to the engine: what it submits there, only it hears back."""
        return Channel(self, name)

    def submit(self, job: Job) -> int:
        """Queue `job` on the engine's own channel; its results come out of `result`. Returns its id."""
        return self._direct.submit(job, self.result.emit)

    def enqueue(self, job: Job, owner: Channel) -> int:
        """Queue `job` for `owner` (what `Channel.submit` calls); returns its id, 0 once the engine stops."""
        job_id, replaced = self._q.add(job, owner.ident)
        if replaced is not None:
            self._finish_owner(replaced)
        if job_id:
            self._owners[job_id] = owner
        return job_id

    def cancel(self, key: str) -> None:
        """Cancel the engine's own jobs with `key` (a view cancels through its channel)."""
        self._direct.cancel(key)

    def cancel_owned(self, owner: Channel, key: str | None = None) -> None:
        """Drop `owner`'s waiting jobs with `key` (all if None), stop its streams, drop their late results."""
        dropped, stopped = self._q.cancel(owner.ident, key)
        self._cancelled.update(stopped)
        self._dropped(dropped)

    def cancel_job(self, job_id: int) -> None:
        """Stop one job within one item of it; nothing more of it is delivered."""
        how = self._q.cancel_job(job_id)
        if how == "stopped":
            self._cancelled.add(job_id)
        elif how == "dropped":
            self._dropped([job_id])

    def _dropped(self, ids: list[int]) -> None:
        """Jobs taken off the queue before they started: their requesters forget them; maybe the engine is idle."""
        for job_id in ids:
            self._finish_owner(job_id)
        if ids and self._q.is_idle():
            self.activity.emit("")
            self.idle.emit()

    def pause(self, job_id: int) -> bool:
        """Pause a stream between items (or a job before it starts); it keeps its state. False if it is over."""
        return self._q.pause(job_id, True)

    def resume(self, job_id: int) -> bool:
        return self._q.pause(job_id, False)

    def is_paused(self, job_id: int) -> bool:
        return self._q.is_paused(job_id)

    def hold(self) -> None:
        """Start no job and resume no stream until `release()`. Used to batch requests (and in tests)."""
        self._q.hold(True)

    def release(self) -> None:
        self._q.hold(False)

    def is_idle(self) -> bool:
        """No job waiting, running or paused, and every result already delivered to the UI thread."""
        return self._q.is_idle()

    def waiting_keys(self) -> list[str]:
        return self._q.waiting_keys()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop the thread after the running item (a stream stops at its next item). Safe to call twice."""
        if self._q.stopping and not self._thread.isRunning():
            return
        self._q.stop()
        if not self._thread.wait(timeout_ms):  # pragma: no cover - a job that ignores every chance to stop
            log.warning("the engine thread did not stop within %d ms", timeout_ms)
            self._thread.terminate()
            self._thread.wait()

    # -- queued from the engine thread ---------------------------------------------------------------------------
    def _live(self, job_id: int) -> bool:
        return job_id not in self._cancelled and not self._q.stopping

    @Slot(int, str)
    def _on_started(self, job_id: int, text: str) -> None:
        if self._live(job_id):
            self.activity.emit(text)

    @Slot(object)
    def _on_result(self, result: Result) -> None:
        owner = self._owners.get(result.job_id)
        if owner is not None and self._live(result.job_id):
            self._delivered(result)
            owner.deliver(result)

    def _delivered(self, result: Result) -> None:
        """Every result on its way to its requester (a hook for tests that record what the engine answered)."""

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, key: str, message: str) -> None:
        if self._live(job_id):
            self.failed.emit(job_id, key, message)      # the banner first; the requester may say more after it
            owner = self._owners.get(job_id)
            if owner is not None:
                owner.fail(job_id, key, message)

    @Slot(int)
    def _on_finished(self, job_id: int) -> None:
        self._cancelled.discard(job_id)
        self._finish_owner(job_id)
        if self._q.finished(job_id):
            self.activity.emit("")
            self.idle.emit()

    def _finish_owner(self, job_id: int) -> None:
        owner = self._owners.pop(job_id, None)
        if owner is not None:
            owner.finished(job_id)

    @Slot(str, str)
    def _on_device(self, name: str, warning: str) -> None:
        self.device_name = name
        self.device_ready.emit(name)
        if warning:
            self.failed.emit(0, "engine", warning)
