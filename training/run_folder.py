"""The fine-tuning run folder: where every file of a run lives, what the folder says about the run, and
how its training outputs are deleted. The one place that knows these names.

Light on purpose (standard library, training.protocol and studio.core only; psutil imported when
asked): training.validate, training.prepare and training.sft use it, and so does the fine-tune wizard,
which must not import torch. The wizard keeps no state of its own that the folder does not also hold,
so closing the window and reopening the folder later (even from another studio session) shows the same.

``RUN_DIR/`` (the run folder)::

    .qwen-tts-studio-files  the ledger of files the commands created here (studio.core.owned)
    validation.json         training.validate's report;  audio/, ref/: its 24 kHz mono copies
    codes/                  training.prepare's 12 Hz codes, one safetensors file per item
    prepared.jsonl          training.prepare's index, present once every item is encoded
    .fingerprints.json      speech-tokenizer fingerprints, memoised
    run.json                the run settings (training.config), written by the wizard's settings page
    wizard.json             wizard-side settings run.json cannot hold (the number of GPUs)
    events.jsonl, sft.log   training.sft's stdout (protocol events) and stderr, when the wizard started it
    sft.pid                 the wizard's latest launch: pid, process start time, command, file offsets
    STOP                    a stop request (training.protocol)

``OUTPUT/`` (``output_dir`` of run.json, by default the run folder itself)::

    checkpoints/step-NNNNNN/  training state (training.checkpoint_state), state.json among it
    speaker_embedding.safetensors, metrics.csv, samples/epoch-NNN.wav, tensorboard/, export/<speaker>/
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.owned import LEDGER_NAME
from training.protocol import FINISHED, STOP_FILE, Outcome, events_in, outcome_of

# --- names ---------------------------------------------------------------------------------------------

CONFIG_NAME = "run.json"
WIZARD_NAME = "wizard.json"
REPORT_NAME = "validation.json"
AUDIO_DIR = "audio"
REF_DIR = "ref"
CODES_DIR = "codes"
INDEX_NAME = "prepared.jsonl"
FINGERPRINTS_NAME = ".fingerprints.json"
EVENTS_NAME = "events.jsonl"
LOG_NAME = "sft.log"
PID_NAME = "sft.pid"

CHECKPOINTS_DIR = "checkpoints"
SAMPLES_DIR = "samples"
TENSORBOARD_DIR = "tensorboard"
EXPORT_DIR = "export"
METRICS_NAME = "metrics.csv"
EMBEDDING_NAME = "speaker_embedding.safetensors"
# Inside a checkpoint folder: the JSON part (the tensors' files are training.checkpoint_state's).
STATE_NAME = "state.json"
CHECKPOINT_PATTERN = re.compile(r"^step-(\d{6,})$")
# What an interrupted save or delete leaves beside the checkpoints (training.checkpoint_state).
CHECKPOINT_LEFTOVER = re.compile(r"^\.(step-\d{6,})\.(partial|old|deleting)$")
SAMPLE_PATTERN = re.compile(r"^epoch-(\d{3,})\.wav$")
_TENSORBOARD_PREFIX = "events.out.tfevents."
# An exported speaker folder, and what an interrupted export leaves beside it (training.export).
_EXPORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_EXPORT_LEFTOVER = re.compile(r"^\.[a-z0-9][a-z0-9_-]{0,47}\.(old|.+\.partial)$")
# metrics.csv: one row per optimizer step (training.metrics writes it, the wizard's plot reads it).
METRICS_COLUMNS = (
    "step",
    "epoch",
    "loss",
    "talker_loss",
    "code_predictor_loss",
    "lr",
    "grad_norm",
    "steps_per_s",
    "peak_mem_gb",
    "time",
)


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def sample_name(epoch: int) -> str:
    return f"epoch-{epoch:03d}.wav"


# --- paths -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run: inputs under `run_dir`, training outputs under `output`."""

    run_dir: Path
    output: Path

    @classmethod
    def at(cls, run_dir: str | os.PathLike[str], output_dir: str | None = None) -> RunFolder:
        run_dir = Path(run_dir)
        return cls(run_dir=run_dir, output=run_dir if not output_dir else run_dir / str(output_dir))

    @classmethod
    def for_config(cls, config_path: Path, config: Any) -> RunFolder:
        """The folder of ``run.json`` at `config_path`, parsed into `config` (training.config.SFTConfig)."""
        return cls.at(Path(config_path).parent, config.output_dir)

    @classmethod
    def from_saved_config(cls, run_dir: str | os.PathLike[str]) -> RunFolder:
        """The folder as the run.json it holds lays it out (unchecked: for reading what is there)."""
        out = read_config(run_dir).get("output_dir")
        return cls.at(run_dir, str(out) if out else None)

    # inputs, in the run folder
    @property
    def config(self) -> Path:
        return self.run_dir / CONFIG_NAME

    @property
    def wizard_settings(self) -> Path:
        return self.run_dir / WIZARD_NAME

    @property
    def report(self) -> Path:
        return self.run_dir / REPORT_NAME

    @property
    def ledger(self) -> Path:
        return self.run_dir / LEDGER_NAME

    @property
    def audio(self) -> Path:
        return self.run_dir / AUDIO_DIR

    @property
    def ref(self) -> Path:
        return self.run_dir / REF_DIR

    @property
    def codes(self) -> Path:
        return self.run_dir / CODES_DIR

    @property
    def index(self) -> Path:
        return self.run_dir / INDEX_NAME

    @property
    def fingerprints(self) -> Path:
        return self.run_dir / FINGERPRINTS_NAME

    @property
    def events(self) -> Path:
        return self.run_dir / EVENTS_NAME

    @property
    def log(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def launch(self) -> Path:
        return self.run_dir / PID_NAME

    @property
    def stop_file(self) -> Path:
        return self.run_dir / STOP_FILE

    # training outputs
    @property
    def checkpoints(self) -> Path:
        return self.output / CHECKPOINTS_DIR

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def checkpoint_staging(self, step: int) -> Path:
        """Where a checkpoint is written before it is renamed into place whole."""
        return self.checkpoints / f".{checkpoint_name(step)}.partial"

    @property
    def samples(self) -> Path:
        return self.output / SAMPLES_DIR

    def sample(self, epoch: int) -> Path:
        return self.samples / sample_name(epoch)

    @property
    def tensorboard(self) -> Path:
        return self.output / TENSORBOARD_DIR

    @property
    def metrics(self) -> Path:
        return self.output / METRICS_NAME

    @property
    def embedding(self) -> Path:
        return self.output / EMBEDDING_NAME

    def export(self, speaker: str) -> Path:
        return self.output / EXPORT_DIR / speaker

    # what is there
    def list_checkpoints(self) -> list[tuple[int, Path]]:
        return list_checkpoints(self.checkpoints)

    def list_samples(self) -> list[Path]:
        """The epochs' samples, oldest first."""
        if not self.samples.is_dir():
            return []
        return sorted(p for p in self.samples.iterdir() if SAMPLE_PATTERN.match(p.name) and p.is_file())

    def reset_outputs(self) -> list[Path]:
        """Delete what training wrote (checkpoints, samples, exports, TensorBoard files, metrics.csv) so
        that the next training starts over; returns what was removed.

        Only names training writes are touched: a file of the user's in one of these folders stays,
        and so does the folder holding it. The run's inputs (settings, prepared data, the cached speaker
        embedding, which depends on them alone) stay too.
        """
        removed: list[Path] = []

        def remove(path: Path) -> None:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)

        def sweep(folder: Path, wanted) -> None:
            if not folder.is_dir() or folder.is_symlink():
                return
            for entry in sorted(folder.iterdir()):
                if wanted(entry):
                    remove(entry)
            try:
                folder.rmdir()  # only when nothing of the user's is left in it
            except OSError:
                pass

        sweep(self.checkpoints, lambda p: bool(CHECKPOINT_PATTERN.match(p.name) or CHECKPOINT_LEFTOVER.match(p.name)))
        sweep(self.samples, lambda p: bool(SAMPLE_PATTERN.match(p.name)) and p.is_file())
        sweep(self.tensorboard, lambda p: p.name.startswith(_TENSORBOARD_PREFIX) and p.is_file())
        sweep(self.output / EXPORT_DIR, _is_export)
        if self.metrics.is_file():
            remove(self.metrics)
        return removed


