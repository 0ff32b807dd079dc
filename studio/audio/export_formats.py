"""What an export writes as its audio: the format's writer, the chapter marks, ACX mastering and its report.

The program (the segments' audio in order, with its subtitle timing) becomes the file in one of four
formats: WAV or FLAC through soundfile, M4B or MP3 through PyAV (studio/audio/audiobook.py, with chapter
marks and tags). With ACX mastering (studio/audio/acx.py) the audio is trimmed of its own room tone,
padded with room tone at both ends, levelled, limited and resampled to 44.1 kHz: the subtitles and
chapter marks move with it, so they still point at the words. An audiobook's export, mastered or not,
is checked against ACX's requirements and the manifest holds the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from studio.audio.audiobook import BookTags, ChapterMark, book_writer, chapter_marks
from studio.audio.export_files import ExportError
from studio.core.timing import TimedSegment, lay_out

AUDIO_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_24")}
# Audiobook formats (studio/audio/audiobook.py): encoded with PyAV, chapters and tags; stems stay WAV.
BOOK_FORMATS = ("m4b", "mp3")
FORMAT_NAMES = (*AUDIO_FORMATS, *BOOK_FORMATS)


def check_format(audio_format: str) -> None:
    if audio_format not in FORMAT_NAMES:
        raise ExportError(f"unknown audio format {audio_format!r} (expected {', '.join(FORMAT_NAMES)})")


def stem_format(audio_format: str) -> tuple[str, str, str]:
    """(suffix, soundfile format, subtype) of the stems; the audiobook formats' stems are WAV."""
    stem = audio_format if audio_format in AUDIO_FORMATS else "wav"
    return (f".{stem}", *AUDIO_FORMATS[stem])


@dataclass
class Program:
    """The audio to write, at its own rate, and where its words and chapters are."""

    audio: np.ndarray
    sample_rate: int
    timed: list[TimedSegment]  # subtitle timing, in samples at the render's rate
    marks: list  # audiobook.ChapterMark, in samples at `sample_rate`
    acx: object | None  # acx.AcxReport for an audiobook or a mastered export
    mastered: bool
    target: Path


def prepare_program(segments: Sequence, audio: np.ndarray, sample_rate: int, chapters: Sequence, *,
                    audio_format: str, acx: bool, target: Path) -> Program:
    timed = lay_out((s.kind, s.line, s.text, len(s.samples)) for s in segments)
    marks = chapter_marks([(s.line, len(s.samples)) for s in segments], chapters) if chapters else []
    rate, report = sample_rate, None
    if acx:
        from studio.audio.acx import master_acx

        try:
            audio, rate, shift = master_acx(audio, sample_rate)
        except ValueError as exc:
            raise ExportError(f"{target}: cannot master to ACX ({exc}); nothing was exported") from None
        # Everything moves by what mastering put before the first word (room tone added minus room tone
        # trimmed); a cue that would start before the file starts at 0.
        timed = [TimedSegment(t.index, t.kind, t.line, t.text, max(0, t.start_sample + shift),
                              max(0, t.end_sample + shift)) for t in timed]
        last = len(audio) - 1
        # A chapter that began the program still begins the file: the room tone before it is its own.
        moved = [ChapterMark(m.title, 0 if m.start == 0 else
                             min(last, max(0, round((m.start + shift) * rate / sample_rate)))) for m in marks]
        marks = [m for n, m in enumerate(moved) if n == 0 or m.start > moved[n - 1].start]
    if acx or audio_format in BOOK_FORMATS:
        from studio.audio.acx import check_acx

        report = check_acx(audio, rate)
    return Program(audio, rate, timed, marks, report, acx, target)


def audio_writer(audio_format: str, program: Program, book):
    """The function that writes the program's audio into a (temporary) file."""
    audio, rate = program.audio, program.sample_rate
    if audio_format in AUDIO_FORMATS:
        fmt, subtype = AUDIO_FORMATS[audio_format]
        return lambda p: soundfile.write(p, np.clip(audio, -1, 1), rate, format=fmt, subtype=subtype)
    import av
    import mutagen

    target = program.target
    try:
        # ACX takes MP3 at 192 kbps or more (constant bit rate); otherwise 64 kbps is plenty for one voice.
        bitrate = 192_000 if program.mastered else 64_000
        encode = book_writer(audio_format, audio, rate, program.marks, book or BookTags(), path=target,
                             bitrate=bitrate)
    except ValueError as exc:
        raise ExportError(f"{target}: {exc}; nothing was exported") from None

    def write(p: Path) -> None:
        try:
            encode(p)
        except (av.FFmpegError, mutagen.MutagenError) as exc:
            raise ExportError(f"{target}: cannot encode the {audio_format.upper()} ({exc}); nothing was exported") \
                from None

    return write
