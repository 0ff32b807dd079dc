"""Page 1 of the fine-tune wizard: choose the recordings and the run folder (or reopen a run)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QFormLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

from studio.ui.wizard.base import BasePage, WizardContext, browse_row
from studio.ui.wizard.commands import new_run_dir
from studio.ui.wizard.widgets import ErrorBanner
from training.run_folder import inspect_run


class DatasetPage(BasePage):
    def __init__(self, ctx: WizardContext) -> None:
        super().__init__(ctx)
        self.setTitle("Choose your recordings")
        self.setSubTitle(
            "A folder of audio files with same-named .txt transcripts, an LJSpeech-style metadata.csv, or a "
            ".jsonl list (audio, text, optional ref_audio). Your recordings are only read, never changed."
        )
        self.dataset_edit = QLineEdit()
        self.dataset_edit.setPlaceholderText("folder, metadata.csv or .jsonl")
        self.folder_button = QPushButton("&Folder…")
        self.file_button = QPushButton("F&ile…")
        self.run_edit = QLineEdit()
        self.run_button = QPushButton("&Browse…")
        self.open_run_button = QPushButton("&Open an existing run…")
        self.open_run_button.setToolTip(
            "Reopen a run folder: a training that runs in the background, or a finished one"
        )
        self.error = ErrorBanner()

        form = QFormLayout()
        dataset_label = QLabel("&Recordings:")
        dataset_label.setBuddy(self.dataset_edit)
        form.addRow(dataset_label, browse_row(self.dataset_edit, self.folder_button, self.file_button))
        run_label = QLabel("R&un folder:")
        run_label.setBuddy(self.run_edit)
        form.addRow(run_label, browse_row(self.run_edit, self.run_button))
        note = QLabel(
            "Everything the wizard makes goes into the run folder: converted audio, 12 Hz codes, checkpoints, "
            "per-epoch samples and the exported voice. Training can keep running there after you close the wizard."
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addStretch(1)
        layout.addWidget(self.open_run_button, 0, Qt.AlignmentFlag.AlignLeft)

        self.dataset_edit.textChanged.connect(self._on_edit_text_changed)
        self.run_edit.textChanged.connect(self._on_edit_text_changed)
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.file_button.clicked.connect(self._on_file_button_clicked)
        self.run_button.clicked.connect(self._on_run_button_clicked)
        self.open_run_button.clicked.connect(self._on_open_run_button_clicked)

    def set_paths(self, dataset: str | Path | None, run_dir: str | Path | None) -> None:
        if dataset is not None:
            self.dataset_edit.setText(str(dataset))
        if run_dir is not None:
            self.run_edit.setText(str(run_dir))

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        if not self.run_edit.text().strip():
            self.run_edit.setText(str(new_run_dir(self.ctx.runs_root)))

    def _paths(self) -> tuple[Path, Path]:
        return (
            Path(self.dataset_edit.text().strip()).expanduser(),
            Path(self.run_edit.text().strip()).expanduser().absolute(),
        )

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        if not self.run_edit.text().strip():
            return False
        if self.ctx.restoring:
            # The recordings may have moved since; a reopened run only needs its report.
            return True
        return bool(self.dataset_edit.text().strip()) and self._paths()[0].exists()

    def validatePage(self) -> bool:  # noqa: N802 (Qt override)
        if not self.isComplete():
            return False
        dataset, run_dir = self._paths()
        ctx = self.ctx
        if not ctx.restoring:
            problem = self._problem(dataset, run_dir)
            if problem:
                self.error.show_error(*problem)
                return False
        self.error.clear_error()
        ctx.dataset, ctx.run_dir = dataset.absolute(), run_dir
        return True

    def _problem(self, dataset: Path, run_dir: Path) -> tuple[str, str] | None:
        root = dataset if dataset.is_dir() else dataset.parent
        try:
            inside = run_dir.resolve() == root.resolve() or root.resolve() in run_dir.resolve().parents
        except OSError:
            inside = False
        if inside:
            return (
                f"{run_dir} is inside the recordings folder",
                "choose a run folder outside it; recordings are only read",
            )
        if run_dir.exists() and not run_dir.is_dir():
            return f"{run_dir} exists and is not a folder", "choose another run folder"
        if run_dir.is_dir() and run_dir != self.ctx.run_dir and inspect_run(run_dir).trained:
            return (
                f"{run_dir} already holds a training run",
                "reopen it with Open an existing run, or choose an empty folder",
            )
        return None

    def _on_edit_text_changed(self, _text: str) -> None:
        self.error.clear_error()
        self.completeChanged.emit()

    def _on_folder_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of recordings", self.dataset_edit.text())
        if folder:
            self.dataset_edit.setText(folder)

    def _on_file_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Dataset list", self.dataset_edit.text(), "Dataset lists (metadata.csv *.csv *.jsonl);;All files (*)"
        )
        if path:
            self.dataset_edit.setText(path)

    def _on_run_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", str(self.ctx.runs_root))
        if folder:
            self.run_edit.setText(folder)

    def _on_open_run_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(self.ctx.runs_root))
        if folder:
            self.ctx.open_run_requested.emit(Path(folder))
