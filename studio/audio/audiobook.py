"""Writing a finished render as an audiobook: M4B (AAC in MP4) or MP3, with chapters, tags and cover art.

The audio is encoded with PyAV, whose wheels carry FFmpeg's libraries, so no system ffmpeg is needed.
Chapters go where players look for them:

- M4B: PyAV's `Container.set_chapters` hands them to FFmpeg's MP4 muxer, which writes both a QuickTime
  chapter track (a text track the audio track points at with a `chap` reference; Apple's players read it)
  and a Nero `chpl` list in moov/udta (most other players read that). The iTunes tags, including the
  cover, are written afterwards with mutagen, which keeps both.
- MP3: mutagen writes an ID3v2.4 tag with one CHAP frame per chapter (element ids ch0, ch1, ...; start
  and end in milliseconds; the title in a TIT2 subframe) and a top-level ordered CTOC listing them.
  mutagen stores frames by size, so the CHAP frames may be out of order in the file; the CTOC gives the
  order (as the ID3 chapter spec intends), and FFmpeg-based readers get the times to sort by.

Writes follow export.py: the file is made under a temporary name in the target folder and published
with a hard link, which never replaces an existing file; on any failure nothing is left at the path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from studio.audio.export_files import (
    ExportError,
    _failure_reason,
    _publish,
    _remove,
    _write_tmp,
    clean_stale_export_temps,
)
from studio.core.book_model import JPEG, PNG, image_type


@dataclass(frozen=True)
class ChapterMark:
    title: str
    start: int  # sample index into the audio where the chapter begins


@dataclass(frozen=True)
class BookTags:
    title: str | None = None
    author: str | None = None
    cover: bytes | None = None  # JPEG or PNG bytes
    cover_type: str | None = None  # "image/jpeg" / "image/png"; guessed from the bytes when None


# Samples handed to the resampler at a time: an hours-long book is never copied into one frame.
_CHUNK = 1 << 16
# iTunes' media kind for an audiobook (the `stik` atom); players file the book under Audiobooks by it.
_STIK_AUDIOBOOK = 2


def chapter_marks(lengths: Sequence[tuple[int, int]], chapters: Sequence) -> list[ChapterMark]:
    """Where each chapter (studio.core.chapters.Chapter) begins in a program of segments given as
    (script line, samples) in playing order: at its first segment. A chapter with no audio of its own (all
    its lines empty) gets no mark."""
    marks: list[ChapterMark] = []
    offset, total = 0, sum(n for _line, n in lengths)
    pending = list(chapters)
    for line, n_samples in lengths:
        while pending and pending[0].last_line < line:
            pending.pop(0)  # passed without a segment
        if pending and pending[0].holds(line):
            mark = ChapterMark(pending[0].title, offset)
            if marks and offset == marks[-1].start:
                marks[-1] = mark  # the chapter before had no audio: this one starts there
            elif offset < total:
                marks.append(mark)
            pending.pop(0)
        offset += n_samples
    return marks


def write_m4b(path: Path, samples: np.ndarray, sample_rate: int, chapters: Sequence[ChapterMark], tags: BookTags,
              *, bitrate: int = 64_000) -> None:
    """Write `samples` (float32 mono in [-1, 1]) as AAC in an MP4 container with chapters and iTunes tags.

    Raises ValueError for audio or chapters that cannot be written (before anything is created) and
    ExportError when `path` exists or the file cannot be written.
    """
    path = _check_suffix(path, ".m4b")
    _write_atomically(path, book_writer("m4b", samples, sample_rate, chapters, tags, bitrate=bitrate, path=path))


def write_mp3(path: Path, samples: np.ndarray, sample_rate: int, chapters: Sequence[ChapterMark], tags: BookTags,
              *, bitrate: int = 64_000) -> None:
    """Write `samples` (float32 mono in [-1, 1]) as MP3 (LAME) with an ID3v2.4 tag holding chapters and tags.

    Raises ValueError for audio or chapters that cannot be written (before anything is created) and
    ExportError when `path` exists, the bundled FFmpeg has no LAME encoder, or the file cannot be written.
    """
    path = _check_suffix(path, ".mp3")
    _write_atomically(path, book_writer("mp3", samples, sample_rate, chapters, tags, bitrate=bitrate, path=path))


def book_writer(audio_format: str, samples: np.ndarray, sample_rate: int, chapters: Sequence[ChapterMark],
                tags: BookTags, *, bitrate: int = 64_000, path: Path | None = None) -> Callable[[Path], None]:
    """Check what is to be written (ValueError, ExportError) and return the function that writes it into a
    given (temporary) file: what export.py's all-or-nothing exports call. `path` only names the target in
    messages."""
    import av

    audio, cover_type = _check(samples, sample_rate, chapters, tags)
    if audio_format == "m4b":
        def write(tmp: Path) -> None:
            # "ipod" is FFmpeg's muxer for Apple's .m4a/.m4b flavour of MP4 (iTunes metadata, M4A brand).
            _encode(tmp, "ipod", "aac", audio, sample_rate, bitrate,
                    _chapter_entries(chapters, len(audio), sample_rate))
            _mark_as_book(tmp)
            _tag_m4b(tmp, tags, cover_type)

        return write
    if audio_format != "mp3":
        raise ValueError(f"unknown audiobook format {audio_format!r} (expected m4b or mp3)")
    if "libmp3lame" not in av.codecs_available:
        raise ExportError(f"{path or 'mp3'}: this PyAV build's FFmpeg has no MP3 encoder (libmp3lame); "
                          "export M4B instead")

    def write_mp3_file(tmp: Path) -> None:
        # The chapters are left to mutagen, not FFmpeg's ID3 writer, so the frames are exactly as documented.
        _encode(tmp, "mp3", "libmp3lame", audio, sample_rate, bitrate, [])
        _tag_mp3(tmp, tags, cover_type, chapters, len(audio), sample_rate)

    return write_mp3_file


def read_chapters(path: Path) -> list[tuple[str, float]]:
    """The (title, start seconds) of each chapter in an .m4b or .mp3 file, in playing order."""
    path = Path(path)
    if path.suffix.lower() == ".mp3":
        return _read_mp3_chapters(path)
    import av

    with av.open(str(path)) as container:
        marks = [(str(c["metadata"].get("title", "")), float(c["start"] * c["time_base"]))
                 for c in container.chapters()]
    return sorted(marks, key=lambda mark: mark[1])


# --- checks -----------------------------------------------------------------------------------------------


def _check_suffix(path: Path, suffix: str) -> Path:
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ExportError(f"{path}: an audiobook in this format must end in {suffix}")
    return path


def _check(samples: np.ndarray, sample_rate: int, chapters: Sequence[ChapterMark],
           tags: BookTags) -> tuple[np.ndarray, str | None]:
    """Refuse what cannot be written, before anything is created; return the audio as clipped float32
    and the cover's MIME type."""
    audio = np.asarray(samples)
    if audio.ndim != 1:
        raise ValueError(f"audiobook audio must be mono (one dimension), got shape {audio.shape}")
    if len(audio) == 0:
        raise ValueError("audiobook audio is empty")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audiobook audio must be floating point in [-1, 1], got {audio.dtype}")
    if not np.isfinite(audio).all():
        raise ValueError("audiobook audio holds NaN or infinite samples")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    previous: ChapterMark | None = None
    for number, chapter in enumerate(chapters, start=1):
        where = f"chapter {number} ({chapter.title!r})"
        if chapter.start < 0:
            raise ValueError(f"{where} starts at sample {chapter.start}, before the audio")
        if chapter.start >= len(audio):
            raise ValueError(f"{where} starts at sample {chapter.start}, past the end of the audio ({len(audio)})")
        if previous is not None and chapter.start <= previous.start:
            raise ValueError(f"{where} starts at sample {chapter.start}, not after chapter {number - 1} "
                             f"({previous.title!r}, sample {previous.start})")
        previous = chapter
    return np.clip(audio.astype(np.float32, copy=False), -1, 1), _cover_type(tags)


