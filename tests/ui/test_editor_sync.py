"""The script editor hands each edit to the model as the smallest change, read from where the document
changed: the model always equals the document, and lines away from the edit keep their identity."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QTextCursor


def test_edits_of_every_kind_reach_the_model_exactly(qtbot, make_window):
    window = make_window()
    window.editor.setPlainText("\n".join(f"[Sad]Line {i}." for i in range(200)))
    model, editor = window.model, window.editor
    start = window.undo_stack.index()
    ids = [line.id for line in model.lines()]
    editor.setFocus()
    editor.move_cursor_to(100, 6)
    qtbot.keyClicks(editor, "abc")
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    assert model.line(99).text == "[Sad]abLine 99."
    # A line break typed, then taken back with Backspace at the start of the new line.
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert len(model) == 201 and model.line(100).text == "Line 99."
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    assert len(model) == 200
    # A multi-line paste over a selection that spans lines.
    cursor = editor.textCursor()
    cursor.setPosition(editor.document().findBlockByNumber(10).position() + 5)
    cursor.setPosition(editor.document().findBlockByNumber(12).position() + 5, QTextCursor.MoveMode.KeepAnchor)
    editor.setTextCursor(cursor)
    QGuiApplication.clipboard().setText("one\ntwo\nthree")
    qtbot.keyClick(editor, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert model.text == editor.toPlainText()
    assert model.line(10).text == "[Sad]one" and model.line(12).text == "threeLine 12."
    # Lines away from the edits kept their ids (and with them their renders, locks and takes).
    new_ids = [line.id for line in model.lines()]
    assert new_ids[:10] == ids[:10] and new_ids[13:] == ids[13:]
    # Undo takes every step back to the original text.
    while window.undo_stack.index() > start:
        window.undo_stack.undo()
    assert model.text == editor.toPlainText() == "\n".join(f"[Sad]Line {i}." for i in range(200))
