"""The three dataset layouts validation accepts, read into one list of entries (recording + transcript).

- a folder of audio files (searched recursively), each with a same-named ``.txt`` transcript;
- an LJSpeech ``metadata.csv`` (``id|text`` or ``id|text|normalized``) beside a ``wavs/`` folder;
- a ``.jsonl`` manifest with ``audio`` and ``text`` per line (and optionally ``ref_audio``).

Nothing here reads audio or writes anything: validate.py checks each entry and prepares its audio.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.limits import TooLargeError, read_limited
from training.protocol import CommandError

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a"})
# Text files that sit in dataset folders without being transcripts; an orphan .txt of any other name
# is reported, because it usually means a recording went missing.
_NOT_TRANSCRIPTS = frozenset({"readme", "license", "licence", "notes", "changelog", "copying", "authors"})


@dataclass
class Entry:
    """One item as the layout lists it, before its audio is looked at."""

    audio: Path
    text: str
    source: str
    ref_audio: Path | None = None
    problems: list[str] = field(default_factory=list)
    # False when the listing could not tell which audio file or transcript is meant (a malformed
    # manifest line, an orphan transcript): the audio checks or the empty-transcript check would only
    # repeat the problem already recorded.
    audio_known: bool = True
    text_known: bool = True


@dataclass
class Layout:
    kind: str  # folder | ljspeech | jsonl
    root: Path
    entries: list[Entry]


def _clean_text(text: str) -> str:
    return " ".join(text.split())


# A manifest of 100,000 clips is a few MB; a bigger one is almost certainly the wrong file.
MANIFEST_LIMIT = 64 * 1024 * 1024
TRANSCRIPT_LIMIT = 1024 * 1024


def _read_manifest_text(path: Path) -> str:
    try:
        data = read_limited(path, MANIFEST_LIMIT, what="dataset manifest")
    except TooLargeError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CommandError(
            f"{path}: line {line}, column {column}: not UTF-8 text (bad byte at offset {exc.start})",
            hint="save the file as UTF-8",
        ) from None


def _read_transcript(path: Path) -> str:
    return read_limited(path, TRANSCRIPT_LIMIT, what="transcript").decode("utf-8-sig")


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def list_folder(folder: Path, *, exclude: Path | None = None) -> list[Entry]:
    audio: list[Path] = []
    texts: list[Path] = []
    for path in folder.rglob("*"):
        rel_parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel_parts):
            continue
        if exclude is not None and _is_inside(path, exclude):
            continue
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in AUDIO_EXTENSIONS:
            audio.append(path)
        elif suffix == ".txt":
            texts.append(path)
    stems_with_audio = {p.with_suffix("") for p in audio}
    entries: list[tuple[str, Entry]] = []
    for path in audio:
        rel = path.relative_to(folder).as_posix()
        transcript = path.with_suffix(".txt")
        entry = Entry(audio=path.absolute(), text="", source=rel)
        if transcript.is_file():
            try:
                entry.text = _clean_text(_read_transcript(transcript))
            except UnicodeDecodeError:
                entry.text_known = False
                entry.problems.append(f"unreadable transcript: {transcript.name} is not UTF-8 text")
            except TooLargeError:
                entry.text_known = False
                entry.problems.append(f"unreadable transcript: {transcript.name} is larger than 1 MB")
            except OSError as exc:
                entry.text_known = False
                entry.problems.append(f"unreadable transcript: {transcript.name} ({exc.strerror or exc})")
        else:
            entry.text_known = False
            entry.problems.append(f"missing transcript: no {transcript.name} next to the audio")
        entries.append((rel, entry))
    for path in texts:
        stem = path.with_suffix("")
        if stem in stems_with_audio or stem.name.lower() in _NOT_TRANSCRIPTS:
            continue
        rel = path.relative_to(folder).as_posix()
        entry = Entry(audio=stem.absolute(), text="", source=rel, audio_known=False)
        try:
            entry.text = _clean_text(_read_transcript(path))
        except (UnicodeDecodeError, OSError, TooLargeError):
            pass
        entry.problems.append(f"missing audio: no audio file named {stem.name}.* next to {path.name}")
        entries.append((rel, entry))
    entries.sort(key=lambda pair: pair[0])
    return [entry for _, entry in entries]


def list_ljspeech(csv_path: Path) -> list[Entry]:
    root = csv_path.parent
    entries = []
    for lineno, line in enumerate(_read_manifest_text(csv_path).splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{csv_path.name} line {lineno}"
        fields = line.split("|")
        item_id = fields[0].strip()
        if len(fields) < 2 or not item_id:
            entries.append(_malformed(csv_path, source, "malformed line: expected id|text"))
            continue
        name = item_id if Path(item_id).suffix.lower() in AUDIO_EXTENSIONS else f"{item_id}.wav"
        text = fields[2] if len(fields) >= 3 and fields[2].strip() else fields[1]
        entry = Entry(audio=(root / "wavs" / name).absolute(), text=_clean_text(text), source=source)
        entries.append(entry)
    return entries


def _malformed(manifest: Path, source: str, problem: str) -> Entry:
    # The line names no usable audio path, so the item points at the manifest itself.
    return Entry(
        audio=manifest.absolute(), text="", source=source, problems=[problem], audio_known=False, text_known=False
    )


def _resolve_manifest_path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).absolute()


def list_jsonl(jsonl_path: Path) -> list[Entry]:
    base = jsonl_path.parent
    entries = []
    for lineno, line in enumerate(_read_manifest_text(jsonl_path).splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{jsonl_path.name} line {lineno}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            entries.append(_malformed(jsonl_path, source, f"malformed line: {getattr(exc, 'msg', exc)}"))
            continue
        if not isinstance(record, dict):
            entries.append(_malformed(jsonl_path, source, "malformed line: not a JSON object"))
            continue
        entry = Entry(audio=jsonl_path.absolute(), text="", source=source)
        audio = record.get("audio")
        if isinstance(audio, str) and audio.strip():
            entry.audio = _resolve_manifest_path(audio.strip(), base)
        else:
            entry.audio_known = False
            entry.problems.append('missing field: "audio" must be a path')
        text = record.get("text")
        if isinstance(text, str):
            entry.text = _clean_text(text)
        else:
            entry.text_known = False
            entry.problems.append('missing field: "text" must be a string')
        ref = record.get("ref_audio")
        if isinstance(ref, str) and ref.strip():
            entry.ref_audio = _resolve_manifest_path(ref.strip(), base)
        elif ref is not None:
            entry.problems.append('bad field: "ref_audio" must be a path')
        entries.append(entry)
    return entries


def _check_run_folder(dataset: Path, out_dir: Path) -> None:
    # The dataset is only ever read. A run folder that is (or lies inside) the dataset's folder would
    # mix the studio's converted copies with the user's recordings, whatever the layout.
    root = dataset if dataset.is_dir() else dataset.parent
    if dataset.exists() and _is_inside(out_dir, root):
        raise CommandError(
            f"{out_dir}: the run folder is inside the dataset folder {root}",
            hint="choose a run folder outside the dataset, which is only ever read",
        )


def check_entries_outside(entries: Sequence[Entry], out_dir: Path) -> None:
    for entry in entries:
        for path in (entry.audio, entry.ref_audio):
            if path is not None and _is_inside(path, out_dir):
                raise CommandError(
                    f"{out_dir}: the run folder holds the dataset's recording {path} ({entry.source})",
                    hint="choose a run folder outside the dataset, which is only ever read",
                )


def find_layout(dataset: Path, out_dir: Path) -> Layout:
    """Recognise the dataset's layout and list its items; CommandError when there is none."""
    layout = _find_layout(dataset, out_dir)
    _check_run_folder(dataset, out_dir)
    return layout


