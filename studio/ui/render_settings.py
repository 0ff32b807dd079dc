"""The render settings dialog: model, language, seed, export, device, and where renders are saved; under
Advanced, the decoder (a per-machine choice) and greedy decoding (a project choice: it changes the audio).

The default voice is shown here but chosen in the Voices dialog (the one place for the cast)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace

from PySide6.QtCore import Qt, Signal
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
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import GenerationParams, Project
from studio.engine.decoder_options import DecoderOptions
from studio.session.cluster import RAY_MISSING
from studio.settings import MAX_BATCH

DEFAULT_CAST_NAME = "Narrator"
LANGUAGES = ("auto", "english", "chinese", "german", "italian", "portuguese", "spanish", "japanese", "korean",
             "french", "russian")
DEVICES = ("auto", "cpu", "cuda", "mps")
DECODER_LABELS = {"fast": "Fast (studio loop)", "reference": "Reference (qwen-tts generate)"}
# What unticking "Greedy decoding" brings back when the project was greedy already when it was opened.
DEFAULT_TEMPERATURE = GenerationParams().temperature


@dataclass
class MachineSettings:
    """Per-machine choices that do not belong in a shareable project file."""

    device: str = "auto"
    cpu_threads: int = 0  # 0: all cores
    memory_budget_gb: float | None = None  # what loaded models may take together; None: automatic
    decoder: str = "fast"  # "fast" | "reference" (studio.engine.decoder_options.DECODERS)
    compile_decoder: bool = False
    int8_decoder: bool = False  # CPU only, experimental
    batch: int = 1  # lines decoded together (0: automatic); 1 streams each line as it renders
    cluster: str = ""  # "": this computer; "auto": Ray over this computer's GPUs; else a Ray cluster address

    @classmethod
    def from_settings(cls, settings) -> MachineSettings:
        return cls(device=settings.device, cpu_threads=settings.cpu_threads,
                   memory_budget_gb=settings.model_memory_budget_gb, decoder=settings.decoder,
                   compile_decoder=settings.compile_decoder, int8_decoder=settings.int8_decoder,
                   batch=settings.batch, cluster=settings.cluster)

    def changes(self) -> dict:
        """The fields of studio.settings.Settings these choices are kept in."""
        return {"device": self.device, "cpu_threads": self.cpu_threads,
                "model_memory_budget_gb": self.memory_budget_gb, "decoder": self.decoder,
                "compile_decoder": self.compile_decoder, "int8_decoder": self.int8_decoder, "batch": self.batch,
                "cluster": self.cluster}

    def decoder_options(self) -> DecoderOptions:
        """What every render job started from the window decodes with (as studio.settings.Settings does)."""
        fast = self.decoder == "fast"
        return DecoderOptions(self.decoder, compile=fast and self.compile_decoder, int8=fast and self.int8_decoder)


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
    voices_requested = Signal()  # "Choose in Voices…": the window opens the Voices dialog

    def __init__(self, project: Project, machine: MachineSettings, parent=None, *, library=None,
                 sampling_temperature: float | None = None) -> None:
        """`sampling_temperature`: what unticking Greedy restores when the project is greedy already (the
        window remembers the temperature greedy replaced); by default the project's own, else 0.9."""
        super().__init__(parent)
        self.library = library
        self.setWindowTitle("Render settings")
        self.project = project
        self.machine = machine
        form = QFormLayout()

        self.model_edit = QLineEdit(project.render.model or "")
        self.model_edit.setPlaceholderText("checkpoint folder or hub id, e.g. Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign")
        form.addRow("&Model:", _with_browse(self.model_edit, self._pick_model))

        # The default voice is chosen in one place, the Voices dialog (the cast, and which member speaks lines
        # before any [voice: ...] tag). It used to be editable here too, as a second copy that could
        # disagree with the cast; now this dialog only shows it and opens Voices.
        voice_row = QWidget()
        voice_layout = QHBoxLayout(voice_row)
        voice_layout.setContentsMargins(0, 0, 0, 0)
        self.default_voice_label = QLabel()
        self.default_voice_label.setWordWrap(True)
        voice_layout.addWidget(self.default_voice_label, 1)
        self.voices_button = QPushButton("Choose in &Voices…")
        self.voices_button.clicked.connect(self.voices_requested)
        voice_layout.addWidget(self.voices_button)
        form.addRow("Default voice:", voice_row)
        self.refresh_default_voice()

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
        self.format_combo.addItem("M4B audiobook (AAC, chapter marks)", "m4b")
        self.format_combo.addItem("MP3 (chapter tags)", "mp3")
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
        self._add_cluster_row(form, machine)

        temperature = project.render.generation.temperature
        self.sampling_temperature = temperature if temperature > 0 else (sampling_temperature or DEFAULT_TEMPERATURE)
        self._add_advanced_rows(form, machine, greedy=temperature == 0)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(640, 0)

    def _add_cluster_row(self, form: QFormLayout, machine: MachineSettings) -> None:
        # Ray is an optional extra: without it the Ray choices stay visible, disabled, saying how to get it.
        ray_installed = importlib.util.find_spec("ray") is not None
        self.cluster_combo = QComboBox()
        self.cluster_combo.addItem("This computer", "")
        self.cluster_combo.addItem("All local GPUs (Ray)", "auto")
        self.cluster_combo.addItem("Ray cluster at…", "address")
        self.cluster_edit = QLineEdit(machine.cluster if machine.cluster not in ("", "auto") else "")
        self.cluster_edit.setPlaceholderText("head node address, e.g. 192.168.1.20:6379")
        # One short line (a wrapped label in a form row is given too little height and overlaps); the whole
        # message is its tooltip.
        self.cluster_hint = QLabel("Needs Ray: pip install 'qwen-tts-studio[cluster]'")
        self.cluster_hint.setToolTip(RAY_MISSING)
        if not ray_installed:
            for row in (1, 2):
                self.cluster_combo.model().item(row).setEnabled(False)
        chosen = {"": 0, "auto": 1}.get(machine.cluster, 2)
        self.cluster_combo.setCurrentIndex(chosen if ray_installed or chosen == 0 else 0)
        self.cluster_combo.setToolTip("Where Render All runs: here, or on Ray workers (one per GPU) that each load "
                                      "the model once; this computer keeps the cache, the progress and the exports")
        self.cluster_combo.currentIndexChanged.connect(self._on_cluster_combo_changed)
        form.addRow("Render &on:", self.cluster_combo)
        form.addRow("", self.cluster_edit)
        form.addRow("", self.cluster_hint)
        form.setRowVisible(self.cluster_hint, not ray_installed)
        self._cluster_form = form
        self._on_cluster_combo_changed()

    def _on_cluster_combo_changed(self, _index: int = 0) -> None:
        self._cluster_form.setRowVisible(self.cluster_edit, self.cluster_combo.currentData() == "address")

    def chosen_cluster(self) -> str:
        """What the Render on row says: "" (this computer), "auto", or the address typed."""
        choice = self.cluster_combo.currentData()
        return self.cluster_edit.text().strip() if choice == "address" else choice

    def _add_advanced_rows(self, form: QFormLayout, machine: MachineSettings, *, greedy: bool) -> None:
        # Rarely changed, folded away (as in the fine-tune wizard), in the same form so the columns line up;
        # unfolded when something in it is not the default, so a choice in force is never out of sight.
        self.advanced_button = QToolButton()
        self.advanced_button.setText("&Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setAutoRaise(True)
        form.addRow(self.advanced_button)
        self.decoder_combo = QComboBox()
        for name, label in DECODER_LABELS.items():
            self.decoder_combo.addItem(label, name)
        self.decoder_combo.setCurrentIndex(max(0, self.decoder_combo.findData(machine.decoder)))
        self.decoder_combo.setToolTip("How the codec frames are generated on this computer: the studio's own "
                                      "loop, or qwen-tts's generate. Greedy decoding gives the same audio with both")
        form.addRow("De&coder:", self.decoder_combo)
        self.compile_check = QCheckBox("Com&pile the decoder")
        self.compile_check.setChecked(machine.compile_decoder)
        self.compile_check.setToolTip("Slower first start, faster frames: compiled once per model and cached on "
                                      "disk")
        form.addRow("", self.compile_check)
        self.int8_check = QCheckBox("int&8 weights on the CPU (experimental)")
        self.int8_check.setChecked(machine.int8_decoder)
        self.int8_check.setToolTip("Smaller, faster weights for CPU renders, with slightly different audio. "
                                   "Renders on a GPU refuse it")
        form.addRow("", self.int8_check)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(0, MAX_BATCH)
        self.batch_spin.setSpecialValueText("automatic")
        self.batch_spin.setValue(machine.batch)
        self.batch_spin.setSuffix(" at a time")
        self.batch_spin.setToolTip("Lines the fast decoder renders together: faster in total, and each line "
                                   "sounds exactly as it would alone, but you hear a line once it is finished "
                                   "instead of while it renders. 1 streams every line. Compiling and int8 "
                                   "render one line at a time")
        form.addRow("&Lines decoded together:", self.batch_spin)
        self.greedy_check = QCheckBox("&Greedy decoding (no sampling)")
        self.greedy_check.setChecked(greedy)
        self.greedy_check.setToolTip("Saved in the project: every line takes the model's most likely sound "
                                     "(temperature 0) instead of sampling. Unticking restores the temperature")
        form.addRow("Sampling:", self.greedy_check)
        self._advanced_form = form
        self._advanced_rows = (self.decoder_combo, self.compile_check, self.int8_check, self.batch_spin,
                               self.greedy_check)
        self.decoder_combo.currentIndexChanged.connect(self._on_decoder_combo_changed)
        self._on_decoder_combo_changed()
        self.advanced_button.toggled.connect(self._on_advanced_button_toggled)
        chosen = (machine.decoder != "fast" or machine.compile_decoder or machine.int8_decoder or machine.batch != 1
                  or greedy)
        self.advanced_button.setChecked(chosen)
        self._on_advanced_button_toggled(chosen)

    def _on_advanced_button_toggled(self, shown: bool) -> None:
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        for field in self._advanced_rows:
            self._advanced_form.setRowVisible(field, shown)
        if self.isVisible() and self.layout() is not None:
            self.layout().activate()
            self.resize(self.width(), 0)  # the height it needs now: folding gives the room back

    def _on_decoder_combo_changed(self, _index: int = 0) -> None:
        # Compiling and int8 weights belong to the studio's loop; the reference decoder ignores them.
        fast = self.decoder_combo.currentData() == "fast"
        self.compile_check.setEnabled(fast)
        self.int8_check.setEnabled(fast)
        self.batch_spin.setEnabled(fast)

    def default_voice_text(self) -> str:
        """What the Default voice row says: the cast member and its voice, or that none is chosen."""
        name = self.project.render.voice
        entry = self.project.cast.get(name) if name is not None else None
        if entry is None:
            return "None chosen yet: lines without a [voice: …] tag cannot render. Choose one in Voices."
        if entry.voice is not None:
            what = entry.voice.describe()
        elif self.library is not None:
            try:
                profile = self.library.get(entry.profile)
                what = f"{profile.name} ({profile.kind_label})"
            except ValueError:
                what = f"missing voice profile {entry.profile}"
        else:
            what = f"voice profile {entry.profile}"
        return f"{name}: {what}"

    def refresh_default_voice(self) -> None:
        self.default_voice_label.setText(self.default_voice_text())

    def accept(self) -> None:
        render = self.project.render
        render.model = self.model_edit.text().strip() or None
        render.language = self.language_combo.currentText().strip().lower() or "auto"
        render.seed = self.seed_spin.value()
        render.output_dir = self.output_edit.text().strip() or None
        render.export.audio_format = self.format_combo.currentData()
        render.export.stems = self.stems_check.isChecked()
        loudness = self.loudness_spin.value()
        render.export.loudness_lufs = None if loudness <= self.loudness_spin.minimum() else loudness
        self.machine.device = self.device_combo.currentText()
        self.machine.cpu_threads = self.threads_spin.value()
        self.machine.memory_budget_gb = self.budget_spin.value() or None
        self.machine.decoder = self.decoder_combo.currentData()
        self.machine.compile_decoder = self.compile_check.isChecked()
        self.machine.int8_decoder = self.int8_check.isChecked()
        self.machine.batch = self.batch_spin.value()
        self.machine.cluster = self.chosen_cluster()
        generation = render.generation
        temperature = 0.0 if self.greedy_check.isChecked() else (generation.temperature or self.sampling_temperature)
        if temperature != generation.temperature:
            # A new record, not an edit of the one a running render job may hold.
            render.generation = replace(generation, temperature=temperature)
        if temperature > 0:
            self.sampling_temperature = temperature
        super().accept()

    def _pick_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Checkpoint folder", self.model_edit.text())
        if folder:
            self.model_edit.setText(folder)

    def _pick_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save renders in", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)
