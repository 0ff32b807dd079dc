"""The arrange view: the timeline's lanes above the waveform, on one time axis, with one scroll bar.

Both views draw from the same TimeAxis, so zooming or scrolling either moves both; the waveform keeps
the timeline's gutter as its left margin (and the lanes' scroll bar width as its right margin), so a
clip and its audio are at the same x on screen.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QScrollBar, QVBoxLayout, QWidget

from studio.ui.time_axis import TimeAxis
from studio.ui.timeline import GUTTER, TimelineView
from studio.ui.waveform import WaveformView

# The scroll bar works in milliseconds (an int range covers 596 hours).
_SCROLL_UNITS_PER_SECOND = 1000


class ArrangeView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.axis = TimeAxis(self)
        self.timeline = TimelineView(self.axis)
        self.waveform = WaveformView(self.axis)

        self.lanes = QScrollArea()
        self.lanes.setWidget(self.timeline)
        self.lanes.setWidgetResizable(True)
        self.lanes.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Always on, so the lanes are always as wide as the waveform below them (which leaves the same room).
        self.lanes.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        bar_width = self.lanes.verticalScrollBar().sizeHint().width()

        self.mix_label = QLabel("Mix")
        self.mix_label.setFixedWidth(GUTTER)
        self.mix_label.setIndent(8)
        wave_row = QHBoxLayout()
        wave_row.setContentsMargins(0, 0, bar_width, 0)
        wave_row.setSpacing(0)
        wave_row.addWidget(self.mix_label)
        wave_row.addWidget(self.waveform)

        self.scrollbar = QScrollBar(Qt.Orientation.Horizontal)
        self.scrollbar.valueChanged.connect(self._on_scrolled)
        scroll_row = QHBoxLayout()
        scroll_row.setContentsMargins(GUTTER, 0, bar_width, 0)
        scroll_row.addWidget(self.scrollbar)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.lanes)
        layout.addLayout(wave_row, 1)
        layout.addLayout(scroll_row)
        self.axis.changed.connect(self._sync_scrollbar)
        self._sync_scrollbar()
        self.timeline.lanes_changed.connect(self._fit_lanes)
        self._fit_lanes()

    def _fit_lanes(self) -> None:
        """The lanes take the height they need (up to five lanes; more scroll); the waveform the rest."""
        frame = 2 * self.lanes.frameWidth()
        wanted = self.timeline.sizeHint().height() + frame
        # At most what the lanes need; at least one lane, so a small window squeezes the lanes (they scroll)
        # rather than painting the waveform over them.
        self.lanes.setMaximumHeight(min(wanted, self.timeline.height_for_lanes(5) + frame))
        self.lanes.setMinimumHeight(min(wanted, self.timeline.height_for_lanes(1) + frame))

    def _sync_scrollbar(self) -> None:
        axis = self.axis
        self.scrollbar.blockSignals(True)
        self.scrollbar.setRange(0, int(axis.max_start() * _SCROLL_UNITS_PER_SECOND))
        self.scrollbar.setPageStep(max(1, int((axis.end - axis.start) * _SCROLL_UNITS_PER_SECOND)))
        self.scrollbar.setSingleStep(max(1, int(60 / axis.pixels_per_second * _SCROLL_UNITS_PER_SECOND)))
        self.scrollbar.setValue(int(axis.start * _SCROLL_UNITS_PER_SECOND))
        self.scrollbar.blockSignals(False)

    def _on_scrolled(self, value: int) -> None:
        self.axis.scroll_to(value / _SCROLL_UNITS_PER_SECOND)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        # pyqtgraph's view must drop its scene before Qt deletes the widgets (see MainWindow.shutdown): an
        # arrange view closed on its own (a test, the bench) closes its waveform too.
        self.waveform.close()
        super().closeEvent(event)

    def anchor_seconds(self) -> float | None:
        """The time under the mouse when it is over either view (where keyboard zoom should centre)."""
        for view, left in ((self.timeline, GUTTER), (self.waveform, 0)):
            pos = view.mapFromGlobal(QCursor.pos())
            if view.rect().contains(pos) and pos.x() >= left:
                return self.axis.seconds_at(pos.x() - left)
        return None
