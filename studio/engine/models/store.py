"""The model store: which models are on this machine, in what state, and how much disk they take.

Layout of the models folder (``models_dir()``: ``<user data dir>/models``, or ``$QWEN_TTS_STUDIO_MODELS``)::

    Qwen--Qwen3-TTS-12Hz-1.7B-Base/              a finished download; appears in one rename
        .studio-model.json                       repo, commit, every file's size and hash
    .Qwen--Qwen3-TTS-12Hz-0.6B-Base.download/    a download in progress or interrupted (see .download)
    .Qwen--Qwen3-TTS-12Hz-0.6B-Base.lock         held while one process downloads or deletes that model

Registered local checkpoint folders (the user's own, never deleted here) are listed in
``paths.model_registry_file()``. A half-downloaded model never looks ready: only the download's final
rename makes a folder appear under its model name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio import paths
from studio.engine.checkpoint_files import validate_checkpoint
from studio.engine.errors import EngineError, ModelError
from studio.engine.models.catalogue import (
    KNOWN_MODELS,
    PUBLISHED_KV,
    count_parameters,
    estimate_vram_bytes,
    instruct_honoured,
    known_model,
    kv_layout,
)

MODELS_ENV = paths.MODELS_ENV
MANIFEST = ".studio-model.json"

NOT_DOWNLOADED = "not downloaded"
PARTIAL = "partial"
READY = "ready"
INVALID = "invalid"

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


# ---------------------------------------------------------------------------------------------
# Where models live
# ---------------------------------------------------------------------------------------------


def models_dir() -> Path:
    """The folder downloads go to: $QWEN_TTS_STUDIO_MODELS, else <user data dir>/models."""
    return paths.models_dir()


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id or "") or ".." in repo_id:
        raise ModelError(f"{repo_id!r} is not a hub repo id (expected ORG/NAME, e.g. Qwen/Qwen3-TTS-12Hz-1.7B-Base)")


def _folder_name(repo_id: str) -> str:
    org, name = repo_id.split("/", 1)
    return f"{org}--{name}"


def model_folder(repo_id: str) -> Path:
    """Where `repo_id` lives once downloaded (whether or not it is there)."""
    check_repo_id(repo_id)
    return models_dir() / _folder_name(repo_id)


def staging_folder(repo_id: str) -> Path:
    return models_dir() / f".{_folder_name(repo_id)}.download"


def _lock_file(repo_id: str) -> Path:
    return models_dir() / f".{_folder_name(repo_id)}.lock"


def local_folder_for(repo_id: str) -> Path | None:
    """The downloaded folder of `repo_id` if it is complete and valid, else None."""
    try:
        folder = model_folder(repo_id)
    except ModelError:
        return None
    state, _ = folder_state(folder, kind_for(repo_id, folder))
    return folder if state == READY else None


# ---------------------------------------------------------------------------------------------
# State on disk
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model manager: a known or downloaded hub model, or a registered local folder."""

    name: str  # the repo id, or the folder path for a local checkpoint
    origin: str  # "hub" (managed by download/delete) or "local" (a registered folder, never deleted)
    folder: Path
    state: str  # NOT_DOWNLOADED | PARTIAL | READY | INVALID
    reason: str  # why INVALID; "" otherwise
    kind: str  # "tts" | "tokenizer"
    model_type: str | None
    size: str | None
    bytes_on_disk: int
    download_bytes: int | None  # exact once a file list was fetched, else the table's approximation
    download_bytes_exact: bool
    parameters: int | None  # exact from the safetensors headers when on disk, else approximate
    kv_layout: tuple[int, int, int] | None
    known: bool
    description: str = ""

    @property
    def honours_emotions(self) -> bool | None:
        return None if self.kind != "tts" or self.model_type is None else instruct_honoured(self.model_type, self.size)

    @property
    def source(self) -> str:
        """What to pass to loader.load_model: the local folder (hub ids resolve through the HF cache)."""
        return str(self.folder)

    def vram_bytes(self, dtype: str = "bfloat16") -> int | None:
        if self.parameters is None:
            return None
        return estimate_vram_bytes(self.parameters, dtype, kv=self.kv_layout if self.kind == "tts" else None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "folder": str(self.folder),
            "state": self.state,
            "reason": self.reason,
            "kind": self.kind,
            "model_type": self.model_type,
            "size": self.size,
            "bytes_on_disk": self.bytes_on_disk,
            "download_bytes": self.download_bytes,
            "download_bytes_exact": self.download_bytes_exact,
            "parameters": self.parameters,
            "vram_bytes": {dtype: self.vram_bytes(dtype) for dtype in ("bfloat16", "float32")},
            "honours_emotions": self.honours_emotions,
            "known": self.known,
        }


def tree_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_manifest(folder: Path) -> dict[str, Any] | None:
    data = _read_json(folder / MANIFEST)
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def kind_for(repo_id: str, folder: Path) -> str:
    known = known_model(repo_id)
    if known is not None:
        return known.kind
    config = _read_json(folder / "config.json")
    if isinstance(config, dict) and config.get("model_type") == "qwen3_tts_tokenizer_12hz":
        return "tokenizer"
    return "tts"


