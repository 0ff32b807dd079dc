"""The Voices dialog: the voice library on the left, the project's cast on the right."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import CastEntry, Project
from studio.core.reference_clip import check_voice_clips
from studio.core.voice import VoiceError, VoiceSpec
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError, VoiceProfile, profile_file_path
from studio.session.checkpoints import MODEL_TYPE_LABELS, Checkpoint, describe_source, installed_checkpoints

_MODEL_TYPE_FOR_EDITOR_KIND = {"design": "voice_design", "clone": "base", "preset": "custom_voice"}


def _model_name(source: str | None) -> str:
    """How the library list names a voice's model: "VoiceDesign 1.7B", or "automatic model"."""
    if not source:
        return "automatic model"
    described = describe_source(source)
    if described is None:
        return f"{Path(source).name}, not on this machine"
    return described.label


class ModelChoice(QComboBox):
    """The checkpoint a voice renders with: automatic (the best installed one of the right type, decided
    at render time) or one installed checkpoint of that type."""

    def __init__(self, model_type: str, installed: list[Checkpoint], current: str | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        label = MODEL_TYPE_LABELS[model_type]
        fitting = [c for c in installed if c.model_type == model_type]
        automatic = (f"Automatic (the best installed {label} model)" if fitting
                     else f"Automatic (no {label} model is installed yet: see Models…)")
        self.addItem(automatic, None)
        for checkpoint in fitting:
            self.addItem(f"{checkpoint.label}: {checkpoint.source}", checkpoint.source)
        if current and self.findData(current) < 0:
            self.addItem(f"{current} (not installed)", current)
        self.setCurrentIndex(max(0, self.findData(current)) if current else 0)

    @property
    def model(self) -> str | None:
        return self.currentData()

_KINDS = {
    "design": "Designed (VoiceDesign model): describe who speaks",
    "clone": "Cloned (Base model): a reference clip of the speaker",
    "preset": "Preset speaker (CustomVoice model)",
    "finetuned": "Fine-tuned speaker (a checkpoint from the fine-tune wizard)",
}


class ProfileEditor(QDialog):
    """Create one voice profile of a given kind."""

    def __init__(self, kind: str, parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setWindowTitle(_KINDS[kind].split(" (")[0] + " voice")
        form = QFormLayout()
        self.name_edit = QLineEdit()
        form.addRow("&Name:", self.name_edit)
        self.description_edit = QPlainTextEdit()
        self.description_edit.setFixedHeight(64)
        self.speaker_edit = QLineEdit()
        self.model_edit = QLineEdit()
        self.clip_edit = QLineEdit()
        self.ref_text_edit = QLineEdit()
        self.xvector_check = QCheckBox("Speaker embedding only (no transcript needed)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(-1, 2**31 - 1)
        self.seed_spin.setSpecialValueText("not pinned")
        self.seed_spin.setValue(-1)
        self.emotions = QTableWidget(0, 3)
        self.emotions.setHorizontalHeaderLabels(["Emotion", "Clip", "Transcript"])
        self.emotions.horizontalHeader().setStretchLastSection(True)
        self.model_choice = (ModelChoice(_MODEL_TYPE_FOR_EDITOR_KIND[kind], installed_checkpoints())
                             if kind in _MODEL_TYPE_FOR_EDITOR_KIND else None)
        if kind == "design":
            self.description_edit.setPlaceholderText("e.g. a deep, raspy voice of a tired cowboy")
            form.addRow("&Identity:", self.description_edit)
            form.addRow("Pinned &seed:", self.seed_spin)
        elif kind in ("preset", "finetuned"):
            form.addRow("&Speaker:", self.speaker_edit)
            if kind == "finetuned":
                form.addRow("&Checkpoint:", self._browse_row(self.model_edit, folder=True))
        else:
            form.addRow("Reference &clip:", self._browse_row(self.clip_edit))
            form.addRow("&Transcript:", self.ref_text_edit)
            form.addRow("", self.xvector_check)
            add = QPushButton("Add emotion clip…")
            add.clicked.connect(self._add_emotion_row)
            form.addRow(QLabel("Emotion clips of the same speaker (optional): a segment with that emotion\n"
                               "keeps this voice and takes its delivery from the clip."))
            form.addRow(self.emotions)
            form.addRow("", add)
        if self.model_choice is not None:
            form.addRow("&Model:", self.model_choice)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.result_voice: VoiceSpec | None = None

    def _browse_row(self, edit: QLineEdit, *, folder: bool = False) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Browse…")

        def pick() -> None:
            if folder:
                name = QFileDialog.getExistingDirectory(self, "Checkpoint folder")
            else:
                name, _ = QFileDialog.getOpenFileName(self, "Clip", "", "Audio (*.wav *.flac *.ogg)")
            if name:
                edit.setText(name)

        button.clicked.connect(pick)
        layout.addWidget(button)
        return row

    def _add_emotion_row(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Emotion clip", "", "Audio (*.wav *.flac *.ogg)")
        if name:
            self.add_emotion("", name, "")

    def add_emotion(self, emotion: str, clip: str, text: str) -> None:
        row = self.emotions.rowCount()
        self.emotions.insertRow(row)
        for column, value in enumerate((emotion, clip, text)):
            self.emotions.setItem(row, column, QTableWidgetItem(value))

    def voice(self) -> VoiceSpec:
        model = self.model_choice.model if self.model_choice is not None else None
        if self.kind == "design":
            return VoiceSpec("design", description=self.description_edit.toPlainText().strip(), model=model)
        if self.kind == "preset":
            return VoiceSpec("preset", speaker=self.speaker_edit.text().strip(), model=model)
        if self.kind == "finetuned":
            model = self.model_edit.text().strip()
            if not model:
                raise VoiceError("a fine-tuned voice needs its checkpoint folder")
            return VoiceSpec("preset", speaker=self.speaker_edit.text().strip(), model=model)
        refs = []
        for row in range(self.emotions.rowCount()):
            values = [(self.emotions.item(row, c).text() if self.emotions.item(row, c) else "").strip()
                      for c in range(3)]
            refs.append(tuple(values))
        return VoiceSpec("clone", ref_audio=self.clip_edit.text().strip(),
                         ref_text=self.ref_text_edit.text().strip() or None,
                         x_vector_only=self.xvector_check.isChecked(), emotion_refs=tuple(refs), model=model)

    @property
    def seed(self) -> int | None:
        return None if self.seed_spin.value() < 0 else self.seed_spin.value()

    def accept(self) -> None:
        if not self.name_edit.text().strip():
            QMessageBox.warning(self, self.windowTitle(), "Give the voice a name.")
            return
        try:
            voice = self.voice()
            # An unusable clip is named now, while the form is still open to fix it; warnings (silent,
            # very long) are shown when the profile is saved.
            check_voice_clips(voice)
        except VoiceError as exc:
            QMessageBox.warning(self, self.windowTitle(), str(exc))
            return
        self.result_voice = voice
        super().accept()


class VoicesDialog(QDialog):
    """Manage the library and map the project's cast names to voices."""

    design_then_clone_requested = Signal(str, str)  # profile id of a designed voice, sample sentence

    def __init__(self, project: Project, library: VoiceLibrary, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Voices")
        self.project = project
        self.library = library
        self.changed = False

        self.profiles = QListWidget()
        self.profiles.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        library_box = QVBoxLayout()
        library_box.addWidget(QLabel("<b>Voice library</b>"))
        library_box.addWidget(self.profiles)
        for kind, label in _KINDS.items():
            button = QPushButton(f"New {label.split(' (')[0].lower()}…")
            button.clicked.connect(lambda _=False, k=kind: self.new_profile_dialog(k))
            library_box.addWidget(button)
        row = QHBoxLayout()
        for text, slot in (("Import…", self.import_dialog), ("Export…", self.export_dialog),
                           ("Model…", self.model_dialog), ("Delete", self.delete_selected),
                           ("Design → clone…", self.design_then_clone_dialog)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        library_box.addLayout(row)

        self.cast = QTableWidget(0, 2)
        self.cast.setHorizontalHeaderLabels(["Cast name", "Voice"])
        self.cast.horizontalHeaderItem(0).setToolTip("The name used in [voice: Name] tags")
        self.cast.setColumnWidth(0, 160)
        self.cast.horizontalHeader().setStretchLastSection(True)
        self.cast.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.default_combo = QComboBox()
        self.default_combo.currentTextChanged.connect(self._on_default_changed)
        cast_box = QVBoxLayout()
        cast_box.addWidget(QLabel("<b>This project's cast</b>"))
        cast_box.addWidget(self.cast)
        cast_buttons = QHBoxLayout()
        add = QPushButton("Add cast member…")
        add.clicked.connect(self.add_cast_member_dialog)
        remove = QPushButton("Remove")
        remove.clicked.connect(self.remove_selected_cast_member)
        cast_buttons.addWidget(add)
        cast_buttons.addWidget(remove)
        cast_box.addLayout(cast_buttons)
        default_row = QFormLayout()
        default_row.addRow("Voice before any [voice: …] tag:", self.default_combo)
        cast_box.addLayout(default_row)

        columns = QHBoxLayout()
        columns.addLayout(library_box, 2)
        columns.addLayout(cast_box, 3)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addLayout(columns)
        layout.addWidget(buttons)
        self.resize(900, 520)
        self.reload()

    # --- library ------------------------------------------------------------------------------------------

    def reload(self) -> None:
        self.profiles.clear()
        for profile in self.library.profiles():
            model = _model_name(profile.voice.model)
            item = QListWidgetItem(f"{profile.name}  ({profile.kind_label}, {model})")
            item.setData(Qt.ItemDataRole.UserRole, profile.id)
            automatic = f"the best installed {MODEL_TYPE_LABELS[profile.voice.model_type]} model"
            item.setToolTip(f"{profile.voice.describe()}\nRenders with: {profile.voice.model or automatic}")
            self.profiles.addItem(item)
        self._reload_cast()

    def selected_profile(self) -> VoiceProfile | None:
        item = self.profiles.currentItem()
        return self.library.get(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def create_profile(self, name: str, voice: VoiceSpec, seed: int | None = None) -> VoiceProfile | None:
        try:
            profile = self.library.add(name, voice, seed=seed)
        except (VoiceLibraryError, VoiceError) as exc:
            QMessageBox.warning(self, "Voices", str(exc))
            return None
        self.reload()
        self._show_clip_warnings(profile)
        return profile

    def set_profile_model(self, profile: VoiceProfile, model: str | None) -> VoiceProfile | None:
        try:
            updated = self.library.set_model(profile.id, model)
        except VoiceLibraryError as exc:
            QMessageBox.warning(self, "Voices", str(exc))
            return None
        self.changed = True  # the project's render changes (its voices' models), so it asks to be saved
        self.reload()
        return updated

    def model_dialog(self) -> None:
        """Choose the checkpoint the selected voice renders with."""
        profile = self.selected_profile()
        if profile is None:
            QMessageBox.information(self, "Voices", "Select a voice in the library first.")
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Model for {profile.name}")
        choice = ModelChoice(profile.voice.model_type, installed_checkpoints(), profile.voice.model, dialog)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel(f"{profile.name} ({profile.voice.describe()}) renders with:"))
        layout.addWidget(choice)
        layout.addWidget(buttons)
        self.model_choice_dialog = dialog
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.set_profile_model(profile, choice.model)

    def _show_clip_warnings(self, profile: VoiceProfile) -> None:
        if profile.warnings:
            QMessageBox.warning(self, "Voices", f"Saved {profile.name}, but check its clips:\n\n"
                                + "\n\n".join(profile.warnings))

    def new_profile_dialog(self, kind: str) -> None:
        editor = ProfileEditor(kind, self)
        if editor.exec() == QDialog.DialogCode.Accepted:
            self.create_profile(editor.name_edit.text(), editor.result_voice, editor.seed)

    def import_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Import voice", "", "Voice profiles (*.qvoice)")
        if name:
            self.import_profile(Path(name))

    def import_profile(self, source: Path) -> VoiceProfile | None:
        try:
            profile = self.library.import_file(source)
        except VoiceLibraryError as exc:
            QMessageBox.warning(self, "Import voice", str(exc))
            return None
        self.reload()
        self._show_clip_warnings(profile)
        return profile

    def export_dialog(self) -> None:
        profile = self.selected_profile()
        if profile is None:
            return
        # Replacing a file is asked below, about the name the export really writes (with .qvoice).
        name, _ = QFileDialog.getSaveFileName(self, "Export voice", f"{profile.name}.qvoice",
                                              "Voice profiles (*.qvoice)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if name:
            self.export_profile(profile, Path(name))

    def export_profile(self, profile: VoiceProfile, target: Path) -> Path | None:
        """Export, asking before an existing file is replaced; failures are shown, never raised."""
        target = profile_file_path(target)
        overwrite = False
        if target.exists():
            answer = QMessageBox.question(self, "Export voice", f"{target} already exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
            overwrite = True
        try:
            return self.library.export(profile.id, target, overwrite=overwrite)
        except VoiceLibraryError as exc:
            QMessageBox.warning(self, "Export voice", str(exc))
            return None

    def delete_selected(self) -> None:
        profile = self.selected_profile()
        if profile is None:
            return
        users = [n for n, e in self.project.cast.items() if e.profile == profile.id]
        if users:
            QMessageBox.warning(self, "Delete voice", f"{profile.name} is used by the cast ({', '.join(users)}).")
            return
        self.library.delete(profile.id)
        self.reload()

    def design_then_clone_dialog(self) -> None:
        profile = self.selected_profile()
        if profile is None or profile.voice.kind != "design":
            QMessageBox.information(self, "Design → clone", "Select a designed voice first.")
            return
        sentence, ok = QInputDialog.getText(
            self, "Design → clone",
            "Sentence to render with the designed voice (it becomes the clone's reference):",
            text="The quick brown fox jumps over the lazy dog, and then it rests a while.",
        )
        if ok and sentence.strip():
            self.design_then_clone_requested.emit(profile.id, sentence.strip())

    # --- cast ------------------------------------------------------------------------------------------------

    def _reload_cast(self) -> None:
        self.cast.setRowCount(0)
        profiles = self.library.profiles()
        for name, entry in self.project.cast.items():
            row = self.cast.rowCount()
            self.cast.insertRow(row)
            name_item = QTableWidgetItem(name)
            name_item.setFlags(name_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.cast.setItem(row, 0, name_item)
            combo = QComboBox()
            if entry.voice is not None:
                combo.addItem(f"(in the project) {entry.voice.describe()}", None)
            for profile in profiles:
                combo.addItem(f"{profile.name} ({profile.kind_label})", profile.id)
            if entry.profile is not None:
                index = combo.findData(entry.profile)
                if index < 0:
                    combo.addItem(f"missing profile {entry.profile}", entry.profile)
                    index = combo.count() - 1
                combo.setCurrentIndex(index)
            combo.currentIndexChanged.connect(lambda _i, n=name, c=combo: self._on_cast_combo_changed(n, c))
            self.cast.setCellWidget(row, 1, combo)
        self.default_combo.blockSignals(True)
        self.default_combo.clear()
        self.default_combo.addItems(list(self.project.cast))
        if self.project.render.voice in self.project.cast:
            self.default_combo.setCurrentText(self.project.render.voice)
        self.default_combo.blockSignals(False)

    def _on_cast_combo_changed(self, name: str, combo: QComboBox) -> None:
        profile_id = combo.currentData()
        if profile_id is not None:
            self.set_cast_member(name, profile_id)

    def _on_default_changed(self, name: str) -> None:
        if name:
            self.project.render.voice = name
            self.changed = True

    def set_cast_member(self, name: str, profile_id: str) -> None:
        self.project.cast[name] = CastEntry(profile=profile_id)
        if self.project.render.voice is None:
            self.project.render.voice = name
        self.changed = True
        self._reload_cast()

    def add_cast_member_dialog(self) -> None:
        profile = self.selected_profile()
        if profile is None:
            QMessageBox.information(self, "Add cast member", "Select a voice in the library first.")
            return
        name, ok = QInputDialog.getText(self, "Add cast member", "Cast name (as written in [voice: Name]):",
                                        text=profile.name)
        if ok and name.strip():
            self.set_cast_member(name.strip(), profile.id)

    def remove_selected_cast_member(self) -> None:
        row = self.cast.currentRow()
        if row < 0:
            return
        name = self.cast.item(row, 0).text()
        self.project.cast.pop(name, None)
        if self.project.render.voice == name:
            self.project.render.voice = next(iter(self.project.cast), None)
        self.changed = True
        self._reload_cast()
