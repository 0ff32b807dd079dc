"""The `.qtts` project file: JSON with an integer schema_version and ordered migrations.

Loading validates everything before building a Project, so a damaged or foreign file raises one
ProjectError naming the problem and the field, and never yields a half-loaded project. Saving is
atomic and keeps the previous version as `<name>.qtts.bak`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.core.atomic import atomic_write_bytes
from studio.core.limits import PROJECT_LIMIT, JsonLimitError, TooLargeError, loads_json, read_limited
from studio.core.pronunciation import Pronunciation, check_entry
from studio.core.tags import normalise_newlines
from studio.core.voice import VOICE_KINDS, VoiceError, VoiceSpec

SCHEMA_VERSION = 1
PROJECT_SUFFIX = ".qtts"
BACKUP_SUFFIX = ".bak"
FORMAT_NAME = "qwen-tts-studio-project"
# Bounds on integers a file may hold. Seeds feed torch's 64-bit generator; the codec vocabulary is a
# few thousand entries, so a larger top-k means nothing; 8192 frames (about 11 minutes) is the
# published models' own generation cap.
MAX_SEED = 2**63 - 1
MAX_TOP_K = 100_000
MAX_NEW_TOKENS = 8192
MAX_TAKE = 9999

# Ordered migrations: MIGRATIONS[v] turns a version-v document into a version-(v+1) document.
# Each takes and returns a plain dict, so it can be tested on its own; none exist yet because
# version 1 is the first released format.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class ProjectError(ValueError):
    """A project file that cannot be loaded, with the field at fault when there is one."""

    def __init__(self, reason: str, *, field: str | None = None, source: str | None = None) -> None:
        self.reason = reason
        self.field = field
        self.source = source
        where = f"field '{field}': " if field else ""
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{where}{reason}")


@dataclass
class GenerationParams:
    """Sampling parameters passed to qwen-tts (its own defaults, see QWEN3_TTS_FACTS.md)."""

    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.05
    # None: cap from the text length (runaway output is a known Qwen3-TTS failure).
    max_new_tokens: int | None = None


# m4b (AAC with chapter markers) and mp3 (ID3 chapter frames) are the audiobook formats.
EXPORT_FORMATS = ("wav", "flac", "m4b", "mp3")


@dataclass
class ExportSettings:
    """How a full render is saved."""

    audio_format: str = "wav"
    stems: bool = False  # also one file per speech segment
    loudness_lufs: float | None = None  # None: no loudness normalisation
    subtitles: bool = True  # File -> Export Audio also writes .srt and .vtt beside the audio
    # Render All also saves a timestamped copy (audio, subtitles, manifest) in the output folder.
    timestamped_copy: bool = True
    acx: bool = False  # master to ACX's audiobook requirements (44.1 kHz, levels, room tone)


@dataclass
class RenderSettings:
    model: str | None = None  # checkpoint folder or hub id
    language: str = "auto"
    seed: int = 0
    voice: str | None = None  # cast name used before the first [voice: ...] tag
    output_dir: str | None = None  # None: beside the project file
    generation: GenerationParams = field(default_factory=GenerationParams)
    export: ExportSettings = field(default_factory=lambda: ExportSettings())


@dataclass
class CastEntry:
    """A cast member's voice: a reference into the voice library, or the voice embedded in the project.

    Exactly one of the two is set. Embedding makes a project render on another machine unchanged.
    """

    profile: str | None = None  # a voice profile id in the voice library, or a path to a profile file
    voice: VoiceSpec | None = None


@dataclass
class LineState:
    locked: bool = False
    take: int = 0  # the chosen take
    takes: int = 1  # how many takes were made: each stays in the cache and in the takes menu

    def __post_init__(self) -> None:
        self.takes = max(self.takes, self.take + 1)

    def is_default(self) -> bool:
        return not self.locked and self.take == 0 and self.takes <= 1


@dataclass
class BookInfo:
    """What an audiobook export is tagged with (an imported book fills it in)."""

    title: str | None = None
    author: str | None = None
    cover: str | None = None  # an image file, relative to the project file's folder or absolute

    def is_empty(self) -> bool:
        return self.title is None and self.author is None and self.cover is None


@dataclass
class Project:
    script: str = ""
    cast: dict[str, CastEntry] = field(default_factory=dict)
    render: RenderSettings = field(default_factory=RenderSettings)
    lines: dict[int, LineState] = field(default_factory=dict)  # 1-based script line -> state
    book: BookInfo = field(default_factory=BookInfo)
    pronunciations: list[Pronunciation] = field(default_factory=list)  # the pronunciation dictionary


# --- reading ---------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class FieldReader:
    """Typed access to a JSON object that names the dotted field path in every error."""

    def __init__(self, obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            raise ProjectError(f"expected an object, got {_type_name(obj)}", field=path or None)
        self.obj = obj
        self.path = path
        self.seen: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self.seen.add(key)
        if key not in self.obj:
            if required:
                raise ProjectError("is missing", field=self._name(key))
            return default
        return self.obj[key]

    def list(self, key: str) -> list:
        value = self._get(key, [], False)
        if not isinstance(value, list):
            raise ProjectError(f"expected a list, got {_type_name(value)}", field=self._name(key))
        return value

    def string(self, key: str, default: Any = None, *, required: bool = False, nullable: bool = False) -> Any:
        value = self._get(key, default, required)
        if value is None and (nullable or key not in self.obj):
            return value
        if not isinstance(value, str):
            raise ProjectError(f"expected a string, got {_type_name(value)}", field=self._name(key))
        return value

    def integer(
        self, key: str, default: Any = None, *, nullable: bool = False, minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._get(key, default, False)
        if value is None and (nullable or key not in self.obj):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProjectError(f"expected an integer, got {_type_name(value)}", field=self._name(key))
        if minimum is not None and value < minimum:
            raise ProjectError(f"must be at least {minimum}, got {value}", field=self._name(key))
        if maximum is not None and value > maximum:
            raise ProjectError(f"must be at most {maximum}, got {value}", field=self._name(key))
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value = self._get(key, default, False)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProjectError(f"expected a number, got {_type_name(value)}", field=self._name(key))
        if not math.isfinite(value):
            raise ProjectError(f"expected a finite number, got {value}", field=self._name(key))
        if not low <= value <= high:
            raise ProjectError(f"must be between {low:g} and {high:g}, got {value:g}", field=self._name(key))
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise ProjectError(f"expected true or false, got {_type_name(value)}", field=self._name(key))
        return value

    def child(self, key: str) -> FieldReader:
        self.seen.add(key)
        return FieldReader(self.obj.get(key, {}), self._name(key))

    def finish(self) -> None:
        unknown = sorted(set(self.obj) - self.seen)
        if unknown:
            raise ProjectError("unknown field", field=self._name(unknown[0]))


def _read_export(reader: FieldReader) -> ExportSettings:
    audio_format = reader.string("format", "wav")
    if audio_format not in EXPORT_FORMATS:
        raise ProjectError(f"expected one of {', '.join(EXPORT_FORMATS)}, got {audio_format!r}",
                           field=f"{reader.path}.format")
    loudness = reader.obj.get("loudness_lufs")
    settings = ExportSettings(
        audio_format=audio_format,
        stems=reader.boolean("stems", False),
        loudness_lufs=None if loudness is None else reader.number("loudness_lufs", -16.0, low=-70.0, high=0.0),
        # Absent in files written before these settings existed: the defaults are what those did.
        subtitles=reader.boolean("subtitles", True),
        timestamped_copy=reader.boolean("timestamped_copy", True),
        acx=reader.boolean("acx_master", False),
    )
    reader.seen.add("loudness_lufs")
    reader.finish()
    return settings


def _read_generation(reader: FieldReader) -> GenerationParams:
    params = GenerationParams(
        temperature=reader.number("temperature", 0.9, low=0.0, high=5.0),
        top_k=reader.integer("top_k", 50, minimum=0, maximum=MAX_TOP_K),
        top_p=reader.number("top_p", 1.0, low=0.0, high=1.0),
        repetition_penalty=reader.number("repetition_penalty", 1.05, low=0.5, high=5.0),
        max_new_tokens=reader.integer("max_new_tokens", None, nullable=True, minimum=1, maximum=MAX_NEW_TOKENS),
    )
    reader.finish()
    return params


def read_voice_json(reader: FieldReader, path: str) -> VoiceSpec:
    kind = reader.string("kind", required=True)
    if kind not in VOICE_KINDS:
        raise ProjectError(f"expected one of {', '.join(VOICE_KINDS)}, got {kind!r}", field=f"{path}.kind")
    emotions = reader.list("emotions")
    refs = []
    for index, raw in enumerate(emotions):
        entry = FieldReader(raw, f"{path}.emotions[{index}]")
        refs.append((entry.string("emotion", required=True), entry.string("clip", required=True),
                     entry.string("text", required=True)))
        entry.finish()
    try:
        voice = VoiceSpec(
            kind=kind,
            description=reader.string("description", None, nullable=True),
            speaker=reader.string("speaker", None, nullable=True),
            ref_audio=reader.string("ref_audio", None, nullable=True),
            ref_text=reader.string("ref_text", None, nullable=True),
            x_vector_only=reader.boolean("x_vector_only", False),
            emotion_refs=tuple(refs),
            model=reader.string("model", None, nullable=True),
        )
    except VoiceError as exc:
        raise ProjectError(str(exc), field=path) from None
    reader.finish()
    return voice


def voice_to_json(voice: VoiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": voice.kind}
    for key in ("description", "speaker", "ref_audio", "ref_text"):
        if getattr(voice, key) is not None:
            out[key] = getattr(voice, key)
    if voice.x_vector_only:
        out["x_vector_only"] = True
    if voice.emotion_refs:
        out["emotions"] = [{"emotion": e, "clip": c, "text": t} for e, c, t in voice.emotion_refs]
    if voice.model:
        out["model"] = voice.model
    return out


def _cast_entry_to_json(entry: CastEntry) -> dict[str, Any]:
    if entry.voice is not None:
        return {"voice": voice_to_json(entry.voice)}
    return {"profile": entry.profile}


def project_from_json(doc: Any) -> Project:
    """Validate a decoded project document (any supported schema_version) and build a Project."""
    top = FieldReader(doc, "")
    version = top.integer("schema_version", None)
    if version is None:
        raise ProjectError("is missing: this is not a Qwen3-TTS Studio project", field="schema_version")
    if version < 1:
        raise ProjectError(f"unsupported version {version}", field="schema_version")
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"version {version} was written by a newer Qwen3-TTS Studio (this one reads up to {SCHEMA_VERSION})",
            field="schema_version",
        )
    doc = dict(doc)
    for from_version in range(version, SCHEMA_VERSION):
        doc = MIGRATIONS[from_version](doc)
        doc["schema_version"] = from_version + 1
    top = FieldReader(doc, "")
    top.integer("schema_version")
    fmt = top.string("format", FORMAT_NAME)
    if fmt != FORMAT_NAME:
        raise ProjectError(f"expected {FORMAT_NAME!r}, got {fmt!r}", field="format")
    script = normalise_newlines(top.string("script", ""))

    cast_reader = top.child("cast")
    cast: dict[str, CastEntry] = {}
    for name in list(cast_reader.obj):
        if not name.strip():
            raise ProjectError("a cast name must not be empty", field="cast")
        entry = cast_reader.child(name)
        profile = entry.string("profile", None, nullable=True)
        voice = read_voice_json(entry.child("voice"), f"cast.{name}.voice") if "voice" in entry.obj else None
        if profile is not None and not profile.strip():
            raise ProjectError("must not be empty", field=f"cast.{name}.profile")
        if (profile is None) == (voice is None):
            raise ProjectError("needs exactly one of 'profile' or 'voice'", field=f"cast.{name}")
        entry.finish()
        cast[name] = CastEntry(profile=profile, voice=voice)
    cast_reader.finish()

    render_reader = top.child("render")
    render = RenderSettings(
        model=render_reader.string("model", None, nullable=True),
        language=render_reader.string("language", "auto"),
        seed=render_reader.integer("seed", 0, minimum=0, maximum=MAX_SEED),
        voice=render_reader.string("voice", None, nullable=True),
        output_dir=render_reader.string("output_dir", None, nullable=True),
        export=_read_export(render_reader.child("export")),
        generation=_read_generation(render_reader.child("generation")),
    )
    render_reader.finish()
    if render.voice is not None and cast and render.voice not in cast:
        raise ProjectError(f"{render.voice!r} is not a name in the cast", field="render.voice")

    lines_value = top.list("lines")
    line_count = script.count("\n") + 1
    lines: dict[int, LineState] = {}
    for index, raw in enumerate(lines_value):
        entry = FieldReader(raw, f"lines[{index}]")
        line_no = entry.integer("line", None, minimum=1)
        if line_no is None:
            raise ProjectError("is missing", field=f"lines[{index}].line")
        if line_no > line_count:
            raise ProjectError(
                f"line {line_no} is past the end of the script ({line_count} lines)", field=f"lines[{index}].line"
            )
        if line_no in lines:
            raise ProjectError(f"line {line_no} appears twice", field=f"lines[{index}].line")
        lines[line_no] = LineState(
            locked=entry.boolean("locked", False), take=entry.integer("take", 0, minimum=0, maximum=MAX_TAKE),
            takes=entry.integer("takes", 1, minimum=1, maximum=MAX_TAKE + 1),
        )
        entry.finish()
    pronunciations = _read_pronunciations(top.list("pronunciations"))
    book_reader = top.child("book")  # absent in projects that are no books
    book = BookInfo(*(book_reader.string(key, None, nullable=True) for key in ("title", "author", "cover")))
    book_reader.finish()
    top.finish()
    return Project(script=script, cast=cast, render=render, lines=lines, book=book, pronunciations=pronunciations)


def _read_pronunciations(values: list) -> list[Pronunciation]:
    entries = []
    for index, raw in enumerate(values):
        reader = FieldReader(raw, f"pronunciations[{index}]")
        entry = Pronunciation(
            term=reader.string("term", None, required=True), say=reader.string("say", None, required=True),
            whole_word=reader.boolean("whole_word", True), match_case=reader.boolean("match_case", False),
            voice=reader.string("voice", None, nullable=True), language=reader.string("language", None, nullable=True),
        )
        reader.finish()
        problem = check_entry(entry)
        if problem is not None:
            raise ProjectError(problem, field=f"pronunciations[{index}]")
        entries.append(entry)
    return entries


def project_to_json(project: Project) -> dict[str, Any]:
    gen = project.render.generation
    # A state for a line past the end of the script describes nothing; writing it would make a file
    # that load_project rightly rejects, so the writer keeps only states that still have a line.
    line_count = project.script.count("\n") + 1
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "script": project.script,
        "cast": {name: _cast_entry_to_json(entry) for name, entry in project.cast.items()},
        "render": {
            "model": project.render.model,
            "language": project.render.language,
            "seed": project.render.seed,
            "voice": project.render.voice,
            "output_dir": project.render.output_dir,
            "export": {
                "format": project.render.export.audio_format,
                "stems": project.render.export.stems,
                "loudness_lufs": project.render.export.loudness_lufs,
                "subtitles": project.render.export.subtitles,
                "timestamped_copy": project.render.export.timestamped_copy,
            } | ({"acx_master": True} if project.render.export.acx else {}),
            "generation": {
                "temperature": gen.temperature,
                "top_k": gen.top_k,
                "top_p": gen.top_p,
                "repetition_penalty": gen.repetition_penalty,
                "max_new_tokens": gen.max_new_tokens,
            },
        },
        "lines": [
            # "takes" only when it says more than "take" does: files of projects with no extra takes keep
            # the shape they always had.
            {"line": line_no, "locked": state.locked, "take": state.take}
            | ({"takes": state.takes} if state.takes > state.take + 1 else {})
            for line_no, state in sorted(project.lines.items())
            if not state.is_default() and line_no <= line_count
        ],
    } | ({} if project.book.is_empty() else {"book": {"title": project.book.title, "author": project.book.author,
                                                     "cover": project.book.cover}}) | (
        {"pronunciations": [asdict(entry) for entry in project.pronunciations]} if project.pronunciations else {})


def parse_project_bytes(data: bytes, *, source: str) -> Project:
    """Decode and validate a project file's bytes; every failure is a ProjectError naming `source`."""
    if not data.strip():
        raise ProjectError("the file is empty", source=source)
    try:
        # A byte-order mark is how some editors mark UTF-8; scripts accept it, so projects do too.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectError(f"not UTF-8 text (bad byte at offset {exc.start})", source=source) from None
    try:
        doc = loads_json(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); the file may be truncated",
            source=source,
        ) from None
    except JsonLimitError as exc:
        raise ProjectError(f"not a project file: {exc}", source=source) from None
    try:
        return project_from_json(doc)
    except ProjectError as exc:
        raise ProjectError(exc.reason, field=exc.field, source=source) from None