def _is_export(path: Path) -> bool:
    """An exported speaker folder (training.export renames it into place whole), or an export's leftover."""
    if not path.is_dir() or path.is_symlink():
        return False
    if _EXPORT_LEFTOVER.match(path.name):
        return True
    return bool(_EXPORT_NAME.match(path.name)) and (path / "config.json").is_file()


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Checkpoint folders, oldest first (whole or not: a folder is only renamed into place complete, so
    one that is not was damaged later, and resuming says so instead of passing it over in silence)."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = CHECKPOINT_PATTERN.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def read_checkpoint_info(checkpoint: Path) -> dict[str, Any] | None:
    """A checkpoint's state.json (step, total, the run's config, ...), or None when it is unreadable."""
    try:
        data = json.loads((Path(checkpoint) / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """run.json as it is written (unchecked; training.config checks it), {} when absent or unreadable."""
    try:
        data = json.loads((Path(run_dir) / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_wizard_settings(run_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        data = json.loads((Path(run_dir) / WIZARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_losses(path: Path) -> list[tuple[int, float | None]]:
    """(step, loss) rows of metrics.csv; unreadable rows are skipped, non-finite losses are None."""
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


# --- the training process the wizard launched ---------------------------------------------------------------


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


def read_launch(run_dir: str | os.PathLike[str]) -> Launch | None:
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


def read_from(path: Path, offset: int) -> bytes:
    """What `path` holds from byte `offset` on (b"" when it cannot be read)."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return b""


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
    def folder(self) -> RunFolder:
        out = self.config.get("output_dir")
        return RunFolder.at(self.run_dir, str(out) if out else None)

    @property
    def trained(self) -> bool:
        """Training has started at some point (its files are there)."""
        return bool(self.launch or self.checkpoints or self.metrics)

    @property
    def finished(self) -> bool:
        if self.alive or self.export is None:
            return False
        return self.outcome is None or self.outcome.status == FINISHED


def export_dir(run_dir: Path, config: dict[str, Any]) -> Path | None:
    """Where training.sft exports the speaker of this (unchecked) config; None without a speaker."""
    speaker = str(config.get("speaker") or "").strip().lower()
    out = config.get("output_dir")
    return RunFolder.at(run_dir, str(out) if out else None).export(speaker) if speaker else None


def inspect_run(run_dir: str | os.PathLike[str]) -> RunState:
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    out = config.get("output_dir")
    folder = RunFolder.at(run_dir, str(out) if out else None)
    launch = read_launch(run_dir)
    alive = bool(launch and launch.alive())
    outcome = None
    if launch is not None and not alive:
        outcome = outcome_of(events_in(read_from(folder.events, launch.events_offset)), None, "training")
    export = export_dir(run_dir, config)
    if export is not None and not (export / "config.json").is_file():
        export = None
    return RunState(
        run_dir=run_dir,
        has_report=folder.report.is_file(),
        has_config=bool(config),
        prepared=folder.index.is_file(),
        config=config,
        launch=launch,
        alive=alive,
        outcome=outcome,
        checkpoints=[path for _, path in folder.list_checkpoints()],
        metrics=folder.metrics.is_file(),
        export=export,
    )
