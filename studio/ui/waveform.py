"""The waveform view: the project's audio on the shared time axis, the selected line's span, a playhead,
click to seek. Its x range is always the TimeAxis's visible range, so it lines up with the timeline above it."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette

from studio.audio.buffers import GrowingAudio, TimelineAudio
from studio.core.peaks import PeakPyramid
from studio.core.plan import SAMPLE_RATE
from studio.ui.time_axis import TimeAxis, handle_wheel

pg.setConfigOptions(antialias=False)

_PLAYHEAD_PEN = pg.mkPen("#d62728", width=2)
_SELECTED_BRUSH = QColor(255, 190, 60, 70)
_REDRAW_MS = 100


class WaveformView(pg.PlotWidget):
    """Draws a GrowingAudio through a min/max pyramid; only the visible range is ever drawn."""

    seek_requested = Signal(int)  # a sample position the user clicked
    _built = False  # pyqtgraph's constructor sends resize and palette events before ours has run

    def __init__(self, axis: TimeAxis | None = None, parent=None) -> None:
        super().__init__(parent)
        # Alone, the view sets its own axis's width; beside a timeline, the timeline does (same width).
        self._owns_axis = axis is None
        self.axis = axis or TimeAxis(self)
        self.audio = GrowingAudio(SAMPLE_RATE)
        self.pyramid = PeakPyramid()
        # The shared axis decides the x range; pyqtgraph's own panning and zooming would fight it.
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        item = self.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.layout.setContentsMargins(0, 0, 0, 0)
        self.getViewBox().setDefaultPadding(0)
        self.setYRange(-1.0, 1.0, padding=0.02)
        self.setMinimumHeight(90)
        self._curve = pg.PlotCurveItem(connect="pairs")
        self.addItem(self._curve)
        self.playhead = pg.InfiniteLine(pos=0, angle=90, pen=_PLAYHEAD_PEN, movable=False)
        self.playhead.setZValue(10)
        self.addItem(self.playhead)
        # The selected (or playing) line's span: one region item, whatever the project's length.
        self._span = pg.LinearRegionItem(values=(0, 0), movable=False, brush=_SELECTED_BRUSH,
                                         pen=pg.mkPen(None))
        self._span.setZValue(-10)
        self._span.setVisible(False)
        self.addItem(self._span)
        self.highlighted: tuple[float, float] | None = None
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(_REDRAW_MS)
        self._redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self._hint = pg.TextItem("Rendered audio appears here while it renders", anchor=(0.5, 0.5))
        self.addItem(self._hint)
        self.apply_palette()
        self.axis.changed.connect(self._follow_axis)
        self._built = True
        self._follow_axis()
        self._show_empty()

    def apply_palette(self) -> None:
        """Colours from the application's palette, so a dark theme gets a dark waveform."""
        palette = self.palette()
        self.setBackground(palette.color(QPalette.ColorRole.Base))
        self._curve.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Highlight), width=1))
        self._hint.setColor(palette.color(QPalette.ColorRole.PlaceholderText))

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == event.Type.PaletteChange and self._built:
            self.apply_palette()
        super().changeEvent(event)

    def close(self) -> bool:
        self._built = False  # pyqtgraph deletes its items here; later palette or resize events must not reach them
        return super().close()

    def _follow_axis(self) -> None:
        self.setXRange(self.axis.start, self.axis.end, padding=0)
        self._hint.setPos((self.axis.start + self.axis.end) / 2, 0)
        self._redraw()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self._built:
            if self._owns_axis:
                self.axis.set_view_width(self.width())
            self._follow_axis()

    def _show_empty(self) -> None:
        self._hint.setVisible(True)

    # --- data ----------------------------------------------------------------------------------------

    def reset(self, sample_rate: int) -> None:
        self.audio = GrowingAudio(sample_rate)
        self.pyramid = PeakPyramid()
        self.highlight(None)
        self.set_playhead(0)
        self._curve.setData([], [])
        self.axis.set_extent("audio", 0.0)
        self._show_empty()

    def show_timeline(self, audio: TimelineAudio) -> None:
        """Show a project's mix laid out on the timeline (rendered runs with silence between)."""
        self.audio = audio
        self.pyramid = PeakPyramid()
        self._curve.setData([], [])  # nothing of the audio shown before (another project's) stays drawn
        self.highlight(None)
        compact = audio.compact.view()
        self.pyramid.update(compact, 0)
        # Each run's own min and max, for views where runs are narrower than a pixel column.
        if len(audio.run_sources):
            self._run_mins = np.minimum.reduceat(compact, audio.run_sources) if len(compact) else None
            self._run_maxs = np.maximum.reduceat(compact, audio.run_sources) if len(compact) else None
        self._hint.setVisible(not len(audio.run_sources))
        self.axis.set_extent("audio", audio.seconds)
        self._redraw()

    def append(self, samples: np.ndarray) -> tuple[int, int]:
        """Append rendered samples (a render streaming in); returns the sample range they occupy."""
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
        self.axis.set_extent("audio", self.audio.seconds)
        self._redraw()

    def flush(self) -> None:
        """Draw pending audio now (before a screenshot or a test looks at the view)."""
        if self._redraw_timer.isActive():
            self._redraw_timer.stop()
            self._on_redraw_timer_timeout()

    def highlight(self, span: tuple[float, float] | None) -> None:
        """Shade one span of time (seconds): the selected or playing line."""
        if span == self.highlighted:
            return
        self.highlighted = span
        if span is not None:
            self._span.setRegion(span)
        self._span.setVisible(span is not None)

    def set_playhead(self, sample: int) -> None:
        self.playhead.setPos(sample / self.audio.sample_rate)

    # --- drawing --------------------------------------------------------------------------------------

    def _redraw(self, *_args) -> None:
        if not len(self.audio):
            self._curve.setData([], [])
            return
        if isinstance(self.audio, TimelineAudio):
            self._redraw_timeline()
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

    def _redraw_timeline(self) -> None:
        """The visible part of a TimelineAudio: each run's envelope at its place, nothing in the silence."""
        audio = self.audio
        rate = audio.sample_rate
        (x0, x1), _ = self.getViewBox().viewRange()
        start, end = int(x0 * rate), int(x1 * rate) + 1
        runs = audio.runs_overlapping(start, end)
        columns = max(200, int(self.width()))
        if not len(runs):
            self._curve.setData([], [])
            return
        per_column = max(1.0, (end - start) / columns)
        if len(runs) > columns // 2:
            # More runs than pixels (a zoomed-out, partly rendered long project): one column per run.
            index = np.arange(runs.start, runs.stop)
            x = (audio.run_starts[index] + audio.run_lengths[index] / 2) / rate
            self._draw_pairs(x, self._run_mins[index], self._run_maxs[index])
            return
        compact = audio.compact.view()
        xs, mins, maxs, raw = [], [], [], False
        for i in runs:
            run_start, run_source = int(audio.run_starts[i]), int(audio.run_sources[i])
            lo, hi = max(start, run_start), min(end, int(audio.run_ends[i]))
            x, lo_values, hi_values = self.pyramid.envelope(
                compact, run_source + lo - run_start, run_source + hi - run_start,
                max(1, int((hi - lo) / per_column)))
            raw = raw or lo_values is hi_values
            xs.append((x - run_source + run_start) / rate)
            mins.append(lo_values)
            maxs.append(hi_values)
        if raw:
            # Zoomed in to single samples: a line through them, broken (NaN) between runs.
            gap = [np.array([np.nan])]
            x = np.concatenate([part for pair in zip(xs, gap * len(xs), strict=True) for part in pair])
            y = np.concatenate([part for pair in zip(mins, gap * len(mins), strict=True) for part in pair])
            self._curve.setData(x, y, connect="finite")
            return
        self._draw_pairs(np.concatenate(xs), np.concatenate(mins), np.concatenate(maxs))

    def _draw_pairs(self, x: np.ndarray, mins: np.ndarray, maxs: np.ndarray) -> None:
        # Each column is one vertical segment from min to max: "pairs" draws every second gap.
        xs = np.repeat(x, 2)
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
        handle_wheel(self.axis, event, event.position().x())