def _read_project_bytes(path: Path) -> bytes:
    try:
        return read_limited(path, PROJECT_LIMIT, what="project file")
    except FileNotFoundError:
        raise ProjectError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ProjectError("is a folder, not a project file", source=str(path)) from None
    except TooLargeError:
        raise ProjectError(f"larger than the {PROJECT_LIMIT // 2**20} MB a project file may have",
                           source=str(path)) from None
    except OSError as exc:
        raise ProjectError(f"cannot be read ({exc.strerror})", source=str(path)) from None


@dataclass(frozen=True)
class DiskVersion:
    """What a project file held when it was opened or last saved: a save checks it is still there."""

    sha256: str | None  # None: there was no file


def _version_of(data: bytes | None) -> DiskVersion:
    return DiskVersion(None if data is None else hashlib.sha256(data).hexdigest())


def load_project(path: Path) -> Project:
    """Read and validate a project file. Every failure is a ProjectError whose message names the file."""
    return load_project_versioned(path)[0]


def load_project_versioned(path: Path) -> tuple[Project, DiskVersion]:
    """load_project, plus the version of the file that was read (for save_project's `expect`)."""
    path = Path(path)
    data = _read_project_bytes(path)
    return parse_project_bytes(data, source=str(path)), _version_of(data)


class ProjectConflictError(Exception):
    """The file changed on disk since it was opened or saved here; str() says so and names it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path}: changed on disk since it was opened here (another window or program saved it)")


def disk_version(path: Path) -> DiskVersion:
    path = Path(path)
    try:
        return _version_of(read_limited(path, PROJECT_LIMIT, what="project file"))
    except FileNotFoundError:
        return DiskVersion(None)
    except (OSError, TooLargeError):
        return DiskVersion("unreadable")


def dumps_project(project: Project) -> str:
    return json.dumps(project_to_json(project), indent=2, ensure_ascii=False) + "\n"


def save_project(project: Project, path: Path, *, expect: DiskVersion | None = None) -> DiskVersion:
    """Save atomically; the version that was on disk is kept as `<name>.bak`. Returns the new version.

    With `expect` (what load_project_versioned or the last save returned), a file that changed on disk
    in between is not replaced: ProjectConflictError, and the caller asks the user. OSError for a
    file that cannot be written (PermissionError "the file is read-only" for a read-only one).
    """
    path = Path(path)
    if expect is not None and disk_version(path) != expect:
        raise ProjectConflictError(path)
    data = dumps_project(project).encode("utf-8")
    atomic_write_bytes(path, data, backup_suffix=BACKUP_SUFFIX, clean_stale=True)
    return _version_of(data)
