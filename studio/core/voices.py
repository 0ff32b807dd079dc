"""The voice library: named voice profiles kept in the user data folder, one folder per profile.

A profile folder holds `profile.json` and copies of its clips, so a library entry never breaks when the
original recordings move. Profiles travel as one `.qvoice` file (a zip of that folder). Projects refer
to a library profile by id, or embed the voice (see project.CastEntry).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from studio.core.atomic import atomic_write_text
from studio.core.project import FieldReader, ProjectError, read_voice_json, voice_to_json
from studio.core.voice import VoiceError, VoiceSpec

PROFILE_FORMAT = "qwen-tts-studio-voice"
PROFILE_VERSION = 1
PROFILE_SUFFIX = ".qvoice"
_PROFILE_FILE = "profile.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class VoiceLibraryError(ValueError):
    """A profile that cannot be read, written or found; str() is one line naming the file or profile."""


@dataclass(frozen=True)
class VoiceProfile:
    id: str
    name: str
    voice: VoiceSpec  # clip paths absolute, inside the profile folder
    seed: int | None = None  # a pinned seed: this voice renders with it whatever the project seed
    notes: str = ""

    @property
    def kind_label(self) -> str:
        if self.voice.kind == "preset" and self.voice.model:
            return "fine-tuned"
        return {"design": "designed", "preset": "preset", "clone": "cloned"}[self.voice.kind]


def _slug(name: str) -> str:
    return _SAFE.sub("-", name.strip()).strip("-").lower() or "voice"


def _relative_voice(voice: VoiceSpec, folder: Path) -> VoiceSpec:
    def rel(path: str | None) -> str | None:
        return None if path is None else str(Path(path).relative_to(folder))

    return replace(
        voice,
        ref_audio=rel(voice.ref_audio),
        emotion_refs=tuple((e, rel(c), t) for e, c, t in voice.emotion_refs),
    )


def _absolute_voice(voice: VoiceSpec, folder: Path) -> VoiceSpec:
    def absolute(path: str | None) -> str | None:
        if path is None:
            return None
        resolved = (folder / path).resolve()
        if folder.resolve() not in resolved.parents:
            raise VoiceLibraryError(f"{folder / _PROFILE_FILE}: clip {path!r} points outside the profile")
        return str(resolved)

    return replace(
        voice,
        ref_audio=absolute(voice.ref_audio),
        emotion_refs=tuple((e, absolute(c), t) for e, c, t in voice.emotion_refs),
    )


def read_profile(folder: Path) -> VoiceProfile:
    folder = Path(folder)
    path = folder / _PROFILE_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VoiceLibraryError(f"{folder}: not a voice profile (no {_PROFILE_FILE})") from None
    except (OSError, ValueError) as exc:
        raise VoiceLibraryError(f"{path}: unreadable ({exc})") from None
    try:
        reader = FieldReader(doc, "")
        if reader.string("format", required=True) != PROFILE_FORMAT:
            raise ProjectError(f"expected {PROFILE_FORMAT!r}", field="format")
        version = reader.integer("version", None)
        if version != PROFILE_VERSION:
            raise ProjectError(f"unsupported version {version}", field="version")
        profile = VoiceProfile(
            id=reader.string("id", required=True),
            name=reader.string("name", required=True),
            voice=read_voice_json(reader.child("voice"), "voice"),
            seed=reader.integer("seed", None, nullable=True, minimum=0),
            notes=reader.string("notes", ""),
        )
        reader.finish()
    except ProjectError as exc:
        raise VoiceLibraryError(f"{path}: {exc}") from None
    return replace(profile, voice=_absolute_voice(profile.voice, folder))


def _write_profile(profile: VoiceProfile, folder: Path) -> None:
    doc = {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "id": profile.id,
        "name": profile.name,
        "voice": voice_to_json(_relative_voice(profile.voice, folder)),
        "seed": profile.seed,
        "notes": profile.notes,
    }
    atomic_write_text(folder / _PROFILE_FILE, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


class VoiceLibrary:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def prompt_cache(self) -> Path:
        """Where clone prompts (speaker embeddings and reference codes) are cached as safetensors."""
        return self.folder / ".prompts"

    def profiles(self) -> list[VoiceProfile]:
        out = []
        if self.folder.is_dir():
            for child in sorted(self.folder.iterdir()):
                if child.is_dir() and (child / _PROFILE_FILE).is_file():
                    try:
                        out.append(read_profile(child))
                    except VoiceLibraryError:
                        continue
        return sorted(out, key=lambda p: p.name.lower())

    def get(self, id_or_name: str) -> VoiceProfile:
        for profile in self.profiles():
            if profile.id == id_or_name:
                return profile
        matches = [p for p in self.profiles() if p.name.lower() == id_or_name.lower()]
        if len(matches) == 1:
            return matches[0]
        raise VoiceLibraryError(f"no voice profile {id_or_name!r} in the library ({self.folder})")

    def add(self, name: str, voice: VoiceSpec, *, seed: int | None = None, notes: str = "") -> VoiceProfile:
        """Create a profile; its clips are copied into the library so it never depends on the originals."""
        if not name.strip():
            raise VoiceLibraryError("a voice profile needs a name")
        profile_id = f"{_slug(name)}-{uuid.uuid4().hex[:6]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{profile_id}.", dir=self.folder))
        try:
            clips = staging / "clips"

            def copy(path: str | None, stem: str) -> str | None:
                if path is None:
                    return None
                source = Path(path)
                if not source.is_file():
                    raise VoiceLibraryError(f"{source}: no such clip")
                clips.mkdir(exist_ok=True)
                target = clips / f"{_slug(stem)}{source.suffix.lower() or '.wav'}"
                shutil.copyfile(source, target)
                return str(target)

            copied = replace(
                voice,
                ref_audio=copy(voice.ref_audio, "identity"),
                emotion_refs=tuple((e, copy(c, f"emotion-{e}"), t) for e, c, t in voice.emotion_refs),
            )
            profile = VoiceProfile(profile_id, name.strip(), copied, seed, notes)
            _write_profile(profile, staging)
            final = self.folder / profile_id
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return read_profile(final)

    def delete(self, profile_id: str) -> None:
        folder = self.folder / profile_id
        if not (folder / _PROFILE_FILE).is_file():
            raise VoiceLibraryError(f"no voice profile {profile_id!r} in the library")
        shutil.rmtree(folder)

    def export(self, profile_id: str, target: Path) -> Path:
        """Write the profile as one .qvoice file (never over an existing file)."""
        profile = self.get(profile_id)
        folder = self.folder / profile.id
        target = Path(target)
        if target.suffix != PROFILE_SUFFIX:
            target = target.with_name(target.name + PROFILE_SUFFIX)
        if target.exists():
            raise VoiceLibraryError(f"{target}: already exists")
        tmp = target.with_name(f".{target.name}.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
        tmp.replace(target)
        return target

    def import_file(self, source: Path) -> VoiceProfile:
        """Add a profile from a .qvoice file (as a new library entry with a fresh id)."""
        source = Path(source)
        try:
            archive = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise VoiceLibraryError(f"{source}: not a voice profile file ({exc})") from None
        with archive, tempfile.TemporaryDirectory() as tmp:
            for member in archive.namelist():
                # A profile only ever holds profile.json and clips/; anything else (or a path that
                # climbs out of the folder) means the file is not one of ours.
                if member != _PROFILE_FILE and not re.fullmatch(r"clips/[A-Za-z0-9._-]+", member):
                    raise VoiceLibraryError(f"{source}: unexpected entry {member!r} in the voice file")
            archive.extractall(tmp)
            profile = read_profile(Path(tmp))
            try:
                return self.add(profile.name, profile.voice, seed=profile.seed, notes=profile.notes)
            except VoiceError as exc:
                raise VoiceLibraryError(f"{source}: {exc}") from None


def default_voice_library() -> VoiceLibrary:
    """The user's library: QWEN_TTS_STUDIO_VOICES, or `voices/` in the user data folder."""
    import os

    from platformdirs import user_data_dir

    override = os.environ.get("QWEN_TTS_STUDIO_VOICES")
    if override:
        return VoiceLibrary(Path(override))
    return VoiceLibrary(Path(user_data_dir("qwen-tts-studio", appauthor=False)) / "voices")


