"""Check a whole render plan before any work: voices, models, speakers, languages, reference clips.

Rendering a long script only to learn at the end that one cast member has no usable model wastes the
user's time, so every problem is found up front, from files alone (config.json, the clips; no model is
loaded), and comes back as a list: the line, the cast name, what is wrong and where to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from studio.core.plan import PlannedSegment
from studio.core.reference_clip import check_voice_clips
from studio.core.voice import VoiceError, VoiceSpec
from studio.session.checkpoints import MODEL_TYPE_LABELS, Checkpoint, describe_source

# Where the user fixes a problem: the window opens that dialog, the command line names the option.
FIX_VOICES = "voices"
FIX_MODELS = "models"
FIX_SCRIPT = "script"
FIX_SETTINGS = "settings"  # the project's default voice and model (Render Settings)


@dataclass(frozen=True)
class Problem:
    line: int | None  # the first script line it concerns (None: the whole project)
    cast_name: str | None  # None: the project's default voice
    what: str
    fix: str  # how to fix it, in words
    where: str = FIX_VOICES  # FIX_VOICES | FIX_MODELS | FIX_SCRIPT | FIX_SETTINGS
    lines: tuple[int, ...] = ()  # every line it concerns (a render of "what can be rendered" skips them)

    @property
    def where_text(self) -> str:
        """ "line 2", "lines 2, 4", or "lines 2, 4, 7 and 9 more": every line it stops."""
        lines = self.lines or ((self.line,) if self.line is not None else ())
        if not lines:
            return ""
        if len(lines) == 1:
            return f"line {lines[0]}"
        shown = ", ".join(str(n) for n in lines[:3])
        return f"lines {shown}" + (f" and {len(lines) - 3} more" if len(lines) > 3 else "")

    def one_line(self, source: str) -> str:
        at = f"{self.where_text}: " if self.where_text else ""
        return f"{source}: {at}{self.what}; {self.fix}"


def _who(name: str | None) -> str:
    return "the default voice" if name is None else f"voice {name!r}"


def check_plan(
    segments: Sequence[PlannedSegment],
    *,
    voices: Mapping[str | None, VoiceSpec | None],
    models: Mapping[str | None, str | None],
    voice_errors: Mapping[str | None, str] | None = None,
    cast_names: set[str] | None = None,
    describe=describe_source,
) -> list[Problem]:
    """Every problem in the plan, in script order, one per (cast name, kind of problem).

    `voices` and `models` map cast names (None: the default voice) to the resolved voice and checkpoint;
    `voice_errors` says why a member's voice could not be resolved (a profile that is gone);
    `cast_names` are the names the project's cast has (a [voice: X] tag naming another is a problem).
    """
    voice_errors = voice_errors or {}
    by_voice: dict[str | None, list[PlannedSegment]] = {}
    for segment in segments:
        if segment.kind == "speech":
            by_voice.setdefault(segment.voice, []).append(segment)
    problems: list[Problem] = []
    described: dict[str, Checkpoint | None] = {}
    for name, group in by_voice.items():
        lines = tuple(sorted({s.line for s in group}))
        first = lines[0]
        voice = voices.get(name)
        if voice is None:
            if name in voice_errors:
                what = voice_errors[name]
            elif name is None:
                what = "no voice is set for lines without a [voice: ...] tag"
            elif cast_names is not None and name not in cast_names:
                what = f"{_who(name)} is not in the project's cast"
            else:
                what = f"{_who(name)} has no voice in the project's cast"
            if name is None and None not in voice_errors:
                problems.append(Problem(first, name, what, "choose the default voice in Voices", FIX_VOICES, lines))
            else:
                fix = ("add it to the cast in Voices, or fix the [voice: ...] tag"
                       if cast_names is not None and name not in cast_names else "choose a voice for it in Voices")
                problems.append(Problem(first, name, what, fix, FIX_VOICES, lines))
            continue
        wanted = MODEL_TYPE_LABELS[voice.model_type]
        source = models.get(name)
        if source is None:
            problems.append(Problem(
                first, name, f"{_who(name)} ({voice.describe()}) needs a {wanted} model, and none is installed",
                f"download or register a {wanted} model in Models", FIX_MODELS, lines))
            continue
        if source not in described:
            described[source] = describe(source)
        checkpoint = described[source]
        if checkpoint is None:
            problems.append(Problem(
                first, name, f"{_who(name)} renders with {source}, which is not on this machine",
                "download it or register its folder in Models, or choose another model for the voice",
                FIX_MODELS, lines))
            continue
        if checkpoint.model_type != voice.model_type:
            found = MODEL_TYPE_LABELS.get(checkpoint.model_type or "", checkpoint.model_type or "unknown")
            problems.append(Problem(
                first, name, f"{_who(name)} needs a {wanted} model, but {source} is a {found} model",
                f"choose a {wanted} model for it in Voices", FIX_VOICES, lines))
            continue
        if voice.kind == "preset" and voice.speaker.lower() not in checkpoint.speakers:
            problems.append(Problem(
                first, name, f"speaker {voice.speaker!r} is not in {source} (it has: {', '.join(checkpoint.speakers)})",
                "choose one of its speakers, or a model that has this one, in Voices", FIX_VOICES, lines))
        for language, on_lines in _languages(group).items():
            if language != "auto" and checkpoint.languages and language not in checkpoint.languages:
                problems.append(Problem(
                    on_lines[0], name, f"language {language!r} is not supported by {source} "
                    f"(supported: {', '.join(checkpoint.languages)})",
                    "change the [language: ...] tag or the project language", FIX_SCRIPT, tuple(on_lines)))
        for emotion in sorted({s.emotion for s in group if s.emotion is not None} | {None}, key=str):
            try:
                check_voice_clips(voice, emotion)
            except VoiceError as exc:
                problems.append(Problem(first, name, str(exc), "put the clip back, or make the voice again from a "
                                        "readable clip in Voices and cast it", FIX_VOICES, lines))
                break
    problems.sort(key=lambda p: (p.line if p.line is not None else 0))
    return problems


def _languages(group: Sequence[PlannedSegment]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for segment in group:
        out.setdefault(segment.language.lower(), []).append(segment.line)
    return out


def renderable(segments: Sequence[PlannedSegment], problems: Sequence[Problem]) -> list[PlannedSegment]:
    """The segments no problem concerns ("render the lines that can be rendered")."""
    blocked = {line for p in problems for line in p.lines}
    return [s for s in segments if s.line not in blocked]