def _cover_type(tags: BookTags) -> str | None:
    if tags.cover is None:
        return None
    if tags.cover_type is not None:
        if tags.cover_type not in (JPEG, PNG):
            raise ValueError(f"cover type {tags.cover_type!r} is not supported (expected {JPEG} or {PNG})")
        return tags.cover_type
    kind = image_type(tags.cover)
    if kind is None:
        raise ValueError("the cover is neither JPEG nor PNG")
    return kind


# --- writing ----------------------------------------------------------------------------------------------


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Run `write` on a temp file beside `path`, then publish it without replacing anything."""
    import av
    import mutagen

    folder = path.parent
    if os.path.lexists(path):
        raise ExportError(f"{path}: already exists; nothing was overwritten")
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such folder")
    clean_stale_export_temps(folder)
    tmp: Path | None = None
    try:
        tmp = _write_tmp(folder, write)
        if not _publish(tmp, path):
            raise ExportError(f"{path}: appeared while exporting; nothing was overwritten")
    except BaseException as exc:
        # Judged before the clean-up frees the space the file had taken.
        failed = isinstance(exc, (OSError, av.FFmpegError, mutagen.MutagenError))
        reason = _failure_reason(exc, folder) if failed else ""
        if tmp is not None:
            _remove(tmp)
        if failed:
            raise ExportError(f"{path}: cannot write the audiobook ({reason}); nothing was written") from None
        raise


def _encode(tmp: Path, container_format: str, codec: str, audio: np.ndarray, sample_rate: int, bitrate: int,
            chapters: list[dict]) -> None:
    """Encode `audio` into `tmp`, resampling when the codec does not take `sample_rate`."""
    import av
    from av.audio.resampler import AudioResampler

    with av.open(str(tmp), "w", format=container_format) as container:
        rate = _codec_rate(codec, sample_rate)
        stream = container.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = bitrate
        if chapters:
            # Must precede the first packet: the muxer sizes its chapter track when it writes the header.
            container.set_chapters(chapters)
        context = stream.codec_context
        # Opened now so frame_size is known (AAC takes 1024 samples a frame, MPEG-2 layer III 576).
        context.open()
        # The resampler also converts float32 to the encoder's sample format and cuts frame_size pieces;
        # every frame but the last must be exactly that long.
        resampler = AudioResampler(format=context.format.name, layout="mono", rate=rate,
                                   frame_size=context.frame_size or None)
        for begin in range(0, len(audio), _CHUNK):
            chunk = audio[begin:begin + _CHUNK]
            frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="flt", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = begin
            frame.time_base = Fraction(1, sample_rate)
            for piece in resampler.resample(frame):
                container.mux(stream.encode(piece))
        for piece in resampler.resample(None):
            container.mux(stream.encode(piece))
        # Flushing the encoder emits the frames it still holds (its look-ahead) and the last, short one;
        # the muxer then records the priming and padding (MP4 edit list, LAME tag) so decoders trim them.
        container.mux(stream.encode(None))


def _codec_rate(codec: str, sample_rate: int) -> int:
    """`sample_rate` when the encoder takes it, else the nearest rate above it (or its highest)."""
    import av

    rates = sorted(av.Codec(codec, "w").audio_rates or ())
    if not rates or sample_rate in rates:
        return sample_rate
    return next((rate for rate in rates if rate >= sample_rate), rates[-1])


def _chapter_entries(chapters: Sequence[ChapterMark], length: int, sample_rate: int) -> list[dict]:
    """The chapters as PyAV's Container.set_chapters takes them (times in samples)."""
    return [
        {"id": number, "start": chapter.start, "end": end, "time_base": Fraction(1, sample_rate),
         "metadata": {"title": chapter.title}}
        for number, (chapter, end) in enumerate(zip(chapters, _ends(chapters, length), strict=True), start=1)
    ]


