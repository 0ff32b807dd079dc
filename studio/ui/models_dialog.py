"""The model manager dialog: which Qwen3-TTS models are here, getting and removing them, and where they run.

All the work is done by studio.engine.models (Qt-free); this module only shows it. A download runs on
a background task (studio.ui.background) whose progress and outcome arrive on the main thread; cancel is
the task's threading.Event, which download_model checks before every write. Errors are shown in an
inline label, not a modal box, so a failed download never blocks the window (and tests can read it).
The only modal questions are the ones that guard data: deleting a model and closing while a download runs.

(Over 600 lines on purpose: one table and the actions on its selected row; splitting the rows' drawing
from the actions would scatter one dialog's state over two modules.)
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.devices import detect_device
from studio.engine.errors import EngineError
from studio.engine.models import (
    INVALID,
    NOT_DOWNLOADED,
    PARTIAL,
    READY,
    DownloadCancelled,
    DownloadProgress,
    ModelEntry,
    delete_model,
    disk_usage,
    download_model,
    estimate_vram_bytes,
    forget_local_folder,
    format_bytes,
    format_duration,
    instruct_support,
    known_model,
    list_models,
    pick_precision,
    register_local_folder,
    resolve_endpoint,
)
from studio.ui.background import BackgroundRunner, BackgroundTask
from studio.ui.render_settings import DEVICES, MachineSettings

PRECISIONS = (("auto", None), ("bf16", "bfloat16"), ("fp32", "float32"))
_SHORT_DTYPE = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}
COLUMNS = ("Model", "State", "On disk", "Download", "VRAM", "Emotions")
COL_NAME, COL_STATE, COL_DISK, COL_DOWNLOAD, COL_VRAM, COL_EMOTIONS = range(len(COLUMNS))
_LOCAL_HINT = "Or use “Add local folder…” to point the studio at a checkpoint folder you already have."
# The engine's errors point at the CLI for the local-folder alternative; here there is a button for it.
_CLI_LOCAL_HINT = "(models add-local FOLDER)"
# Readable on both light and dark palettes.
_STATE_COLOURS = {READY: "#2e9e4f", PARTIAL: "#c47f00", INVALID: "#d0403b"}
_ERROR_COLOUR = "#d0403b"
# The progress bar counts permille: bytes overflow a QProgressBar's int range for models over 2 GB.
_BAR_MAX = 1000


def _download_outcome(repo_id: str, error: BaseException) -> tuple[str, str]:
    """("cancelled" | "failed", one line) for an exception a download ended with."""
    if isinstance(error, DownloadCancelled):
        return "cancelled", str(error)
    if isinstance(error, EngineError):  # DownloadError and ModelError: one line, written for the user
        return "failed", str(error)
    return "failed", f"{repo_id}: {type(error).__name__}: {error}"


def _item(text: str, *, tooltip: str = "", align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tooltip:
        item.setToolTip(tooltip)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _display_name(entry: ModelEntry) -> str:
    return entry.name if entry.origin == "hub" else f"{entry.folder.name} (local folder)"


class ModelManagerDialog(QDialog):
    """Known and local models with their state; download, cancel, resume, delete, add a folder, choose one."""

    model_chosen = Signal(str)  # the entry's source (its folder), for project.render.model
    download_progress = Signal(object)  # DownloadProgress, re-emitted after the dialog has shown it
    download_ended = Signal(str, str)  # repo_id, "done" | "cancelled" | "failed"

    def __init__(self, machine: MachineSettings | None = None, parent=None, *, endpoint: str | None = None,
                 current_model: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.machine = machine if machine is not None else MachineSettings()
        self.endpoint = endpoint
        self.current_model = current_model or None
        self.entries: list[ModelEntry] = []
        self._tasks = BackgroundRunner(self)
        self._download: BackgroundTask | None = None
        self._download_repo: str | None = None
        self._close_result: int | None = None  # set when a close waits for a cancelled download to stop
        self._last_progress: DownloadProgress | None = None
        self.detected = detect_device()

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setHighlightSections(False)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())

        self.details_label = QLabel()
        self.details_label.setWordWrap(True)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(lambda: self.start_download())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the download; what arrived is kept, so it can resume later")
        self.cancel_button.clicked.connect(self.cancel_download)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        self.add_local_button = QPushButton("Add local folder…")
        self.add_local_button.setToolTip("Register a Qwen3-TTS checkpoint folder you already have")
        self.add_local_button.clicked.connect(self._pick_local_folder)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Render the project with this model")
        self.use_button.clicked.connect(self.use_selected)
        buttons = QHBoxLayout()
        for button in (self.download_button, self.cancel_button, self.delete_button, self.add_local_button,
                       self.refresh_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, _BAR_MAX)
        self.progress_bar.setValue(0)
        self.progress_label = QLabel("No download running.")
        self.progress_label.setWordWrap(True)
        # Inline rather than a message box: a failed download should not block the window.
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setVisible(False)

        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(self.machine.device if self.machine.device in DEVICES else "auto")
        self.device_combo.currentTextChanged.connect(self._on_device_changed)
        self.device_label = QLabel()
        self.device_label.setWordWrap(True)
        self.precision_combo = QComboBox()
        for label, dtype in PRECISIONS:
            self.precision_combo.addItem(label, dtype)
        self.precision_combo.setToolTip("The precision the VRAM column is estimated for")
        self.precision_combo.currentIndexChanged.connect(lambda _index: self._on_precision_changed())
        self.precision_label = QLabel()
        self.precision_label.setWordWrap(True)
        self.resident_note = QLabel(self._resident_note())
        self.resident_note.setWordWrap(True)
        device_box = QGroupBox("Device and precision")
        device_form = QFormLayout(device_box)
        device_form.addRow("&Device:", self._beside(self.device_combo, self.device_label))
        device_form.addRow("&Precision:", self._beside(self.precision_combo, self.precision_label))
        device_form.addRow(self.resident_note)

        self.disk_label = QLabel()
        self.disk_label.setWordWrap(True)
        self.disk_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close_box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close_box.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.disk_label, 1)
        bottom.addWidget(close_box)

        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details_label)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.message_label)
        layout.addWidget(device_box)
        layout.addLayout(bottom)
        self.resize(940, 600)

        self._show_device()
        self.refresh()
        if self.table.rowCount():
            self.table.selectRow(max(0, self._row_of(self.current_model)))

    @staticmethod
    def _beside(field: QWidget, note: QLabel) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(field)
        layout.addWidget(note, 1)
        return row

    # --- what is shown ----------------------------------------------------------------------------

    def effective_device(self) -> str:
        choice = self.device_combo.currentText()
        return self.detected.device if choice == "auto" else choice

    def dtype(self) -> str:
        """The dtype the VRAM column is estimated for: the chosen one, or what the engine picks on the device."""
        return self.precision_combo.currentData() or pick_precision(self.effective_device())

    def _resident_note(self) -> str:
        big = known_model("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign")
        size = format_bytes(estimate_vram_bytes(big.parameters, "bfloat16")) if big else "about 5.5 GB"
        return (f"A 1.7B model in bf16 takes about {size}. A mixed cast keeps as many of its models loaded as fit "
                "the model memory budget (Render Settings), and loads them one at a time when they do not all fit, "
                "so a 12 GB card is enough for any cast.")

    def _show_device(self) -> None:
        choice = self.device_combo.currentText()
        text = f"Detected: {self.detected.describe()}"
        warn = (choice == "cuda" and self.detected.device != "cuda") or (
            choice == "mps" and self.detected.device != "mps")
        if warn:
            text = f"{choice.upper()} is not available on this machine, rendering would fail. {text}"
        self.device_label.setText(text)
        self.device_label.setStyleSheet(f"color: {_ERROR_COLOUR};" if warn else "")
        short = _SHORT_DTYPE.get(pick_precision(self.effective_device()), "")
        self.precision_label.setText(f"The memory column is estimated for this. auto = {short}, what the engine "
                                     "loads on this device")

    def _on_device_changed(self, device: str) -> None:
        # The window keeps MachineSettings and saves it after the dialog closes.
        self.machine.device = device
        self._show_device()
        self._fill_table()

    def _on_precision_changed(self) -> None:
        self._fill_table()

    def refresh(self) -> None:
        """Read the models folder again (states, sizes, disk usage) and redraw the table."""
        self.entries = list_models()
        self._fill_table()
        self._show_disk_usage()

    def _show_disk_usage(self) -> None:
        usage = disk_usage()
        self.disk_label.setText(f"Models folder: {usage.folder} — {format_bytes(usage.models_bytes)} used, "
                                f"{format_bytes(usage.free_bytes)} free on its disk. "
                                f"Hub: {resolve_endpoint(self.endpoint)}")

    def _fill_table(self) -> None:
        selected = self.selected_entry()
        keep = selected.name if selected else None
        dtype = self.dtype()
        unit = "RAM" if self.effective_device() == "cpu" else "VRAM"
        header = self.table.horizontalHeaderItem(COL_VRAM)
        header.setText(f"{unit} ({_SHORT_DTYPE.get(dtype, dtype)})")
        header.setToolTip("Estimated memory to load the model and render one segment "
                          "(weights x 1.2 + the talker's KV cache)")
        self.table.setSortingEnabled(False)
        self.table.blockSignals(True)  # the selection is restored below; no button churn while filling
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            self._fill_row(row, entry, dtype)
        self.table.blockSignals(False)
        if keep is not None and self._row_of(keep) >= 0:
            self.table.selectRow(self._row_of(keep))
        self._update_buttons()

    def _fill_row(self, row: int, entry: ModelEntry, dtype: str) -> None:
        tip = "\n".join(t for t in (entry.description, str(entry.folder)) if t)
        name = _item(_display_name(entry), tooltip=tip)
        name.setData(Qt.ItemDataRole.UserRole, entry.name)
        if self._is_current(entry):
            font = QFont(name.font())
            font.setBold(True)
            name.setFont(font)
            name.setToolTip(f"{tip}\nThe project renders with this model.")
        self.table.setItem(row, COL_NAME, name)
        self.table.setItem(row, COL_STATE, self._state_item(entry))
        self.table.setItem(row, COL_DISK, _item(format_bytes(entry.bytes_on_disk) if entry.bytes_on_disk else "—",
                                                align_right=True))
        if entry.download_bytes is None:
            download = _item("—", tooltip="a local folder: nothing to download")
        elif entry.download_bytes_exact:
            download = _item(format_bytes(entry.download_bytes), tooltip="as listed by the hub", align_right=True)
        else:
            download = _item(f"≈ {format_bytes(entry.download_bytes)}",
                             tooltip="approximate until the hub's file list is fetched", align_right=True)
        self.table.setItem(row, COL_DOWNLOAD, download)
        self.table.setItem(row, COL_VRAM, self._vram_item(entry, dtype))
        self.table.setItem(row, COL_EMOTIONS, self._emotions_item(entry))

    def _state_item(self, entry: ModelEntry) -> QTableWidgetItem:
        if self.downloading == entry.name:
            done = self._last_progress
            percent = f" {int(done.fraction * 100)}%" if done and done.bytes_total else ""  # as the bar rounds
            item = _item(f"downloading{percent}", tooltip="see the progress below")
            item.setForeground(QBrush(QColor(_STATE_COLOURS[PARTIAL])))
            return item
        text, tip = entry.state, ""
        if entry.state == INVALID:
            tip = entry.reason
        elif entry.state == PARTIAL:
            total = format_bytes(entry.download_bytes) if entry.download_bytes else "?"
            text = f"partial ({format_bytes(entry.bytes_on_disk)} of {total})"
            tip = "an interrupted download; Resume continues where it stopped"
        elif entry.state == READY:
            tip = str(entry.folder)
        item = _item(text, tooltip=tip)
        if entry.state in _STATE_COLOURS:
            item.setForeground(QBrush(QColor(_STATE_COLOURS[entry.state])))
        return item

    def _vram_item(self, entry: ModelEntry, dtype: str) -> QTableWidgetItem:
        needed = entry.vram_bytes(dtype)
        if needed is None:
            return _item("—", tooltip="unknown: no weights to count")
        item = _item(format_bytes(needed), align_right=True)
        total = self.detected.total_memory if self.effective_device() == "cuda" else None
        if total and needed > total:
            item.setForeground(QBrush(QColor(_ERROR_COLOUR)))
            item.setToolTip(f"needs about {format_bytes(needed)}; this GPU has {format_bytes(total)}")
        return item

    @staticmethod
    def _emotions_item(entry: ModelEntry) -> QTableWidgetItem:
        if entry.kind != "tts":
            return _item("—", tooltip="the speech tokenizer alone, not a speech model")
        if entry.model_type is None:
            return _item("?", tooltip="unknown until the folder's config.json can be read")
        support = instruct_support(entry.model_type, entry.size)
        if support.honoured:
            return _item("yes", tooltip="emotions and directives are passed to the model as instruct")
        return _item("no", tooltip=support.reason)

    def _is_current(self, entry: ModelEntry) -> bool:
        return self.current_model is not None and self.current_model in (entry.name, entry.source)

    def _row_of(self, name: str | None) -> int:
        for row, entry in enumerate(self.entries):
            if name is not None and name in (entry.name, entry.source):
                return row
        return -1

    def select(self, name: str) -> None:
        """Select the row of a repo id or a folder."""
        row = self._row_of(name)
        if row < 0:
            raise KeyError(name)
        self.table.selectRow(row)

    def entry(self, name: str) -> ModelEntry:
        row = self._row_of(name)
        if row < 0:
            raise KeyError(name)
        return self.entries[row]

    def selected_entry(self) -> ModelEntry | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.entries):
            return None
        return self.entries[rows[0].row()]

    def _update_buttons(self) -> None:
        entry = self.selected_entry()
        busy = self._download is not None
        closing = self._close_result is not None
        hub = entry is not None and entry.origin == "hub"
        self.download_button.setText({PARTIAL: "Resume", INVALID: "Repair"}.get(entry.state if entry else "",
                                                                                "Download"))
        self.download_button.setEnabled(hub and not busy and entry.state != READY)
        self.cancel_button.setEnabled(busy and not closing and not self._download.cancelled)
        being_downloaded = busy and entry is not None and self.downloading == entry.name
        if entry is not None and entry.origin == "local":
            self.delete_button.setText("Forget")
            self.delete_button.setToolTip("Remove this folder from the list; the folder itself is left alone")
            self.delete_button.setEnabled(not closing)
        else:
            self.delete_button.setText("Delete…")
            self.delete_button.setToolTip("Delete the downloaded files of this model")
            self.delete_button.setEnabled(hub and entry.state != NOT_DOWNLOADED and not being_downloaded
                                          and not closing)
        self.add_local_button.setEnabled(not closing)
        self.use_button.setEnabled(entry is not None and entry.state == READY and entry.kind == "tts"
                                   and not being_downloaded)
        self._show_details(entry)

    def _show_details(self, entry: ModelEntry | None) -> None:
        if entry is None:
            self.details_label.setText("Select a model.")
            return
        parts = [entry.description] if entry.description else []
        if entry.state == INVALID:
            parts.append(f"Not usable: {entry.reason}")
        if entry.state != NOT_DOWNLOADED or entry.origin == "local":
            parts.append(f"Folder: {entry.folder}")
        self.details_label.setText("  ·  ".join(parts) or entry.name)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet(f"color: {_ERROR_COLOUR};" if error else "")
        self.message_label.setVisible(bool(text))

    # --- downloads --------------------------------------------------------------------------------

    @property
    def downloading(self) -> str | None:
        """The repo id being downloaded, or None."""
        return self._download_repo if self._download is not None else None

    def start_download(self, repo_id: str | None = None) -> bool:
        """Download (or resume, or repair) `repo_id`, by default the selected model. One at a time."""
        if self._download is not None:
            self._say(f"{self._download_repo} is downloading; one download at a time.", error=True)
            return False
        if repo_id is None:
            entry = self.selected_entry()
            if entry is None or entry.origin != "hub":
                return False
            repo_id = entry.name
        self._say("")
        self._last_progress = None
        endpoint = self.endpoint
        self._download_repo = repo_id
        self._download = self._tasks.run(
            lambda task: download_model(repo_id, progress=task.report, cancel=task.cancel_event, endpoint=endpoint),
            on_done=lambda folder: self._on_outcome(repo_id, "done", str(folder)),
            on_error=lambda error: self._on_outcome(repo_id, *_download_outcome(repo_id, error)),
            on_progress=self._on_progress,
            key="download",
        )
        self.progress_bar.setRange(0, 0)  # busy until the file list says how many bytes there are
        self.progress_label.setText(f"{repo_id}: asking {resolve_endpoint(self.endpoint)} for the file list…")
        self._fill_table()
        return True

    def cancel_download(self) -> None:
        if self._download is None:
            return
        self._download.cancel()
        self.progress_label.setText(f"{self._download_repo}: cancelling…")
        self._update_buttons()

    def _on_progress(self, event: DownloadProgress) -> None:
        if self._download is None or event.repo_id != self._download_repo:
            return
        self._last_progress = event
        if event.bytes_total:
            self.progress_bar.setRange(0, _BAR_MAX)
            self.progress_bar.setValue(int(event.fraction * _BAR_MAX))
        self.progress_label.setText(self._progress_text(event))
        row = self._row_of(event.repo_id)
        if row >= 0:  # only these cells: re-reading the models folder per progress event would crawl
            self.table.setItem(row, COL_STATE, self._state_item(self.entries[row]))
            if event.bytes_done:
                self.table.setItem(row, COL_DISK, _item(format_bytes(event.bytes_done), align_right=True))
        self.download_progress.emit(event)

    @staticmethod
    def _progress_text(event: DownloadProgress) -> str:
        if event.phase == "listing":
            return f"{event.repo_id}: fetching the file list…"
        amount = f"{format_bytes(event.bytes_done)} of {format_bytes(event.bytes_total)}"
        if event.phase == "done":
            return f"{event.repo_id}: {amount}, all {event.files_total} files checked."
        if event.phase == "checking":
            doing = f"checking the bytes kept from the last attempt of {event.file}"
        else:
            doing = event.file or ""
        speed = f"{format_bytes(event.bytes_per_second)}/s" if event.bytes_per_second else "measuring speed"
        return (f"{event.repo_id}: {amount} · {speed} · ETA {format_duration(event.eta_seconds)} · "
                f"{doing} (file {min(event.files_done + 1, event.files_total)} of {event.files_total})")

    def _on_outcome(self, repo_id: str, status: str, detail: str) -> None:
        if self._download is None:
            return
        # The runner has joined the worker thread before calling back: no thread is left behind.
        self._download = None
        self._download_repo = None
        last = self._last_progress
        self.progress_bar.setRange(0, _BAR_MAX)
        if status == "done":
            self.progress_bar.setValue(_BAR_MAX)
            size = f" ({format_bytes(last.bytes_total)})" if last and last.bytes_total else ""
            self.progress_label.setText(f"{repo_id}: downloaded{size}, ready in {detail}.")
        elif status == "cancelled":
            self.progress_label.setText(f"{detail}.")
        else:
            self.progress_bar.setValue(int(last.fraction * _BAR_MAX) if last else 0)
            self.progress_label.setText(f"{repo_id}: download failed.")
            if _CLI_LOCAL_HINT in detail:
                self._say(detail.replace(_CLI_LOCAL_HINT, "with the “Add local folder…” button"), error=True)
            else:
                self._say(f"{detail}\n{_LOCAL_HINT}", error=True)
        self.refresh()
        self.download_ended.emit(repo_id, status)
        if self._close_result is not None:
            result, self._close_result = self._close_result, None
            super().done(result)

    def shutdown(self) -> None:
        """Cancel a running download and wait for its thread (for teardown; the UI path is done())."""
        if self._download is None:
            return
        self._download.discard()
        self._download.join()
        self._download = None
        self._download_repo = None
        if self._close_result is not None:  # a close was waiting for this thread
            result, self._close_result = self._close_result, None
            super().done(result)

    def done(self, result: int) -> None:
        # Every way of closing (Close, Esc, the title bar) comes through here: never leave a thread running.
        if self._download is None:
            super().done(result)
            return
        if self._close_result is not None:
            return  # already waiting for the cancelled download to stop
        answer = QMessageBox.question(
            self, "Download running",
            f"{self._download_repo} is still downloading.\n\nCancel the download and close? What has arrived is "
            "kept, so the download can resume later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        # Closing waits for the thread to notice the cancel (between chunks) rather than blocking the UI on it.
        self._close_result = result
        self.cancel_download()
        self._update_buttons()

    # --- delete, local folders, choosing ----------------------------------------------------------

    def delete_selected(self) -> int | None:
        """Delete the selected download (after asking), or forget a local folder. Returns bytes freed."""
        entry = self.selected_entry()
        if entry is None:
            return None
        if entry.origin == "local":
            forget_local_folder(entry.folder)
            self._say(f"Removed {entry.folder} from the list; the folder itself was left alone.")
            self.refresh()
            return 0
        if self.downloading == entry.name:
            return None
        answer = QMessageBox.question(
            self, "Delete model",
            f"Delete {entry.name}?\n\nThis frees {format_bytes(entry.bytes_on_disk)} in {entry.folder.parent}. "
            "It can be downloaded again later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return None
        try:
            freed = delete_model(entry.name)
        except EngineError as exc:
            self._say(str(exc), error=True)
            self.refresh()
            return None
        note = " The project still points at it: choose another model before rendering." if self._is_current(
            entry) else ""
        self._say(f"Deleted {entry.name}; {format_bytes(freed)} freed.{note}")
        self.refresh()
        return freed

    def _pick_local_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a local checkpoint folder", str(Path.home()))
        if folder:
            self.add_local_folder(folder)

    def add_local_folder(self, folder: str | Path) -> ModelEntry | None:
        """Register a checkpoint folder; a folder that is not one shows why (naming the missing file)."""
        try:
            entry = register_local_folder(folder)
        except EngineError as exc:
            self._say(f"Cannot add this folder: {exc}", error=True)
            return None
        self.refresh()
        self.select(entry.name)
        kind = f"{entry.model_type} {entry.size}" if entry.model_type else "checkpoint"
        self._say(f"Added {entry.folder} ({kind}).")
        return entry

    def use_selected(self) -> str | None:
        """Emit model_chosen with the selected ready model's source; the window sets the project's model."""
        entry = self.selected_entry()
        if entry is None or entry.state != READY or entry.kind != "tts":
            return None
        if self.downloading == entry.name:
            return None
        self.current_model = entry.source
        self.model_chosen.emit(entry.source)
        self._say(f"The project now renders with {_display_name(entry)}.")
        self._fill_table()
        return entry.source
