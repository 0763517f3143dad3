"""One place for an error nobody expected: an exception that escapes a slot goes to the window's banner as one
sentence and to the log once, with its traceback, and the app keeps running.

Qt calls `sys.excepthook` for an exception raised in a slot and then carries on with its event loop; this hook
makes that visible instead of a traceback on a terminal the user may not have. A hook that was there before (a
test runner's) is still called, so tests keep failing on such errors.
"""
from __future__ import annotations

import logging
import sys
import weakref
from typing import Callable

from .engine.errors import one_sentence

log = logging.getLogger("explorer")



class _Hook:
    """sys.excepthook while the app runs: log once, tell the window, then the hook that was there before."""

    def __init__(self, previous: Callable) -> None:
        self.previous = previous
        self.target: Callable[[], Callable[[str], None] | None] = lambda: None

    def __call__(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self.previous(exc_type, exc, tb)
            return
        log.error("unexpected error", exc_info=(exc_type, exc, tb))
        shown = self.target()
        if shown is not None:
            try:
                shown(one_sentence(exc))
            except RuntimeError:         # the window is already gone (its C++ half deleted)
                pass
        if self.previous is not sys.__excepthook__:
            self.previous(exc_type, exc, tb)   # a test runner's hook: it records the error as well


def install_error_hook(show: Callable[[str], None]) -> _Hook:
    """Route unexpected exceptions to `show(sentence)` (held weakly if it is a bound method) and to the log.
    A second call points the installed hook at the new window instead of stacking another one."""
    hook = sys.excepthook if isinstance(sys.excepthook, _Hook) else _Hook(sys.excepthook)
    hook.target = weakref.WeakMethod(show) if hasattr(show, "__self__") else (lambda: show)
    sys.excepthook = hook
    return hook
