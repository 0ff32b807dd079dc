"""The Voices dialog as the user drives it from the real window: preview, edit, live refresh after
design -> clone, the cast filled from the script, and the one place for the default voice.

Renders go through the real worker and engine on the tiny VoiceDesign checkpoint.
"""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.project import CastEntry, GenerationParams
from studio.core.voice import VoiceSpec
from studio.ui.voices_dialog import ProfileEditor, VoicesDialog


@pytest.fixture
def tiny_window(make_window, tiny_checkpoints):
    window = make_window()
    window.project.render.model = str(tiny_checkpoints["voice_design"])
    window.project.render.generation = GenerationParams(max_new_tokens=15)
    window.machine.device = "cpu"
    return window


def while_open(monkeypatch, user):
    """Run `user(dialog)` as the user of the Voices dialog the window opens (instead of a modal loop)."""
    seen = {}

    def exec_(dialog):
        seen["dialog"] = dialog
        user(dialog)
        return VoicesDialog.DialogCode.Accepted

    monkeypatch.setattr(VoicesDialog, "exec", exec_)
    return seen


def test_preview_renders_the_sentence_in_the_selected_voice_and_hands_it_to_the_player(
        qtbot, tiny_window, monkeypatch):
    window = tiny_window
    designed = window.library.add("Cowboy", VoiceSpec.design("a deep, raspy voice of a tired cowboy"), seed=4)

    def user(dialog):
        dialog.select_profile(designed.id)
        dialog.preview_edit.setText("Howdy, partner.")
        dialog.preview_button.click()
        qtbot.waitUntil(lambda: dialog.preview_audio is not None or "Could not" in dialog.status_label.text(),
                        timeout=120_000)
        dialog.grab().save("/tmp/voices_preview.png")

    seen = while_open(monkeypatch, user)
    window.edit_voices()
    dialog = seen["dialog"]
    job = window.last_preview_job
    assert job.segments[0].text == "Howdy, partner." and job.segments[0].seed == 4
    assert job.voices["preview"] == designed.voice
    # The rendered samples reached the dialog's player buffer, and nothing of the project changed.
    assert dialog.preview_audio is not None and len(dialog.preview_audio) > 0
    np.testing.assert_array_equal(dialog.preview_audio.view(), np.asarray(window.last_preview, np.float32))
    assert np.abs(dialog.preview_audio.view()).max() > 0.01
    # This machine has no sound card: the dialog says so, and keeps the audio.
    assert "Rendered Cowboy" in dialog.status_label.text() and "no output device" in dialog.status_label.text()
    assert window.project.cast == {} and not window.isWindowModified()


def test_preview_without_a_model_of_the_voices_type_says_why_in_the_dialog(qtbot, make_window, monkeypatch):
    window = make_window()
    preset = window.library.add("Ryan", VoiceSpec.preset("ryan"))

    def user(dialog):
        dialog.select_profile(preset.id)
        dialog.preview_button.click()

    seen = while_open(monkeypatch, user)
    window.edit_voices()
    text = seen["dialog"].status_label.text()
    assert text.startswith("Could not preview Ryan: no CustomVoice model is installed")
    assert seen["dialog"].preview_audio is None


def test_an_edited_voice_is_what_the_next_preview_renders(qtbot, tiny_window, monkeypatch):
    window = tiny_window
    designed = window.library.add("Cowboy", VoiceSpec.design("a deep, raspy voice of a tired cowboy"))

    def edit(editor):
        assert editor.description_edit.toPlainText() == "a deep, raspy voice of a tired cowboy"
        assert editor.name_edit.text() == "Cowboy"
        editor.name_edit.setText("Old Cowboy")
        editor.description_edit.setPlainText("a bright young cowgirl")
        editor.seed_spin.setValue(11)
        editor.accept()
        return editor.result()

    monkeypatch.setattr(ProfileEditor, "exec", edit)

    def user(dialog):
        dialog.select_profile(designed.id)
        dialog.edit_selected()
        assert dialog.profiles.currentItem().text().startswith("Old Cowboy")
        dialog.preview_button.click()
        qtbot.waitUntil(lambda: dialog.preview_audio is not None, timeout=120_000)

    while_open(monkeypatch, user)
    window.edit_voices()
    on_disk = window.library.get(designed.id)
    assert on_disk.name == "Old Cowboy" and on_disk.seed == 11
    assert on_disk.voice.description == "a bright young cowgirl"
    job = window.last_preview_job
    assert job.voices["preview"].description == "a bright young cowgirl" and job.segments[0].seed == 11


