"""The timeline: one row per script line, laid out in time, with emotion chips and render state.

Rows are drawn like a Gantt chart: a line's clip starts where the previous line ended, its width is its
rendered duration (or an estimate from its text before rendering), and pauses inside it are gaps. The
view is built from `ClipInfo` records the window derives from the script model and the render state;
it keeps no script data of its own and reports what the user does through signals.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDrag, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QMenu, QSizePolicy, QToolTip, QWidget

from studio.ui.clip_info import Chip, ClipInfo
from studio.ui.palette import emotion_colour
from studio.ui.script_editor import TAG_MIME_TYPE

LINE_MIME_TYPE = "application/x-qtts-line"

ROW_HEIGHT = 52
GUTTER = 56
CHIP_HEIGHT = 17
MIN_CLIP_WIDTH = 36
_STATE_COLOURS = {
    "stale": "#9aa5b1",
    "queued": "#6c8ebf",
    "rendering": "#e08a1e",
    "done": "#2a9d4a",
    "cached": "#2a9d4a",
    "failed": "#d62728",
    "locked": "#5b5f97",
    "error": "#d62728",
}


class TimelineView(QWidget):
    """Put inside a QScrollArea (widgetResizable=False); sizes itself to its content."""

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

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.clips: list[ClipInfo] = []
        self.starts: list[float] = []
        self.selected: int | None = None
        self.playhead_seconds: float | None = None
        self.playing_line: int | None = None
        self.pixels_per_second = 60.0
        self._press: QPoint | None = None
        self._drop_row: int | None = None
        self._chip_rects: list[tuple[QRect, int, Chip]] = []
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._font = QFont(self.font())
        self._small = QFont(self.font())
        self._small.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.85))

    # --- data ----------------------------------------------------------------------------------------

    def set_clips(self, clips: list[ClipInfo]) -> None:
        self.clips = clips
        self.starts = []
        t = 0.0
        for clip in clips:
            self.starts.append(t)
            t += clip.seconds
        if self.selected is not None and self.selected >= len(clips):
            self.selected = len(clips) - 1 if clips else None
        self.updateGeometry()
        self.resize(self.sizeHint())
        self.update()

    @property
    def total_seconds(self) -> float:
        return (self.starts[-1] + self.clips[-1].seconds) if self.clips else 0.0

    def fit_width(self, width: int, height: int = 0) -> None:
        """Choose the horizontal scale so the whole script fits `width` pixels (within sane limits),
        and fill at least the visible area."""
        usable = max(200, width - GUTTER - 330)  # room for the last clip's text to run past its end
        self.pixels_per_second = max(4.0, min(240.0, usable / max(self.total_seconds, 1.0)))
        hint = self.sizeHint()
        self.resize(max(hint.width(), width), max(hint.height(), height))
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        width = int(GUTTER + self.total_seconds * self.pixels_per_second + 320)
        return QSize(max(width, 400), max(ROW_HEIGHT * len(self.clips) + 8, 60))

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
        parent = self.parentWidget()
        scroll = parent.parentWidget() if parent is not None else None
        if scroll is not None and hasattr(scroll, "ensureVisible"):
            rect = self.clip_rect(index)
            scroll.ensureVisible(rect.x(), rect.center().y(), 40, ROW_HEIGHT)

    def set_playhead(self, seconds: float | None, playing_line: int | None) -> None:
        if seconds == self.playhead_seconds and playing_line == self.playing_line:
            return
        self.playhead_seconds = seconds
        self.playing_line = playing_line
        self.update()

    # --- geometry -----------------------------------------------------------------------------------

    def clip_rect(self, index: int) -> QRect:
        clip = self.clips[index]
        x = GUTTER + int(self.starts[index] * self.pixels_per_second)
        width = max(MIN_CLIP_WIDTH, int(clip.seconds * self.pixels_per_second))
        return QRect(x, index * ROW_HEIGHT + 4 + CHIP_HEIGHT + 4, width, ROW_HEIGHT - CHIP_HEIGHT - 14)

    def row_at(self, y: int) -> int | None:
        row = y // ROW_HEIGHT
        return row if 0 <= row < len(self.clips) else None

    # --- painting -------------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = event.rect()
        painter.fillRect(area, QColor("#fbfbfc"))
        self._chip_rects = []
        metrics = QFontMetrics(self._small)
        # Only the rows in the exposed area: a 5,000-line script must scroll as smoothly as a short one.
        first = max(0, area.top() // ROW_HEIGHT)
        last = min(len(self.clips) - 1, area.bottom() // ROW_HEIGHT)
        for index in range(first, last + 1):
            self._paint_row(painter, index, self.clips[index], metrics)
        if all(clip.state == "empty" for clip in self.clips):
            painter.setPen(QColor("#8a93a0"))
            painter.setFont(self._font)
            painter.drawText(
                self.rect().adjusted(GUTTER, ROW_HEIGHT * len(self.clips), 0, 0),
                Qt.AlignmentFlag.AlignCenter,
                "Each line of the script becomes a clip here.\n"
                "Type in the script editor below, then drag emotions from the palette onto a clip.",
            )
        if self.playhead_seconds is not None:
            x = GUTTER + int(self.playhead_seconds * self.pixels_per_second)
            painter.setPen(QPen(QColor("#d62728"), 2))
            painter.drawLine(x, 0, x, self.height())
        if self._drop_row is not None:
            painter.setPen(QPen(QColor("#2f6db5"), 2, Qt.PenStyle.DashLine))
            painter.drawRect(QRect(1, self._drop_row * ROW_HEIGHT + 1, self.width() - 3, ROW_HEIGHT - 3))
        painter.end()

    def _paint_row(self, painter: QPainter, index: int, clip: ClipInfo, metrics: QFontMetrics) -> None:
        top = index * ROW_HEIGHT
        if index == self.selected:
            painter.fillRect(QRect(0, top, self.width(), ROW_HEIGHT), QColor("#e8f0fb"))
        elif index % 2:
            painter.fillRect(QRect(0, top, self.width(), ROW_HEIGHT), QColor("#f4f5f7"))
        # Gutter: line number and a state dot.
        painter.setFont(self._small)
        painter.setPen(QColor("#6b7280"))
        painter.drawText(QRect(4, top, 26, ROW_HEIGHT), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         str(index + 1))
        painter.setBrush(QColor(_STATE_COLOURS.get(clip.state, "#9aa5b1")))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(QRect(36, top + ROW_HEIGHT // 2 - 5, 10, 10))

        rect = self.clip_rect(index)
        if clip.state == "empty":
            painter.setFont(self._small)
            painter.setPen(QColor("#aab1bb"))
            painter.drawText(QRect(rect.x(), top, 200, ROW_HEIGHT), Qt.AlignmentFlag.AlignVCenter, "(empty line)")
            return
        # Chips above the clip: voice, then emotions (inherited ones outlined).
        x = rect.x()
        chip_top = top + 4
        if clip.voice:
            x = self._paint_chip(painter, metrics, x, chip_top, f"♪ {clip.voice}", QColor("#374151"), False)
        for chip in clip.chips:
            colour = emotion_colour(chip.label)
            chip_rect_x = x
            x = self._paint_chip(painter, metrics, x, chip_top, chip.label, colour, chip.inherited,
                                 closable=not chip.inherited)
            self._chip_rects.append((QRect(chip_rect_x, chip_top, x - chip_rect_x - 4, CHIP_HEIGHT), index, chip))
        if clip.locked:
            x = self._paint_chip(painter, metrics, x, chip_top, "locked", QColor("#5b5f97"), True)
        if clip.takes > 1 or clip.take:
            x = self._paint_chip(painter, metrics, x, chip_top, f"take {clip.take + 1}/{clip.takes}",
                                 QColor("#6b7280"), True)
        painter.setFont(self._small)
        painter.setPen(QColor(_STATE_COLOURS.get(clip.state, "#6b7280")))
        state_text = clip.state + (" ⚠" if clip.warning else "")
        painter.drawText(QRect(x + 2, chip_top, 140, CHIP_HEIGHT), Qt.AlignmentFlag.AlignVCenter, state_text)

        # The clip body: speech blocks and pause gaps.
        base = QColor("#dbe7f7") if not clip.estimated else QColor("#eceff3")
        border = QColor("#2f6db5") if index == self.playing_line else QColor("#9db4d3")
        if clip.state in ("failed", "error"):
            border = QColor("#d62728")
        px = rect.x()
        total = max(clip.seconds, 1e-6)
        for kind, seconds in clip.pieces or [("speech", 0.0)]:
            width = max(2, int(rect.width() * seconds / total)) if clip.pieces else rect.width()
            piece = QRect(px, rect.y(), width, rect.height())
            if kind == "pause":
                painter.setPen(QPen(QColor("#c4c9d1"), 1, Qt.PenStyle.DotLine))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(piece.adjusted(0, 6, 0, -6))
            else:
                painter.setPen(QPen(border, 2 if index == self.playing_line else 1))
                painter.setBrush(QBrush(base, Qt.BrushStyle.SolidPattern if not clip.estimated
                                        else Qt.BrushStyle.Dense4Pattern))
                painter.drawRoundedRect(QRectF(piece), 4, 4)
            px += width
        painter.setFont(self._font)
        painter.setPen(QColor("#1f2937") if clip.state != "error" else QColor("#d62728"))
        label = clip.text if clip.state != "error" else clip.message
        text_rect = QRect(rect.x() + 6, rect.y(), max(rect.width(), 600), rect.height())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter, QFontMetrics(self._font).elidedText(
            label or "(empty line)", Qt.TextElideMode.ElideRight, text_rect.width() - 8))

    def _paint_chip(self, painter, metrics, x, top, label, colour: QColor, outlined: bool, closable=False) -> int:
        text = label + ("  ×" if closable else "")
        width = metrics.horizontalAdvance(text) + 12
        rect = QRectF(x, top, width, CHIP_HEIGHT)
        if outlined:
            painter.setPen(QPen(colour, 1))
            painter.setBrush(QColor(colour.red(), colour.green(), colour.blue(), 28))
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
        painter.drawRoundedRect(rect, 8, 8)
        painter.setFont(self._small)
        painter.setPen(colour.darker(160) if outlined else QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        return x + width + 4

    # --- mouse and keyboard ------------------------------------------------------------------------------

    def _chip_at(self, pos: QPoint) -> tuple[int, Chip] | None:
        for rect, index, chip in self._chip_rects:
            if rect.contains(pos):
                return index, chip
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        row = self.row_at(int(event.position().y()))
        if row is None:
            return
        pos = event.position().toPoint()
        hit = self._chip_at(pos)
        if event.button() == Qt.MouseButton.LeftButton and hit is not None and not hit[1].inherited:
            # Only the "×" end of a chip removes it; the rest selects the line like any click.
            rect = next(r for r, i, c in self._chip_rects if c is hit[1] and i == hit[0])
            if pos.x() >= rect.right() - 14:
                self.chip_remove_requested.emit(hit[0], hit[1].column, hit[1].tag_text)
                return
        self.select(row)
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = pos
            self.seek_requested.emit(self.starts[row])

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            return
        if (event.position().toPoint() - self._press).manhattanLength() < 12 or self.selected is None:
            return
        # Dragging a row reorders lines.
        drag = QDrag(self)
        mime = QMimeData()
        mime.setData(LINE_MIME_TYPE, str(self.selected).encode())
        drag.setMimeData(mime)
        self._press = None
        drag.exec(Qt.DropAction.MoveAction)

    def mouseReleaseEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        self._press = None

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if not self.clips:
            return super().keyPressEvent(event)
        key = event.key()
        current = self.selected if self.selected is not None else -1
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Right):
            self.select(min(current + 1, len(self.clips) - 1))
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Left):
            self.select(max(current - 1, 0))
        elif key == Qt.Key.Key_Home:
            self.select(0)
        elif key == Qt.Key.Key_End:
            self.select(len(self.clips) - 1)
        elif key == Qt.Key.Key_Menu and self.selected is not None:
            self._show_menu(self.selected, self.mapToGlobal(self.clip_rect(self.selected).center()))
        else:
            return super().keyPressEvent(event)
        if self.selected is not None:
            self.seek_requested.emit(self.starts[self.selected])

    def contextMenuEvent(self, event) -> None:  # noqa: N802 (Qt override)
        row = self.row_at(event.pos().y())
        if row is not None:
            self.select(row)
            self._show_menu(row, event.globalPos())

    def build_menu(self, row: int) -> QMenu:
        clip = self.clips[row]
        menu = QMenu(self)
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
        self.build_menu(row).exec(global_pos)

    def event(self, event) -> bool:
        if event.type() == event.Type.ToolTip:
            row = self.row_at(event.pos().y())
            if row is not None:
                clip = self.clips[row]
                lines = [f"Line {row + 1}: {clip.state}" + (" (estimated length)" if clip.estimated else "")]
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

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._drop_row = self.row_at(int(event.position().y()))
        self.update()
        if self._drop_row is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        self._drop_row = None
        self.update()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        row = self.row_at(int(event.position().y()))
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
