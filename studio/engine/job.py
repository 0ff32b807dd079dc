"""What a full render needs around `render_segments`: reading the input, planning, and exporting.

Shared by `python -m studio render` and the GUI's render worker so both plan and export the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from studio.audio.export import ExportResult, ExportSegment, export_render
from studio.core.limits import PROJECT_LIMIT, SCRIPT_LIMIT, TooLargeError, loads_json, read_limited
from studio.core.plan import PlannedSegment, first_unknown_voice, plan_segments
from studio.core.project import Project, ProjectError, parse_project_bytes
from studio.core.tags import ScriptError, decode_script_bytes, parse_script
from studio.core.voices import VoiceLibrary, pinned_seeds
from studio.engine.loader import ModelInfo
from studio.engine.render import DONE, SegmentResult


class InputError(ValueError):
    """Bad render input; str() is one line naming the file and the line, column or field."""


def read_input(path: Path) -> Project:
    """A .qtts project, or a plain script file wrapped in a default project."""
    path = Path(path)
    try:
        data = read_limited(path, max(SCRIPT_LIMIT, PROJECT_LIMIT), what="script or project file")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a script or project file") from None
    except TooLargeError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    looks_like_project = path.suffix == ".qtts"
    if not looks_like_project and data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        try:
            doc = loads_json(data.decode("utf-8-sig"))
            looks_like_project = isinstance(doc, dict) and "schema_version" in doc
        except ValueError:
            looks_like_project = False
    if looks_like_project:
        try:
            return parse_project_bytes(data, source=str(path))
        except ProjectError as exc:
            raise InputError(str(exc)) from None
    try:
        return Project(script=decode_script_bytes(data))
    except ScriptError as exc:
        raise InputError(f"{path}: {exc}") from None


def plan_project(project: Project, *, source: str, library: VoiceLibrary | None = None) -> list[PlannedSegment]:
    """Plan a project's segments. A `[voice: Name]` that is not in the cast (when the project has one)
    is an error on its line, like a grammar error."""
    try:
        items = parse_script(project.script)
    except ScriptError as exc:
        raise InputError(f"{source}: {exc}") from None
    unknown = first_unknown_voice(items, project.cast)
    if unknown is not None:
        raise InputError(f"{source}: line {unknown.line}: voice {unknown.voice!r} is not in the project's cast")
    return plan_segments(
        items,
        language=project.render.language,
        seed=project.render.seed,
        default_voice=project.render.voice,
        takes={line: state.take for line, state in project.lines.items()},
        locked_lines={line for line, state in project.lines.items() if state.locked},
        voice_seeds=pinned_seeds(project.cast, library),
    )


def export_results(
    results: Sequence[SegmentResult],
    *,
    sample_rate: int,
    folder: Path,
    name: str,
    model: ModelInfo,
    audio_format: str = "wav",
    stems: bool = False,
    loudness_lufs: float | None = None,
    when: datetime | None = None,
) -> ExportResult:
    """Export a complete render (every segment done) as timestamped audio, subtitles and manifest."""
    unfinished = [r for r in results if r.state != DONE or r.samples is None]
    if unfinished:
        raise ValueError(f"{len(unfinished)} segments are not rendered; a partial render is not exported")
    segments = [
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
        )
        for r in results
    ]
    extra = {"model": {"source": model.source, "type": model.model_type, "size": model.size,
                       "device": model.device, "dtype": model.dtype}}
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
    )
