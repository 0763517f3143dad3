"""The engine: one long-lived QThread that owns the device and runs every job, one at a time, in order.

Why one thread: two jobs must never touch the device at once, and a drag must never wait behind a pile of
outdated requests. So the queue is ours, not Qt's: `submit` of a coalescing job replaces a waiting job with the
same key (latest wins), and a running stream stops between items when it is cancelled or superseded. Results
travel back as queued signals and are re-emitted by `Engine` on the UI thread, so a view's slot never runs on the
engine thread. Everything a job returns is checked to be numpy or plain values before it leaves the thread.
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, Qt, Signal, Slot

from ..qt_compat import guard_signal_refcount
from .job import EngineContext, Job, Result

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


def user_errors() -> tuple[type, ...]:
    """Errors that describe the user's situation (a bad file, no data, no model): shown verbatim, no traceback."""
    from models.checkpoint import CheckpointError
    from models.data import DataMissingError
    from models.device import DeviceError

    from .decoding import NoModelError
    return CheckpointError, DataMissingError, DeviceError, NoModelError


def one_line(err: BaseException) -> str:
    """The message a user sees: a checkpoint's or data set's own sentence verbatim, else the type and text."""
    text = " ".join(str(err).split())
    if isinstance(err, user_errors()) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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


def default_context(device_request: str) -> tuple[EngineContext, str]:
    """Pick the device on the engine thread (CUDA, then MPS, then CPU unless asked); a bad request falls back."""
    from models.device import DeviceError, pick_device

    warning = ""
    try:
        device = pick_device(device_request)
    except DeviceError as err:
        device = pick_device("auto")
        warning = f"{err}. Using {device.type} instead."
    return EngineContext(device=device), warning


@dataclasses.dataclass
class _Queue:
    """The state both threads share; every field is touched only under `cond`."""

    cond: threading.Condition = dataclasses.field(default_factory=threading.Condition)
    waiting: list[tuple[int, Job]] = dataclasses.field(default_factory=list)
    running: tuple[int, str] | None = None       # (job id, key) of the job on the device now
    stop_running: bool = False                   # the running stream should stop at its next item
    held: bool = False                           # paused: no new job starts
    stopping: bool = False
    next_id: int = 1
    pending: set[int] = dataclasses.field(default_factory=set)   # submitted, not yet finished on the UI side


