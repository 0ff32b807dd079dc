"""The model manager's core: which Qwen3-TTS models exist, what they can do, where they live, and getting them.

No Qt here. The model manager dialog and `python -m studio models` both drive these functions, and tests
call them with plain callbacks: long work takes `progress` and `cancel` and knows nothing of threads.

Layout of the models folder (``models_dir()``: ``<user data dir>/models``, or ``$QWEN_TTS_STUDIO_MODELS``)::

    Qwen--Qwen3-TTS-12Hz-1.7B-Base/              a finished download; appears in one rename
        .studio-model.json                       repo, commit, every file's size and hash
    .Qwen--Qwen3-TTS-12Hz-0.6B-Base.download/    a download in progress or interrupted
        .studio-model.json                       the file list this attempt works from
        model.safetensors.part                   bytes so far, continued with an HTTP Range request
    .Qwen--Qwen3-TTS-12Hz-0.6B-Base.lock         held while one process downloads or deletes that model

A half-downloaded model never looks ready: files are fetched into the staging folder, a file loses
its ``.part`` suffix only once its size and hash are checked, and the folder is renamed to its final
name only when every file is there.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import quote

from studio import __version__
from studio.engine.loader import EngineError, validate_checkpoint

APP_NAME = "qwen-tts-studio"
MODELS_ENV = "QWEN_TTS_STUDIO_MODELS"
DEFAULT_ENDPOINT = "https://huggingface.co"
MANIFEST = ".studio-model.json"
REGISTRY_FILE = "local_models.json"

NOT_DOWNLOADED = "not downloaded"
PARTIAL = "partial"
READY = "ready"
INVALID = "invalid"

_LOCAL_HINT = "or register a local checkpoint folder instead (models add-local FOLDER)"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class ModelError(EngineError):
    """A model-manager failure a user can cause or fix; str() is one line."""


class DownloadError(ModelError):
    """A download that failed (network, server, disk, checksum); str() is one line."""


class DownloadCancelled(Exception):  # noqa: N818 - a cancel is not an error, so no "Error" suffix
    """The cancel event was set; everything fetched so far is kept for a resume."""


# ---------------------------------------------------------------------------------------------
# Capabilities: the one table that decides whether a model honours instruct (emotions, directives)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstructSupport:
    honoured: bool
    reason: str  # for warnings in the UI and the render manifest


def instruct_support(model_type: str | None, size: str | None) -> InstructSupport:
    """Whether `generate_*` of qwen-tts 0.1.1 uses the instruct text for this model type and size."""
    if model_type == "base":
        return InstructSupport(False, "Base (voice clone) models take no instruct; use emotion reference clips")
    # The package tests `tts_model_size in "0b6"` (a substring test) and then drops instruct, so the
    # same test is used here: whatever the package treats as 0.6B, the studio does too.
    if model_type == "custom_voice" and str(size or "") in "0b6":
        return InstructSupport(False, "qwen-tts ignores instruct on 0.6B CustomVoice models")
    if model_type in ("voice_design", "custom_voice"):
        return InstructSupport(True, "")
    return InstructSupport(False, f"not a speech model type qwen-tts knows ({model_type!r})")


def instruct_honoured(model_type: str | None, size: str | None) -> bool:
    return instruct_support(model_type, size).honoured


# ---------------------------------------------------------------------------------------------
# Known models and their sizes
# ---------------------------------------------------------------------------------------------

# Where the numbers come from (all approximate; the real figure is whatever the hub serves):
# parameter counts were taken by building qwen-tts 0.1.1's Qwen3TTSForConditionalGeneration on the
# meta device with the published dimensions (QWEN3_TTS_FACTS.md): 1.7B = talker 1,742 M (311 M of it
# the 151936 x 2048 text embedding) + code predictor 175 M + speaker encoder 12 M (Base only);
# 0.6B = talker 764 M + code predictor 142 M + speaker encoder 9 M (Base only). The weights ship as
# bf16, 2 bytes each. The speech tokenizer (inside every model repo, and alone as the tokenizer repo)
# is taken as about 170 M parameters (decoder about 114 M per the facts file, plus a Mimi encoder)
# stored as float32: about 0.68 GB. The Qwen2 text-tokenizer files and configs add about 11 MB.
# Result: 1.7B about 4.5 GB, 0.6B about 2.5 GB, tokenizer about 0.7 GB to download.
_SPEECH_TOKENIZER_PARAMETERS = 170_000_000
_SPEECH_TOKENIZER_BYTES = _SPEECH_TOKENIZER_PARAMETERS * 4
_SMALL_FILES_BYTES = 11_000_000

# Published talker KV layout (28 layers, 8 KV heads of 128), the same for 1.7B and 0.6B.
_PUBLISHED_KV = (28, 8, 128)


@dataclass(frozen=True)
class KnownModel:
    repo_id: str
    kind: str  # "tts" (a speech model) or "tokenizer" (the speech tokenizer alone)
    model_type: str | None  # voice_design | custom_voice | base; None for the tokenizer
    size: str | None  # "1b7" | "0b6", as qwen-tts names it; None for the tokenizer
    parameters: int  # approximate, speech tokenizer included
    download_bytes: int  # approximate
    description: str

    @property
    def honours_emotions(self) -> bool | None:
        return None if self.kind != "tts" else instruct_honoured(self.model_type, self.size)


def _tts(repo: str, model_type: str, size: str, model_parameters: int, description: str) -> KnownModel:
    return KnownModel(
        repo_id=repo,
        kind="tts",
        model_type=model_type,
        size=size,
        parameters=model_parameters + _SPEECH_TOKENIZER_PARAMETERS,
        download_bytes=model_parameters * 2 + _SPEECH_TOKENIZER_BYTES + _SMALL_FILES_BYTES,
        description=description,
    )


KNOWN_MODELS: tuple[KnownModel, ...] = (
    _tts("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", "voice_design", "1b7", 1_917_000_000,
         "designs a voice from a text description; emotions as instruct"),
    _tts("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", "custom_voice", "1b7", 1_917_000_000,
         "nine preset speakers; emotions as instruct"),
    _tts("Qwen/Qwen3-TTS-12Hz-1.7B-Base", "base", "1b7", 1_929_000_000,
         "clones a voice from a reference clip; base for fine-tuning"),
    _tts("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", "custom_voice", "0b6", 906_000_000,
         "nine preset speakers, smaller; ignores emotions"),
    _tts("Qwen/Qwen3-TTS-12Hz-0.6B-Base", "base", "0b6", 915_000_000,
         "clones a voice from a reference clip, smaller"),
    KnownModel(
        repo_id="Qwen/Qwen3-TTS-Tokenizer-12Hz",
        kind="tokenizer",
        model_type=None,
        size=None,
        parameters=_SPEECH_TOKENIZER_PARAMETERS,
        download_bytes=_SPEECH_TOKENIZER_BYTES + 1_000_000,
        description="the 12 Hz speech tokenizer alone (codec extraction for fine-tuning)",
    ),
)


def known_model(repo_id: str) -> KnownModel | None:
    return next((m for m in KNOWN_MODELS if m.repo_id == repo_id), None)


# ---------------------------------------------------------------------------------------------
# Memory: VRAM estimate and precision
# ---------------------------------------------------------------------------------------------

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
_SAFETENSORS_DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                            "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}

# VRAM estimate = weights x 1.2 + KV cache.
#   weights  = parameters x bytes per parameter of the dtype the model is loaded in (the speech
#              tokenizer is loaded in the same dtype).
#   x 1.2    = CUDA context, allocator slack, activations of one generation step and of the chunked
#              speech-tokenizer decode (a common rule of thumb for batch-1 inference).
#   KV cache = 2 (K and V) x layers x KV heads x head_dim x dtype bytes x positions, for the talker;
#              positions = 4096 covers the prompt (text, instruct, reference codes) plus the package's
#              max_new_tokens of 2048 codec frames. The code predictor's cache (17 positions) is noise.
# 1.7B in bf16: about 5.5 GB, 0.6B: about 3.1 GB, so one resident model fits a 12 GB card.
VRAM_OVERHEAD = 1.2
KV_POSITIONS = 4096


def kv_cache_bytes(dtype: str, *, layers: int, kv_heads: int, head_dim: int, positions: int = KV_POSITIONS) -> int:
    return 2 * layers * kv_heads * head_dim * DTYPE_BYTES[dtype] * positions


def estimate_vram_bytes(
    parameters: int, dtype: str = "bfloat16", *, kv: tuple[int, int, int] | None = _PUBLISHED_KV
) -> int:
    """Approximate GPU memory to load a model of `parameters` in `dtype` and generate one segment."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}")
    weights = parameters * DTYPE_BYTES[dtype]
    cache = kv_cache_bytes(dtype, layers=kv[0], kv_heads=kv[1], head_dim=kv[2]) if kv else 0
    return int(weights * VRAM_OVERHEAD) + cache


