"""Audiobook exports (M4B, MP3): read back with PyAV and mutagen, not only with the module's own reader.

Three chapters of different sine tones make a misplaced chapter marker, swapped or shifted audio, or a
wrong sample rate show up as the wrong dominant frequency around each marker.
"""

from __future__ import annotations

import errno
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from mutagen.id3 import ID3, CTOCFlags
from mutagen.mp4 import MP4, MP4Cover

from studio.audio import audiobook
from studio.audio.audiobook import BookTags, ChapterMark, read_chapters, write_m4b, write_mp3
from studio.audio.export import ExportError

RATE = 24000
SECONDS = 3  # per chapter
TONES = (440.0, 880.0, 1320.0)
# A title with non-ASCII characters: the chapter lists must carry UTF-8 intact.
TITLES = ("Opening", "Zwei – Ärger im Haus", "Finale")
FRAME = 0.08  # seconds: how far a chapter start may move (the longest codec frame a player might round to)
# Samples in one encoded frame: AAC, and MPEG-1 layer III (the MPEG-2 frames used at 24 kHz are half as long).
CODEC_FRAME = {".m4b": 1024, ".mp3": 1152}
WRITERS = {".m4b": write_m4b, ".mp3": write_mp3}


def book(rate: int = RATE) -> tuple[np.ndarray, list[ChapterMark]]:
    t = np.arange(SECONDS * rate) / rate
    audio = np.concatenate([0.5 * np.sin(2 * np.pi * tone * t) for tone in TONES]).astype(np.float32)
    return audio, [ChapterMark(title, n * SECONDS * rate) for n, title in enumerate(TITLES)]


def png_bytes() -> bytes:
    """A valid 1x1 PNG, so the cover is a real image and not just a signature."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"  # only the signature matters to the writer


def decode(path: Path) -> tuple[np.ndarray, int, list[tuple[str, float]]]:
    """The decoded mono audio, its rate, and PyAV's chapters sorted by start (as players sort them)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.layout.name == "mono"
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
        chapters = sorted(((c["metadata"]["title"], float(c["start"] * c["time_base"])) for c in container.chapters()),
                          key=lambda mark: mark[1])
    return np.concatenate(frames).astype(np.float64), rate, chapters


def dominant(audio: np.ndarray, rate: int, begin: float, end: float) -> float:
    window = audio[int(begin * rate):int(end * rate)]
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window)), n=1 << 16))
    return float(np.argmax(spectrum) * rate / (1 << 16))


@pytest.mark.parametrize("suffix", [".m4b", ".mp3"])
@pytest.mark.parametrize("rate", [RATE, 20000])  # 20 kHz: neither encoder takes it, so the writer resamples
def test_round_trip(tmp_path, suffix, rate):
    audio, chapters = book(rate)
    path = tmp_path / f"book{suffix}"
    WRITERS[suffix](path, audio, rate, chapters, BookTags("The Book", "A. Writer", png_bytes()))

    decoded, decoded_rate, marks = decode(path)
    # Encoder priming and padding are trimmed, and the tail is not lost: the decoded audio is at least as
    # long as the input (1 ms for the resampler's rounding) and at most one codec frame longer.
    extra = len(decoded) / decoded_rate - len(audio) / rate
    assert -0.001 <= extra <= CODEC_FRAME[suffix] / decoded_rate
    assert [title for title, _ in marks] == list(TITLES)
    for (_, start), chapter in zip(marks, chapters, strict=True):
        assert abs(start - chapter.start / rate) <= FRAME
    ours = read_chapters(path)
    assert [title for title, _ in ours] == list(TITLES)
    assert [start for _, start in ours] == pytest.approx([start for _, start in marks], abs=1e-3)

    # Each chapter sounds its own tone, right from its marker to the next one; so a marker in the wrong
    # place, a shift of the audio against the markers, or a wrong rate in the header all fail here.
    ends = [start for _, start in marks[1:]] + [len(decoded) / decoded_rate]
    for number, ((_, start), end) in enumerate(zip(marks, ends, strict=True)):
        assert dominant(decoded, decoded_rate, start + 0.1, end - 0.1) == pytest.approx(TONES[number], abs=3)
        assert dominant(decoded, decoded_rate, start + 0.02, start + 0.1) == pytest.approx(TONES[number], abs=15)
        if number:
            assert dominant(decoded, decoded_rate, start - 0.1, start - 0.02) == pytest.approx(
                TONES[number - 1], abs=15)


def test_m4b_tags_and_chapter_lists(tmp_path):
    audio, chapters = book()
    path = tmp_path / "book.m4b"
    write_m4b(path, audio, RATE, chapters, BookTags("The Book", "A. Writer", png_bytes()))

    tags = MP4(path).tags
    assert tags["\xa9nam"] == ["The Book"] and tags["\xa9alb"] == ["The Book"]
    assert tags["\xa9ART"] == ["A. Writer"] and tags["aART"] == ["A. Writer"]
    assert tags["\xa9gen"] == ["Audiobook"] and tags["stik"] == [2]
    (cover,) = tags["covr"]
    assert bytes(cover) == png_bytes() and cover.imageformat == MP4Cover.FORMAT_PNG
    data = path.read_bytes()
    assert data[4:12] == b"ftypM4B "
    # Both chapter lists survive mutagen's rewrite of moov: Nero's chpl (most players) and the QuickTime
    # chapter track the audio track references with tref/chap (Apple's players).
    assert b"chpl" in data and b"chap" in data
    assert "Zwei – Ärger im Haus".encode() in data


