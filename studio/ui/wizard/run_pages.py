"""The wizard's last three pages: prepare the codes, train, listen and register the voice.

Like the first pages (pages.py) they read what they show from the run folder. The train page follows
a detached training process through runner.TrainingRun, so it shows the same thing whether it started
the process itself or was reopened on a run that kept training in the background.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from studio.core.voice import VoiceError, VoiceSpec
from studio.core.voices import VoiceLibraryError
from studio.engine.models import format_duration
from studio.ui.wizard.lossplot import LossPlot
from studio.ui.wizard.pages import BasePage, prepare_args, read_wizard_settings
from studio.ui.wizard.runner import StepRunner, TrainingRun
from studio.ui.wizard.runstate import (
    CONFIG_NAME,
    CRASHED,
    FINISHED,
    PREPARED_NAME,
    STOPPED,
    Outcome,
    export_dir,
    inspect_run,
    output_dir,
    read_config,
    read_metrics,
)
from studio.ui.wizard.widgets import ErrorBanner, LogView, ProgressRow

# --- 4. prepare -------------------------------------------------------------------------------------------------


class PreparePage(BasePage):
    def __init__(self) -> None:
        super().__init__()
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
        wizard = self.wiz()
        if wizard.restoring:
            # Reopening shows what the folder holds and starts nothing.
            self._ok = (wizard.run_dir / PREPARED_NAME).is_file()
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
        wizard = self.wiz()
        if self.runner.running:
            return
        self._ok = False
        self.error.clear_error()
        self.log.clear()
        self.retry_button.setVisible(False)
        self.progress.set_busy("loading the speech tokenizer…")
        self.status.setText("")
        self.completeChanged.emit()
        config = read_config(wizard.run_dir)
        self.runner.start("training.prepare", prepare_args(wizard.run_dir, config), run_dir=wizard.run_dir)

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
            self.progress.set_finished("stopped" if outcome.status == STOPPED else "failed")
            if outcome.status == STOPPED:
                self.error.show_error("Preparation was stopped", "Retry continues where it stopped")
            else:
                self.error.show_error(outcome.message, outcome.hint)
            if outcome.status == CRASHED:
                self.log.set_expanded(True)
            self.retry_button.setVisible(True)
        self.completeChanged.emit()


# --- 5. train ---------------------------------------------------------------------------------------------------


class TrainPage(BasePage):
    def __init__(self) -> None:
        super().__init__()
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
        wizard = self.wiz()
        if self.run.following:
            self._sync_buttons()
            return
        self.error.clear_error()
        self._finished = False
        self.outcome = None
        state = inspect_run(wizard.run_dir)
        metrics = output_dir(wizard.run_dir, state.config) / "metrics.csv"
        # The history is metrics.csv's (training.sft keeps it consistent across resumes); events from
        # a reattached launch then only add what came after it.
        self.plot.load(read_metrics(metrics) if metrics.is_file() else [])
        self.step = self.plot.history.last_step
        self.total = self._saved_total(state)
        self._show_progress()
        if state.alive:
            self.log.clear()
            self.status.setText("Reattached to the training running in the background.")
            self.run.attach(wizard.run_dir)
        elif wizard.restoring:
            self.log.clear()
            if state.launch is not None:
                self.run.attach(wizard.run_dir)  # replays the last launch, then reports how it ended
            elif state.finished:
                self._finished = True
                self.export = str(state.export)
                self.status.setText(f"Training finished; the voice is exported to {state.export}.")
            elif state.checkpoints:
                self.status.setText(f"Stopped at step {self.step}. Resume continues from the newest checkpoint.")
            else:
                self.status.setText("Training has not started yet.")
        else:
            self.start_training()
        self._sync_buttons()

    def _saved_total(self, state) -> int:
        for checkpoint in reversed(state.checkpoints):
            try:
                return int(json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))["total"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return 0

    def start_training(self) -> None:
        wizard = self.wiz()
        if self.run.following:
            return
        if inspect_run(wizard.run_dir).alive:
            # Another window (or an earlier session) started it: follow that process, never a second one.
            self.log.clear()
            self.run.attach(wizard.run_dir)
            self._sync_buttons()
            return
        self.error.clear_error()
        self.outcome = None
        self._finished = self._stopping = False
        self.progress.set_busy("loading the base model…")
        self.status.setText("Starting training…")
        gpus = int(read_wizard_settings(wizard.run_dir).get("gpus") or 1)
        try:
            self.run.start(wizard.run_dir, wizard.run_dir / CONFIG_NAME, processes=gpus)
        except OSError as exc:
            self.progress.set_finished("failed")
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
            self._show_progress(event.get("eta_s"))
            self.facts.setText(self._facts(event))
        elif kind == "checkpoint":
            what = event.get("kind")
            if what == "state":
                self.last_checkpoint = str(event.get("path"))
            elif what == "export":
                self.export = str(event.get("path"))
            elif what == "sample":
                self.log.append(f"sample of epoch {event.get('epoch')}: {event.get('path')}")
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

    def _show_progress(self, eta_s: float | None = None) -> None:
        if self.total:
            self.progress.set_progress(self.step, self.total, eta_s, "steps")
        else:
            self.progress.reset("no steps yet")

    def _on_run_finished(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._stopping = False
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
            saved = summary.get("checkpoint")
            self.progress.set_finished("stopped")
            self.status.setText(
                f"Stopped at step {self.step}"
                + (f"; the checkpoint is in {saved}. Resume continues from there." if saved else ".")
            )
        else:
            self.progress.set_finished("failed")
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
            wizard = self.wizard()
            run_dir = self.wiz().run_dir if wizard is not None else None
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


# --- 6. finish --------------------------------------------------------------------------------------------------


class FinishPage(BasePage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Listen and register the voice")
        self.setSubTitle(
            "Each epoch spoke the same sentence: compare them by ear. Register the voice to use it in your "
            "projects (Voices and Cast)."
        )
        self.samples = QListWidget()
        self.samples.setMinimumHeight(120)
        self.play_button = QPushButton("&Play")
        self.playback_note = QLabel("")
        self.playback_note.setStyleSheet("color: #666;")
        self.export_label = QLabel("")
        self.export_label.setWordWrap(True)
        self.export_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.name_edit = QLineEdit()
        self.register_button = QPushButton("Re&gister voice")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.error = ErrorBanner()
        self.speaker = ""
        self.export: Path | None = None

        play_row = QHBoxLayout()
        play_row.addWidget(self.playback_note, 1)
        play_row.addWidget(self.play_button)
        name_label = QLabel("Profile &name:")
        name_label.setBuddy(self.name_edit)
        register_row = QHBoxLayout()
        register_row.addWidget(name_label)
        register_row.addWidget(self.name_edit, 1)
        register_row.addWidget(self.register_button)
        layout = QVBoxLayout(self)
        samples_label = QLabel("&Samples:")
        samples_label.setBuddy(self.samples)
        layout.addWidget(samples_label)
        layout.addWidget(self.samples, 1)
        layout.addLayout(play_row)
        layout.addWidget(self.export_label)
        layout.addLayout(register_row)
        layout.addWidget(self.result)
        layout.addWidget(self.error)

        self.samples.itemSelectionChanged.connect(self._on_samples_selection_changed)
        self.samples.itemActivated.connect(self._on_samples_item_activated)
        self.play_button.clicked.connect(self._on_play_button_clicked)
        self.register_button.clicked.connect(self.register_voice)
        self.name_edit.textChanged.connect(self._on_name_edit_text_changed)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        wizard = self.wiz()
        self._note_playback_availability(self.play_button, self.playback_note)
        config = read_config(wizard.run_dir)
        self.speaker = str(config.get("speaker") or "").lower()
        self.export = export_dir(wizard.run_dir, config)
        self.samples.clear()
        for path in sorted((output_dir(wizard.run_dir, config) / "samples").glob("epoch-*.wav")):
            epoch = path.stem.split("-")[-1].lstrip("0") or "0"
            item = QListWidgetItem(f"Epoch {epoch}  —  {path.name}{self._length(path)}")
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            self.samples.addItem(item)
        if self.samples.count():
            self.samples.setCurrentRow(self.samples.count() - 1)
        self.export_label.setText(f"Exported checkpoint: {self.export}\nSpeaker: {self.speaker}")
        self.error.clear_error()
        existing = self._registered()
        if existing is not None:
            self.name_edit.setText(existing.name)
            self.result.setText(f"Already in the voice library as “{existing.name}”.")
            self.register_button.setEnabled(False)
        else:
            self.name_edit.setText(f"{self.speaker} (fine-tuned)")
            self.result.setText("")
            self.register_button.setEnabled(bool(self.export and (self.export / "config.json").is_file()))
        self._on_samples_selection_changed()

    @staticmethod
    def _length(path: Path) -> str:
        try:
            import soundfile as sf

            return f"  ({sf.info(str(path)).duration:.1f} s)"
        except Exception:  # noqa: BLE001 - a damaged sample is still listed; playing it says what is wrong
            return ""

    def _registered(self):
        if self.export is None:
            return None
        try:
            for profile in self.wiz().library.profiles():
                if profile.voice.model and Path(profile.voice.model) == self.export:
                    return profile
        except OSError:
            return None
        return None

    def register_voice(self) -> None:
        wizard = self.wiz()
        name = self.name_edit.text().strip()
        if self.export is None or not (self.export / "config.json").is_file():
            self.error.show_error("there is no exported checkpoint to register", "finish training first")
            return
        try:
            profile = wizard.library.add(
                name,
                VoiceSpec("preset", speaker=self.speaker, model=str(self.export)),
                notes=f"Fine-tuned from {read_config(wizard.run_dir).get('base_model', '?')} in {wizard.run_dir}.",
            )
        except (VoiceLibraryError, VoiceError, OSError) as exc:
            self.error.show_error(str(exc), "choose another name, or check the voice library folder")
            return
        self.error.clear_error()
        self.register_button.setEnabled(False)
        self.result.setText(f"Added “{profile.name}” to the voice library. Pick it in Render ▸ Voices and Cast.")
        wizard.registered_profile = profile
        wizard.voice_registered.emit(profile)

    def _on_name_edit_text_changed(self, text: str) -> None:
        if self._registered() is None:
            self.register_button.setEnabled(bool(text.strip()) and bool(self.export and self.export.is_dir()))

    def _on_samples_selection_changed(self) -> None:
        self.play_button.setEnabled(self.wiz().clip_player.available and self.samples.currentItem() is not None)

    def _on_samples_item_activated(self, _item: QListWidgetItem) -> None:
        self._on_play_button_clicked()

    def _on_play_button_clicked(self) -> None:
        player = self.wiz().clip_player
        if player.playing:
            player.stop()
            return
        item = self.samples.currentItem()
        if item is not None:
            self.playback_note.setText(player.play(item.data(Qt.ItemDataRole.UserRole)) or "")

    def _on_player_playing_changed(self, playing: bool) -> None:
        self.play_button.setText("&Stop" if playing else "&Play")
