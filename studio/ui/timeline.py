"""The timeline: the script's lines as clips on the project's time axis, one lane per voice.

A clip starts where the previous line ended and lasts its rendered duration (or, before rendering, an
estimate from its text, drawn hatched), so the timeline is the project's audio laid out in time, on the
same TimeAxis as the waveform below it. A ruler at the top gives the time, the playhead crosses every
lane. The view is built from `ClipInfo` records the window derives from the script and the render
state; it keeps no script data of its own and reports what the user does through signals.

Drawing cost does not grow with the project: the clips in view are found by binary search over their
start times, and clips narrower than a few pixels (a zoomed-out hour) are drawn as one mark per pixel
column and lane, not one shape each.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QMimeData, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDrag, QFont, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QMenu, QSizePolicy, QToolTip, QWidget

from studio.core.plan import SAMPLE_RATE
from studio.ui.clip_info import Chip, ClipInfo
from studio.ui.palette import emotion_colour
from studio.ui.script_editor import TAG_MIME_TYPE
from studio.ui.time_axis import TimeAxis, format_time, handle_wheel, ruler_step

LINE_MIME_TYPE = "application/x-qtts-line"

RULER_HEIGHT = 24
LANE_HEIGHT = 58
GUTTER = 132  # the lane names; the waveform below keeps the same left margin so times line up
CHIP_HEIGHT = 16
# Below this width a clip is a mark, not a box with text.
_MIN_BOX_PIXELS = 4
_NO_VOICE = "(no voice)"
STATE_COLOURS = {
    "stale": "#9aa5b1",
    "queued": "#6c8ebf",
    "rendering": "#e08a1e",
    "done": "#2a9d4a",
    "cached": "#2a9d4a",
    "failed": "#d62728",
    "locked": "#5b5f97",
    "error": "#d62728",
    "empty": "#c4c9d1",
}
PLAYHEAD_COLOUR = "#d62728"



def clip_emotion(clip: ClipInfo) -> str | None:
    """The emotion a clip is coloured by: its first emotion chip. A directive's or a voice's chip ("pace: slow",
    "voice: Fox") is a "key: value" and colours nothing (an emotion never holds ':', which would make it one)."""
    return next((chip.label for chip in clip.chips if ":" not in chip.label), None)

class TimelineView(QWidget):
    """Sizes itself to its lanes; its width is the time axis's view (plus the gutter)."""

    line_selected = Signal(int)  # line index
    seek_requested = Signal(float)  # seconds
    tag_dropped = Signal(int, str)  # line index, tag text
    chip_remove_requested = Signal(int, int, str)  # line index, column, tag text
    line_moved = Signal(int, int)  # source index, target index
    render_line_requested = Signal(int)
    new_take_requested = Signal(int)
    take_chosen = Signal(int, int)  # line index, take
    play_line_requested = Signal(int)
    lock_toggled = Signal(int)
    copy_line_requested = Signal(int)
    quick_fix_requested = Signal(int, int, str, str)  # line index, column, old text, new text
    lanes_changed = Signal()  # the number of lanes changed (the view's height with it)

    def __init__(self, axis: TimeAxis | None = None, parent=None) -> None:
        super().__init__(parent)
        self.axis = axis or TimeAxis(self)
        self.axis.changed.connect(self.update)
        self.clips: list[ClipInfo] = []
        self.lanes: list[str] = []
        self._lane_of: np.ndarray = np.zeros(0, dtype=np.int32)
        self._starts = np.zeros(0)
        self._ends = np.zeros(0)
        self.start_samples = np.zeros(0, dtype=np.int64)
        self.end_samples = np.zeros(0, dtype=np.int64)
        self._samples = np.zeros(0, dtype=np.int64)  # each clip's length in samples
        self.selected: int | None = None
        self.playhead_seconds: float | None = None
        self.playing_line: int | None = None
        self._press: QPoint | None = None
        self._drop_row: int | None = None
        self._chip_rects: list[tuple[QRect, int, Chip]] = []
        self.last_menu: QMenu | None = None  # the clip menu shown last (a popup)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._font = QFont(self.font())
        self._small = QFont(self.font())
        self._small.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.85))

    # --- data ----------------------------------------------------------------------------------------

    def set_clips(self, clips: list[ClipInfo], lanes: list[str | None] | None = None) -> None:
        """Show `clips` (every line, in script order) in `lanes` (voice names, top to bottom); a voice
        not named in `lanes` gets a lane of its own after them."""
        self.clips = clips
        names = [lane or _NO_VOICE for lane in (lanes or [])]
        index = {name: i for i, name in enumerate(names)}
        lane_of = np.empty(len(clips), dtype=np.int32)
        for i, clip in enumerate(clips):
            name = clip.voice or _NO_VOICE
            if name not in index:
                index[name] = len(names)
                names.append(name)
            lane_of[i] = index[name]
        lanes_before = len(self.lanes)
        self.lanes = names or [_NO_VOICE]
        self._lane_of = lane_of
        self._layout_times()
        if self.selected is not None and self.selected >= len(clips):
            self.selected = len(clips) - 1 if clips else None
        self.updateGeometry()
        self.update()
        if len(self.lanes) != lanes_before:
            self.lanes_changed.emit()

    def update_clips(self, changed: dict[int, ClipInfo]) -> bool:
        """Replace some clips in place (the lines that changed). Returns False when a clip moved to a
        voice without a lane (the caller then calls set_clips)."""
        index = {name: i for i, name in enumerate(self.lanes)}
        for i, clip in changed.items():
            lane = index.get(clip.voice or _NO_VOICE)
            if lane is None or not (0 <= i < len(self.clips)):
                return False
            self.clips[i] = clip
            self._lane_of[i] = lane
            self._samples[i] = round(clip.seconds * SAMPLE_RATE)
        self._layout_times(recount=False)
        self.update()
        return True

    def _layout_times(self, *, recount: bool = True) -> None:
        if recount:
            self._samples = self.clip_samples()
        samples = self._samples
        self.end_samples = np.cumsum(samples)
        self.start_samples = self.end_samples - samples
        self._ends = self.end_samples / SAMPLE_RATE
        self._starts = self.start_samples / SAMPLE_RATE
        self.axis.set_extent("clips", self.total_seconds)

    def clip_samples(self) -> np.ndarray:
        """Each clip's length in whole samples: the project's mix is built from the same numbers, so a
        clip and its audio start at exactly the same time."""
        seconds = np.fromiter((clip.seconds for clip in self.clips), dtype=np.float64, count=len(self.clips))
        return np.round(seconds * SAMPLE_RATE).astype(np.int64)

    @property
    def starts(self) -> list[float]:
        return self._starts.tolist()

    def start_of(self, index: int) -> float:
        return float(self._starts[index])

    def end_of(self, index: int) -> float:
        return float(self._ends[index])

    @property
    def total_seconds(self) -> float:
        return float(self._ends[-1]) if len(self._ends) else 0.0

    def line_at_time(self, seconds: float) -> int | None:
        """The line whose clip covers `seconds` (the last line at or after the end)."""
        if not self.clips:
            return None
        index = int(np.searchsorted(self._ends, seconds, side="right"))
        return min(index, len(self.clips) - 1)

    def height_for_lanes(self, lanes: int) -> int:
        return RULER_HEIGHT + LANE_HEIGHT * max(1, lanes) + 2

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(GUTTER + 600, self.height_for_lanes(len(self.lanes)))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return self.sizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self.axis.set_view_width(self.width() - GUTTER)

    def select(self, index: int | None, *, emit: bool = True) -> None:
        if index is not None and not (0 <= index < len(self.clips)):
            return
        changed = index != self.selected
        self.selected = index
        self.update()
        if index is not None:
            self.ensure_visible(index)
            if emit and changed:
                self.line_selected.emit(index)

    def ensure_visible(self, index: int) -> None:
        start, end = self.start_of(index), self.end_of(index)
        if end < self.axis.start or start > self.axis.end:
            self.axis.ensure_visible(start)

    def set_playhead(self, seconds: float | None, playing_line: int | None) -> None:
        if seconds == self.playhead_seconds and playing_line == self.playing_line:
            return
        self.playhead_seconds = seconds
        self.playing_line = playing_line
        self.update()

    # --- geometry -----------------------------------------------------------------------------------

    def x_of(self, seconds: float) -> float:
        return GUTTER + self.axis.x_of(seconds)

    def lane_top(self, lane: int) -> int:
        return RULER_HEIGHT + lane * LANE_HEIGHT

    def clip_rect(self, index: int) -> QRect:
        x0 = self.x_of(self.start_of(index))
        x1 = self.x_of(self.end_of(index))
        top = self.lane_top(int(self._lane_of[index]))
        return QRect(int(x0), top + 5, max(2, int(x1) - int(x0) - 1), LANE_HEIGHT - 10)

    def clip_at(self, pos: QPoint) -> int | None:
        if pos.y() < RULER_HEIGHT or pos.x() < GUTTER or not self.clips:
            return None
        lane = (pos.y() - RULER_HEIGHT) // LANE_HEIGHT
        index = self.line_at_time(self.axis.seconds_at(pos.x() - GUTTER))
        if index is None or self.axis.seconds_at(pos.x() - GUTTER) >= self.total_seconds:
            return None
        return index if self._lane_of[index] == lane else None

    def visible_range(self) -> tuple[int, int]:
        """Indexes [first, last) of the clips that overlap the view."""
        first = int(np.searchsorted(self._ends, self.axis.start, side="right"))
        last = int(np.searchsorted(self._starts, self.axis.end, side="left"))
        return first, max(first, last)

    # --- painting -------------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        alternate = palette.color(QPalette.ColorRole.AlternateBase)
        painter.fillRect(self.rect(), base)
        self._chip_rects = []
        width = self.width()
        for lane in range(len(self.lanes)):
            if lane % 2:
                painter.fillRect(QRect(GUTTER, self.lane_top(lane), width - GUTTER, LANE_HEIGHT), alternate)
        painter.setClipRect(QRect(GUTTER, 0, width - GUTTER, self.height()))
        first, last = self.visible_range()
        if last > first:
            self._paint_clips(painter, first, last, text)
        painter.setClipping(False)
        self._paint_ruler(painter, text)
        self._paint_gutter(painter, text)
        if all(clip.state == "empty" for clip in self.clips):
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.setFont(self._font)
            painter.drawText(
                QRect(GUTTER, RULER_HEIGHT, width - GUTTER, self.height() - RULER_HEIGHT),
                Qt.AlignmentFlag.AlignCenter,
                "Each line of the script becomes a clip here.\n"
                "Type in the script editor below, then drag emotions from the palette onto a clip.",
            )
        if self.playhead_seconds is not None:
            x = self.x_of(self.playhead_seconds)
            if GUTTER <= x <= width:
                painter.setPen(QPen(QColor(PLAYHEAD_COLOUR), 2))
                painter.drawLine(QLineF(x, 0, x, self.height()))
        if self._drop_row is not None and 0 <= self._drop_row < len(self.clips):
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 2, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.clip_rect(self._drop_row).adjusted(-2, -2, 2, 2))
        painter.end()

    def _paint_ruler(self, painter: QPainter, text: QColor) -> None:
        palette = self.palette()
        painter.fillRect(QRect(0, 0, self.width(), RULER_HEIGHT), palette.color(QPalette.ColorRole.Button))
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawLine(0, RULER_HEIGHT - 1, self.width(), RULER_HEIGHT - 1)
        step = ruler_step(self.axis.pixels_per_second)
        tick = np.floor(self.axis.start / step) * step
        painter.setFont(self._small)
        painter.setPen(palette.color(QPalette.ColorRole.ButtonText))
        minor = step / 5
        ticks = np.arange(tick, self.axis.end + step, minor)
        for t in ticks:
            x = self.x_of(float(t))
            if x < GUTTER:
                continue
            major = abs(t / step - round(t / step)) < 1e-6
            painter.drawLine(QLineF(x, RULER_HEIGHT - (9 if major else 4), x, RULER_HEIGHT - 1))
            if major:
                painter.drawText(QRectF(x + 3, 0, 90, RULER_HEIGHT - 6), Qt.AlignmentFlag.AlignVCenter,
                                 format_time(float(t), step=step))

    def _paint_gutter(self, painter: QPainter, text: QColor) -> None:
        palette = self.palette()
        painter.fillRect(QRect(0, 0, GUTTER, self.height()), palette.color(QPalette.ColorRole.Window))
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawLine(GUTTER - 1, 0, GUTTER - 1, self.height())
        painter.setFont(self._small)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        metrics = QFontMetrics(self._small)
        for lane, name in enumerate(self.lanes):
            rect = QRect(8, self.lane_top(lane), GUTTER - 14, LANE_HEIGHT)
            painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter,
                             metrics.elidedText(f"♪ {name}", Qt.TextElideMode.ElideRight, rect.width()))

    def _paint_clips(self, painter: QPainter, first: int, last: int, text: QColor) -> None:
        pps = self.axis.pixels_per_second
        x0 = GUTTER + (self._starts[first:last] - self.axis.start) * pps
        x1 = GUTTER + (self._ends[first:last] - self.axis.start) * pps
        wide = (x1 - x0) >= _MIN_BOX_PIXELS
        narrow = np.flatnonzero(~wide)
        if len(narrow):
            # Clips a few pixels wide or less (a zoomed-out hour): per lane, the pixel columns they touch,
            # merged into runs and filled as a few rectangles, not a hundred thousand boxes.
            mark = QColor(self.palette().color(QPalette.ColorRole.Highlight))
            mark.setAlpha(150)
            columns = np.floor(x0[narrow]).astype(np.int64)
            ends = np.ceil(x1[narrow]).astype(np.int64)
            lanes = self._lane_of[first:last][narrow]
            for lane in np.unique(lanes).tolist():
                mine = lanes == lane
                lo = np.clip(columns[mine], 0, self.width() + 1)
                hi = np.clip(np.maximum(ends[mine], lo + 1), 0, self.width() + 1)
                # Mark [lo, hi) for every clip: a difference array, then a running sum.
                delta = np.zeros(self.width() + 3, dtype=np.int64)
                np.add.at(delta, lo, 1)
                np.add.at(delta, hi, -1)
                cover = np.cumsum(delta)[: self.width() + 2] > 0
                edges = np.flatnonzero(np.diff(np.concatenate(([False], cover, [False])).astype(np.int8)))
                top = self.lane_top(lane)
                for start, stop in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):
                    painter.fillRect(QRect(start, top + 8, stop - start, LANE_HEIGHT - 16), mark)
        metrics = QFontMetrics(self._small)
        for offset in np.flatnonzero(wide).tolist():
            self._paint_clip(painter, first + offset, text, metrics)

    def _paint_clip(self, painter: QPainter, index: int, text: QColor, metrics: QFontMetrics) -> None:
        clip = self.clips[index]
        rect = self.clip_rect(index)
        palette = self.palette()
        if clip.state == "empty":
            return
        emotion = clip_emotion(clip)
        fill = emotion_colour(emotion) if emotion else palette.color(QPalette.ColorRole.Highlight)
        body = QColor(fill)
        body.setAlpha(70 if clip.estimated else 140)
        selected = index == self.selected
        playing = index == self.playing_line
        border = QColor(STATE_COLOURS["error"]) if clip.state in ("failed", "error") else fill.darker(130)
        if selected:
            border = palette.color(QPalette.ColorRole.Highlight)
        painter.setPen(QPen(border, 2 if (selected or playing) else 1))
        painter.setBrush(QBrush(body, Qt.BrushStyle.SolidPattern))
        painter.drawRoundedRect(QRectF(rect).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        if clip.estimated:
            # Not rendered yet: hatched, and its length is an estimate from the text.
            painter.setBrush(QBrush(fill.darker(115), Qt.BrushStyle.BDiagPattern))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(QRectF(rect).adjusted(1, 1, -1, -1), 4, 4)
        # Pauses inside the clip: gaps drawn over the body.
        total = max(clip.seconds, 1e-9)
        x = float(rect.x())
        for kind, seconds in clip.pieces:
            w = rect.width() * seconds / total
            if kind == "pause" and w >= 2:
                # A pause: the body thins to a line, so the silence reads as a gap in the speech.
                gap = QRectF(x, rect.y() + 2, w, rect.height() - 4)
                painter.fillRect(gap, palette.color(QPalette.ColorRole.Base))
                painter.setPen(QPen(fill.darker(115), 1, Qt.PenStyle.DotLine))
                painter.drawLine(QLineF(gap.left(), gap.center().y(), gap.right(), gap.center().y()))
            x += w
        # The render state: a stripe along the bottom.
        painter.fillRect(QRect(rect.x() + 2, rect.bottom() - 3, rect.width() - 4, 3),
                         QColor(STATE_COLOURS.get(clip.state, "#9aa5b1")))
        if rect.width() < 24:
            return
        inner = rect.adjusted(5, 3, -5, -5)
        painter.setClipRect(inner.intersected(QRect(GUTTER, 0, self.width() - GUTTER, self.height())))
        cx = inner.x()
        for chip in clip.chips:
            cx = self._paint_chip(painter, metrics, cx, inner.y(), index, chip)
            if cx > inner.right():
                break
        badges = []
        if clip.locked:
            badges.append("locked")
        if clip.takes > 1 or clip.take:
            badges.append(f"take {clip.take + 1}/{clip.takes}")
        if clip.warning:
            badges.append("⚠")
        if badges:
            painter.setFont(self._small)
            painter.setPen(text)
            painter.drawText(QRect(cx + 2, inner.y(), max(0, inner.right() - cx), CHIP_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter, "  ".join(badges))
        painter.setFont(self._font)
        painter.setPen(QColor(STATE_COLOURS["error"]) if clip.state == "error" else text)
        label = clip.message if clip.state == "error" else (clip.text or "(empty line)")
        text_rect = QRect(inner.x(), inner.y() + CHIP_HEIGHT + 1, inner.width(), inner.height() - CHIP_HEIGHT - 1)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter, QFontMetrics(self._font).elidedText(
            label, Qt.TextElideMode.ElideRight, text_rect.width()))
        painter.setClipRect(QRect(GUTTER, 0, self.width() - GUTTER, self.height()))

    def _paint_chip(self, painter, metrics, x, top, index: int, chip: Chip) -> int:
        closable = not chip.inherited and chip.column is not None
        label = chip.label + ("  ×" if closable else "")
        width = metrics.horizontalAdvance(label) + 12
        rect = QRectF(x, top, width, CHIP_HEIGHT)
        colour = emotion_colour(chip.label)
        if chip.inherited:
            painter.setPen(QPen(colour, 1))
            painter.setBrush(QColor(colour.red(), colour.green(), colour.blue(), 40))
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
        painter.drawRoundedRect(rect, 7, 7)
        painter.setFont(self._small)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text) if chip.inherited else QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
        self._chip_rects.append((rect.toRect(), index, chip))
        return int(x + width + 4)

    # --- mouse and keyboard ------------------------------------------------------------------------------

    def _chip_at(self, pos: QPoint) -> tuple[int, Chip, QRect] | None:
        for rect, index, chip in self._chip_rects:
            if rect.contains(pos):
                return index, chip, rect
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        pos = event.position().toPoint()
        if pos.x() >= GUTTER and pos.y() < RULER_HEIGHT and event.button() == Qt.MouseButton.LeftButton:
            # A click on the ruler moves the playhead there.
            self.seek_requested.emit(max(0.0, self.axis.seconds_at(pos.x() - GUTTER)))
            return
        index = self.clip_at(pos)
        if index is None:
            return
        hit = self._chip_at(pos)
        if event.button() == Qt.MouseButton.LeftButton and hit is not None and not hit[1].inherited:
            # Only the "×" end of a chip removes it; the rest selects the line like any click.
            if pos.x() >= hit[2].right() - 14 and hit[1].column is not None:
                self.chip_remove_requested.emit(hit[0], hit[1].column, hit[1].tag_text)
                return
        self.select(index)
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = pos
            self.seek_requested.emit(self.start_of(index))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            return
        if (event.position().toPoint() - self._press).manhattanLength() < 12 or self.selected is None:
            return
        # Dragging a clip onto another reorders lines.
        drag = QDrag(self)
        mime = QMimeData()
        mime.setData(LINE_MIME_TYPE, str(self.selected).encode())
        drag.setMimeData(mime)
        self._press = None
        drag.exec(Qt.DropAction.MoveAction)

    def mouseReleaseEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        self._press = None

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        handle_wheel(self.axis, event, event.position().x() - GUTTER)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if not self.clips:
            return super().keyPressEvent(event)
        key = event.key()
        current = self.selected if self.selected is not None else -1
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Right):
            self.select(min(current + 1, len(self.clips) - 1))
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Left):
            self.select(max(current - 1, 0))
        elif key == Qt.Key.Key_Menu and self.selected is not None:
            self._show_menu(self.selected, self.mapToGlobal(self.clip_rect(self.selected).center()))
            return
        else:
            return super().keyPressEvent(event)
        if self.selected is not None:
            self.seek_requested.emit(self.start_of(self.selected))

    def contextMenuEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.reason() == event.Reason.Keyboard:
            # The Menu key: the selected clip's menu, at the clip (not at the middle of the view).
            if self.selected is not None:
                self._show_menu(self.selected, self.mapToGlobal(self.clip_rect(self.selected).center()))
            return
        index = self.clip_at(event.pos())
        if index is not None:
            self.select(index)
            self._show_menu(index, event.globalPos())

    def build_menu(self, row: int) -> QMenu:
        clip = self.clips[row]
        menu = QMenu(self)
        for fix in clip.quick_fixes:
            menu.addAction(fix.label, lambda f=fix: self.quick_fix_requested.emit(row, f.column, f.old, f.new))
        if clip.quick_fixes:
            menu.addSeparator()
        menu.addAction("Render line", lambda: self.render_line_requested.emit(row))
        menu.addAction("New take", lambda: self.new_take_requested.emit(row))
        takes = menu.addMenu("Takes")
        for take in range(clip.takes):
            action = takes.addAction(f"Take {take + 1}", lambda t=take: self.take_chosen.emit(row, t))
            action.setCheckable(True)
            action.setChecked(take == clip.take)
        menu.addAction("Play line", lambda: self.play_line_requested.emit(row))
        menu.addAction("Unlock line" if clip.locked else "Lock line", lambda: self.lock_toggled.emit(row))
        menu.addAction("Copy as text", lambda: self.copy_line_requested.emit(row))
        if clip.tags:
            remove = menu.addMenu("Remove tag")
            for column, text in clip.tags:
                remove.addAction(text, lambda c=column, t=text: self.chip_remove_requested.emit(row, c, t))
        return menu

    def _show_menu(self, row: int, global_pos) -> None:
        self.last_menu = self.build_menu(row)
        self.last_menu.popup(global_pos)

    def event(self, event) -> bool:
        if event.type() == event.Type.ToolTip:
            index = self.clip_at(event.pos())
            if index is not None:
                clip = self.clips[index]
                start = self.start_of(index)
                lines = [f"Line {index + 1} at {format_time(start, step=0.1)}: {clip.state}"
                         + (" (estimated length)" if clip.estimated else ""),
                         f"Voice: {clip.voice or _NO_VOICE}"]
                if clip.text and clip.state != "error":
                    lines.append(clip.text)
                if clip.message:
                    lines.append(clip.message)
                QToolTip.showText(event.globalPos(), "\n".join(lines), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    # --- drops --------------------------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasFormat(TAG_MIME_TYPE) or event.mimeData().hasFormat(LINE_MIME_TYPE):
            event.acceptProposedAction()

    def _drop_target(self, event) -> int | None:
        pos = event.position().toPoint()
        index = self.clip_at(pos)
        if index is None and pos.x() >= GUTTER and pos.y() >= RULER_HEIGHT:
            # Between lanes or in another lane: the line at that time.
            index = self.line_at_time(self.axis.seconds_at(pos.x() - GUTTER))
        return index

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._drop_row = self._drop_target(event)
        self.update()
        if self._drop_row is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        self._drop_row = None
        self.update()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        row = self._drop_target(event)
        self._drop_row = None
        self.update()
        if row is None:
            return
        mime = event.mimeData()
        if mime.hasFormat(TAG_MIME_TYPE):
            self.tag_dropped.emit(row, bytes(mime.data(TAG_MIME_TYPE)).decode("utf-8"))
        elif mime.hasFormat(LINE_MIME_TYPE):
            source = int(bytes(mime.data(LINE_MIME_TYPE)).decode())
            if source != row:
                self.line_moved.emit(source, row)
        event.acceptProposedAction()
