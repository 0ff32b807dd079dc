"""The JSON-lines progress protocol spoken by every training command (stdlib only).

Each command (``python -m training.validate``, ``training.prepare``, ``training.sft``) writes one JSON
object per line on stdout, flushed after every line, and nothing else there; human-readable logs go to
stderr through ``logging``. The wizard reads stdout line by line with :func:`parse_line`, which returns
None for anything that is not an event, so a stray line printed by a library never breaks the reader.

Every event has:

``event``  one of ``start``, ``progress``, ``step``, ``checkpoint``, ``warning``, ``error``, ``done``
``t``      wall-clock time (Unix seconds, float) when the event was written

and, by kind (fields marked ? may be absent; commands may add fields of their own, readers must
ignore fields they do not know):

``start``       ``what`` (the command: "validate", "prepare", "sft"), ``total`` (items or steps the
                command will work through), ``protocol`` (this protocol's version, an int), and
                command-specific context (``skipped`` for a resumed prepare, ``run_dir``, ...)
``progress``    ``done``, ``total`` (counts, done <= total), ``eta_s`` (estimated seconds left, null
                while unknown), ``item``? (the file or name just finished)
``step``        ``step``, ``total`` (optimizer steps), then training metrics such as ``loss``,
                ``lr``, ``grad_norm``, ``steps_per_s``, ``eta_s``, ``peak_mem_gb``, ``epoch``
``checkpoint``  ``path`` (the saved folder or file), ``step``?
``warning``     ``message`` (one line), ``item``? (the file concerned); the work goes on
``error``       ``message`` (one line naming the file or field), ``hint``? (what to do about it);
                the command exits non-zero after it
``done``        the command's summary (counts, output paths); the last event of a run that finished,
                or that stopped on request (then with ``stopped: true``)

What each command adds:

- validate: ``start`` + ``dataset``, ``layout``; ``warning`` per unusable item (``item`` = its audio
  path); ``done`` + ``report`` (path of validation.json), ``items``, ``usable``, ``hours``,
  ``seconds``. Nothing usable: an ``error`` (exit 2) instead of ``done``, the report still written.
- prepare: ``start`` + ``run_dir``, ``tokenizer``, ``device``, ``skipped`` (already encoded),
  ``to_encode``; a first ``progress`` with ``done`` = ``skipped``; ``warning`` per code file redone;
  ``done`` + ``items``, ``encoded``, ``skipped``, ``frames``, ``seconds``, ``index`` (prepared.jsonl).
  Stopped: ``done`` with ``stopped``, ``encoded`` (items with codes so far), ``items``.

Numbers that are not finite (a NaN loss) are written as null, because JSON has no NaN.

Exit codes: 0 done, 1 internal error (a bug: traceback on stderr), 2 bad input or nothing usable (an
``error`` event and one line on stderr), 3 stopped on request before the end (resumable), 130
interrupted (Ctrl+C).

Graceful stop: the wizard creates ``RUN_DIR/STOP`` (:func:`request_stop`). A command checks it between
units of work (:func:`stop_requested`), finishes the current one, removes the file (a stop request is
used up by the run that honours it, so a restart does not stop at once) and exits with code 3.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

PROTOCOL_VERSION = 1
EVENT_KINDS = ("start", "progress", "step", "checkpoint", "warning", "error", "done")
STOP_FILE = "STOP"

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130

# How one run of a command ended, as a reader of its events tells it (see outcome_of).
FINISHED = "finished"
STOPPED = "stopped"
FAILED = "error"
CRASHED = "crashed"


def _clean(value: Any) -> Any:
    # json.dumps would write NaN/Infinity, which strict JSON readers (and the wizard) reject.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    # numpy scalars and the like: keep the number when it is one, else its text.
    for cast in (int, float):
        try:
            if cast(value) == value:
                return _clean(cast(value))
        except (TypeError, ValueError, OverflowError):
            pass
    return str(value)


class Emitter:
    """Writes protocol events, one flushed JSON line each.

    `stream` defaults to the process's stdout; tests pass a StringIO. A disabled emitter (a non-main
    process of a multi-GPU run) writes nothing. `sink`, if given, also receives every event dict, so
    in-process callers can look at events without parsing.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        sink: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stream = stream
        self.enabled = enabled
        self._sink = sink
        self._clock = clock

    @classmethod
    def for_process(cls, *, enabled: bool = True) -> Emitter:
        """An emitter that owns the process's stdout.

        The protocol keeps a private duplicate of file descriptor 1, and descriptor 1 (with
        sys.stdout) is pointed at stderr. Whatever else prints - a library's banner, a C extension
        writing to fd 1 - then lands in the log instead of between two events.
        """
        sys.stdout.flush()
        private = os.dup(1)
        os.dup2(2, 1)
        stream = os.fdopen(private, "w", encoding="utf-8", buffering=1, closefd=True)
        sys.stdout = sys.stderr
        return cls(stream, enabled=enabled)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        if event not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {event!r}")
        record = {"event": event, "t": round(self._clock(), 3)}
        record.update(_clean(fields))
        if self.enabled:
            stream = self._stream if self._stream is not None else sys.stdout
            stream.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
            stream.flush()
            if self._sink is not None:
                self._sink(record)
        return record

    def start(self, *, total: int, what: str, **extra: Any) -> dict[str, Any]:
        return self.emit("start", what=what, total=total, protocol=PROTOCOL_VERSION, **extra)

    def progress(
        self, done: int, total: int, *, item: str | None = None, eta_s: float | None = None, **extra: Any
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"done": done, "total": total, "eta_s": eta_s}
        if item is not None:
            fields["item"] = item
        return self.emit("progress", **fields, **extra)

    def step(self, step: int, total: int, **metrics: Any) -> dict[str, Any]:
        return self.emit("step", step=step, total=total, **metrics)

    def checkpoint(self, path: str | os.PathLike[str], *, step: int | None = None, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"path": os.fspath(path)}
        if step is not None:
            fields["step"] = step
        return self.emit("checkpoint", **fields, **extra)

    def warning(self, message: str, *, item: str | None = None, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"message": message}
        if item is not None:
            fields["item"] = item
        return self.emit("warning", **fields, **extra)

    def error(self, message: str, *, hint: str | None = None, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"message": message}
        if hint is not None:
            fields["hint"] = hint
        return self.emit("error", **fields, **extra)

    def done(self, **summary: Any) -> dict[str, Any]:
        return self.emit("done", **summary)


