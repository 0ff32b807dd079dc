"""The Voices dialog and design → clone, through the real worker and engine."""

from __future__ import annotations

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
