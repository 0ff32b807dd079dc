"""The waveform view: rendered audio as it arrives, segment regions, a playhead, click to seek."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor

from studio.audio.buffers import GrowingAudio
from studio.core.peaks import PeakPyramid
from studio.core.plan import SAMPLE_RATE

pg.setConfigOptions(antialias=False, background="w", foreground="#444")

_WAVE_PEN = pg.mkPen("#2f6db5", width=1)
_PLAYHEAD_PEN = pg.mkPen("#d62728", width=2)
_SPEECH_BRUSH = QColor(47, 109, 181, 28)
_PAUSE_BRUSH = QColor(128, 128, 128, 22)
_SELECTED_BRUSH = QColor(255, 190, 60, 70)
_REDRAW_MS = 100


class WaveformView(pg.PlotWidget):
    """Draws a GrowingAudio through a min/max pyramid; only the visible range is ever drawn."""

    seek_requested = Signal(int)  # a sample position the user clicked

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.audio = GrowingAudio(SAMPLE_RATE)
        self.pyramid = PeakPyramid()
        self.setMouseEnabled(x=True, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setYRange(-1.0, 1.0, padding=0.02)
        self.getPlotItem().hideAxis("left")
        self.getPlotItem().setLabel("bottom", "time", units="s")
        self.setMinimumHeight(110)
        self._curve = pg.PlotCurveItem(pen=_WAVE_PEN, connect="pairs")
        self.addItem(self._curve)
        self.playhead = pg.InfiniteLine(pos=0, angle=90, pen=_PLAYHEAD_PEN, movable=False)
        self.playhead.setZValue(10)
        self.addItem(self.playhead)
        # Segment backgrounds are one bar-graph item, not an item per segment: with an item each, an
        # hour-long render's hundreds of regions made every repaint of the view slow.
        self._segments: list[tuple[int, int, int, bool]] = []  # (start, end, line, pause)
        self._labels: list[pg.TextItem] = []
        self._bars = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], brush=_SPEECH_BRUSH, pen=None)
        self._bars.setZValue(-10)
        self.addItem(self._bars)
        self._selected: int | None = None
        self.getViewBox().sigXRangeChanged.connect(self._redraw)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._follow_end = True
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(_REDRAW_MS)
        self._redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self._hint = pg.TextItem("Rendered audio appears here while it renders", color="#8a93a0", anchor=(0.5, 0.5))
        self.addItem(self._hint)
        self._show_empty()

    def _show_empty(self) -> None:
        self.setXRange(0, 10, padding=0)
        self._hint.setPos(5, 0)
        self._hint.setVisible(True)

    # --- data ----------------------------------------------------------------------------------------

    def reset(self, sample_rate: int) -> None:
        self.audio = GrowingAudio(sample_rate)
        self.pyramid = PeakPyramid()
        for label in self._labels:
            self.removeItem(label)
        self._labels.clear()
        self._segments.clear()
        self._update_bars()
        self._selected = None
        self._follow_end = True
        self.set_playhead(0)
        self._curve.setData([], [])
        self._show_empty()

    def append(self, samples: np.ndarray) -> tuple[int, int]:
        """Append rendered samples; returns the sample range they occupy."""
        old = len(self.audio)
        self._hint.setVisible(False)
        start, end = self.audio.append(samples)
        self.pyramid.update(self.audio.view(), old)
        # Chunks can arrive many times a second; the view is redrawn at most every _REDRAW_MS so a
        # streaming render never spends the UI thread on frames nobody sees.
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()
        return start, end

    def _on_redraw_timer_timeout(self) -> None:
        if self._follow_end and len(self.audio):
            self.setXRange(0, max(self.audio.seconds, 1.0), padding=0.01)
        self._redraw()

    def flush(self) -> None:
        """Draw pending audio now (before a screenshot or a test looks at the view)."""
        if self._redraw_timer.isActive():
            self._redraw_timer.stop()
            self._on_redraw_timer_timeout()

    def add_segment(self, start: int, end: int, label: str, *, line: int, pause: bool = False) -> None:
        rate = self.audio.sample_rate
        self._segments.append((start, end, line, pause))
        if label:
            text = pg.TextItem(label, color="#555", anchor=(0, 0))
            text.setPos(start / rate, 1.0)
            self.addItem(text)
            self._labels.append(text)
        self._update_bars()

    def select_line(self, line: int | None) -> None:
        """Highlight the segments of one script line (the clip being played or selected)."""
        if line != self._selected:
            self._selected = line
            self._update_bars()

    def _update_bars(self) -> None:
        rate = self.audio.sample_rate
        segments = self._segments
        brushes = [
            _SELECTED_BRUSH if line == self._selected else (_PAUSE_BRUSH if pause else _SPEECH_BRUSH)
            for _start, _end, line, pause in segments
        ]
        self._bars.setOpts(
            x0=[start / rate for start, *_ in segments],
            x1=[end / rate for _start, end, *_ in segments],
            y0=[-1.0] * len(segments),
            y1=[1.0] * len(segments),
            # pyqtgraph cannot take empty per-bar lists; with no segments there is nothing to paint.
            brushes=brushes or None,
            brush=_SPEECH_BRUSH,
            pens=None,
            pen=pg.mkPen(QColor(0, 0, 0, 40)),
        )

    def set_playhead(self, sample: int) -> None:
        self.playhead.setPos(sample / self.audio.sample_rate)

    # --- drawing --------------------------------------------------------------------------------------

    def _redraw(self, *_args) -> None:
        if not len(self.audio):
            return
        rate = self.audio.sample_rate
        (x0, x1), _ = self.getViewBox().viewRange()
        columns = max(200, int(self.width()))
        x, mins, maxs = self.pyramid.envelope(self.audio.view(), int(x0 * rate), int(x1 * rate) + 1, columns)
        if not len(x):
            self._curve.setData([], [])
            return
        if mins is maxs:
            # Zoomed in below one pyramid block per column (any view shorter than about 3 s): the
            # envelope is the raw samples, min == max, and min-to-max bars would have no length at
            # all. Drawn as a line through the samples instead.
            self._curve.setData(x / rate, mins, connect="all")
            return
        # Each column is one vertical segment from min to max: "pairs" draws every second gap.
        xs = np.repeat(x / rate, 2)
        ys = np.empty(2 * len(mins), dtype=np.float32)
        ys[0::2] = mins
        ys[1::2] = maxs
        self._curve.setData(xs, ys, connect="pairs")

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.getViewBox().mapSceneToView(event.scenePos())
        sample = int(max(0.0, point.x()) * self.audio.sample_rate)
        self.seek_requested.emit(min(sample, len(self.audio)))

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        # A user who zooms takes over the view; stop following the end of the render.
        self._follow_end = False
        super().wheelEvent(event)
