"""Which engine results a view should still show: the newest per key, never an older one arriving late.

Job ids grow with every submit, so "stale" is a plain comparison. A view keeps one `Tracker`, submits through it
and asks `accept(result)` before drawing. Results are not dropped merely because a newer job is waiting: during a
drag that would starve the panel until the mouse stops. A result is stale when a newer one for the same key was
already shown, or when the view invalidated the key (new model, cancelled run) after that job was submitted.
"""
from __future__ import annotations

from typing import Any

from .job import Job, Result


class Tracker:
    """Latest-wins bookkeeping for one view: `submit` through it, `accept` before drawing a result."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._submitted: dict[str, int] = {}   # key -> id of the newest job submitted
        self._shown: dict[str, int] = {}       # key -> id of the newest result accepted
        self._floor: dict[str, int] = {}       # key -> results with a smaller id are dropped

    def submit(self, job: Job) -> int:
        job_id = self.engine.submit(job)
        self._submitted[job.key] = job_id
        return job_id

    def accept(self, result: Result) -> bool:
        """True if the result is newer than anything shown for its key and not invalidated; records it."""
        key = result.key
        if key not in self._submitted:
            return False                                   # another view's job
        if result.job_id < self._floor.get(key, 0):
            return False
        if result.job_id < self._shown.get(key, -1):
            return False
        self._shown[key] = result.job_id
        return True

    def latest(self, key: str) -> int | None:
        """Id of the newest job submitted for `key`, or None."""
        return self._submitted.get(key)

    def pending(self, key: str) -> bool:
        """True while the newest submitted job for `key` has not delivered its final result here."""
        sub = self._submitted.get(key)
        return sub is not None and self._shown.get(key, -1) < sub

    def invalidate(self, key: str | None = None, cancel: bool = False) -> None:
        """Drop every result of jobs submitted so far for `key` (all keys if None); optionally cancel them too."""
        keys = list(self._submitted) if key is None else [key]
        for k in keys:
            if k in self._submitted:
                self._floor[k] = self._submitted[k] + 1
            if cancel:
                self.engine.cancel(k)
