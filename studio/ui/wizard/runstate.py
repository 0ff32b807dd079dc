"""What a fine-tuning run folder says about its run, read without Qt.

The wizard never keeps state of its own that the run folder does not also hold, so that closing the
window and reopening the folder later (even from another studio session) shows the same thing:

- ``validation.json`` (training.validate), ``run.json`` (written by the settings page),
  ``prepared.jsonl`` (training.prepare, present once every item is encoded);
- ``metrics.csv`` (training.sft: one row per optimizer step, truncated on resume to the resumed step):
  the loss history the plot is rebuilt from;
- ``events.jsonl`` and ``sft.log``: training.sft's stdout (protocol events) and stderr, which the wizard
  sends straight into these files when it starts training, so they keep growing while no window is
  attached; reattaching reads them from where the latest launch began;
- ``sft.pid``: the latest launch (pid, process start time, command, where its events and log begin),
  written by the wizard. The start time guards against a recycled pid.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.protocol import parse_line

EVENTS_NAME = "events.jsonl"
LOG_NAME = "sft.log"
PID_NAME = "sft.pid"
CONFIG_NAME = "run.json"
REPORT_NAME = "validation.json"
PREPARED_NAME = "prepared.jsonl"

# Outcomes of one launch of a training command.
FINISHED = "finished"
STOPPED = "stopped"
FAILED = "error"
CRASHED = "crashed"


# --- loss history ----------------------------------------------------------------------------------------


class LossHistory:
    """Loss per optimizer step, with an exponential moving average for the smoothed curve.

    The average is TensorBoard's debiased EMA: weight `smoothing` on the past, divided by
    (1 - smoothing ** n) so the curve starts at the first point instead of climbing from zero.
    Non-finite losses (written as null by the protocol) are counted but never plotted: one NaN would
    otherwise poison every later smoothed value.
    """

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.nonfinite = 0
        self._ema = 0.0

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else 0

    def clear(self) -> None:
        self.steps.clear()
        self.losses.clear()
        self.smoothed.clear()
        self.nonfinite = 0
        self._ema = 0.0

    def truncate(self, after_step: int) -> None:
        """Forget steps after `after_step` (a resume redoes them)."""
        keep = next((i for i, s in enumerate(self.steps) if s > after_step), len(self.steps))
        if keep == len(self.steps):
            return
        steps, losses = self.steps[:keep], self.losses[:keep]
        self.clear()
        for step, loss in zip(steps, losses, strict=True):
            self.add(step, loss)

    def add(self, step: int, loss: float | None) -> None:
        if self.steps and step <= self.steps[-1]:
            # The same step again: a reattach replaying what metrics.csv already had (a no-op), or a
            # resume redoing steps a crash lost (the newest value wins, and what came after it goes).
            at = bisect.bisect_left(self.steps, step)
            if at == len(self.steps) - 1 and self.steps[at] == step and self.losses[at] == loss:
                return
            self.truncate(step - 1)
        if loss is None or not math.isfinite(loss):
            self.nonfinite += 1
            return
        self.steps.append(int(step))
        self.losses.append(float(loss))
        self._ema = self.smoothing * self._ema + (1.0 - self.smoothing) * float(loss)
        self.smoothed.append(self._ema / (1.0 - self.smoothing ** len(self.steps)))


def read_metrics(path: Path) -> list[tuple[int, float | None]]:
    """(step, loss) rows of training.sft's metrics.csv; unreadable rows are skipped."""
    rows: list[tuple[int, float | None]] = []
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                step = (row.get("step") or "").strip()
                if not step.isdigit():
                    continue
                try:
                    loss: float | None = float(row.get("loss") or "nan")
                except ValueError:
                    loss = None
                rows.append((int(step), loss if loss is not None and math.isfinite(loss) else None))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return rows


# --- reading protocol lines from bytes -----------------------------------------------------------------


