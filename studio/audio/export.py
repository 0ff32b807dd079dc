"""Writing a finished render: timestamped audio, SRT and WebVTT subtitles, and a JSON manifest.

Exports never overwrite anything. Each file is written to a temporary name and then published with
a hard link, which fails instead of replacing an existing file; a name that is taken gets a numeric
suffix. So two renders in the same second, or a user's own file with the same name, are both safe.
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

from studio.core.timing import lay_out, to_srt, to_vtt

AUDIO_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_24")}


class ExportError(RuntimeError):
    """An export that could not be written; str() is one line naming the path."""


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
    error: str | None = None


@dataclass
class ExportResult:
    audio: Path
    srt: Path
    vtt: Path
    manifest: Path
    stems: list[Path] = field(default_factory=list)
    document: dict = field(default_factory=dict)


def _publish(tmp: Path, final: Path) -> bool:
    """Move `tmp` to `final` unless `final` exists; return False when it does."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:
        # Filesystems without hard links (some network and FAT mounts): exclusive create, then copy.
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
            out.write(src.read())
    tmp.unlink(missing_ok=True)
    return True


def _free_stem(folder: Path, base: str, suffixes: Sequence[str]) -> str:
    number = 1
    while True:
        stem = base if number == 1 else f"{base}_{number}"
        if not any((folder / f"{stem}{suffix}").exists() for suffix in suffixes):
            return stem
        number += 1


def _write_tmp(folder: Path, writer) -> Path:
    fd, name = tempfile.mkstemp(prefix=".export-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        writer(Path(name))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


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
) -> ExportResult:
    """Write `<name>_<YYYYmmdd_HHMMSS>.<wav|flac>`, `.srt`, `.vtt` and `.json` into `folder`.

    With `loudness_lufs`, the whole program (and its stems, by the same gain) is normalised to that
    integrated loudness, never above a peak of -0.01 dBFS.
    """
    if audio_format not in AUDIO_FORMATS:
        raise ExportError(f"unknown audio format {audio_format!r} (expected wav or flac)")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
    when = when or datetime.now()
    audio_suffix = f".{audio_format}"
    suffixes = (audio_suffix, ".srt", ".vtt", ".json")
    base = f"{name}_{when:%Y%m%d_%H%M%S}"

    audio = np.concatenate([s.samples for s in segments]) if segments else np.zeros(0, np.float32)
    gain, loudness = 1.0, None
    if loudness_lufs is not None:
        gain, loudness = _loudness_gain(audio, sample_rate, loudness_lufs)
        audio = audio * np.float32(gain)
    timed = lay_out((s.kind, s.line, s.text, len(s.samples)) for s in segments)
    fmt, subtype = AUDIO_FORMATS[audio_format]
    try:
        audio_tmp = _write_tmp(
            folder, lambda p: soundfile.write(p, np.clip(audio, -1, 1), sample_rate, format=fmt, subtype=subtype)
        )
        srt_tmp = _write_tmp(folder, lambda p: p.write_text(to_srt(timed, sample_rate), encoding="utf-8"))
        vtt_tmp = _write_tmp(folder, lambda p: p.write_text(to_vtt(timed, sample_rate), encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"{folder}: cannot write the export ({exc.strerror or exc})") from None

    # Claim a stem whose four names are all free, publishing the audio first; if another writer took
    # a name between the check and the link, move on to the next number.
    while True:
        stem = _free_stem(folder, base, suffixes)
        paths = {suffix: folder / f"{stem}{suffix}" for suffix in suffixes}
        if _publish(audio_tmp, paths[audio_suffix]):
            break
    for tmp, suffix in ((srt_tmp, ".srt"), (vtt_tmp, ".vtt")):
        if not _publish(tmp, paths[suffix]):
            raise ExportError(f"{paths[suffix]}: appeared while exporting; nothing was overwritten")

    stem_paths: list[Path] = []
    if stems:
        stem_folder = folder / f"{stem}_stems"
        stem_folder.mkdir(exist_ok=False)
        for s in segments:
            if s.kind != "speech":
                continue
            path = stem_folder / f"{s.index + 1:04d}_line{s.line}{audio_suffix}"
            soundfile.write(path, np.clip(s.samples * gain, -1, 1), sample_rate, format=fmt, subtype=subtype)
            stem_paths.append(path)

    document = {
        "sample_rate": sample_rate,
        "duration": len(audio) / sample_rate,
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
                "start": t.start(sample_rate),
                "end": t.end(sample_rate),
                "cached": s.cached,
                "seed": s.seed,
                "state": s.state,
                "emotion_applied": s.emotion_applied,
                "warning": s.warning,
                "error": s.error,
            }
            for s, t in zip(segments, timed, strict=True)
        ],
    }
    if audio_format == "wav":
        document["wav"] = document["audio"]
    if loudness is not None:
        document["loudness"] = loudness
    if stem_paths:
        document["stems"] = [str(p) for p in stem_paths]
    manifest_tmp = _write_tmp(
        folder, lambda p: p.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    )
    if not _publish(manifest_tmp, paths[".json"]):
        raise ExportError(f"{paths['.json']}: appeared while exporting; nothing was overwritten")
    return ExportResult(paths[audio_suffix], paths[".srt"], paths[".vtt"], paths[".json"], stem_paths, document)