def _find_layout(dataset: Path, out_dir: Path) -> Layout:
    hint = "pass a folder of audio files with .txt transcripts, an LJSpeech metadata.csv or a .jsonl file"
    if not dataset.exists():
        raise CommandError(f"{dataset}: no such file or folder", hint=hint)
    if dataset.is_file():
        if dataset.suffix.lower() == ".jsonl":
            return Layout("jsonl", dataset.parent, list_jsonl(dataset))
        if dataset.suffix.lower() == ".csv":
            return Layout("ljspeech", dataset.parent, list_ljspeech(dataset))
        raise CommandError(f"{dataset}: not a recognised dataset file (expected metadata.csv or .jsonl)", hint=hint)
    if not dataset.is_dir():
        raise CommandError(f"{dataset}: not a file or folder", hint=hint)
    if (dataset / "metadata.csv").is_file():
        return Layout("ljspeech", dataset, list_ljspeech(dataset / "metadata.csv"))
    manifests = sorted(p for p in dataset.glob("*.jsonl") if p.is_file())
    if len(manifests) > 1:
        names = ", ".join(p.name for p in manifests)
        raise CommandError(f"{dataset}: several .jsonl files ({names})", hint="pass the one to use")
    if manifests:
        return Layout("jsonl", dataset, list_jsonl(manifests[0]))
    entries = list_folder(dataset, exclude=out_dir)
    if not entries:
        raise CommandError(f"{dataset}: no audio files, metadata.csv or .jsonl found", hint=hint)
    return Layout("folder", dataset, entries)


# -- audio checks ---------------------------------------------------------------------------------------
