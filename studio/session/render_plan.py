"""From a project to a render plan: its segments, each voice and the checkpoint it renders with, and
the problems found before any work (see preflight). The command line and the window plan the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.limits import PROJECT_LIMIT, SCRIPT_LIMIT, TooLargeError, loads_json, read_limited
from studio.core.plan import PlannedSegment, first_unknown_voice, plan_segments
from studio.core.project import Project, ProjectError, parse_project_bytes
from studio.core.pronunciation import Lexicon
from studio.core.tags import ScriptError, decode_script_bytes, parse_script
from studio.core.voice import VoiceSpec
from studio.core.voice_library import VoiceLibrary, pinned_seeds, resolve_cast
from studio.session.checkpoints import Checkpoint, choose_checkpoint
from studio.session.preflight import Problem, check_plan


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


def plan_project(project: Project, *, source: str, library: VoiceLibrary | None = None,
                 check_cast: bool = True) -> list[PlannedSegment]:
    """Plan a project's segments. A `[voice: Name]` that is not in the cast (when the project has one)
    is an error on its line, like a grammar error, unless `check_cast` is off (the pre-flight check then
    reports it with the other problems)."""
    try:
        items = parse_script(project.script)
    except ScriptError as exc:
        raise InputError(f"{source}: {exc}") from None
    unknown = first_unknown_voice(items, project.cast) if check_cast else None
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
        lexicon=Lexicon(project.pronunciations),
    )


@dataclass
class CastPlan:
    """Each cast name's voice and checkpoint (None: the project's default voice)."""

    voices: dict[str | None, VoiceSpec] = field(default_factory=dict)
    models: dict[str | None, str | None] = field(default_factory=dict)
    voice_errors: dict[str | None, str] = field(default_factory=dict)  # members whose profile is gone


def resolve_cast_plan(
    project: Project,
    library: VoiceLibrary | None,
    *,
    installed: Sequence[Checkpoint],
    default_voice: VoiceSpec | None = None,
    overrides: dict[str, VoiceSpec] | None = None,
    preferred_model: str | None = None,
) -> CastPlan:
    """Resolve every cast member on its own, so one missing profile does not hide the others.

    `default_voice` (the command line's --voice and friends) serves lines without a cast name;
    `overrides` (--cast NAME=VOICE) replace members; `preferred_model` (--model) is tried first for
    every voice of its type, before the project's model.
    """
    plan = CastPlan()
    # Members replaced on the command line are not looked up at all.
    kept = {name: entry for name, entry in project.cast.items() if name not in (overrides or {})}
    plan.voices.update(resolve_cast(kept, None, library, errors=plan.voice_errors))
    plan.voices.update(overrides or {})
    default = default_voice
    if default is None and project.render.voice is not None:
        default = plan.voices.get(project.render.voice)
        if project.render.voice in plan.voice_errors:
            plan.voice_errors[None] = plan.voice_errors[project.render.voice]
    if default is not None:
        plan.voices[None] = default
        if project.render.voice is not None and default_voice is not None:
            plan.voices[project.render.voice] = default
    preferred = preferred_model or project.render.model
    for name, voice in plan.voices.items():
        plan.models[name] = choose_checkpoint(voice, preferred=preferred, installed=installed)
    return plan


@dataclass
class RenderPlan:
    segments: list[PlannedSegment]
    cast: CastPlan
    problems: list[Problem]

    @property
    def sound(self) -> bool:
        return not self.problems


def plan_render(
    project: Project,
    *,
    source: str,
    library: VoiceLibrary | None,
    installed: Sequence[Checkpoint],
    default_voice: VoiceSpec | None = None,
    overrides: dict[str, VoiceSpec] | None = None,
    preferred_model: str | None = None,
) -> RenderPlan:
    """Plan a project's render and check it (raises InputError for a script that does not parse)."""
    if overrides:
        unknown = sorted(set(overrides) - set(project.cast)) if project.cast else []
        if unknown:
            raise InputError(f"{source}: --cast {unknown[0]}: no cast member of that name "
                             f"(the cast is: {', '.join(project.cast)})")
    segments = plan_project(project, source=source, library=library, check_cast=False)
    cast = resolve_cast_plan(project, library, installed=installed, default_voice=default_voice,
                             overrides=overrides, preferred_model=preferred_model)
    problems = check_plan(segments, voices=cast.voices, models=cast.models, voice_errors=cast.voice_errors,
                          cast_names=set(project.cast) | set(overrides or {}))
    return RenderPlan(segments, cast, problems)
