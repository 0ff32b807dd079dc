"""Exports of a script with chapters: marks where each chapter's first segment starts, in M4B, MP3 and
the manifest; stems of an audiobook export are WAV."""

from __future__ import annotations

import json
from datetime import datetime

import av
import numpy as np
import pytest

from studio.audio.audiobook import BookTags, ChapterMark, chapter_marks, read_chapters
from studio.audio.export import ExportError, ExportSegment, export_render, export_to_path
from studio.core.chapters import chapters_in

RATE = 24000
WHEN = datetime(2026, 12, 4, 18, 0, 0)
SCRIPT = "For my mother.\n# Chapter 1: Rain\nIt rained.\n[pause 1s]\n# Chapter 2: Sun\nThe sun came out.\n"


def tone(hz: float, seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(RATE * seconds)) / RATE)).astype(np.float32)


def book_segments() -> list[ExportSegment]:
    parts = [(1, "speech", "For my mother.", tone(200, 1.0)), (2, "speech", "Chapter 1: Rain", tone(300, 0.8)),
             (3, "speech", "It rained.", tone(300, 1.5)), (4, "pause", "", np.zeros(RATE, np.float32)),
             (5, "speech", "Chapter 2: Sun", tone(500, 0.7)), (6, "speech", "The sun came out.", tone(500, 1.2))]
    return [ExportSegment(i, kind, line, text, None, None, samples, False, 0)
            for i, (line, kind, text, samples) in enumerate(parts)]


EXPECTED = [("Opening", 0.0), ("Chapter 1: Rain", 1.0), ("Chapter 2: Sun", 1.0 + 0.8 + 1.5 + 1.0)]


@pytest.mark.parametrize("audio_format", ["m4b", "mp3"])
def test_a_render_with_chapters_exports_an_audiobook_with_a_mark_per_chapter(tmp_path, audio_format):
    result = export_render(book_segments(), sample_rate=RATE, folder=tmp_path, name="book", when=WHEN,
                           audio_format=audio_format, stems=True, chapters=chapters_in(SCRIPT),
                           book=BookTags(title="Weather", author="A. Writer"))
    assert result.audio.name == f"book_20261204_180000.{audio_format}"
    # Read by FFmpeg (what players use), not only by our own reader.
    with av.open(str(result.audio)) as container:
        found = sorted((str(c["metadata"]["title"]), float(c["start"] * c["time_base"]))
                       for c in container.chapters())
        duration = container.duration / av.time_base
    assert [title for title, _ in sorted(found, key=lambda c: c[1])] == [t for t, _ in EXPECTED]
    for (_, start), (_, expected) in zip(sorted(found, key=lambda c: c[1]), EXPECTED, strict=True):
        assert abs(start - expected) <= 0.08
    assert abs(duration - 6.2) <= 0.1
    manifest = json.loads(result.manifest.read_text())
    assert [(c["title"], c["start"]) for c in manifest["chapters"]] == EXPECTED
    assert [p.suffix for p in result.stems] == [".wav"] * 5  # stems of an audiobook stay editable WAV


def test_a_wav_export_lists_the_chapters_in_its_manifest(tmp_path):
    result = export_render(book_segments(), sample_rate=RATE, folder=tmp_path, name="book", when=WHEN,
                           chapters=chapters_in(SCRIPT))
    assert [c["title"] for c in json.loads(result.manifest.read_text())["chapters"]] == [t for t, _ in EXPECTED]


def test_export_to_a_chosen_path_as_m4b_carries_the_marks_and_replaces_nothing(tmp_path):
    path = tmp_path / "Weather.m4b"
    export_to_path(book_segments(), sample_rate=RATE, audio_path=path, audio_format="m4b",
                   chapters=chapters_in(SCRIPT), book=BookTags(title="Weather"))
    assert [title for title, _ in read_chapters(path)] == [t for t, _ in EXPECTED]
    before = path.read_bytes()
    with pytest.raises(ExportError, match="already exists"):
        export_to_path(book_segments(), sample_rate=RATE, audio_path=path, audio_format="m4b")
    assert path.read_bytes() == before


def test_unknown_formats_are_refused_by_name(tmp_path):
    with pytest.raises(ExportError, match="expected wav, flac, m4b, mp3"):
        export_render(book_segments(), sample_rate=RATE, folder=tmp_path, name="book", audio_format="ogg")


def test_marks_come_from_each_chapters_first_segment_and_empty_chapters_get_none():
    chapters = chapters_in("# One\nA.\n# Two\n# Three\nC.\n# Four\nD.")
    # Line 3 ("# Two") rendered to nothing; line 6 ("# Four") and 7 were never rendered (a partial plan).
    lengths = [(1, 100), (2, 50), (3, 0), (4, 30), (5, 20)]
    assert chapter_marks(lengths, chapters) == [ChapterMark("One", 0), ChapterMark("Three", 150)]


def test_book_tags_read_the_cover_beside_the_project_and_say_why_one_cannot_be_used(tmp_path):
    from studio.core.project import BookInfo
    from studio.session.exporting import book_tags

    (tmp_path / "book.cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    tags, problem = book_tags(BookInfo(author="A. Writer", cover="book.cover.jpg"), project_folder=tmp_path,
                              fallback_title="book")
    assert problem is None and tags.cover_type == "image/jpeg" and tags.cover.startswith(b"\xff\xd8")
    assert (tags.title, tags.author) == ("book", "A. Writer")  # no title of its own: the project's name
    (tmp_path / "notes.txt").write_text("not a picture")
    for cover, why in (("missing.png", "cannot be read"), ("notes.txt", "neither JPEG nor PNG")):
        tags, problem = book_tags(BookInfo(title="T", cover=cover), project_folder=tmp_path, fallback_title="x")
        assert tags.cover is None and why in problem and cover in problem


def test_acx_mastering_moves_the_marks_and_subtitles_with_the_room_tone_it_adds(tmp_path):
    result = export_render(book_segments(), sample_rate=RATE, folder=tmp_path, name="book", when=WHEN,
                           audio_format="m4b", chapters=chapters_in(SCRIPT), acx=True)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["sample_rate"] == 44100 and manifest["acx"]["passed"] and manifest["acx"]["mastered"]
    # The tones start at once: mastering adds 0.75 s of room tone before them and trims nothing. The
    # first chapter still starts the file (the room tone is its own).
    shifted = [(title, round(start + 0.75, 2) if start else 0.0) for title, start in EXPECTED]
    assert [(c["title"], round(c["start"], 2)) for c in manifest["chapters"]] == shifted
    assert [(t, round(s, 2)) for t, s in read_chapters(result.audio)] == shifted
    assert result.srt.read_text().startswith("1\n00:00:00,750 --> 00:00:01,750\nFor my mother.")
    with av.open(str(result.audio)) as container:
        assert container.streams.audio[0].rate == 44100


def test_an_audiobook_export_reports_against_acx_even_unmastered(tmp_path):
    result = export_render(book_segments(), sample_rate=RATE, folder=tmp_path, name="book", when=WHEN,
                           audio_format="mp3")
    report = json.loads(result.manifest.read_text())["acx"]
    assert not report["mastered"] and not report["passed"]
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert "Sample rate" in failed and "Room tone at the start" in failed  # 24 kHz, no lead-in
    wav = export_render(book_segments(), sample_rate=RATE, folder=tmp_path, name="plain", when=WHEN)
    assert "acx" not in json.loads(wav.manifest.read_text())  # a WAV is no audiobook unless mastered
