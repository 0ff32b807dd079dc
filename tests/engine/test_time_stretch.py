"""The pitch-preserving stretch behind `[pace: ...]`, on synthetic audio whose pitch and level are known."""

from __future__ import annotations

import numpy as np
import pytest

from studio.engine.time_stretch import stretch_speech

RATE = 24000


def _voiced(seconds: float, f0: float = 140.0) -> np.ndarray:
    """A crude vowel: a 140 Hz fundamental and its first harmonics, at about -20 dBFS RMS."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.1 * wave / np.sqrt(np.mean(wave**2))).astype(np.float32)


def _fundamental(audio: np.ndarray) -> float:
    middle = audio[len(audio) // 4: -len(audio) // 4]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle)), n=1 << 20))
    return float(np.argmax(spectrum) * RATE / (1 << 20))


def _rms_db(audio: np.ndarray) -> float:
    middle = audio[len(audio) // 4: -len(audio) // 4]
    return float(20 * np.log10(np.sqrt(np.mean(middle.astype(np.float64) ** 2))))


@pytest.mark.parametrize("rate", [0.75, 0.85, 1.15, 1.5])
def test_the_length_changes_and_the_pitch_and_level_do_not(rate):
    audio = _voiced(2.0)
    stretched = stretch_speech(audio, rate)
    assert stretched.dtype == np.float32
    assert len(stretched) == round(len(audio) / rate)
    # Resampling would move the fundamental to 140 * rate (119 Hz at 0.85); a stretch keeps it.
    assert _fundamental(stretched) == pytest.approx(140.0, abs=1.0)
    assert _rms_db(stretched) == pytest.approx(_rms_db(audio), abs=1.5)


def test_a_clip_shorter_than_one_frame_is_left_as_it_is():
    click = np.linspace(-0.5, 0.5, 300, dtype=np.float32)
    np.testing.assert_array_equal(stretch_speech(click, 0.8), click)
