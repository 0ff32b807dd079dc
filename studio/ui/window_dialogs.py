"""The main window's dialogs: render settings, voices, models, fine-tuning, self-test, about."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.settings import update_settings
from studio.ui.render_settings import RenderSettingsDialog


class DialogActions:
    """Mixed into MainWindow: opening the dialogs and taking back what they changed."""

    def _keep_machine_settings(self) -> None:
        try:
            update_settings(**self.machine.changes())
        except (OSError, ValueError) as exc:
            self.statusBar().showMessage(f"Settings not saved: {exc}", 5000)

    def edit_render_settings(self) -> bool:
        dialog = RenderSettingsDialog(self.project, self.machine, self)
        if dialog.exec() != RenderSettingsDialog.DialogCode.Accepted:
            return False
        self._keep_machine_settings()
        # Settings live outside the undo stack; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)
        self.refresh_views()
        return True

    def edit_voices(self) -> None:
        from studio.ui.voices_dialog import VoicesDialog

        dialog = VoicesDialog(self.project, self.library, self)
        dialog.design_then_clone_requested.connect(self.design_then_clone)
        dialog.exec()
        if dialog.changed:
            self.undo_stack.resetClean()
            self.setWindowModified(True)
        self.refresh_views()

    def open_finetune_wizard(self) -> None:
        from studio.ui.wizard import FineTuneWizard

        wizard = FineTuneWizard(self, library=self.library)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wizard.voice_registered.connect(self._on_wizard_voice_registered)
        wizard.show()
        self.finetune_wizard = wizard

    def _on_wizard_voice_registered(self, profile) -> None:
        self.statusBar().showMessage(f"Added {profile.name} to the voice library", 5000)

    def manage_models(self) -> None:
        from studio.ui.models_dialog import ModelManagerDialog

        dialog = ModelManagerDialog(self.machine, self, current_model=self.project.render.model)
        dialog.model_chosen.connect(self.use_model)
        dialog.exec()
        # The dialog edits the device in MachineSettings, a per-machine choice kept in the settings file.
        self._keep_machine_settings()
        self.refresh_views()

    def use_model(self, source: str) -> None:
        if source == self.project.render.model:
            return
        self.project.render.model = source
        # Settings live outside the undo stack; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)
        self.refresh_views()
