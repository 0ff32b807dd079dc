"""The Voices dialog and design → clone, through the real worker and engine."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

from studio.core.project import GenerationParams
from studio.core.voice import VoiceSpec
from studio.ui.voices_dialog import ProfileEditor, VoicesDialog


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "me.wav"
    t = np.arange(24000) / 24000
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000)
    return path


def test_create_profiles_and_cast_them(qtbot, make_window, clip):
    window = make_window()
    dialog = VoicesDialog(window.project, window.library, window)
    qtbot.addWidget(dialog)
    editor = ProfileEditor("clone", dialog)
    qtbot.addWidget(editor)
    editor.name_edit.setText("Me")
    editor.clip_edit.setText(str(clip))
    editor.ref_text_edit.setText("Hello, it is me.")
    editor.add_emotion("Whispering", str(clip), "psst")
    editor.accept()
    assert editor.result_voice.emotion_refs == (("Whispering", str(clip), "psst"),)
    profile = dialog.create_profile("Me", editor.result_voice)
    assert dialog.profiles.count() == 1 and "cloned" in dialog.profiles.item(0).text()
    dialog.set_cast_member("Narrator", profile.id)
    assert window.project.cast["Narrator"].profile == profile.id
    assert window.project.render.voice == "Narrator"
    assert dialog.cast.rowCount() == 1 and dialog.changed
    voices = window._voices()
    assert voices[None].emotion_ref("whispering") is not None


def test_editor_refuses_an_incomplete_voice(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    editor = ProfileEditor("finetuned")
    qtbot.addWidget(editor)
    editor.name_edit.setText("Mine")
    editor.speaker_edit.setText("me")
    editor.accept()
    assert editor.result() != editor.DialogCode.Accepted and "checkpoint folder" in shown[0]


def test_design_then_clone_saves_a_cloned_profile(qtbot, make_window, tiny_checkpoints):
    window = make_window()
    window.project.render.model = str(tiny_checkpoints["voice_design"])
    window.project.render.generation = GenerationParams(max_new_tokens=15)
    window.machine.device = "cpu"
    designed = window.library.add("Cowboy", VoiceSpec.design("a deep, raspy voice of a tired cowboy"), seed=4)
    assert window.design_then_clone(designed.id, "Howdy, partner.")
    qtbot.waitUntil(lambda: window.last_cloned_profile is not None, timeout=120_000)
    cloned = window.last_cloned_profile
    assert cloned.name == "Cowboy (cloned)" and cloned.voice.kind == "clone"
    assert cloned.voice.ref_text == "Howdy, partner."
    audio, rate = soundfile.read(cloned.voice.ref_audio)
    assert rate == 24000 and len(audio) > 0 and np.abs(audio).max() > 0.01


def test_design_then_clone_of_a_render_too_short_to_clone_ends_in_a_message(qtbot, make_window, tiny_checkpoints,
                                                                             monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    window = make_window()
    window.project.render.model = str(tiny_checkpoints["voice_design"])
    window.project.render.generation = GenerationParams(max_new_tokens=3)  # about 0.2 s of audio
    window.machine.device = "cpu"
    designed = window.library.add("Cowboy", VoiceSpec.design("a deep, raspy voice of a tired cowboy"), seed=4)
    assert window.design_then_clone(designed.id, "Howdy.")
    qtbot.waitUntil(lambda: bool(shown), timeout=120_000)
    assert "Could not keep Cowboy as a cloned voice" in shown[0] and "a cloned voice needs at least 0.5 s" in shown[0]
    assert window.last_cloned_profile is None
    assert [p.name for p in window.library.profiles()] == ["Cowboy"]


# --- clip checks and .qvoice files, as the dialog shows them -----------------------------------------------


@pytest.fixture
def boxes(monkeypatch):
    """Message boxes the dialog shows, recorded instead of waiting for a click; `answer` is the reply to
    questions."""
    from PySide6.QtWidgets import QMessageBox

    shown = {"warning": [], "question": [], "answer": QMessageBox.StandardButton.No}

    def warning(parent, title, text, *args):
        shown["warning"].append(text)
        return QMessageBox.StandardButton.Ok

    def question(parent, title, text, *args):
        shown["question"].append(text)
        return shown["answer"]

    monkeypatch.setattr(QMessageBox, "warning", warning)
    monkeypatch.setattr(QMessageBox, "question", question)
    return shown


@pytest.fixture
def dialog(qtbot, tmp_path):
    from studio.core.project import Project
    from studio.core.voice_library import VoiceLibrary

    dialog = VoicesDialog(Project(), VoiceLibrary(tmp_path / "voices"))
    qtbot.addWidget(dialog)
    return dialog


def test_editor_names_an_unusable_clip_and_stays_open(qtbot, tmp_path, boxes):
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.full(24000, np.nan, np.float32), 24000, subtype="FLOAT")
    editor = ProfileEditor("clone")
    qtbot.addWidget(editor)
    editor.name_edit.setText("Me")
    editor.clip_edit.setText(str(nan))
    editor.ref_text_edit.setText("Hello.")
    editor.accept()
    assert editor.result() != editor.DialogCode.Accepted and editor.result_voice is None
    assert boxes["warning"] == [f"{nan}: the reference clip holds non-finite samples (NaN or infinity) from 0.00 s "
                                "on; re-export it from the original recording"]


def test_saving_a_silent_clip_shows_its_warning(dialog, tmp_path, boxes):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(24000, np.float32), 24000)
    profile = dialog.create_profile("Quiet", VoiceSpec.clone(silent, "Hello."))
    assert profile is not None and dialog.profiles.count() == 1
    (text,) = boxes["warning"]
    assert text.startswith("Saved Quiet, but check its clips:") and f"{silent}: the reference clip is silent" in text


def test_export_to_a_read_only_folder_shows_the_reason(dialog, clip, tmp_path, boxes, monkeypatch):
    from tests.limited_folders import read_only_folder

    profile = dialog.create_profile("Me", VoiceSpec.clone(clip, "Hello."))
    folder = tmp_path / "readonly"
    with read_only_folder(folder, monkeypatch):
        assert dialog.export_profile(profile, folder / "me") is None
        assert os.listdir(folder) == []
    assert boxes["warning"] == [f"{folder / 'me.qvoice'}: cannot export the voice: the folder is on a read-only "
                                "file system"]


def test_export_asks_before_replacing_a_file(dialog, clip, tmp_path, boxes):
    from PySide6.QtWidgets import QMessageBox

    profile = dialog.create_profile("Me", VoiceSpec.clone(clip, "Hello."))
    target = tmp_path / "me.qvoice"
    target.write_bytes(b"keep me")
    assert dialog.export_profile(profile, tmp_path / "me") is None  # answered No
    assert boxes["question"] == [f"{target} already exists. Replace it?"] and target.read_bytes() == b"keep me"
    boxes["answer"] = QMessageBox.StandardButton.Yes
    assert dialog.export_profile(profile, target) == target
    assert target.read_bytes()[:2] == b"PK" and boxes["warning"] == []


def test_import_of_a_hostile_file_shows_the_entry(dialog, tmp_path, boxes):
    import zipfile

    source = tmp_path / "evil.qvoice"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("profile.json", "{}")
        archive.writestr("clips/..", b"x")
    assert dialog.import_profile(source) is None
    assert boxes["warning"] == [f"{source}: entry 'clips/..' is not a plain file name inside the profile (only "
                                "profile.json and clips/<name> are allowed); nothing was imported"]
    assert dialog.profiles.count() == 0 and os.listdir(dialog.library.folder) == []
