"""The voice library: profiles with their own copies of clips, export/import as one file."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import soundfile

from studio.core.voice import VoiceSpec
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError, read_profile


@pytest.fixture
def clips(tmp_path):
    paths = {}
    for name, freq in (("me", 140), ("whisper", 300)):
        path = tmp_path / "originals" / f"{name}.wav"
        path.parent.mkdir(exist_ok=True)
        t = np.arange(24000) / 24000
        soundfile.write(path, (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 24000)
        paths[name] = path
    return paths


def test_cloned_profile_copies_its_clips_and_survives_the_originals(tmp_path, clips):
    library = VoiceLibrary(tmp_path / "voices")
    voice = VoiceSpec("clone", ref_audio=str(clips["me"]), ref_text="Hello.",
                      emotion_refs=(("Whispering", str(clips["whisper"]), "Psst."),))
    profile = library.add("Old Tom", voice, seed=7)
    fingerprint = profile.voice.fingerprint()
    for clip in clips.values():
        clip.unlink()
    again = library.get("old tom")
    assert again.id == profile.id and again.seed == 7 and again.kind_label == "cloned"
    assert again.voice.fingerprint() == fingerprint  # same audio content, new location
    assert again.voice.emotion_ref("whispering")[1] == "Psst."
    assert str(library.folder) in again.voice.ref_audio


def test_export_import_round_trip(tmp_path, clips):
    library = VoiceLibrary(tmp_path / "voices")
    profile = library.add("Narrator", VoiceSpec.clone(clips["me"], "Hello."))
    exported = library.export(profile.id, tmp_path / "narrator")
    assert exported.name == "narrator.qvoice"
    with pytest.raises(VoiceLibraryError, match="already exists"):
        library.export(profile.id, exported)
    other = VoiceLibrary(tmp_path / "elsewhere")
    imported = other.import_file(exported)
    assert imported.name == "Narrator" and imported.voice.fingerprint() == profile.voice.fingerprint()


def test_designed_preset_and_fine_tuned_profiles(tmp_path):
    library = VoiceLibrary(tmp_path / "voices")
    designed = library.add("Cowboy", VoiceSpec.design("a deep, raspy voice of a tired cowboy"), seed=3)
    preset = library.add("Ryan", VoiceSpec.preset("ryan"))
    tuned = library.add("Mine", VoiceSpec("preset", speaker="me", model="/runs/export/me"))
    assert [p.kind_label for p in library.profiles()] == ["designed", "fine-tuned", "preset"]
    # A published speaker pinned to one CustomVoice checkpoint (the Voices dialog's Model choice) stays a preset.
    pinned = library.add("Ryan pinned", VoiceSpec("preset", speaker="Ryan", model="/models/custom-voice-0.6b"))
    assert pinned.kind_label == "preset"
    library.delete(pinned.id)
    assert read_profile(library.folder / designed.id).voice.description.startswith("a deep")
    library.delete(preset.id)
    assert [p.name for p in library.profiles()] == ["Cowboy", "Mine"]
    assert library.get(tuned.id).voice.model == "/runs/export/me"


def test_bad_files_are_clear_errors(tmp_path):
    library = VoiceLibrary(tmp_path / "voices")
    junk = tmp_path / "junk.qvoice"
    junk.write_bytes(b"not a zip")
    with pytest.raises(VoiceLibraryError, match="not a voice profile file"):
        library.import_file(junk)
    evil = tmp_path / "evil.qvoice"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("profile.json", json.dumps({}))
        archive.writestr("../../escape.txt", "x")
    with pytest.raises(VoiceLibraryError, match="entry '../../escape.txt' is not a plain file name"):
        library.import_file(evil)
    with pytest.raises(VoiceLibraryError, match="no voice profile 'ghost'"):
        library.get("ghost")
    with pytest.raises(VoiceLibraryError, match="missing.wav: no such reference clip"):
        library.add("X", VoiceSpec.clone(tmp_path / "missing.wav", "t"))
    assert [p.name for p in library.folder.iterdir()] == []  # nothing half-made left behind
