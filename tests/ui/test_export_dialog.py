"""File -> Export Audio…, Open Containing Folder and the Render All copy setting, in the real window with
a tiny VoiceDesign checkpoint rendering through the real engine; the real dialogs are answered by a
driver that clicks what a user would."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from studio.audio import export as export_module
from studio.audio.export import ExportError, ExportSegment, export_to_path
from studio.core.project import ExportSettings, load_project
from studio.ui import window_export
from studio.ui.export_dialog import ExportDialog
from tests.ui.test_render_in_window import render_and_wait

SCRIPT = "[Whispering]Come closer.\n[Angry]Get out!\n[neutral]Fine."


@pytest.fixture
def window(tiny_window):
    return tiny_window(SCRIPT)


class ModalDriver:
    """Answers the modal dialogs that open, in order, with the given handlers (each gets the widget).
    Fails the test when a dialog opens with no handler left, so nothing is ever left open."""

    def __init__(self, qtbot, handlers):
        self.handlers = list(handlers)
        self.seen: list = []
        self.unexpected: list[str] = []
        self.current = None
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self):
        widget = QApplication.activeModalWidget()
        if widget is self.current:
            return
        self.current = widget
        if widget is None:
            return
        self.seen.append(widget)
        if not self.handlers:
            self.unexpected.append(f"{type(widget).__name__}: {widget.windowTitle()}")
            widget.close()
            return
        try:
            self.handlers.pop(0)(widget)
        except Exception as exc:  # noqa: BLE001 - reported by stop(); the dialog must not stay open
            self.unexpected.append(f"{type(widget).__name__} {widget.windowTitle()!r}: {exc!r}")
            widget.close()

    def stop(self):
        self.timer.stop()
        assert not self.unexpected, f"dialogs nobody expected: {self.unexpected}"
        assert not self.handlers, f"{len(self.handlers)} expected dialogs never opened"


def fill_export(path, *, subtitles=True, stems=False, fmt="wav", timestamped=None, loudness=None):
    def handle(dialog):
        assert isinstance(dialog, ExportDialog), dialog
        dialog.path_edit.setText(str(path))
        dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(fmt))
        dialog.subtitles_check.setChecked(subtitles)
        dialog.stems_check.setChecked(stems)
        if timestamped is not None:
            dialog.timestamped_check.setChecked(timestamped)
        dialog.loudness_check.setChecked(loudness is not None)
        if loudness is not None:
            dialog.loudness_spin.setValue(loudness)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    return handle


def cancel(widget):
    if isinstance(widget, ExportDialog):
        widget.reject()
    else:
        widget.button(QMessageBox.StandardButton.Cancel).click()


def answer(button_text_or_role, expect_in_text=None, record=None):
    def handle(box):
        assert isinstance(box, QMessageBox), box
        text = f"{box.windowTitle()}\n{box.text()}"
        if record is not None:
            record.append(text)
        if expect_in_text is not None:
            assert expect_in_text in text, text
        if isinstance(button_text_or_role, QMessageBox.StandardButton):
            box.button(button_text_or_role).click()
            return
        [button] = [b for b in box.buttons() if b.text().replace("&", "") == button_text_or_role]
        button.click()
    return handle


def export_with(qtbot, window, handlers):
    driver = ModalDriver(qtbot, handlers)
    try:
        started = window.export_audio()
        qtbot.waitUntil(lambda: not window.exporting_audio, timeout=60_000)
    finally:
        driver.stop()
    return started


def mix_samples(window):
    results = window.session.mix_results(window.model.lines(), window._items_per_line())
    return np.concatenate([r.samples for r in results])


def read_pcm16(path):
    audio, rate = soundfile.read(path, dtype="float32")
    return audio, rate


def test_export_audio_writes_the_mix_to_the_chosen_file_with_subtitles(qtbot, window, tmp_path):
    render_and_wait(qtbot, window)
    assert not window.open_export_folder_action.isEnabled() or window.last_export is not None
    target = tmp_path / "chosen" / "story.wav"
    target.parent.mkdir()
    assert export_with(qtbot, window, [fill_export(target)])
    audio, rate = read_pcm16(target)
    mix = mix_samples(window)
    assert rate == 24000 and len(audio) == len(mix)
    assert np.abs(audio - np.clip(mix, -1, 1)).max() < 1e-4  # 16-bit PCM of exactly the mix
    assert target.with_suffix(".srt").read_text().count("-->") == 3
    assert target.with_suffix(".vtt").read_text().startswith("WEBVTT")
    assert sorted(p.name for p in target.parent.iterdir()) == ["story.srt", "story.vtt", "story.wav"]
    assert "Exported" in window.statusBar().currentMessage()


def test_flac_stems_and_loudness_without_subtitles(qtbot, window, tmp_path):
    render_and_wait(qtbot, window)
    target = tmp_path / "story.flac"
    assert export_with(qtbot, window, [fill_export(target, fmt="flac", subtitles=False, stems=True, loudness=-20)])
    info = soundfile.info(target)
    assert info.format == "FLAC" and info.subtype == "PCM_24"
    assert not target.with_suffix(".srt").exists()
    stems = sorted((tmp_path / "story_stems").iterdir())
    assert len(stems) == 3 and all(p.suffix == ".flac" for p in stems)
    # The settings chosen are the project's now (and the window asks to save them).
    assert window.project.render.export == ExportSettings(audio_format="flac", stems=True, loudness_lufs=-20.0,
                                                          subtitles=False, timestamped_copy=True)
    assert window.isWindowModified()


def test_an_existing_file_is_untouched_when_the_user_says_no(qtbot, window, tmp_path):
    render_and_wait(qtbot, window)
    target = tmp_path / "story.wav"
    target.write_bytes(b"the user's own file")
    questions = []
    export_with(qtbot, window, [
        fill_export(target, subtitles=False),
        answer(QMessageBox.StandardButton.No, expect_in_text="Replace story.wav?", record=questions),
        cancel,  # back in the dialog: the user gives up
    ])
    assert target.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "renders") == ["story.wav"]
    assert str(tmp_path) in questions[0]


def test_yes_replaces_every_named_file_and_leaves_no_temp_files(qtbot, window, tmp_path):
    render_and_wait(qtbot, window)
    target = tmp_path / "story.wav"
    target.write_bytes(b"old audio")
    target.with_suffix(".srt").write_text("old subtitles")
    questions = []
    export_with(qtbot, window, [
        fill_export(target),
        answer(QMessageBox.StandardButton.Yes, expect_in_text="Replace 2 files?", record=questions),
    ])
    assert "story.wav" in questions[0] and "story.srt" in questions[0]
    audio, _ = read_pcm16(target)
    assert np.abs(audio - np.clip(mix_samples(window), -1, 1)).max() < 1e-4
    assert "-->" in target.with_suffix(".srt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "renders") == ["story.srt", "story.vtt",
                                                                                  "story.wav"]


def test_unrendered_lines_are_counted_and_the_rest_can_be_exported(qtbot, window, tmp_path):
    render_and_wait(qtbot, window)
    rendered_before = window.session.mix_results(window.model.lines(), window._items_per_line())
    # Line 2 is edited: its audio is no longer current.
    window.editor.setPlainText("[Whispering]Come closer.\n[Angry]Get out now!\n[neutral]Fine.")
    window.refresh_views()
    target = tmp_path / "partial.wav"
    # Cancel first: nothing is written.
    export_with(qtbot, window, [answer("Cancel", expect_in_text="1 of 3 lines is not rendered yet")])
    assert not target.exists()
    export_with(qtbot, window, [answer("Export Rendered Lines"), fill_export(target, subtitles=True)])
    kept = [r for r in rendered_before if r.segment.line != 2]
    expected = np.concatenate([r.samples for r in kept])
    audio, _ = read_pcm16(target)
    assert len(audio) == len(expected) and np.abs(audio - np.clip(expected, -1, 1)).max() < 1e-4
    assert target.with_suffix(".srt").read_text().count("-->") == 2


def test_nothing_rendered_says_so_and_opens_no_dialog(qtbot, window):
    record = []
    assert not export_with(qtbot, window, [answer(QMessageBox.StandardButton.Ok, record=record)])
    assert "No line has been rendered yet" in record[0]


def test_render_all_skips_its_timestamped_copy_when_the_setting_is_off(qtbot, window, tmp_path):
    window.project.render.export.timestamped_copy = False
    render_and_wait(qtbot, window)
    assert window.last_export is None
    assert not (tmp_path / "renders").exists() or not any((tmp_path / "renders").iterdir())
    assert "no timestamped copy saved" in window.statusBar().currentMessage()


def test_the_dialog_turns_the_render_all_copy_off_and_the_project_file_keeps_it(qtbot, window, tmp_path):
    render_and_wait(qtbot, window)
    assert window.last_export is not None  # on by default: Render All wrote its copy
    export_with(qtbot, window, [fill_export(tmp_path / "story.wav", timestamped=False)])
    assert window.project.render.export.timestamped_copy is False
    project_file = tmp_path / "story.qtts"
    assert window._save_to(project_file)
    assert json.loads(project_file.read_text())["render"]["export"]["timestamped_copy"] is False
    assert load_project(project_file).render.export.timestamped_copy is False


def test_open_containing_folder_opens_the_last_exports_folder(qtbot, window, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(window_export.QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    assert not window.open_export_folder_action.isEnabled()
    window.project.render.export.timestamped_copy = False
    render_and_wait(qtbot, window)
    assert not window.open_export_folder_action.isEnabled()  # no export yet
    (tmp_path / "out").mkdir()
    export_with(qtbot, window, [fill_export(tmp_path / "out" / "story.wav")])
    assert window.open_export_folder_action.isEnabled()
    window.open_export_folder_action.trigger()
    assert [u.toLocalFile() for u in opened] == [str(tmp_path / "out")]


# --- the dialog on its own ----------------------------------------------------------------------------


def test_the_dialog_names_the_field_and_folder_at_fault(qtbot, tmp_path):
    dialog = ExportDialog(ExportSettings(), tmp_path / "story.wav")
    qtbot.addWidget(dialog)
    dialog.path_edit.setText("")
    dialog.accept()
    assert dialog.result() != ExportDialog.DialogCode.Accepted
    assert dialog.error_label.text() == "File: choose where to export the audio"
    dialog.path_edit.setText(str(tmp_path / "missing" / "story.wav"))
    dialog.accept()
    assert dialog.error_label.text() == f"File: {tmp_path / 'missing'}: no such folder"
    dialog.path_edit.setText(str(tmp_path / "story"))
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("flac"))
    assert dialog.path() == tmp_path / "story.flac" and dialog.path_edit.text() == str(tmp_path / "story.flac")
    dialog.stems_check.setChecked(True)
    assert dialog.writes_label.text().startswith("story.flac, story.srt, story.vtt, story_stems/")
    dialog.path_edit.setText(str(tmp_path / "other.wav"))
    dialog.path_edit.editingFinished.emit()
    assert dialog.audio_format == "wav"


def test_dialog_screenshot(qtbot, tmp_path):
    dialog = ExportDialog(ExportSettings(stems=True, loudness_lufs=-16.0), tmp_path / "story.wav",
                          summary="Exporting 3 lines, 4.2 s of audio, in script order.")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.grab().save(os.environ.get("EXPORT_DIALOG_PNG", str(tmp_path / "export_dialog.png")))


# --- export_to_path: all or nothing -----------------------------------------------------------------


def _segments():
    rng = np.random.default_rng(0)
    return [ExportSegment(index=i, kind="speech", line=i + 1, text=f"line {i}", emotion=None, voice=None,
                          samples=(rng.standard_normal(2400) * 0.1).astype(np.float32), cached=False, seed=0)
            for i in range(2)]


def test_a_target_the_user_was_not_asked_about_is_never_replaced(tmp_path):
    (tmp_path / "a.vtt").write_text("mine")
    with pytest.raises(ExportError, match="a.vtt: already exists; nothing was overwritten"):
        export_to_path(_segments(), sample_rate=24000, audio_path=tmp_path / "a.wav", replace=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.vtt"]


def test_a_failure_part_way_puts_the_replaced_files_back(tmp_path, monkeypatch):
    for suffix in (".wav", ".srt", ".vtt"):
        (tmp_path / f"a{suffix}").write_text(f"old {suffix}")
    real_publish = export_module._publish

    def publish(tmp, final):
        if final.suffix == ".vtt":
            raise OSError(28, "No space left on device")
        return real_publish(tmp, final)

    monkeypatch.setattr(export_module, "_publish", publish)
    targets = [tmp_path / f"a{s}" for s in (".wav", ".srt", ".vtt")]
    with pytest.raises(ExportError, match="nothing was changed"):
        export_to_path(_segments(), sample_rate=24000, audio_path=tmp_path / "a.wav", replace=targets)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a.wav": "old .wav", "a.srt": "old .srt", "a.vtt": "old .vtt"}


@pytest.mark.parametrize("typed", ["/", ".", "..", "~/", "{folder}/", "{folder}"])
def test_a_folder_typed_as_the_file_is_named_as_such_not_an_error_in_a_slot(qtbot, tmp_path, typed):
    dialog = ExportDialog(ExportSettings(), tmp_path / "story.wav")
    qtbot.addWidget(dialog)
    folder = tmp_path / "out"
    folder.mkdir()
    text = typed.format(folder=folder)
    for end in range(1, len(text) + 1):  # typed a character at a time: every prefix is shown
        dialog.path_edit.setText(text[:end])
    dialog.accept()
    assert dialog.result() != ExportDialog.DialogCode.Accepted
    assert dialog.error_label.text().startswith("File: ") and "is a folder" in dialog.error_label.text()
    assert not (folder.parent / "out.wav").exists()
