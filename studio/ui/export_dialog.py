"""File -> Export Audio…: where the mix goes and how (format, subtitles, stems, loudness), and whether
Render All also keeps its timestamped copy."""

from __future__ import annotations

import os
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
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.audio.export import export_targets
from studio.core.project import EXPORT_FORMATS, ExportSettings

FORMAT_LABELS = {"wav": "WAV (16-bit PCM)", "flac": "FLAC (24-bit, lossless)",
                 "m4b": "M4B audiobook (AAC, chapter marks)", "mp3": "MP3 (chapter tags)"}
_FILTERS = {"wav": "WAV audio (*.wav)", "flac": "FLAC audio (*.flac)", "m4b": "M4B audiobook (*.m4b)",
            "mp3": "MP3 audio (*.mp3)"}
DEFAULT_LOUDNESS_LUFS = -16.0  # podcasts and spoken word


@dataclass(frozen=True)
class ExportChoice:
    """What the user chose: the path and the settings the export is written with."""

    path: Path
    settings: ExportSettings


class ExportDialog(QDialog):
    """Asks for the export's path and settings; `choice()` after it is accepted."""

    def __init__(self, settings: ExportSettings, default_path: Path, parent: QWidget | None = None,
                 *, summary: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("ExportDialog")
        self.setWindowTitle("Export Audio")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        if summary:
            self.summary_label = QLabel(summary)
            self.summary_label.setWordWrap(True)
            layout.addWidget(self.summary_label)
        form = QFormLayout()
        layout.addLayout(form)

        self.path_edit = QLineEdit(str(default_path))
        self.path_edit.setObjectName("ExportPath")
        self.browse_button = QPushButton("&Browse…")
        self.browse_button.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        file_label = QLabel("&File:")
        file_label.setBuddy(self.path_edit)  # a row of two widgets gets no buddy from addRow
        form.addRow(file_label, row)

        self.format_combo = QComboBox()
        for name in EXPORT_FORMATS:
            self.format_combo.addItem(FORMAT_LABELS.get(name, name.upper()), name)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(settings.audio_format)))
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        form.addRow("F&ormat:", self.format_combo)

        self.subtitles_check = QCheckBox("&Subtitles: .srt and .vtt beside the audio")
        self.subtitles_check.setChecked(settings.subtitles)
        form.addRow("", self.subtitles_check)
        self.stems_check = QCheckBox("S&tems: one file per speech segment, in a folder beside the audio")
        self.stems_check.setChecked(settings.stems)
        form.addRow("", self.stems_check)

        self.loudness_check = QCheckBox("&Normalise loudness to")
        self.loudness_check.setChecked(settings.loudness_lufs is not None)
        self.loudness_spin = QDoubleSpinBox()
        self.loudness_spin.setRange(-70.0, 0.0)
        self.loudness_spin.setDecimals(1)
        self.loudness_spin.setSingleStep(1.0)
        self.loudness_spin.setSuffix(" LUFS")
        self.loudness_spin.setValue(DEFAULT_LOUDNESS_LUFS if settings.loudness_lufs is None
                                    else settings.loudness_lufs)
        self.loudness_spin.setToolTip("Integrated loudness (ITU-R BS.1770): -16 for podcasts, -23 for broadcast. "
                                      "Never louder than a peak of -0.01 dBFS.")
        self.loudness_spin.setEnabled(self.loudness_check.isChecked())
        self.loudness_check.toggled.connect(self.loudness_spin.setEnabled)
        loudness_row = QHBoxLayout()
        loudness_row.addWidget(self.loudness_check)
        loudness_row.addWidget(self.loudness_spin)
        loudness_row.addStretch(1)
        form.addRow("Loudness:", loudness_row)
        self.acx_check = QCheckBox("&Master for audiobook platforms (ACX): 44.1 kHz, RMS −20 dBFS, peaks under "
                                   "−3 dBFS, room tone at both ends")
        self.acx_check.setToolTip("Replaces the loudness setting. M4B and MP3 exports are checked against "
                                  "ACX's requirements either way; the result is in the status bar and the manifest.")
        self.acx_check.setChecked(settings.acx)
        self.acx_check.toggled.connect(lambda on: self.loudness_check.setEnabled(not on))
        self.loudness_check.setEnabled(not settings.acx)
        form.addRow("", self.acx_check)

        self.writes_label = QLabel()
        self.writes_label.setObjectName("ExportWrites")
        self.writes_label.setWordWrap(True)
        form.addRow("Writes:", self.writes_label)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        self.timestamped_check = QCheckBox("&Also save a timestamped copy after every Render All")
        self.timestamped_check.setToolTip("Render All then writes <project>_<date>_<time> in the chosen format, "
                                          "with its subtitles and a manifest, into the project's output folder")
        self.timestamped_check.setChecked(settings.timestamped_copy)
        layout.addWidget(self.timestamped_check)

        self.error_label = QLabel()
        self.error_label.setObjectName("ExportError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 4px;")
        self.error_label.setVisible(False)
        layout.addWidget(self.error_label)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("&Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self.path_edit.textChanged.connect(self._update_writes)
        self.path_edit.editingFinished.connect(self._on_path_edited)
        self.subtitles_check.toggled.connect(self._update_writes)
        self.stems_check.toggled.connect(self._update_writes)
        self._on_format_changed()

    # --- what was chosen ----------------------------------------------------------------------------

    @property
    def audio_format(self) -> str:
        return self.format_combo.currentData()

    def settings(self) -> ExportSettings:
        return ExportSettings(
            audio_format=self.audio_format,
            stems=self.stems_check.isChecked(),
            loudness_lufs=self.loudness_spin.value() if self.loudness_check.isChecked() and not
            self.acx_check.isChecked() else None,
            acx=self.acx_check.isChecked(),
            subtitles=self.subtitles_check.isChecked(),
            timestamped_copy=self.timestamped_check.isChecked(),
        )

    def path(self) -> Path | None:
        """The audio file, with the format's suffix; None when the field is empty."""
        text = self.path_edit.text().strip()
        if not text:
            return None
        path = Path(text).expanduser()
        if not self._names_a_file():
            return path  # a folder, not a file name: problem() says so (a suffix cannot go on it)
        suffix = f".{self.audio_format}"
        if path.suffix.lower() in {f".{name}" for name in EXPORT_FORMATS}:
            return path.with_suffix(suffix)
        return path.with_name(path.name + suffix)

    def _names_a_file(self) -> bool:
        text = self.path_edit.text().strip()
        path = Path(text).expanduser()
        return not (text.endswith(("/", os.sep)) or path.name in ("", ".", "..") or path.is_dir())

    def choice(self) -> ExportChoice:
        path = self.path()
        assert path is not None, "choice() is for an accepted dialog"
        return ExportChoice(path=path, settings=self.settings())

    def problem(self) -> str | None:
        """Why the chosen path cannot be exported to, naming the field and the path; None when it can."""
        path = self.path()
        if path is None:
            return "File: choose where to export the audio"
        if not self._names_a_file():
            return f"File: {path} is a folder; choose a file name"
        if not path.parent.is_dir():
            return f"File: {path.parent}: no such folder"
        return None

    def accept(self) -> None:
        self._on_path_edited()
        problem = self.problem()
        if problem is not None:
            self.show_error(problem)
            self.path_edit.setFocus()
            return
        self.show_error(None)
        super().accept()

    def show_error(self, text: str | None) -> None:
        self.error_label.setText(text or "")
        self.error_label.setVisible(bool(text))

    # --- reactions ----------------------------------------------------------------------------------

    def _on_format_changed(self, *_args) -> None:
        # The file's suffix follows the format, so the name shown is the name written.
        path = self.path()
        if path is not None and self.path_edit.text().strip() != str(path):
            self.path_edit.setText(str(path))
        self._update_writes()

    def _update_writes(self, *_args) -> None:
        path = self.path()
        if path is None or not self._names_a_file():
            self.writes_label.setText("—")
            return
        stems = self.stems_check.isChecked()
        names = [p.name for p in export_targets(path, subtitles=self.subtitles_check.isChecked(), stems=stems)]
        if stems:
            names[-1] += "/"
        self.writes_label.setText(f"{', '.join(names)}  in {path.parent}")

    def _on_browse_clicked(self) -> None:
        path = self.path()
        start = str(path) if path is not None else ""
        # The export asks itself, about every file it writes (subtitles and stems too), so the file
        # dialog's own question about the audio file alone is turned off.
        name, _ = QFileDialog.getSaveFileName(
            self, "Export audio to", start, ";;".join(_FILTERS[f] for f in EXPORT_FORMATS),
            _FILTERS[self.audio_format], QFileDialog.Option.DontConfirmOverwrite)
        if name:
            self.path_edit.setText(name)
            self._on_path_edited()

    def _on_path_edited(self) -> None:
        # A name typed or picked with the other format's suffix chooses that format.
        suffix = Path(self.path_edit.text().strip()).suffix.lower().lstrip(".")
        index = self.format_combo.findData(suffix)
        if index >= 0 and index != self.format_combo.currentIndex():
            self.format_combo.setCurrentIndex(index)
        else:
            self._on_format_changed()