def test_mp3_id3_frames(tmp_path):
    audio, chapters = book()
    path = tmp_path / "book.mp3"
    write_mp3(path, audio, RATE, chapters, BookTags("The Book", "A. Writer", JPEG))  # type guessed: JPEG

    tag = ID3(path)
    assert tag.version == (2, 4, 0)
    assert tag["TIT2"].text == ["The Book"] and tag["TALB"].text == ["The Book"]
    assert tag["TPE1"].text == ["A. Writer"]
    (picture,) = tag.getall("APIC")
    assert picture.data == JPEG and picture.mime == "image/jpeg" and picture.type == 3
    (toc,) = tag.getall("CTOC")
    assert toc.flags == CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED
    assert toc.child_element_ids == ["ch0", "ch1", "ch2"]
    frames = {frame.element_id: frame for frame in tag.getall("CHAP")}
    times = [(frames[i].start_time, frames[i].end_time) for i in toc.child_element_ids]
    assert times == [(0, 3000), (3000, 6000), (6000, 9000)]
    assert [frames[i].sub_frames["TIT2"].text[0] for i in toc.child_element_ids] == list(TITLES)
    # mutagen stores frames by size, so the CHAP frames are out of order in the file; the reader follows CTOC.
    assert [title for title, _ in read_chapters(path)] == list(TITLES)


def test_no_chapters_no_tags(tmp_path):
    """A book without chapters or tags is still a valid file (the export may have a single section)."""
    audio, _ = book()
    for suffix, writer in WRITERS.items():
        path = tmp_path / f"plain{suffix}"
        writer(path, audio, RATE, [], BookTags())
        assert read_chapters(path) == []
        assert 0 <= len(decode(path)[0]) - len(audio) <= CODEC_FRAME[suffix]


@pytest.mark.parametrize("suffix", [".m4b", ".mp3"])
def test_existing_file_is_not_overwritten(tmp_path, suffix):
    path = tmp_path / f"book{suffix}"
    path.write_bytes(b"the user's own file")
    audio, chapters = book()
    with pytest.raises(ExportError, match="already exists"):
        WRITERS[suffix](path, audio, RATE, chapters, BookTags("The Book"))
    assert path.read_bytes() == b"the user's own file"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("suffix", [".m4b", ".mp3"])
def test_file_appearing_while_encoding_is_kept(tmp_path, suffix, monkeypatch):
    """Someone else creates the name after the check: theirs stays, the encoded temp file goes."""
    path = tmp_path / f"book{suffix}"
    encode = audiobook._encode

    def encode_then_race(tmp, *args):
        encode(tmp, *args)
        path.write_bytes(b"theirs")

    monkeypatch.setattr(audiobook, "_encode", encode_then_race)
    audio, chapters = book()
    with pytest.raises(ExportError, match="appeared while exporting"):
        WRITERS[suffix](path, audio, RATE, chapters, BookTags())
    assert path.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("suffix", [".m4b", ".mp3"])
@pytest.mark.parametrize(("starts", "named"), [
    ((0, 5 * RATE, 4 * RATE), "Finale"),  # goes backwards
    ((0, 3 * RATE, 3 * RATE), "Finale"),  # two chapters at one place
    ((0, 3 * RATE, 9 * RATE), "Finale"),  # at the very end: an empty chapter
    ((-1, 3 * RATE, 6 * RATE), "Opening"),
])
def test_bad_chapters_are_refused_and_leave_nothing(tmp_path, suffix, starts, named):
    audio, _ = book()
    chapters = [ChapterMark(title, start) for title, start in zip(TITLES, starts, strict=True)]
    with pytest.raises(ValueError, match=named):
        WRITERS[suffix](tmp_path / f"book{suffix}", audio, RATE, chapters, BookTags())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("samples", [np.zeros(0, np.float32), np.zeros((RATE, 2), np.float32),
                                     np.array([0.0, np.nan] * 100, np.float32)])
def test_unwritable_audio_is_refused(tmp_path, samples):
    for suffix, writer in WRITERS.items():
        with pytest.raises(ValueError):
            writer(tmp_path / f"book{suffix}", samples, RATE, [], BookTags())
    assert list(tmp_path.iterdir()) == []


def test_unknown_cover_and_wrong_suffix_are_refused(tmp_path):
    audio, chapters = book()
    with pytest.raises(ValueError, match="neither JPEG nor PNG"):
        write_m4b(tmp_path / "book.m4b", audio, RATE, chapters, BookTags(cover=b"GIF89a..."))
    with pytest.raises(ExportError, match=r"\.mp3"):
        write_mp3(tmp_path / "book.m4b", audio, RATE, chapters, BookTags())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("suffix", "saver"), [(".m4b", MP4), (".mp3", ID3)])
def test_failure_while_tagging_leaves_nothing(tmp_path, suffix, saver, monkeypatch):
    """A full disk after the audio was encoded: an ExportError, and neither the file nor its temp remains."""

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(saver, "save", full_disk)
    audio, chapters = book()
    path = tmp_path / f"book{suffix}"
    with pytest.raises(ExportError, match="No space left on device"):
        WRITERS[suffix](path, audio, RATE, chapters, BookTags("The Book"))
    assert list(tmp_path.iterdir()) == []


def test_failure_inside_the_encoder_leaves_nothing(tmp_path):
    """FFmpeg refusing a setting is reported as an ExportError, with nothing left behind."""
    audio, chapters = book()
    with pytest.raises(ExportError, match="cannot write the audiobook"):
        write_m4b(tmp_path / "book.m4b", audio, RATE, chapters, BookTags(), bitrate=-5)
    assert list(tmp_path.iterdir()) == []


def test_mp3_without_lame_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(av, "codecs_available", av.codecs_available - {"libmp3lame"})
    audio, chapters = book()
    with pytest.raises(ExportError, match="libmp3lame"):
        write_mp3(tmp_path / "book.mp3", audio, RATE, chapters, BookTags())
    assert list(tmp_path.iterdir()) == []