def parse_line(text: str | bytes) -> dict[str, Any] | None:
    """The event on one stdout line, or None when the line is not a protocol event."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return None
    return record


def events_in(data: bytes) -> Iterator[dict[str, Any]]:
    """The events among the lines of `data` (a command's stdout, or what of it was saved)."""
    for line in data.split(b"\n"):
        event = parse_line(line)
        if event is not None:
            yield event


@dataclass
class Outcome:
    """How one run of a command ended."""

    status: str  # FINISHED | STOPPED | FAILED | CRASHED
    message: str = ""
    hint: str = ""
    exit_code: int | None = None  # unknown for a process the reader did not start itself
    summary: dict[str, Any] = field(default_factory=dict)  # the done event


def outcome_of(events: Iterable[dict[str, Any]], exit_code: int | None, what: str) -> Outcome:
    """The outcome of a finished command from its events (and exit code, when known).

    Events decide first: `accelerate launch` reports a stop as its own failure (exit 1), and a
    detached process's exit code is not known at all.
    """
    done = error = None
    for event in events:
        if event.get("event") == "done":
            done = event
        elif event.get("event") == "error":
            error = event
    if error is not None:
        return Outcome(FAILED, str(error.get("message") or "failed"), str(error.get("hint") or ""), exit_code)
    if done is not None:
        status = STOPPED if done.get("stopped") else FINISHED
        return Outcome(status, "", "", exit_code, done)
    code = "" if exit_code is None else f" (exit code {exit_code})"
    return Outcome(
        CRASHED,
        f"{what} ended without a result{code}",
        "the log below shows what happened; fix the cause and try again",
        exit_code,
    )


class Eta:
    """Seconds left, from the average rate so far (None until something is done)."""

    def __init__(self, total: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self._clock = clock
        self._started = clock()

    def __call__(self, done: int, *, baseline: int = 0) -> float | None:
        # `baseline`: units that were already done before this run (skipped on resume) cost nothing,
        # so they must not make the rate look faster than it is.
        worked = done - baseline
        if worked <= 0:
            return None
        elapsed = self._clock() - self._started
        return round(elapsed / worked * max(0, self.total - done), 1)


class CommandError(Exception):
    """Bad input the user can fix: becomes an `error` event, one stderr line and exit code 2."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def report_error(emitter: Emitter, prog: str, exc: CommandError) -> int:
    emitter.error(exc.message, hint=exc.hint)
    line = f"{prog}: error: {exc.message}"
    if exc.hint:
        line += f" ({exc.hint})"
    print(line.replace("\n", " "), file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def stop_requested(run_dir: str | os.PathLike[str]) -> bool:
    return (Path(run_dir) / STOP_FILE).exists()


def request_stop(run_dir: str | os.PathLike[str]) -> None:
    (Path(run_dir) / STOP_FILE).touch()


def clear_stop(run_dir: str | os.PathLike[str]) -> None:
    (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)


def setup_logging(verbose: bool = False) -> None:
    """Logs to stderr: stdout belongs to the protocol."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
