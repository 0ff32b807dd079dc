"""Getting a model from the hub: the studio's one download path, on huggingface_hub's resumable download.

Everything that downloads a model comes through download_model: the model manager dialog, `models
download`, and the loader when it is given a hub id that is not on this machine yet.

What huggingface_hub does here: the file list (HfApi.model_info with files_metadata, at the commit
`main` points to), sizes and hashes from a HEAD when a mirror's list has none (get_hf_file_metadata),
and each file's transfer (file_download.http_get: a Range request continuing what is on disk, starting
over when a server ignores Range, resuming a dropped connection, refusing a body of the wrong length).

What the studio adds on top, because users rely on it:
- staging: files arrive in ``.<name>.download/`` as ``*.part`` and the folder takes the model's name in
  one rename once every file is there, so a half-downloaded model never looks ready;
- integrity: every file is checked against the sha256 (LFS) or git blob id the hub lists before it loses
  its ``.part`` suffix; the hash is taken as the bytes are written, so checking costs no second read;
- progress with bytes, speed and ETA, and cancel: http_get writes through a small file object
  (_PartFile) that counts, hashes and checks the cancel event before every write;
- one process at a time per model (a lock file), and one clear line for every failure, naming the
  model and saying how to register a local folder instead.

huggingface_hub's own cache (hf_hub_download, snapshot_download) is not used: its blobs/symlinks layout
and its `.incomplete` files have no cancel, no per-file hash check and no progress callback.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.units import format_bytes
from studio.engine.errors import DownloadCancelled, DownloadError
from studio.engine.models.listing import (
    LOCAL_HINT,
    RemoteFile,
    RemoteListing,
    _http_text,
    _hub_headers,
    _network_reason,
    _offline_error,
    _resolve_url,
    _status,
    fetch_listing,
    resolve_endpoint,
)
from studio.engine.models.store import (
    MANIFEST,
    MODELS_ENV,
    READY,
    check_repo_id,
    exclusive,
    folder_state,
    free_bytes,
    kind_for,
    model_folder,
    models_dir,
    read_manifest,
    remove_tree,
    staging_folder,
    tree_bytes,
)

# huggingface_hub reads a body in pieces of its DOWNLOAD_CHUNK_SIZE (10 MB by default) and the studio sees
# progress and can cancel only between pieces: 10 s apart on a 1 MB/s line. 256 kB keeps both under a
# second on slow lines and costs nothing measurable on fast ones.
DEFAULT_CHUNK_SIZE = 256 << 10


# ---------------------------------------------------------------------------------------------
# Progress
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
    previous = read_manifest(staging)
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


def _cancel_message(repo_id: str, tracker: _Tracker) -> str:
    return (f"{repo_id}: download cancelled with {format_bytes(tracker.bytes_done)} of "
            f"{format_bytes(tracker.bytes_total)} kept; download it again to resume")


def _offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------------------------
# One file
# ---------------------------------------------------------------------------------------------


class _PartFile:
    """The .part file as http_get sees it: every write is checked for cancel, then written, hashed, counted.

    http_get uses write, tell, and seek(0) + truncate() when a server ignores the Range header and sends
    the whole file again.
    """

    def __init__(self, handle: Any, download: _FileDownload):
        self._handle = handle
        self._download = download

    @property
    def name(self) -> str:
        return self._handle.name

    def write(self, data: bytes) -> int:
        download = self._download
        if download.cancel.is_set():
            raise download.cancelled()
        try:
            written = self._handle.write(data)
            self._handle.flush()
        except OSError as exc:
            raise DownloadError(f"{download.part}: cannot write ({exc.strerror or exc}); "
                                "free some disk space and download again") from None
        # Hash only what was written, so the hash and the file can never disagree.
        download.took(data)
        return written

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        result = self._handle.truncate(size)
        self._download.truncated(self._handle.tell() if size is None else size)
        return result


class _FileDownload:
    """One file of a download: resume its .part, fetch the rest with http_get, verify, drop the suffix."""

    def __init__(self, f: RemoteFile, staging: Path, *, url: str, headers: dict[str, str], tracker: _Tracker,
                 cancel: threading.Event, retries: int, repo_id: str):
        self.f = f
        self.target = staging / f.path
        self.part = _part(self.target)
        self.url = url
        self.headers = headers
        self.tracker = tracker
        self.cancel = cancel
        self.retries = retries
        self.repo_id = repo_id
        self.hasher, self.expected_digest = _new_hasher(f)
        self.hashed = 0  # bytes of the .part the hasher has seen

    def cancelled(self) -> DownloadCancelled:
        return DownloadCancelled(_cancel_message(self.repo_id, self.tracker))

    def took(self, data: bytes) -> None:
        if self.hasher is not None:
            self.hasher.update(data)
        self.hashed += len(data)
        self.tracker.advance(len(data))

    def truncated(self, size: int) -> None:
        # Only "start again from byte 0" happens (a server that ignored Range); anything else is re-hashed.
        self.tracker.rewind(self.hashed - size)
        self.hasher, self.expected_digest = _new_hasher(self.f)
        self.hashed = 0
        if size:
            self._hash_from_disk()

    def _size_on_disk(self) -> int:
        return self.part.stat().st_size if self.part.is_file() else 0

    def _start_over(self) -> None:
        self.part.unlink(missing_ok=True)
        self.truncated(0)

    def _hash_from_disk(self) -> None:
        self.hasher, self.expected_digest = _new_hasher(self.f)
        self.hashed = 0
        if not self.part.is_file():
            return
        with self.part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                if self.cancel.is_set():
                    raise self.cancelled()
                if self.hasher is not None:
                    self.hasher.update(block)
                self.hashed += len(block)

    def run(self) -> None:
        if self.target.is_file():  # finished (and verified) by an earlier attempt
            return
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if self._size_on_disk():
            # Bytes an earlier attempt left are hashed from disk, so the final check covers the whole file.
            self.tracker.phase = "checking"
            self.tracker.emit(force=True)
            self._hash_from_disk()
        self.tracker.phase = "downloading"
        self.tracker.emit(force=True)
        size = self.f.size
        failures = 0
        damaged = 0
        while True:
            offset = self._size_on_disk()
            if offset != self.hashed:  # written by something that bypassed _PartFile (hf_transfer)
                self._hash_from_disk()
            if size is not None and offset == size:
                if self.expected_digest is None or self.hasher.hexdigest() == self.expected_digest:
                    self.part.touch()  # an empty file never got a .part from a write
                    os.replace(self.part, self.target)
                    return
                # Wrong bytes with the right length: fetch the file once more (a flaky proxy or
                # disk), then give up loudly rather than loop.
                damaged += 1
                self._start_over()
                if damaged > 1:
                    raise DownloadError(f"{self.repo_id}: {self.f.path} arrived damaged twice (checksum mismatch); "
                                        f"try again later, {LOCAL_HINT}")
                continue
            if size is not None and offset > size:
                self._start_over()
                offset = 0
            ended, reason = self._fetch(offset)
            now = self._size_on_disk()
            if ended and size is None:
                # No size anywhere (no listing metadata, no HEAD answer): the end of the body is the end.
                self.part.touch()
                os.replace(self.part, self.target)
                return
            if size is not None and now >= size:
                continue
            failures = 0 if now > offset else failures + 1  # progress renews the retry budget
            if failures > self.retries:
                raise DownloadError(f"{self.repo_id}: downloading {self.f.path} failed ({reason}); "
                                    f"download again to resume, {LOCAL_HINT}")
            if failures and self.cancel.wait(min(8.0, 0.5 * 2 ** (failures - 1))):
                raise self.cancelled()

    def _fetch(self, offset: int) -> tuple[bool, str]:
        """One http_get from `offset`: (whether the body ended normally, why not)."""
        import requests
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
        from huggingface_hub.file_download import http_get

        if self.cancel.is_set():
            raise self.cancelled()
        try:
            with self.part.open("ab") as handle:
                http_get(self.url, _PartFile(handle, self), resume_size=offset, headers=self.headers,
                         expected_size=self.f.size, displayed_filename=self.f.path)
            return True, ""
        except OfflineModeIsEnabled:
            raise _offline_error(self.repo_id) from None
        except HfHubHTTPError as exc:
            status = _status(exc)
            if status is not None and status < 500 and status not in (408, 416, 429):
                raise DownloadError(f"{self.repo_id}: {self.f.path}: the hub answered {_http_text(exc)}; "
                                    f"{LOCAL_HINT}") from None
            return False, _http_text(exc)
        except (requests.RequestException, OSError) as exc:
            return False, _network_reason(exc)


# ---------------------------------------------------------------------------------------------
# A whole model
# ---------------------------------------------------------------------------------------------


def _use_chunk_size(chunk_size: int) -> None:
    from huggingface_hub import constants

    # Process-wide: the studio's downloads are the only users of http_get in the process.
    constants.DOWNLOAD_CHUNK_SIZE = chunk_size


def _quiet_hub_progress_bars() -> None:
    from huggingface_hub.utils import disable_progress_bars

    # The studio reports progress itself; the hub's tqdm bar would draw over the command line's output.
    disable_progress_bars("huggingface_hub.http_get")


def download_model(
    repo_id: str,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    retries: int = 4,
    progress_interval: float = 0.1,
) -> Path:
    """Download every file of `repo_id` into models_dir() and return the finished folder.

    Resumable: a cancel (the `cancel` event, checked before every write), a crash or a lost connection
    leaves the staging folder; calling again continues each .part file with a Range request and
    skips finished files. Each file is checked against the size and hash the hub lists (sha256 for
    LFS files, the git blob id for the rest) before it counts as finished. A damaged finished
    download is repaired the same way: only the damaged files are fetched again.

    Raises DownloadCancelled when cancelled, DownloadError (one line) for network, server, disk and
    checksum failures, ModelError for a malformed repo id or a download already running.
    """
    check_repo_id(repo_id)
    if _offline_mode():
        raise _offline_error(repo_id)
    cancel = cancel or threading.Event()
    endpoint = resolve_endpoint(endpoint)
    _use_chunk_size(chunk_size)
    _quiet_hub_progress_bars()
    tracker = _Tracker(repo_id, progress, interval=progress_interval)
    root = models_dir()
    final, staging = model_folder(repo_id), staging_folder(repo_id)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{root}: cannot create the models folder ({exc.strerror or exc})") from None
    with exclusive(repo_id, "download"):
        if final.is_dir() and not staging.exists():
            state, _ = folder_state(final, kind_for(repo_id, final))
            if state == READY:
                manifest = read_manifest(final) or {"files": []}
                total = sum(e.get("size") or 0 for e in manifest["files"]) or tree_bytes(final)
                tracker.bytes_total = tracker.bytes_done = total
                tracker.files_total = tracker.files_done = len(manifest["files"])
                tracker.phase = "done"
                tracker.emit(force=True)
                return final
            os.replace(final, staging)
        if cancel.is_set():
            raise DownloadCancelled(_cancel_message(repo_id, tracker))
        tracker.emit(force=True)
        listing = fetch_listing(repo_id, endpoint=endpoint)
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
        free = free_bytes(staging)
        if needed > 0 and free < needed + (64 << 20):
            raise DownloadError(
                f"{repo_id}: needs {format_bytes(needed)} more but {root} has {format_bytes(free)} free; "
                f"free some space or point {MODELS_ENV} at a bigger disk"
            )
        headers = _hub_headers()
        for f in listing.files:
            if cancel.is_set():
                raise DownloadCancelled(_cancel_message(repo_id, tracker))
            tracker.file = f.path
            _FileDownload(
                f, staging, url=_resolve_url(endpoint, repo_id, listing.revision, f.path), headers=headers,
                tracker=tracker, cancel=cancel, retries=retries, repo_id=repo_id,
            ).run()
            tracker.files_done += 1
            tracker.emit(force=True)
        try:
            _write_manifest(staging, listing, endpoint, complete=True)
            if final.exists():
                remove_tree(final)
            # The one step that makes the model exist: before it, list_models says "partial".
            os.replace(staging, final)
        except OSError as exc:
            raise DownloadError(f"{final}: cannot finish the download ({exc.strerror or exc})") from None
        tracker.phase = "done"
        tracker.file = None
        tracker.bytes_done = tracker.bytes_total
        tracker.emit(force=True)
        return final