class _EngineThread(QThread):
    """Runs jobs from the shared queue; talks to `Engine` only through these queued signals."""

    started_job = Signal(int, str)
    emitted = Signal(object)
    errored = Signal(int, str, str)
    finished_job = Signal(int)
    device_known = Signal(str, str)                # device name, warning ('' if none)

    def __init__(self, queue: _Queue, device_request: str,
                 context_factory: Callable[[], EngineContext] | None, check: bool) -> None:
        super().__init__()
        self.setObjectName("latent-explorer-engine")
        self.q = queue
        self.device_request = device_request
        self.context_factory = context_factory
        self.check = check

    def run(self) -> None:  # noqa: D401 - QThread entry point
        ctx: EngineContext | None = None
        try:
            if self.context_factory is not None:
                ctx, warning = self.context_factory(), ""
            else:
                ctx, warning = default_context(self.device_request)
            self.device_known.emit(describe_device(ctx.device), warning)
        except Exception as err:  # the app still runs and says why no job can
            log.exception("the engine could not start")
            self.device_known.emit("none", f"The engine could not start: {one_line(err)}")
        while True:
            with self.q.cond:
                while not self.q.stopping and (self.q.held or not self.q.waiting):
                    self.q.cond.wait()
                if self.q.stopping:
                    return
                job_id, job = self.q.waiting.pop(0)
                self.q.running = (job_id, job.key)
                self.q.stop_running = False
            self.started_job.emit(job_id, activity_text(job))
            try:
                if ctx is None:
                    raise RuntimeError("the engine has no device")
                self._run(ctx, job_id, job)
            except Exception as err:
                if not isinstance(err, user_errors()):
                    log.error("job %s (%s) failed", job_id, job.key, exc_info=True)
                self.errored.emit(job_id, job.key, one_line(err))
            finally:
                with self.q.cond:
                    self.q.running = None
                self.finished_job.emit(job_id)

    def _should_stop(self) -> bool:
        with self.q.cond:
            return self.q.stop_running or self.q.stopping

    def _run(self, ctx: EngineContext, job_id: int, job: Job) -> None:
        t0 = time.perf_counter()
        out = job.run(ctx)
        if not isinstance(out, Iterator):
            if self.check:
                check_payload(out)
            self.emitted.emit(Result(job_id, job.key, out, True, (time.perf_counter() - t0) * 1e3))
            return
        # A stream: every item goes out as soon as it exists (final=False); when the generator is done, the last
        # item is sent once more with final=True, so a view never waits one extra step to see a frame.
        last: Any = None
        try:
            for item in out:
                if self.check:
                    check_payload(item)
                now = time.perf_counter()
                self.emitted.emit(Result(job_id, job.key, item, False, (now - t0) * 1e3))
                t0, last = now, item
                if self._should_stop():
                    return
        finally:
            close = getattr(out, "close", None)
            if close is not None:
                close()
        self.emitted.emit(Result(job_id, job.key, last, True, 0.0))


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
    """The UI's handle on the engine thread. Create it on the UI thread; every signal arrives there."""

    result = Signal(object)             # Result
    failed = Signal(int, str, str)      # job id, key, one-line message (job id 0: the engine itself)
    activity = Signal(str)              # what runs now; "" when idle
    device_ready = Signal(str)          # the device's name, once the engine thread has picked it
    idle = Signal()                     # every submitted job has finished and its results were delivered

    def __init__(self, device: str = "auto", context_factory: Callable[[], EngineContext] | None = None,
                 parent: QObject | None = None, check_payloads: bool = __debug__) -> None:
        super().__init__(parent)
        guard_signal_refcount()                  # the engine emits on every result: never let that crash
        self.device_name = "starting"
        self._q = _Queue()
        self._cancelled: set[int] = set()       # ids whose late results are dropped here
        self._thread = _EngineThread(self._q, device, context_factory, check_payloads)
        queued = Qt.ConnectionType.QueuedConnection
        self._thread.started_job.connect(self._on_started, queued)
        self._thread.emitted.connect(self._on_result, queued)
        self._thread.errored.connect(self._on_failed, queued)
        self._thread.finished_job.connect(self._on_finished, queued)
        self._thread.device_known.connect(self._on_device, queued)
        self._thread.start()
        _LIVE.add(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- called from the UI thread -------------------------------------------------------------------------------
    def submit(self, job: Job) -> int:
        """Queue `job`; returns its id. A coalescing job replaces a waiting one with the same key."""
        key = job.key
        with self._q.cond:
            if self._q.stopping:
                return 0
            job_id = self._q.next_id
            self._q.next_id += 1
            self._q.pending.add(job_id)
            replaced = False
            if job.coalesce:
                for i, (old_id, old) in enumerate(self._q.waiting):
                    if old.key == key:
                        self._q.waiting[i] = (job_id, job)
                        self._q.pending.discard(old_id)
                        replaced = True
                        break
                running = self._q.running
                if running is not None and running[1] == key:
                    self._q.stop_running = True          # a stream of the same key stops at its next item
            if not replaced:
                self._q.waiting.append((job_id, job))
            self._q.cond.notify()
        return job_id

    def cancel(self, key: str) -> None:
        """Drop waiting jobs with `key`, stop a running stream with it, and drop its results still in flight."""
        with self._q.cond:
            dropped = [i for i, job in self._q.waiting if job.key == key]
            self._q.waiting = [(i, job) for i, job in self._q.waiting if job.key != key]
            self._q.pending.difference_update(dropped)
            running = self._q.running
            if running is not None and running[1] == key:
                self._q.stop_running = True
                self._cancelled.add(running[0])
            now_idle = not self._q.pending
        if dropped and now_idle:
            self.activity.emit("")
            self.idle.emit()

    def hold(self) -> None:
        """Start no new job until `release()`; the running one finishes. Used to batch requests (and in tests)."""
        with self._q.cond:
            self._q.held = True

    def release(self) -> None:
        with self._q.cond:
            self._q.held = False
            self._q.cond.notify()

    def is_idle(self) -> bool:
        """No job waiting or running, and every result already delivered to the UI thread."""
        with self._q.cond:
            return not self._q.pending

    def waiting_keys(self) -> list[str]:
        with self._q.cond:
            return [job.key for _, job in self._q.waiting]

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop the thread after the running job (a stream stops at its next item). Safe to call twice."""
        with self._q.cond:
            if self._q.stopping and not self._thread.isRunning():
                return
            self._q.stopping = True
            self._q.stop_running = True
            self._q.waiting.clear()
            self._q.pending.clear()
            self._q.cond.notify_all()
        if not self._thread.wait(timeout_ms):  # pragma: no cover - a job that ignores every chance to stop
            log.warning("the engine thread did not stop within %d ms", timeout_ms)
            self._thread.terminate()
            self._thread.wait()

    # -- queued from the engine thread ---------------------------------------------------------------------------
    @Slot(int, str)
    def _on_started(self, job_id: int, text: str) -> None:
        if job_id not in self._cancelled and not self._q.stopping:
            self.activity.emit(text)

    @Slot(object)
    def _on_result(self, result: Result) -> None:
        if result.job_id not in self._cancelled and not self._q.stopping:
            self.result.emit(result)

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, key: str, message: str) -> None:
        if job_id not in self._cancelled and not self._q.stopping:
            self.failed.emit(job_id, key, message)

    @Slot(int)
    def _on_finished(self, job_id: int) -> None:
        self._cancelled.discard(job_id)
        with self._q.cond:
            self._q.pending.discard(job_id)
            now_idle = not self._q.pending and not self._q.stopping
        if now_idle:
            self.activity.emit("")
            self.idle.emit()

    @Slot(str, str)
    def _on_device(self, name: str, warning: str) -> None:
        self.device_name = name
        self.device_ready.emit(name)
        if warning:
            self.failed.emit(0, "engine", warning)
