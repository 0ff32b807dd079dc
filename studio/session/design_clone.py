"""Design -> clone: keep one rendered sentence of a designed voice as a cloned voice profile.

A designed voice is re-imagined from its description on every segment; cloning a clip of it fixes the
timbre for good, and a cloned voice then renders with a Base model.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from studio.core.voice import VoiceSpec
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError, VoiceProfile


def keep_as_cloned_voice(library: VoiceLibrary, designed: VoiceProfile, sentence: str, samples: np.ndarray,
                         sample_rate: int) -> VoiceProfile:
    """Add "<name> (cloned)" to the library from `samples` of `designed` saying `sentence`.

    The name never doubles the suffix (a designed voice already called "X (cloned)" gives "X (cloned)",
    not "X (cloned) (cloned)") and never repeats a name in the library ("X (cloned) 2" for a second clone).

    Raises VoiceLibraryError (or OSError) naming why, e.g. a render too short or silent to clone from.
    """
    import soundfile

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "reference.wav"
        try:
            soundfile.write(clip, samples, sample_rate)
        except soundfile.SoundFileError as exc:
            raise VoiceLibraryError(f"the rendered reference could not be written: {exc}") from None
        return library.add(cloned_name(library, designed.name), VoiceSpec.clone(clip, sentence),
                           notes=f"Rendered from the designed voice {designed.name!r}.")


_SUFFIX = re.compile(r"(\s*\(cloned\))+(\s+\d+)?\s*$", re.IGNORECASE)


def cloned_name(library: VoiceLibrary, designed_name: str) -> str:
    """The name of a clone of `designed_name`: its base name (any "(cloned)" suffixes and number dropped)
    plus one " (cloned)", made unique in `library`."""
    base = _SUFFIX.sub("", designed_name).strip() or designed_name.strip()
    return library.unique_name(f"{base} (cloned)")
