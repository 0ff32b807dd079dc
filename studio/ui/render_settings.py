"""The render settings dialog: model, voice, language, seed, and where renders are saved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import CastEntry, Project
from studio.core.voice import VoiceError, VoiceSpec

DEFAULT_CAST_NAME = "Narrator"
LANGUAGES = ("auto", "english", "chinese", "german", "italian", "portuguese", "spanish", "japanese", "korean",
             "french", "russian")
DEVICES = ("auto", "cpu", "cuda", "mps")
_KINDS = (("design", "Designed voice (VoiceDesign model)"), ("preset", "Preset speaker (CustomVoice model)"),
          ("clone", "Cloned voice (Base model)"))


@dataclass
class MachineSettings:
    """Per-machine choices that do not belong in a shareable project file."""

    device: str = "auto"
    cpu_threads: int = 0  # 0: all cores
    memory_budget_gb: float | None = None  # what loaded models may take together; None: automatic

    @classmethod
    def from_settings(cls, settings) -> MachineSettings:
        return cls(device=settings.device, cpu_threads=settings.cpu_threads,
                   memory_budget_gb=settings.model_memory_budget_gb)

    def changes(self) -> dict:
        """The fields of studio.settings.Settings these choices are kept in."""
        return {"device": self.device, "cpu_threads": self.cpu_threads,
                "model_memory_budget_gb": self.memory_budget_gb}


def _with_browse(edit: QLineEdit, pick) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(pick)
    layout.addWidget(button)
    return row


class RenderSettingsDialog(QDialog):
    def __init__(self, project: Project, machine: MachineSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Render settings")
        self.project = project
        self.machine = machine
        form = QFormLayout()

        self.model_edit = QLineEdit(project.render.model or "")
        self.model_edit.setPlaceholderText("checkpoint folder or hub id, e.g. Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign")
        form.addRow("&Model:", _with_browse(self.model_edit, self._pick_model))

        self.kind_combo = QComboBox()
        for kind, label in _KINDS:
            self.kind_combo.addItem(label, kind)
        form.addRow("&Voice:", self.kind_combo)

        self.stack = QStackedWidget()
        self.description_edit = QPlainTextEdit()
        self.description_edit.setPlaceholderText("Who is speaking, e.g. \"a deep, raspy voice of a tired cowboy\"")
        self.description_edit.setFixedHeight(70)
        self.stack.addWidget(self.description_edit)
        self.speaker_edit = QLineEdit()
        self.speaker_edit.setPlaceholderText("serena, vivian, uncle_fu, ryan, aiden, ono_anna, sohee, eric, dylan")
        self.stack.addWidget(self.speaker_edit)
        clone = QWidget()
        clone_form = QFormLayout(clone)
        clone_form.setContentsMargins(0, 0, 0, 0)
        self.clip_edit = QLineEdit()
        clone_form.addRow("Reference clip:", _with_browse(self.clip_edit, self._pick_clip))
        self.ref_text_edit = QLineEdit()
        self.ref_text_edit.setPlaceholderText("what the reference clip says")
        clone_form.addRow("Transcript:", self.ref_text_edit)
        self.xvector_check = QCheckBox("Speaker embedding only (no transcript needed)")
        clone_form.addRow("", self.xvector_check)
        self.stack.addWidget(clone)
        form.addRow("", self.stack)
        self.kind_combo.currentIndexChanged.connect(self.stack.setCurrentIndex)
        entry = self._default_entry()
        # The default voice is a voice library profile: it is changed in Voices, and this dialog must
        # never replace that reference with an embedded copy.
        self.library_default = entry is not None and entry.voice is None
        if self.library_default:
            note = (f"{project.render.voice or DEFAULT_CAST_NAME} speaks lines without a [voice: ...] tag: a voice "
                    "from the library. Change it in Voices.")
            for widget in (self.kind_combo, self.stack):
                widget.setEnabled(False)
                widget.setToolTip(note)
            self.default_note = QLabel(note)
            self.default_note.setWordWrap(True)
            form.addRow("", self.default_note)

        self.language_combo = QComboBox()
        self.language_combo.setEditable(True)
        self.language_combo.addItems(LANGUAGES)
        self.language_combo.setCurrentText(project.render.language)
        form.addRow("&Language:", self.language_combo)

        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(project.render.seed)
        form.addRow("&Seed:", self.seed_spin)

        self.output_edit = QLineEdit(project.render.output_dir or "")
        self.output_edit.setPlaceholderText("beside the project file")
        form.addRow("&Save renders in:", _with_browse(self.output_edit, self._pick_output))

        self.format_combo = QComboBox()
        self.format_combo.addItem("WAV (16-bit)", "wav")
        self.format_combo.addItem("FLAC (24-bit, lossless)", "flac")
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(project.render.export.audio_format)))
        form.addRow("Export &format:", self.format_combo)
        self.stems_check = QCheckBox("Also save one file per speech segment (stems)")
        self.stems_check.setChecked(project.render.export.stems)
        form.addRow("", self.stems_check)
        self.loudness_spin = QDoubleSpinBox()
        self.loudness_spin.setRange(-71.0, 0.0)
        self.loudness_spin.setDecimals(1)
        self.loudness_spin.setSuffix(" LUFS")
        self.loudness_spin.setSpecialValueText("off")  # the minimum means no normalisation
        loudness = project.render.export.loudness_lufs
        self.loudness_spin.setValue(-71.0 if loudness is None else loudness)
        self.loudness_spin.setToolTip("Integrated loudness of the export, e.g. -16 for podcasts, -23 for broadcast")
        form.addRow("&Loudness:", self.loudness_spin)

        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(machine.device)
        form.addRow("&Device:", self.device_combo)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(0, 256)
        self.threads_spin.setSpecialValueText("all cores")
        self.threads_spin.setValue(machine.cpu_threads)
        form.addRow("CPU &threads:", self.threads_spin)
        self.budget_spin = QDoubleSpinBox()
        self.budget_spin.setRange(0.0, 4096.0)
        self.budget_spin.setDecimals(1)
        self.budget_spin.setSingleStep(1.0)
        self.budget_spin.setSuffix(" GB")
        self.budget_spin.setSpecialValueText("automatic (60% of free memory)")
        self.budget_spin.setValue(machine.memory_budget_gb or 0.0)
        self.budget_spin.setToolTip("How much memory the loaded models may take together. A mixed cast keeps as "
                                    "many of its models loaded as fit, and renders grouped by model when they "
                                    "do not all fit")
        form.addRow("Model &memory:", self.budget_spin)

        self._load_voice()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(640, 0)

    def _default_entry(self) -> CastEntry | None:
        name = self.project.render.voice or DEFAULT_CAST_NAME
        return self.project.cast.get(name)

    def _load_voice(self) -> None:
        entry = self._default_entry()
        voice = entry.voice if entry else None
        if voice is None:
            return
        self.kind_combo.setCurrentIndex([k for k, _ in _KINDS].index(voice.kind))
        self.description_edit.setPlainText(voice.description or "")
        self.speaker_edit.setText(voice.speaker or "")
        self.clip_edit.setText(voice.ref_audio or "")
        self.ref_text_edit.setText(voice.ref_text or "")
        self.xvector_check.setChecked(voice.x_vector_only)

    def voice(self) -> VoiceSpec:
        kind = self.kind_combo.currentData()
        if kind == "design":
            return VoiceSpec.design(self.description_edit.toPlainText().strip())
        if kind == "preset":
            return VoiceSpec.preset(self.speaker_edit.text().strip())
        return VoiceSpec.clone(
            self.clip_edit.text().strip(),
            self.ref_text_edit.text().strip() or None,
            x_vector_only=self.xvector_check.isChecked(),
        )

    def _voice_left_empty(self) -> bool:
        """Nothing typed for a default voice the project does not have: the settings apply without one
        (the render's pre-flight check asks for it, with a button to this dialog)."""
        typed = (self.description_edit.toPlainText(), self.speaker_edit.text(), self.clip_edit.text(),
                 self.ref_text_edit.text())
        untouched = self.kind_combo.currentIndex() == 0 and not any(t.strip() for t in typed)
        return self._default_entry() is None and untouched

    def accept(self) -> None:
        voice = None
        if not self.library_default and not self._voice_left_empty():
            try:
                voice = self.voice()
            except VoiceError as exc:
                QMessageBox.warning(self, "Render settings", f"Voice: {exc}")
                return
            if voice.kind == "clone" and not Path(voice.ref_audio).is_file():
                QMessageBox.warning(self, "Render settings", f"Reference clip {voice.ref_audio}: no such file")
                return
        render = self.project.render
        render.model = self.model_edit.text().strip() or None
        render.language = self.language_combo.currentText().strip().lower() or "auto"
        render.seed = self.seed_spin.value()
        render.output_dir = self.output_edit.text().strip() or None
        render.export.audio_format = self.format_combo.currentData()
        render.export.stems = self.stems_check.isChecked()
        loudness = self.loudness_spin.value()
        render.export.loudness_lufs = None if loudness <= self.loudness_spin.minimum() else loudness
        if voice is not None:
            name = render.voice or DEFAULT_CAST_NAME
            self.project.cast[name] = CastEntry(voice=voice)
            render.voice = name
        self.machine.device = self.device_combo.currentText()
        self.machine.cpu_threads = self.threads_spin.value()
        self.machine.memory_budget_gb = self.budget_spin.value() or None
        super().accept()

    def _pick_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Checkpoint folder", self.model_edit.text())
        if folder:
            self.model_edit.setText(folder)

    def _pick_clip(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Reference clip", "", "Audio (*.wav *.flac *.ogg *.mp3)")
        if name:
            self.clip_edit.setText(name)

    def _pick_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save renders in", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)
