"""A finished render to files: timestamped audio, subtitles and a manifest that names every model (after
Render All), or the mix to a path the user chose (File -> Export Audio)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from studio.audio.audiobook import BookTags
from studio.audio.export import ExportResult, ExportSegment, PathExport, export_render, export_to_path
from studio.core.book_model import image_type
from studio.core.chapters import Chapter
from studio.core.limits import TooLargeError, read_limited
from studio.core.pace import PACE_KEY, segment_pace
from studio.core.project import BookInfo
from studio.engine.loader import ModelInfo
from studio.engine.render import DONE, SegmentResult


def _model_json(info: ModelInfo) -> dict:
    return {"source": info.source, "type": info.model_type, "size": info.size, "device": info.device,
            "dtype": info.dtype}


def export_results(
    results: Sequence[SegmentResult],
    *,
    sample_rate: int,
    folder: Path,
    name: str,
    models: Mapping[str, ModelInfo],
    audio_format: str = "wav",
    stems: bool = False,
    loudness_lufs: float | None = None,
    when: datetime | None = None,
    chapters: Sequence[Chapter] = (),
    book: BookTags | None = None,
    acx: bool = False,
) -> ExportResult:
    """Export a complete render (every segment done). The manifest lists every model that rendered a
    segment ("models") and names each segment's own ("model"); "model" at the top is kept for renders
    with one model, where it is unambiguous."""
    segments = _export_segments(results)
    used = [source for source in dict.fromkeys(r.model for r in results if r.model) if source in models]
    extra: dict = {"models": [_model_json(models[source]) for source in used]}
    if len(used) == 1:
        extra["model"] = _model_json(models[used[0]])
    return export_render(
        segments,
        sample_rate=sample_rate,
        folder=folder,
        name=name,
        when=when,
        audio_format=audio_format,
        stems=stems,
        loudness_lufs=loudness_lufs,
        extra=extra,
        chapters=chapters,
        book=book,
        acx=acx,
    )


def export_mix(
    results: Sequence[SegmentResult],
    *,
    sample_rate: int,
    path: Path,
    audio_format: str = "wav",
    subtitles: bool = True,
    stems: bool = False,
    loudness_lufs: float | None = None,
    replace: Sequence[Path] = (),
    chapters: Sequence[Chapter] = (),
    book: BookTags | None = None,
    acx: bool = False,
) -> PathExport:
    """File -> Export Audio: the mix (every segment rendered) to the path the user chose; see
    studio.audio.export.export_to_path for what may be replaced."""
    return export_to_path(_export_segments(results), sample_rate=sample_rate, audio_path=path,
                          audio_format=audio_format, subtitles=subtitles, stems=stems,
                          loudness_lufs=loudness_lufs, replace=replace, chapters=chapters, book=book,
                          acx=acx)


COVER_LIMIT = 20 * 2**20  # a cover is a picture, not a whole file system


def book_tags(book: BookInfo, *, project_folder: Path | None, fallback_title: str) -> tuple[BookTags, str | None]:
    """What an audiobook export is tagged with: the project's book details (its title, else
    `fallback_title`), with the cover image read from its file. Returns the tags and, when the cover
    cannot be used, why (the export goes on without it)."""
    cover, cover_type, problem = None, None, None
    if book.cover:
        path = Path(book.cover)
        if not path.is_absolute() and project_folder is not None:
            path = project_folder / path
        try:
            cover = read_limited(path, COVER_LIMIT, what="cover image")
        except (OSError, TooLargeError) as exc:
            problem = f"{path}: the cover cannot be read ({getattr(exc, 'strerror', None) or exc}); exported without it"
        else:
            cover_type = image_type(cover)
            if cover_type is None:
                cover, problem = None, f"{path}: the cover is neither JPEG nor PNG; exported without it"
    return BookTags(title=book.title or fallback_title, author=book.author, cover=cover,
                    cover_type=cover_type), problem


def _export_segments(results: Sequence[SegmentResult]) -> list[ExportSegment]:
    unfinished = [r for r in results if r.state != DONE or r.samples is None]
    if unfinished:
        raise ValueError(f"{len(unfinished)} segments are not rendered; a partial render is not exported")
    return [
        ExportSegment(
            index=r.segment.index,
            kind=r.segment.kind,
            line=r.segment.line,
            text=r.segment.text,
            emotion=r.segment.emotion,
            voice=r.segment.voice,
            samples=r.samples,
            cached=r.cached,
            seed=r.segment.seed,
            state=r.state,
            emotion_applied=r.emotion_applied,
            directives_applied=r.directives_applied,
            warning=r.warning,
            model=r.model or None,
            spoken=r.segment.spoken,
            pace=_pace_report(r),
        )
        for r in results
    ]


def _pace_report(result: SegmentResult) -> dict | None:
    """The manifest's account of a segment's pace: what was asked, the rate, and how it was honoured."""
    rate = segment_pace(result.segment.directives)
    if rate is None or not result.pace:
        return None
    return {"value": result.segment.directives[PACE_KEY], "rate": rate, "method": result.pace}
