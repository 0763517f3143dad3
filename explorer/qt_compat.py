"""Guards against known defects of the Qt binding, checked by behaviour rather than by version number.

PySide6 6.12.0's `SignalInstance.emit()` returns `True` without taking a reference to it. On Python < 3.12
(where True is not immortal) every emit then lowers True's reference count by one, and after some thousands of
emits -- a minute of dragging -- the interpreter aborts with "bool_dealloc: deallocating True or False". The
project excludes that release; `guard_signal_refcount()` keeps an already-installed copy from crashing.
"""
from __future__ import annotations

import ctypes
import sys

_GUARDED = False


def emit_leaks_true() -> bool:
    """True when emitting a signal costs True a reference (the PySide6 6.12.0 defect)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    return sys.getrefcount(True) < before


def guard_signal_refcount() -> bool:
    """If emit() leaks, give True and False a reference count no session can exhaust. Returns True if applied."""
    global _GUARDED
    if _GUARDED or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _GUARDED          # from 3.12 on, True and False are immortal
    if not emit_leaks_true():
        return False
    for obj in (True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40   # ob_refcnt, the first field of PyObject
    _GUARDED = True
    return True
