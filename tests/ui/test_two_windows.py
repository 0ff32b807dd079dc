"""Two windows on one project: neither loses the other's work (issue #13, item 2)."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QMessageBox

from studio.core.project import Project, load_project, save_project
from studio.core.recovery import find_recoveries
from studio.ui.main_window import recovery_folder


def _type_at_end(qtbot, window, text: str) -> None:
    window.editor.setFocus()
    window.editor.moveCursor(window.editor.textCursor().MoveOperation.End)
    qtbot.keyClicks(window.editor, text)


def _answer_conflict(monkeypatch, button: QMessageBox.StandardButton, asked: list) -> None:
    def exec_(box):
        asked.append(box.text())
        return button.value

    monkeypatch.setattr(QMessageBox, "exec", exec_)


def test_each_window_keeps_its_own_recovery_file(qtbot, make_window, tmp_path, monkeypatch):
    path = tmp_path / "story.qtts"
    save_project(Project(script="Base."), path)
    first, second = make_window(), make_window()
    assert first.open_project(path) and second.open_project(path)
    _type_at_end(qtbot, first, " First window.")
    _type_at_end(qtbot, second, " Second window.")
    first_recovery, second_recovery = first.autosave(), second.autosave()
    assert first_recovery != second_recovery

    # The second window saves: its recovery file goes, the first window's unsaved work stays.
    assert second.save()
    assert load_project(path).script == "Base. Second window."
    assert not second_recovery.exists()
    assert json.loads(first_recovery.read_text())["project"]["script"] == "Base. First window."

    # The first window's process dies: a new window offers exactly its work back.
    doc = json.loads(first_recovery.read_text())
    doc["pid"] = 999_999_999
    first_recovery.write_text(json.dumps(doc))
    [recovered] = [r for r in find_recoveries(recovery_folder()) if r.project_path == path]
    assert recovered.project.script == "Base. First window."


def test_saving_over_a_file_another_window_saved_asks_first(qtbot, make_window, tmp_path, monkeypatch):
    path = tmp_path / "story.qtts"
    save_project(Project(script="Base."), path)
    first, second = make_window(), make_window()
    assert first.open_project(path) and second.open_project(path)
    _type_at_end(qtbot, second, " Second.")
    assert second.save()
    _type_at_end(qtbot, first, " First.")

    asked: list[str] = []
    _answer_conflict(monkeypatch, QMessageBox.StandardButton.Cancel, asked)
    assert not first.save()
    assert asked and "changed on disk since it was opened here" in asked[0] and str(path) in asked[0]
    assert load_project(path).script == "Base. Second."  # the other window's save is intact
    assert first.isWindowModified()

    _answer_conflict(monkeypatch, QMessageBox.StandardButton.Discard, asked)  # "Overwrite"
    assert first.save()
    assert load_project(path).script == "Base. First."
    assert load_project(path.with_name("story.qtts.bak")).script == "Base. Second."
    # Having saved, the window knows the new version: the next save goes through without asking.
    asked.clear()
    _type_at_end(qtbot, first, " Again.")
    assert first.save() and not asked


def test_a_read_only_project_gets_a_message_and_the_edits_stay(qtbot, make_window, tmp_path, monkeypatch):
    path = tmp_path / "story.qtts"
    save_project(Project(script="Base."), path)
    path.chmod(0o444)
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    window = make_window()
    assert window.open_project(path)
    _type_at_end(qtbot, window, " Edited.")
    assert not window.save()
    assert shown and "the file is read-only" in shown[0] and str(path) in shown[0]
    assert load_project(path).script == "Base."
    assert window.isWindowModified() and window.editor.toPlainText() == "Base. Edited."