class LineBuffer:
    """Splits a byte stream into lines, holding back a partial last line until its newline arrives.

    Pipes and files are read in arbitrary chunks; a JSON event cut in half must wait for its second
    half rather than be parsed (and lost) as two broken lines. Bytes are decoded per complete line, so
    a multi-byte character split across two reads survives too.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        if not data:
            return []
        data = self._pending + data
        *lines, self._pending = data.split(b"\n")
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]

    def flush(self) -> list[str]:
        """The partial last line of a stream that has ended."""
        rest, self._pending = self._pending, b""
        text = rest.decode("utf-8", "replace").rstrip("\r")
        return [text] if text.strip() else []


def read_from(path: Path, offset: int) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return b""


def file_size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def events_in(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.split(b"\n"):
        event = parse_line(line)
        if event is not None:
            yield event


@dataclass
class Outcome:
    """How one launch of a training command ended."""

    status: str  # FINISHED | STOPPED | FAILED | CRASHED
    message: str = ""
    hint: str = ""
    exit_code: int | None = None  # unknown for a process the wizard did not start itself
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


# --- the training process ----------------------------------------------------------------------------------


def process_start_time(pid: int) -> float | None:
    try:
        import psutil  # comes with accelerate, which training needs anyway
    except ImportError:  # pragma: no cover - only without accelerate
        return None
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def process_alive(pid: int, start_time: float | None) -> bool:
    """Whether `pid` still runs and is the process that was started at `start_time`."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - only without accelerate
        psutil = None
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            if start_time is not None and abs(proc.create_time() - start_time) > 1.0:
                return False  # the pid was recycled for another program
            # A process that ended but was not reaped yet is not training any more.
            return proc.status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
    if sys.platform == "win32":  # pragma: no cover - os.kill(pid, 0) would terminate it on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Launch:
    """One start of training.sft by the wizard, as recorded in RUN_DIR/sft.pid."""

    pid: int
    start_time: float | None
    command: list[str]
    events_offset: int
    log_offset: int
    started: float

    def alive(self) -> bool:
        return process_alive(self.pid, self.start_time)

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "command": self.command,
            "events_offset": self.events_offset,
            "log_offset": self.log_offset,
            "started": self.started,
        }


def read_launch(run_dir: Path) -> Launch | None:
    try:
        data = json.loads((Path(run_dir) / PID_NAME).read_text(encoding="utf-8"))
        return Launch(
            pid=int(data["pid"]),
            start_time=None if data.get("start_time") is None else float(data["start_time"]),
            command=[str(x) for x in data.get("command") or []],
            events_offset=int(data.get("events_offset") or 0),
            log_offset=int(data.get("log_offset") or 0),
            started=float(data.get("started") or 0.0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- the whole folder ----------------------------------------------------------------------------------------


@dataclass
class RunState:
    run_dir: Path
    has_report: bool
    has_config: bool
    prepared: bool
    config: dict[str, Any]
    launch: Launch | None
    alive: bool
    outcome: Outcome | None  # of the latest launch, once it has ended
    checkpoints: list[Path]
    metrics: bool
    export: Path | None  # the exported checkpoint, when there is one

    @property
    def trained(self) -> bool:
        """Training has started at some point (its files are there)."""
        return bool(self.launch or self.checkpoints or self.metrics)

    @property
    def finished(self) -> bool:
        if self.alive or self.export is None:
            return False
        return self.outcome is None or self.outcome.status == FINISHED


def output_dir(run_dir: Path, config: dict[str, Any]) -> Path:
    """training.sft's output folder for this config (RunPaths.for_config without loading the config)."""
    out = config.get("output_dir")
    return Path(run_dir) if not out else Path(run_dir) / str(out)


def export_dir(run_dir: Path, config: dict[str, Any]) -> Path | None:
    speaker = str(config.get("speaker") or "").strip().lower()
    return output_dir(run_dir, config) / "export" / speaker if speaker else None


def read_config(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(run_dir) / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def inspect_run(run_dir: Path) -> RunState:
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    out = output_dir(run_dir, config)
    launch = read_launch(run_dir)
    alive = bool(launch and launch.alive())
    outcome = None
    if launch is not None and not alive:
        data = read_from(run_dir / EVENTS_NAME, launch.events_offset)
        outcome = outcome_of(events_in(data), None, "training")
    checkpoints = sorted(p for p in (out / "checkpoints").glob("step-*") if p.is_dir())
    export = export_dir(run_dir, config)
    if export is not None and not (export / "config.json").is_file():
        export = None
    return RunState(
        run_dir=run_dir,
        has_report=(run_dir / REPORT_NAME).is_file(),
        has_config=bool(config),
        prepared=(run_dir / PREPARED_NAME).is_file(),
        config=config,
        launch=launch,
        alive=alive,
        outcome=outcome,
        checkpoints=checkpoints,
        metrics=(out / "metrics.csv").is_file(),
        export=export,
    )
