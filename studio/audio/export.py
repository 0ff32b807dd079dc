"""Writing a finished render: timestamped audio, SRT and WebVTT subtitles, and a JSON manifest.

Exports never overwrite anything. Each file is written to a temporary name and then published with
a hard link, which fails instead of replacing an existing file; a name that is taken gets a numeric
suffix. So two renders in the same second, or a user's own file with the same name, are both safe.
An export is all or nothing: a failure part-way (a full disk) removes what it had published and its
temp files, and temp files that a killed export left behind are removed by the next export there.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile

from studio.audio.export_files import (  # noqa: F401 - ExportError and the clean-up are part of this API
    _NO_HARD_LINKS,
    ExportError,
    _failure_reason,
    _publish,
    _remove,
    _temp_prefix,
    _write_tmp,
    clean_stale_export_temps,
)
from studio.audio.export_formats import (  # noqa: F401 - BOOK_FORMATS and FORMAT_NAMES are part of this API
    AUDIO_FORMATS,
    BOOK_FORMATS,
    FORMAT_NAMES,
    audio_writer,
    check_format,
    prepare_program,
    stem_format,
)
from studio.core.atomic import current_umask
from studio.core.timing import to_srt, to_vtt


@dataclass(frozen=True)
class ExportSegment:
    index: int
    kind: str
    line: int
    text: str
    emotion: str | None
    voice: str | None
    samples: np.ndarray
    cached: bool
    seed: int
    state: str = "done"
    emotion_applied: bool = True
    warning: str | None = None
    directives_applied: bool = True
    # A segment's [pace: ...]: {"value": "slow", "rate": 0.85, "method": "instruct" | "time-stretch"}.
    pace: dict | None = None
    error: str | None = None
    model: str | None = None  # the checkpoint that rendered it (None for pauses)
    spoken: str | None = None  # what the model read, when the pronunciation dictionary changed the text


@dataclass
class ExportResult:
    audio: Path
    srt: Path
    vtt: Path
    manifest: Path
    stems: list[Path] = field(default_factory=list)
    document: dict = field(default_factory=dict)


_MAX_NUMBER = 10_000


def _free_stem(folder: Path, base: str, names: Sequence[str], first: int = 1) -> tuple[str, int]:
    """The first of `base`, `base_2`, ... (from number `first`) for which every `stem + name` is free,
    and its number.

    os.path.lexists, not Path.exists: a dangling or looping symlink occupies its name (os.link refuses
    it), and treating it as free made the claim loop spin forever.
    """
    for number in range(first, _MAX_NUMBER + 1):
        stem = base if number == 1 else f"{base}_{number}"
        if not any(os.path.lexists(folder / f"{stem}{name}") for name in names):
            return stem, number
    raise ExportError(f"{folder}: {_MAX_NUMBER} exports named {base}_* already; choose another folder")


def _loudness_gain(audio: np.ndarray, sample_rate: int, target_lufs: float) -> tuple[float, dict]:
    """The gain that brings `audio` to `target_lufs` (ITU-R BS.1770 via pyloudnorm), limited so no
    sample clips; returns (gain, a record of what was measured and reached)."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    # The meter needs at least one 400 ms gating block.
    if len(audio) < int(0.4 * sample_rate):
        return 1.0, {"target_lufs": target_lufs, "applied": False, "reason": "shorter than 0.4 s"}
    measured = float(meter.integrated_loudness(audio.astype(np.float64)))
    if not np.isfinite(measured):
        return 1.0, {"target_lufs": target_lufs, "applied": False, "reason": "silent"}
    gain = 10 ** ((target_lufs - measured) / 20)
    peak = float(np.abs(audio).max())
    limited = peak * gain > 0.999
    if limited:
        gain = 0.999 / peak
    return gain, {
        "target_lufs": target_lufs,
        "measured_lufs": round(measured, 2),
        "reached_lufs": round(measured + 20 * np.log10(gain), 2),
        "peak_limited": limited,
        "applied": True,
    }


