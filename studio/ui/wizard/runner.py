"""Running the training commands for the wizard: attached QProcesses and a detached training run.

validate and prepare are short and resumable, so they run as ordinary QProcess children: stdout is
read line by line as protocol events, stderr feeds the log view, and closing the wizard kills them.

Training (training.sft) can run for hours, and the user may close the wizard - or the whole studio -
and keep it going. It therefore starts as a detached process in its own session, with its stdout and
stderr going straight into RUN_DIR/events.jsonl and RUN_DIR/sft.log rather than into a pipe the studio
would have to keep draining. The wizard follows those two files (a short timer, reading what was
appended since the last look) whether it started the process itself or reopened the folder later, so
both cases take the same code path. RUN_DIR/sft.pid records the pid and the process start time.

Why not QProcess.startDetached: PySide6 (6.11) binds the member function without its pid out-argument,
so the studio could never tell whether the training it started still runs; subprocess.Popen gives the
pid, and while the wizard that started it is open, the real exit code too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from studio.core.atomic import atomic_write_text
from studio.launch import run_training_command
from training.protocol import CRASHED, Outcome, clear_stop, outcome_of, parse_line, request_stop
from training.run_folder import Launch, RunFolder, process_start_time, read_from, read_launch

# The folder holding the `studio` and `training` packages: put on PYTHONPATH so `-m studio` works
# from a source checkout that was never pip-installed.
_PROJECT_ROOT = Path(__file__).resolve().parents[3]
# How often a detached run's files are read. Steps take a second or more even on a GPU, so a quarter
# second keeps the plot live without the studio ever being busy reading.
TAIL_INTERVAL_MS = 250
# After a stop request, how long an attached step gets to finish its unit of work before it is killed.
_STOP_GRACE_MS = 5000


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


def file_size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


# accelerate launch's options for N processes on this one machine. --multi_gpu is what makes it start
# them at all: without it, on a machine with fewer than two GPUs (or none), it quietly runs one process
# whatever --num_processes says. It starts them through torchrun; on the CPU (training's device "cpu")
# they talk over gloo. Port 0 lets torchrun pick a free port, so two runs never collide on 29500. The
# rest are the defaults accelerate would otherwise fill in with a warning in the log.
_LAUNCH_OPTIONS = ("--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", "0")


def training_command(module: str, args: Sequence[str], *, processes: int = 1) -> list[str]:
    """The command line (program first) that runs training entry point ``module`` with ``args``.

    Every step goes through the studio's own ``--run-training`` dispatch, so a frozen build (which has
    no ``python -m``) and a source checkout start training the same way. Several processes (GPUs) go
    through ``accelerate launch --no_python``, which starts one copy of that same command per process.
    """
    step = run_training_command(module, args)
    if processes > 1:
        return run_training_command(
            "accelerate.commands.launch",
            [*_LAUNCH_OPTIONS, "--num_processes", str(processes), "--no_python", *step],
        )
    return step


def training_environment() -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(_PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    # The log view decodes stderr as UTF-8 whatever the system's locale says.
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _qt_environment() -> QProcessEnvironment:
    env = QProcessEnvironment()
    for key, value in training_environment().items():
        env.insert(key, value)
    return env


class StepRunner(QObject):
    """One attached training command (validate, prepare) in a QProcess."""

    event_received = Signal(dict)
    log_received = Signal(str)
    finished = Signal(object)  # Outcome

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.module = ""
        self.run_dir: Path | None = None
        self._events: list[dict[str, Any]] = []
        self._out = LineBuffer()
        self._err = LineBuffer()
        self._start_error: str | None = None
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._on_kill_timer_timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, module: str, args: Sequence[str], *, run_dir: Path) -> None:
        if self.running:
            raise RuntimeError(f"{self.module} is still running")
        self.module, self.run_dir = module, Path(run_dir)
        self._events, self._out, self._err, self._start_error = [], LineBuffer(), LineBuffer(), None
        # A stop request nobody honoured (the step ended first) would stop this run at once.
        if self.run_dir.is_dir():
            clear_stop(self.run_dir)
        program, *arguments = training_command(module, args)
        process = QProcess(self)
        process.setProgram(program)
        process.setArguments(arguments)
        process.setProcessEnvironment(_qt_environment())
        process.setWorkingDirectory(str(_PROJECT_ROOT))
        process.readyReadStandardOutput.connect(self._on_process_stdout)
        process.readyReadStandardError.connect(self._on_process_stderr)
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error)
        self.process = process
        process.start()

    def request_stop(self) -> None:
        """Ask the command to stop after its current unit of work (the STOP file), killing it if it does not."""
        if not self.running or self.run_dir is None:
            return
        request_stop(self.run_dir)
        self._kill_timer.start(_STOP_GRACE_MS)

    def kill(self) -> None:
        """End the command now and wait for it (it is resumable; at most the item in flight is redone)."""
        self._kill_timer.stop()
        if self.process is not None and self.running:
            self.process.kill()
            self.process.waitForFinished(5000)
        if self.run_dir is not None and self.run_dir.is_dir():
            clear_stop(self.run_dir)

    def _on_kill_timer_timeout(self) -> None:
        if self.running:
            self.kill()

    def _emit_lines(self, lines: list[str], *, stdout: bool) -> None:
        for line in lines:
            event = parse_line(line) if stdout else None
            if event is not None:
                self._events.append(event)
                self.event_received.emit(event)
            elif line.strip():
                # Protocol commands keep stdout for events; anything else there is still worth seeing.
                self.log_received.emit(line)

    def _on_process_stdout(self) -> None:
        if self.process is not None:
            self._emit_lines(self._out.feed(bytes(self.process.readAllStandardOutput().data())), stdout=True)

    def _on_process_stderr(self) -> None:
        if self.process is not None:
            self._emit_lines(self._err.feed(bytes(self.process.readAllStandardError().data())), stdout=False)

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._start_error = self.process.errorString()
            self._finish(None)

    def _on_process_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._on_process_stdout()
        self._on_process_stderr()
        self._emit_lines(self._out.flush(), stdout=True)
        self._emit_lines(self._err.flush(), stdout=False)
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._finish(None if crashed else exit_code)

    def _finish(self, exit_code: int | None) -> None:
        self._kill_timer.stop()
        if self._start_error is not None:
            outcome = Outcome(
                CRASHED, f"could not start {self.module}: {self._start_error}", "check the Python installation"
            )
        else:
            outcome = outcome_of(self._events, exit_code, self.module)
        self.finished.emit(outcome)


# Training processes this studio started and no wizard follows any more. Holding the Popen keeps it
# from being collected while its process runs, and polling it reaps the process once it has ended.
_background: list[subprocess.Popen] = []


def _reap_background() -> None:
    _background[:] = [p for p in _background if p.poll() is None]


class TrainingRun(QObject):
    """training.sft as a detached process, followed through the files it writes in the run folder."""

    event_received = Signal(dict)
    log_received = Signal(str)
    started = Signal()
    finished = Signal(object)  # Outcome

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.launch: Launch | None = None
        self._popen: subprocess.Popen | None = None  # only when this wizard started the process
        self._events_offset = 0
        self._log_offset = 0
        self._out = LineBuffer()
        self._err = LineBuffer()
        self._seen: list[dict[str, Any]] = []
        self._following = False
        self._timer = QTimer(self)
        self._timer.setInterval(TAIL_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

    # --- state ----------------------------------------------------------------------------------------

    @property
    def following(self) -> bool:
        """A process is being followed (it runs, or it ended and its last lines are not read yet)."""
        return self._following

    @property
    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None  # poll() also reaps it, so no zombie is left behind
        return self.launch is not None and self.launch.alive()

    @property
    def pid(self) -> int | None:
        return self.launch.pid if self.launch else None

    # --- starting and reattaching -------------------------------------------------------------------------

    def start(self, run_dir: Path, config: Path, *, processes: int = 1) -> None:
        if self._following:
            raise RuntimeError("training is already running")
        run_dir = Path(run_dir)
        clear_stop(run_dir)
        folder = RunFolder.at(run_dir)
        events, log = folder.events, folder.log
        command = training_command("training.sft", ["--config", str(config)], processes=processes)
        events_offset, log_offset = file_size(events), file_size(log)
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":  # pragma: no cover - no console window, and out of our Ctrl+C group
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            # Its own session: a Ctrl+C in the studio's terminal, or the studio quitting, leaves it running.
            kwargs["start_new_session"] = True
        with events.open("ab") as out, log.open("ab") as err:
            self._popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=str(_PROJECT_ROOT),
                env=training_environment(),
                **kwargs,
            )
        self.launch = Launch(
            pid=self._popen.pid,
            start_time=process_start_time(self._popen.pid),
            command=command,
            events_offset=events_offset,
            log_offset=log_offset,
            started=time.time(),
        )
        atomic_write_text(folder.launch, json.dumps(self.launch.to_json(), indent=1) + "\n")
        self._follow(run_dir, events_offset, log_offset)
        self.started.emit()

    def attach(self, run_dir: Path) -> bool:
        """Follow the latest launch recorded in `run_dir`: replays its events so far, then goes on live.

        Returns whether a launch was found. A launch that has ended is replayed and reported finished
        straight away (its exit code is unknown then; the events tell how it ended).
        """
        _reap_background()
        run_dir = Path(run_dir)
        launch = read_launch(run_dir)
        if launch is None:
            return False
        self._popen = None
        self.launch = launch
        self._follow(run_dir, launch.events_offset, launch.log_offset)
        self._on_timer_timeout()
        return True

    def _follow(self, run_dir: Path, events_offset: int, log_offset: int) -> None:
        self.run_dir = run_dir
        self._events_offset, self._log_offset = events_offset, log_offset
        self._out, self._err, self._seen = LineBuffer(), LineBuffer(), []
        self._following = True
        self._timer.start()

    def detach(self) -> None:
        """Stop following; the process itself keeps running (and keeps writing its files)."""
        self._timer.stop()
        self._following = False
        if self._popen is not None:
            _background.append(self._popen)
        self._popen = None
        _reap_background()

    # --- stopping -------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """training.sft stops after the current step and saves a checkpoint."""
        if self.run_dir is not None:
            request_stop(self.run_dir)

    def terminate(self) -> None:
        """End the process now (the newest saved checkpoint stays; the step in flight is lost)."""
        if not self.alive or self.launch is None:
            return
        if self._popen is not None:
            self._popen.terminate()
            return
        try:
            import psutil

            psutil.Process(self.launch.pid).terminate()
        except Exception:  # noqa: BLE001 - gone already, or not ours: either way nothing to end
            pass

    def wait(self, timeout: float) -> bool:
        """Block until the process has ended (True) or `timeout` seconds pass (False); no events are read."""
        deadline = time.monotonic() + timeout
        while self.alive:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    # --- following --------------------------------------------------------------------------------------------

    def _read_new(self) -> None:
        if self.run_dir is None:
            return
        data = read_from(RunFolder.at(self.run_dir).events, self._events_offset)
        self._events_offset += len(data)
        self._emit(self._out.feed(data), stdout=True)
        data = read_from(RunFolder.at(self.run_dir).log, self._log_offset)
        self._log_offset += len(data)
        self._emit(self._err.feed(data), stdout=False)

    def _emit(self, lines: list[str], *, stdout: bool) -> None:
        for line in lines:
            event = parse_line(line) if stdout else None
            if event is not None:
                self._seen.append(event)
                self.event_received.emit(event)
            elif line.strip():
                self.log_received.emit(line)

    def _on_timer_timeout(self) -> None:
        if not self._following:
            return
        # Liveness first, reading second: whatever the process wrote before it ended is then read.
        alive = self.alive
        self._read_new()
        if alive:
            return
        self._emit(self._out.flush(), stdout=True)
        self._emit(self._err.flush(), stdout=False)
        exit_code = self._popen.returncode if self._popen is not None else None
        self._timer.stop()
        self._following = False
        self._popen = None
        self.finished.emit(outcome_of(self._seen, exit_code, "training"))
