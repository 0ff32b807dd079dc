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


@pytest.mark.parametrize("zoom", [1.0, 200.0])
def test_a_timeline_mix_is_drawn_at_its_runs_and_silent_between(qtbot, zoom):
    from PySide6.QtGui import QPalette

    from studio.audio.buffers import GrowingAudio, TimelineAudio

    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(1000, 150)
    view.show()
    compact = GrowingAudio(RATE)
    compact.append(_tone(2.0))
    compact.append(_tone(1.0))
    # Lines rendered at 2-4 s and 6-7 s of a 10 s project; the rest is not rendered yet.
    view.show_timeline(TimelineAudio(compact, 10 * RATE, [(2 * RATE, 0, 2 * RATE), (6 * RATE, 2 * RATE, RATE)]))
    view.axis.fit()
    view.axis.zoom(zoom, 3.0)
    qtbot.wait(10)
    image = view.grab().toImage()
    background = view.palette().color(QPalette.ColorRole.Base)

    def traced(seconds: float) -> bool:
        x = int(view.axis.x_of(seconds))
        if not 0 <= x < image.width():
            return False
        return any(image.pixelColor(x, y) != background for y in range(image.height()))

    assert traced(3.0)
    if zoom == 1.0:
        assert traced(6.5) and not traced(1.0) and not traced(5.0) and not traced(8.0)
    else:
        assert not traced(1.99) and not traced(4.01)  # nothing drawn in the silence next to the run