def test_editing_a_cloned_voice_changes_its_clip_and_transcript_and_model(qtbot, make_window, monkeypatch,
                                                                         tmp_path, tiny_checkpoints):
    import soundfile

    from studio.engine.models import register_local_folder

    register_local_folder(tiny_checkpoints["base"])
    t = np.arange(24000) / 24000
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    soundfile.write(first, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000)
    soundfile.write(second, (0.2 * np.sin(2 * np.pi * 400 * t)).astype(np.float32), 24000)
    window = make_window()
    profile = window.library.add("Me", VoiceSpec.clone(first, "Hello."))
    window.project.cast["Me"] = CastEntry(profile=profile.id)

    def edit(editor):
        assert editor.kind == "clone" and editor.ref_text_edit.text() == "Hello."
        editor.clip_edit.setText(str(second))
        editor.ref_text_edit.setText("Hello again.")
        editor.model_choice.setCurrentIndex(editor.model_choice.findData(str(tiny_checkpoints["base"])))
        editor.accept()
        return editor.result()

    monkeypatch.setattr(ProfileEditor, "exec", edit)
    while_open(monkeypatch, lambda dialog: (dialog.select_profile(profile.id), dialog.edit_selected()))
    window.edit_voices()
    edited = window.library.get(profile.id)
    assert edited.voice.ref_text == "Hello again." and edited.voice.model == str(tiny_checkpoints["base"])
    audio, _ = soundfile.read(edited.voice.ref_audio)
    assert np.abs(np.fft.rfft(audio)).argmax() == 400
    # The cast refers to the same profile, and the project asks to be saved (its render changed).
    assert window._voices()["Me"].ref_text == "Hello again." and window.isWindowModified()


