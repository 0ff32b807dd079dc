"""The project's mix on the timeline's axis, through real renders on a tiny checkpoint: rendering one line
puts its audio at its clip and leaves every other line's audio where it was."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ui.test_render_in_window import SCRIPT, render_and_wait


@pytest.fixture
def window(tiny_window):
    return tiny_window(SCRIPT)


def line_audio(window, line: int) -> np.ndarray:
    """The samples the waveform (and the player) hold for one line's clip."""
    start, end = int(window.timeline.start_samples[line]), int(window.timeline.end_samples[line])
    return np.asarray(window.waveform.audio.view(start, end)).copy()


def rendered(window, line: int) -> np.ndarray:
    render = window.session.current_render(window.model.line(line))
    return np.concatenate([r.samples for r in render.ordered()])


def settle(qtbot, window) -> None:
    """Wait for the timeline refresh and the mix that follows it."""
    qtbot.waitUntil(lambda: not window._refresh_timer.isActive() and not window._mix_timer.isActive(),
                    timeout=30_000)
    qtbot.waitUntil(lambda: np.array_equal(window._mix_ends, window.timeline.end_samples), timeout=30_000)


def test_rendering_one_line_keeps_the_others_audio_at_their_places(qtbot, window):
    render_and_wait(qtbot, window)
    settle(qtbot, window)
    first, third = rendered(window, 0), rendered(window, 2)
    np.testing.assert_array_equal(line_audio(window, 0), first)
    np.testing.assert_array_equal(line_audio(window, 2), third)

    # Editing line 2 makes it unrendered: its clip takes its estimated length, its span in the mix is
    # silence, and line 3's audio moves with its clip.
    window.editor.setPlainText(SCRIPT.replace("Get out!", "Get out of here, now, all of you!"))
    settle(qtbot, window)
    clip = window.timeline.clips[1]
    assert clip.estimated and clip.state == "stale"
    assert not np.any(line_audio(window, 1))
    np.testing.assert_array_equal(line_audio(window, 0), first)
    np.testing.assert_array_equal(line_audio(window, 2), third)
    assert len(window.waveform.audio) == window.timeline.end_samples[-1]

    # Rendering that line alone puts its new audio at its clip; nothing else changes.
    previous = window.last_outcome
    assert window.render_line(1)
    qtbot.waitUntil(lambda: window.last_outcome is not previous, timeout=120_000)
    settle(qtbot, window)
    assert not window.timeline.clips[1].estimated
    second = rendered(window, 1)
    assert len(second) and np.any(second)
    np.testing.assert_array_equal(line_audio(window, 1), second)
    np.testing.assert_array_equal(line_audio(window, 0), first)
    np.testing.assert_array_equal(line_audio(window, 2), third)
    assert len(window.waveform.audio) == len(first) + len(second) + len(third)


def test_an_unrendered_line_between_rendered_ones_is_silence_of_its_estimated_length(qtbot, window):
    assert window.render_line(2)
    qtbot.waitUntil(lambda: window.last_outcome is not None, timeout=120_000)
    settle(qtbot, window)
    timeline = window.timeline
    assert [c.estimated for c in timeline.clips] == [True, True, False]
    # The rendered third line starts after the first two lines' estimates, in the timeline and the mix.
    estimate = int(round(timeline.clips[0].seconds * 24000)) + int(round(timeline.clips[1].seconds * 24000))
    assert timeline.start_samples[2] == estimate
    assert not np.any(window.waveform.audio.view(0, estimate))
    np.testing.assert_array_equal(line_audio(window, 2), rendered(window, 2))
    assert window.timeline.start_of(2) == pytest.approx(estimate / 24000)


def test_a_complete_render_all_keeps_its_streamed_mix_and_player(qtbot, window):
    render_and_wait(qtbot, window)
    streamed = window.waveform.audio
    qtbot.wait(500)  # longer than the mix's rebuild delay
    # The streamed audio is the mix: nothing was rebuilt (a rebuild would restart playback mid-sentence).
    assert window.waveform.audio is streamed
    assert np.array_equal(window._mix_ends, window.timeline.end_samples)
    assert len(streamed) == window.timeline.end_samples[-1]
