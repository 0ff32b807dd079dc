"""The script editor: plain text with inline tags, highlighted, with grammar errors underlined."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import QPlainTextEdit, QToolTip

from studio.core.tags import DeliveryState, ScriptError, parse_line

_PAUSE_COLOUR = QColor("#6c8ebf")
_DIRECTIVE_COLOUR = QColor("#8e6cbf")
_EMOTION_COLOUR = QColor("#c0761a")
_ERROR_COLOUR = QColor("#d62728")


def _tag_format(colour: QColor) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(colour)
    fmt.setFontWeight(QFont.Weight.DemiBold)
    return fmt


class ScriptHighlighter(QSyntaxHighlighter):
    """Colours tags by kind and underlines a line's grammar error.

    Each block is checked on its own: whether a line is well-formed never depends on the lines above
    it (only the delivery state does), so re-highlighting stays local to the edited line.
    """

    def __init__(self, document) -> None:
        super().__init__(document)
        self._formats = {
            "pause": _tag_format(_PAUSE_COLOUR),
            "directive": _tag_format(_DIRECTIVE_COLOUR),
            "emotion": _tag_format(_EMOTION_COLOUR),
        }
        self._error_format = QTextCharFormat()
        self._error_format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        self._error_format.setUnderlineColor(_ERROR_COLOUR)

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        try:
            _items, tags, _state = parse_line(text, 1, DeliveryState())
        except ScriptError as exc:
            start = exc.column - 1
            self.setFormat(start, max(1, len(text) - start), self._error_format)
            self.setCurrentBlockState(1)
            return
        self.setCurrentBlockState(0)
        for tag in tags:
            content = tag.content.strip().lower()
            if content.startswith("pause"):
                kind = "pause"
            elif ":" in content and not content.startswith(("emotion", "mood")):
                kind = "directive"
            else:
                kind = "emotion"
            self.setFormat(tag.column - 1, tag.end_column - tag.column + 1, self._formats[kind])


class ScriptEditor(QPlainTextEdit):
    """A monospaced plain-text editor whose tooltips explain grammar errors."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setPlaceholderText(
            "Write your script here. One line per clip; tags such as [Whispering], [pause 1.5s] or "
            "[voice: Narrator] change the delivery of the text after them."
        )
        self.highlighter = ScriptHighlighter(self.document())

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            cursor = self.cursorForPosition(event.pos())
            block = cursor.block()
            try:
                parse_line(block.text(), block.blockNumber() + 1, DeliveryState())
            except ScriptError as exc:
                QToolTip.showText(event.globalPos(), str(exc), self)
                return True
            QToolTip.hideText()
            event.ignore()
            return True
        return super().event(event)

    def move_cursor_to(self, line: int, column: int) -> None:
        block = self.document().findBlockByNumber(line - 1)
        if not block.isValid():
            return
        cursor = self.textCursor()
        cursor.setPosition(block.position() + min(column - 1, block.length() - 1))
        self.setTextCursor(cursor)
        self.setFocus(Qt.FocusReason.OtherFocusReason)
