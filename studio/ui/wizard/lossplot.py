"""The live loss plot of the train page: every step's loss and a smoothed curve through them."""

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


class LossPlot(pg.PlotWidget):
    """Draws a LossHistory: raw per-step loss (faint) and its EMA (bold)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background="w")
        self.history = LossHistory()
        item = self.getPlotItem()
        item.setLabel("bottom", "optimizer step")
        item.setLabel("left", "loss")
        item.showGrid(x=True, y=True, alpha=0.15)
        self.setMenuEnabled(False)
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
            self.enableAutoRange()