def _ends(chapters: Sequence[ChapterMark], length: int) -> list[int]:
    """Where each chapter ends: at the next one's start, the last at the end of the audio."""
    return [c.start for c in chapters[1:]] + [length] if chapters else []


def _mark_as_book(tmp: Path) -> None:
    """Give the file the major brand iTunes gives audiobooks ("M4B " where FFmpeg's ipod muxer writes
    "M4A "); the box keeps its size, so only those four bytes change."""
    with open(tmp, "r+b") as file:
        head = file.read(12)
        if head[4:8] == b"ftyp" and head[8:12] == b"M4A ":
            file.seek(8)
            file.write(b"M4B ")


def _tag_m4b(tmp: Path, tags: BookTags, cover_type: str | None) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    book = MP4(tmp)
    if book.tags is None:
        book.add_tags()
    if tags.title is not None:
        book.tags["\xa9nam"] = [tags.title]
        book.tags["\xa9alb"] = [tags.title]
    if tags.author is not None:
        book.tags["\xa9ART"] = [tags.author]
        book.tags["aART"] = [tags.author]
    book.tags["\xa9gen"] = ["Audiobook"]
    book.tags["stik"] = [_STIK_AUDIOBOOK]
    if tags.cover is not None:
        image_format = MP4Cover.FORMAT_PNG if cover_type == PNG else MP4Cover.FORMAT_JPEG
        book.tags["covr"] = [MP4Cover(tags.cover, imageformat=image_format)]
    book.save()


