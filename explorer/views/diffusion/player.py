"""The reverse process as a player, without a window: the run and its branches, which one is on screen, which
frame, and the clock that moves through the frames.

    player = Player()
    run = player.new_run(n=4, sampler="ddpm", steps=None, eta=1.0, seed=0)
    run.add(frame, total)             # as the engine's frames arrive
    player.play(True); player.tick(0.5)   # half a frame's worth of time: nothing moves yet
    branch = player.branch(k=10, seed=1000)   # continue the shown track from frame 10 with new noise
"""
from __future__ import annotations

import numpy as np

from .frames import Track

MOVED, AT_END = "moved", "at end"     # what a tick did: showed a later frame, or reached the end of a finished track


class BranchError(ValueError):
    """Why a branch cannot start from this frame, in words for the status line."""


class Player:
    """Track 0 is the run, the others its branches (or a branch's branches). `shown` picks the track on screen,
    `pos` its frame; `playing` says whether `tick` moves on."""

    def __init__(self) -> None:
        self.tracks: list[Track] = []
        self.shown = 0
        self.pos = 0
        self.playing = False
        self._credit = 0.0                 # frames owed by the clock, not yet shown

    @property
    def run(self) -> Track | None:
        return self.tracks[0] if self.tracks else None

    @property
    def track(self) -> Track | None:
        """The track on screen."""
        return self.tracks[self.shown] if 0 <= self.shown < len(self.tracks) else None

    def running(self) -> bool:
        return any(not t.done and not t.stopped for t in self.tracks)

    def new_run(self, n: int, sampler: str, steps: int | None, eta: float, seed: int,
                class_index: int | None = None, guidance: float = 1.0) -> Track:
        """Forget every run and branch: a new run, on screen from its first frame (of class `class_index` at
        guidance scale `guidance`, for a class-conditional model)."""
        self.tracks = [Track("run", n, sampler, steps, eta, seed, class_index=class_index, guidance=guidance)]
        self.shown, self.pos = 0, 0
        return self.tracks[0]

    def stop(self) -> list[int]:
        """Mark every unfinished track stopped; returns their numbers."""
        stopped = [j for j, t in enumerate(self.tracks) if not t.done]
        for j in stopped:
            self.tracks[j].stopped = True
        return stopped

    # -- the clock -----------------------------------------------------------------------------------------------
    def play(self, on: bool) -> None:
        self.playing = bool(on)
        if self.playing:
            track = self.track
            if track is not None and track.done and self.pos >= len(track) - 1:
                self.pos = 0               # at the end: play from the start again
            self._credit = 0.0

    def tick(self, frames: float) -> str | None:
        """`frames` frames' worth of time went by: MOVED if a later frame is now on screen, AT_END if the track is
        finished and shown to its end (stop playing), None if nothing changed (not a whole frame yet, or a live
        track waiting for its next frame)."""
        track = self.track
        if track is None or not track.frames:
            return None
        self._credit += frames
        advance = int(self._credit)
        if advance < 1:
            return None
        self._credit -= advance
        last = len(track) - 1
        if self.pos >= last:
            return AT_END if track.done or track.stopped else None
        self.pos = min(last, self.pos + advance)
        return MOVED

    def step(self) -> bool:
        """One frame on; False at the last one computed."""
        track = self.track
        if track is not None and self.pos < len(track) - 1:
            self.pos += 1
            return True
        return False

    def seek(self, k: int) -> bool:
        """Frame k of the track on screen (clipped to the frames computed); False if it has none yet."""
        track = self.track
        if track is None or not track.frames:
            return False
        self.pos = int(np.clip(k, 0, len(track) - 1))
        return True

    def pick(self, j: int) -> bool:
        """Put track j on screen, at the same frame if it has one; False if there is no track j."""
        if not 0 <= j < len(self.tracks):
            return False
        self.shown = j
        self.pos = min(self.pos, len(self.tracks[j]) - 1) if self.tracks[j].frames else 0
        return True

    # -- branches ------------------------------------------------------------------------------------------------
    def branch(self, k: int | None, seed: int) -> Track:
        """Continue the track on screen from its frame k (default: the one on screen) with noise `seed` for the
        steps that remain. Raises BranchError with the reason when that cannot be done."""
        parent = self.track                # the run, or the branch on screen: a branch of a branch
        if parent is None or not parent.frames:
            raise BranchError("")
        if parent.sampler == "dpm++" or (parent.sampler == "ddim" and parent.eta == 0):
            raise BranchError("This sampler adds no noise after x_T (DPM-Solver++, or DDIM with η = 0), so a branch "
                              "would repeat its parent: pick DDPM, or DDIM with η > 0.")
        k = self.pos if k is None else int(k)
        if not 0 <= k < len(parent.frames):
            raise BranchError(f"frame {k + 1} has not been computed yet")
        if parent.total and k >= parent.total - 1:
            raise BranchError("The last frame has no step after it to re-roll: branch from an earlier one.")
        track = Track.branch_of(parent, k, seed, f"branch {len(self.tracks)}")
        self.tracks.append(track)
        return track

    def compared(self) -> list[Track] | None:
        """The run and its finished branches, earliest branch first: what the branch comparison shows; None
        until the run and a branch are finished."""
        run = self.run
        if run is None or run.final is None:
            return None
        done = sorted((t for t in self.tracks[1:] if t.final is not None), key=lambda t: t.start)
        return [run, *done] if done else None

    @staticmethod
    def start_t(track: Track) -> int:
        """The step a branch left its parent at (its frame `start`, shared with the parent)."""
        return track.parent.frames[track.start].t if track.parent is not None else track.frames[0].t

    @staticmethod
    def labels_at(track: Track, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The classifier's labels and confidences of x̂_0 as of frame k (the newest frame labelled so far)."""
        for f in reversed(track.frames[:k + 1]):
            if f.labels is not None:
                return np.asarray(f.labels), np.asarray(f.confidences)
        return np.full(track.n, -1), np.zeros(track.n)
