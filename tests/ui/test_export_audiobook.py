"""File -> Export Audio… as an audiobook (M4B, MP3) from the real window: chapter marks from the script's
headings, the project's book details and cover, rendered through the real engine on a tiny checkpoint."""

from __future__ import annotations

import av
import mutagen
import numpy as np
import pytest

from studio.audio.audiobook import read_chapters
from studio.core.project import BookInfo
from tests.ui.test_export_dialog import export_with, fill_export
from tests.ui.test_render_in_window import render_and_wait

SCRIPT = "# Night\n[Whispering]Come closer.\n# Morning\n[Angry]Get out!\nFine."
# The smallest valid PNG: a 1x1 transparent pixel.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.fixture
def window(tiny_window, tmp_path):
    window = tiny_window(SCRIPT)
    (tmp_path / "cover.png").write_bytes(PNG)
    window.project.book = BookInfo(title="Weather", author="A. Writer", cover=str(tmp_path / "cover.png"))
    return window


def _line_starts(window) -> dict[int, float]:
    """Where each line's audio starts in the mix (seconds), from the samples the window holds."""
    starts, offset = {}, 0
    for result in window.session.mix_results(window.model.lines(), window._items_per_line()):
        starts.setdefault(result.segment.line, offset / 24000)
        offset += len(result.samples)
    return starts


@pytest.mark.parametrize("fmt", ["m4b", "mp3"])
def test_export_audio_as_an_audiobook_marks_each_chapter_and_tags_the_book(qtbot, window, tmp_path, fmt):
    render_and_wait(qtbot, window)
    target = tmp_path / f"weather.{fmt}"
    assert export_with(qtbot, window, [fill_export(target, fmt=fmt, subtitles=False)])
    starts = _line_starts(window)
    with av.open(str(target)) as container:
        found = sorted((float(c["start"] * c["time_base"]), str(c["metadata"]["title"]))
                       for c in container.chapters())
    assert [title for _, title in found] == ["Night", "Morning"]
    assert np.allclose([start for start, _ in found], [starts[1], starts[3]], atol=0.08)
    assert [title for title, _ in read_chapters(target)] == ["Night", "Morning"]
    tags = mutagen.File(target)
    if fmt == "m4b":
        assert tags["\xa9alb"] == ["Weather"] and tags["\xa9ART"] == ["A. Writer"] and bytes(tags["covr"][0]) == PNG
    else:
        assert str(tags["TALB"]) == "Weather" and str(tags["TPE1"]) == "A. Writer"
        assert tags.tags.getall("APIC")[0].data == PNG
    assert window.project.render.export.audio_format == fmt  # the choice is the project's now


def test_the_acx_option_masters_the_export_and_the_status_bar_gives_the_check(qtbot, window, tmp_path):
    render_and_wait(qtbot, window)
    target = tmp_path / "weather.m4b"
    fill = fill_export(target, fmt="m4b", subtitles=False)

    def with_acx(dialog):
        dialog.acx_check.setChecked(True)
        assert not dialog.loudness_check.isEnabled()  # mastering sets the level itself
        fill(dialog)

    assert export_with(qtbot, window, [with_acx])
    with av.open(str(target)) as container:
        assert container.streams.audio[0].rate == 44100
    assert "ACX check passed" in window.statusBar().currentMessage()
    assert window.project.render.export.acx  # kept with the project's export settings
