"""The main window's dialogs: render settings, voices (and rendering a designed voice into a cloned one),
models, fine-tuning."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from studio.core.plan import PlannedSegment
from studio.core.pronunciation import Lexicon, lines_affected
from studio.core.units import count
from studio.core.voice_library import VoiceLibraryError
from studio.engine.render import DONE
from studio.session.checkpoints import MODEL_TYPE_LABELS, choose_checkpoint, installed_checkpoints
from studio.session.design_clone import keep_as_cloned_voice
from studio.session.pipeline import SAMPLE_RATE, RenderJob
from studio.session.render_session import JobEnd
from studio.settings import update_settings
from studio.ui.pronunciation_dialog import PronunciationDialog
from studio.ui.render_settings import RenderSettingsDialog


class DialogActions:
    """Mixed into MainWindow: opening the dialogs and taking back what they changed."""

    def _keep_machine_settings(self) -> None:
        try:
            update_settings(**self.machine.changes())
        except (OSError, ValueError) as exc:
            self.statusBar().showMessage(f"Settings not saved: {exc}", 5000)

    def edit_render_settings(self) -> bool:
        # The temperature greedy decoding replaced, kept for this project while it is open (the file holds 0).
        kept_for, kept = getattr(self, "_sampling_temperature", (None, None))
        dialog = RenderSettingsDialog(self.project, self.machine, self, library=self.library,
                                      sampling_temperature=kept if kept_for is self.project else None)

        def open_voices() -> None:
            # The default voice is chosen in Voices only; its changes stand whether or not these settings
            # are then accepted.
            self.edit_voices()
            dialog.refresh_default_voice()

        dialog.voices_requested.connect(open_voices)
        if dialog.exec() != RenderSettingsDialog.DialogCode.Accepted:
            return False
        self._sampling_temperature = (self.project, dialog.sampling_temperature)
        self._keep_machine_settings()
        # Settings live outside the undo stack; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)
        self.refresh_views()
        return True

    def edit_voices(self) -> bool:
        """Open the Voices dialog; True when it changed the project."""
        from studio.ui.voices_dialog import VoicesDialog

        dialog = VoicesDialog(self.project, self.library, self, script=self.editor.toPlainText())
        dialog.design_then_clone_requested.connect(self.design_then_clone)
        dialog.preview_requested.connect(self.preview_voice)
        # Renders started from the dialog (design -> clone, previews) report back to it while it is open.
        self.voices_dialog = dialog
        try:
            dialog.exec()
        finally:
            self.voices_dialog = None
        if dialog.changed:
            self.undo_stack.resetClean()
            self.setWindowModified(True)
        self.refresh_views()
        return dialog.changed

    def open_finetune_wizard(self) -> None:
        from studio.ui.wizard import FineTuneWizard

        wizard = FineTuneWizard(self, library=self.library)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wizard.voice_registered.connect(self._on_wizard_voice_registered)
        wizard.show()
        self.finetune_wizard = wizard

    def _on_wizard_voice_registered(self, profile) -> None:
        self.statusBar().showMessage(f"Added {profile.name} to the voice library", 5000)

    def edit_pronunciations(self) -> bool:
        """Render → Pronunciation Dictionary…: edit the entries; the lines whose words they change lose their
        audio on screen (their cache keys changed) and render again next time; no other line does."""
        dialog = PronunciationDialog(self.project.pronunciations, self)
        self.pronunciation_dialog = dialog
        if dialog.exec() != PronunciationDialog.DialogCode.Accepted:
            return False
        entries = dialog.entries()
        if entries == self.project.pronunciations:
            return False
        before, after = Lexicon(self.project.pronunciations), Lexicon(entries)
        self.project.pronunciations = entries
        # Outside the undo stack, like the other project settings; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)
        lines = self.model.lines()
        touched = lines_affected([line.text for line in lines], before, after)
        self.session.forget([lines[n] for n in touched])
        self.editor.set_lexicon(after)
        self.refresh_views()
        self._show_mix()
        self._look_up_cached_audio()  # a change undone finds its old audio in the cache again
        self.statusBar().showMessage(
            f"Pronunciation dictionary: {len(entries)} {'entry' if len(entries) == 1 else 'entries'}; "
            f"{count(len(touched), 'line')} with a changed term, rendered anew next time", 8000)
        return True

    def manage_models(self) -> None:
        from studio.ui.models_dialog import ModelManagerDialog

        dialog = ModelManagerDialog(self.machine, self, current_model=self.project.render.model)
        dialog.model_chosen.connect(self.use_model)
        dialog.exec()
        # The dialog edits the device in MachineSettings, a per-machine choice kept in the settings file.
        self._keep_machine_settings()
        self.refresh_views()

    def design_then_clone(self, profile_id: str, sentence: str) -> bool:
        """Render a designed voice once and keep the result as a cloned profile (the clip + sentence)."""
        if self.session.busy:
            self.statusBar().showMessage("A render is already running", 4000)
            return False
        profile = self.library.get(profile_id)
        model = choose_checkpoint(profile.voice, preferred=self.project.render.model, installed=installed_checkpoints())
        if not model:
            QMessageBox.warning(self, "Design → clone", "Install a VoiceDesign model first (Models…), or choose one "
                                                        "for this voice in Voices.")
            return False
        segment = PlannedSegment(index=0, kind="speech", line=1, text=sentence, voice="design",
                                 language=self.project.render.language,
                                 seed=profile.seed if profile.seed is not None else self.project.render.seed)
        job = RenderJob(job_id=self.session.next_job_id(), segments=[segment],
                        voices={"design": profile.voice, None: profile.voice}, models={"design": model, None: model},
                        cache_dir=None, generation=self.project.render.generation,
                        decoder=self.machine.decoder_options())
        self.session.start_detached(job, ("design-clone", profile, sentence))
        self.renderer.submit(job, self._render_machine())
        self.statusBar().showMessage(f"Rendering a reference clip for {profile.name}…")
        self._update_transport()
        return True

    def _finish_design_then_clone(self, end: JobEnd) -> None:
        _, profile, sentence = end.context
        result = end.results[0] if end.results else None
        if end.message or result is None or result.state != DONE:
            reason = end.message or (result.error if result else "cancelled")
            QMessageBox.critical(self, "Design → clone", f"Could not render {profile.name}: {reason}")
            return
        try:
            new = keep_as_cloned_voice(self.library, profile, sentence, result.samples, SAMPLE_RATE)
        except (VoiceLibraryError, OSError) as exc:
            # A rendered reference too short or broken to clone from (the clip check names why).
            QMessageBox.critical(self, "Design → clone", f"Could not keep {profile.name} as a cloned voice: {exc}")
            return
        self.last_cloned_profile = new
        dialog = getattr(self, "voices_dialog", None)
        if dialog is not None:
            dialog.reload(select=new.id)  # the open Voices dialog lists the new voice at once
        if new.warnings:
            QMessageBox.warning(self, "Design → clone", f"Saved {new.name}, but: " + "; ".join(new.warnings))
        self.statusBar().showMessage(f"Saved {new.name} to the voice library")

    def preview_voice(self, profile_id: str, sentence: str) -> bool:
        """Render `sentence` in a library voice, outside the project's mix, and play it in the Voices
        dialog (see _finish_preview)."""
        dialog = getattr(self, "voices_dialog", None)

        def refuse(reason: str) -> bool:
            if dialog is not None:
                dialog.preview_failed(name, reason)
            else:
                self.statusBar().showMessage(f"Could not preview {name}: {reason}", 6000)
            return False

        name = profile_id
        try:
            profile = self.library.get(profile_id)
        except VoiceLibraryError as exc:
            return refuse(str(exc))
        name = profile.name
        if self.session.busy:
            return refuse("a render is already running; try again when it ends")
        model = choose_checkpoint(profile.voice, preferred=self.project.render.model,
                                  installed=installed_checkpoints())
        if not model:
            wanted = MODEL_TYPE_LABELS[profile.voice.model_type]
            return refuse(f"no {wanted} model is installed (Models…), or choose one for this voice (Model…)")
        segment = PlannedSegment(index=0, kind="speech", line=1, text=sentence, voice="preview",
                                 language=self.project.render.language,
                                 seed=profile.seed if profile.seed is not None else self.project.render.seed)
        job = RenderJob(job_id=self.session.next_job_id(), segments=[segment],
                        voices={"preview": profile.voice, None: profile.voice},
                        models={"preview": model, None: model},
                        cache_dir=None, generation=self.project.render.generation,
                        decoder=self.machine.decoder_options())
        self.session.start_detached(job, ("preview", profile, sentence))
        self.renderer.submit(job, self._render_machine())
        self.last_preview_job = job
        self.statusBar().showMessage(f"Rendering a preview of {profile.name}…")
        self._update_transport()
        return True

    def _finish_preview(self, end: JobEnd) -> None:
        _, profile, _sentence = end.context
        dialog = getattr(self, "voices_dialog", None)
        result = end.results[0] if end.results else None
        if end.message or result is None or result.state != DONE:
            reason = end.message or (result.error if result else "cancelled")
            if dialog is not None:
                dialog.preview_failed(profile.name, reason)
            self.statusBar().showMessage(f"Could not preview {profile.name}: {reason}", 6000)
            return
        self.last_preview = result.samples
        if dialog is not None:
            dialog.play_preview(profile.name, result.samples, SAMPLE_RATE)
        self.statusBar().showMessage(f"Rendered a preview of {profile.name}", 4000)

    def _finish_detached(self, end) -> None:
        """A render that was not part of the project's mix has ended: design → clone, or a preview."""
        if end.context and end.context[0] == "preview":
            self._finish_preview(end)
        else:
            self._finish_design_then_clone(end)

    def use_model(self, source: str) -> None:
        if source == self.project.render.model:
            return
        self.project.render.model = source
        # Settings live outside the undo stack; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)
        self.refresh_views()
