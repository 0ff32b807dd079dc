"""Pitch-preserving time stretch: how `[pace: ...]` is honoured for a model that reads no instruct.

The stretch is librosa's phase vocoder (librosa is already installed with qwen-tts, and its ISC licence
suits the Apache-2.0 desktop bundle; Rubber Band, through pedalboard, is GPL). A phase vocoder keeps
the pitch and formants of speech at the rates a pace asks for (0.5x to 2x) at the cost of a little
phasiness far from 1x.
"""

from __future__ import annotations

from importlib import metadata

import numpy as np

# Analysis frame of about 85 ms at 24 kHz with 75 % overlap: long enough to resolve a low voice's
# harmonics, short enough not to smear consonants. librosa's defaults, stated so the cache key can rely
# on them not changing under us.
_N_FFT = 2048
_HOP = 512


def _version() -> str:
    try:
        return metadata.version("librosa")
    except metadata.PackageNotFoundError:
        return "none"


# Part of the cache key of every segment with a pace: a new librosa can change stretched audio.
STRETCH_VERSION = f"librosa-{_version()}-pv{_N_FFT}/{_HOP}"


def stretch_speech(samples: np.ndarray, rate: float) -> np.ndarray:
    """`samples` spoken `rate` times as fast (0.85 = slower, longer), at the same pitch.

    The result lasts round(len(samples) / rate) samples. A clip shorter than one analysis frame is
    returned as it is: there is no speech in it to stretch."""
    audio = np.asarray(samples, dtype=np.float32).reshape(-1)
    if rate == 1.0 or len(audio) < _N_FFT:
        return audio.copy()
    import librosa

    stretched = librosa.effects.time_stretch(audio, rate=rate, n_fft=_N_FFT, hop_length=_HOP)
    return np.ascontiguousarray(stretched, dtype=np.float32)
