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
from PySide6.QtWidgets import QMenu, QPlainTextEdit, QToolTip

from studio.core.pronunciation import Lexicon, Pronunciation
from studio.core.script import ScriptChange, ScriptModel, diff_texts
from studio.core.tags import (
    DeliveryState,
    KnownEmotions,
    ScriptError,
    TagWarning,
    heading_end,
    normalise_newlines,
    parse_line,
    parse_valid_prefix,
    tag_kind,
    tag_warnings,
)
from studio.ui.clip_info import QuickFix, quick_fixes_for
from studio.ui.commands import PlaceTagCommand, QuickFixCommand, TextEditCommand
from studio.ui.file_drops import dropped_file

TAG_MIME_TYPE = "application/x-qtts-tag"

_PAUSE_COLOUR = QColor("#6c8ebf")
_DIRECTIVE_COLOUR = QColor("#8e6cbf")
_EMOTION_COLOUR = QColor("#c0761a")
_ERROR_COLOUR = QColor("#d62728")
_WARNING_COLOUR = QColor("#e0a000")
_TERM_COLOUR = QColor("#1f9e89")  # a pronunciation dictionary term: said another way


def line_warnings(text: str, line_no: int, known: KnownEmotions | None) -> list[TagWarning]:
    """A line's tag warnings on its own (they never depend on the lines above); none without known emotions."""
    if known is None:
        return []
    try:
        _items, tags, _state = parse_line(text, line_no, DeliveryState())
    except ScriptError as exc:
        _items, tags, _state = parse_valid_prefix(text, line_no, DeliveryState(), exc)
    return tag_warnings(text, tags, known)


def _tag_format(colour: QColor) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(colour)
    fmt.setFontWeight(QFont.Weight.DemiBold)
    return fmt


class ScriptHighlighter(QSyntaxHighlighter):
    """Colours tags by kind, underlines a line's grammar error (red) and its tag warnings (amber: an unknown
    emotion, an emotion overridden before any text).

    Each block is checked on its own: whether a line is well-formed never depends on the lines above
    it (only the delivery state does), so re-highlighting stays local to the edited line.
    """

    def __init__(self, document) -> None:
        super().__init__(document)
        self.known_emotions: KnownEmotions | None = None  # None: unknown emotions are not checked
        self.lexicon = Lexicon()  # the pronunciation dictionary: its terms get a dotted underline
        self._formats = {
            "pause": _tag_format(_PAUSE_COLOUR),
            "directive": _tag_format(_DIRECTIVE_COLOUR),
            "emotion": _tag_format(_EMOTION_COLOUR),
        }
        self._heading_format = QTextCharFormat()
        self._heading_format.setFontWeight(QFont.Weight.Bold)
        self._heading_format.setFontUnderline(True)
        self._error_format = QTextCharFormat()
        self._error_format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        self._error_format.setUnderlineColor(_ERROR_COLOUR)
        self._warning_format = QTextCharFormat()
        self._warning_format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        self._warning_format.setUnderlineColor(_WARNING_COLOUR)

    def _underline_terms(self, text: str, tags) -> None:
        for start, end, _entry in spoken_terms(self.lexicon, text, tags):
            fmt = QTextCharFormat(self.format(start))
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DotLine)
            fmt.setUnderlineColor(_TERM_COLOUR)
            self.setFormat(start, end - start, fmt)

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        if heading_end(text):  # a chapter heading stands out; its tags are coloured over it below
            self.setFormat(0, len(text), self._heading_format)
        try:
            _items, tags, _state = parse_line(text, 1, DeliveryState())
            self.setCurrentBlockState(0)
        except ScriptError as exc:
            # The tags before the error still read as tags; from the error on, the line is underlined.
            _items, tags, _state = parse_valid_prefix(text, 1, DeliveryState(), exc)
            start = exc.column - 1
            self.setFormat(start, max(1, len(text) - start), self._error_format)
            self.setCurrentBlockState(1)
        self._underline_terms(text, tags)
        for tag in tags:
            kind = tag_kind(tag.content)
            kind = "directive" if kind == "voice" else kind
            self.setFormat(tag.column - 1, tag.end_column - tag.column + 1, self._formats[kind])
        warnings = tag_warnings(text, tags, self.known_emotions) if self.known_emotions is not None else []
        for warning in warnings:
            fmt = QTextCharFormat(self.format(warning.column - 1))
            fmt.setUnderlineStyle(self._warning_format.underlineStyle())
            fmt.setUnderlineColor(_WARNING_COLOUR)
            self.setFormat(warning.column - 1, len(warning.old), fmt)


