"""The fine-tune wizard's first three pages (recordings, validation report, settings) and what all pages share.

The last three (prepare, train, finish) are in run_pages.py.

Every page reads what it shows from the run folder (see runstate), so going back, reopening a run
and a fresh start all show the same thing. Pages that run a command keep Next disabled until it has
succeeded; a failure shows its message and hint, and the full stderr stays in the folded log.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QColor, QDoubleValidator, QFontDatabase, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from studio.core.atomic import atomic_write_text
from studio.engine.models import format_duration
from studio.ui.wizard.runner import StepRunner, training_command
from studio.ui.wizard.runstate import (
    CONFIG_NAME,
    CRASHED,
    FINISHED,
    REPORT_NAME,
    Outcome,
    inspect_run,
    output_dir,
    read_config,
)
from studio.ui.wizard.widgets import ErrorBanner, LogView, ProgressRow
from training.protocol import CommandError
from training.sft import DEFAULT_LEARNING_RATE, RESUME_FIELDS, SFTConfig, load_config

if TYPE_CHECKING:
    from studio.ui.wizard.finetune import FineTuneWizard

PAGE_DATASET, PAGE_VALIDATION, PAGE_SETTINGS, PAGE_PREPARE, PAGE_TRAIN, PAGE_FINISH = range(6)

# Wizard-side settings that run.json cannot hold (training.sft refuses fields it does not know).
WIZARD_NAME = "wizard.json"
# The rates offered; users of the published recipe found 2e-6..4e-6 too high (see training.sft).
LEARNING_RATES = ("1e-8", "3e-8", "1e-7", "3e-7", "1e-6")
_SPEAKER_RE = r"[a-z0-9][a-z0-9_-]{0,47}"
_DEFAULTS = {f.name: f.default for f in fields(SFTConfig)}


def default_runs_root() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("qwen-tts-studio", appauthor=False)) / "runs"


def new_run_dir(root: Path) -> Path:
    return Path(root) / datetime.now().strftime("%Y%m%d-%H%M%S")


def _lr_text(value: float) -> str:
    mantissa, exponent = f"{value:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def speaker_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:48]
    return slug if slug and re.fullmatch(_SPEAKER_RE, slug) else "my-voice"


def command_text(command: list[str]) -> str:
    """A command line the user can paste into their shell."""
    if sys.platform == "win32":  # pragma: no cover
        return subprocess.list2cmdline(command)
    return shlex.join(command)


def validate_args(dataset: Path, run_dir: Path) -> list[str]:
    return [str(dataset), "--out", str(run_dir)]


def prepare_args(run_dir: Path, config: dict[str, Any]) -> list[str]:
    args = [str(run_dir), "--tokenizer", str(config.get("base_model", "")), "--device", config.get("device") or "auto"]
    if config.get("cpu_threads"):
        args += ["--cpu-threads", str(config["cpu_threads"])]
    return args


def sft_args(run_dir: Path) -> list[str]:
    return ["--config", str(Path(run_dir) / CONFIG_NAME)]


def read_wizard_settings(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        data = json.loads((Path(run_dir) / WIZARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class BasePage(QWizardPage):
    """What every page of the fine-tune wizard shares."""

    def wiz(self) -> FineTuneWizard:
        return self.wizard()  # type: ignore[return-value]

    def validatePage(self) -> bool:  # noqa: N802 (Qt override)
        # QWizard.next() only asks validatePage, not isComplete: without this a programmatic next()
        # would walk past a failed step.
        return self.isComplete()

    def _note_playback_availability(self, play_button: QPushButton, note: QLabel) -> None:
        """Say why Play cannot work on a machine without sound output, next to the button."""
        player = self.wiz().clip_player
        if not player.available:
            problem = player.problem or "playback is unavailable"
            play_button.setToolTip(problem)
            note.setText("No sound output: " + problem)

    def _set_back_enabled(self, enabled: bool) -> None:
        # QWizard recomputes its buttons whenever a page reports completeChanged, so this is re-applied
        # right after each such signal.
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            wizard.button(QWizard.WizardButton.BackButton).setEnabled(enabled)


def _browse_row(edit: QWidget, *buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    for button in buttons:
        row.addWidget(button)
    return row


# --- 1. dataset -----------------------------------------------------------------------------------------------


class DatasetPage(BasePage):
    def __init__(self) -> None:
        super().__init__()
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
        form.addRow(dataset_label, _browse_row(self.dataset_edit, self.folder_button, self.file_button))
        run_label = QLabel("R&un folder:")
        run_label.setBuddy(self.run_edit)
        form.addRow(run_label, _browse_row(self.run_edit, self.run_button))
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
            self.run_edit.setText(str(new_run_dir(self.wiz().runs_root)))

    def _paths(self) -> tuple[Path, Path]:
        return (
            Path(self.dataset_edit.text().strip()).expanduser(),
            Path(self.run_edit.text().strip()).expanduser().absolute(),
        )

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        if not self.run_edit.text().strip():
            return False
        if self.wiz().restoring:
            # The recordings may have moved since; a reopened run only needs its report.
            return True
        return bool(self.dataset_edit.text().strip()) and self._paths()[0].exists()

    def validatePage(self) -> bool:  # noqa: N802 (Qt override)
        if not self.isComplete():
            return False
        dataset, run_dir = self._paths()
        wizard = self.wiz()
        if not wizard.restoring:
            problem = self._problem(dataset, run_dir)
            if problem:
                self.error.show_error(*problem)
                return False
        self.error.clear_error()
        wizard.dataset, wizard.run_dir = dataset.absolute(), run_dir
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
        if run_dir.is_dir() and run_dir != self.wiz().run_dir and inspect_run(run_dir).trained:
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
        folder = QFileDialog.getExistingDirectory(self, "Run folder", str(self.wiz().runs_root))
        if folder:
            self.run_edit.setText(folder)

    def _on_open_run_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(self.wiz().runs_root))
        if folder:
            self.wiz().attach_run(Path(folder))


# --- 2. validation ----------------------------------------------------------------------------------------------


class ValidationPage(BasePage):
    COLUMNS = ("Item", "Length", "Status", "Problems and notes")
    _PROBLEM_BRUSH = QColor(253, 226, 228)
    _NOTE_BRUSH = QColor(255, 246, 214)

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Check the recordings")
        self.setSubTitle(
            "Each item is checked for missing or unreadable audio, empty transcripts, length (1 to 30 s), "
            "clipping, silence and duplicates. Items with problems are left out; notes are only for your information."
        )
        self.progress = ProgressRow()
        self.totals = QLabel("")
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setMinimumHeight(180)
        self.table.setWordWrap(False)
        self.show_all = QCheckBox("Show &usable items without notes too")
        self.play_button = QPushButton("&Play")
        self.play_button.setEnabled(False)
        self.playback_note = QLabel("")
        self.playback_note.setStyleSheet("color: #666;")
        self.again_button = QPushButton("Check &again")
        self.error = ErrorBanner()
        self.log = LogView("Details")
        self.runner = StepRunner(self)
        self.items: list[dict[str, Any]] = []
        self.report: dict[str, Any] | None = None
        self._ok = False
        self._report_mtime: float | None = None

        buttons = QHBoxLayout()
        buttons.addWidget(self.show_all)
        buttons.addStretch(1)
        buttons.addWidget(self.playback_note)
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.again_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress)
        layout.addWidget(self.totals)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.error)
        layout.addWidget(self.log)

        self.runner.event_received.connect(self._on_runner_event_received)
        self.runner.log_received.connect(self.log.append)
        self.runner.finished.connect(self._on_runner_finished)
        self.show_all.toggled.connect(self._on_show_all_toggled)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.table.itemDoubleClicked.connect(self._on_table_item_double_clicked)
        self.play_button.clicked.connect(self._on_play_button_clicked)
        self.again_button.clicked.connect(self.start)

    # --- running ----------------------------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        wizard = self.wiz()
        self._note_playback_availability(self.play_button, self.playback_note)
        report = wizard.run_dir / REPORT_NAME if wizard.run_dir else None
        if wizard.restoring:
            # Reopening shows what the folder holds and starts nothing; Check again is one click away.
            if report is not None and report.is_file():
                self._load_report(report)
                self._ok = bool(self.report and self.report.get("totals", {}).get("usable"))
                self.progress.set_finished("checked earlier")
            else:
                self.error.show_error("this run folder has no validation report", "check the recordings again")
            self.completeChanged.emit()
        else:
            self.start()

    def start(self) -> None:
        wizard = self.wiz()
        if self.runner.running or wizard.run_dir is None or wizard.dataset is None:
            return
        self._ok = False
        self.items, self.report = [], None
        self.table.setRowCount(0)
        self.totals.setText("")
        self.error.clear_error()
        self.log.clear()
        self.again_button.setEnabled(False)
        self.progress.set_busy("starting…")
        report = wizard.run_dir / REPORT_NAME
        self._report_mtime = report.stat().st_mtime if report.is_file() else None
        self.completeChanged.emit()
        self.runner.start("training.validate", validate_args(wizard.dataset, wizard.run_dir), run_dir=wizard.run_dir)

    def cleanupPage(self) -> None:  # noqa: N802 (Qt override)
        self.runner.kill()
        self.wiz().clip_player.stop()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self._ok and not self.runner.running

    def _on_runner_event_received(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self.progress.set_progress(0, int(event.get("total") or 0), None, "items")
        elif kind == "progress":
            self.progress.set_progress(int(event["done"]), int(event["total"]), event.get("eta_s"), "items")
        elif kind == "warning":
            self.log.append(f"warning: {event.get('message', '')}")

    def _on_runner_finished(self, outcome: Outcome) -> None:
        self.again_button.setEnabled(True)
        report = self.wiz().run_dir / REPORT_NAME
        fresh = report.is_file() and report.stat().st_mtime != self._report_mtime
        if outcome.status == FINISHED:
            self._load_report(report)
            self._ok = bool(self.report and self.report.get("totals", {}).get("usable"))
            self.progress.set_finished("done")
        else:
            # "Nothing usable" still writes the report: the table then shows why.
            if fresh:
                self._load_report(report)
            self.progress.set_finished("failed")
            self.error.show_error(outcome.message, outcome.hint)
            if outcome.status == CRASHED:
                self.log.set_expanded(True)
        self.completeChanged.emit()

    # --- the report ------------------------------------------------------------------------------------

    def _load_report(self, path: Path) -> None:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            items = list(report["items"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.error.show_error(f"{path}: unreadable ({exc})", "check the recordings again")
            return
        self.report, self.items = report, items
        self._fill_table()
        totals = report.get("totals", {})
        kinds = totals.get("problems") or {}
        left_out = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
        text = (
            f"<b>{totals.get('usable', 0)}</b> of {totals.get('items', 0)} items usable, "
            f"{format_duration(float(totals.get('seconds') or 0.0))} of audio."
        )
        if left_out:
            text += f" Left out: {left_out}."
        self.totals.setText(text)

    def _fill_table(self) -> None:
        show_all = self.show_all.isChecked()
        rows = [item for item in self.items if show_all or item.get("problems") or item.get("notes")]
        self.table.setRowCount(len(rows))
        for row, item in enumerate(rows):
            problems, notes = list(item.get("problems") or []), list(item.get("notes") or [])
            audio = str(item.get("audio") or "")
            seconds = item.get("seconds")
            status = "left out" if problems else ("usable, see note" if notes else "usable")
            cells = (
                Path(audio).name or str(item.get("source", "")),
                "—" if seconds is None else f"{float(seconds):.1f} s",
                status,
                "; ".join(problems + notes),
            )
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setData(Qt.ItemDataRole.UserRole, audio)
                cell.setToolTip(f"{item.get('source', '')}\n{audio}\n“{item.get('text', '')}”")
                if problems:
                    cell.setBackground(self._PROBLEM_BRUSH)
                elif notes:
                    cell.setBackground(self._NOTE_BRUSH)
                self.table.setItem(row, column, cell)
        self._on_table_selection_changed()

    def problem_rows(self) -> list[str]:
        """Item names of the rows that are left out of training, as the table shows them."""
        return [
            self.table.item(row, 0).text()
            for row in range(self.table.rowCount())
            if self.table.item(row, 2).text() == "left out"
        ]

    # --- playback ---------------------------------------------------------------------------------------

    def _selected_audio(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        cell = self.table.item(rows[0].row(), 0)
        return cell.data(Qt.ItemDataRole.UserRole) if cell else None

    def _on_show_all_toggled(self, _checked: bool) -> None:
        self._fill_table()

    def _on_table_selection_changed(self) -> None:
        player = self.wiz().clip_player if self.wizard() else None
        self.play_button.setEnabled(bool(player and player.available and self._selected_audio()))

    def _on_table_item_double_clicked(self, _item: QTableWidgetItem) -> None:
        self._on_play_button_clicked()

    def _on_play_button_clicked(self) -> None:
        player = self.wiz().clip_player
        if player.playing:
            player.stop()
            return
        audio = self._selected_audio()
        if audio:
            problem = player.play(audio)
            self.playback_note.setText(problem or "")

    def _on_player_playing_changed(self, playing: bool) -> None:
        self.play_button.setText("&Stop" if playing else "&Play")


# --- 3. settings ------------------------------------------------------------------------------------------------


class CommandDialog(QDialog):
    """The exact commands the wizard runs, to copy into a terminal or a script."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Training commands")
        self.setMinimumSize(640, 360)
        self.text = QPlainTextEdit(text)
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("&Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self._on_copy_clicked)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)

    def _on_copy_clicked(self) -> None:
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.clipboard().setText(self.text.toPlainText())


class SettingsPage(BasePage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Training settings")
        self.setSubTitle("The defaults suit most voices. Show command shows exactly what will run.")
        self.base_combo = QComboBox()
        self.base_combo.setEditable(True)
        self.base_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.base_combo.setMinimumContentsLength(40)
        self.base_combo.lineEdit().setPlaceholderText("a Qwen3-TTS 12Hz Base checkpoint folder")
        self.base_button = QPushButton("Bro&wse…")
        self.speaker_edit = QLineEdit()
        self.speaker_edit.setValidator(QRegularExpressionValidator(QRegularExpression(_SPEAKER_RE), self))
        self.speaker_edit.setToolTip("Lower-case letters, digits, '_' and '-': the name you pick when rendering")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.lr_combo = QComboBox()
        self.lr_combo.setEditable(True)
        self.lr_combo.addItems(LEARNING_RATES)
        validator = QDoubleValidator(0.0, 1.0, 12, self)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.lr_combo.setValidator(validator)
        lr_note = QLabel(
            f"Default {_lr_text(DEFAULT_LEARNING_RATE)}. Users of the published recipe found 2e-6 to 4e-6 made "
            "speech speed up and the voice drift from the speaker, and got the best results between 1e-8 and 1e-7. "
            "Weights stay in full precision here, so even 1e-7 is a real (gentle) fine-tune."
        )
        lr_note.setWordWrap(True)
        lr_note.setStyleSheet("color: #555;")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.precision_combo = QComboBox()
        for value, label in (
            ("auto", "auto (bf16 on a CUDA GPU that has it, else fp32)"),
            ("bf16", "bf16 (CUDA only)"),
            ("fp32", "fp32"),
        ):
            self.precision_combo.addItem(label, value)
        self.gpus_spin = QSpinBox()
        self.gpus_spin.setRange(1, 64)
        self.gpus_spin.setToolTip("More than one runs one process per GPU through accelerate launch")

        # Advanced: rarely changed, folded away.
        self.advanced_button = QToolButton()
        self.advanced_button.setText("&Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setAutoRaise(True)
        self.advanced = QWidget()
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cuda", "cpu"])
        self.accumulation_spin = QSpinBox()
        self.accumulation_spin.setRange(1, 1024)
        self.max_steps_spin = QSpinBox()
        self.max_steps_spin.setRange(0, 10_000_000)
        self.max_steps_spin.setSpecialValueText("no limit")
        self.checkpoint_spin = QSpinBox()
        self.checkpoint_spin.setRange(1, 1_000_000)
        self.keep_spin = QSpinBox()
        self.keep_spin.setRange(1, 100)
        self.sample_text_edit = QLineEdit()
        self.sample_tokens_spin = QSpinBox()
        self.sample_tokens_spin.setRange(0, 100_000)
        self.sample_tokens_spin.setSpecialValueText("auto")
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(0, 1024)
        self.threads_spin.setSpecialValueText("all cores")
        advanced_form = QFormLayout(self.advanced)
        advanced_form.setContentsMargins(12, 0, 0, 0)
        advanced_form.addRow("Device:", self.device_combo)
        advanced_form.addRow("Gradient accumulation:", self.accumulation_spin)
        advanced_form.addRow("Stop after (steps):", self.max_steps_spin)
        advanced_form.addRow("Checkpoint every (steps):", self.checkpoint_spin)
        advanced_form.addRow("Checkpoints kept:", self.keep_spin)
        advanced_form.addRow("Sample sentence:", self.sample_text_edit)
        advanced_form.addRow("Sample length (tokens):", self.sample_tokens_spin)
        advanced_form.addRow("CPU threads:", self.threads_spin)
        self.advanced.setVisible(False)

        self.command_button = QPushButton("Show &command")
        self.error = ErrorBanner()
        self.command_dialog: CommandDialog | None = None

        form = QFormLayout()

        def row(text: str, field: QWidget | QHBoxLayout, buddy: QWidget) -> None:
            label = QLabel(text)
            label.setBuddy(buddy)
            form.addRow(label, field)

        row("Base &model:", _browse_row(self.base_combo, self.base_button), self.base_combo)
        row("&Speaker name:", self.speaker_edit, self.speaker_edit)
        row("&Epochs:", self.epochs_spin, self.epochs_spin)
        row("&Learning rate:", self.lr_combo, self.lr_combo)
        form.addRow("", lr_note)
        row("Batch si&ze:", self.batch_spin, self.batch_spin)
        row("&Precision:", self.precision_combo, self.precision_combo)
        row("&GPUs:", self.gpus_spin, self.gpus_spin)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)
        layout.addWidget(self.error)
        layout.addStretch(1)
        layout.addWidget(self.command_button, 0, Qt.AlignmentFlag.AlignLeft)

        self.base_button.clicked.connect(self._on_base_button_clicked)
        self.advanced_button.toggled.connect(self._on_advanced_button_toggled)
        self.command_button.clicked.connect(self._on_command_button_clicked)
        self.speaker_edit.textChanged.connect(self._on_field_changed)
        self.base_combo.currentTextChanged.connect(self._on_field_changed)
        self.lr_combo.currentTextChanged.connect(self._on_field_changed)
        self._loaded_for: Path | None = None
        self._set_values(dict(_DEFAULTS))

    # --- values ---------------------------------------------------------------------------------------

    def _set_values(self, config: dict[str, Any], gpus: int = 1) -> None:
        merged = {**_DEFAULTS, **config}
        self.base_combo.setEditText(str(merged.get("base_model") or ""))
        self.speaker_edit.setText(str(merged.get("speaker") or ""))
        self.epochs_spin.setValue(int(merged["epochs"]))
        self.lr_combo.setEditText(_lr_text(float(merged["learning_rate"])))
        self.batch_spin.setValue(int(merged["batch_size"]))
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(merged["precision"])))
        self.gpus_spin.setValue(max(1, int(gpus)))
        self.device_combo.setCurrentText(str(merged["device"]))
        self.accumulation_spin.setValue(int(merged["gradient_accumulation"]))
        self.max_steps_spin.setValue(int(merged["max_steps"] or 0))
        self.checkpoint_spin.setValue(int(merged["checkpoint_every"]))
        self.keep_spin.setValue(int(merged["keep_checkpoints"]))
        self.sample_text_edit.setText(str(merged["sample_text"]))
        self.sample_tokens_spin.setValue(int(merged["sample_max_new_tokens"] or 0))
        self.threads_spin.setValue(int(merged["cpu_threads"] or 0))

    def values(self) -> dict[str, Any]:
        """The settings as run.json fields (what the user can change here)."""
        try:
            rate: float | str = float(self.lr_combo.currentText().strip())
        except ValueError:
            rate = self.lr_combo.currentText().strip()
        base = self.base_combo.currentText().strip()
        local = Path(base).expanduser()
        if base and local.exists():
            # The commands run from another working folder: a relative path would point elsewhere there.
            base = str(local.resolve())
        return {
            "base_model": base,
            "speaker": self.speaker_edit.text().strip(),
            "epochs": self.epochs_spin.value(),
            "learning_rate": rate,
            "batch_size": self.batch_spin.value(),
            "precision": self.precision_combo.currentData(),
            "device": self.device_combo.currentText(),
            "gradient_accumulation": self.accumulation_spin.value(),
            "max_steps": self.max_steps_spin.value() or None,
            "checkpoint_every": self.checkpoint_spin.value(),
            "keep_checkpoints": self.keep_spin.value(),
            "sample_text": self.sample_text_edit.text().strip() or _DEFAULTS["sample_text"],
            "sample_max_new_tokens": self.sample_tokens_spin.value() or None,
            "cpu_threads": self.threads_spin.value() or None,
        }

    def config(self) -> dict[str, Any]:
        """run.json as it will be written: what is there already (fields this page does not show) plus the page."""
        wizard = self.wiz()
        existing = read_config(wizard.run_dir) if wizard.run_dir else {}
        return {**existing, **self.values()}

    @property
    def gpus(self) -> int:
        return self.gpus_spin.value()

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        wizard = self.wiz()
        self.error.clear_error()
        self._fill_base_models()
        if wizard.run_dir != self._loaded_for:
            self._loaded_for = wizard.run_dir
            existing = read_config(wizard.run_dir) if wizard.run_dir else {}
            gpus = int(read_wizard_settings(wizard.run_dir).get("gpus") or 1)
            if existing:
                self._set_values(existing, gpus)
            elif wizard.dataset is not None:
                self.speaker_edit.setText(speaker_slug(self._dataset_name(wizard.dataset)))
        if not self.base_combo.currentText().strip() and self.base_combo.count():
            self.base_combo.setCurrentIndex(0)

    @staticmethod
    def _dataset_name(dataset: Path) -> str:
        # A folder, or a manifest named after its speaker; metadata.csv says nothing, its folder may.
        if dataset.is_dir():
            return dataset.name
        return dataset.parent.name if dataset.stem.lower() in ("metadata", "train", "dataset") else dataset.stem

    def _fill_base_models(self) -> None:
        current = self.base_combo.currentText()
        self.base_combo.blockSignals(True)
        self.base_combo.clear()
        try:
            from studio.engine.models import READY, list_models

            for entry in list_models():
                if entry.kind == "tts" and entry.model_type == "base" and entry.state == READY:
                    self.base_combo.addItem(entry.source)
                    self.base_combo.setItemData(self.base_combo.count() - 1, entry.name, Qt.ItemDataRole.ToolTipRole)
        except Exception:  # noqa: BLE001 - a broken models folder must not block the wizard; Browse still works
            pass
        self.base_combo.setEditText(current)
        self.base_combo.blockSignals(False)

    def _on_field_changed(self, _text: str) -> None:
        self.error.clear_error()
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return bool(self.base_combo.currentText().strip()) and bool(self.speaker_edit.text().strip())

    def validatePage(self) -> bool:  # noqa: N802 (Qt override)
        if not self.isComplete():
            return False
        wizard = self.wiz()
        config = self.config()
        problem = self._check(config)
        if problem:
            self.error.show_error(*problem)
            return False
        if not self._settle_checkpoints(config):
            return False
        run_dir = wizard.run_dir
        if wizard.restoring:
            # Reopening only shows the settings; rewriting run.json (say, with its defaults spelled out)
            # under a training that may be running would be a change nobody asked for.
            self.error.clear_error()
            return True
        run_dir.mkdir(parents=True, exist_ok=True)
        if read_config(run_dir) != config:
            atomic_write_text(run_dir / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        settings = {**read_wizard_settings(run_dir), "gpus": self.gpus}
        if read_wizard_settings(run_dir) != settings:
            atomic_write_text(run_dir / WIZARD_NAME, json.dumps(settings, indent=2) + "\n")
        self.error.clear_error()
        return True

    def _check(self, config: dict[str, Any]) -> tuple[str, str] | None:
        # training.sft's own reader judges the fields, so the page and the command never disagree.
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / CONFIG_NAME
            path.write_text(json.dumps(config), encoding="utf-8")
            try:
                load_config(path)
            except CommandError as exc:
                return exc.message.replace(str(path), CONFIG_NAME), exc.hint or ""
        base = Path(str(config["base_model"])).expanduser()
        if base.exists() or base.is_absolute() or str(config["base_model"]).startswith((".", "~")):
            from studio.engine.loader import EngineError, validate_checkpoint

            if not base.is_dir():
                return f"{base}: no such model folder", "choose a downloaded Qwen3-TTS 12Hz Base checkpoint folder"
            try:
                kind = validate_checkpoint(base).get("tts_model_type")
            except EngineError as exc:
                return str(exc), "choose a downloaded Qwen3-TTS 12Hz Base checkpoint folder"
            if kind != "base":
                return (
                    f"{base} is a {kind} checkpoint, not a Base one",
                    "fine-tuning starts from Qwen3-TTS-12Hz-1.7B-Base or -0.6B-Base",
                )
        return None

    def _settle_checkpoints(self, config: dict[str, Any]) -> bool:
        """Settings a checkpoint cannot resume with mean starting over: ask before deleting anything."""
        wizard = self.wiz()
        state = inspect_run(wizard.run_dir)
        if not state.checkpoints or state.alive:
            return True
        try:
            saved = json.loads((state.checkpoints[-1] / "state.json").read_text(encoding="utf-8")).get("config") or {}
        except (OSError, ValueError):
            return True
        merged = {**_DEFAULTS, **config}
        changed = [name for name in RESUME_FIELDS if name in saved and saved[name] != merged.get(name)]
        if not changed:
            return True
        if not self.confirm_start_over(changed):
            return False
        out = output_dir(wizard.run_dir, read_config(wizard.run_dir) or config)
        for name in ("checkpoints", "samples", "export", "tensorboard"):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / "metrics.csv").unlink(missing_ok=True)
        return True

    def confirm_start_over(self, changed: list[str]) -> bool:
        answer = QMessageBox.question(
            self,
            "Start training over?",
            f"This run already has checkpoints, made with other values of: {', '.join(changed)}.\n\n"
            "Training cannot resume them with the new settings. Delete its checkpoints, samples and export "
            "and start over?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    # --- buttons -----------------------------------------------------------------------------------------

    def commands(self) -> list[list[str]]:
        wizard = self.wiz()
        run_dir = wizard.run_dir or Path("RUN_DIR")
        dataset = wizard.dataset or Path("DATASET")
        return [
            training_command("training.validate", validate_args(dataset, run_dir)),
            training_command("training.prepare", prepare_args(run_dir, self.config())),
            training_command("training.sft", sft_args(run_dir), processes=self.gpus),
        ]

    def command_text(self) -> str:
        validate, prepare, sft = (command_text(c) for c in self.commands())
        run_json = json.dumps(self.config(), indent=2, ensure_ascii=False)
        return (
            f"# 1. Check the recordings\n{validate}\n\n"
            f"# 2. Encode them to 12 Hz codes\n{prepare}\n\n"
            f"# 3. Fine-tune (resumes from the newest checkpoint; touch RUN_DIR/STOP to stop)\n{sft}\n\n"
            f"# run.json\n{run_json}\n"
        )

    def _on_command_button_clicked(self) -> None:
        if self.command_dialog is not None:
            self.command_dialog.close()
        self.command_dialog = CommandDialog(self.command_text(), self)
        self.command_dialog.show()

    def _on_base_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Base model folder", self.base_combo.currentText())
        if folder:
            self.base_combo.setEditText(folder)

    def _on_advanced_button_toggled(self, shown: bool) -> None:
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.advanced.setVisible(shown)
