"""Engine-test fixtures shared by several modules."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from studio.core.voice import VoiceSpec


@pytest.fixture
def reference_clip(tmp_path):
    """A 1.5 s, 150 Hz tone at 24 kHz: what a cloned voice's reference clip needs to be, for tiny models."""
    t = np.arange(36000) / 24000
    path = tmp_path / "ref.wav"
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000)
    return path


@pytest.fixture
def clone_voice(reference_clip):
    return VoiceSpec.clone(reference_clip, "This is me speaking.")
