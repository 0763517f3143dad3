"""Which job gets the device next: the queue the UI thread fills and the engine thread drains.

Plain Python under one condition variable, no Qt and no torch, so its rules can be read and tested alone:
- Every task is a job that has not started, or a stream between two of its items. The engine takes the task with
  the best (priority, turn): interactive work first, then animation, then training; within a priority, in turn.
  A stream that has sent an item goes to the back of its priority, so a drag submitted while a 1,000-step run
  streams is answered after that run's current item, and the run carries on after.
- Latest wins within one requester: a coalescing job replaces a waiting job of the same owner and key (keeping
  its turn), and a started stream of that owner and key is told to stop.
- A drag comes in bursts: after interactive work, an animation or training stream waits up to `grace_s` for
  the drag's next move before it takes the device for an item, so the move is answered at once instead of after
  a step; the stream still gets an item at least every `starve_s`, and its full pace back once the drag stops.
- A stream can be paused (it keeps its state and its place), resumed and cancelled; a stopped stream is closed by
  the engine thread, at once if it is between items, after its current item if it is running.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any, Iterator

from .job import INTERACTIVE, Job

GRACE_S = 0.04       # a mouse moves every ~16 ms: room for the next move of a drag, and its painting
STARVE_S = 0.5       # ... but a stream still gets an item this often while the drag goes on


@dataclasses.dataclass(eq=False)
class Task:
    """A job on its way through the engine. Fields change only under the schedule's lock."""

    id: int
    job: Job
    owner: int                       # the requester (a channel's ident): latest-wins is per owner and key
    key: str
    priority: int
    turn: int                        # arrival order within a priority; a stream gets a new turn per item
    stream: Iterator[Any] | None = None
    last: Any = None                 # the stream's last item, sent again as the final result
    paused: bool = False
    stop: bool = False               # cancelled or superseded: close it, send nothing more
    grad_enabled: bool | None = None  # torch's grad mode as the stream left it, restored when it resumes


