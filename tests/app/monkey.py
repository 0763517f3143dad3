"""A seeded monkey for the real window: random but replayable user input, sent through Qt's event system.

What it does, in proportions a restless user might: drags that start on probes, slider handles or empty space
(sometimes switching models halfway), clicks and double clicks on any visible widget of the view, wheel turns,
key presses, model switches in the picker (by keyboard, as a user would), File > Open of a bad file, and window
resizes. Every action is described in a line, so a failure can say what led to it.
"""
from __future__ import annotations

import collections
import random
import time
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (QAbstractButton, QApplication, QComboBox, QMenu, QMenuBar, QSlider, QStyle,
                               QStyleOptionSlider, QTabBar, QWidget)

KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_Escape,
        Qt.Key.Key_Space, Qt.Key.Key_Tab)
WEIGHTS = {"drag": 24, "click": 22, "double": 6, "wheel": 14, "key": 16, "switch": 6, "bad-file": 2, "resize": 3}
NEVER_CLICK = (QMenuBar, QMenu, QTabBar, QComboBox)    # menus could quit; the picker is driven by keyboard


@dataclass
class MonkeyReport:
    seed: int
    actions: int
    last: list[str]

    def replay_hint(self, view: str) -> str:
        tail = "\n  ".join(self.last)
        return (f"monkey on view '{view}', seed {self.seed}, {self.actions} actions; replay with "
                f"pytest tests/app/test_monkey.py -k {view} --monkey-seed {self.seed}\nlast actions:\n  {tail}")


