"""`render --format m4b|mp3` and `--chapter`, through the real engine on a tiny checkpoint."""

from __future__ import annotations

import json

import av
import pytest

from studio import cli
from studio.audio.audiobook import read_chapters

SCRIPT = "[Whispering]\n# Chapter One\nIt began.\n[pause 0.5s]\n# Chapter Two\nIt ended.\n"
FRAME = 0.08


def _render(tiny_checkpoints, tmp_path, *flags: str) -> int:
    script = tmp_path / "book.txt"
    script.write_text(SCRIPT)
    return cli.main(["render", str(script), "--model", str(tiny_checkpoints["voice_design"]),
                     "--voice-design", "A calm narrator",
                     "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--device", "cpu",
                     "--threads", "2", "--max-new-tokens", "6", "--seed", "3", *flags])


@pytest.mark.parametrize("audio_format", ["m4b", "mp3"])
def test_a_script_with_chapters_renders_to_an_audiobook_with_their_marks(tiny_checkpoints, tmp_path, capsys,
                                                                         audio_format):
    assert _render(tiny_checkpoints, tmp_path, "--format", audio_format) == 0, capsys.readouterr().err
    (book,) = (tmp_path / "out").glob(f"book_*.{audio_format}")
    manifest = json.loads(next((tmp_path / "out").glob("book_*.json")).read_text())
    # Each chapter starts where its heading's segment starts in the manifest.
    starts = {s["line"]: s["start"] for s in manifest["segments"]}
    expected = [("Chapter One", starts[2]), ("Chapter Two", starts[5])]
    with av.open(str(book)) as container:  # FFmpeg's reading, as players see it
        found = sorted(((str(c["metadata"]["title"]), float(c["start"] * c["time_base"]))
                        for c in container.chapters()), key=lambda c: c[1])
    assert [t for t, _ in found] == [t for t, _ in expected]
    assert all(abs(a - b) <= FRAME for (_, a), (_, b) in zip(found, expected, strict=True))
    assert expected[1][1] > 0


def test_one_chapter_renders_and_exports_alone(tiny_checkpoints, tmp_path, capsys):
    assert _render(tiny_checkpoints, tmp_path, "--chapter", "chapter two", "--format", "m4b") == 0, \
        capsys.readouterr().err
    (book,) = (tmp_path / "out").glob("book_ch02_*.m4b")
    manifest = json.loads(next((tmp_path / "out").glob("book_ch02_*.json")).read_text())
    assert sorted({s["line"] for s in manifest["segments"]}) == [5, 6]  # nothing of chapter one
    assert [(title, start) for title, start in read_chapters(book)] == [("Chapter Two", 0.0)]


@pytest.mark.parametrize("wanted, message", [("3", "there is no chapter 3: the script has 2"),
                                             ("Epilogue", "there is no chapter called 'Epilogue'")])
def test_a_chapter_that_is_not_there_is_one_line_and_exit_2(tiny_checkpoints, tmp_path, capsys, wanted, message):
    assert _render(tiny_checkpoints, tmp_path, "--chapter", wanted) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "book.txt" in err
    assert not (tmp_path / "out").exists()  # nothing rendered, nothing written


def test_acx_masters_the_audiobook_and_prints_the_check(tiny_checkpoints, tmp_path, capsys):
    assert _render(tiny_checkpoints, tmp_path, "--format", "mp3", "--acx") == 0
    out = capsys.readouterr().out
    assert "ACX check: passed" in out and "  Sample rate: 44100 Hz" in out
    (book,) = (tmp_path / "out").glob("book_*.mp3")
    with av.open(str(book)) as container:
        stream = container.streams.audio[0]
        assert stream.rate == 44100 and stream.bit_rate >= 192_000  # ACX asks 192 kbps or more
    manifest = json.loads(next((tmp_path / "out").glob("book_*.json")).read_text())
    assert manifest["acx"]["mastered"] and manifest["sample_rate"] == 44100


def test_per_chapter_writes_one_audiobook_per_chapter_with_its_own_subtitles(tiny_checkpoints, tmp_path, capsys):
    assert _render(tiny_checkpoints, tmp_path, "--format", "m4b", "--per-chapter") == 0, capsys.readouterr().err
    out = tmp_path / "out"
    assert sorted(p.name.split("_2")[0] for p in out.glob("*.m4b")) == ["book_ch01", "book_ch02"]
    for number, title, lines in ((1, "Chapter One", {2, 3, 4}), (2, "Chapter Two", {5, 6})):
        (audio,) = out.glob(f"book_ch{number:02d}_*.m4b")
        manifest = json.loads(next(out.glob(f"book_ch{number:02d}_*.json")).read_text())
        assert {s["line"] for s in manifest["segments"]} <= lines and read_chapters(audio) == [(title, 0.0)]
        srt = next(out.glob(f"book_ch{number:02d}_*.srt")).read_text()
        assert srt.startswith("1\n00:00:00,000 -->")  # each chapter's subtitles start at its own beginning


def test_per_chapter_without_chapters_is_one_line_and_exit_2(tiny_checkpoints, tmp_path, capsys):
    script = tmp_path / "flat.txt"
    script.write_text("No headings here.\n")
    assert cli.main(["render", str(script), "--voice-design", "x", "--model", str(tiny_checkpoints["voice_design"]),
                     "--out", str(tmp_path / "out"), "--per-chapter"]) == 2
    assert "flat.txt: --per-chapter: the script has no chapters" in capsys.readouterr().err
