"""The live loss plot of the train page: every step's loss and a smoothed curve through them.

The view's range is set here rather than left to pyqtgraph's auto-range: with one point (or a flat
loss) auto-range makes a span of almost nothing around it, so the loss axis reads 14.18828964233402
in every tick and the step axis runs into negative steps. Steps start at 0; the loss span is never
narrower than a few percent of the loss, and tick labels have at most four significant digits.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from studio.ui.wizard.loss_history import LossHistory

_RAW_COLOR = QColor(47, 109, 181, 120)
_SMOOTH_PEN = pg.mkPen("#d62728", width=2)
# Symbols make single early steps visible; past this many points they only clutter (and slow) the
# plot, and the raw series is drawn as a faint line instead.
_MAX_SYMBOLS = 400
# The step axis shows at least this many steps, so the first few points do not fill the width.
_MIN_STEPS_SHOWN = 10
# The loss axis spans at least this fraction of the loss (and at least _MIN_LOSS_SPAN), so four
# significant digits always tell its ticks apart.
_MIN_LOSS_FRACTION = 0.1
_MIN_LOSS_SPAN = 1e-3


class LossAxis(pg.AxisItem):
    """A value axis whose tick labels have at most four significant digits."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        return [f"{value * scale:.4g}" for value in values]


class StepAxis(pg.AxisItem):
    """The optimizer-step axis: whole steps as integers (10000, never 1e+04)."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        labels = []
        for value in values:
            value *= scale
            labels.append(str(round(value)) if abs(value - round(value)) < 1e-6 else f"{value:.4g}")
        return labels


def view_ranges(steps: np.ndarray, values: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (step, loss) ranges that show these points: steps from 0, a loss span that is never empty."""
    last = float(steps.max())
    x_max = max(float(_MIN_STEPS_SHOWN), last + max(1.0, 0.03 * last))
    low, high = float(values.min()), float(values.max())
    span = max(high - low, _MIN_LOSS_FRACTION * max(abs(low), abs(high)), _MIN_LOSS_SPAN)
    middle = (low + high) / 2
    pad = 0.08 * span
    return (0.0, x_max), (middle - span / 2 - pad, middle + span / 2 + pad)


class LossPlot(pg.PlotWidget):
    """Draws a LossHistory: raw per-step loss (faint) and its EMA (bold)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background="w", axisItems={"left": LossAxis("left"), "bottom": StepAxis("bottom")})
        self.history = LossHistory()
        item = self.getPlotItem()
        item.setLabel("bottom", "optimizer step")
        item.setLabel("left", "loss")
        item.showGrid(x=True, y=True, alpha=0.15)
        self.setMenuEnabled(False)
        # Panning or zooming never shows steps before the first one.
        item.getViewBox().setLimits(xMin=0)
        self.setMinimumHeight(220)
        self.addLegend(offset=(-10, 10))
        self._raw = self.plot(
            [], [], pen=None, symbol="o", symbolSize=5, symbolPen=None, symbolBrush=_RAW_COLOR, name="loss per step"
        )
        self._smooth = self.plot([], [], pen=_SMOOTH_PEN, name="smoothed (EMA)")
        self._hint = pg.TextItem(
            "The loss appears here after the first training step", color="#8a93a0", anchor=(0.5, 0.5)
        )
        self.addItem(self._hint, ignoreBounds=True)
        self.refresh()

    # --- data ------------------------------------------------------------------------------------------------

    def add(self, step: int, loss: float | None) -> None:
        self.history.add(step, loss)
        self.refresh()

    def truncate(self, after_step: int) -> None:
        self.history.truncate(after_step)
        self.refresh()

    def clear_points(self) -> None:
        self.history.clear()
        self.refresh()

    def load(self, rows: list[tuple[int, float | None]]) -> None:
        self.history.clear()
        for step, loss in rows:
            self.history.add(step, loss)
        self.refresh()

    def raw_points(self) -> tuple[np.ndarray, np.ndarray]:
        """What the raw series shows, read back from the plot item itself."""
        x, y = self._raw.getData()
        empty = np.zeros(0)
        return (empty, empty) if x is None else (np.asarray(x), np.asarray(y))

    def smoothed_points(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._smooth.getData()
        empty = np.zeros(0)
        return (empty, empty) if x is None else (np.asarray(x), np.asarray(y))

    # --- drawing ----------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        steps = np.asarray(self.history.steps, dtype=float)
        losses = np.asarray(self.history.losses, dtype=float)
        if len(steps) <= _MAX_SYMBOLS:
            self._raw.setSymbol("o")
            self._raw.setPen(None)
        else:
            self._raw.setSymbol(None)
            self._raw.setPen(pg.mkPen(_RAW_COLOR, width=1))
        self._raw.setData(steps, losses)
        self._smooth.setData(steps, np.asarray(self.history.smoothed, dtype=float))
        empty = not len(steps)
        self._hint.setVisible(empty)
        if empty:
            self.setXRange(0, 10, padding=0)
            self.setYRange(0, 1, padding=0)
            self._hint.setPos(5, 0.5)
        else:
            values = np.concatenate([losses, np.asarray(self.history.smoothed, dtype=float)])
            (x0, x1), (y0, y1) = view_ranges(steps, values)
            self.setXRange(x0, x1, padding=0)
            self.setYRange(y0, y1, padding=0)

    def view_range(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The (step, loss) ranges the plot shows now."""
        (x0, x1), (y0, y1) = self.getPlotItem().getViewBox().viewRange()
        return (x0, x1), (y0, y1)

    def tick_labels(self, axis: str) -> list[str]:
        """The tick labels `axis` ("left" or "bottom") draws for the range shown now."""
        axis_item = self.getPlotItem().getAxis(axis)
        low, high = self.getPlotItem().getViewBox().viewRange()[0 if axis == "bottom" else 1]
        size = axis_item.height() if axis == "left" else axis_item.width()
        labels = []
        for spacing, values in axis_item.tickValues(low, high, max(size, 1.0)):
            labels += axis_item.tickStrings(values, axis_item.autoSIPrefixScale, spacing)
        return labels