@dataclasses.dataclass
class JobQueue:
    cond: threading.Condition = dataclasses.field(default_factory=threading.Condition)
    tasks: list[Task] = dataclasses.field(default_factory=list)     # not running now
    running: Task | None = None
    held: bool = False               # no task starts or resumes until release()
    stopping: bool = False
    pending: set[int] = dataclasses.field(default_factory=set)      # submitted, not yet finished on the UI side
    grace_s: float = GRACE_S
    starve_s: float = STARVE_S
    _next_id: int = 1
    _next_turn: int = 0
    _interactive_at: float = -math.inf      # when the last interactive task ended (time.monotonic)
    _streamed_at: float = -math.inf         # when the last animation or training task was taken

    # -- the UI thread ------------------------------------------------------------------------------------------
    def add(self, job: Job, owner: int) -> tuple[int, int | None]:
        """Queue `job` for `owner`; returns its id (0 once the engine is stopping) and the id of the waiting job
        it replaced, if any."""
        with self.cond:
            if self.stopping:
                return 0, None
            job_id = self._next_id
            self._next_id += 1
            self.pending.add(job_id)
            key = job.key
            task = Task(job_id, job, owner, key, int(getattr(job, "priority", INTERACTIVE)), self._turn())
            if job.coalesce:
                for i, old in enumerate(self.tasks):
                    if old.owner == owner and old.key == key:
                        if old.stream is None:            # never started: the new job takes its place and turn
                            task.turn = old.turn
                            self.tasks[i] = task
                            self.pending.discard(old.id)
                            self.cond.notify()
                            return job_id, old.id
                        old.stop = True                   # a stream of the same picture: stop it now
                if self.running is not None and (self.running.owner, self.running.key) == (owner, key):
                    self.running.stop = True
            self.tasks.append(task)
            self.cond.notify()
            return job_id, None

    def cancel(self, owner: int, key: str | None = None) -> tuple[list[int], list[int]]:
        """Drop `owner`'s waiting jobs with `key` (every key if None) and stop its streams with it.

        Returns (ids dropped before they started, ids of streams told to stop)."""
        with self.cond:
            def mine(t: Task) -> bool:
                return t.owner == owner and (key is None or t.key == key)

            dropped = [t.id for t in self.tasks if mine(t) and t.stream is None]
            self.tasks = [t for t in self.tasks if not (mine(t) and t.stream is None)]
            self.pending.difference_update(dropped)
            stopped = [t for t in self.tasks if mine(t)]
            if self.running is not None and mine(self.running):
                stopped.append(self.running)
            for t in stopped:
                t.stop = True
            self.cond.notify()
            return dropped, [t.id for t in stopped]

    def cancel_job(self, job_id: int) -> str:
        """Stop one job: "dropped" if it had not started, "stopped" if it streams, "" if it is over."""
        with self.cond:
            for t in self._all():
                if t.id == job_id:
                    self.cond.notify()
                    if t.stream is None and t is not self.running:
                        self.tasks.remove(t)
                        self.pending.discard(t.id)
                        return "dropped"
                    t.stop = True
                    return "stopped"
            return ""

    def pause(self, job_id: int, paused: bool = True) -> bool:
        """Pause (or resume) a job: it keeps its place and its state, and gets no device time while paused."""
        with self.cond:
            for t in self._all():
                if t.id == job_id:
                    t.paused = paused
                    self.cond.notify()
                    return True
            return False

    def is_paused(self, job_id: int) -> bool:
        with self.cond:
            return any(t.id == job_id and t.paused for t in self._all())

    def hold(self, held: bool = True) -> None:
        with self.cond:
            self.held = held
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            for t in self._all():
                t.stop = True
            self.pending.clear()
            self.cond.notify_all()

    def finished(self, job_id: int) -> bool:
        """The UI side has seen `job_id` end; True when nothing is pending any more."""
        with self.cond:
            self.pending.discard(job_id)
            return not self.pending and not self.stopping

    def is_idle(self) -> bool:
        with self.cond:
            return not self.pending

    def waiting_keys(self) -> list[str]:
        with self.cond:
            return [t.key for t in sorted(self.tasks, key=lambda t: (t.priority, t.turn))]

    # -- the engine thread ----------------------------------------------------------------------------------------
    def take(self) -> Task | None:
        """Block until a task may run, mark it running and return it; None once the engine stops.

        A stopped task comes first (closing it frees what it holds), then the best (priority, turn)."""
        with self.cond:
            while True:
                if self.stopping:
                    return None
                stopped = [t for t in self.tasks if t.stop]
                ready = stopped or ([] if self.held else [t for t in self.tasks if not t.paused])
                if ready:
                    task = min(ready, key=lambda t: (t.priority, t.turn))
                    wait_s = self._grace_left(task)
                    if wait_s > 0:
                        self.cond.wait(wait_s)          # a drag's next move, if it comes, goes first
                        continue
                    self.tasks.remove(task)
                    self.running = task
                    if task.priority != INTERACTIVE and not task.stop:
                        self._streamed_at = time.monotonic()
                    return task
                self.cond.wait()

    def _grace_left(self, task: Task) -> float:
        """How long `task` (a stream's item) still waits for a drag in progress; 0 to run it now."""
        if task.priority == INTERACTIVE or task.stop:
            return 0.0
        now = time.monotonic()
        until = min(self._interactive_at + self.grace_s, self._streamed_at + self.starve_s)
        return max(0.0, until - now)

    def put_back(self, task: Task) -> bool:
        """A stream sent an item: back in line behind what waits at its priority. False if it must stop instead."""
        with self.cond:
            self._ended(task)
            if task.stop or self.stopping:
                return False
            task.turn = self._turn()
            self.tasks.append(task)
            return True

    def drain(self) -> list[Task]:
        """Every task still here (on shutdown): the engine thread closes their streams, so their cleanup runs."""
        with self.cond:
            left, self.tasks = self.tasks, []
            return left

    def done(self) -> None:
        with self.cond:
            if self.running is not None:
                self._ended(self.running)

    def _ended(self, task: Task) -> None:
        self.running = None
        if task.priority == INTERACTIVE:
            self._interactive_at = time.monotonic()

    def _all(self) -> list[Task]:
        return self.tasks + ([self.running] if self.running is not None else [])

    def _turn(self) -> int:
        self._next_turn += 1
        return self._next_turn
