"""Loudness normalisation reaches its target or stops just short of clipping, for any program (issue #15)."""

from __future__ import annotations

import numpy as np
import pyloudnorm
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.audio.export import _loudness_gain

RATE = 24000


@settings(max_examples=40, deadline=None)
@given(
    amplitude=st.floats(0.001, 0.9),
    frequency=st.floats(80.0, 4000.0),
    seconds=st.floats(0.5, 3.0),
    target=st.floats(-40.0, -6.0),
    seed=st.integers(0, 2**16),
)
def test_the_gain_reaches_the_target_unless_the_peak_forbids_it(amplitude, frequency, seconds, target, seed):
    t = np.arange(int(RATE * seconds)) / RATE
    rng = np.random.default_rng(seed)
    audio = (amplitude * np.sin(2 * np.pi * frequency * t) * (0.5 + 0.5 * rng.random(t.size))).astype(np.float32)
    gain, record = _loudness_gain(audio, RATE, target)
    scaled = audio.astype(np.float64) * gain
    reached = pyloudnorm.Meter(RATE).integrated_loudness(scaled)
    assert np.abs(scaled).max() <= 0.999 + 1e-6  # never clips
    assert record["applied"] and abs(record["reached_lufs"] - reached) < 0.02  # the manifest tells the truth
    if record["peak_limited"]:
        assert reached < target + 0.05 and np.abs(scaled).max() > 0.998  # as loud as the peak allows
    else:
        assert abs(reached - target) < 0.05


def test_too_short_or_silent_programs_are_left_alone():
    assert _loudness_gain(np.zeros(RATE, np.float32), RATE, -16.0)[0] == 1.0
    gain, record = _loudness_gain(np.full(RATE // 4, 0.1, np.float32), RATE, -16.0)
    assert gain == 1.0 and record == {"target_lufs": -16.0, "applied": False, "reason": "shorter than 0.4 s"}
