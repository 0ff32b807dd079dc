"""The waveform view draws what it holds, however short the audio or deep the zoom."""

from __future__ import annotations

import numpy as np
import pytest

from studio.selftest import _changed_pixels
from studio.ui.waveform import WaveformView

RATE = 24000


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.4 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def _grab_with(view: WaveformView, qtbot, samples: np.ndarray):
    view.reset(RATE)
    view.append(samples)
    view.flush()
    qtbot.wait(10)
    return view.grab().toImage()


@pytest.mark.parametrize("seconds", [0.05, 0.5, 2.0, 8.0, 30.0])
def test_audio_of_any_length_is_drawn(qtbot, seconds):
    # Under about 3 s the view shows raw samples (min == max per column); drawn as min-to-max bars
    # those had no length and the view stayed blank while the axis said there was audio. Silence of
    # the same length is the baseline: same axis, same labels, so only the trace itself differs.
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(1000, 150)
    view.show()
    silence = _grab_with(view, qtbot, np.zeros(int(seconds * RATE), np.float32))
    tone = _grab_with(view, qtbot, _tone(seconds))
    # Even 50 ms (a sliver at the left of a 1 s axis) changes hundreds of pixels; an undrawn trace none.
    assert _changed_pixels(silence, tone) > 300


def test_changed_pixels_counts_real_differences(qtbot):
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(400, 120)
    view.show()
    qtbot.wait(10)
    first = view.grab().toImage()
    assert _changed_pixels(first, view.grab().toImage()) == 0
    view.append(_tone(1.0))
    view.flush()
    qtbot.wait(10)
    assert _changed_pixels(first, view.grab().toImage()) > 0
