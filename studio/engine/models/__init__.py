"""The model manager's core, by role: what models exist, what is on this machine, and getting them.

    catalogue   known models, what each can do (instruct support), parameter counts and VRAM estimates
    listing     a hub model's file list with sizes and hashes, and the errors of reaching the hub
    store       the models folder and registered local folders: states, listing, disk usage, delete
    download    the one download path (huggingface_hub's resumable transfer, with the studio's
                staging, hash checks, progress and cancel)

No Qt here. The model manager dialog, `python -m studio models` and the loader all drive these
functions, and tests call them with plain callbacks: long work takes `progress` and `cancel` and knows
nothing of threads. This package's namespace gathers the public names of the four so callers can keep
one import line.
"""

from __future__ import annotations

from studio.core.units import format_bytes, format_duration
from studio.engine.errors import DownloadCancelled, DownloadError, ModelError
from studio.engine.models.catalogue import (
    DTYPE_BYTES,
    KNOWN_MODELS,
    KV_POSITIONS,
    VRAM_OVERHEAD,
    InstructSupport,
    KnownModel,
    count_parameters,
    estimate_vram_bytes,
    instruct_honoured,
    instruct_support,
    known_model,
    kv_cache_bytes,
    pick_precision,
)
from studio.engine.models.download import DownloadProgress, ProgressCallback, download_model
from studio.engine.models.listing import (
    DEFAULT_ENDPOINT,
    RemoteFile,
    RemoteListing,
    fetch_listing,
    resolve_endpoint,
)
from studio.engine.models.store import (
    INVALID,
    MANIFEST,
    MODELS_ENV,
    NOT_DOWNLOADED,
    PARTIAL,
    READY,
    DiskUsage,
    ModelEntry,
    check_repo_id,
    delete_model,
    disk_usage,
    forget_local_folder,
    list_models,
    local_folder_for,
    model_folder,
    models_dir,
    register_local_folder,
    registered_folders,
)

__all__ = [
    "DEFAULT_ENDPOINT", "DTYPE_BYTES", "INVALID", "KNOWN_MODELS", "KV_POSITIONS", "MANIFEST", "MODELS_ENV",
    "NOT_DOWNLOADED", "PARTIAL", "READY", "VRAM_OVERHEAD", "DiskUsage", "DownloadCancelled", "DownloadError",
    "DownloadProgress", "InstructSupport", "KnownModel", "ModelEntry", "ModelError", "ProgressCallback",
    "RemoteFile", "RemoteListing", "check_repo_id", "count_parameters", "delete_model", "disk_usage",
    "download_model", "estimate_vram_bytes", "fetch_listing", "forget_local_folder", "format_bytes",
    "format_duration", "instruct_honoured", "instruct_support", "known_model", "kv_cache_bytes",
    "list_models", "local_folder_for", "model_folder", "models_dir", "pick_precision", "register_local_folder",
    "registered_folders", "resolve_endpoint",
]
