"""Page 6 of the fine-tune wizard: listen to each epoch's sample and register the voice in the library.

A trained voice is never dropped silently: Done, Cancel or closing the wizard with a finished, exported
voice that is not in the library yet asks whether to add it (FineTuneWizard asks; this page registers).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout

from studio.core.voice import VoiceError, VoiceSpec
from studio.core.voice_library import VoiceLibraryError
from studio.ui.wizard.base import BasePage, WizardContext
from studio.ui.wizard.widgets import ErrorBanner
from training.run_folder import RunFolder, export_dir, read_config


class FinishPage(BasePage):
    def __init__(self, ctx: WizardContext) -> None:
        super().__init__(ctx)
        self.setTitle("Listen and register the voice")
        self.setSubTitle(
            "Each epoch spoke the same sentence: compare them by ear. Register the voice to use it in your "
            "projects (Voices and Cast); Done asks first if you have not."
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
        self.register_button.clicked.connect(self._on_register_button_clicked)
        self.name_edit.textChanged.connect(self._on_name_edit_text_changed)
        ctx.clip_player.playing_changed.connect(self._on_player_playing_changed)

    def _read_run(self) -> None:
        config = read_config(self.ctx.run_dir) if self.ctx.run_dir else {}
        self.speaker = str(config.get("speaker") or "").lower()
        self.export = export_dir(self.ctx.run_dir, config) if self.ctx.run_dir else None

    def default_name(self) -> str:
        return f"{self.speaker} (fine-tuned)"

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        ctx = self.ctx
        self._note_playback_availability(self.play_button, self.playback_note)
        self._read_run()
        self.samples.clear()
        for path in RunFolder.from_saved_config(ctx.run_dir).list_samples():
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
            self.name_edit.setText(self.default_name())
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
            for profile in self.ctx.library.profiles():
                if profile.voice.model and Path(profile.voice.model) == self.export:
                    return profile
        except OSError:
            return None
        return None

    def unregistered_voice(self) -> str | None:
        """The profile name the finished, exported voice would get, when it is not in the library yet."""
        if self.ctx.run_dir is None:
            return None
        self._read_run()
        if self.export is None or not (self.export / "config.json").is_file() or self._registered() is not None:
            return None
        # The name field once this page has been shown (the user may have typed one), else the default.
        return self.name_edit.text().strip() or self.default_name()

    def register_voice(self) -> str | None:
        """Add the exported voice to the library under the name in the field; None, or what went wrong."""
        ctx = self.ctx
        self._read_run()
        name = self.name_edit.text().strip() or self.default_name()
        if self.export is None or not (self.export / "config.json").is_file():
            self.error.show_error("there is no exported checkpoint to register", "finish training first")
            return "there is no exported checkpoint to register"
        try:
            profile = ctx.library.add(
                name,
                VoiceSpec("preset", speaker=self.speaker, model=str(self.export)),
                notes=f"Fine-tuned from {read_config(ctx.run_dir).get('base_model', '?')} in {ctx.run_dir}.",
            )
        except (VoiceLibraryError, VoiceError, OSError) as exc:
            self.error.show_error(str(exc), "choose another name, or check the voice library folder")
            return str(exc)
        self.error.clear_error()
        self.register_button.setEnabled(False)
        self.result.setText(f"Added “{profile.name}” to the voice library. Pick it in Render ▸ Voices and Cast.")
        ctx.registered_profile = profile
        ctx.voice_registered.emit(profile)
        return None

    def _on_register_button_clicked(self) -> None:
        self.register_voice()

    def _on_name_edit_text_changed(self, text: str) -> None:
        if self._registered() is None:
            self.register_button.setEnabled(bool(text.strip()) and bool(self.export and self.export.is_dir()))

    def _on_samples_selection_changed(self) -> None:
        self.play_button.setEnabled(self.ctx.clip_player.available and self.samples.currentItem() is not None)

    def _on_samples_item_activated(self, _item: QListWidgetItem) -> None:
        self._on_play_button_clicked()

    def _on_play_button_clicked(self) -> None:
        player = self.ctx.clip_player
        if player.playing:
            player.stop()
            return
        item = self.samples.currentItem()
        if item is not None:
            self.playback_note.setText(player.play(item.data(Qt.ItemDataRole.UserRole)) or "")

    def _on_player_playing_changed(self, playing: bool) -> None:
        self.play_button.setText("&Stop" if playing else "&Play")