def spoken_terms(lexicon: Lexicon, text: str, tags) -> list[tuple[int, int, Pronunciation]]:
    """The dictionary's terms in a line's text, outside its tags (a tag is not read aloud)."""
    inside = [(tag.column - 1, tag.end_column) for tag in tags]
    return [(start, end, entry) for start, end, entry in lexicon.matches(text)
            if not any(a <= start < b for a, b in inside)]


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
        self._own_edit = False  # a typed edit on its way into the model: already in the document
        self._changes: list[tuple[int, int, int]] = []  # contentsChange reports since the last contentsChanged
        self._unsubscribe = None
        self.document().setUndoRedoEnabled(False)
        self.document().contentsChange.connect(lambda *change: self._changes.append(change))
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
        """What the user typed (or pasted, or cut) goes into the model as one undoable edit.

        One edit block of the document (a keystroke, a paste) usually reports one change with where it
        happened: then the edit is read from there, so typing in a 100,000-line script costs the edit, not
        two copies and a comparison of the whole text. Several reports in one block (setPlainText clears,
        then inserts) or counts that do not add up (Qt can count the document's final separator): the whole
        texts are compared instead."""
        changes, self._changes = self._changes, []
        if self._applying_model or self.model is None:
            return
        old = self.model.text
        edit = self._edit_at(old, *changes[0]) if len(changes) == 1 else None
        if edit is None:
            new = self.toPlainText()
            if new == old:
                return
            edit = diff_texts(old, new)
        position, removed, inserted = edit
        if removed == inserted:
            return  # a formatting-only change (the highlighter)
        # The document already shows the edit; pushing runs redo(), which brings the model along (and,
        # unless the model normalises the text differently, there is nothing to mirror back).
        self._own_edit = inserted == normalise_newlines(inserted)
        try:
            self.undo_stack.push(TextEditCommand(self.model, position, removed, inserted))
        finally:
            self._own_edit = False

    def _edit_at(self, old: str, position: int, removed_count: int, added_count: int) -> tuple[int, str, str] | None:
        """(position, removed, inserted) from a contentsChange report, trimmed to what really changed, or
        None when the report does not fit the texts."""
        document_length = self.document().characterCount() - 1  # without the final paragraph separator
        if (position < 0 or position + removed_count > len(old)
                or len(old) - removed_count + added_count != document_length):
            return None
        cursor = QTextCursor(self.document())
        cursor.setPosition(position)
        cursor.setPosition(position + added_count, QTextCursor.MoveMode.KeepAnchor)
        inserted = cursor.selectedText().replace("\u2029", "\n")
        if len(inserted) != added_count:
            return None
        removed = old[position : position + removed_count]
        # Qt reports a block's whole span when it re-lays it out; keep only the part that differs.
        head = 0
        while head < min(len(removed), len(inserted)) and removed[head] == inserted[head]:
            head += 1
        tail = 0
        while (tail < min(len(removed), len(inserted)) - head
               and removed[len(removed) - 1 - tail] == inserted[len(inserted) - 1 - tail]):
            tail += 1
        return position + head, removed[head : len(removed) - tail], inserted[head : len(inserted) - tail]

    def _on_model_changed(self, change: ScriptChange) -> None:
        if change.kind != "text" or self._applying_model or self._own_edit:
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
        if dropped_file(source) is not None:
            return False  # a project or book file: the window opens or imports it (see dragEnterEvent)
        return source.hasFormat(TAG_MIME_TYPE) or super().canInsertFromMimeData(source)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if dropped_file(event.mimeData()) is not None:
            event.ignore()  # passed on to the window
            return
        super().dragEnterEvent(event)

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
        command = PlaceTagCommand(self.model, line, column, tag)
        if command.changed:
            self.undo_stack.push(command)

    # --- warnings and their quick fixes -----------------------------------------------------------------

    def set_known_emotions(self, known: KnownEmotions | None) -> None:
        """The emotions that are not flagged as unknown (the palette's and the cast's); re-checks the text."""
        if known == self.highlighter.known_emotions:
            return
        self.highlighter.known_emotions = known
        self.highlighter.rehighlight()

    def set_lexicon(self, lexicon: Lexicon) -> None:
        """The pronunciation dictionary whose terms are underlined; re-highlights when it changed."""
        if lexicon.entries == self.highlighter.lexicon.entries:
            return
        self.highlighter.lexicon = lexicon
        self.highlighter.rehighlight()

    def warnings_for(self, line: int) -> list[TagWarning]:
        """Warnings of a 0-based line."""
        block = self.document().findBlockByNumber(line)
        return line_warnings(block.text(), line + 1, self.highlighter.known_emotions) if block.isValid() else []

    def quick_fixes_for(self, line: int) -> list[QuickFix]:
        return quick_fixes_for(self.warnings_for(line))

    def apply_quick_fix(self, line: int, column: int, old: str, new: str) -> bool:
        """One undo step; refused (False) when the text at the column is no longer `old`."""
        if self.model is None or not (0 <= line < len(self.model)):
            return False
        try:
            command = QuickFixCommand(self.model, line, column, old, new)
        except ValueError:
            return False
        self.undo_stack.push(command)
        return True

    def context_menu_at(self, pos) -> QMenu:
        """The editor's context menu at a viewport position: the line's quick fixes first, then editing."""
        menu = self.createStandardContextMenu(pos)
        line = self.cursorForPosition(pos).blockNumber()
        fixes = self.quick_fixes_for(line)
        first = menu.actions()[0] if menu.actions() else None
        for fix in fixes:
            action = menu.addAction(fix.label)
            action.triggered.connect(
                lambda _checked=False, f=fix: self.apply_quick_fix(line, f.column, f.old, f.new))
            menu.insertAction(first, action)
        if fixes:
            menu.insertSeparator(first)
        return menu

    def contextMenuEvent(self, event) -> None:  # noqa: N802 (Qt override)
        menu = self.context_menu_at(event.pos())
        menu.exec(event.globalPos())
        menu.deleteLater()

    def tooltip_at(self, pos) -> str:
        """What hovering at a viewport position explains: the line's grammar error, or the warning under it."""
        cursor = self.cursorForPosition(pos)
        block = cursor.block()
        try:
            parse_line(block.text(), block.blockNumber() + 1, DeliveryState())
        except ScriptError as exc:
            return str(exc)
        column = cursor.positionInBlock()
        for warning in self.warnings_for(block.blockNumber()):
            if warning.column - 1 <= column <= warning.column - 1 + len(warning.old):
                return str(warning) + ("\n(right-click for the fix)" if warning.new is not None else "")
        _items, tags, _state = parse_line(block.text(), block.blockNumber() + 1, DeliveryState())
        for start, end, entry in spoken_terms(self.highlighter.lexicon, block.text(), tags):
            if start <= column < end:
                scope = " and ".join(part for part in (entry.voice and f"for {entry.voice}",
                                                       entry.language and f"in {entry.language}") if part)
                return (f"“{block.text()[start:end]}” is said as “{entry.say}”{' ' + scope if scope else ''} "
                        "(Render → Pronunciation Dictionary)")
        return ""

    def _show_tooltip(self, event, viewport_pos) -> None:
        text = self.tooltip_at(viewport_pos)
        if text:
            QToolTip.showText(event.globalPos(), text, self)
        else:
            QToolTip.hideText()
            event.ignore()

    def viewportEvent(self, event) -> bool:  # noqa: N802 (Qt override)
        # Hovering over the text: the viewport gets the tooltip event, in its own coordinates.
        if event.type() == QEvent.Type.ToolTip:
            self._show_tooltip(event, event.pos())
            return True
        return super().viewportEvent(event)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            self._show_tooltip(event, self.viewport().mapFrom(self, event.pos()))
            return True
        return super().event(event)

    def fold(self, hidden: set[int]) -> None:
        """Show every line except the 0-based `hidden` ones (the text of collapsed chapters). Blocks whose
        visibility does not change are left alone, so folding nothing in an unfolded script costs a scan."""
        doc = self.document()
        block, changed_from, changed_to = doc.begin(), None, 0
        while block.isValid():
            visible = block.blockNumber() not in hidden
            if block.isVisible() != visible:
                block.setVisible(visible)
                changed_from = block.position() if changed_from is None else changed_from
                changed_to = block.position() + block.length()
            block = block.next()
        if changed_from is None:
            return
        doc.markContentsDirty(changed_from, changed_to - changed_from)
        if not self.textCursor().block().isVisible():  # the cursor was in folded text: up to its heading
            block = self.textCursor().block()
            while block.isValid() and not block.isVisible():
                block = block.previous()
            cursor = self.textCursor()
            cursor.setPosition(max(0, block.position()))
            self.setTextCursor(cursor)
        self.viewport().update()

    def move_cursor_to(self, line: int, column: int) -> None:
        block = self.document().findBlockByNumber(line - 1)
        if not block.isValid():
            return
        cursor = self.textCursor()
        cursor.setPosition(block.position() + min(column - 1, block.length() - 1))
        self.setTextCursor(cursor)
        self.setFocus(Qt.FocusReason.OtherFocusReason)
