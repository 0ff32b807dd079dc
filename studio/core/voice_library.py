"""The voice library: named voice profiles kept in the user data folder, one folder per profile.

A profile folder holds `profile.json` and copies of its clips, so a library entry never breaks when the
original recordings move. Profiles travel as one `.qvoice` file (a zip of that folder). Projects refer
to a library profile by id, or embed the voice (see project.CastEntry).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.core.atomic import atomic_write_text
from studio.core.limits import read_json_limited
from studio.core.project import FieldReader, ProjectError, read_voice_json, voice_to_json
from studio.core.reference_clip import check_voice_clips
from studio.core.voice import VoiceError, VoiceSpec

PROFILE_FORMAT = "qwen-tts-studio-voice"
PROFILE_VERSION = 1
PROFILE_SUFFIX = ".qvoice"
_PROFILE_FILE = "profile.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

# What a .qvoice may hold: profile.json and clips/<plain name> (no dot first or last, so no ".", "..",
# hidden files, or names Windows would silently change). Everything else is refused before anything is
# extracted.
_CLIP_ENTRY = re.compile(r"clips/[A-Za-z0-9_-](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9_-])?")
# Limits on what an import may unpack. A profile is profile.json plus an identity clip and a few emotion
# clips of seconds each (a 30 s clip of 48 kHz stereo 24-bit PCM is about 8.6 MB), so these are far above
# any real profile while keeping a hostile file from filling the disk: 64 entries, 100 MB per clip (about
# six minutes of that studio-quality audio), 200 MB in all (room for an identity clip and emotion clips
# even when each is minutes long), and profile.json at most 1 MB.
MAX_IMPORT_ENTRIES = 64
MAX_IMPORT_ENTRY_BYTES = 100 * 1024 * 1024
MAX_IMPORT_TOTAL_BYTES = 200 * 1024 * 1024
MAX_PROFILE_JSON_BYTES = 1024 * 1024
# Real audio deflates by 1.1x to 3x; a ratio beyond 100 on an entry of any size worth mentioning is a
# zip bomb (600 MB of zeros deflate to about 600 KB, a ratio near 1000).
MAX_COMPRESSION_RATIO = 100
_RATIO_FLOOR_BYTES = 1024 * 1024
_COPY_CHUNK = 1 << 20


# The speakers of the published CustomVoice checkpoints (see the facts file). A preset voice pinned to a
# checkpoint with another speaker is a fine-tuned one.
PUBLISHED_SPEAKERS = frozenset({"serena", "vivian", "uncle_fu", "ryan", "aiden", "ono_anna", "sohee", "eric", "dylan"})


class VoiceLibraryError(ValueError):
    """A profile that cannot be read, written or found; str() is one line naming the file or profile."""


@dataclass(frozen=True)
class VoiceProfile:
    id: str
    name: str
    voice: VoiceSpec  # clip paths absolute, inside the profile folder
    seed: int | None = None  # a pinned seed: this voice renders with it whatever the project seed
    notes: str = ""
    # Problems found in the clips when the profile was added (silent, very long); not saved.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def kind_label(self) -> str:
        if self.voice.kind == "preset" and self.voice.model and self.voice.speaker.lower() not in PUBLISHED_SPEAKERS:
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


def _copy_clips(voice: VoiceSpec, clips: Path, name_of: Callable[[str], str] | None = None) -> VoiceSpec:
    """`voice` with its clips copied into the folder `clips` (created when there is a clip)."""
    def copy(path: str | None, stem: str) -> str | None:
        if path is None:
            return None
        source = Path(path)
        if not source.is_file():
            raise VoiceLibraryError(f"{name_of(path) if name_of else source}: no such clip")
        clips.mkdir(exist_ok=True)
        target = clips / f"{_slug(stem)}{source.suffix.lower() or '.wav'}"
        shutil.copyfile(source, target)
        return str(target)

    return replace(
        voice,
        ref_audio=copy(voice.ref_audio, "identity"),
        emotion_refs=tuple((e, copy(c, f"emotion-{e}"), t) for e, c, t in voice.emotion_refs),
    )


def read_profile(folder: Path) -> VoiceProfile:
    folder = Path(folder)
    path = folder / _PROFILE_FILE
    try:
        doc = read_json_limited(path, 1024 * 1024, what="voice profile")
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
                # Dot-folders are profiles being added or imported (staging), not library entries.
                if not child.name.startswith(".") and child.is_dir() and (child / _PROFILE_FILE).is_file():
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
        """Create a profile; its clips are copied into the library so it never depends on the originals.

        A cloned voice's clips are checked first (reference_clip): an unusable clip raises
        VoiceLibraryError naming it; silent or very long clips are added with `warnings` on the result.
        """
        return self._add(name, voice, seed=seed, notes=notes, name_of=None)

    def _add(self, name: str, voice: VoiceSpec, *, seed: int | None, notes: str,
             name_of: Callable[[str], str] | None) -> VoiceProfile:
        if not name.strip():
            raise VoiceLibraryError("a voice profile needs a name")
        try:
            warnings = check_voice_clips(voice, name_of=name_of)
        except VoiceError as exc:
            raise VoiceLibraryError(str(exc)) from None
        profile_id = f"{_slug(name)}-{uuid.uuid4().hex[:6]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{profile_id}.", dir=self.folder))
        try:
            copied = _copy_clips(voice, staging / "clips", name_of)
            profile = VoiceProfile(profile_id, name.strip(), copied, seed, notes)
            _write_profile(profile, staging)
            final = self.folder / profile_id
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return replace(read_profile(final), warnings=tuple(warnings))

    def update(self, profile_id: str, name: str, voice: VoiceSpec, *, seed: int | None = None,
               notes: str | None = None) -> VoiceProfile:
        """Replace a profile's name, voice and seed, keeping its id (so casts that use it follow the edit).

        Clips are checked and copied as in `add` (a clip already in the profile is kept); the new folder is
        built beside the old one and swapped in, so a failed edit leaves the profile as it was.
        """
        folder = self.folder / profile_id
        old = read_profile(folder)
        if not name.strip():
            raise VoiceLibraryError("a voice profile needs a name")
        try:
            warnings = check_voice_clips(voice)
        except VoiceError as exc:
            raise VoiceLibraryError(str(exc)) from None
        staging = Path(tempfile.mkdtemp(prefix=f".{profile_id}.edit-", dir=self.folder))
        try:
            copied = _copy_clips(voice, staging / "clips")
            profile = VoiceProfile(profile_id, name.strip(), copied, seed, old.notes if notes is None else notes)
            _write_profile(profile, staging)
            retired = self.folder / f".{profile_id}.old-{uuid.uuid4().hex[:6]}"
            folder.rename(retired)
            try:
                staging.rename(folder)
            except BaseException:
                retired.rename(folder)
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(retired, ignore_errors=True)
        return replace(read_profile(folder), warnings=tuple(warnings))

    def unique_name(self, wanted: str) -> str:
        """`wanted`, or `wanted 2`, `wanted 3`... the first name no profile has yet (case-insensitive)."""
        taken = {p.name.lower() for p in self.profiles()}
        name, n = wanted.strip(), 2
        while name.lower() in taken:
            name = f"{wanted.strip()} {n}"
            n += 1
        return name

    def set_model(self, profile_id: str, model: str | None) -> VoiceProfile:
        """Choose the checkpoint a profile renders with; None (or "") leaves the choice to the studio."""
        folder = self.folder / profile_id
        profile = read_profile(folder)
        _write_profile(replace(profile, voice=replace(profile.voice, model=model or None)), folder.resolve())
        return read_profile(folder)

    def delete(self, profile_id: str) -> None:
        folder = self.folder / profile_id
        if not (folder / _PROFILE_FILE).is_file():
            raise VoiceLibraryError(f"no voice profile {profile_id!r} in the library")
        shutil.rmtree(folder)

    def export(self, profile_id: str, target: Path, *, overwrite: bool = False) -> Path:
        """Write the profile as one .qvoice file (`target` gets the suffix if it lacks it).

        The file is written under a temporary name in the target folder and renamed into place, so a
        failed export leaves nothing behind (the temporary file is removed on any failure) and a reader
        never sees half a file. An existing file is never replaced unless `overwrite` is given. Failures
        (a read-only folder, a full disk) raise VoiceLibraryError naming the file and the reason.
        """
        profile = self.get(profile_id)
        folder = self.folder / profile.id
        target = profile_file_path(target)
        exists = VoiceLibraryError(f"{target}: already exists; choose another name (nothing was written)")
        if not overwrite and target.exists():
            raise exists
        if not target.parent.is_dir():
            raise VoiceLibraryError(f"{target}: cannot export the voice: the folder {target.parent} does not exist")
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as exc:
            raise VoiceLibraryError(f"{target}: cannot export the voice: {_os_reason(exc)}") from None
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    for path in sorted(folder.rglob("*")):
                        if path.is_file():
                            archive.write(path, path.relative_to(folder).as_posix())
                handle.flush()
                os.fsync(handle.fileno())
            # mkstemp makes the file 0600; an exported file is for sharing, so the user's normal mode.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            _place(tmp, target, overwrite=overwrite)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise exists from None
            raise VoiceLibraryError(f"{target}: cannot export the voice: {_os_reason(exc)}") from None
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
        return target

    def import_file(self, source: Path) -> VoiceProfile:
        """Add a profile from a .qvoice file (as a new library entry with a fresh id).

        Every entry is checked before anything is unpacked (see `unpack_profile_file`); any problem is one
        VoiceLibraryError naming the file and the entry, and the library is left as it was.
        """
        source = Path(source)
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=self.folder))
        try:
            profile = unpack_profile_file(source, staging)

            def name_of(clip: str) -> str:
                try:
                    return f"{source}: entry {Path(clip).relative_to(staging.resolve()).as_posix()!r}"
                except ValueError:
                    return clip

            try:
                return self._add(profile.name, profile.voice, seed=profile.seed, notes=profile.notes,
                                 name_of=name_of)
            except VoiceError as exc:
                raise VoiceLibraryError(f"{source}: {exc}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def profile_file_path(target: Path) -> Path:
    """Where `VoiceLibrary.export(target)` writes: `target` with the .qvoice suffix added if missing."""
    target = Path(target)
    return target if target.suffix == PROFILE_SUFFIX else target.with_name(target.name + PROFILE_SUFFIX)


def _os_reason(exc: OSError) -> str:
    reasons = {
        errno.EROFS: "the folder is on a read-only file system",
        errno.EACCES: "permission denied (the folder is not writable)",
        errno.EPERM: "permission denied (the folder is not writable)",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EFBIG: "the file is larger than this system allows",
    }
    return reasons.get(exc.errno) or exc.strerror or str(exc)


def _place(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move the finished temporary file to `target`; without `overwrite`, never over an existing file."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        # A hard link fails with EEXIST when the target exists: no window in which another file could
        # appear between the check and the rename and be replaced.
        os.link(tmp, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
                             errno.ENOSYS):
            raise
        # A filesystem without hard links (FAT, some network shares): check, then rename.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.rename(tmp, target)


class _ImportRefused(Exception):
    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(reason)
        self.entry = entry
        self.reason = reason


def _entries(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The entries to extract, after checking all of them; raises _ImportRefused at the first bad one."""
    infos = archive.infolist()
    if len(infos) > MAX_IMPORT_ENTRIES:
        raise _ImportRefused("*", f"holds {len(infos)} entries; a voice profile has at most {MAX_IMPORT_ENTRIES}")
    seen: set[str] = set()
    total = 0
    wanted = []
    for info in infos:
        name = info.filename
        if info.is_dir():
            if name == "clips/":
                continue
            raise _ImportRefused(name, "is a folder entry; a voice profile holds only profile.json and clips/<name>")
        if name != _PROFILE_FILE and not _CLIP_ENTRY.fullmatch(name):
            raise _ImportRefused(
                name, "is not a plain file name inside the profile (only profile.json and clips/<name> are allowed)"
            )
        if name in seen:
            raise _ImportRefused(name, "appears twice")
        seen.add(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _ImportRefused(name, "is a symbolic link")
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise _ImportRefused(name, "is not a regular file")
        if info.flag_bits & 0x1:
            raise _ImportRefused(name, "is encrypted")
        limit = MAX_PROFILE_JSON_BYTES if name == _PROFILE_FILE else MAX_IMPORT_ENTRY_BYTES
        if info.file_size > limit:
            raise _ImportRefused(name, f"unpacks to {_size(info.file_size)}, over the {_size(limit)} limit")
        if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise _ImportRefused(
                name, f"is compressed {info.file_size / max(info.compress_size, 1):.0f} to 1 (a zip bomb?); "
                f"real audio compresses far less than {MAX_COMPRESSION_RATIO} to 1"
            )
        total += info.file_size
        if total > MAX_IMPORT_TOTAL_BYTES:
            raise _ImportRefused(name, f"brings the total to {_size(total)}, over the {_size(MAX_IMPORT_TOTAL_BYTES)} "
                                 "limit for a voice profile")
        wanted.append(info)
    if _PROFILE_FILE not in seen:
        raise _ImportRefused(_PROFILE_FILE, "is missing")
    return wanted


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path) -> int:
    """Stream one checked entry into `folder`; the size limits hold while reading, whatever the header
    says (zipfile stops at the header's size and then fails the CRC; the count here does not rely on
    that)."""
    limit = min(info.file_size, MAX_PROFILE_JSON_BYTES if info.filename == _PROFILE_FILE else MAX_IMPORT_ENTRY_BYTES)
    target = folder.joinpath(*info.filename.split("/"))
    target.parent.mkdir(exist_ok=True)
    written = 0
    try:
        with archive.open(info) as entry, open(target, "xb") as out:
            while chunk := entry.read(_COPY_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise _ImportRefused(info.filename, f"holds more data than its header says ({_size(limit)})")
                out.write(chunk)
    except NotImplementedError as exc:
        raise _ImportRefused(info.filename, f"uses a compression method this studio cannot read ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:
        raise _ImportRefused(info.filename, f"is damaged or its header lies about its size ({exc})") from None
    if written != info.file_size:
        raise _ImportRefused(info.filename, f"holds {written} bytes, not the {info.file_size} its header says")
    return written


def unpack_profile_file(source: Path, folder: Path) -> VoiceProfile:
    """Unpack a .qvoice file into the empty `folder` and read the profile there.

    Every entry is checked before anything is written: only profile.json and clips/<plain name>, no
    folders, links or duplicates, and the limits on the number of entries, each entry's size, the total
    and the compression ratio (MAX_IMPORT_*). Entries are then streamed out with the limits enforced
    while reading. Any problem raises one VoiceLibraryError naming `source` and the entry, after
    removing whatever was written into `folder`.
    """
    source = Path(source)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ValueError(f"{folder}: unpack a voice profile into an empty folder")
    try:
        archive = zipfile.ZipFile(source)
    except FileNotFoundError:
        raise VoiceLibraryError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise VoiceLibraryError(f"{source}: is a folder, not a voice profile file") from None
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise VoiceLibraryError(f"{source}: not a voice profile file ({exc})") from None
    try:
        with archive:
            for info in _entries(archive):
                _extract(archive, info, folder)
    except _ImportRefused as exc:
        _remove_unpacked(folder)
        where = "the file" if exc.entry == "*" else f"entry {exc.entry!r}"
        raise VoiceLibraryError(f"{source}: {where} {exc.reason}; nothing was imported") from None
    except OSError as exc:
        _remove_unpacked(folder)
        reason = _os_reason(exc)
        raise VoiceLibraryError(f"{source}: cannot unpack the voice ({reason}); nothing was imported") from None
    except BaseException:
        _remove_unpacked(folder)
        raise
    try:
        return read_profile(folder)
    except VoiceLibraryError as exc:
        _remove_unpacked(folder)
        # Name the entry, not the folder it was unpacked into for reading.
        message, unpacked = str(exc), str(folder / _PROFILE_FILE)
        if message.startswith(unpacked):
            message = f"entry {_PROFILE_FILE!r}{message[len(unpacked):]}"
        raise VoiceLibraryError(f"{source}: {message}") from None


def _remove_unpacked(folder: Path) -> None:
    # Only what unpacking can write: profile.json and clips/ (the folder was checked empty before).
    shutil.rmtree(folder / "clips", ignore_errors=True)
    (folder / _PROFILE_FILE).unlink(missing_ok=True)


def default_voice_library() -> VoiceLibrary:
    """The user's library: QWEN_TTS_STUDIO_VOICES, or `voices/` in the user data folder (studio.paths)."""
    from studio import paths

    return VoiceLibrary(paths.voices_dir())


class CastError(ValueError):
    """A cast member whose voice cannot be found; str() is one line naming the member."""


def resolve_cast(cast: dict, default_name: str | None, library: VoiceLibrary | None, *,
                 errors: dict | None = None) -> dict[str | None, VoiceSpec]:
    """Cast name -> VoiceSpec (embedded voices as they are, library references looked up), plus the
    default voice under the key None. Raises CastError naming the first member that cannot be found, or,
    given `errors`, records why for each such member there and leaves it out (the pre-flight check lists
    them all)."""
    voices: dict[str | None, VoiceSpec] = {}
    for name, entry in cast.items():
        if entry.voice is not None:
            voices[name] = entry.voice
            continue
        try:
            if library is None:
                raise CastError(f"cast member {name!r} refers to voice profile {entry.profile!r}, but no library "
                                "is open")
            try:
                voices[name] = library.get(entry.profile).voice
            except VoiceLibraryError as exc:
                raise CastError(f"cast member {name!r}: {exc}") from None
        except CastError as exc:
            if errors is None:
                raise
            errors[name] = str(exc)
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
