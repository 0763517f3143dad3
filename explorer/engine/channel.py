"""One requester's line to the engine: what a view submits through its channel, it alone hears back.

    channel = engine.channel("map")
    channel.submit(DecodeProbe("probe-0", z, model=info.path), on_result=self._show_probe, on_error=self._say)

Each answer goes to the callbacks given with its own job, on the UI thread, so a view never parses keys that other
views also use: two views may both have a "decode:probe-0" and neither sees the other's. Within a channel the
newest job per key wins: a result older than one already shown for its key, or from before `invalidate(key)`
(a new model, a cancelled run), is dropped. Results are not dropped merely because a newer job waits: during a
drag that would starve the panel until the mouse stops.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

from .job import Job, Result

OnResult = Callable[[Result], None]
OnError = Callable[[str], None]
_IDENTS = itertools.count(1)


class Channel:
    """Latest-wins bookkeeping and answer routing for one requester. UI thread only."""

    def __init__(self, engine: Any, name: str = "", keep_stale: bool = False) -> None:
        self.engine = engine
        self.name = name
        self.ident = next(_IDENTS)
        self.keep_stale = keep_stale                 # deliver every result (the engine's own, for scripts)
        self._submitted: dict[str, int] = {}         # key -> id of the newest job submitted
        self._shown: dict[str, int] = {}             # key -> id of the newest result accepted
        self._floor: dict[str, int] = {}             # key -> results with a smaller id are dropped
        self._callbacks: dict[int, tuple[OnResult | None, OnError | None]] = {}
        self._keys: dict[int, str] = {}              # job id -> key, while the job is alive

    def submit(self, job: Job, on_result: OnResult | None = None, on_error: OnError | None = None) -> int:
        """Queue `job`; `on_result(result)` gets each of its results that is still current, `on_error(message)`
        its failure. Returns the job's id (0 if the engine has stopped)."""
        job_id = self.engine.enqueue(job, self)
        if job_id:
            self._submitted[job.key] = job_id
            self._callbacks[job_id] = (on_result, on_error)
            self._keys[job_id] = job.key
        return job_id

    # -- what the engine calls, on the UI thread -----------------------------------------------------------------
    def deliver(self, result: Result) -> None:
        if not self.accept(result):
            return
        on_result, _ = self._callbacks.get(result.job_id, (None, None))
        if on_result is not None:
            on_result(result)

    def fail(self, job_id: int, key: str, message: str) -> None:
        _, on_error = self._callbacks.get(job_id, (None, None))
        if on_error is not None and self.latest(key) == job_id and job_id >= self._floor.get(key, 0):
            on_error(message)

    def finished(self, job_id: int) -> None:
        self._callbacks.pop(job_id, None)
        self._keys.pop(job_id, None)

    # -- latest wins ---------------------------------------------------------------------------------------------
    def accept(self, result: Result) -> bool:
        """True if the result is newer than anything shown for its key and not invalidated; records it."""
        if self.keep_stale:
            return True
        key = result.key
        if key not in self._submitted:
            return False
        if result.job_id < self._floor.get(key, 0) or result.job_id < self._shown.get(key, -1):
            return False
        self._shown[key] = result.job_id
        return True

    def latest(self, key: str) -> int | None:
        """Id of the newest job submitted for `key`, or None."""
        return self._submitted.get(key)

    def is_current(self, result: Result) -> bool:
        """True if `result` comes from the newest job submitted for its key, not invalidated since: what a view
        asks when only the newest request's answer counts (older ones still arriving are dropped)."""
        key = result.key
        return self._submitted.get(key) == result.job_id and result.job_id >= self._floor.get(key, 0)

    def pending(self, key: str) -> bool:
        """True while the newest submitted job for `key` has not delivered its final result here."""
        sub = self._submitted.get(key)
        return sub is not None and sub in self._keys

    def alive(self) -> list[int]:
        """Ids of this channel's jobs that have not finished."""
        return list(self._keys)

    def invalidate(self, key: str | None = None, cancel: bool = False) -> None:
        """Drop every result of jobs submitted so far for `key` (all keys if None); optionally cancel them too."""
        keys = list(self._submitted) if key is None else [key]
        for k in keys:
            if k in self._submitted:
                self._floor[k] = self._submitted[k] + 1
        if cancel:
            self.cancel(key)

    def cancel(self, key: str | None = None) -> None:
        """Stop this channel's jobs with `key` (all if None): waiting ones never run, streams stop within an item."""
        self.engine.cancel_owned(self, key)

    def pause(self, key: str) -> bool:
        """Pause the newest job for `key` between two items; False if it is over."""
        job_id = self.latest(key)
        return job_id is not None and self.engine.pause(job_id)

    def resume(self, key: str) -> bool:
        job_id = self.latest(key)
        return job_id is not None and self.engine.resume(job_id)
