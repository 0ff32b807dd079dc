"""Render → Pronunciation Dictionary… in the real window, rendering through the real engine on a tiny
checkpoint: an entry re-renders only its lines, the editor marks its terms, a bad row names itself."""

from __future__ import annotations

import json

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from studio.core.pronunciation import Pronunciation
from studio.ui.pronunciation_dialog import PronunciationDialog
from tests.ui.test_export_dialog import ModalDriver
from tests.ui.test_render_in_window import render_and_wait

SCRIPT = "Mr Nguyen arrived.\nThe rain stopped.\n[Whispering] nguyen smiled."


def fill(term: str, say: str):
    def handler(dialog: PronunciationDialog) -> None:
        assert isinstance(dialog, PronunciationDialog)
        row = dialog.add_row()
        dialog.table.item(row, 0).setText(term)
        dialog.table.item(row, 1).setText(say)
        ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        # After the handler returns: OK may open a message box, which the driver must be free to answer.
        QTimer.singleShot(0, ok.click)
    return handler


def edit(qtbot, window, handlers) -> bool:
    driver = ModalDriver(qtbot, handlers)
    try:
        return window.edit_pronunciations()
    finally:
        driver.stop()


def test_an_entry_rerenders_only_its_lines_and_the_model_reads_the_respelling(qtbot, tiny_window):
    window = tiny_window(SCRIPT)
    first = render_and_wait(qtbot, window)
    assert all(not r.cached for r in first.results)
    window.undo_stack.setClean()
    window.setWindowModified(False)  # as after a save: the dictionary edit must make it ask again
    assert edit(qtbot, window, [fill("Nguyen", "Win")])
    assert window.project.pronunciations == [Pronunciation("Nguyen", "Win")] and window.isWindowModified()
    lines = window.model.lines()
    # Lines 1 and 3 say the term: their audio is no longer the current audio; line 2 keeps its own.
    assert [window.session.current_render(line) is not None for line in lines] == [False, True, False]
    assert "2 lines with a changed term" in window.statusBar().currentMessage()

    again = render_and_wait(qtbot, window)
    assert {r.segment.line: r.cached for r in again.results} == {1: False, 2: True, 3: False}
    manifest = json.loads(window.last_export.manifest.read_text())
    assert [(s["text"], s.get("spoken")) for s in manifest["segments"]] == [
        ("Mr Nguyen arrived.", "Mr Win arrived."), ("The rain stopped.", None), ("nguyen smiled.", "Win smiled.")]


def test_the_editor_underlines_terms_and_explains_them_on_hover(qtbot, tiny_window):
    window = tiny_window(SCRIPT)
    assert edit(qtbot, window, [fill("Nguyen", "Win")])
    editor = window.editor
    block = editor.document().findBlockByNumber(0)
    cursor = editor.textCursor()
    cursor.setPosition(block.position() + 5)  # inside "Nguyen"
    tip = editor.tooltip_at(editor.cursorRect(cursor).center())
    assert "“Nguyen” is said as “Win”" in tip
    formats = block.layout().formats()
    none = formats[0].format.UnderlineStyle.NoUnderline
    underlined = [(f.start, f.length) for f in formats if f.format.underlineStyle() != none]
    assert (3, 6) in underlined
    cursor.setPosition(block.position() + 0)  # "Mr": nothing to say about it
    assert editor.tooltip_at(editor.cursorRect(cursor).center()) == ""


def test_a_row_without_what_to_say_is_named_and_nothing_changes(qtbot, tiny_window):
    window = tiny_window(SCRIPT)
    window.undo_stack.setClean()
    window.setWindowModified(False)
    warnings = []

    def warned(box):
        assert isinstance(box, QMessageBox)
        warnings.append(box.text())
        box.accept()

    def cancel(dialog):
        dialog.reject()

    driver = ModalDriver(qtbot, [fill("Nguyen", ""), warned, cancel])
    try:
        assert not window.edit_pronunciations()
        qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None)
    finally:
        driver.stop()
    assert warnings == ["Row 1: 'Nguyen': what to say instead is empty."]
    assert window.project.pronunciations == [] and not window.isWindowModified()