class CastError(ValueError):
    """A cast member whose voice cannot be found; str() is one line naming the member."""


def resolve_cast(cast: dict, default_name: str | None, library: VoiceLibrary | None) -> dict[str | None, VoiceSpec]:
    """Cast name -> VoiceSpec (embedded voices as they are, library references looked up), plus the
    default voice under the key None. Raises CastError naming the first member that cannot be found."""
    voices: dict[str | None, VoiceSpec] = {}
    for name, entry in cast.items():
        if entry.voice is not None:
            voices[name] = entry.voice
            continue
        if library is None:
            raise CastError(f"cast member {name!r} refers to voice profile {entry.profile!r}, but no library is open")
        try:
            voices[name] = library.get(entry.profile).voice
        except VoiceLibraryError as exc:
            raise CastError(f"cast member {name!r}: {exc}") from None
    if default_name is not None:
        voices[None] = voices.get(default_name)
    return voices


def pinned_seeds(cast: dict, library: VoiceLibrary | None) -> dict[str, int]:
    """Cast name -> pinned seed, for library profiles that pin one."""
    seeds = {}
    for name, entry in cast.items():
        if entry.profile is not None and library is not None:
            try:
                profile = library.get(entry.profile)
            except VoiceLibraryError:
                continue
            if profile.seed is not None:
                seeds[name] = profile.seed
    return seeds
