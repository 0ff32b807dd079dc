"""FineTuneWizard: from a folder of recordings to a new speaker in the voice library.

Pages: recordings -> validation report -> settings -> prepare -> train -> listen and register. Each
step is a training command run as a subprocess (see runner); the wizard only reads their events and
the run folder. Training is detached from the wizard so that it can outlive it:

- Closing the wizard while training runs asks whether to stop it (the STOP file: the current step
  finishes and is saved, then the process exits; the wizard waits for that) or to keep it running in
  the background.
- Done, Cancel or closing the wizard once training has exported a voice that is not in the voice
  library yet asks "Add … to your voices?": a trained voice is never dropped without a word.
- ``FineTuneWizard.open_run(run_dir)`` (or "Open an existing run…" on the first page) reattaches to a
  run folder: it replays the pages whose work is already in the folder, lands on the page where the
  run stands, restores the loss plot from metrics.csv and follows the training if it still runs.

A wizard is used once: closing it releases its processes and plot; open a new one to continue.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QEventLoop, Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget, QWizard

from studio.core.voice_library import VoiceLibrary, default_voice_library
from studio.ui.wizard.base import (
    PAGE_DATASET,
    PAGE_FINISH,
    PAGE_PREPARE,
    PAGE_SETTINGS,
    PAGE_TRAIN,
    PAGE_VALIDATION,
    WizardContext,
)
from studio.ui.wizard.commands import default_runs_root
from studio.ui.wizard.dataset_page import DatasetPage
from studio.ui.wizard.finish_page import FinishPage
from studio.ui.wizard.prepare_page import PreparePage
from studio.ui.wizard.settings_page import SettingsPage
from studio.ui.wizard.train_page import TrainPage
from studio.ui.wizard.validation_page import ValidationPage
from studio.ui.wizard.widgets import ClipPlayer
from training.run_folder import RunFolder, RunState, inspect_run

KEEP_TRAINING = "keep"
STOP_TRAINING = "stop"
CANCEL_CLOSE = "cancel"
# After "Kill now", how long to wait for the process to go before giving up on it (it is then left
# running, and the run folder shows it as such when reopened).
_KILL_WAIT_S = 15.0


def page_for(state: RunState) -> int:
    """The page a reopened run continues on."""
    if state.alive:
        return PAGE_TRAIN
    if state.finished:
        return PAGE_FINISH
    if state.trained:
        return PAGE_TRAIN
    if state.prepared and state.has_config:
        return PAGE_PREPARE
    if state.has_config:
        return PAGE_SETTINGS
    if state.has_report:
        return PAGE_VALIDATION
    return PAGE_DATASET


class FineTuneWizard(QWizard):
    """Validate recordings, prepare them, fine-tune a Base model on them and register the new speaker."""

    voice_registered = Signal(object)  # the VoiceProfile added to the library

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        library: VoiceLibrary | None = None,
        runs_root: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FineTuneWizard")
        self.setWindowTitle("Fine-tune a Voice")
        self.ctx = WizardContext(
            library=library if library is not None else default_voice_library(),
            runs_root=Path(runs_root) if runs_root is not None else default_runs_root(),
            clip_player=ClipPlayer(self),
            parent=self,
        )
        self.ctx.open_run_requested.connect(self.attach_run)
        self.ctx.voice_registered.connect(self.voice_registered)
        self._closed = False

        self.dataset_page = DatasetPage(self.ctx)
        self.validation_page = ValidationPage(self.ctx)
        self.settings_page = SettingsPage(self.ctx)
        self.prepare_page = PreparePage(self.ctx)
        self.train_page = TrainPage(self.ctx)
        self.finish_page = FinishPage(self.ctx)
        for page_id, page in (
            (PAGE_DATASET, self.dataset_page),
            (PAGE_VALIDATION, self.validation_page),
            (PAGE_SETTINGS, self.settings_page),
            (PAGE_PREPARE, self.prepare_page),
            (PAGE_TRAIN, self.train_page),
            (PAGE_FINISH, self.finish_page),
        ):
            self.setPage(page_id, page)
        self.setStartId(PAGE_DATASET)
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.setButtonText(QWizard.WizardButton.FinishButton, "&Done")
        self.currentIdChanged.connect(self._on_wizard_current_id_changed)
        self.setMinimumSize(820, 640)
        self.resize(960, 760)

    # --- the run, as the pages share it ---------------------------------------------------------------------

    @property
    def library(self) -> VoiceLibrary:
        return self.ctx.library

    @property
    def runs_root(self) -> Path:
        return self.ctx.runs_root

    @property
    def clip_player(self) -> ClipPlayer:
        return self.ctx.clip_player

    @property
    def dataset(self) -> Path | None:
        return self.ctx.dataset

    @property
    def run_dir(self) -> Path | None:
        return self.ctx.run_dir

    @property
    def restoring(self) -> bool:
        """True while open_run replays the pages of a run that already did their work."""
        return self.ctx.restoring

    @property
    def registered_profile(self):
        return self.ctx.registered_profile

    # --- reopening a run ----------------------------------------------------------------------------------

    @classmethod
    def open_run(
        cls,
        run_dir: str | Path,
        parent: QWidget | None = None,
        *,
        library: VoiceLibrary | None = None,
        runs_root: Path | None = None,
    ) -> FineTuneWizard:
        """A wizard reattached to the run in `run_dir`, on the page where that run stands."""
        wizard = cls(parent, library=library, runs_root=runs_root)
        wizard.attach_run(run_dir)
        return wizard

    def attach_run(self, run_dir: str | Path) -> int:
        """Show the run in `run_dir`: walk the pages it has done and stop where it stands; returns that page."""
        run_dir = Path(run_dir).expanduser().absolute()
        state = inspect_run(run_dir)
        target = page_for(state)
        dataset = None
        try:
            dataset = json.loads(RunFolder.at(run_dir).report.read_text(encoding="utf-8")).get("dataset")
        except (OSError, ValueError, AttributeError):
            pass
        self.ctx.restoring = True
        try:
            self.restart()
            self.dataset_page.set_paths(dataset or "", run_dir)
            # Pages check what is in the folder while restoring, so each next() only shows finished work.
            while self.currentId() != target:
                before = self.currentId()
                self.next()
                if self.currentId() == before:
                    break  # that page's work is not there after all: the user continues from it
        finally:
            self.ctx.restoring = False
        return self.currentId()

    def _on_wizard_current_id_changed(self, page_id: int) -> None:
        # QWizard sets its buttons after a page's initializePage, so the train page's "no Back while
        # training runs" is applied again once the page is current.
        if page_id == PAGE_TRAIN:
            self.train_page._sync_buttons()

    # --- training state -------------------------------------------------------------------------------------

    @property
    def training_running(self) -> bool:
        return self.train_page.run.following

    def ask_close_while_training(self) -> str:
        """KEEP_TRAINING, STOP_TRAINING or CANCEL_CLOSE: what the user wants when closing during training."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Training is running")
        box.setText("Training is still running. Stop it, or keep it running in the background?")
        box.setInformativeText(
            "Stopping saves a checkpoint after the current step; Resume continues from it later. "
            f"A run kept in the background can be reopened from its folder:\n{self.run_dir}"
        )
        keep = box.addButton("&Keep training", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("&Stop training", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep)
        box.exec()
        clicked = box.clickedButton()
        if clicked is keep:
            return KEEP_TRAINING
        if clicked is stop:
            return STOP_TRAINING
        return CANCEL_CLOSE

    def stop_training_and_wait(self) -> bool:
        """Ask training to stop after its step and wait for it, with a Kill button; returns whether it ended."""
        run = self.train_page.run
        if not run.following:
            return True
        self.train_page.request_stop()
        dialog = QProgressDialog(
            "Stopping training after the current step and saving a checkpoint…", "&Kill now", 0, 0, self
        )
        dialog.setWindowTitle("Stopping training")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        loop = QEventLoop()
        run.finished.connect(loop.quit)
        give_up = QTimer()
        give_up.setSingleShot(True)
        give_up.timeout.connect(loop.quit)

        def kill() -> None:
            dialog.setLabelText("Ending the training process…")
            run.terminate()
            give_up.start(int(_KILL_WAIT_S * 1000))

        dialog.canceled.connect(kill)
        dialog.show()
        if run.following:
            loop.exec()
        run.finished.disconnect(loop.quit)
        dialog.close()
        dialog.deleteLater()
        return not run.following

    # --- closing ---------------------------------------------------------------------------------------------

    def reject(self) -> None:
        """Cancel, Escape and the window's close button all come here."""
        if self.training_running:
            choice = self.ask_close_while_training()
            if choice == CANCEL_CLOSE:
                return
            if choice == STOP_TRAINING:
                if not self.stop_training_and_wait():
                    return
            else:
                # The process goes on writing events.jsonl and metrics.csv; open_run picks it up again.
                self.train_page.run.detach()
        elif not self.settle_trained_voice():
            return
        super().reject()

    def accept(self) -> None:
        """Done."""
        if not self.settle_trained_voice():
            return
        super().accept()

    def settle_trained_voice(self) -> bool:
        """Before closing: a finished voice that is not in the library yet is added, or left out, as the
        user says. Returns whether the wizard may close."""
        if self._closed or self.training_running:
            return True
        name = self.finish_page.unregistered_voice()
        if name is None:
            return True
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Add the trained voice?")
        box.setText(f"Add “{name}” to your voices?")
        box.setInformativeText(
            f"Training has finished and exported the voice to\n{self.finish_page.export}\n\n"
            "It is not in your voice library yet, so it cannot be picked in Voices and Cast. "
            "Without it, the voice stays only in the run folder (reopen the run later to add it)."
        )
        add = box.addButton("&Add to voices", QMessageBox.ButtonRole.YesRole)
        box.addButton("Do&n't add", QMessageBox.ButtonRole.NoRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(add)
        box.setEscapeButton(cancel)
        box.exec()
        clicked = box.clickedButton()
        if clicked is cancel:
            return False
        if clicked is not add:
            return True
        problem = self.finish_page.register_voice()
        if problem is None:
            return True
        if self.currentId() == PAGE_TRAIN:
            self.next()  # the last page has the name field to fix it in
        QMessageBox.warning(
            self,
            "Could not add the voice",
            f"“{name}” could not be added to your voices: {problem}\n\n"
            "Fix the cause on this page (another name, or a voice library folder that can be written) and "
            "press Register voice; or close again and choose Don't add.",
        )
        return False

    def done(self, result: int) -> None:
        self.shutdown()
        super().done(result)

    def shutdown(self) -> None:
        """Release what the wizard holds: attached steps are killed (they resume), playback stops, and a
        training still followed is detached (left running). Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        for page in (self.validation_page, self.prepare_page):
            page.runner.kill()
        if self.train_page.run.following:
            self.train_page.run.detach()
        self.ctx.clip_player.stop()
        if self.settings_page.command_dialog is not None:
            self.settings_page.command_dialog.close()
        # pyqtgraph's view must drop its scene before Qt deletes the widgets (see MainWindow.shutdown).
        self.train_page.plot.close()
