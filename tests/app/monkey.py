"""A seeded monkey for the real window: random but replayable user input, sent through Qt's event system.

What it does, in proportions a restless user might: drags that start on probes, on what plots and images show,
on slider handles or on empty space (sometimes switching models halfway), clicks, double clicks and wheel turns,
half of them on what a plot or an image shows (a dot, a point of a curve, a picture) and the rest on any visible
widget of the view, key presses, model switches in the picker (by keyboard, as a user would), File > Open of a bad
file, and window resizes. Every action is described in a line, so a failure can say what led to it.
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
DATA_ITEMS = (pg.ImageItem, pg.ScatterPlotItem, pg.PlotDataItem, pg.PlotCurveItem, pg.BarGraphItem)
ON_DATA = 0.5          # the share of clicks, double clicks and wheel turns aimed at what a plot or image shows


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

    def _data_spots(self) -> list[tuple[QWidget, QPoint, str]]:
        """A spot on each visible thing a plot or an image shows: a dot of a scatter or a point of a curve (one
        of its own, at random), or a random point of a picture or a bar chart; (viewport, point, description)."""
        spots = []
        for canvas in self._canvases():
            viewport = canvas.viewport()
            for item in canvas.scene().items():
                if not isinstance(item, DATA_ITEMS) or not item.isVisible():
                    continue
                scene_pos = self._spot_on(item)
                if scene_pos is None:
                    continue
                p = canvas.mapFromScene(scene_pos)
                if viewport.rect().adjusted(1, 1, -1, -1).contains(p):
                    spots.append((viewport, p, type(item).__name__))
        return spots

    def _spot_on(self, item) -> QPointF | None:
        """A scene point on `item`'s data, or None if it shows nothing."""
        xs = ys = None
        if isinstance(item, pg.ScatterPlotItem):
            xs, ys = item.data["x"], item.data["y"]
        elif isinstance(item, (pg.PlotDataItem, pg.PlotCurveItem)):
            xs, ys = item.getData()
        if xs is not None and ys is not None and len(xs):
            i = self.rng.randrange(len(xs))
            x, y = float(xs[i]), float(ys[i])
            if x == x and y == y and abs(x) < 1e12 and abs(y) < 1e12:     # NaN pads a curve's gaps
                return item.mapToScene(QPointF(x, y))
            return None
        if isinstance(item, (pg.ImageItem, pg.BarGraphItem)):
            if isinstance(item, pg.ImageItem) and item.image is None:
                return None
            rect = item.boundingRect()
            if rect.width() <= 0 or rect.height() <= 0:
                return None
            return item.mapToScene(QPointF(rect.left() + self.rng.random() * rect.width(),
                                           rect.top() + self.rng.random() * rect.height()))
        return None

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
        return QPoint(self.rng.randrange(1, max(2, widget.width() - 1)),
                      self.rng.randrange(1, max(2, widget.height() - 1)))

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
        if choice < 0.35 and probes:
            target, start = self.rng.choice(probes)
            return self._drag(target, start, "a probe")
        if choice < 0.65:
            spots = self._data_spots()
            if spots:
                target, start, what = self.rng.choice(spots)
                return self._drag(target, start, f"a {what}")
        if choice < 0.85 and sliders:
            target, start = self.rng.choice(sliders)
            return self._drag(target, start, f"slider {target.objectName() or type(target).__name__}")
        canvases = self._canvases()
        widgets = [c.viewport() for c in canvases] or self._visible()
        if not widgets:
            return "drag: nothing to drag on"
        target = self.rng.choice(widgets)
        return self._drag(target, self._random_point(target), f"empty space of {type(target.parent()).__name__}")

    def _click_target(self) -> tuple[QWidget, QPoint, str] | None:
        """Where to click: half the time a spot on what a plot or an image shows, else any visible widget."""
        if self.rng.random() < ON_DATA:
            spots = self._data_spots()
            if spots:
                target, point, what = self.rng.choice(spots)
                return target, point, f"a {what} in {type(target.parent()).__name__}"
        widgets = self._visible()
        if not widgets:
            return None
        target = self.rng.choice(widgets)
        target = target.viewport() if isinstance(target, pg.GraphicsView) else target
        point = self._random_point(target)
        if isinstance(target, QAbstractButton) and self.rng.random() < 0.7:
            point = target.rect().center()                      # buttons are for pressing
        return target, point, f"{type(target).__name__} {target.objectName()!r}"

    def _do_click(self) -> str:
        aim = self._click_target()
        if aim is None:
            return "click: nothing visible"
        target, point, what = aim
        button = Qt.MouseButton.LeftButton if self.rng.random() < 0.9 else Qt.MouseButton.RightButton
        self._mouse(target, QEvent.Type.MouseButtonPress, point, button, button)
        self._mouse(target, QEvent.Type.MouseButtonRelease, point, button, Qt.MouseButton.NoButton)
        return f"click ({button.name}) on {what} at ({point.x()}, {point.y()})"

    def _do_double(self) -> str:
        aim = self._click_target()
        if aim is None:
            return "double click: nothing visible"
        target, point, what = aim
        left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
        for kind, buttons in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none),
                              (QEvent.Type.MouseButtonDblClick, left), (QEvent.Type.MouseButtonRelease, none)):
            self._mouse(target, kind, point, left, buttons)
        return f"double click on {what} at ({point.x()}, {point.y()})"

    def _do_wheel(self) -> str:
        aim = self._click_target()
        if aim is None:
            return "wheel: nothing visible"
        target, point, _ = aim
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