def export_render(
    segments: Sequence[ExportSegment],
    *,
    sample_rate: int,
    folder: Path,
    name: str,
    when: datetime | None = None,
    audio_format: str = "wav",
    stems: bool = False,
    loudness_lufs: float | None = None,
    extra: dict | None = None,
    chapters: Sequence = (),
    book=None,
    acx: bool = False,
) -> ExportResult:
    """Write `<name>_<YYYYmmdd_HHMMSS>.<wav|flac|m4b|mp3>`, `.srt`, `.vtt` and `.json` into `folder`.

    With `loudness_lufs`, the whole program (and its stems, by the same gain) is normalised to that
    integrated loudness, never above a peak of -0.01 dBFS. `chapters` (studio.core.chapters.Chapter)
    become chapter marks in an M4B or MP3 and are listed in the manifest; `book` (audiobook.BookTags)
    tags an M4B or MP3. With `acx`, the program is mastered to ACX's audiobook requirements (see
    studio/audio/export_formats.py); an audiobook's manifest says how it measures against them.
    """
    check_format(audio_format)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
    clean_stale_export_temps(folder)
    when = when or datetime.now()
    audio_suffix = f".{audio_format}"
    stems_suffix = "_stems"
    names = (audio_suffix, ".srt", ".vtt", ".json") + ((stems_suffix,) if stems else ())
    base = f"{name}_{when:%Y%m%d_%H%M%S}"

    audio = np.concatenate([s.samples for s in segments]) if segments else np.zeros(0, np.float32)
    gain, loudness = 1.0, None
    if loudness_lufs is not None:
        gain, loudness = _loudness_gain(audio, sample_rate, loudness_lufs)
        audio = audio * np.float32(gain)
    stem_suffix, fmt, subtype = stem_format(audio_format)
    speech = [s for s in segments if s.kind == "speech"] if stems else []
    _check_free_space(folder, len(audio) + sum(len(s.samples) for s in speech), subtype)
    program = prepare_program(segments, audio, sample_rate, chapters, audio_format=audio_format, acx=acx,
                              target=folder / f"{base}{audio_suffix}")
    write_audio, timed = audio_writer(audio_format, program, book), program.timed

    # Everything is written to temp names first and published only when all of it exists, so a failure
    # (a full disk, a folder that turns read-only) leaves no partial export: what this call published is
    # removed again, and its temp files too. Nothing that was there before is ever touched.
    temps: list[Path] = []
    published: list[Path] = []
    try:
        temps.append(_write_tmp(folder, write_audio))
        temps.append(_write_tmp(folder, lambda p: p.write_text(to_srt(timed, sample_rate), encoding="utf-8")))
        temps.append(_write_tmp(folder, lambda p: p.write_text(to_vtt(timed, sample_rate), encoding="utf-8")))
        audio_tmp, srt_tmp, vtt_tmp = temps
        stem_names = [f"{s.index + 1:04d}_line{s.line}{stem_suffix}" for s in speech]
        stems_tmp: Path | None = None
        if stems:
            stems_tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(), suffix=".tmp", dir=folder))
            temps.append(stems_tmp)
            os.chmod(stems_tmp, 0o777 & ~current_umask())
            for s, file_name in zip(speech, stem_names, strict=True):
                soundfile.write(stems_tmp / file_name, np.clip(s.samples * gain, -1, 1), sample_rate,
                                format=fmt, subtype=subtype)

        # Claim a stem whose names are all free, publishing the audio first; if another writer took a
        # name between the check and the link, move on to the next number.
        # Each try moves on to a higher number, so the claim ends even when a name looks free but
        # cannot be linked.
        number = 1
        while True:
            stem, number = _free_stem(folder, base, names, number)
            paths = {suffix: folder / f"{stem}{suffix}" for suffix in names}
            if _publish(audio_tmp, paths[audio_suffix]):
                published.append(paths[audio_suffix])
                break
            number += 1
        for tmp, suffix in ((srt_tmp, ".srt"), (vtt_tmp, ".vtt")):
            if not _publish(tmp, paths[suffix]):
                raise ExportError(f"{paths[suffix]}: appeared while exporting; nothing was overwritten")
            published.append(paths[suffix])
        stem_paths: list[Path] = []
        if stems_tmp is not None:
            stem_folder = paths[stems_suffix]
            if os.path.lexists(stem_folder):
                raise ExportError(f"{stem_folder}: appeared while exporting; nothing was overwritten")
            os.rename(stems_tmp, stem_folder)
            published.append(stem_folder)
            stem_paths = [stem_folder / file_name for file_name in stem_names]

        document = _manifest(segments, timed, sample_rate=sample_rate, program=program, paths=paths,
                             audio_suffix=audio_suffix, when=when, extra=extra, audio_format=audio_format,
                             loudness=loudness, stem_paths=stem_paths)
        manifest_tmp = _write_tmp(
            folder,
            lambda p: p.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"),
        )
        temps.append(manifest_tmp)
        if not _publish(manifest_tmp, paths[".json"]):
            raise ExportError(f"{paths['.json']}: appeared while exporting; nothing was overwritten")
        published.append(paths[".json"])
    except BaseException as exc:
        # Judged before the clean-up frees the space the export had taken.
        reason = _failure_reason(exc, folder) if isinstance(exc, (OSError, soundfile.SoundFileError)) else ""
        for path in reversed(published):
            _remove(path)
        for path in temps:
            _remove(path)
        if isinstance(exc, ExportError):
            raise
        if isinstance(exc, (OSError, soundfile.SoundFileError)):
            raise ExportError(
                f"{folder}: cannot write the export ({reason}); nothing was exported"
            ) from None
        raise
    return ExportResult(paths[audio_suffix], paths[".srt"], paths[".vtt"], paths[".json"], stem_paths, document)