def pick_precision(device: str) -> str:
    """The dtype name the engine loads in on `device` (mirrors loader.pick_dtype, without importing torch)."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def count_parameters(folder: Path) -> int:
    """Parameters in every *.safetensors under `folder`, read from the headers (no weights are loaded)."""
    total = 0
    for path in sorted(folder.rglob("*.safetensors")):
        try:
            with path.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 100_000_000:  # a header this large is a damaged file, not a model
                    continue
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error):
            continue
        for name, tensor in header.items():
            if name == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = 1
            for dim in tensor.get("shape", ()):
                count *= int(dim)
            total += count
    return total


def _kv_layout(config: dict[str, Any]) -> tuple[int, int, int] | None:
    talker = config.get("talker_config")
    if not isinstance(talker, dict):
        return None
    try:
        heads = int(talker["num_attention_heads"])
        head_dim = int(talker.get("head_dim") or int(talker["hidden_size"]) // heads)
        return int(talker["num_hidden_layers"]), int(talker.get("num_key_value_heads") or heads), head_dim
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


# ---------------------------------------------------------------------------------------------
# Where models live
# ---------------------------------------------------------------------------------------------


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """The folder downloads go to: $QWEN_TTS_STUDIO_MODELS, else <user data dir>/models."""
    override = os.environ.get(MODELS_ENV)
    return Path(override).expanduser() if override else data_dir() / "models"


def check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.match(repo_id or "") or ".." in repo_id:
        raise ModelError(f"{repo_id!r} is not a hub repo id (expected ORG/NAME, e.g. Qwen/Qwen3-TTS-12Hz-1.7B-Base)")


def _folder_name(repo_id: str) -> str:
    org, name = repo_id.split("/", 1)
    return f"{org}--{name}"


def model_folder(repo_id: str) -> Path:
    """Where `repo_id` lives once downloaded (whether or not it is there)."""
    check_repo_id(repo_id)
    return models_dir() / _folder_name(repo_id)


def _staging_folder(repo_id: str) -> Path:
    return models_dir() / f".{_folder_name(repo_id)}.download"


def _lock_file(repo_id: str) -> Path:
    return models_dir() / f".{_folder_name(repo_id)}.lock"


def local_folder_for(repo_id: str) -> Path | None:
    """The downloaded folder of `repo_id` if it is complete and valid, else None."""
    try:
        folder = model_folder(repo_id)
    except ModelError:
        return None
    state, _ = _folder_state(folder, _kind_for(repo_id, folder))
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


def _tree_bytes(folder: Path) -> int:
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


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    data = _read_json(folder / MANIFEST)
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def _kind_for(repo_id: str, folder: Path) -> str:
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


def _folder_state(folder: Path, kind: str) -> tuple[str, str]:
    if not folder.is_dir():
        return (INVALID, "the folder no longer exists") if folder.exists() else (NOT_DOWNLOADED, "")
    manifest = _read_manifest(folder)
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
    staging = _staging_folder(repo_id)
    kind = _kind_for(repo_id, folder)
    if staging.is_dir():
        state, reason, where = PARTIAL, "", staging
    else:
        state, reason = _folder_state(folder, kind)
        where = folder
    manifest = _read_manifest(where) if where.is_dir() else None
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
        bytes_on_disk=_tree_bytes(where) if where.is_dir() else 0,
        download_bytes=exact_total if exact_total is not None else (known.download_bytes if known else None),
        download_bytes_exact=exact_total is not None,
        parameters=parameters,
        kv_layout=(_kv_layout(config) or _PUBLISHED_KV) if kind == "tts" else None,
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
        bytes_on_disk=_tree_bytes(path) if path.is_dir() else 0,
        download_bytes=None,
        download_bytes_exact=False,
        parameters=parameters or None,
        kv_layout=_kv_layout(config),
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
        manifest = _read_manifest(child)
        repo_id = manifest.get("repo_id") if manifest else None
        if not isinstance(repo_id, str):
            if name.startswith("."):
                name = name[1:-len(".download")]
            repo_id = name.replace("--", "/", 1) if "--" in name else None
        if repo_id and _REPO_ID.match(repo_id) and repo_id not in found:
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


def _free_bytes(folder: Path) -> int:
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
        by_model[repo_id] = sum(_tree_bytes(p) for p in (model_folder(repo_id), _staging_folder(repo_id)) if p.is_dir())
    return DiskUsage(
        folder=root,
        models_bytes=_tree_bytes(root) if root.is_dir() else 0,
        free_bytes=_free_bytes(root),
        by_model=by_model,
    )


# ---------------------------------------------------------------------------------------------
# Registered local checkpoint folders
# ---------------------------------------------------------------------------------------------


def _registry_path() -> Path:
    return data_dir() / REGISTRY_FILE


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
# HTTP: a small injectable transport
# ---------------------------------------------------------------------------------------------


class HttpStatusError(Exception):
    def __init__(self, status: int, url: str, message: str = ""):
        super().__init__(f"HTTP {status}" + (f" ({message})" if message else ""))
        self.status = status
        self.url = url
        self.message = message


class HttpResponse(Protocol):
    status: int
    headers: dict[str, str]  # lower-case names

    def read(self, size: int) -> bytes: ...  # at most `size` bytes, b"" at the end

    def close(self) -> None: ...


class Transport(Protocol):
    def open(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             follow_redirects: bool = True) -> HttpResponse:
        """Send a request. Raises HttpStatusError for 4xx/5xx and OSError for network failures."""
        ...


class _UrllibResponse:
    def __init__(self, raw: Any, status: int):
        self._raw = raw
        self.status = status
        self.headers = {k.lower(): v for k, v in raw.headers.items()}

    def read(self, size: int) -> bytes:
        # read1 returns what has arrived (up to size) instead of waiting for all of it, so the
        # cancel check between chunks stays responsive on a slow connection.
        read1 = getattr(self._raw, "read1", None)
        return read1(size) if read1 else self._raw.read(size)

    def close(self) -> None:
        self._raw.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class UrllibTransport:
    """The default transport: urllib, redirects followed (the hub sends LFS files to a CDN).

    No token is sent: the Qwen3-TTS repos are public, and urllib would forward an Authorization header
    to the CDN host on redirect.
    """

    def __init__(self, *, timeout: float = 30.0):
        self.timeout = timeout
        self._follow = urllib.request.build_opener()
        self._no_follow = urllib.request.build_opener(_NoRedirect)

    def open(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             follow_redirects: bool = True) -> HttpResponse:
        all_headers = {"User-Agent": f"{APP_NAME}/{__version__}", "Accept-Encoding": "identity", **(headers or {})}
        request = urllib.request.Request(url, method=method, headers=all_headers)
        opener = self._follow if follow_redirects else self._no_follow
        try:
            raw = opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if not follow_redirects and 300 <= exc.code < 400:
                return _UrllibResponse(exc, exc.code)
            message = _error_text(exc)
            exc.close()
            raise HttpStatusError(exc.code, url, message) from None
        return _UrllibResponse(raw, raw.status)


def _error_text(exc: urllib.error.HTTPError) -> str:
    # The hub answers errors with {"error": "..."} and an X-Error-Message header; either is short.
    header = exc.headers.get("X-Error-Message") if exc.headers else None
    if header:
        return header.strip()[:160]
    try:
        body = exc.read(4096)
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return data["error"].strip().splitlines()[0][:160]
    except (OSError, ValueError, http.client.HTTPException):
        pass
    return ""


def resolve_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _network_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        exc = reason
    elif isinstance(reason, str):
        return reason.strip()[:120]
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:120]


# ---------------------------------------------------------------------------------------------
# The hub's file list
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative, "/"-separated
    size: int | None
    sha256: str | None  # LFS files: the hub lists the content's sha256
    blob_id: str | None  # other files: the git blob id, sha1 of "blob <size>\0" + content


@dataclass(frozen=True)
class RemoteListing:
    repo_id: str
    revision: str  # the commit the files are fetched from, so a push mid-download cannot mix versions
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


def _safe_relative_path(name: Any) -> str:
    path = PurePosixPath(str(name))
    if (not isinstance(name, str) or not name or "\\" in name or path.is_absolute()
            or any(part in ("", ".", "..") for part in name.split("/"))):
        raise ValueError(name)
    return str(path)


def _digest_from_etag(etag: str | None) -> tuple[str | None, str | None]:
    """(sha256, blob_id) from an ETag: the hub's X-Linked-Etag of an LFS file is the sha256 (64 hex), a
    plain file's ETag its git blob id (40 hex). Anything else (a CDN's own ETag) says nothing."""
    if not etag:
        return None, None
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"').lower()
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return value, None
    if re.fullmatch(r"[0-9a-f]{40}", value):
        return None, value
    return None, None


def _fail_reaching(repo_id: str, endpoint: str, exc: BaseException) -> DownloadError:
    return DownloadError(
        f"{repo_id}: cannot reach {endpoint} ({_network_reason(exc)}); check the network connection, {_LOCAL_HINT}"
    )


def fetch_listing(repo_id: str, *, endpoint: str | None = None, transport: Transport | None = None) -> RemoteListing:
    """Every file of `repo_id` at its current main commit, with sizes and hashes where the hub gives them.

    `GET {endpoint}/api/models/{repo_id}/revision/main?blobs=true` answers
    {"sha": COMMIT, "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256", "size", ...}}]};
    without blobs (an older mirror) only rfilename comes back, and sizes and hashes are read from a
    HEAD of each file's resolve URL instead (X-Linked-Size / X-Linked-Etag, as huggingface_hub does).
    """
    check_repo_id(repo_id)
    endpoint = resolve_endpoint(endpoint)
    transport = transport or UrllibTransport()
    url = f"{endpoint}/api/models/{repo_id}/revision/main?blobs=true"
    try:
        response = transport.open("GET", url)
        try:
            body = _read_all(response, limit=64 << 20)
        finally:
            response.close()
    except HttpStatusError as exc:
        if exc.status in (401, 403, 404):
            # The hub answers 401 for a repo that does not exist (it will not say whether a private one does).
            raise DownloadError(
                f"{repo_id}: no such model on {endpoint} (HTTP {exc.status}); check the repo id, {_LOCAL_HINT}"
            ) from None
        raise DownloadError(f"{repo_id}: {endpoint} answered {exc}; try again later, {_LOCAL_HINT}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _fail_reaching(repo_id, endpoint, exc) from None
    try:
        data = json.loads(body)
        siblings = data["siblings"]
        if not isinstance(siblings, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise DownloadError(f"{repo_id}: {endpoint} sent a file list this studio cannot read; {_LOCAL_HINT}") from None
    sha = data.get("sha") if isinstance(data, dict) else None
    revision = sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}", sha) else "main"
    files = []
    for sibling in siblings:
        if not isinstance(sibling, dict):
            continue
        try:
            path = _safe_relative_path(sibling.get("rfilename"))
        except ValueError:
            raise DownloadError(f"{repo_id}: the file list names an unsafe path {sibling.get('rfilename')!r}; "
                                "nothing was downloaded") from None
        lfs = sibling.get("lfs") if isinstance(sibling.get("lfs"), dict) else None
        size = (lfs or {}).get("size", sibling.get("size"))
        sha256 = (lfs or {}).get("sha256")
        blob_id = None if lfs else sibling.get("blobId")
        files.append(RemoteFile(
            path=path,
            size=size if isinstance(size, int) and size >= 0 else None,
            sha256=sha256.lower() if isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256) else None,
            blob_id=blob_id.lower() if isinstance(blob_id, str) and re.fullmatch(r"[0-9a-fA-F]{40}", blob_id) else None,
        ))
    if not files:
        raise DownloadError(f"{repo_id}: the repo on {endpoint} has no files; {_LOCAL_HINT}")
    listing = RemoteListing(repo_id=repo_id, revision=revision, files=tuple(files))
    if any(f.size is None for f in listing.files):
        listing = _fill_from_head(listing, endpoint, transport)
    return listing


def _fill_from_head(listing: RemoteListing, endpoint: str, transport: Transport) -> RemoteListing:
    files = []
    for f in listing.files:
        if f.size is not None:
            files.append(f)
            continue
        url = _resolve_url(endpoint, listing.repo_id, listing.revision, f.path)
        try:
            response = transport.open("HEAD", url, follow_redirects=False)
            response.close()
        except HttpStatusError as exc:
            raise DownloadError(f"{listing.repo_id}: {f.path}: {endpoint} answered {exc}; {_LOCAL_HINT}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _fail_reaching(listing.repo_id, endpoint, exc) from None
        headers = response.headers
        size_text = headers.get("x-linked-size") or (headers.get("content-length") if response.status < 300 else None)
        sha256, blob_id = _digest_from_etag(headers.get("x-linked-etag") or headers.get("etag"))
        files.append(RemoteFile(
            path=f.path,
            size=int(size_text) if size_text and size_text.isdigit() else None,
            sha256=f.sha256 or sha256,
            blob_id=f.blob_id or (None if sha256 else blob_id),
        ))
    return RemoteListing(listing.repo_id, listing.revision, tuple(files))


def _resolve_url(endpoint: str, repo_id: str, revision: str, path: str) -> str:
    return f"{endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"


def _read_all(response: HttpResponse, *, limit: int) -> bytes:
    parts, size = [], 0
    while True:
        chunk = response.read(1 << 16)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise OSError("response too large")


# ---------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadProgress:
    repo_id: str
    phase: str  # "listing" | "checking" (hashing bytes kept from an earlier attempt) | "downloading" | "done"
    file: str | None  # the file being worked on
    files_done: int
    files_total: int
    bytes_done: int  # on disk for this model, including what an earlier attempt left
    bytes_total: int
    bytes_per_second: float  # over the last few seconds of this attempt
    eta_seconds: float | None  # None until a speed is known

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 0.0


ProgressCallback = Callable[[DownloadProgress], None]


class _Tracker:
    """Counts bytes, estimates speed over a sliding window, and rate-limits progress callbacks."""

    WINDOW_S = 5.0

    def __init__(self, repo_id: str, callback: ProgressCallback | None, *, interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        self.repo_id = repo_id
        self.callback = callback
        self.interval = interval
        self.clock = clock
        self.files_total = 0
        self.files_done = 0
        self.bytes_total = 0
        self.bytes_done = 0
        self.transferred = 0  # this attempt only: what the speed is computed from
        self.file: str | None = None
        self.phase = "listing"
        self._samples: list[tuple[float, int]] = [(clock(), 0)]
        self._last_emit = float("-inf")

    def speed(self) -> float:
        now = self.clock()
        samples = self._samples
        samples.append((now, self.transferred))
        while len(samples) > 2 and now - samples[1][0] > self.WINDOW_S:
            samples.pop(0)
        t0, b0 = samples[0]
        return (self.transferred - b0) / (now - t0) if now - t0 > 0.2 else 0.0

    def emit(self, *, force: bool = False) -> None:
        if self.callback is None:
            return
        now = self.clock()
        if not force and now - self._last_emit < self.interval:
            return
        self._last_emit = now
        speed = self.speed()
        remaining = max(0, self.bytes_total - self.bytes_done)
        eta = remaining / speed if speed > 0 else (0.0 if remaining == 0 else None)
        self.callback(DownloadProgress(
            repo_id=self.repo_id, phase=self.phase, file=self.file, files_done=self.files_done,
            files_total=self.files_total, bytes_done=self.bytes_done, bytes_total=self.bytes_total,
            bytes_per_second=speed, eta_seconds=eta,
        ))

    def advance(self, count: int) -> None:
        self.bytes_done += count
        self.transferred += count
        self.emit()

    def rewind(self, count: int) -> None:
        self.bytes_done -= count


@contextlib.contextmanager
def _exclusive(repo_id: str, doing: str) -> Iterator[None]:
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


def _write_manifest(folder: Path, listing: RemoteListing, endpoint: str, *, complete: bool) -> None:
    from studio.core.atomic import atomic_write_text

    payload = {
        "schema_version": 1,
        "repo_id": listing.repo_id,
        "revision": listing.revision,
        "endpoint": endpoint,
        "complete": complete,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256, "blob_id": f.blob_id} for f in listing.files],
    }
    atomic_write_text(folder / MANIFEST, json.dumps(payload, indent=2) + "\n")


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _reconcile(staging: Path, listing: RemoteListing) -> None:
    """Drop staged bytes that cannot belong to this listing; keep everything that can."""
    previous = _read_manifest(staging)
    before = {str(e.get("path")): e for e in previous["files"]} if previous else {}
    wanted = {f.path for f in listing.files}
    for f in listing.files:
        target = staging / f.path
        part = _part(target)
        old = before.get(f.path)
        identity = (f.size, f.sha256, f.blob_id)
        changed = old is not None and (old.get("size"), old.get("sha256"), old.get("blob_id")) != identity
        if changed:
            target.unlink(missing_ok=True)
            part.unlink(missing_ok=True)
            continue
        # A finished file was verified before it lost its .part suffix; a wrong size now means it was
        # damaged since (or this is a repair of a damaged download), so it is fetched again.
        if target.is_file() and f.size is not None and target.stat().st_size != f.size:
            target.unlink()
        if part.is_file() and f.size is not None and part.stat().st_size > f.size:
            part.unlink()
    # Files the repo no longer has: the final folder mirrors the listing.
    for path in sorted(staging.rglob("*"), reverse=True):
        relative = path.relative_to(staging).as_posix()
        if path.is_file() and relative != MANIFEST:
            name = relative[:-5] if relative.endswith(".part") else relative
            if name not in wanted:
                path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _on_disk(staging: Path, f: RemoteFile) -> int:
    target = staging / f.path
    if target.is_file():
        return target.stat().st_size
    part = _part(target)
    return part.stat().st_size if part.is_file() else 0


def _new_hasher(f: RemoteFile):
    if f.sha256:
        return hashlib.sha256(), f.sha256
    if f.blob_id and f.size is not None:
        hasher = hashlib.sha1()  # git's blob id is sha1 by definition; a checksum here, not security
        hasher.update(b"blob %d\0" % f.size)
        return hasher, f.blob_id
    return None, None


class _Retry(Exception):  # noqa: N818 - internal: a transfer that can be tried again
    pass


class _FileDownload:
    """One file of a download: resume its .part, stream the rest, verify, then drop the suffix."""

    def __init__(self, f: RemoteFile, staging: Path, *, url: str, transport: Transport, tracker: _Tracker,
                 cancel: threading.Event, chunk_size: int, retries: int, repo_id: str):
        self.f = f
        self.target = staging / f.path
        self.part = _part(self.target)
        self.url = url
        self.transport = transport
        self.tracker = tracker
        self.cancel = cancel
        self.chunk_size = chunk_size
        self.retries = retries
        self.repo_id = repo_id
        self.hasher, self.expected_digest = _new_hasher(f)
        self.offset = self.part.stat().st_size if self.part.is_file() else 0

    def _cancelled(self) -> DownloadCancelled:
        return DownloadCancelled(_cancel_message(self.repo_id, self.tracker))

    def _start_over(self) -> None:
        self.part.unlink(missing_ok=True)
        self.tracker.rewind(self.offset)
        self.offset = 0
        self.hasher, self.expected_digest = _new_hasher(self.f)

    def run(self) -> None:
        if self.target.is_file():  # finished (and verified) by an earlier attempt
            return
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if self.offset and self.hasher is not None:
            # Bytes an earlier attempt left are hashed from disk, so the final check covers the whole file.
            self.tracker.phase = "checking"
            self.tracker.emit(force=True)
            with self.part.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    if self.cancel.is_set():
                        raise self._cancelled()
                    self.hasher.update(block)
        self.tracker.phase = "downloading"
        self.tracker.emit(force=True)
        size = self.f.size
        failures = 0
        damaged = 0
        while True:
            if size is not None and self.offset == size:
                if self.expected_digest is None or self.hasher.hexdigest() == self.expected_digest:
                    self.part.touch()  # an empty file never got a .part from the loop below
                    os.replace(self.part, self.target)
                    return
                # Wrong bytes with the right length: fetch the file once more (a flaky proxy or
                # disk), then give up loudly rather than loop.
                damaged += 1
                if damaged > 1:
                    self._start_over()
                    raise DownloadError(f"{self.repo_id}: {self.f.path} arrived damaged twice (checksum mismatch); "
                                        f"try again later, {_LOCAL_HINT}")
                self._start_over()
                continue
            if size is not None and self.offset > size:
                self._start_over()
            before = self.offset
            reason = "the connection closed early"
            ended = False
            try:
                self._stream()
                ended = True
            except _Retry as exc:
                reason = str(exc)
            except HttpStatusError as exc:
                if exc.status < 500 and exc.status not in (408, 429):
                    raise DownloadError(
                        f"{self.repo_id}: {self.f.path}: the hub answered {exc}; {_LOCAL_HINT}"
                    ) from None
                reason = str(exc)
            except (OSError, http.client.HTTPException) as exc:
                reason = _network_reason(exc)
            self.offset = self.part.stat().st_size if self.part.is_file() else 0
            if ended and size is None:
                # No size anywhere (no listing metadata, no HEAD answer): the end of the body is the end.
                os.replace(self.part, self.target)
                return
            if size is not None and self.offset >= size:
                continue
            failures = 0 if self.offset > before else failures + 1  # progress renews the retry budget
            if failures > self.retries:
                raise DownloadError(f"{self.repo_id}: downloading {self.f.path} failed ({reason}); "
                                    f"download again to resume, {_LOCAL_HINT}")
            if failures and self.cancel.wait(min(8.0, 0.5 * 2 ** (failures - 1))):
                raise self._cancelled()

    def _stream(self) -> None:
        """One GET from the current offset, appended to the .part file."""
        if self.cancel.is_set():
            raise self._cancelled()
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else {}
        response = self.transport.open("GET", self.url, headers=headers)
        try:
            if self.offset and response.status == 200:
                # The server ignored the Range header and sends the whole file: take it from byte 0.
                self._start_over()
            elif self.offset and response.status == 206:
                start = _content_range_start(response.headers.get("content-range"))
                if start != self.offset:
                    raise _Retry(f"the server resumed at byte {start}, not {self.offset}")
            elif response.status not in (200, 206):
                raise _Retry(f"unexpected HTTP {response.status}")
            try:
                out = self.part.open("ab")
            except OSError as exc:
                raise DownloadError(f"{self.part}: cannot write ({exc.strerror or exc})") from None
            with out:
                while True:
                    if self.cancel.is_set():
                        raise self._cancelled()
                    chunk = response.read(self.chunk_size)
                    if not chunk:
                        return
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise DownloadError(f"{self.part}: cannot write ({exc.strerror or exc}); "
                                            "free some disk space and download again") from None
                    # Hash only what was written, so the hash and the file can never disagree.
                    if self.hasher is not None:
                        self.hasher.update(chunk)
                    self.offset += len(chunk)
                    self.tracker.advance(len(chunk))
        finally:
            response.close()


def _content_range_start(value: str | None) -> int | None:
    match = re.match(r"bytes\s+(\d+)-", value or "")
    return int(match.group(1)) if match else None


def _cancel_message(repo_id: str, tracker: _Tracker) -> str:
    return (f"{repo_id}: download cancelled with {format_bytes(tracker.bytes_done)} of "
            f"{format_bytes(tracker.bytes_total)} kept; download it again to resume")


def _offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _remove_tree(folder: Path) -> None:
    # Renamed away first, so a delete that fails half-way never leaves something that looks like a model.
    trash = folder.with_name(f".{folder.name.lstrip('.')}.deleting-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.replace(folder, trash)
        shutil.rmtree(trash)
    except OSError as exc:
        raise ModelError(f"{folder}: could not be removed completely ({exc.strerror or exc})") from None


def download_model(
    repo_id: str,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    transport: Transport | None = None,
    chunk_size: int = 1 << 20,
    retries: int = 4,
    progress_interval: float = 0.1,
) -> Path:
    """Download every file of `repo_id` into models_dir() and return the finished folder.

    Resumable: a cancel (the `cancel` event, checked between chunks), a crash or a lost connection
    leaves the staging folder; calling again continues each .part file with a Range request and
    skips finished files. Each file is checked against the size and hash the hub lists (sha256 for
    LFS files, the git blob id for the rest) before it counts as finished. A damaged finished
    download is repaired the same way: only the damaged files are fetched again.

    Raises DownloadCancelled when cancelled, DownloadError (one line) for network, server, disk and
    checksum failures, ModelError for a malformed repo id or a download already running.
    """
    check_repo_id(repo_id)
    if _offline_mode():
        raise DownloadError(f"{repo_id}: the hub is switched off (HF_HUB_OFFLINE is set); {_LOCAL_HINT}")
    cancel = cancel or threading.Event()
    endpoint = resolve_endpoint(endpoint)
    transport = transport or UrllibTransport()
    tracker = _Tracker(repo_id, progress, interval=progress_interval)
    root = models_dir()
    final, staging = model_folder(repo_id), _staging_folder(repo_id)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{root}: cannot create the models folder ({exc.strerror or exc})") from None
    with _exclusive(repo_id, "download"):
        if final.is_dir() and not staging.exists():
            state, _ = _folder_state(final, _kind_for(repo_id, final))
            if state == READY:
                manifest = _read_manifest(final) or {"files": []}
                total = sum(e.get("size") or 0 for e in manifest["files"]) or _tree_bytes(final)
                tracker.bytes_total = tracker.bytes_done = total
                tracker.files_total = tracker.files_done = len(manifest["files"])
                tracker.phase = "done"
                tracker.emit(force=True)
                return final
            os.replace(final, staging)
        if cancel.is_set():
            raise DownloadCancelled(_cancel_message(repo_id, tracker))
        tracker.emit(force=True)
        listing = fetch_listing(repo_id, endpoint=endpoint, transport=transport)
        try:
            staging.mkdir(parents=True, exist_ok=True)
            _reconcile(staging, listing)
            _write_manifest(staging, listing, endpoint, complete=False)
        except OSError as exc:
            raise DownloadError(f"{staging}: cannot write ({exc.strerror or exc})") from None
        tracker.files_total = len(listing.files)
        tracker.bytes_total = listing.total_bytes
        tracker.bytes_done = sum(min(_on_disk(staging, f), f.size) if f.size is not None else _on_disk(staging, f)
                                 for f in listing.files)
        needed = tracker.bytes_total - tracker.bytes_done
        free = _free_bytes(staging)
        if needed > 0 and free < needed + (64 << 20):
            raise DownloadError(
                f"{repo_id}: needs {format_bytes(needed)} more but {root} has {format_bytes(free)} free; "
                f"free some space or point {MODELS_ENV} at a bigger disk"
            )
        for f in listing.files:
            if cancel.is_set():
                raise DownloadCancelled(_cancel_message(repo_id, tracker))
            tracker.file = f.path
            _FileDownload(
                f, staging, url=_resolve_url(endpoint, repo_id, listing.revision, f.path), transport=transport,
                tracker=tracker, cancel=cancel, chunk_size=chunk_size, retries=retries, repo_id=repo_id,
            ).run()
            tracker.files_done += 1
            tracker.emit(force=True)
        try:
            _write_manifest(staging, listing, endpoint, complete=True)
            if final.exists():
                _remove_tree(final)
            # The one step that makes the model exist: before it, list_models says "partial".
            os.replace(staging, final)
        except OSError as exc:
            raise DownloadError(f"{final}: cannot finish the download ({exc.strerror or exc})") from None
        tracker.phase = "done"
        tracker.file = None
        tracker.bytes_done = tracker.bytes_total
        tracker.emit(force=True)
        return final


def delete_model(repo_id: str) -> int:
    """Delete a downloaded (or partly downloaded) model; returns the bytes freed.

    Registered local folders are never deleted here: see forget_local_folder.
    """
    check_repo_id(repo_id)
    final, staging = model_folder(repo_id), _staging_folder(repo_id)
    if not final.exists() and not staging.exists():
        raise ModelError(f"{repo_id}: not downloaded, nothing to delete")
    with _exclusive(repo_id, "delete"):
        freed = 0
        for folder in (final, staging):
            if folder.exists():
                freed += _tree_bytes(folder)
                _remove_tree(folder)
    return freed


# ---------------------------------------------------------------------------------------------
# Display helpers (shared by the CLI and the dialog)
# ---------------------------------------------------------------------------------------------


def format_bytes(count: int | float | None) -> str:
    """Decimal units with about three digits, as the hub shows sizes: 4.5 GB, 812 MB, 12.3 kB."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 999.5 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or abs(value) >= 99.95 else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
