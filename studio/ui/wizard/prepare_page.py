"""Page 4 of the fine-tune wizard: training.prepare encodes the usable recordings into 12 Hz codes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout

from studio.engine.models import format_duration
from studio.ui.wizard.base import BasePage, WizardContext
from studio.ui.wizard.commands import prepare_args
from studio.ui.wizard.runner import StepRunner
from studio.ui.wizard.widgets import ErrorBanner, LogView, ProgressRow
from training.protocol import CRASHED, FINISHED, STOPPED, Outcome
from training.run_folder import RunFolder, read_config


class PreparePage(BasePage):
    def __init__(self, ctx: WizardContext) -> None:
        super().__init__(ctx)
        self.setTitle("Prepare the audio")
        self.setSubTitle(
            "Each usable recording is encoded into the 12 Hz speech codes the model learns from. "
            "This is resumable: after a stop, finished items are not encoded again."
        )
        self.progress = ProgressRow()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.retry_button = QPushButton("&Retry")
        self.retry_button.setVisible(False)
        self.error = ErrorBanner()
        self.log = LogView("Details")
        self.runner = StepRunner(self)
        self._ok = False
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.log)
        layout.addStretch(1)
        self.runner.event_received.connect(self._on_runner_event_received)
        self.runner.log_received.connect(self.log.append)
        self.runner.finished.connect(self._on_runner_finished)
        self.retry_button.clicked.connect(self.start)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        ctx = self.ctx
        if ctx.restoring:
            # Reopening shows what the folder holds and starts nothing.
            self._ok = RunFolder.at(ctx.run_dir).index.is_file()
            if self._ok:
                self.progress.set_finished("prepared earlier")
                self.status.setText("All usable items are encoded.")
            else:
                self.status.setText("The audio of this run is not encoded yet (or not completely).")
                self.retry_button.setVisible(True)
            self.completeChanged.emit()
            return
        self.start()

    def start(self) -> None:
        ctx = self.ctx
        if self.runner.running:
            return
        self._ok = False
        self.error.clear_error()
        self.log.clear()
        self.retry_button.setVisible(False)
        self.progress.set_busy("loading the speech tokenizer…")
        self.status.setText("")
        self.completeChanged.emit()
        config = read_config(ctx.run_dir)
        self.runner.start("training.prepare", prepare_args(ctx.run_dir, config), run_dir=ctx.run_dir)

    def cleanupPage(self) -> None:  # noqa: N802 (Qt override)
        self.runner.kill()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self._ok and not self.runner.running

    def _on_runner_event_received(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            skipped = int(event.get("skipped") or 0)
            self.progress.set_progress(skipped, int(event.get("total") or 0), None, "items")
            note = f", {skipped} already done" if skipped else ""
            self.status.setText(f"Encoding {event.get('to_encode', '?')} items on {event.get('device', '?')}{note}.")
        elif kind == "progress":
            self.progress.set_progress(int(event["done"]), int(event["total"]), event.get("eta_s"), "items")
        elif kind == "warning":
            self.log.append(f"warning: {event.get('message', '')}")
        elif kind == "done" and not event.get("stopped"):
            frames, seconds = event.get("frames"), event.get("seconds")
            self.status.setText(
                f"{event.get('items', '?')} items ready: {frames} frames from {format_duration(seconds)} of audio."
            )

    def _on_runner_finished(self, outcome: Outcome) -> None:
        if outcome.status == FINISHED:
            self._ok = True
            self.progress.set_finished("done")
        else:
            self.progress.set_ended("stopped" if outcome.status == STOPPED else "failed")
            if outcome.status == STOPPED:
                self.error.show_error("Preparation was stopped", "Retry continues where it stopped")
            else:
                self.error.show_error(outcome.message, outcome.hint)
            if outcome.status == CRASHED:
                self.log.set_expanded(True)
            self.retry_button.setVisible(True)
        self.completeChanged.emit()
