"""Reference clips of cloned voices: checked here, before any model sees them.

A bad clip used to reach qwen-tts and fail deep inside it ("Calculated padded input size per channel",
"probability tensor contains either inf, nan"), naming neither the clip nor the problem, and a silent or
very long clip rendered without a word. Every path that hands a clip to a model goes through
`check_reference_clip` first: adding a cloned voice to the library (and importing one), building a clone
prompt, and checking a render request. Errors raise ReferenceClipError (a VoiceError) naming the clip;
problems that still let the model run come back as warnings for the user.

The check streams the clip in blocks, so a long clip costs little memory, and its result is remembered
per file version (path, size, mtime), so the per-segment checks of a render read each clip once.
"""

from __future__ import annotations

import functools
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.core.voice import VoiceError, VoiceSpec

# Below about 0.1 s the package's own convolutions fail outright (the speaker encoder's mel
# spectrogram pads by 384 samples, the codec encoder's kernels need several frames: "Padding size
# should be less than the corresponding input dimension"), and a speaker embedding from a few
# hundred milliseconds is mostly noise. Half a second (about six 12.5 Hz codec frames) is a floor well
# clear of the crash that still accepts a short word; 3 to 10 s of speech is what cloning wants.
MIN_SECONDS = 0.5
# qwen-tts's create_voice_clone_prompt encodes the WHOLE clip: the speaker encoder runs over all of it
# and, in ICL mode, every 12.5 Hz codec frame of it is prepended to each segment's generation. A clip
# over 30 s makes every segment slower and the long in-context example tends to garble the voice.
LONG_SECONDS = 30.0
# A clip whose RMS level is below -60 dBFS is silence or hiss: the model renders, but there is no
# speaker in it to clone.
SILENT_DBFS = -60.0

_BLOCK_FRAMES = 1 << 16


class ReferenceClipError(VoiceError):
    """A reference clip that cannot be used; str() is one line naming the clip and the reason."""


@dataclass(frozen=True)
class ClipFacts:
    seconds: float
    sample_rate: int
    rms_dbfs: float
    warnings: tuple[str, ...]


def _unreadable(name: str, reason: str) -> ReferenceClipError:
    return ReferenceClipError(f"{name}: cannot read the reference clip: {reason}")


def _soundfile_reason(exc: Exception) -> str:
    detail = getattr(exc, "error_string", None) or str(exc)
    detail = detail.strip().rstrip(".")
    # libsndfile says "System error" for anything it cannot classify; that tells the user nothing.
    if not detail or "system error" in detail.lower():
        return "not an audio file this studio can decode (WAV, FLAC, OGG), or a damaged one"
    return f"not an audio file this studio can decode (WAV, FLAC, OGG): {detail[0].lower()}{detail[1:]}"


@functools.lru_cache(maxsize=256)
def _measure(path: str, name: str, _size: int, _mtime_ns: int, _inode: int) -> ClipFacts:
    """The checks themselves; cached by file version (the unused arguments are part of the key)."""
    import numpy as np
    import soundfile

    try:
        handle = soundfile.SoundFile(path)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise _unreadable(name, _soundfile_reason(exc)) from None
    frames = 0
    squares = 0.0
    first_bad = None
    with handle:
        rate = int(handle.samplerate)
        try:
            for block in handle.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                mono = block.mean(axis=1, dtype=np.float64)  # what the model receives (see clone_prompts)
                finite = np.isfinite(mono)
                if not finite.all():
                    first_bad = frames + int(np.argmin(finite))
                    break
                squares += float(np.dot(mono, mono))
                frames += len(mono)
        except (RuntimeError, OSError, ValueError) as exc:
            raise _unreadable(name, f"decoding stopped after {frames} samples ({exc})") from None
    if first_bad is not None:
        raise ReferenceClipError(
            f"{name}: the reference clip holds non-finite samples (NaN or infinity) from {first_bad / rate:.2f} s "
            "on; re-export it from the original recording"
        )
    if frames == 0:
        raise ReferenceClipError(f"{name}: the reference clip holds no audio (0 samples)")
    seconds = frames / rate
    if seconds < MIN_SECONDS:
        raise ReferenceClipError(
            f"{name}: the reference clip is only {seconds * 1000:.0f} ms long; a cloned voice needs at least "
            f"{MIN_SECONDS:g} s of the speaker (3 to 10 s is best)"
        )
    rms = math.sqrt(squares / frames)
    dbfs = 20 * math.log10(rms) if rms > 0 else -math.inf
    warnings = []
    if dbfs < SILENT_DBFS:
        level = "digital silence" if rms == 0 else f"RMS {dbfs:.0f} dBFS"
        warnings.append(
            f"{name}: the reference clip is silent ({level}, below {SILENT_DBFS:g} dBFS): there is no voice in it "
            "to clone"
        )
    if seconds > LONG_SECONDS:
        warnings.append(
            f"{name}: the reference clip is {seconds:.0f} s long; qwen-tts encodes the whole clip into the clone "
            f"prompt, so over {LONG_SECONDS:g} s every segment renders slower and the voice may garble "
            "(trim it to 3 to 10 s)"
        )
    return ClipFacts(seconds, rate, dbfs, tuple(warnings))


def check_reference_clip(path: str | Path, *, name: str | None = None) -> ClipFacts:
    """Check one clip; raise ReferenceClipError naming it (or `name`) when a model cannot use it.

    Unreadable, empty, non-finite and too-short clips are errors; silent and very long ones come back
    as `warnings`.
    """
    path = str(path)
    name = path if name is None else name
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ReferenceClipError(f"{name}: no such reference clip") from None
    except OSError as exc:
        raise _unreadable(name, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise _unreadable(name, "it is a folder, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise _unreadable(name, "it is not a regular file")
    if info.st_size == 0:
        raise _unreadable(name, "the file is empty (0 bytes)")
    try:
        # Opened once by Python so that a permission problem is reported as what it is, not as
        # libsndfile's "System error".
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise _unreadable(name, exc.strerror or str(exc)) from None
    return _measure(path, name, info.st_size, info.st_mtime_ns, info.st_ino)


def voice_clips(voice: VoiceSpec, emotion: str | None = "*") -> list[str]:
    """The clips of a cloned voice: the identity clip, then emotion clips (all with "*", else the one for
    `emotion`, if any). Other kinds of voice have none."""
    if voice.kind != "clone" or not voice.ref_audio:
        return []
    if emotion == "*":
        return [voice.ref_audio, *(clip for _, clip, _ in voice.emotion_refs)]
    ref = voice.emotion_ref(emotion)
    return [voice.ref_audio] + ([ref[0]] if ref else [])


def check_voice_clips(
    voice: VoiceSpec, emotion: str | None = "*", *, name_of: Callable[[str], str] | None = None
) -> list[str]:
    """Check the clips a cloned voice uses (see `voice_clips`); return their warnings, raise on the first
    error. `name_of` turns a clip path into the name the messages use."""
    warnings: list[str] = []
    for clip in voice_clips(voice, emotion):
        facts = check_reference_clip(clip, name=name_of(clip) if name_of else None)
        warnings.extend(w for w in facts.warnings if w not in warnings)
    return warnings