_TOKENIZER_REQUIRED = ("config.json", "model.safetensors", "preprocessor_config.json")


def _validation_reason(folder: Path, kind: str) -> str:
    """Why `folder` is not a usable model of `kind`, or "" if it is."""
    if kind == "tokenizer":
        missing = [name for name in _TOKENIZER_REQUIRED if not (folder / name).is_file()]
        return f"incomplete speech tokenizer, missing {', '.join(missing)}" if missing else ""
    try:
        validate_checkpoint(folder)
    except EngineError as exc:
        text = str(exc)
        prefix = f"{folder}: "
        return text[len(prefix):] if text.startswith(prefix) else text
    return ""


def folder_state(folder: Path, kind: str) -> tuple[str, str]:
    if not folder.is_dir():
        return (INVALID, "the folder no longer exists") if folder.exists() else (NOT_DOWNLOADED, "")
    manifest = read_manifest(folder)
    if manifest is not None:
        # Sizes are checked on every listing (a stat per file); hashes were checked when each file
        # was downloaded, and re-hashing gigabytes on every listing would make the dialog crawl.
        for entry in manifest["files"]:
            path = folder / str(entry.get("path", ""))
            expected = entry.get("size")
            if not path.is_file():
                return INVALID, f"missing {entry.get('path')} (download again to repair)"
            if isinstance(expected, int) and path.stat().st_size != expected:
                actual = path.stat().st_size
                return INVALID, (f"{entry.get('path')} is {actual} bytes, expected {expected} "
                                 "(damaged; download again to repair)")
    reason = _validation_reason(folder, kind)
    return (INVALID, reason) if reason else (READY, "")


def _entry_for_repo(repo_id: str) -> ModelEntry:
    known = known_model(repo_id)
    folder = model_folder(repo_id)
    staging = staging_folder(repo_id)
    kind = kind_for(repo_id, folder)
    if staging.is_dir():
        state, reason, where = PARTIAL, "", staging
    else:
        state, reason = folder_state(folder, kind)
        where = folder
    manifest = read_manifest(where) if where.is_dir() else None
    exact_total = None
    if manifest is not None:
        sizes = [f.get("size") for f in manifest["files"]]
        if all(isinstance(s, int) for s in sizes):
            exact_total = sum(sizes)
    config = _read_json(folder / "config.json") if state in (READY, INVALID) else None
    config = config if isinstance(config, dict) else {}
    on_disk = state in (READY, INVALID) and where.is_dir()
    parameters = count_parameters(folder) if on_disk else None
    if not parameters:
        parameters = known.parameters if known else None
    model_type = known.model_type if known else config.get("tts_model_type")
    size = known.size if known else config.get("tts_model_size")
    return ModelEntry(
        name=repo_id,
        origin="hub",
        folder=folder,
        state=state,
        reason=reason,
        kind=kind,
        model_type=model_type,
        size=size,
        bytes_on_disk=tree_bytes(where) if where.is_dir() else 0,
        download_bytes=exact_total if exact_total is not None else (known.download_bytes if known else None),
        download_bytes_exact=exact_total is not None,
        parameters=parameters,
        kv_layout=(kv_layout(config) or PUBLISHED_KV) if kind == "tts" else None,
        known=known is not None,
        description=known.description if known else "",
    )


def _entry_for_local(path: Path) -> ModelEntry:
    state, reason = (READY, "") if path.is_dir() else (INVALID, "the folder no longer exists")
    if state == READY:
        reason = _validation_reason(path, "tts")
        state = INVALID if reason else READY
    config = _read_json(path / "config.json")
    config = config if isinstance(config, dict) else {}
    parameters = count_parameters(path) if path.is_dir() else 0
    return ModelEntry(
        name=str(path),
        origin="local",
        folder=path,
        state=state,
        reason=reason,
        kind="tts",
        model_type=config.get("tts_model_type"),
        size=config.get("tts_model_size"),
        bytes_on_disk=tree_bytes(path) if path.is_dir() else 0,
        download_bytes=None,
        download_bytes_exact=False,
        parameters=parameters or None,
        kv_layout=kv_layout(config),
        known=False,
    )


def _downloaded_repo_ids() -> list[str]:
    """Repo ids with a finished or partial download in the models folder, known or not."""
    root = models_dir()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        name = child.name
        # Finished downloads and staging folders; not lock files or folders being deleted.
        if not child.is_dir() or (name.startswith(".") and not name.endswith(".download")):
            continue
        manifest = read_manifest(child)
        repo_id = manifest.get("repo_id") if manifest else None
        if not isinstance(repo_id, str):
            if name.startswith("."):
                name = name[1:-len(".download")]
            repo_id = name.replace("--", "/", 1) if "--" in name else None
        if repo_id and REPO_ID.match(repo_id) and repo_id not in found:
            found.append(repo_id)
    return found


