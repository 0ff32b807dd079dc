"""The main window as a user drives it: typing, the segment list, errors, open and save."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from studio.core.project import Project, load_project, save_project
from studio.ui.main_window import MainWindow


@pytest.fixture
def make_window(qtbot):
    """Windows for one test, kept alive until teardown and then shut down the way a user's close does.

    Holding a strong reference matters: a window collected by Python at the end of the test would be
    destroyed with paint events for its pyqtgraph view still queued.
    """
    windows = []

    def make() -> MainWindow:
        window = MainWindow()
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
        window.editor.document().setModified(False)
        window.close()
        window.deleteLater()
    qtbot.wait(10)


def segment_rows(window: MainWindow) -> list[list[str]]:
    tree = window.segments
    return [[tree.topLevelItem(i).text(c) for c in range(5)] for i in range(tree.topLevelItemCount())]


def test_typing_updates_segments_after_a_short_idle(qtbot, make_window):
    window = make_window()
    qtbot.keyClicks(window.editor, "[Sad]Hello there [pause 2s] bye")
    qtbot.waitUntil(lambda: window.segments.topLevelItemCount() == 3, timeout=3000)
    assert segment_rows(window) == [
        ["1", "Sad", "", "", "Hello there"],
        ["1", "", "", "", "(pause 2 s)"],
        ["1", "Sad", "", "", "bye"],
    ]
    assert window.isWindowModified()
    assert "2 speech segments, 1 pauses" in window.statusBar().currentMessage()


def test_grammar_error_shows_line_and_column_in_status(qtbot, make_window):
    window = make_window()
    window.editor.setPlainText("ok\nbad [tag")
    window.refresh_segments()
    assert window.statusBar().currentMessage().startswith("line 2, column 5: unclosed")
    assert segment_rows(window) == [["1", "", "", "", "ok"]]


def test_error_lines_are_underlined(qtbot, make_window):
    window = make_window()
    window.editor.setPlainText("fine [Sad] text\nbroken ] here")
    window.editor.highlighter.rehighlight()
    doc = window.editor.document()
    assert doc.findBlockByNumber(0).userState() == 0
    assert doc.findBlockByNumber(1).userState() == 1
    formats = doc.findBlockByNumber(1).layout().formats()
    assert any(f.start == 7 and f.format.underlineStyle() != f.format.underlineStyle().NoUnderline for f in formats)


def test_activating_a_segment_moves_the_cursor_to_it(qtbot, make_window):
    window = make_window()
    window.editor.setPlainText("one\n  [Sad] two")
    window.refresh_segments()
    window._on_segments_item_activated(window.segments.topLevelItem(1), 0)
    cursor = window.editor.textCursor()
    assert (cursor.blockNumber(), cursor.positionInBlock()) == (1, 8)


def test_save_and_open_round_trip(qtbot, make_window, tmp_path):
    window = make_window()
    path = tmp_path / "story.qtts"
    window.editor.setPlainText("[Happy]Hello.")
    assert window._save_to(path)
    assert not window.isWindowModified()
    assert window.windowTitle().startswith("story.qtts")
    assert load_project(path).script == "[Happy]Hello."

    other = make_window()
    assert other.open_project(path)
    assert other.editor.toPlainText() == "[Happy]Hello."
    assert not other.isWindowModified()


def test_failed_open_keeps_current_project_and_file(qtbot, make_window, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    bad = tmp_path / "bad.qtts"
    bad.write_text('{"schema_version": 1, "script": 3}', encoding="utf-8")
    window = make_window()
    window.editor.setPlainText("keep me")
    assert not window.open_project(bad)
    assert window.editor.toPlainText() == "keep me"
    assert shown and "field 'script'" in shown[0] and str(bad) in shown[0]
    assert bad.read_text(encoding="utf-8") == '{"schema_version": 1, "script": 3}'


def test_close_with_unsaved_changes_asks_and_cancel_keeps_window(qtbot, make_window, monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    window = make_window()
    qtbot.keyClicks(window.editor, "unsaved")
    assert not window.close()
    assert window.isVisible()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    assert window.close()


def test_undo_shortcut_reverts_typing(qtbot, make_window):
    window = make_window()
    window.editor.setFocus()
    qtbot.keyClicks(window.editor, "abc")
    qtbot.keyClick(window.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.editor.toPlainText() == ""


def test_open_project_file_from_disk_shows_its_segments(qtbot, make_window, tmp_path):
    path = tmp_path / "p.qtts"
    save_project(Project(script="[voice: Ann][pace: slow]Hi.\nBye."), path)
    window = make_window()
    assert window.open_project(path)
    assert segment_rows(window) == [["1", "", "Ann", "pace: slow", "Hi."], ["2", "", "Ann", "pace: slow", "Bye."]]


def test_render_settings_dialog_writes_the_project(qtbot, tmp_path):
    from studio.ui.render_settings import MachineSettings, RenderSettingsDialog

    project = Project()
    machine = MachineSettings()
    dialog = RenderSettingsDialog(project, machine)
    qtbot.addWidget(dialog)
    dialog.model_edit.setText("/models/vd")
    dialog.description_edit.setPlainText("A bright young voice")
    dialog.language_combo.setCurrentText("German")
    dialog.seed_spin.setValue(42)
    dialog.device_combo.setCurrentText("cpu")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    assert project.render.model == "/models/vd" and project.render.language == "german" and project.render.seed == 42
    assert project.cast[project.render.voice].voice.description == "A bright young voice"
    assert machine.device == "cpu"


def test_render_settings_dialog_refuses_an_incomplete_voice(qtbot, monkeypatch):
    from studio.ui.render_settings import MachineSettings, RenderSettingsDialog

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warnings.append(text))
    project = Project()
    dialog = RenderSettingsDialog(project, MachineSettings())
    qtbot.addWidget(dialog)
    dialog.kind_combo.setCurrentIndex(2)  # cloned, with no clip
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "reference clip" in warnings[0] and project.cast == {}
