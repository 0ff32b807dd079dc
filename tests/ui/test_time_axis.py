"""The shared time axis: zoom at a point, fit, scroll limits (no Qt widgets needed)."""

from __future__ import annotations

import pytest

from studio.ui.time_axis import MAX_PIXELS_PER_SECOND, TimeAxis


@pytest.fixture
def axis(qtbot):
    axis = TimeAxis()
    axis.set_view_width(1000)
    axis.set_extent("clips", 100.0)
    return axis


def test_a_fitted_axis_shows_the_whole_project_and_follows_its_length(axis):
    assert axis.fitted and axis.start == 0
    assert axis.end == pytest.approx(102.0)  # the project plus a little room after its end
    axis.set_extent("audio", 200.0)  # the longest view decides the length
    assert axis.end == pytest.approx(204.0)


def test_zoom_keeps_the_time_under_the_mouse_in_place(axis):
    x_before = axis.x_of(40.0)
    axis.zoom(4.0, 40.0)
    assert axis.pixels_per_second == pytest.approx(4 * 1000 / 102)
    assert axis.x_of(40.0) == pytest.approx(x_before)
    assert not axis.fitted
    anchor = (axis.start + axis.end) / 2 + 3.0  # a time in view, off centre
    x_before = axis.x_of(anchor)
    axis.zoom(0.5, anchor)
    assert axis.x_of(anchor) == pytest.approx(x_before)
    assert axis.pixels_per_second == pytest.approx(2 * 1000 / 102)


def test_zoom_and_scroll_stay_within_the_project(axis):
    axis.zoom(0.1, 50.0)  # no further out than the whole project
    assert axis.fitted and axis.start == 0 and axis.pixels_per_second == pytest.approx(1000 / 102)
    axis.zoom(1e9, 50.0)
    assert axis.pixels_per_second == MAX_PIXELS_PER_SECOND
    axis.scroll_to(-10)
    assert axis.start == 0
    axis.scroll_to(10_000)
    assert axis.end == pytest.approx(102.0)


def test_ensure_visible_scrolls_without_zooming(axis):
    axis.zoom(10.0, 0.0)
    scale = axis.pixels_per_second
    axis.ensure_visible(80.0)
    assert axis.start < 80.0 < axis.end and axis.pixels_per_second == scale