class Monkey:
    def __init__(self, window, page: QWidget, seed: int, bad_file: str) -> None:
        self.window = window
        self.page = page
        self.rng = random.Random(seed)
        self.seed = seed
        self.bad_file = bad_file
        self.count = 0
        self.last: collections.deque[str] = collections.deque(maxlen=20)

    # -- what can be touched ---------------------------------------------------------------------------------
    def _visible(self, kind=QWidget) -> list[QWidget]:
        return [w for w in self.page.findChildren(kind) if w.isVisible() and w.width() > 2 and w.height() > 2
                and not isinstance(w, NEVER_CLICK)]

    def _canvases(self) -> list[pg.GraphicsView]:
        return [w for w in self._visible(pg.GraphicsView)]

    def _probe_points(self) -> list[tuple[QWidget, QPoint]]:
        points = []
        for canvas in self._canvases():
            for item in canvas.scene().items():
                if isinstance(item, pg.TargetItem) and item.isVisible():
                    p = canvas.mapFromScene(item.scenePos())
                    if canvas.viewport().rect().contains(p):
                        points.append((canvas.viewport(), p))
        return points

    def _slider_points(self) -> list[tuple[QSlider, QPoint]]:
        out = []
        for slider in self._visible(QSlider):
            opt = QStyleOptionSlider()
            slider.initStyleOption(opt)
            handle = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                                   QStyle.SubControl.SC_SliderHandle, slider)
            out.append((slider, handle.center()))
        return out

    def _random_point(self, widget: QWidget) -> QPoint:
        return QPoint(self.rng.randrange(1, max(2, widget.width() - 1)), self.rng.randrange(1, max(2, widget.height() - 1)))

    # -- input ------------------------------------------------------------------------------------------------
    @staticmethod
    def _mouse(target: QWidget, kind: QEvent.Type, point: QPoint, button, buttons) -> None:
        ev = QMouseEvent(kind, QPointF(point), QPointF(target.mapToGlobal(point)), button, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(target, ev)

    def _drag(self, target: QWidget, start: QPoint, what: str) -> str:
        left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
        self._mouse(target, QEvent.Type.MouseButtonPress, start, left, left)
        point = QPointF(start)
        steps = self.rng.randrange(2, 12)
        switch_at = self.rng.randrange(steps) if self.rng.random() < 0.15 else -1
        for k in range(steps):
            point += QPointF(self.rng.uniform(-40, 40), self.rng.uniform(-40, 40))
            self._mouse(target, QEvent.Type.MouseMove, point.toPoint(), none, left)
            QTest.qWait(self.rng.randrange(0, 20))
            if k == switch_at:
                self._switch_model()
        self._mouse(target, QEvent.Type.MouseButtonRelease, point.toPoint(), left, none)
        return f"drag from {what} at ({start.x()}, {start.y()}) in {steps} moves" + (
            ", switching models halfway" if switch_at >= 0 else "")

    def _switch_model(self) -> str:
        picker = self.window.picker
        picker.setFocus()
        key = self.rng.choice((Qt.Key.Key_Down, Qt.Key.Key_Up))
        QTest.keyClick(picker, key)
        return f"model switch ({'down' if key == Qt.Key.Key_Down else 'up'}) -> {picker.currentText()!r}"

    def step(self) -> None:
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        what = getattr(self, f"_do_{kind.replace('-', '_')}")()
        self.count += 1
        self.last.append(f"{self.count}: {what}")
        self._close_popups()

    def _do_drag(self) -> str:
        choice = self.rng.random()
        probes, sliders = self._probe_points(), self._slider_points()
        if choice < 0.45 and probes:
            target, start = self.rng.choice(probes)
            return self._drag(target, start, "a probe")
        if choice < 0.75 and sliders:
            target, start = self.rng.choice(sliders)
            return self._drag(target, start, f"slider {target.objectName() or type(target).__name__}")
        canvases = self._canvases()
        widgets = [c.viewport() for c in canvases] or self._visible()
        if not widgets:
            return "drag: nothing to drag on"
        target = self.rng.choice(widgets)
        return self._drag(target, self._random_point(target), f"empty space of {type(target.parent()).__name__}")

    def _click_target(self) -> QWidget | None:
        widgets = self._visible()
        if not widgets:
            return None
        target = self.rng.choice(widgets)
        return target.viewport() if isinstance(target, pg.GraphicsView) else target

    def _do_click(self) -> str:
        target = self._click_target()
        if target is None:
            return "click: nothing visible"
        point = self._random_point(target)
        if isinstance(target, QAbstractButton) and self.rng.random() < 0.7:
            point = target.rect().center()                      # buttons are for pressing
        button = Qt.MouseButton.LeftButton if self.rng.random() < 0.9 else Qt.MouseButton.RightButton
        self._mouse(target, QEvent.Type.MouseButtonPress, point, button, button)
        self._mouse(target, QEvent.Type.MouseButtonRelease, point, button, Qt.MouseButton.NoButton)
        return f"click ({button.name}) on {type(target).__name__} {target.objectName()!r} at ({point.x()}, {point.y()})"

    def _do_double(self) -> str:
        target = self._click_target()
        if target is None:
            return "double click: nothing visible"
        point = self._random_point(target)
        left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
        for kind, buttons in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none),
                              (QEvent.Type.MouseButtonDblClick, left), (QEvent.Type.MouseButtonRelease, none)):
            self._mouse(target, kind, point, left, buttons)
        return f"double click on {type(target).__name__} at ({point.x()}, {point.y()})"

    def _do_wheel(self) -> str:
        target = self._click_target()
        if target is None:
            return "wheel: nothing visible"
        point = self._random_point(target)
        delta = self.rng.choice((-360, -120, 120, 360))
        ev = QWheelEvent(QPointF(point), QPointF(target.mapToGlobal(point)), QPoint(0, 0), QPoint(0, delta),
                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                         False)
        QApplication.sendEvent(target, ev)
        return f"wheel {delta:+d} on {type(target).__name__} at ({point.x()}, {point.y()})"

    def _do_key(self) -> str:
        key = self.rng.choice(KEYS)
        target = QApplication.focusWidget()
        if target is None or target is self.window.picker or not self.page.isAncestorOf(target):
            widgets = self._visible()
            target = self.rng.choice(widgets) if widgets else self.page
            target.setFocus()
        QTest.keyClick(target, key)
        return f"key {key.name} on {type(target).__name__}"

    def _do_switch(self) -> str:
        return self._switch_model()

    def _do_bad_file(self) -> str:
        self.window.open_dialog()                  # File > Open; the (patched) dialog answers with a bad file
        return f"File > Open {self.bad_file}"

    def _do_resize(self) -> str:
        w, h = self.rng.randrange(640, 1600), self.rng.randrange(420, 1000)
        self.window.resize(w, h)
        return f"resize to {w}x{h}"

    def run(self, seconds: float) -> MonkeyReport:
        """Play for `seconds`. A menu or dialog that runs its own event loop is closed by a watchdog timer (it
        fires inside that loop too), as a user would press Escape, so no popup can stall the run."""
        watchdog = QTimer()
        watchdog.setInterval(60)
        watchdog.timeout.connect(self._close_popups)
        watchdog.start()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.step()
                QTest.qWait(self.rng.randrange(2, 30))
        finally:
            watchdog.stop()
            self._close_popups()
        return MonkeyReport(self.seed, self.count, list(self.last))

    def _close_popups(self) -> None:
        for widget in (QApplication.activePopupWidget(), QApplication.activeModalWidget()):
            if widget is not None and widget is not self.window:
                self.last.append(f"(closed {type(widget).__name__} {widget.windowTitle()!r})")
                widget.close()
