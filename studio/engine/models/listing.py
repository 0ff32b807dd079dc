"""What a hub model holds: its file list with sizes and hashes, and the errors of reaching the hub.

The download (download.py) asks for this listing first; it comes from huggingface_hub's model_info at
the commit `main` points to, with a HEAD per file when a mirror's list lacks sizes or hashes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from studio import __version__
from studio.engine.errors import DownloadError
from studio.engine.models.store import check_repo_id

APP_NAME = "qwen-tts-studio"
DEFAULT_ENDPOINT = "https://huggingface.co"
LOCAL_HINT = "or register a local checkpoint folder instead (models add-local FOLDER)"


def resolve_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _hub_headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    # No token: the Qwen3-TTS repos are public, and a token must not travel to the CDN a file redirects to.
    # identity: sizes and Range offsets must count the bytes of the file itself, not of a compressed body.
    headers = build_hf_headers(token=False, library_name=APP_NAME, library_version=__version__)
    headers["Accept-Encoding"] = "identity"
    return headers


def _network_reason(exc: BaseException) -> str:
    """The short cause inside requests/urllib3's long error text ("Connection refused", "timed out")."""
    text = str(exc)
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno_text:
        return errno_text.group(1).strip()[:120]
    import requests

    if isinstance(exc, requests.Timeout):
        return "timed out"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:120]


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _http_text(exc: BaseException) -> str:
    status = _status(exc)
    message = (getattr(exc, "server_message", None) or "").strip().splitlines()
    return f"HTTP {status}" + (f" ({message[0][:160]})" if message else "")


def _offline_error(repo_id: str) -> DownloadError:
    return DownloadError(f"{repo_id}: the hub is switched off (HF_HUB_OFFLINE is set); {LOCAL_HINT}")


def _fail_reaching(repo_id: str, endpoint: str, exc: BaseException) -> DownloadError:
    return DownloadError(
        f"{repo_id}: cannot reach {endpoint} ({_network_reason(exc)}); check the network connection, {LOCAL_HINT}"
    )


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


def _hex(value: Any, length: int) -> str | None:
    return value.lower() if isinstance(value, str) and re.fullmatch(f"[0-9a-fA-F]{{{length}}}", value) else None


def _digest_from_etag(etag: str | None) -> tuple[str | None, str | None]:
    """(sha256, blob_id) from a normalised ETag: an LFS file's linked ETag is its sha256 (64 hex), a plain
    file's ETag its git blob id (40 hex). Anything else (a CDN's own ETag) says nothing."""
    return _hex(etag, 64), _hex(etag, 40)


def fetch_listing(repo_id: str, *, endpoint: str | None = None) -> RemoteListing:
    """Every file of `repo_id` at its current main commit, with sizes and hashes where the hub gives them.

    The hub's `GET /api/models/{repo_id}/revision/main?blobs=true` (HfApi.model_info with files_metadata);
    an older mirror that lists names only is asked for sizes and hashes with a HEAD of each file
    (X-Linked-Size / X-Linked-Etag), as huggingface_hub itself does.
    """
    import requests
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    check_repo_id(repo_id)
    endpoint = resolve_endpoint(endpoint)
    api = HfApi(endpoint=endpoint, token=False, library_name=APP_NAME, library_version=__version__)
    try:
        info = api.model_info(repo_id, revision="main", files_metadata=True)
    except OfflineModeIsEnabled:
        raise _offline_error(repo_id) from None
    except HfHubHTTPError as exc:
        if _status(exc) in (401, 403, 404):
            # The hub answers 401 for a repo that does not exist (it will not say whether a private one does).
            raise DownloadError(
                f"{repo_id}: no such model on {endpoint} (HTTP {_status(exc)}); check the repo id, {LOCAL_HINT}"
            ) from None
        raise DownloadError(
            f"{repo_id}: {endpoint} answered {_http_text(exc)}; try again later, {LOCAL_HINT}"
        ) from None
    except (requests.RequestException, OSError) as exc:
        raise _fail_reaching(repo_id, endpoint, exc) from None
    except (ValueError, KeyError, TypeError):
        raise DownloadError(f"{repo_id}: {endpoint} sent a file list this studio cannot read; {LOCAL_HINT}") from None
    if not isinstance(info.siblings, list):
        raise DownloadError(f"{repo_id}: {endpoint} sent a file list this studio cannot read; {LOCAL_HINT}")
    revision = _hex(info.sha, 40) or "main"
    files = []
    for sibling in info.siblings:
        try:
            path = _safe_relative_path(sibling.rfilename)
        except ValueError:
            raise DownloadError(f"{repo_id}: the file list names an unsafe path {sibling.rfilename!r}; "
                                "nothing was downloaded") from None
        lfs = sibling.lfs
        size = lfs.size if lfs is not None else sibling.size
        files.append(RemoteFile(
            path=path,
            size=size if isinstance(size, int) and size >= 0 else None,
            sha256=_hex(lfs.sha256, 64) if lfs is not None else None,
            blob_id=None if lfs is not None else _hex(sibling.blob_id, 40),
        ))
    if not files:
        raise DownloadError(f"{repo_id}: the repo on {endpoint} has no files; {LOCAL_HINT}")
    listing = RemoteListing(repo_id=repo_id, revision=revision, files=tuple(files))
    if any(f.size is None for f in listing.files):
        listing = _fill_from_head(listing, endpoint)
    return listing


def _fill_from_head(listing: RemoteListing, endpoint: str) -> RemoteListing:
    import requests
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.errors import HfHubHTTPError

    files = []
    for f in listing.files:
        if f.size is not None:
            files.append(f)
            continue
        try:
            meta = get_hf_file_metadata(_resolve_url(endpoint, listing.repo_id, listing.revision, f.path),
                                        token=False, headers=_hub_headers(), endpoint=endpoint)
        except HfHubHTTPError as exc:
            raise DownloadError(f"{listing.repo_id}: {f.path}: {endpoint} answered {_http_text(exc)}; "
                                f"{LOCAL_HINT}") from None
        except (requests.RequestException, OSError) as exc:
            raise _fail_reaching(listing.repo_id, endpoint, exc) from None
        sha256, blob_id = _digest_from_etag(meta.etag)
        files.append(RemoteFile(
            path=f.path,
            size=meta.size if isinstance(meta.size, int) and meta.size >= 0 else None,
            sha256=f.sha256 or sha256,
            blob_id=f.blob_id or (None if sha256 else blob_id),
        ))
    return RemoteListing(listing.repo_id, listing.revision, tuple(files))


def _resolve_url(endpoint: str, repo_id: str, revision: str, path: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, path, revision=revision, endpoint=endpoint)
