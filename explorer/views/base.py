"""The View base: what every tab shares, declared in code.

A view is a QWidget built with the app's state. It talks to the engine through its own channel (named as its
tab), submits jobs for the model it targets, starts its first work only once it is on screen, says `ready` when it
has drawn what the current model asks for, and may change its caption. Every failure reaches the window's banner
through `engine.failed`; `job_failed` lets a view say more in its own status line.

A new view subclasses `View`, passes its tab's name, and overrides what it needs:

    class SlowView(View):
        def __init__(self, state, parent=None):
            super().__init__(state, "slow", parent)
            state.model_changed.connect(self._on_model)

        def _on_model(self, info):
            self.target = info.path if info is not None else None
            self.when_shown(lambda: self.submit(SomeJob("slow"), self._draw))

Importing this module imports Qt only (no pyqtgraph, no torch), so the window and tests may use it freely.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Callable

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QMenu, QWidget


class View(QWidget):
    """One tab's view. Subclasses set `target` (the model their jobs run on) and override what they need."""

    ready = Signal()                 # drawn what the current model asks for (the window and --screenshot wait)
    caption_changed = Signal(str)    # a caption that depends on the model ("no encoder: no data to scatter")

    def __init__(self, state, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.engine = state.engine
        self.channel = self.engine.channel(name)
        self.target: str | None = None          # the checkpoint every job names: a path or a shipped name
        self._was_shown = False
        self._waiting_work: Callable[[], None] | None = None

    # -- asking the engine ---------------------------------------------------------------------------------------
    def submit(self, job, on_result: Callable, on_error: Callable[[str], None] | None = None) -> int:
        """Ask the engine for `job` on the model this view targets; its results come back to `on_result` and its
        failure to `on_error` (default: `job_failed`), here only. Returns the job's id."""
        if on_error is None:
            on_error = partial(self.job_failed, job.key)
        return self.channel.submit(dataclasses.replace(job, model=self.target), on_result, on_error)

    def job_failed(self, key: str, message: str) -> None:
        """A job of this view failed (the banner already shows it): say it where the view says things."""
        self.say(message)

    def say(self, text: str) -> None:
        """One line of news in the view's own status line; a view with one overrides this."""

    # -- starting when first shown -------------------------------------------------------------------------------
    @property
    def has_been_shown(self) -> bool:
        """True once the view has been on screen: a start on another tab never pays for work nobody watches."""
        return self._was_shown

    def when_shown(self, work: Callable[[], None]) -> None:
        """Do `work` now if the view is on screen, else just after it is next shown; a newer call replaces a
        waiting one."""
        if self.isVisible():
            self._waiting_work = None
            work()
        else:
            self._waiting_work = work

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._was_shown = True
        work, self._waiting_work = self._waiting_work, None
        if work is not None:
            QTimer.singleShot(0, work)          # once the tab has painted

    # -- what the window asks ------------------------------------------------------------------------------------
    def fill_menu(self, menu: QMenu) -> None:
        """Fill the view's own menu in the menu bar (its tab names one with `menu=`)."""

    def confirm_close(self) -> bool:
        """Asked when the window closes; False keeps it open (a run with work it would lose)."""
        return True

    # -- sessions ------------------------------------------------------------------------------------------------
    def session_state(self):
        """What File > Save session keeps of this view, so the same pictures come back: JSON-able (a plain dict),
        or the dataclass its `views/<name>/session.py` dumps. A view with nothing worth keeping keeps {}."""
        return {}

    def restore_session(self, state) -> list[str]:
        """Bring back what `session_state` kept (already checked by the view's session module, on the model the
        session names, after the view has reset for it); returns what could not be restored, one sentence each.
        A view whose data is still on its way keeps the state and applies it once the data is there."""
        return []
