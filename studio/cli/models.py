"""`qwen-tts-studio models ...`: list, download, delete and register Qwen3-TTS models.

The work is done by studio.engine.models; this module only parses arguments and prints. Failures are
one line through studio.cli.errors.CliError.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from typing import TextIO

from studio.cli.errors import CliError

_PROG = "qwen-tts-studio models"
_INTERRUPTED = 130


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    """Add `models` (and its actions) to the top-level parser's subcommands."""
    models = subparsers.add_parser(
        "models",
        prog=_PROG,
        help="list, download, delete or register Qwen3-TTS models",
        description="With no ACTION, lists known and local models with their state.",
    )
    models.set_defaults(handler=_cmd_list, json=False)
    # The nested parsers inherit the top-level parser class, so their errors are one line too.
    actions = models.add_subparsers(dest="models_action", metavar="ACTION")

    listing = actions.add_parser(
        "list", prog=f"{_PROG} list", help="known and local models: state, size on disk, VRAM, emotions"
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=_cmd_list)

    download = actions.add_parser(
        "download", prog=f"{_PROG} download", help="download a model from the hub (resumes a partial download)"
    )
    download.add_argument("repo_id", metavar="REPO_ID", help="e.g. Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice")
    download.add_argument("--endpoint", metavar="URL", help="hub address (default: $HF_ENDPOINT or huggingface.co)")
    download.set_defaults(handler=_cmd_download)

    delete = actions.add_parser(
        "delete", prog=f"{_PROG} delete", help="delete a downloaded model, or forget a registered local folder"
    )
    delete.add_argument("model", metavar="REPO_ID_OR_FOLDER")
    delete.set_defaults(handler=_cmd_delete)

    add_local = actions.add_parser(
        "add-local", prog=f"{_PROG} add-local", help="register a checkpoint folder you already have"
    )
    add_local.add_argument("folder", metavar="FOLDER")
    add_local.set_defaults(handler=_cmd_add_local)
    return models


# ---------------------------------------------------------------------------------------------


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _cmd_list(args: argparse.Namespace) -> int:
    from studio.engine.models import PARTIAL, disk_usage, format_bytes, list_models

    entries = list_models()
    usage = disk_usage()
    if args.json:
        payload = {
            "models_folder": str(usage.folder),
            "models_bytes": usage.models_bytes,
            "free_bytes": usage.free_bytes,
            "models": [entry.to_json() for entry in entries],
        }
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    header = ("MODEL", "STATE", "ON DISK", "DOWNLOAD", "VRAM bf16", "EMOTIONS")
    rows = []
    notes = []
    for entry in entries:
        name = entry.name if entry.origin == "hub" else f"{entry.name} (local)"
        state = entry.state
        if entry.state == PARTIAL and entry.download_bytes:
            state = f"partial {100 * entry.bytes_on_disk / entry.download_bytes:.0f}%"
        download = "-"
        if entry.origin == "hub" and entry.download_bytes is not None:
            download = ("" if entry.download_bytes_exact else "~") + format_bytes(entry.download_bytes)
        vram = entry.vram_bytes("bfloat16")
        rows.append((
            name,
            state,
            format_bytes(entry.bytes_on_disk) if entry.bytes_on_disk else "-",
            download,
            "~" + format_bytes(vram) if vram else "-",
            _yes_no(entry.honours_emotions),
        ))
        if entry.reason:
            notes.append(f"{name}: {entry.reason}")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for note in notes:
        print(f"  {note}")
    print(
        f"models folder: {usage.folder} ({format_bytes(usage.models_bytes)} used, "
        f"{format_bytes(usage.free_bytes)} free); sizes marked ~ and VRAM are estimates"
    )
    return 0


