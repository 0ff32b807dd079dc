"""Playback through a real PortAudio/ALSA stream, and the ring buffer it is fed through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.audio.buffers import GrowingAudio, RingBuffer

REPO = Path(__file__).resolve().parents[2]


def test_ring_buffer_wraps_and_pads_with_zeros():
    ring = RingBuffer(8)
    assert ring.write(np.arange(1, 7, dtype=np.float32)) == 6
    out = np.empty(4, dtype=np.float32)
    assert ring.read_into(out) == 4 and out.tolist() == [1, 2, 3, 4]
    assert ring.write(np.arange(7, 14, dtype=np.float32)) == 6  # only 6 free
    out = np.empty(10, dtype=np.float32)
    assert ring.read_into(out) == 8
    assert out.tolist() == [5, 6, 7, 8, 9, 10, 11, 12, 0, 0]


def test_growing_audio_keeps_every_sample_across_reallocations():
    audio = GrowingAudio(24000, capacity=4)
    chunks = [np.full(n, i, dtype=np.float32) for i, n in enumerate((3, 5, 17, 1))]
    ranges = [audio.append(c) for c in chunks]
    assert ranges == [(0, 3), (3, 8), (8, 25), (25, 26)]
    np.testing.assert_array_equal(audio.view(), np.concatenate(chunks))
    assert not audio.view().flags.writeable


@pytest.mark.slow
def test_a_real_output_stream_receives_exactly_the_rendered_samples(tiny_checkpoints, tmp_path):
    # ALSA's `file` plugin writes whatever the application plays to a file (its `null` slave discards
    # it afterwards), so this goes through sounddevice, PortAudio and libasound for real.
    home = tmp_path / "home"
    home.mkdir()
    capture = tmp_path / "played.raw"
    (home / ".asoundrc").write_text(
        f'pcm.!default {{\n  type file\n  slave.pcm "null"\n  file "{capture}"\n  format "raw"\n}}\n'
    )
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "audio" / "alsa_capture_player.py"),
         str(tiny_checkpoints["voice_design"]), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = (tmp_path / "events.txt").read_text().splitlines()
    # Playback started after the first segment and before the second was generated.
    assert events[:4] == ["rendered 0", "play", "rendered 1", "finished"]
    expected = np.load(tmp_path / "expected.npy")
    played = np.fromfile(capture, dtype="<f4")
    # The null device has no clock, so PortAudio pulls blocks as fast as it can and the callback
    # pads with zeros whenever the ring is momentarily empty. What was played is therefore the
    # rendered audio with runs of zeros inserted; everything else must match bit for bit, in order.
    np.testing.assert_array_equal(played[played != 0], expected[expected != 0])
    assert int(events[4].split()[1]) == len(expected)
