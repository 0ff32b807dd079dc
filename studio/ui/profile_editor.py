"""The form that creates or edits one voice profile (designed, preset, fine-tuned or cloned), and the
model choice shown with it. Used by the Voices dialog."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.reference_clip import check_voice_clips
from studio.core.voice import VoiceError, VoiceSpec
from studio.core.voice_library import VoiceProfile
from studio.session.checkpoints import MODEL_TYPE_LABELS, Checkpoint, describe_source, installed_checkpoints

_MODEL_TYPE_FOR_EDITOR_KIND = {"design": "voice_design", "clone": "base", "preset": "custom_voice"}


def editor_kind(profile: VoiceProfile) -> str:
    """The ProfileEditor kind that edits `profile`."""
    if profile.kind_label == "fine-tuned":
        return "finetuned"
    return profile.voice.kind


def model_name(source: str | None) -> str:
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

KIND_LABELS = {
    "design": "Designed (VoiceDesign model): describe who speaks",
    "clone": "Cloned (Base model): a reference clip of the speaker",
    "preset": "Preset speaker (CustomVoice model)",
    "finetuned": "Fine-tuned speaker (a checkpoint from the fine-tune wizard)",
}


class ProfileEditor(QDialog):
    """Create one voice profile of a given kind, or edit `profile` (the form starts filled from it)."""

    def __init__(self, kind: str, parent=None, profile: VoiceProfile | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.profile = profile
        title = KIND_LABELS[kind].split(" (")[0] + " voice"
        self.setWindowTitle(f"Edit {profile.name}" if profile is not None else title)
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
        current_model = profile.voice.model if profile is not None else None
        self.model_choice = (ModelChoice(_MODEL_TYPE_FOR_EDITOR_KIND[kind], installed_checkpoints(), current_model)
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
            remove = QPushButton("Remove emotion clip")
            remove.clicked.connect(lambda: self.emotions.removeRow(self.emotions.currentRow())
                                   if self.emotions.currentRow() >= 0 else None)
            clip_buttons = QWidget()
            clip_row = QHBoxLayout(clip_buttons)
            clip_row.setContentsMargins(0, 0, 0, 0)
            clip_row.addWidget(add)
            clip_row.addWidget(remove)
            form.addRow("", clip_buttons)
        if self.model_choice is not None:
            form.addRow("&Model:", self.model_choice)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.result_voice: VoiceSpec | None = None
        if profile is not None:
            self._fill(profile)

    def _fill(self, profile: VoiceProfile) -> None:
        voice = profile.voice
        self.name_edit.setText(profile.name)
        self.description_edit.setPlainText(voice.description or "")
        self.seed_spin.setValue(-1 if profile.seed is None else profile.seed)
        self.speaker_edit.setText(voice.speaker or "")
        self.model_edit.setText(voice.model or "")
        self.clip_edit.setText(voice.ref_audio or "")
        self.ref_text_edit.setText(voice.ref_text or "")
        self.xvector_check.setChecked(voice.x_vector_only)
        for emotion, clip, text in voice.emotion_refs:
            self.add_emotion(emotion or "", clip or "", text or "")

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
        """The voice the form describes; VoiceError names the field that is missing or wrong."""
        model = self.model_choice.model if self.model_choice is not None else None
        if self.kind == "design":
            description = self.description_edit.toPlainText().strip()
            if not description:
                raise VoiceError("Identity: describe who speaks (e.g. a deep, raspy voice of a tired cowboy)")
            return VoiceSpec("design", description=description, model=model)
        if self.kind in ("preset", "finetuned") and not self.speaker_edit.text().strip():
            raise VoiceError("Speaker: name the speaker (e.g. ryan)")
        if self.kind == "preset":
            return VoiceSpec("preset", speaker=self.speaker_edit.text().strip(), model=model)
        if self.kind == "finetuned":
            model = self.model_edit.text().strip()
            if not model:
                raise VoiceError("Checkpoint: a fine-tuned voice needs its checkpoint folder")
            return VoiceSpec("preset", speaker=self.speaker_edit.text().strip(), model=model)
        if not self.clip_edit.text().strip():
            raise VoiceError("Reference clip: choose a recording of the speaker")
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
            QMessageBox.warning(self, self.windowTitle(), "Name: give the voice a name.")
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
