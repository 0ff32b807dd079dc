"""A book from file to audiobook on the command line: `import` an EPUB with three chapters, `render` it on a
tiny checkpoint to M4B and MP3, and find the chapters (titles and start times) and tags in the files."""

from __future__ import annotations

import json

import av
import mutagen
import pytest

from studio import cli
from studio.audio.audiobook import read_chapters
from studio.core.chapters import chapters_in
from studio.core.project import load_project
from tests.core.test_book_import import EPUB2_FILES, JPEG, write_epub

TITLES = ["The First Tale", "The Second Tale", "Its Sequel"]


@pytest.fixture
def imported(tmp_path, capsys):
    book = write_epub(tmp_path / "old.epub", EPUB2_FILES, opf="content.opf")
    project = tmp_path / "old.qtts"
    assert cli.main(["import", str(book), "--out", str(project)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"wrote {project}: 'Old Tales' by Bea Author, 3 chapters" in out
    return project


def test_import_writes_a_project_with_the_books_chapters_details_and_cover(imported):
    project = load_project(imported)
    assert [c.title for c in chapters_in(project.script)] == TITLES
    assert (project.book.title, project.book.author, project.book.cover) == ("Old Tales", "Bea Author",
                                                                             "old.cover.jpg")
    assert (imported.parent / "old.cover.jpg").read_bytes() == JPEG


@pytest.mark.parametrize("audio_format", ["m4b", "mp3"])
def test_the_imported_book_renders_to_an_audiobook_with_its_three_chapters(imported, tiny_checkpoints, tmp_path,
                                                                           capsys, audio_format):
    out = tmp_path / "renders"
    code = cli.main(["render", str(imported), "--model", str(tiny_checkpoints["voice_design"]), "--voice-design",
                     "A warm storyteller", "--out", str(out), "--cache", str(tmp_path / "cache"), "--device", "cpu",
                     "--threads", "2", "--max-new-tokens", "6", "--format", audio_format])
    assert code == 0, capsys.readouterr().err
    (audio,) = out.glob(f"old_*.{audio_format}")
    manifest = json.loads(next(out.glob("old_*.json")).read_text())
    script = load_project(imported).script.split("\n")
    heading_starts = [next(s["start"] for s in manifest["segments"] if s["line"] == c.first_line)
                      for c in chapters_in(script)]
    with av.open(str(audio)) as container:  # as FFmpeg-based players read it
        found = sorted((float(c["start"] * c["time_base"]), str(c["metadata"]["title"]))
                       for c in container.chapters())
    assert [title for _, title in found] == TITLES
    assert all(abs(start - expected) <= 0.08 for (start, _), expected in zip(found, heading_starts, strict=True))
    assert [title for title, _ in read_chapters(audio)] == TITLES
    tags = mutagen.File(audio)
    if audio_format == "m4b":
        assert tags["\xa9alb"] == ["Old Tales"] and tags["\xa9ART"] == ["Bea Author"]
        assert bytes(tags["covr"][0]) == JPEG
    else:
        assert str(tags["TALB"]) == "Old Tales" and str(tags["TPE1"]) == "Bea Author"
        assert tags.tags.getall("APIC")[0].data == JPEG


def test_an_existing_project_is_never_replaced(imported, tmp_path, capsys):
    before = imported.read_bytes()
    book = tmp_path / "old.epub"
    assert cli.main(["import", str(book), "--out", str(imported)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{imported}: already exists; nothing was overwritten"
    assert imported.read_bytes() == before


def test_a_drm_protected_book_is_one_line_and_nothing_is_written(tmp_path, capsys):
    files = dict(EPUB2_FILES) | {"META-INF/encryption.xml": (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
        '<enc:CipherReference URI="text/one.html"/></enc:CipherData></enc:EncryptedData></encryption>')}
    book = write_epub(tmp_path / "locked.epub", files, opf="content.opf")
    assert cli.main(["import", str(book), "--out", str(tmp_path / "locked.qtts")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "locked.epub" in err[0] and "DRM" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.epub"]


def test_max_chars_sets_the_longest_line_and_a_tiny_one_is_refused(tmp_path, capsys):
    book = tmp_path / "long.md"
    book.write_text("# One\n\n" + " ".join(f"Sentence number {n} is here." for n in range(40)) + "\n")
    assert cli.main(["import", str(book), "--out", str(tmp_path / "long.qtts"), "--max-chars", "60"]) == 0
    lines = [line for line in load_project(tmp_path / "long.qtts").script.split("\n") if line.strip()]
    assert len(lines) > 10 and max(len(line) for line in lines) <= 60
    capsys.readouterr()
    assert cli.main(["import", str(book), "--out", str(tmp_path / "tiny.qtts"), "--max-chars", "10"]) == 2
    assert "--max-chars 10: a line needs room for a sentence" in capsys.readouterr().err
    assert not (tmp_path / "tiny.qtts").exists()
