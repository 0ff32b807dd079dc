"""The script editor: plain text with inline tags, highlighted, with grammar errors underlined."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMimeData, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QKeySequence,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QUndoStack,
)
from PySide6.QtWidgets import QPlainTextEdit, QToolTip

from studio.core.script import ScriptChange, ScriptModel, diff_texts
from studio.core.tags import DeliveryState, ScriptError, parse_line, tag_kind
from studio.ui.commands import InsertTagCommand, TextEditCommand

TAG_MIME_TYPE = "application/x-qtts-tag"

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
            kind = tag_kind(tag.content)
            kind = "directive" if kind == "voice" else kind
            self.setFormat(tag.column - 1, tag.end_column - tag.column + 1, self._formats[kind])


class ScriptEditor(QPlainTextEdit):
    """A monospaced view and editor of a ScriptModel whose tooltips explain grammar errors.

    The model holds the text. Typing is recorded as undoable TextEditCommands (the document's own undo
    is off), and any model change made elsewhere (undo, a tag drop on the timeline, a line move) is
    mirrored back into the document as the smallest edit, so the cursor and scroll position survive.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.model: ScriptModel | None = None
        self.undo_stack: QUndoStack | None = None
        self._applying_model = False
        self._unsubscribe = None
        self.document().setUndoRedoEnabled(False)
        self.document().contentsChanged.connect(self._on_document_contents_changed)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setPlaceholderText(
            "Write your script here. One line per clip; tags such as [Whispering], [pause 1.5s] or "
            "[voice: Narrator] change the delivery of the text after them."
        )
        self.highlighter = ScriptHighlighter(self.document())

    def bind(self, model: ScriptModel, undo_stack: QUndoStack) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.model = model
        self.undo_stack = undo_stack
        self._applying_model = True
        try:
            self.setPlainText(model.text)
        finally:
            self._applying_model = False
        self._unsubscribe = model.subscribe(self._on_model_changed)

    def _on_document_contents_changed(self) -> None:
        if self._applying_model or self.model is None:
            return
        new = self.toPlainText()
        old = self.model.text
        if new == old:
            return  # a formatting-only change (the highlighter)
        position, removed, inserted = diff_texts(old, new)
        # The document already shows the edit; pushing runs redo(), which brings the model along and
        # then finds nothing to mirror back.
        self.undo_stack.push(TextEditCommand(self.model, position, removed, inserted))

    def _on_model_changed(self, change: ScriptChange) -> None:
        if change.kind != "text" or self._applying_model:
            return
        current = self.toPlainText()
        target = self.model.text
        if current == target:
            return
        position, removed, inserted = diff_texts(current, target)
        cursor = QTextCursor(self.document())
        cursor.setPosition(position)
        cursor.setPosition(position + len(removed), QTextCursor.MoveMode.KeepAnchor)
        self._applying_model = True
        try:
            cursor.insertText(inserted)
        finally:
            self._applying_model = False

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        # The text widget claims the undo keys for its own (disabled) document history; send them to
        # the project's undo stack so Ctrl+Z in the editor also undoes tag drops and line moves.
        if self.undo_stack is not None:
            if event.matches(QKeySequence.StandardKey.Undo):
                self.undo_stack.undo()
                return
            if event.matches(QKeySequence.StandardKey.Redo) or (
                event.key() == Qt.Key.Key_Z
                and event.modifiers() == (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
            ):
                self.undo_stack.redo()
                return
        super().keyPressEvent(event)

    # --- tag drops ------------------------------------------------------------------------------------

    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802 (Qt override)
        return source.hasFormat(TAG_MIME_TYPE) or super().canInsertFromMimeData(source)

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasFormat(TAG_MIME_TYPE):
            self.setTextCursor(self.cursorForPosition(event.position().toPoint()))
            event.acceptProposedAction()
            return
        super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasFormat(TAG_MIME_TYPE):
            tag = bytes(event.mimeData().data(TAG_MIME_TYPE)).decode("utf-8")
            cursor = self.cursorForPosition(event.position().toPoint())
            self.drop_tag(tag, cursor.blockNumber(), cursor.positionInBlock())
            event.acceptProposedAction()
            return
        super().dropEvent(event)

    def drop_tag(self, tag: str, line: int, column: int) -> None:
        """Insert a tag at a word position (snapped to the start of the word under the column)."""
        text = self.model.line(line).text
        column = max(0, min(column, len(text)))
        while 0 < column < len(text) and not text[column - 1].isspace() and text[column - 1] != "]":
            column -= 1
        self.undo_stack.push(InsertTagCommand(self.model, line, column, tag))

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