def list_models() -> list[ModelEntry]:
    """Known models (in table order), other downloaded repos, then registered local folders."""
    entries = [_entry_for_repo(m.repo_id) for m in KNOWN_MODELS]
    known_ids = {m.repo_id for m in KNOWN_MODELS}
    entries += [_entry_for_repo(r) for r in _downloaded_repo_ids() if r not in known_ids]
    entries += [_entry_for_local(path) for path in registered_folders()]
    return entries


@dataclass(frozen=True)
class DiskUsage:
    folder: Path  # the models folder
    models_bytes: int  # everything in it: finished and partial downloads
    free_bytes: int  # free space on its disk
    by_model: dict[str, int] = field(default_factory=dict)  # repo id -> bytes (finished + partial)


def free_bytes(folder: Path) -> int:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return 0


def disk_usage() -> DiskUsage:
    root = models_dir()
    by_model = {}
    for repo_id in _downloaded_repo_ids():
        by_model[repo_id] = sum(tree_bytes(p) for p in (model_folder(repo_id), staging_folder(repo_id)) if p.is_dir())
    return DiskUsage(
        folder=root,
        models_bytes=tree_bytes(root) if root.is_dir() else 0,
        free_bytes=free_bytes(root),
        by_model=by_model,
    )


# ---------------------------------------------------------------------------------------------
# Registered local checkpoint folders
# ---------------------------------------------------------------------------------------------


def _registry_path() -> Path:
    return paths.model_registry_file()


def registered_folders() -> list[Path]:
    data = _read_json(_registry_path())
    folders = data.get("folders") if isinstance(data, dict) else None
    return [Path(f) for f in folders if isinstance(f, str)] if isinstance(folders, list) else []


def _save_registry(folders: list[Path]) -> None:
    from studio.core.atomic import atomic_write_text

    path = _registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"schema_version": 1, "folders": [str(f) for f in folders]}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def register_local_folder(path: Path | str) -> ModelEntry:
    """Add a checkpoint folder the user already has. Raises EngineError naming what is missing."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ModelError(f"{folder}: is a file, not a checkpoint folder")
    folder = folder.resolve()
    validate_checkpoint(folder)
    folders = registered_folders()
    if folder not in folders:
        _save_registry([*folders, folder])
    return _entry_for_local(folder)


def forget_local_folder(path: Path | str) -> bool:
    """Remove a folder from the registry (the folder itself is left alone). False if it was not registered."""
    folder = Path(path).expanduser()
    candidates = {folder, folder.resolve()} if folder.exists() else {folder, Path(os.path.abspath(folder))}
    folders = registered_folders()
    kept = [f for f in folders if f not in candidates]
    if len(kept) == len(folders):
        return False
    _save_registry(kept)
    return True


# ---------------------------------------------------------------------------------------------
# One process at a time per model; deleting
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def exclusive(repo_id: str, doing: str) -> Iterator[None]:
    """Hold the model's lock file: one process at a time downloads or deletes a model.

    An OS file lock (flock / msvcrt) rather than a pid file, so a crashed process never leaves a
    stale lock behind.
    """
    path = _lock_file(repo_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # held for the whole block
    try:
        try:
            if os.name == "nt":
                import msvcrt

                handle.seek(0)  # msvcrt locks bytes from the current position; every process locks byte 0
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ModelError(f"{repo_id}: cannot {doing} it now, another studio window or command is downloading "
                             "or deleting it") from None
        with _THREAD_LOCKS_GUARD:
            busy = repo_id in _THREAD_LOCKS
            _THREAD_LOCKS.add(repo_id)
        if busy:  # flock does not exclude threads of the same process on every platform
            raise ModelError(f"{repo_id}: cannot {doing} it now, it is already being downloaded")
        try:
            yield
        finally:
            with _THREAD_LOCKS_GUARD:
                _THREAD_LOCKS.discard(repo_id)
    finally:
        handle.close()


_THREAD_LOCKS: set[str] = set()
_THREAD_LOCKS_GUARD = threading.Lock()


def remove_tree(folder: Path) -> None:
    # Renamed away first, so a delete that fails half-way never leaves something that looks like a model.
    trash = folder.with_name(f".{folder.name.lstrip('.')}.deleting-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.replace(folder, trash)
        shutil.rmtree(trash)
    except OSError as exc:
        raise ModelError(f"{folder}: could not be removed completely ({exc.strerror or exc})") from None


def delete_model(repo_id: str) -> int:
    """Delete a downloaded (or partly downloaded) model; returns the bytes freed.

    Registered local folders are never deleted here: see forget_local_folder.
    """
    check_repo_id(repo_id)
    final, staging = model_folder(repo_id), staging_folder(repo_id)
    if not final.exists() and not staging.exists():
        raise ModelError(f"{repo_id}: not downloaded, nothing to delete")
    with exclusive(repo_id, "delete"):
        freed = 0
        for folder in (final, staging):
            if folder.exists():
                freed += tree_bytes(folder)
                remove_tree(folder)
    return freed
