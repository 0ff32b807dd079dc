"""Design -> clone: keep one rendered sentence of a designed voice as a cloned voice profile.

A designed voice is re-imagined from its description on every segment; cloning a clip of it fixes the
timbre for good, and a cloned voice then renders with a Base model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from studio.core.voice import VoiceSpec
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError, VoiceProfile


def keep_as_cloned_voice(library: VoiceLibrary, designed: VoiceProfile, sentence: str, samples: np.ndarray,
                         sample_rate: int) -> VoiceProfile:
    """Add "<name> (cloned)" to the library from `samples` of `designed` saying `sentence`.

    Raises VoiceLibraryError (or OSError) naming why, e.g. a render too short or silent to clone from.
    """
    import soundfile

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "reference.wav"
        try:
            soundfile.write(clip, samples, sample_rate)
        except soundfile.SoundFileError as exc:
            raise VoiceLibraryError(f"the rendered reference could not be written: {exc}") from None
        return library.add(f"{designed.name} (cloned)", VoiceSpec.clone(clip, sentence),
                           notes=f"Rendered from the designed voice {designed.name!r}.")