_BYTES_PER_SAMPLE = {"PCM_16": 2, "PCM_24": 3}
# Subtitles, the manifest and the file headers, with room to spare.
_OVERHEAD_BYTES = 1024 * 1024


def _check_free_space(folder: Path, samples: int, subtype: str) -> None:
    """Refuse before writing anything when the folder's filesystem cannot hold the export.

    FLAC is counted at the PCM size: an upper bound, since it only ever compresses.
    """
    needed = samples * _BYTES_PER_SAMPLE[subtype] + _OVERHEAD_BYTES
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows: the write itself will tell
        return
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise ExportError(
            f"{folder}: not enough free space for the export (needs about {needed / 2**20:.1f} MB, "
            f"{free / 2**20:.1f} MB free); nothing was exported"
        )


def _manifest(segments, timed, *, sample_rate, program, paths, audio_suffix, when, extra, audio_format, loudness,
              stem_paths) -> dict:
    document = {
        "sample_rate": program.sample_rate,
        "duration": len(program.audio) / program.sample_rate,
        "audio": str(paths[audio_suffix]),
        "srt": str(paths[".srt"]),
        "vtt": str(paths[".vtt"]),
        "created": when.isoformat(timespec="seconds"),
        **(extra or {}),
        "segments": [
            {
                "index": s.index,
                "kind": s.kind,
                "line": s.line,
                "text": s.text,
                "emotion": s.emotion,
                "voice": s.voice,
                "model": s.model,
                "start": t.start(sample_rate),
                "end": t.end(sample_rate),
                "cached": s.cached,
                "seed": s.seed,
                "state": s.state,
                "emotion_applied": s.emotion_applied,
                "directives_applied": s.directives_applied,
                "warning": s.warning,
                "error": s.error,
            } | ({"spoken": s.spoken} if s.spoken is not None else {})
              | ({"pace": s.pace} if s.pace is not None else {})
            for s, t in zip(segments, timed, strict=True)
        ],
    }
    if audio_format == "wav":
        document["wav"] = document["audio"]
    if loudness is not None:
        document["loudness"] = loudness
    if stem_paths:
        document["stems"] = [str(p) for p in stem_paths]
    if program.marks:
        document["chapters"] = [{"title": m.title, "start": m.start / program.sample_rate} for m in program.marks]
    if program.acx is not None:
        document["acx"] = program.acx.to_json() | {"mastered": program.mastered}
    return document


# --- File -> Export Audio: one chosen path ------------------------------------------------------------

SUBTITLE_SUFFIXES = (".srt", ".vtt")
STEMS_FOLDER_SUFFIX = "_stems"


@dataclass
class PathExport:
    """What an export to a chosen path wrote."""

    audio: Path
    subtitles: list[Path] = field(default_factory=list)
    stems_folder: Path | None = None
    stems: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)  # targets that existed and were replaced
    acx: object | None = None  # acx.AcxReport, for an audiobook or an ACX-mastered export

    @property
    def paths(self) -> list[Path]:
        return [self.audio, *self.subtitles, *([self.stems_folder] if self.stems_folder else [])]


def export_targets(audio_path: Path, *, subtitles: bool, stems: bool) -> list[Path]:
    """Every path an export to `audio_path` writes: the audio, then `.srt` and `.vtt` beside it, then the
    `<name>_stems` folder. The window asks about the ones that exist before anything is written."""
    audio_path = Path(audio_path)
    targets = [audio_path]
    if subtitles:
        targets += [audio_path.with_suffix(suffix) for suffix in SUBTITLE_SUFFIXES]
    if stems:
        targets.append(audio_path.with_name(audio_path.stem + STEMS_FOLDER_SUFFIX))
    return targets


def existing_targets(targets: Sequence[Path]) -> list[Path]:
    return [t for t in targets if os.path.lexists(t)]


