"""Page 5 of the fine-tune wizard: train, with a live loss plot, Stop and Resume.

The page follows a detached training process through runner.TrainingRun, so it shows the same thing
whether it started the process itself or was reopened on a run that kept training in the background.

The time left counts down between step events. After the last step of each epoch training.sft speaks
the epoch's sample sentence (it says so only when the sample is written), which on a large model takes
far longer than a step. The page knows from the start event where the epochs end, so it says that a
sample is rendering and holds the countdown until the sample is written: the estimate that came with
the step is for the steps left, and counting it down through the sample would reach zero too early.
The next step brings training.sft's new estimate (elapsed time per step so far, samples included).
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton

from studio.ui.wizard.base import BasePage, WizardContext
from studio.ui.wizard.lossplot import LossPlot
from studio.ui.wizard.runner import TrainingRun
from studio.ui.wizard.widgets import ErrorBanner, LogView, ProgressRow, eta_text
from training.protocol import CRASHED, FINISHED, STOPPED, Outcome
from training.run_folder import (
    RunFolder,
    inspect_run,
    read_checkpoint_info,
    read_config,
    read_losses,
    read_wizard_settings,
)

# How often the time left is redrawn between step events.
ETA_TICK_MS = 1000


class TrainPage(BasePage):
    def __init__(self, ctx: WizardContext) -> None:
        super().__init__(ctx)
        self.setTitle("Train")
        self.setSubTitle(
            "The loss should fall and level off. You can close the wizard and keep training in the background, "
            "then reopen the run folder later. Stop saves a checkpoint; Resume continues from it."
        )
        self.plot = LossPlot()
        self.progress = ProgressRow()
        self.facts = QLabel("")
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stop_button = QPushButton("S&top")
        self.stop_button.setToolTip("Stop after the current step and save a checkpoint")
        self.resume_button = QPushButton("&Resume")
        self.error = ErrorBanner()
        self.log = LogView("Training log")
        self.run = TrainingRun(self)
        self.total = 0
        self.step = 0
        self.outcome: Outcome | None = None
        self.last_checkpoint: str | None = None
        self.export: str | None = None
        self._finished = False
        self._stopping = False
        # Where the epochs end (from the start event), to know when training.sft renders a sample.
        self.steps_per_epoch = 0
        self._samples_on = True
        self.sample_epoch: int | None = None  # the epoch whose sample is rendering now
        # The countdown: the clock time the last estimate reaches zero, and when it was paused.
        self._clock = time.monotonic
        self._eta_deadline: float | None = None
        self._paused_at: float | None = None
        self.eta_timer = QTimer(self)
        self.eta_timer.setInterval(ETA_TICK_MS)
        self.eta_timer.timeout.connect(self._on_eta_timer_timeout)

        buttons = QHBoxLayout()
        buttons.addWidget(self.facts, 1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        grid = QGridLayout(self)
        grid.addWidget(self.plot, 0, 0)
        grid.addWidget(self.progress, 1, 0)
        grid.addLayout(buttons, 2, 0)
        grid.addWidget(self.status, 3, 0)
        grid.addWidget(self.error, 4, 0)
        grid.addWidget(self.log, 5, 0)
        grid.setRowStretch(0, 1)

        self.run.event_received.connect(self._on_run_event_received)
        self.run.log_received.connect(self.log.append)
        self.run.finished.connect(self._on_run_finished)
        self.stop_button.clicked.connect(self._on_stop_button_clicked)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self._sync_buttons()

    @property
    def running(self) -> bool:
        return self.run.following

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        ctx = self.ctx
        if self.run.following:
            self._sync_buttons()
            return
        self.error.clear_error()
        self._finished = False
        self.outcome = None
        state = inspect_run(ctx.run_dir)
        metrics = state.folder.metrics
        # The history is metrics.csv's (training.sft keeps it consistent across resumes); events from
        # a reattached launch then only add what came after it.
        self.plot.load(read_losses(metrics) if metrics.is_file() else [])
        self.step = self.plot.history.last_step
        self.total = self._saved_total(state)
        self._show_progress()
        if state.alive:
            self.log.clear()
            self.status.setText("Reattached to the training running in the background.")
            self.run.attach(ctx.run_dir)
        elif ctx.restoring:
            self.log.clear()
            if state.launch is not None:
                self.run.attach(ctx.run_dir)  # replays the last launch, then reports how it ended
            elif state.finished:
                self._finished = True
                self.export = str(state.export)
                self.status.setText(f"Training finished; the voice is exported to {state.export}.")
            elif state.checkpoints:
                self.progress.set_ended("stopped")
                self.status.setText(f"Stopped at step {self.step}. Resume continues from the newest checkpoint.")
            else:
                self.status.setText("Training has not started yet.")
        else:
            self.start_training()
        self._sync_buttons()

    def _saved_total(self, state) -> int:
        for checkpoint in reversed(state.checkpoints):
            try:
                return int((read_checkpoint_info(checkpoint) or {})["total"])
            except (ValueError, KeyError, TypeError):
                continue
        return 0

    def start_training(self) -> None:
        ctx = self.ctx
        if self.run.following:
            return
        if inspect_run(ctx.run_dir).alive:
            # Another window (or an earlier session) started it: follow that process, never a second one.
            self.log.clear()
            self.run.attach(ctx.run_dir)
            self._sync_buttons()
            return
        self.error.clear_error()
        self.outcome = None
        self._finished = self._stopping = False
        self._reset_countdown()
        self.progress.set_busy("loading the base model…")
        self.status.setText("Starting training…")
        gpus = int(read_wizard_settings(ctx.run_dir).get("gpus") or 1)
        try:
            self.run.start(ctx.run_dir, RunFolder.at(ctx.run_dir).config, processes=gpus)
        except OSError as exc:
            self.progress.set_ended("failed")
            self.error.show_error(f"could not start training: {exc}", "check the run folder can be written")
        self._sync_buttons()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self._finished and not self.run.following

    # --- events ---------------------------------------------------------------------------------------

    def _on_run_event_received(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start" and event.get("what") == "sft":
            self.total = int(event.get("total") or 0)
            resumed = event.get("resumed_from")
            if resumed is None:
                self.plot.clear_points()
            else:
                self.plot.truncate(int(resumed))
            self.step = int(resumed or 0)
            self.steps_per_epoch = int(event.get("steps_per_epoch") or 0)
            self._samples_on = bool(read_config(self.ctx.run_dir).get("sample_every_epoch", True))
            self._reset_countdown()
            if resumed and self._epoch_ends(self.step):
                # A run stopped right after an epoch's last step renders that epoch's sample first.
                epoch = self._epoch_of(self.step)
                if not RunFolder.from_saved_config(self.ctx.run_dir).sample(epoch).is_file():
                    self.sample_epoch = epoch
            self.eta_timer.start()
            self._show_progress()
            where = f"{event.get('device', '?')} ({event.get('precision', '?')})"
            processes = int(event.get("processes") or 1)
            if processes > 1:
                where += f" in {processes} processes"
            text = (
                f"Training {event.get('speaker', '')} on {where}: {event.get('items', '?')} items, "
                f"{event.get('steps_per_epoch', '?')} steps per epoch, {event.get('epochs', '?')} epochs."
            )
            if resumed is not None:
                text += f" Resumed from step {resumed}."
            self.status.setText(text)
        elif kind == "step":
            self.step = int(event.get("step") or 0)
            self.total = int(event.get("total") or self.total)
            self.plot.add(self.step, event.get("loss"))
            eta_s = event.get("eta_s")
            self._eta_deadline = None if eta_s is None else self._clock() + float(eta_s)
            self._paused_at = None
            self.sample_epoch = None
            if self._epoch_ends(self.step):
                self.sample_epoch = self._epoch_of(self.step)
                self._paused_at = self._clock()
            self._show_progress()
            self.facts.setText(self._facts(event))
        elif kind == "checkpoint":
            what = event.get("kind")
            if what == "state":
                self.last_checkpoint = str(event.get("path"))
            elif what == "export":
                self.export = str(event.get("path"))
            elif what == "sample":
                self.log.append(f"sample of epoch {event.get('epoch')}: {event.get('path')}")
                self._end_sample()
        elif kind == "warning":
            self.log.append(f"warning: {event.get('message', '')}")

    def _facts(self, event: dict) -> str:
        parts = [f"epoch {event.get('epoch', '?')}/{event.get('epochs', '?')}"]
        loss = event.get("loss")
        parts.append("loss —" if loss is None else f"loss {loss:.4g}")
        if event.get("lr") is not None:
            parts.append(f"lr {event['lr']:.3g}")
        if event.get("steps_per_s"):
            parts.append(f"{event['steps_per_s']:.2f} steps/s")
        if event.get("peak_mem_gb"):
            parts.append(f"peak {event['peak_mem_gb']:.1f} GB")
        if self.plot.history.nonfinite:
            parts.append(f"{self.plot.history.nonfinite} steps without a finite loss")
        return " · ".join(parts)

    # --- progress and time left --------------------------------------------------------------------------

    def _epoch_ends(self, step: int) -> bool:
        """training.sft renders a sample after `step` (the last step of an epoch, or of the run)."""
        if not self._samples_on or not self.steps_per_epoch or step <= 0:
            return False
        return step % self.steps_per_epoch == 0 or step == self.total

    def _epoch_of(self, step: int) -> int:
        return math.ceil(step / self.steps_per_epoch)

    def _end_sample(self) -> None:
        if self._paused_at is not None and self._eta_deadline is not None:
            # The sample's time was not in the estimate of the steps left: count on from where it was held.
            self._eta_deadline += self._clock() - self._paused_at
        self._paused_at = None
        self.sample_epoch = None
        if self.run.following:
            self._show_progress()

    def _reset_countdown(self) -> None:
        self._eta_deadline = self._paused_at = None
        self.sample_epoch = None

    def eta_s(self) -> float | None:
        """Seconds left as shown now: the last step's estimate, counted down, held while a sample renders."""
        if self._eta_deadline is None:
            return None
        now = self._paused_at if self._paused_at is not None else self._clock()
        return max(0.0, self._eta_deadline - now)

    def _progress_text(self) -> str:
        eta = self.eta_s()
        if self._stopping:
            return "stopping after this step…"
        if self.sample_epoch is not None:
            text = f"rendering the sample of epoch {self.sample_epoch}…"
            if self.step < self.total:
                text += f" (then {eta_text(eta)})"
            return text
        if self.total and self.step >= self.total:
            return "saving the fine-tuned voice…"
        return eta_text(eta)

    def _show_progress(self) -> None:
        if not self.total:
            self.progress.reset("no steps yet")
            return
        self.progress.set_progress(self.step, self.total, None, "steps")
        if self.run.following:
            self.progress.label.setText(self._progress_text())

    def _on_eta_timer_timeout(self) -> None:
        if not self.run.following:
            self.eta_timer.stop()
            return
        if self.total and self.progress.bar.maximum():
            self.progress.label.setText(self._progress_text())

    def _on_run_finished(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._stopping = False
        self.eta_timer.stop()
        self._reset_countdown()
        summary = outcome.summary
        if outcome.status == FINISHED:
            self._finished = True
            self.export = summary.get("export") or self.export
            self.step = int(summary.get("step") or self.step)
            self._show_progress()
            self.progress.set_finished("done")
            self.status.setText(f"Training finished at step {self.step}. The voice is exported to {self.export}.")
        elif outcome.status == STOPPED:
            self.step = int(summary.get("step") or self.step)
            self.total = int(summary.get("total") or self.total)
            saved = summary.get("checkpoint")
            # The bar shows where training stopped (4 / 20), not a full bar.
            self._show_progress()
            self.progress.set_ended("stopped")
            self.status.setText(
                f"Stopped at step {self.step}"
                + (f"; the checkpoint is in {saved}. Resume continues from there." if saved else ".")
            )
        else:
            self._show_progress()
            self.progress.set_ended("failed")
            self.error.show_error(outcome.message, outcome.hint)
            self.status.setText("Fix the cause (Back leads to the settings), then Resume.")
            if outcome.status == CRASHED:
                self.log.set_expanded(True)
        self._sync_buttons()

    # --- buttons ---------------------------------------------------------------------------------------

    def _sync_buttons(self) -> None:
        running = self.run.following
        self.stop_button.setEnabled(running and not self._stopping)
        self.resume_button.setEnabled(not running and not self._finished)
        started = running
        if not running:
            run_dir = self.ctx.run_dir
            started = bool(self.step or (run_dir and inspect_run(run_dir).checkpoints))
        self.resume_button.setText("&Resume" if started else "&Start training")
        self.completeChanged.emit()
        # Going back while training runs would leave a run the settings page could change underneath.
        self._set_back_enabled(not running)

    def request_stop(self) -> None:
        """Stop after the current step (the STOP file); the process saves a checkpoint and exits."""
        if not self.run.following:
            return
        self._stopping = True
        self.run.request_stop()
        self.progress.label.setText("stopping after this step…")
        self._sync_buttons()

    def _on_stop_button_clicked(self) -> None:
        self.request_stop()

    def _on_resume_button_clicked(self) -> None:
        self.start_training()