class _ProgressLine:
    """One stderr line, rewritten in place with a carriage return."""

    def __init__(self, stream: TextIO, *, min_interval: float = 0.2):
        self.stream = stream
        self.min_interval = min_interval
        self._width = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def show(self, text: str, *, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < self.min_interval:
                return
            self._last = now
            if self.stream.isatty():
                # A line longer than the terminal wraps, and "\r" then rewrites only its last row.
                text = text[: max(20, shutil.get_terminal_size().columns - 1)]
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
            self._width = len(text)

    def end(self, *, keep: bool = True) -> None:
        """Finish the line: keep it (a newline), or wipe it so an error message stands alone."""
        with self._lock:
            if self._width:
                self.stream.write("\n" if keep else "\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0

    def update(self, event) -> None:  # a studio.engine.models.DownloadProgress
        from studio.engine.models import format_bytes, format_duration

        if event.phase == "listing":
            self.show(f"{event.repo_id}: fetching the file list", force=True)
            return
        percent = f" ({100 * event.fraction:.0f}%)" if event.bytes_total else ""
        text = f"{event.repo_id}: {format_bytes(event.bytes_done)} of {format_bytes(event.bytes_total)}{percent}"
        if event.phase == "done":
            self.show(text + ", done", force=True)
            return
        text += f", {format_bytes(event.bytes_per_second)}/s, {format_duration(event.eta_seconds)} left"
        if event.phase == "checking":
            text += ", checking kept bytes"
        if event.file:
            text += f" [{event.files_done + 1}/{event.files_total} {event.file}]"
        self.show(text)


def _cmd_download(args: argparse.Namespace) -> int:
    from studio.engine.loader import EngineError
    from studio.engine.models import READY, DownloadCancelled, download_model, list_models

    cancel = threading.Event()
    line = _ProgressLine(sys.stderr)
    finished = threading.Event()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["folder"] = download_model(args.repo_id, progress=line.update, cancel=cancel,
                                               endpoint=args.endpoint)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
            outcome["error"] = exc
        finally:
            finished.set()

    # The download runs in a worker so Ctrl+C (delivered to the main thread) only sets the cancel
    # event: the worker stops between chunks with its .part file flushed and resumable. The main
    # thread waits on an Event, not Thread.join: on Python 3.11 a join interrupted by Ctrl+C can
    # mark a still-running thread as finished.
    threading.Thread(target=work, name="model-download", daemon=True).start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        cancel.set()
        finished.wait()
    error = outcome.get("error")
    line.end(keep=error is None or isinstance(error, DownloadCancelled))
    if isinstance(error, DownloadCancelled):
        print(str(error), file=sys.stderr)
        return _INTERRUPTED
    if isinstance(error, EngineError):
        raise CliError(str(error)) from None
    if isinstance(error, BaseException):
        raise error
    entry = next((e for e in list_models() if e.origin == "hub" and e.name == args.repo_id), None)
    if entry is not None and entry.state != READY:
        # Every file arrived intact, but the repo is not something the studio can load.
        raise CliError(f"{args.repo_id}: downloaded to {outcome['folder']}, but it is not usable: {entry.reason}")
    print(f"{args.repo_id}: ready in {outcome['folder']}")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from pathlib import Path

    from studio.engine.loader import EngineError
    from studio.engine.models import delete_model, forget_local_folder, format_bytes

    if forget_local_folder(Path(args.model)):
        print(f"{args.model}: no longer listed (the folder itself was left alone)")
        return 0
    try:
        freed = delete_model(args.model)
    except EngineError as exc:
        message = str(exc)
        if "nothing to delete" in message:
            message = f"{args.model}: not downloaded and not a registered local folder, nothing to delete"
        raise CliError(message) from None
    print(f"{args.model}: deleted ({format_bytes(freed)} freed)")
    return 0


def _cmd_add_local(args: argparse.Namespace) -> int:
    from studio.engine.loader import EngineError
    from studio.engine.models import register_local_folder

    try:
        entry = register_local_folder(args.folder)
    except EngineError as exc:
        raise CliError(str(exc)) from None
    honours = "honours emotions" if entry.honours_emotions else "ignores emotions"
    print(f"{entry.name}: registered ({entry.model_type} {entry.size}, {honours})")
    return 0