def export_to_path(
    segments: Sequence[ExportSegment],
    *,
    sample_rate: int,
    audio_path: Path,
    audio_format: str = "wav",
    subtitles: bool = True,
    stems: bool = False,
    loudness_lufs: float | None = None,
    replace: Sequence[Path] = (),
    chapters: Sequence = (),
    book=None,
    acx: bool = False,
) -> PathExport:
    """Write the program to `audio_path` (and its subtitles and stems beside it, see export_targets).

    Only the targets in `replace` (the ones the user agreed to replace) may exist; any other existing
    target raises ExportError before anything is written. Everything is written to temp files first and
    swapped in at the end; a failure part-way puts every replaced file back and removes what was new,
    so the folder is as it was.
    """
    check_format(audio_format)
    audio_path = Path(audio_path)
    if audio_path.suffix.lower() != f".{audio_format}":
        raise ExportError(f"{audio_path}: a {audio_format.upper()} export must end in .{audio_format}")
    folder = audio_path.parent
    targets = export_targets(audio_path, subtitles=subtitles, stems=stems)
    allowed = {Path(p) for p in replace}
    for number, target in enumerate(targets):
        if stems and number == len(targets) - 1:
            if os.path.lexists(target) and (target.is_symlink() or not target.is_dir()):
                raise ExportError(f"{target}: is a file, not a folder for the stems; choose another name")
        elif target.is_dir():
            raise ExportError(f"{target}: is a folder; choose another name")
        if os.path.lexists(target) and target not in allowed:
            raise ExportError(f"{target}: already exists; nothing was overwritten")
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such folder")
    clean_stale_export_temps(folder)

    audio = np.concatenate([s.samples for s in segments]) if segments else np.zeros(0, np.float32)
    gain = 1.0
    if loudness_lufs is not None:
        gain, _ = _loudness_gain(audio, sample_rate, loudness_lufs)
        audio = audio * np.float32(gain)
    stem_suffix, fmt, subtype = stem_format(audio_format)
    speech = [s for s in segments if s.kind == "speech"] if stems else []
    _check_free_space(folder, len(audio) + sum(len(s.samples) for s in speech), subtype)
    stem_names = [f"{s.index + 1:04d}_line{s.line}{stem_suffix}" for s in speech]
    program = prepare_program(segments, audio, sample_rate, chapters, audio_format=audio_format, acx=acx,
                              target=audio_path)
    write_audio, timed = audio_writer(audio_format, program, book), program.timed

    temps: list[tuple[Path, Path]] = []  # (temp, final)
    swapped: list[tuple[Path, Path | None]] = []  # (final, where the replaced original waits, or None)
    try:
        temps.append((_write_tmp(folder, write_audio), targets[0]))
        if subtitles:
            temps.append((_write_tmp(folder, lambda p: p.write_text(to_srt(timed, sample_rate), encoding="utf-8")),
                          targets[1]))
            temps.append((_write_tmp(folder, lambda p: p.write_text(to_vtt(timed, sample_rate), encoding="utf-8")),
                          targets[2]))
        if stems:
            stems_tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(), suffix=".tmp", dir=folder))
            temps.append((stems_tmp, targets[-1]))
            os.chmod(stems_tmp, 0o777 & ~current_umask())
            for s, file_name in zip(speech, stem_names, strict=True):
                soundfile.write(stems_tmp / file_name, np.clip(s.samples * gain, -1, 1), sample_rate,
                                format=fmt, subtype=subtype)
        for tmp, final in temps:
            swapped.append((final, _swap_in(tmp, final, allowed)))
    except BaseException as exc:
        reason = _failure_reason(exc, folder) if isinstance(exc, (OSError, soundfile.SoundFileError)) else ""
        # Undo in reverse: remove what was published, put each replaced original back.
        for final, original in reversed(swapped):
            _remove(final)
            if original is not None:
                os.rename(original, final)
        for tmp, _final in temps:
            _remove(tmp)
        if isinstance(exc, ExportError):
            raise
        if isinstance(exc, (OSError, soundfile.SoundFileError)):
            raise ExportError(f"{audio_path}: cannot write the export ({reason}); nothing was changed") from None
        raise
    replaced = []
    for final, original in swapped:
        if original is not None:
            _remove(original)
            replaced.append(final)
    stems_folder = targets[-1] if stems else None
    return PathExport(
        audio=targets[0],
        subtitles=list(targets[1:3]) if subtitles else [],
        stems_folder=stems_folder,
        stems=[stems_folder / name for name in stem_names] if stems_folder else [],
        replaced=replaced,
        acx=program.acx,
    )


def _swap_in(tmp: Path, final: Path, allowed: set[Path]) -> Path | None:
    """Publish `tmp` as `final`. An existing `final` (only if allowed) is first moved aside, and where it
    waits is returned, so a later failure can put it back; None when nothing was there."""
    original = None
    if os.path.lexists(final):
        if final not in allowed:
            raise ExportError(f"{final}: appeared while exporting; nothing was overwritten")
        # Not named like an export temp file: clean_stale_export_temps must never delete a user's file.
        original = final.with_name(f".{final.name}.replaced-{os.getpid()}")
        os.rename(final, original)
    try:
        if tmp.is_dir():
            os.rename(tmp, final)
        elif not _publish(tmp, final):
            raise ExportError(f"{final}: appeared while exporting; nothing was overwritten")
    except BaseException:
        if original is not None:
            os.rename(original, final)
        raise
    return original