def _tag_mp3(tmp: Path, tags: BookTags, cover_type: str | None, chapters: Sequence[ChapterMark], length: int,
             sample_rate: int) -> None:
    from mutagen.id3 import APIC, CHAP, CTOC, ID3, TALB, TCON, TIT2, TPE1, TPE2, CTOCFlags, Encoding, ID3NoHeaderError

    try:
        tag = ID3(tmp)
    except ID3NoHeaderError:
        tag = ID3()
    utf8 = Encoding.UTF8
    if tags.title is not None:
        tag.add(TIT2(encoding=utf8, text=[tags.title]))
        tag.add(TALB(encoding=utf8, text=[tags.title]))
    if tags.author is not None:
        tag.add(TPE1(encoding=utf8, text=[tags.author]))
        tag.add(TPE2(encoding=utf8, text=[tags.author]))
    tag.add(TCON(encoding=utf8, text=["Audiobook"]))
    if tags.cover is not None:
        # type 3: front cover.
        tag.add(APIC(encoding=utf8, mime=cover_type, type=3, desc="Cover", data=tags.cover))
    ids = [f"ch{number}" for number in range(len(chapters))]
    for element_id, chapter, end in zip(ids, chapters, _ends(chapters, length), strict=True):
        tag.add(CHAP(element_id=element_id, start_time=_ms(chapter.start, sample_rate),
                     end_time=_ms(end, sample_rate), sub_frames=[TIT2(encoding=utf8, text=[chapter.title])]))
    if ids:
        tag.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                     sub_frames=[]))
    tag.save(tmp, v2_version=4)


def _ms(sample: int, sample_rate: int) -> int:
    return round(sample * 1000 / sample_rate)


def _read_mp3_chapters(path: Path) -> list[tuple[str, float]]:
    from mutagen.id3 import ID3, CTOCFlags, ID3NoHeaderError

    try:
        tag = ID3(path)
    except ID3NoHeaderError:
        return []
    frames = {frame.element_id: frame for frame in tag.getall("CHAP")}
    tops = [toc for toc in tag.getall("CTOC") if toc.flags & CTOCFlags.TOP_LEVEL]
    if tops and tops[0].flags & CTOCFlags.ORDERED:
        ordered = [frames[i] for i in tops[0].child_element_ids if i in frames]
    else:
        ordered = sorted(frames.values(), key=lambda frame: frame.start_time)
    return [(_chapter_title(frame), frame.start_time / 1000) for frame in ordered]


def _chapter_title(frame) -> str:
    title = frame.sub_frames.get("TIT2")
    return str(title.text[0]) if title is not None and title.text else frame.element_id
