"""Help → Run Self-Test: the installation check of `qwen-tts-studio --self-test`, from the window.

The self-test runs as a child process (the same command a user types), so a check that crashes or
hangs cannot take the editor with it, and the window stays responsive while a tiny model renders.
"""

from __future__ import annotations

import json
import time
from typing import Any

from PySide6.QtCore import QProcess, Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.launch import studio_command

CHECK_TITLES = {
    "python": "Application",
    "torch": "PyTorch",
    "engine": "Rendering (tiny model)",
    "qt": "Window and waveform",
    "audiobook": "Audiobook export",
    "audio": "Sound devices",
}


def summarise_check(name: str, check: dict[str, Any]) -> str:
    """One line a user can read for one check of the self-test report."""
    if not check.get("ok"):
        return check.get("error") or "failed"
    if name == "python":
        build = check.get("build") or {}
        where = f"build {build.get('variant', '?')} {build.get('git_commit', '')[:10]}" if build else "from source"
        return f"Python {check.get('version')}, {where}"
    if name == "torch":
        device = check.get("gpu") or ("CUDA build, no GPU found" if check.get("cuda_build") else "CPU")
        return f"torch {check.get('version')}: {device}"
    if name == "engine":
        return (
            f"a [{check.get('emotion')}] line rendered to {check.get('audio_s')} s of audio in {check.get('chunks')} "
            f"chunks ({check.get('render_s')} s) and was written as WAV"
        )
    if name == "qt":
        return f"{check.get('qt')}, platform {check.get('platform')}"
    if name == "audiobook":
        return (f"stretched to a slower pace ({check.get('stretched_s')} s), written as M4B and MP3 with "
                f"{len((check.get('m4b') or {}).get('chapters', []))} chapter marks")
    if name == "audio":
        outputs = check.get("output_devices") or []
        devices = f"{len(outputs)} output device(s)" if outputs else check.get("note", "no output device")
        portaudio = str(check.get("portaudio", "PortAudio")).split(",")[0]  # the version, not the revision hash
        return f"{portaudio}: {devices}"
    return "passed"


class SelfTestDialog(QDialog):
    """Runs the self-test in a child process and shows each check's result."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Self-Test")
        self.setMinimumSize(760, 360)
        self.report: dict[str, Any] | None = None
        self.status = QLabel("Checking Qt, torch, a tiny model's rendering and the sound devices…")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # the checks report only at the end; a busy bar and the elapsed time
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Check", "Result"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("&Copy Report")
        self.copy_button.setEnabled(False)
        self.copy_button.setToolTip("Copy the full JSON report, e.g. for a bug report")
        self.copy_button.clicked.connect(self.copy_report)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

        self._stdout = b""
        self._stderr = b""
        self._started = 0.0
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._on_clock_timeout)
        self.process: QProcess | None = None

    def start(self) -> None:
        program, *arguments = studio_command("--self-test")
        process = QProcess(self)
        process.setProgram(program)
        process.setArguments(arguments)
        process.readyReadStandardOutput.connect(self._on_process_stdout)
        process.readyReadStandardError.connect(self._on_process_stderr)
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error)
        self.process = process
        self._started = time.monotonic()
        self._clock.start()
        process.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def _on_clock_timeout(self) -> None:
        self.progress.setFormat(f"{time.monotonic() - self._started:.0f} s")
        self.progress.setTextVisible(True)

    def _on_process_stdout(self) -> None:
        self._stdout += bytes(self.process.readAllStandardOutput())

    def _on_process_stderr(self) -> None:
        self._stderr += bytes(self.process.readAllStandardError())

    def _on_process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finish(None, f"the self-test could not be started: {self.process.errorString()}")

    def _on_process_finished(self, _code: int, _status) -> None:
        try:
            report = json.loads(self._stdout.decode("utf-8", "replace"))
        except ValueError:
            tail = [line for line in self._stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            self._finish(None, "the self-test ended without a report" + (f": {tail[-1]}" if tail else ""))
            return
        self._finish(report, None)

    def _finish(self, report: dict[str, Any] | None, error: str | None) -> None:
        self._clock.stop()
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"{time.monotonic() - self._started:.0f} s")
        self.report = report
        if report is None:
            self.status.setText(f"<b>Self-test failed.</b> {error}")
            return
        checks = report.get("checks", {})
        self.table.setRowCount(len(checks))
        for row, (name, check) in enumerate(checks.items()):
            title = QTableWidgetItem(("✔ " if check.get("ok") else "✘ ") + CHECK_TITLES.get(name, name))
            title.setForeground(Qt.GlobalColor.darkGreen if check.get("ok") else Qt.GlobalColor.red)
            self.table.setItem(row, 0, title)
            self.table.setItem(row, 1, QTableWidgetItem(summarise_check(name, check)))
        self.table.resizeRowsToContents()
        if report.get("ok"):
            self.status.setText(f"<b>All {len(checks)} checks passed</b> in {report.get('seconds', 0):.0f} s.")
        else:
            failed = ", ".join(CHECK_TITLES.get(n, n) for n in report.get("failed", []))
            self.status.setText(f"<b>Failed:</b> {failed}. Copy the report to include it in a bug report.")
        self.copy_button.setEnabled(True)

    def copy_report(self) -> None:
        if self.report is not None:
            QApplication.clipboard().setText(json.dumps(self.report, indent=2))

    def done(self, result: int) -> None:
        # Closing the dialog ends a self-test still running; it has nothing to clean up but its temp folder.
        if self.running:
            self.process.kill()
            self.process.waitForFinished(3000)
        self._clock.stop()
        super().done(result)
