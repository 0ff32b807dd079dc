"""The model manager's core against a local fake hub: real HTTP, real files, real checkpoints.

The fake hub is a ThreadingHTTPServer on 127.0.0.1 speaking the Hugging Face Hub's shape: the file
list at /api/models/{repo}/revision/{rev} (with sizes, blob ids and LFS sha256 when ?blobs=true), and
file bytes at /{repo}/resolve/{rev}/{path}, where LFS files redirect to a "CDN" path as on the real hub,
with Range requests. It counts every byte it sends, so resume tests can prove nothing was fetched twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from studio.engine import models
from studio.engine.loader import EngineError, ModelInfo, validate_checkpoint
from studio.engine.models import (
    INVALID,
    NOT_DOWNLOADED,
    PARTIAL,
    READY,
    DownloadCancelled,
    DownloadError,
    ModelError,
)

REPO = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"  # a known id, served with tiny-checkpoint content
README = b"# A tiny Qwen3-TTS checkpoint served by the test suite's fake hub\n"


def _repo_files(folder: Path) -> dict[str, bytes]:
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    # Real repos carry these two as well; the manager downloads every file of the repo.
    files["README.md"] = README
    files[".gitattributes"] = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    return files


class FakeHub:
    """A local stand-in for huggingface.co. Knobs: throttle, ranges, blobs, corrupt, drop_after."""

    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.repos = repos
        self.served: Counter[str] = Counter()  # file path -> body bytes sent
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.throttle: float | None = None  # bytes per second for file bodies
        self.ranges = True  # False: ignore Range headers like a dumb proxy
        self.blobs = True  # False: the listing carries names only, like an old mirror
        self.corrupt: set[str] = set()  # paths served with one byte flipped
        self.drop_after: dict[str, int] = {}  # path -> bytes after which the next body of it breaks off, once
        self._lock = threading.Lock()
        self._sending = 0  # file bodies being written right now
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                hub._handle(self, head=False)

            def do_HEAD(self):
                hub._handle(self, head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval so shutdown() at the end of each test returns at once.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-hub", daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    @property
    def bytes_served(self) -> int:
        return sum(self.served.values())

    def reset_counts(self) -> None:
        """Forget what was served, once bodies still being sent to a client that hung up have stopped."""
        deadline = time.monotonic() + 10
        while self._sending and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            self.served.clear()
            self.requests.clear()

    @staticmethod
    def is_lfs(path: str) -> bool:
        return path.endswith(".safetensors")

    def commit(self, repo_id: str) -> str:
        digest = hashlib.sha1()
        for path, data in sorted(self.repos[repo_id].items()):
            digest.update(path.encode() + hashlib.sha256(data).digest())
        return digest.hexdigest()

    # --- request handling ---

    def _handle(self, request: BaseHTTPRequestHandler, *, head: bool) -> None:
        url = urlsplit(request.path)
        path = unquote(url.path)
        with self._lock:
            self.requests.append((request.command, path, request.headers.get("Range")))
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        cdn = re.fullmatch(r"/cdn/([0-9a-f]{64})/(.+)", path)
        if api:
            return self._listing(request, api.group(1), blobs="blobs=true" in url.query.lower())
        if resolve and resolve.group(1) in self.repos and resolve.group(3) in self.repos[resolve.group(1)]:
            repo_id, file_path = resolve.group(1), resolve.group(3)
            data = self.repos[repo_id][file_path]
            if self.is_lfs(file_path):
                # The real hub answers LFS files with a 302 to its CDN, naming the linked size and sha256.
                request.send_response(302)
                request.send_header("Location", f"/cdn/{hashlib.sha256(data).hexdigest()}/{file_path}")
                request.send_header("X-Linked-Size", str(len(data)))
                request.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                request.send_header("X-Repo-Commit", self.commit(repo_id))
                request.send_header("Content-Length", "0")
                request.end_headers()
                return None
            return self._body(request, file_path, data, head=head, etag=_git_blob_id(data))
        if cdn:
            for files in self.repos.values():
                data = files.get(cdn.group(2))
                if data is not None and hashlib.sha256(data).hexdigest() == cdn.group(1):
                    return self._body(request, cdn.group(2), data, head=head, etag=cdn.group(1))
        return self._error(request, 404, "Entry not found")

    def _listing(self, request, repo_id: str, *, blobs: bool) -> None:
        if repo_id not in self.repos:
            # The real hub says 401 for a repo it does not have (it will not confirm private ones).
            return self._error(request, 401, "Repository Not Found")
        siblings = []
        for path, data in sorted(self.repos[repo_id].items()):
            sibling = {"rfilename": path}
            if blobs and self.blobs:
                sibling["size"] = len(data)
                if self.is_lfs(path):
                    sibling["blobId"] = hashlib.sha1(path.encode()).hexdigest()  # the pointer file's id
                    sibling["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                else:
                    sibling["blobId"] = _git_blob_id(data)
            siblings.append(sibling)
        body = json.dumps({"_id": "x", "id": repo_id, "sha": self.commit(repo_id), "siblings": siblings}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _error(self, request, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("X-Error-Message", message)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _body(self, request, path: str, data: bytes, *, head: bool, etag: str) -> None:
        if path in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        range_header = request.headers.get("Range")
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and self.ranges:
            start = int(match.group(1))
            if start >= len(data):
                request.send_response(416)
                request.send_header("Content-Range", f"bytes */{len(data)}")
                request.send_header("Content-Length", "0")
                request.end_headers()
                return
            request.send_response(206)
            request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            request.send_response(200)
        request.send_header("Content-Length", str(len(data) - start))
        request.send_header("ETag", f'"{etag}"')
        request.send_header("Accept-Ranges", "bytes")
        request.end_headers()
        if head:
            return
        with self._lock:
            self._sending += 1
            drop_at = self.drop_after.pop(path, None)
        try:
            piece = 16384
            for offset in range(start, len(data), piece):
                block = data[offset:offset + piece]
                if drop_at is not None and offset + len(block) > drop_at:
                    # The connection breaks off mid-body: what was sent stays sent, then the socket closes.
                    request.wfile.write(block[:max(0, drop_at - offset)])
                    request.wfile.flush()
                    with self._lock:
                        self.served[path] += max(0, drop_at - offset)
                    request.close_connection = True
                    request.connection.shutdown(socket.SHUT_RDWR)
                    return
                try:
                    request.wfile.write(block)
                    request.wfile.flush()
                except OSError:  # the client hung up (a cancel): stop counting
                    return
                with self._lock:
                    self.served[path] += len(block)
                if self.throttle:
                    time.sleep(len(block) / self.throttle)
        finally:
            with self._lock:
                self._sending -= 1


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def models_root(tmp_path, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv(models.MODELS_ENV, str(root))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return root


@pytest.fixture
def repo_files(tiny_checkpoints):
    return _repo_files(tiny_checkpoints["custom_voice"])


@pytest.fixture
def hub(repo_files):
    with FakeHub({REPO: repo_files, "someone/tiny-tts": repo_files}) as server:
        yield server


def _entry(name: str):
    return next(e for e in models.list_models() if e.name == name)


def _assert_same_files(folder: Path, files: dict[str, bytes]) -> None:
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert on_disk == set(files) | {models.MANIFEST}
    for path, data in files.items():
        assert (folder / path).read_bytes() == data, path


# --- the table, capabilities, memory ----------------------------------------------------------


def test_known_models_table():
    ids = [m.repo_id for m in models.KNOWN_MODELS]
    assert ids == [
        "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign",
        "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
        "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
        "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
        "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
        "Qwen/Qwen3-TTS-Tokenizer-12Hz",
    ]
    by_id = {m.repo_id: m for m in models.KNOWN_MODELS}
    honours = {i: m.honours_emotions for i, m in by_id.items()}
    assert honours == {
        "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign": True,
        "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice": True,
        "Qwen/Qwen3-TTS-12Hz-1.7B-Base": False,
        "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice": False,
        "Qwen/Qwen3-TTS-12Hz-0.6B-Base": False,
        "Qwen/Qwen3-TTS-Tokenizer-12Hz": None,
    }
    # The approximate sizes the manager advertises (see the derivation in models/catalogue.py).
    for model in by_id.values():
        expected = {"1b7": 4.5e9, "0b6": 2.5e9, None: 0.7e9}[model.size]
        assert model.download_bytes == pytest.approx(expected, rel=0.05), model.repo_id


def test_loader_uses_the_same_capability_table():
    def info(model_type, size):
        return ModelInfo(source="x", folder="x", model_type=model_type, size=size, languages=(), speakers=(),
                         sample_rate=24000, device="cpu", dtype="float32", attention="sdpa", parameters=1, revision="r")

    for model_type in ("voice_design", "custom_voice", "base"):
        for size in ("1b7", "0b6"):
            assert info(model_type, size).instruct_honoured == models.instruct_honoured(model_type, size)
    assert not models.instruct_support("custom_voice", "0b6").honoured
    assert "reference clips" in models.instruct_support("base", "1b7").reason


def test_vram_estimate_follows_the_documented_formula():
    big = models.known_model("Qwen/Qwen3-TTS-12Hz-1.7B-Base")
    kv = 2 * 28 * 8 * 128 * 2 * 4096  # K and V, layers, KV heads, head_dim, bf16 bytes, positions
    assert models.estimate_vram_bytes(big.parameters, "bfloat16") == int(big.parameters * 2 * 1.2) + kv
    assert 5e9 < models.estimate_vram_bytes(big.parameters, "bfloat16") < 6e9  # one model fits a 12 GB card
    assert models.estimate_vram_bytes(big.parameters, "float32") > 2 * int(big.parameters * 2 * 1.2)
    tokenizer = models.known_model("Qwen/Qwen3-TTS-Tokenizer-12Hz")
    assert models.estimate_vram_bytes(tokenizer.parameters, "bfloat16", kv=None) == int(tokenizer.parameters * 2 * 1.2)
    assert models.pick_precision("cuda:0") == "bfloat16" and models.pick_precision("cpu") == "float32"
    with pytest.raises(ValueError, match="unknown dtype"):
        models.estimate_vram_bytes(1, "int3")


def test_count_parameters_reads_safetensors_headers(tiny_checkpoints):
    from safetensors.numpy import load_file

    folder = tiny_checkpoints["custom_voice"]
    expected = sum(t.size for path in folder.rglob("*.safetensors") for t in load_file(path).values())
    assert models.count_parameters(folder) == expected > 0


def test_models_folder_location(tmp_path, monkeypatch):
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    assert models.models_dir() == Path(os.environ["XDG_DATA_HOME"]) / "qwen-tts-studio" / "models"
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path / "big-disk"))
    expected = tmp_path / "big-disk" / "Qwen--Qwen3-TTS-12Hz-1.7B-Base"
    assert models.model_folder("Qwen/Qwen3-TTS-12Hz-1.7B-Base") == expected
    for bad in ("Qwen3-TTS", "a/b/c", "../x", "Qwen/../x", "", "Qwen/ x"):
        with pytest.raises(ModelError, match="not a hub repo id"):
            models.model_folder(bad)


def test_nothing_downloaded_lists_known_models(models_root):
    entries = models.list_models()
    assert [e.name for e in entries] == [m.repo_id for m in models.KNOWN_MODELS]
    assert all(e.state == NOT_DOWNLOADED and e.bytes_on_disk == 0 for e in entries)
    assert all(e.vram_bytes() and e.download_bytes and not e.download_bytes_exact for e in entries)


# --- download ---------------------------------------------------------------------------------


def test_download_reports_progress_and_the_result_loads(models_root, hub, repo_files):
    events = []
    folder = models.download_model(REPO, progress=events.append, endpoint=hub.endpoint, chunk_size=64 << 10,
                                   progress_interval=0)
    total = sum(len(d) for d in repo_files.values())
    assert folder == models_root / "Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice"
    _assert_same_files(folder, repo_files)
    assert hub.bytes_served == total

    done = [e.bytes_done for e in events]
    assert done == sorted(done), "bytes done went backwards"
    assert events[0].phase == "listing"
    assert events[-1].phase == "done" and events[-1].bytes_done == events[-1].bytes_total == total
    assert events[-1].files_done == events[-1].files_total == len(repo_files)
    downloading = [e for e in events if e.phase == "downloading"]
    assert len(downloading) > 10 and {e.file for e in downloading} >= {"model.safetensors", "config.json"}
    assert all(e.bytes_per_second >= 0 for e in events)

    # LFS files came through the CDN redirect; small files straight from resolve, at the listed commit.
    commit = hub.commit(REPO)
    assert ("GET", f"/{REPO}/resolve/{commit}/config.json", None) in hub.requests
    assert any(path.startswith("/cdn/") and path.endswith("/model.safetensors") for _, path, _ in hub.requests)

    entry = _entry(REPO)
    assert entry.state == READY and entry.reason == ""
    assert entry.bytes_on_disk >= total and entry.download_bytes == total and entry.download_bytes_exact
    assert entry.parameters == models.count_parameters(folder)
    assert models.local_folder_for(REPO) == folder
    validate_checkpoint(folder)

    from studio.engine.loader import load_model

    loaded = load_model(entry.source, device="cpu", cpu_threads=2)
    assert loaded.info.model_type == "custom_voice" and "serena" in loaded.info.speakers

    # Downloading a ready model again fetches nothing.
    before = hub.bytes_served
    assert models.download_model(REPO, endpoint=hub.endpoint) == folder
    assert hub.bytes_served == before


def test_cancel_leaves_a_partial_that_resumes_without_refetching(models_root, hub, repo_files):
    cancel = threading.Event()
    big = "model.safetensors"

    def stop_inside_the_big_file(event):
        if event.file == big and event.phase == "downloading" and event.bytes_done > 0:
            on_disk = (staging / (big + ".part"))
            if on_disk.is_file() and on_disk.stat().st_size >= 200_000:
                cancel.set()

    staging = models_root / ".Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice.download"
    with pytest.raises(DownloadCancelled, match="download it again to resume"):
        models.download_model(REPO, progress=stop_inside_the_big_file, cancel=cancel, endpoint=hub.endpoint,
                              chunk_size=32 << 10, progress_interval=0)
    part = staging / (big + ".part")
    assert part.is_file() and 0 < part.stat().st_size < len(repo_files[big])
    assert not (models_root / "Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice").exists()  # never looks ready
    entry = _entry(REPO)
    assert entry.state == PARTIAL and entry.bytes_on_disk > 0
    kept = sum((staging / p).stat().st_size for p in repo_files if (staging / p).is_file()) + part.stat().st_size

    hub.reset_counts()
    events = []
    folder = models.download_model(REPO, progress=events.append, endpoint=hub.endpoint, progress_interval=0)
    total = sum(len(d) for d in repo_files.values())
    assert hub.bytes_served == total - kept, "bytes kept from the first attempt were fetched again"
    ranged = [r for _, path, r in hub.requests if path.endswith(big) and r]
    assert ranged and ranged[0].startswith("bytes=") and int(ranged[0][6:-1]) > 0
    assert events[0].phase == "listing" and events[-1].bytes_done == total
    assert [e.bytes_done for e in events] == sorted(e.bytes_done for e in events)
    _assert_same_files(folder, repo_files)
    assert not staging.exists() and _entry(REPO).state == READY


def test_resume_through_a_server_that_ignores_range(models_root, hub, repo_files):
    cancel = threading.Event()
    staging = models_root / ".someone--tiny-tts.download"

    def stop(event):
        part = staging / "model.safetensors.part"
        if part.is_file() and part.stat().st_size > 0:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        models.download_model("someone/tiny-tts", progress=stop, cancel=cancel, endpoint=hub.endpoint,
                              chunk_size=32 << 10, progress_interval=0)
    hub.ranges = False
    folder = models.download_model("someone/tiny-tts", endpoint=hub.endpoint)
    _assert_same_files(folder, repo_files)
    # An unknown repo id that was downloaded is listed too.
    entry = _entry("someone/tiny-tts")
    assert entry.state == READY and not entry.known and entry.model_type == "custom_voice"


def test_listing_without_blob_metadata_falls_back_to_head(models_root, hub, repo_files):
    hub.blobs = False
    folder = models.download_model(REPO, endpoint=hub.endpoint)
    _assert_same_files(folder, repo_files)
    # One HEAD per file at its resolve URL (an LFS file's HEAD then follows the relative redirect to the CDN).
    heads = [path for method, path, _ in hub.requests if method == "HEAD" and "/resolve/" in path]
    assert len(heads) == len(repo_files)
    manifest = json.loads((folder / models.MANIFEST).read_text())
    by_path = {f["path"]: f for f in manifest["files"]}
    # Sizes and hashes came from X-Linked-Size / X-Linked-Etag (LFS) and ETag (plain files).
    assert by_path["model.safetensors"]["sha256"] == hashlib.sha256(repo_files["model.safetensors"]).hexdigest()
    assert by_path["config.json"]["blob_id"] == _git_blob_id(repo_files["config.json"])


def test_damaged_bytes_from_the_server_are_rejected(models_root, hub, repo_files):
    hub.corrupt = {"speech_tokenizer/model.safetensors"}
    with pytest.raises(DownloadError, match=r"speech_tokenizer/model.safetensors arrived damaged twice") as caught:
        models.download_model(REPO, endpoint=hub.endpoint)
    assert "\n" not in str(caught.value)
    assert _entry(REPO).state == PARTIAL
    staging = models_root / ".Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice.download"
    assert not (staging / "speech_tokenizer/model.safetensors").exists()  # never renamed into place
    finished = {p for p in repo_files if (staging / p).is_file()}
    assert finished
    hub.corrupt = set()
    hub.reset_counts()
    folder = models.download_model(REPO, endpoint=hub.endpoint)
    # The damaged file and the ones never reached were fetched; the finished ones were not.
    assert set(hub.served) == set(repo_files) - finished
    _assert_same_files(folder, repo_files)


def test_a_damaged_finished_model_is_detected_and_repaired(models_root, hub, repo_files):
    folder = models.download_model(REPO, endpoint=hub.endpoint)
    weights = folder / "speech_tokenizer" / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(1000)
    entry = _entry(REPO)
    assert entry.state == INVALID
    assert "speech_tokenizer/model.safetensors is 1000 bytes, expected" in entry.reason
    assert models.local_folder_for(REPO) is None

    (folder / "config.json").unlink()
    assert "missing config.json" in _entry(REPO).reason

    hub.reset_counts()
    models.download_model(REPO, endpoint=hub.endpoint)
    assert set(hub.served) == {"speech_tokenizer/model.safetensors", "config.json"}
    _assert_same_files(folder, repo_files)
    assert _entry(REPO).state == READY


def test_offline_is_one_clear_line(models_root):
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        models.download_model(REPO, endpoint=closed_port_endpoint())
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{REPO}: cannot reach http://127.0.0.1:")
    assert "register a local checkpoint folder" in message
    assert time.monotonic() - started < 5
    assert _entry(REPO).state == NOT_DOWNLOADED


def test_unknown_repo_and_offline_mode(models_root, hub, monkeypatch):
    with pytest.raises(DownloadError, match=r"^nobody/nothing: no such model on .* \(HTTP 401\)"):
        models.download_model("nobody/nothing", endpoint=hub.endpoint)
    with pytest.raises(ModelError, match="not a hub repo id"):
        models.download_model("not a repo", endpoint=hub.endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        models.download_model(REPO, endpoint=hub.endpoint)
    assert hub.bytes_served == 0


def test_unsafe_paths_in_the_file_list_are_refused(models_root, hub):
    hub.repos["evil/repo"] = {"../escape.txt": b"x", "config.json": b"{}"}
    with pytest.raises(DownloadError, match="unsafe path"):
        models.download_model("evil/repo", endpoint=hub.endpoint)
    assert not (models_root.parent / "escape.txt").exists()


def test_a_second_download_of_the_same_model_is_refused_while_one_runs(models_root, hub):
    hub.throttle = 2_000_000
    errors = []
    started = threading.Event()
    cancel = threading.Event()

    def first():
        try:
            models.download_model(REPO, endpoint=hub.endpoint, cancel=cancel,
                                  progress=lambda e: started.set() if e.phase == "downloading" else None)
        except DownloadCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(10)
    with pytest.raises(ModelError, match="cannot download it now"):
        models.download_model(REPO, endpoint=hub.endpoint)
    with pytest.raises(ModelError, match="cannot delete it now"):
        models.delete_model(REPO)
    cancel.set()
    thread.join(10)
    assert not thread.is_alive() and not errors


# --- delete, disk usage, local folders -----------------------------------------------------------


def test_delete_and_disk_usage(models_root, hub, repo_files):
    assert models.disk_usage().models_bytes == 0
    folder = models.download_model(REPO, endpoint=hub.endpoint)
    usage = models.disk_usage()
    total = sum(len(d) for d in repo_files.values())
    assert usage.folder == models_root and usage.models_bytes >= total and usage.free_bytes > 0
    assert usage.by_model[REPO] >= total
    freed = models.delete_model(REPO)
    assert freed >= total and not folder.exists()
    assert _entry(REPO).state == NOT_DOWNLOADED
    assert models.disk_usage().models_bytes == 0
    with pytest.raises(ModelError, match="not downloaded, nothing to delete"):
        models.delete_model(REPO)


def test_register_local_folder(models_root, tiny_checkpoints, tmp_path):
    source = tiny_checkpoints["base"]
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    (broken / "speech_tokenizer" / "model.safetensors").unlink()
    with pytest.raises(EngineError, match=r"missing speech_tokenizer/model.safetensors"):
        models.register_local_folder(broken)
    with pytest.raises(EngineError, match=r"no config.json"):
        models.register_local_folder(tmp_path)
    with pytest.raises(ModelError, match="no such folder"):
        models.register_local_folder(tmp_path / "nope")
    assert models.registered_folders() == []

    entry = models.register_local_folder(source)
    assert entry.origin == "local" and entry.state == READY and entry.model_type == "base"
    assert entry.honours_emotions is False and entry.vram_bytes() > 0
    models.register_local_folder(source)  # twice is once
    assert models.registered_folders() == [source.resolve()]
    listed = models.list_models()[-1]
    assert listed.name == str(source.resolve()) and listed.state == READY

    assert models.forget_local_folder(source) and not models.forget_local_folder(source)
    assert source.is_dir() and models.registered_folders() == []


def test_a_repo_that_is_not_a_checkpoint_downloads_but_is_not_ready(models_root, hub):
    hub.repos["someone/not-a-model"] = {"config.json": b'{"model_type": "bert"}', "empty.txt": b"", "README.md": b"hi"}
    folder = models.download_model("someone/not-a-model", endpoint=hub.endpoint)
    assert (folder / "empty.txt").read_bytes() == b""
    entry = _entry("someone/not-a-model")
    assert entry.state == INVALID and "not a Qwen3-TTS checkpoint" in entry.reason


def test_a_dropped_connection_is_resumed_within_the_same_download(models_root, hub, repo_files):
    # The server breaks off the first body of model.safetensors after 100 kB; the same download_model call
    # continues it with a Range request from what reached the disk, and nothing is fetched twice.
    hub.drop_after = {"model.safetensors": 100_000}
    folder = models.download_model(REPO, endpoint=hub.endpoint, chunk_size=16 << 10)
    assert not hub.drop_after, "the connection was never dropped"
    _assert_same_files(folder, repo_files)
    # The resolve URL redirects to the CDN; the CDN request is the one that carries bytes.
    ranged = [r for _, path, r in hub.requests if path.startswith("/cdn/") and path.endswith("/model.safetensors")
              and "speech_tokenizer" not in path and r]
    assert len(ranged) == 1 and 0 < int(ranged[0][6:-1]) <= 100_000
    assert hub.served["model.safetensors"] <= len(repo_files["model.safetensors"]) + (16 << 10)
