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


def test_an_edit_keeps_the_id_and_rewrites_the_profile_on_disk(tmp_path, clips):
    library = VoiceLibrary(tmp_path / "voices")
    profile = library.add("Old Tom", VoiceSpec.clone(clips["me"], "Hello."), seed=7)
    edited = library.update(profile.id, "Old Thomas", VoiceSpec.clone(clips["whisper"], "Psst, it is me."), seed=9)
    assert edited.id == profile.id
    on_disk = read_profile(library.folder / profile.id)
    assert on_disk.name == "Old Thomas" and on_disk.seed == 9 and on_disk.voice.ref_text == "Psst, it is me."
    # The new clip was copied in: the profile keeps working when the original goes.
    clips["whisper"].unlink()
    assert str(library.folder / profile.id) in on_disk.voice.ref_audio
    audio, _ = soundfile.read(on_disk.voice.ref_audio)
    assert np.abs(np.fft.rfft(audio)).argmax() == 300  # the whisper clip's 300 Hz tone, not the old 140 Hz
    # Editing again with the clip already in the profile keeps it.
    again = library.update(profile.id, "Old Thomas", on_disk.voice, seed=None)
    assert soundfile.read(again.voice.ref_audio)[0].shape == audio.shape and again.seed is None
    assert [p.id for p in library.profiles()] == [profile.id]
    assert not [p for p in library.folder.iterdir() if p.name.startswith(".")]


def test_a_failed_edit_leaves_the_profile_as_it_was(tmp_path, clips):
    library = VoiceLibrary(tmp_path / "voices")
    profile = library.add("Old Tom", VoiceSpec.clone(clips["me"], "Hello."))
    with pytest.raises(VoiceLibraryError, match="missing.wav"):
        library.update(profile.id, "Renamed", VoiceSpec.clone(tmp_path / "missing.wav", "Hi."))
    with pytest.raises(VoiceLibraryError, match="needs a name"):
        library.update(profile.id, " ", VoiceSpec.clone(clips["me"], "Hi."))
    assert library.get(profile.id).name == "Old Tom" and library.get(profile.id).voice.ref_text == "Hello."
    assert sorted(p.name for p in library.folder.iterdir()) == [profile.id]


def test_a_clone_of_a_designed_voice_is_named_once_and_uniquely(tmp_path):
    from studio.session.design_clone import cloned_name

    library = VoiceLibrary(tmp_path / "voices")
    library.add("Old Keeper", VoiceSpec.design("an old lighthouse keeper"))
    assert cloned_name(library, "Old Keeper") == "Old Keeper (cloned)"
    library.add("Old Keeper (cloned)", VoiceSpec.design("the same keeper, kept as a designed voice"))
    # The bug: "Old Keeper (cloned) (cloned)". Now one suffix, and a number when the name is taken.
    assert cloned_name(library, "Old Keeper (cloned)") == "Old Keeper (cloned) 2"
    assert cloned_name(library, "Old Keeper (cloned) 2") == "Old Keeper (cloned) 2"
    library.add("Old Keeper (cloned) 2", VoiceSpec.design("x"))
    assert cloned_name(library, "Old Keeper") == "Old Keeper (cloned) 3"
