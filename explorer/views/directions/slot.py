"""One slider of the Directions tab: which direction it moves along, how far (-3 sigma ... +3 sigma), and the
classifier's label and confidence along it, with the point where the label flips marked."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QSizePolicy, QSlider, QWidget

from ...engine.jobs.directions import DirectionData, flip_point
from ..widgets.palette import class_rgb
from .picks import SLIDER_RANGE

TICKS = 100                      # slider ticks per sigma
NONE = "(no direction)"


class LabelLine:
    """The label along one slider: a dot per step (-3 sigma ... +3 sigma) at the classifier's confidence, in its
    class's colour; a dashed line where the label flips; a line at the slider's value."""

    def __init__(self) -> None:
        self.widget = pg.PlotWidget(background=None)
        self.widget.setMenuEnabled(False)
        self.widget.setMouseEnabled(x=False, y=False)
        self.widget.hideButtons()
        self.widget.setFixedHeight(56)
        self.widget.setXRange(-SLIDER_RANGE, SLIDER_RANGE, padding=0.02)
        self.widget.setYRange(0.0, 1.0, padding=0.05)
        self.widget.getAxis("left").setTicks([[(0.0, "0"), (1.0, "1")]])
        self.widget.getAxis("bottom").setStyle(showValues=False)
        self.dots = pg.ScatterPlotItem(size=7, pen=None)
        self.widget.addItem(self.dots)
        ink = pg.getConfigOption("foreground")
        dash = pg.mkPen(ink, width=1, style=Qt.PenStyle.DashLine)
        self.flips = [pg.InfiniteLine(angle=90, pen=dash), pg.InfiniteLine(angle=90, pen=dash)]
        for line in self.flips:
            line.setVisible(False)
            self.widget.addItem(line)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(ink, width=1))
        self.widget.addItem(self.cursor)
        self.flip_at: tuple[float | None, float | None] = (None, None)

    def draw(self, amounts: np.ndarray | None, labels: np.ndarray | None, confidences: np.ndarray | None,
             start: float) -> None:
        if amounts is None or labels is None or confidences is None:
            self.dots.setData([], [])
            self.flip_at = (None, None)
        else:
            brushes = [pg.mkBrush(*class_rgb(int(k))) for k in labels]
            self.dots.setData(np.asarray(amounts, float), np.asarray(confidences, float), brush=brushes)
            self.flip_at = flip_point(amounts, labels, start)
        for line, at in zip(self.flips, self.flip_at):
            line.setVisible(at is not None)
            if at is not None:
                line.setValue(at)

    def set_value(self, value: float) -> None:
        self.cursor.setValue(value)


class SliderSlot(QWidget):
    """A direction picker, a slider in sigma and the label line under it. `moved` fires on every value (a drag
    decodes live), `settled` once a drag ends or a value is typed in (the label lines are redone then)."""

    moved = Signal()
    settled = Signal()

    def __init__(self, number: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.number = number
        self.combo = QComboBox()
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumContentsLength(14)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(-SLIDER_RANGE * TICKS), int(SLIDER_RANGE * TICKS))
        self.slider.setSingleStep(TICKS // 10)
        self.slider.setPageStep(TICKS // 2)
        self.slider.setToolTip("How far to move, in σ: the spread of the data's codes along this direction")
        self.value_label = QLabel("+0.00σ")
        self.value_label.setFixedWidth(self.value_label.fontMetrics().horizontalAdvance("−3.00σ  ") + 4)
        self.text = QLabel("")
        self.text.setObjectName("panelCaption")
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.line = LabelLine()
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(1)
        grid.addWidget(QLabel(f"{number + 1}"), 0, 0)
        grid.addWidget(self.combo, 0, 1)
        grid.addWidget(self.slider, 0, 2)
        grid.addWidget(self.value_label, 0, 3)
        grid.addWidget(self.line.widget, 1, 2)
        grid.addWidget(self.text, 2, 1, 1, 3)
        grid.setColumnStretch(2, 3)
        grid.setColumnStretch(1, 2)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(150)
        self._settle.timeout.connect(self.settled)
        self.slider.valueChanged.connect(self._changed)
        self.slider.sliderReleased.connect(self.settled)
        self.combo.currentIndexChanged.connect(lambda _: self._chosen())
        self.set_directions([])

    # -- the direction ---------------------------------------------------------------------------------------
    def set_directions(self, directions: list[DirectionData], keep: int | None = None) -> None:
        """List the directions; keep the one at index `keep` (or none) chosen without firing a move."""
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(NONE, -1)
        for i, d in enumerate(directions):
            self.combo.addItem(d.name, i)
            self.combo.setItemData(i + 1, f"{d.kind}: {d.source}", Qt.ItemDataRole.ToolTipRole)
        self.combo.setCurrentIndex(0 if keep is None or keep < 0 or keep >= len(directions) else keep + 1)
        self.combo.blockSignals(False)
        self._enable()

    @property
    def direction_index(self) -> int:
        """The chosen direction's index in the list; -1 for none."""
        data = self.combo.currentData()
        return -1 if data is None else int(data)

    def choose(self, index: int) -> None:
        self.combo.setCurrentIndex(index + 1 if index >= 0 else 0)

    def _chosen(self) -> None:
        self._enable()
        self.moved.emit()
        self.settled.emit()

    def _enable(self) -> None:
        active = self.direction_index >= 0
        self.slider.setEnabled(active)
        self.line.widget.setVisible(active)
        if not active:
            self.text.setText("")

    # -- the amount ------------------------------------------------------------------------------------------
    @property
    def value(self) -> float:
        """The slider's amount in sigma."""
        return self.slider.value() / TICKS

    def set_value(self, amount: float) -> None:
        self.slider.setValue(round(max(-SLIDER_RANGE, min(SLIDER_RANGE, float(amount))) * TICKS))

    def set_value_quietly(self, amount: float) -> None:
        """Set the amount without asking for a picture (the caller asks once for all sliders)."""
        self.slider.blockSignals(True)
        self.set_value(amount)
        self.slider.blockSignals(False)
        self._show_value()

    def _show_value(self) -> None:
        v = self.value
        self.value_label.setText(f"{'+' if v >= 0 else '−'}{abs(v):.2f}σ")
        self.line.set_value(v)

    def _changed(self, _ticks: int) -> None:
        self._show_value()
        self.moved.emit()
        if not self.slider.isSliderDown():
            self._settle.start()          # keys and programmatic moves: redo the label lines once they pause