def test_an_edit_with_a_missing_field_names_it_and_changes_nothing(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from studio.core.project import Project
    from studio.core.voice_library import VoiceLibrary

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    library = VoiceLibrary(tmp_path / "voices")
    profile = library.add("Cowboy", VoiceSpec.design("a tired cowboy"))
    editor = ProfileEditor("design", profile=profile)
    qtbot.addWidget(editor)
    editor.description_edit.setPlainText("  ")
    editor.accept()
    assert editor.result() != editor.DialogCode.Accepted and shown[0].startswith("Identity:")
    dialog = VoicesDialog(Project(), library)
    qtbot.addWidget(dialog)
    assert dialog.edit_profile(profile, "", VoiceSpec.design("x")) is None
    assert "Cowboy was not changed: a voice profile needs a name" in shown[1]
    assert library.get(profile.id).voice.description == "a tired cowboy"


def test_design_then_clone_shows_the_new_voice_in_the_open_dialog(qtbot, tiny_window, monkeypatch):
    window = tiny_window
    designed = window.library.add("Old Keeper (cloned)", VoiceSpec.design("an old lighthouse keeper"), seed=4)

    def user(dialog):
        dialog.select_profile(designed.id)
        dialog.design_then_clone_requested.emit(designed.id, "The lamp is lit, and the sea is calm tonight.")
        qtbot.waitUntil(lambda: window.last_cloned_profile is not None, timeout=120_000)
        dialog.grab().save("/tmp/voices_after_clone.png")

    seen = while_open(monkeypatch, user)
    window.edit_voices()
    dialog = seen["dialog"]
    new = window.last_cloned_profile
    # No "(cloned) (cloned)"; the name is unique, and the open list shows it, selected.
    assert new.name == "Old Keeper (cloned) 2"
    assert dialog.profile_ids() == [designed.id, new.id]
    assert dialog.profiles.currentItem().text().startswith("Old Keeper (cloned) 2  (cloned")


def test_the_cast_is_filled_from_the_scripts_voice_names(qtbot, make_window, monkeypatch):
    window = make_window()
    narrator = window.library.add("Narrator", VoiceSpec.design("a calm narrator"))
    guard_voice = window.library.add("Gruff", VoiceSpec.design("a gruff guard"))
    window.editor.setPlainText("[voice: Narrator]Night fell.\n[voice: Guard]Halt!\n[voice: Narrator]He stopped.")

    def user(dialog):
        rows = [dialog.cast.item(r, 0).text() for r in range(dialog.cast.rowCount())]
        assert rows == ["Narrator", "Guard"]
        assert dialog.pending == ["Guard"] and "still without a voice: Guard" in dialog.cast_note.text()
        guard_combo = dialog.cast.cellWidget(1, 1)
        assert guard_combo.currentText().startswith("— choose a voice")
        dialog.grab().save("/tmp/voices_cast_from_script.png")
        guard_combo.setCurrentIndex(guard_combo.findData(guard_voice.id))

    while_open(monkeypatch, user)
    window.edit_voices()
    # Narrator matched a library voice of that name when the dialog opened; Guard was assigned by the user.
    assert window.project.cast == {"Narrator": CastEntry(profile=narrator.id),
                                   "Guard": CastEntry(profile=guard_voice.id)}
    assert window.project.render.voice == "Narrator" and window.isWindowModified()
    voices = window._voices()
    assert voices["Guard"].description == "a gruff guard" and voices[None].description == "a calm narrator"


def test_the_default_voice_is_set_in_voices_and_only_shown_in_render_settings(qtbot, make_window, monkeypatch):
    from studio.ui.render_settings import RenderSettingsDialog

    window = make_window()
    calm = window.library.add("Calm", VoiceSpec.design("a calm narrator"))
    bright = window.library.add("Bright", VoiceSpec.design("a bright young voice"))
    window.project.cast = {"Narrator": CastEntry(profile=calm.id), "Kid": CastEntry(profile=bright.id)}
    window.project.render.voice = "Narrator"

    def choose_kid(dialog):
        dialog.default_combo.setCurrentIndex(dialog.default_combo.findData("Kid"))

    while_open(monkeypatch, choose_kid)
    shown = []

    def settings_user(dialog):
        # Render Settings has no voice editor of its own: it shows the default and opens Voices.
        assert not hasattr(dialog, "kind_combo") and not hasattr(dialog, "description_edit")
        shown.append(dialog.default_voice_label.text())
        dialog.voices_button.click()
        shown.append(dialog.default_voice_label.text())
        dialog.grab().save("/tmp/render_settings_default_voice.png")
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(RenderSettingsDialog, "exec", settings_user)
    assert window.edit_render_settings()
    assert shown == ["Narrator: Calm (designed)", "Kid: Bright (designed)"]
    assert window.project.render.voice == "Kid"
    assert window.project.cast == {"Narrator": CastEntry(profile=calm.id), "Kid": CastEntry(profile=bright.id)}
    assert window._voices()[None].description == "a bright young voice"


def test_render_settings_show_the_default_voice_and_leave_the_cast_alone(qtbot, tmp_path):
    from studio.core.project import Project
    from studio.core.voice_library import VoiceLibrary
    from studio.ui.render_settings import MachineSettings, RenderSettingsDialog

    project = Project()
    dialog = RenderSettingsDialog(project, MachineSettings())
    qtbot.addWidget(dialog)
    assert dialog.default_voice_label.text().startswith("None chosen yet")
    dialog.seed_spin.setValue(42)
    dialog.accept()
    assert project.render.seed == 42 and project.cast == {} and project.render.voice is None

    library = VoiceLibrary(tmp_path / "voices")
    gone = CastEntry(profile="narrator-abc123")
    project.cast = {"Narrator": gone, "Me": CastEntry(voice=VoiceSpec.design("a calm narrator"))}
    project.render.voice = "Narrator"
    dialog = RenderSettingsDialog(project, MachineSettings(), library=library)
    qtbot.addWidget(dialog)
    assert dialog.default_voice_label.text() == "Narrator: missing voice profile narrator-abc123"
    project.render.voice = "Me"
    dialog.refresh_default_voice()
    assert dialog.default_voice_label.text() == f"Me: {VoiceSpec.design('a calm narrator').describe()}"
    dialog.accept()
    assert project.cast["Narrator"] is gone and project.render.voice == "Me"


def test_removing_a_script_name_from_the_cast_offers_it_again(qtbot, tmp_path):
    from studio.core.project import Project
    from studio.core.voice_library import VoiceLibrary

    library = VoiceLibrary(tmp_path / "voices")
    guard = library.add("Guard", VoiceSpec.design("a gruff guard"))
    project = Project(script="Night fell.\n[voice: Guard]Halt!")
    dialog = VoicesDialog(project, library)
    qtbot.addWidget(dialog)
    assert project.cast == {"Guard": CastEntry(profile=guard.id)} and dialog.auto_cast == {"Guard": guard.id}
    assert "Cast from the script's [voice: …] names (library voices of the same name): Guard" in dialog.cast_note.text()
    # "Night fell." comes before any tag: a Narrator row waits for the default voice, and Guard (cast
    # automatically) did not become the default for those lines.
    assert project.render.voice is None and dialog.pending == ["Narrator"]
    assert [dialog.cast.item(r, 0).text() for r in range(dialog.cast.rowCount())] == ["Guard", "Narrator"]
    dialog.cast.selectRow(0)
    dialog.remove_selected_cast_member()
    assert project.cast == {} and project.render.voice is None and dialog.pending == ["Narrator", "Guard"]
    assert [dialog.cast.item(r, 0).text() for r in range(dialog.cast.rowCount())] == ["Narrator", "Guard"]


def test_a_first_project_gets_a_row_for_the_default_voice(qtbot, make_window, monkeypatch):
    window = make_window()
    calm = window.library.add("Calm", VoiceSpec.design("a calm narrator"))
    window.library.add("Gruff", VoiceSpec.design("a gruff guard"))
    window.editor.setPlainText("Night fell.\nThe lamp was lit.")

    def user(dialog):
        assert [dialog.cast.item(r, 0).text() for r in range(dialog.cast.rowCount())] == ["Narrator"]
        assert "before any [voice: …] tag" in dialog.cast.item(0, 0).toolTip()
        combo = dialog.cast.cellWidget(0, 1)
        combo.setCurrentIndex(combo.findData(calm.id))

    while_open(monkeypatch, user)
    window.edit_voices()
    assert window.project.cast == {"Narrator": CastEntry(profile=calm.id)}
    assert window.project.render.voice == "Narrator"
    assert window._voices()[None].description == "a calm narrator"


def test_a_voice_kept_in_the_project_is_edited_in_the_cast(qtbot, make_window, monkeypatch):
    window = make_window()
    window.project.cast = {"Narrator": CastEntry(voice=VoiceSpec.design("a calm narrator"))}
    window.project.render.voice = "Narrator"

    def edit(editor):
        assert editor.kind == "design" and editor.name_edit.isReadOnly()
        assert editor.description_edit.toPlainText() == "a calm narrator"
        editor.description_edit.setPlainText("a warm, slow storyteller")
        editor.accept()
        return editor.result()

    monkeypatch.setattr(ProfileEditor, "exec", edit)

    def user(dialog):
        dialog.cast.selectRow(0)
        dialog.edit_selected_cast_member()

    while_open(monkeypatch, user)
    window.edit_voices()
    assert window.project.cast["Narrator"].voice.description == "a warm, slow storyteller"
    assert window._voices()[None].description == "a warm, slow storyteller" and window.isWindowModified()
    assert window.library.profiles() == []
