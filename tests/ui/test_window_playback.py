"""The window's playback through a real PortAudio stream on an ALSA device (issue #15).

Every other window test runs without a sound card. Here the real window, in a subprocess whose ALSA
default device pipes what is played into tests/ui/capture_sink.py, renders with the real engine and
plays as a user hears it: playback starts while the render still runs, Space pauses and resumes, a
click on the waveform seeks, the playhead follows. The device runs at 44.1 kHz, so the resampling
path is the one users get; what reached ALSA is compared with the rendered audio resampled in one go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soxr

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_play_during_render_pause_resume_seek_and_playhead(tiny_checkpoints, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    capture = tmp_path / "played.f32"
    sink = f"{sys.executable} {REPO / 'tests' / 'ui' / 'capture_sink.py'} {capture}"
    (home / ".asoundrc").write_text(
        f'pcm.!default {{\n  type file\n  slave.pcm "null"\n  file "|{sink}"\n  format "raw"\n}}\n'
    )
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "ui" / "window_playback_driver.py"),
         str(tiny_checkpoints["voice_design"]), str(tmp_path), str(capture)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # An exception in the player's feeder thread or a Qt slot reaches only stderr.
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    audio = np.load(tmp_path / "rendered.npy")
    played = np.fromfile(capture, dtype="<f4")
    rate = result["device_rate"]
    assert rate != 24000 and result["render_finished"] and len(audio) == result["rendered_samples"]

    # Auto-play: sound reached the device while later chunks were still being rendered.
    playing_during_render = [e for e in result["during_render"] if e["playing"] and e["captured_nonzero"] > 0]
    assert playing_during_render and playing_during_render[0]["index"] == 0
    # When the last segment began to stream, the earlier ones were sounding and its own audio was still to
    # come. (Not "when the render ended": ALSA's null device has no clock and can drain the last chunk
    # before the end of the render is noticed.)
    last = max(e["index"] for e in result["during_render"])
    first_of_last = next(e for e in result["during_render"] if e["index"] == last)
    assert 0 < first_of_last["captured_nonzero"] < round(len(audio) * rate / 24000)

    # The first play-through: every rendered sample, once, in order, resampled exactly as in one go.
    assert result["played_to_end"] and result["position_at_end"] == len(audio)
    first = result["captured_after_first_play"]
    expected = soxr.resample(audio, 24000, rate, quality="HQ")
    assert first == len(expected)
    np.testing.assert_array_equal(played[:first], expected)

    # A click at the middle, Space, Space: playing, then paused, silent and still while paused.
    middle = len(audio) // 2
    assert result["position_after_seek"] == middle
    assert result["playing_after_space"] and not result["playing_after_second_space"]
    paused_at = result["paused_at"]
    assert middle < paused_at < len(audio)
    assert result["captured_grew_while_paused"] == 0 and result["position_after_pause"] == paused_at
    assert result["playhead_seconds"] == pytest.approx(paused_at / 24000, abs=1e-6)

    # Space again resumes where it paused: from the seek to the end, nothing skipped, nothing twice.
    assert result["resumed_to_end"] and result["position_at_second_end"] == len(audio)
    second = played[first:]
    assert len(second) == result["captured_after_second_play"] - first
    after_pause = soxr.resample(audio[paused_at:], 24000, rate, quality="HQ")
    before_pause = len(second) - len(after_pause)
    np.testing.assert_array_equal(second[before_pause:], after_pause)
    np.testing.assert_array_equal(second[:before_pause],
                                  soxr.resample(audio[middle:], 24000, rate, quality="HQ")[:before_pause])
    assert abs(before_pause - (paused_at - middle) * rate / 24000) <= 2
