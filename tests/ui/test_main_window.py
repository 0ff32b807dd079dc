"""The main window as a user drives it: typing, tags, undo, the timeline, files, autosave and recovery."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from studio.core.project import LineState, Project, load_project, save_project
from studio.core.recovery import find_recoveries
from studio.ui import main_window as main_window_module
from studio.ui.main_window import MainWindow, recovery_folder


def clip_summary(window: MainWindow) -> list[tuple]:
    window.refresh_views()
    return [(c.text, [(ch.label, ch.inherited) for ch in c.chips], c.voice, c.state) for c in window.timeline.clips]


def test_typing_updates_the_timeline_and_the_modified_mark(qtbot, make_window):
    window = make_window()
    window.editor.setFocus()
    qtbot.keyClicks(window.editor, "[Sad]Hello there [pause 2s] bye")
    qtbot.waitUntil(lambda: window.timeline.clips and window.timeline.clips[0].text == "Hello there bye", timeout=3000)
    clip = window.timeline.clips[0]
    assert [(ch.label, ch.inherited) for ch in clip.chips] == [("Sad", False)]
    assert [kind for kind, _ in clip.pieces] == ["speech", "pause", "speech"]
    assert clip.pieces[1] == ("pause", 2.0) and clip.estimated and clip.state == "stale"
    assert window.isWindowModified()
    assert "1 line, 2 speech segments, 1 pause" in window.statusBar().currentMessage()


def test_typing_merges_into_one_undo_step_and_undo_redo_restore(qtbot, make_window):
    window = make_window()
    window.editor.setFocus()
    qtbot.keyClicks(window.editor, "Hello")
    assert window.undo_stack.count() == 1
    qtbot.keyClick(window.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.editor.toPlainText() == "" and window.model.text == ""
    assert not window.isWindowModified()
    qtbot.keyClick(window.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.editor.toPlainText() == "Hello" == window.model.text


def test_emotions_persist_and_inherited_chips_are_shown(make_window):
    window = make_window()
    window.editor.setPlainText("[Angry][voice: Wolf]Grr.\nStill angry.\n[Soft]Calm.")
    assert clip_summary(window) == [
        ("Grr.", [("Angry", False)], "Wolf", "stale"),
        ("Still angry.", [("Angry", True)], "Wolf", "stale"),
        ("Calm.", [("Soft", False)], "Wolf", "stale"),
    ]


def test_dropping_a_tag_on_a_clip_inserts_it_and_undo_removes_it(make_window):
    window = make_window()
    window.editor.setPlainText("One.\nTwo.")
    window.undo_stack.clear()
    window.refresh_views()
    # The same signal the timeline's dropEvent emits.
    window.timeline.tag_dropped.emit(1, "[Whispering]")
    assert window.model.text == "One.\n[Whispering] Two." == window.editor.toPlainText()
    assert clip_summary(window)[1][1] == [("Whispering", False)]
    window.undo_stack.undo()
    assert window.editor.toPlainText() == "One.\nTwo."
    window.undo_stack.redo()
    assert window.editor.toPlainText() == "One.\n[Whispering] Two."


def test_dropping_a_tag_in_the_editor_snaps_to_the_word(make_window):
    window = make_window()
    window.editor.setPlainText("Come over here.")
    window.editor.drop_tag("[Soft]", 0, 7)  # inside "over"
    assert window.editor.toPlainText() == "Come [Soft] over here."


def test_palette_shortcut_applies_to_the_selected_line(qtbot, make_window):
    window = make_window()
    window.editor.setPlainText("One.\nTwo.\nThree.")
    window.refresh_views()
    window.timeline.setFocus()
    window.timeline.select(2)
    sad = next(a for a in window.palette.shortcut_actions if a.text() == "Sad")
    sad.trigger()
    assert window.model.line(2).text == "[Sad] Three."
    assert sad.shortcut().toString() == "Alt+6"


def test_removing_a_chip_removes_its_tag(make_window):
    window = make_window()
    window.editor.setPlainText("[Sad]One [pace: slow]two")
    window.refresh_views()
    chip = window.timeline.clips[0].chips[1]
    window.timeline.chip_remove_requested.emit(0, chip.column, chip.tag_text)
    assert window.editor.toPlainText() == "[Sad]One two"
    window.undo_stack.undo()
    assert window.editor.toPlainText() == "[Sad]One [pace: slow]two"


def test_moving_a_line_carries_its_state_and_is_undoable(make_window):
    window = make_window()
    window.editor.setPlainText("A\nB\nC")
    window.toggle_lock(0)
    window.timeline.line_moved.emit(0, 2)
    assert window.model.text == "B\nC\nA" == window.editor.toPlainText()
    assert window.model.line_states() == {3: LineState(locked=True)}
    assert window.timeline.clips[2].state == "locked"
    window.undo_stack.undo()
    assert window.model.text == "A\nB\nC"
    window.undo_stack.undo()
    assert window.model.line_states() == {}


def test_keyboard_moves_between_clips(qtbot, make_window):
    window = make_window()
    window.editor.setPlainText("A\nB\nC")
    window.refresh_views()
    window.timeline.setFocus()
    window.timeline.select(0)
    qtbot.keyClick(window.timeline, Qt.Key.Key_Down)
    qtbot.keyClick(window.timeline, Qt.Key.Key_Down)
    assert window.timeline.selected == 2
    assert window.editor.textCursor().blockNumber() == 2
    qtbot.keyClick(window.timeline, Qt.Key.Key_Up)
    assert window.timeline.selected == 1


def test_grammar_error_shows_on_its_clip_and_in_the_status(make_window):
    window = make_window()
    window.editor.setPlainText("ok\nbad [tag")
    window.refresh_views()
    assert window.statusBar().currentMessage().startswith("line 2, column 5: unclosed")
    clip = window.timeline.clips[1]
    assert clip.state == "error" and "unclosed" in clip.message


def test_error_lines_are_underlined(make_window):
    window = make_window()
    window.editor.setPlainText("fine [Sad] text\nbroken ] here")
    window.editor.highlighter.rehighlight()
    doc = window.editor.document()
    assert doc.findBlockByNumber(0).userState() == 0
    assert doc.findBlockByNumber(1).userState() == 1
    formats = doc.findBlockByNumber(1).layout().formats()
    assert any(f.start == 7 and f.format.underlineStyle() != f.format.underlineStyle().NoUnderline for f in formats)


def test_save_and_open_round_trip_with_line_state(make_window, tmp_path):
    window = make_window()
    path = tmp_path / "story.qtts"
    window.editor.setPlainText("[Happy]Hello.\nBye.")
    window.choose_take(1, 2)
    assert window._save_to(path)
    assert not window.isWindowModified()
    assert window.windowTitle().startswith("story.qtts")
    saved = load_project(path)
    assert saved.script == "[Happy]Hello.\nBye." and saved.lines == {2: LineState(take=2)}

    other = make_window()
    assert other.open_project(path)
    assert other.editor.toPlainText() == "[Happy]Hello.\nBye."
    assert other.timeline.clips[1].take == 2 and other.timeline.clips[1].takes == 3
    assert not other.isWindowModified()
    assert other.recent_files()[0] == str(path)


def test_failed_open_keeps_current_project_and_file(make_window, tmp_path, monkeypatch):
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
    window.editor.setFocus()
    qtbot.keyClicks(window.editor, "unsaved")
    assert not window.close()
    assert window.isVisible()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    assert window.close()


def test_autosave_writes_a_recovery_file_and_a_new_window_recovers_it(qtbot, make_window, tmp_path, monkeypatch):
    path = tmp_path / "story.qtts"
    save_project(Project(script="Saved text."), path)
    window = make_window()
    assert window.open_project(path)
    window.editor.setFocus()
    window.editor.moveCursor(window.editor.textCursor().MoveOperation.End)
    qtbot.keyClicks(window.editor, " More.")
    recovery = window.autosave()
    assert recovery is not None and recovery.parent == recovery_folder()
    assert path.read_text(encoding="utf-8") == json.dumps(json.loads(path.read_text()), indent=2) + "\n"
    assert load_project(path).script == "Saved text."  # the project file itself is untouched
    # Simulate the crash: the first window's process "died" (a different pid in the file).
    doc = json.loads(recovery.read_text())
    doc["pid"] = 999_999_999
    recovery.write_text(json.dumps(doc))

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    restored = make_window()
    assert restored.offer_recovery()
    assert restored.editor.toPlainText() == "Saved text. More."
    assert restored.project_path == path and restored.isWindowModified()
    assert restored._save_to(path)
    assert load_project(path).script == "Saved text. More."
    assert not [r for r in find_recoveries(recovery_folder()) if r.project_path == path]


def test_declining_recovery_discards_it(make_window, monkeypatch):
    window = make_window()
    window.editor.setPlainText("lost work")
    recovery = window.autosave()
    doc = json.loads(recovery.read_text())
    doc["pid"] = 999_999_999
    recovery.write_text(json.dumps(doc))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    other = make_window()
    assert not other.offer_recovery()
    assert not recovery.exists()


def test_autosave_timer_is_30_seconds_and_clean_projects_write_nothing(make_window):
    window = make_window()
    assert window.autosave_timer.interval() == 30_000 and window.autosave_timer.isActive()
    assert window.autosave() is None


def test_layout_is_saved_and_restored(make_window):
    window = make_window()
    window.splitter.setSizes([300, 300, 150])
    def shares(w):
        sizes = w.splitter.sizes()
        return [round(size / sum(sizes), 2) for size in sizes]

    expected = shares(window)
    window.save_layout()
    assert QSettings().value("window/geometry") is not None
    other = make_window()
    assert shares(other) != expected
    other.restore_layout()
    assert shares(other) == pytest.approx(expected, abs=0.03)


def test_render_settings_dialog_writes_the_project(qtbot, tmp_path):
    from studio.ui.render_settings import MachineSettings, RenderSettingsDialog

    project = Project()
    machine = MachineSettings()
    dialog = RenderSettingsDialog(project, machine)
    qtbot.addWidget(dialog)
    dialog.model_edit.setText("/models/vd")
    dialog.language_combo.setCurrentText("German")
    dialog.seed_spin.setValue(42)
    dialog.device_combo.setCurrentText("cpu")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    assert project.render.model == "/models/vd" and project.render.language == "german" and project.render.seed == 42
    assert project.cast == {}  # the default voice is chosen in Voices, not here
    assert machine.device == "cpu"


@pytest.mark.parametrize("action", ["copy"])
def test_copy_line_as_text(make_window, action):
    from PySide6.QtGui import QGuiApplication

    window = make_window()
    window.editor.setPlainText("One.\n[Sad]Two.")
    window.copy_line(1)
    assert QGuiApplication.clipboard().text() == "[Sad]Two."


def test_module_exposes_recovery_folder_under_user_data(tmp_path):
    assert "recovery" in str(main_window_module.recovery_folder())


def test_capability_warning_and_unknown_voice_are_shown_on_their_clips(make_window, tmp_path):
    import numpy as np
    import soundfile

    from studio.core.project import CastEntry
    from studio.core.voice import VoiceSpec

    clip = tmp_path / "me.wav"
    soundfile.write(clip, np.zeros(24000, np.float32), 24000)
    window = make_window()
    window.project.cast = {
        "Me": CastEntry(voice=VoiceSpec("clone", ref_audio=str(clip), ref_text="Hi.",
                                        emotion_refs=(("Soft", str(clip), "Hi."),))),
    }
    window.project.render.voice = "Me"
    window.editor.setPlainText("[Soft]Gentle.\n[Angry]Loud!\n[voice: Ghost]Boo.\n[voice: Me][Soft][pace: slow]Slow.\n"
                               "[tone: warm]Warm.")
    window.refresh_views()
    soft, angry, ghost, slow, warm = window.timeline.clips
    assert not soft.warning
    assert angry.warning and "no clip for 'Angry'" in angry.message
    assert ghost.state == "error" and "voice 'Ghost' is not in the project's cast" in ghost.message
    # A pace is applied to a cloned voice by stretching its audio; another directive is not applied at all.
    assert not slow.warning
    assert warm.warning
    assert "takes no instruct, so these are not applied: tone: warm" in warm.message


def test_line_separators_give_the_editor_and_the_timeline_the_same_lines(make_window, tmp_path):
    path = tmp_path / "sep.qtts"
    doc = {"schema_version": 1, "script": "One.\u2028Two.\u2029Three.", "lines": [{"line": 3, "locked": True}]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    window = make_window()
    assert window.open_project(path)
    assert window.editor.document().blockCount() == 3
    assert [(c.text, c.locked) for c in window.timeline.clips] == [("One.", False), ("Two.", False), ("Three.", True)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [("[" * 100_000, "nested more than 64 levels deep"), ('{"schema_version": ' + "7" * 5000 + "}", "5000 digits")],
)
def test_hostile_project_files_end_in_one_message(make_window, tmp_path, monkeypatch, content, reason):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    path = tmp_path / "hostile.qtts"
    path.write_text(content, encoding="utf-8")
    window = make_window()
    assert not window.open_project(path)
    assert len(shown) == 1 and str(path) in shown[0] and reason in shown[0]


def test_render_settings_keep_a_library_default_voice_and_apply_without_a_voice(qtbot):
    from studio.core.project import CastEntry
    from studio.ui.render_settings import MachineSettings, RenderSettingsDialog

    # The default voice is a library profile: the dialog leaves that reference alone.
    project = Project()
    project.cast["Narrator"] = CastEntry(profile="narrator-abc123")
    project.render.voice = "Narrator"
    dialog = RenderSettingsDialog(project, MachineSettings())
    qtbot.addWidget(dialog)
    assert dialog.default_voice_label.text().startswith("Narrator:")
    dialog.seed_spin.setValue(42)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    assert project.cast["Narrator"] == CastEntry(profile="narrator-abc123") and project.render.seed == 42

    # No default voice and nothing typed: the other settings still apply (pre-flight asks for a voice later).
    empty = Project()
    dialog = RenderSettingsDialog(empty, MachineSettings())
    qtbot.addWidget(dialog)
    dialog.device_combo.setCurrentText("cpu")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    assert dialog.machine.device == "cpu" and empty.cast == {} and empty.render.voice is None
