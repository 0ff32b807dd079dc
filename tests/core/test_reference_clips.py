"""Reference clips are checked before any model sees them: real WAV files, through the voice library."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from studio.core.reference_clip import ReferenceClipError, check_reference_clip
from studio.core.voice import VoiceError, VoiceSpec
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError


def speech_like(seconds: float, rate: int = 24000, level: float = 0.2) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (level * np.sin(2 * np.pi * 150 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture
def bad_clips(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()

    def write(name, samples, rate=24000, **kwargs):
        path = folder / name
        soundfile.write(path, samples, rate, **kwargs)
        return path

    nan = speech_like(2.0)
    nan[30000:30100] = np.nan
    empty_file = folder / "empty.wav"
    empty_file.write_bytes(b"")
    not_audio = folder / "notes.wav"
    not_audio.write_text("these are my notes, not audio\n")
    return {
        "zero": (write("zero.wav", np.zeros(0, np.float32)), "no audio (0 samples)"),
        "nan": (write("nan.wav", nan, subtype="FLOAT"), "non-finite samples (NaN or infinity) from 1.25 s"),
        "10ms": (write("ten-ms.wav", speech_like(0.01)), "only 10 ms long"),
        "empty file": (empty_file, "the file is empty (0 bytes)"),
        "not audio": (not_audio, "not an audio file this studio can decode"),
        "folder": (folder, "it is a folder"),
        "missing": (folder / "gone.wav", "no such reference clip"),
    }


@pytest.mark.parametrize("case", ["zero", "nan", "10ms", "empty file", "not audio", "folder", "missing"])
def test_an_unusable_clip_is_an_error_naming_it(bad_clips, case):
    path, reason = bad_clips[case]
    with pytest.raises(ReferenceClipError) as caught:
        check_reference_clip(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and reason in message
    assert "System error" not in message and "\n" not in message
    assert isinstance(caught.value, VoiceError)


def test_silent_and_long_clips_are_warnings(tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(24000, np.float32), 24000)
    hiss = tmp_path / "hiss.wav"
    soundfile.write(hiss, (np.random.default_rng(0).standard_normal(24000) * 1e-4).astype(np.float32), 24000)
    long = tmp_path / "ten-minutes.wav"
    # Ten minutes at 8 kHz (16-bit PCM, 9.6 MB): long enough, small enough to write in a test.
    soundfile.write(long, np.tile(speech_like(1.0, 8000), 600), 8000, subtype="PCM_16")
    good = tmp_path / "good.wav"
    soundfile.write(good, speech_like(3.0), 24000)

    assert check_reference_clip(good).warnings == ()
    (warning,) = check_reference_clip(silent).warnings
    assert warning.startswith(f"{silent}: ") and "silent (digital silence" in warning
    (warning,) = check_reference_clip(hiss).warnings
    assert "silent (RMS -80 dBFS" in warning
    facts = check_reference_clip(long)
    assert facts.seconds == pytest.approx(600)
    (warning,) = facts.warnings
    assert warning.startswith(f"{long}: the reference clip is 600 s long") and "encodes the whole clip" in warning


def test_a_stereo_clip_is_judged_by_what_the_model_hears(tmp_path):
    # The clone prompt mixes channels to mono: opposite channels cancel, and that is silence.
    wave = speech_like(2.0)
    path = tmp_path / "phase.wav"
    soundfile.write(path, np.stack([wave, -wave], axis=1), 24000)
    assert "silent" in check_reference_clip(path).warnings[0]


def test_library_refuses_an_unusable_clip_and_keeps_nothing(tmp_path, bad_clips):
    library = VoiceLibrary(tmp_path / "voices")
    for case in ("zero", "nan", "10ms", "not audio"):
        path, reason = bad_clips[case]
        with pytest.raises(VoiceLibraryError) as caught:
            library.add("Me", VoiceSpec.clone(path, "Hello."))
        assert str(caught.value).startswith(f"{path}: ") and reason in str(caught.value)
    # An emotion clip is checked as well as the identity clip.
    good = tmp_path / "good.wav"
    soundfile.write(good, speech_like(2.0), 24000)
    nan_path, _ = bad_clips["nan"]
    with pytest.raises(VoiceLibraryError, match=f"^{nan_path}: the reference clip holds non-finite"):
        library.add("Me", VoiceSpec("clone", ref_audio=str(good), ref_text="Hi.",
                                    emotion_refs=(("Angry", str(nan_path), "Grr."),)))
    assert not library.folder.exists() or not any(library.folder.iterdir())


def test_library_adds_a_silent_or_long_clip_with_a_warning(tmp_path):
    library = VoiceLibrary(tmp_path / "voices")
    silent = tmp_path / "room-tone.wav"
    soundfile.write(silent, np.zeros(48000, np.float32), 24000)
    profile = library.add("Quiet", VoiceSpec.clone(silent, "Hello."))
    assert len(profile.warnings) == 1 and profile.warnings[0].startswith(f"{silent}: the reference clip is silent")
    assert library.get(profile.id) == profile  # the warning is not part of the saved profile

    long = tmp_path / "long.wav"
    soundfile.write(long, speech_like(31.0, 8000), 8000)
    profile = library.add("Chatty", VoiceSpec.clone(long, "Hello."))
    assert profile.warnings == (f"{long}: the reference clip is 31 s long; qwen-tts encodes the whole clip into "
                                "the clone prompt, so over 30 s every segment renders slower and the voice may "
                                "garble (trim it to 3 to 10 s)",)
