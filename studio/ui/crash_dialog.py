"""Errors nobody caught: written to a log file and shown in a dialog, never only on stderr.

PySide6 hands an exception raised in a slot (or a Qt virtual override) to ``sys.excepthook`` and carries
on, so installing ExceptionHandler there catches every one of them; ``threading.excepthook`` brings in
those of plain Python threads. The handler:

- logs the traceback to ``<data>/logs/studio.log`` (rotated; with everything else the studio logs at
  WARNING and above) and still prints it to stderr;
- shows one CrashDialog at a time, with "Copy Details" and "Open Log Folder". The same error again
  (same type, same place in the code) is counted in the open dialog, and after that logged only, so a
  failure repeated fifty times (a paint event, a timer) is one dialog, not fifty;
- never recurses: an exception while handling one (the dialog itself failing) is logged and dropped;
- shows the dialog on the main thread whichever thread raised.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from studio import __version__
from studio.paths import log_dir

LOG_FILE_NAME = "studio.log"
_LOG_BYTES = 1024 * 1024
_LOG_BACKUPS = 3
_log = logging.getLogger("studio.crash")


def log_file() -> Path:
    return log_dir() / LOG_FILE_NAME


class CrashDialog(QDialog):
    """One unexpected error: what happened, the traceback, and where the log is."""

    def __init__(self, summary: str, details: str, log_path: Path | None, log_problem: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("CrashDialog")
        self.setWindowTitle("Unexpected error")
        self.setMinimumWidth(620)
        self.details = details
        self.log_path = log_path
        self.repeats = 1
        self.others = 0
        self.signature: tuple | None = None  # set by the handler: which error this dialog shows

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical).pixmap(40, 40))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        top.addWidget(icon)
        text = QVBoxLayout()
        self.summary_label = QLabel(f"<b>Something went wrong:</b> {_escape(summary)}")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.addWidget(self.summary_label)
        if log_path is not None:
            where = f"The details are in the log file {_escape(str(log_path))}."
        else:
            where = f"No log file could be written ({_escape(log_problem or 'unknown reason')})."
        self.advice_label = QLabel(
            "The studio is still running, but what you were doing may not have finished. Save your work "
            f"under a new name if anything looks wrong. {where} Please include the details when you report "
            "this.")
        self.advice_label.setWordWrap(True)
        text.addWidget(self.advice_label)
        top.addLayout(text, 1)
        layout.addLayout(top)

        self.details_view = QPlainTextEdit(details)
        self.details_view.setReadOnly(True)
        self.details_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details_view.setMinimumHeight(160)
        layout.addWidget(self.details_view, 1)
        self.count_label = QLabel()
        self.count_label.setObjectName("CrashCount")
        self.count_label.setVisible(False)
        layout.addWidget(self.count_label)

        self.buttons = QDialogButtonBox()
        self.copy_button = QPushButton("&Copy Details")
        self.copy_button.clicked.connect(self.copy_details)
        self.buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.open_log_button = QPushButton("Open &Log Folder")
        self.open_log_button.setEnabled(log_path is not None)
        self.open_log_button.clicked.connect(self.open_log_folder)
        self.buttons.addButton(self.open_log_button, QDialogButtonBox.ButtonRole.ActionRole)
        close = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setDefault(True)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def report_text(self) -> str:
        import platform

        from PySide6 import __version__ as pyside_version

        return (f"Qwen3-TTS Studio {__version__}, Python {platform.python_version()}, PySide6 {pyside_version}, "
                f"{platform.platform()}\n\n{self.details}")

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.report_text())
        self.copy_button.setText("&Copied")

    def open_log_folder(self) -> None:
        if self.log_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_path.parent)))

    def note_repeat(self) -> None:
        self.repeats += 1
        self._update_count()

    def note_other(self) -> None:
        self.others += 1
        self._update_count()

    def _update_count(self) -> None:
        parts = []
        if self.repeats > 1:
            parts.append(f"This error happened {self.repeats} times.")
        if self.others:
            parts.append(f"{self.others} other {'error' if self.others == 1 else 'errors'} happened meanwhile; "
                         "see the log file.")
        self.count_label.setText(" ".join(parts))
        self.count_label.setVisible(True)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Relay(QObject):
    """Carries an error raised on another thread to the main thread (a queued signal)."""

    raised = Signal(object)


class ExceptionHandler:
    """sys.excepthook and threading.excepthook for the GUI; see the module docstring."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = Path(log_path) if log_path is not None else log_file()
        self.log_problem: str | None = None
        self.dialog: CrashDialog | None = None
        self.counts: dict[tuple, int] = {}
        self.shown: list[CrashDialog] = []  # every dialog shown, newest last
        self._handling = False
        self._file_handler: logging.Handler | None = None
        self._previous_hook = None
        self._previous_thread_hook = None
        self._relay: _Relay | None = None

    # --- installing -----------------------------------------------------------------------------------

    def install(self) -> ExceptionHandler:
        """Become sys.excepthook and threading.excepthook, and start the log file. Call on the main thread."""
        self._open_log()
        self._relay = _Relay()
        self._relay.raised.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self._previous_hook, sys.excepthook = sys.excepthook, self
        self._previous_thread_hook, threading.excepthook = threading.excepthook, self._thread_hook
        return self

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self._previous_hook or sys.__excepthook__
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread_hook or threading.__excepthook__
        if self._file_handler is not None:
            logging.getLogger().removeHandler(self._file_handler)
            self._file_handler.close()
            self._file_handler = None

    def _open_log(self) -> None:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(self.log_path, maxBytes=_LOG_BYTES,
                                                           backupCount=_LOG_BACKUPS, encoding="utf-8")
        except OSError as exc:
            self.log_problem = f"{self.log_path}: {exc.strerror or exc}"
            return
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)
        self._file_handler = handler

    # --- handling -------------------------------------------------------------------------------------

    def __call__(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            (self._previous_hook or sys.__excepthook__)(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self._write(details)
        if self._handling:
            return  # an error while handling one: logged above, never a second round
        self._handling = True
        try:
            error = (_signature(exc_type, tb), _summary(exc_type, exc), details)
            if _on_main_thread():
                self._show(error)
            elif self._relay is not None:
                self._relay.raised.emit(error)
        except BaseException:  # noqa: BLE001 - the hook must never raise
            self._write("while reporting the error above:\n" + traceback.format_exc())
        finally:
            self._handling = False

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self(args.exc_type, args.exc_value, args.exc_traceback)

    def _write(self, text: str) -> None:
        try:
            _log.error("uncaught exception\n%s", text.rstrip())
        except Exception:  # noqa: BLE001 - logging must not take the handler down
            pass
        try:
            sys.stderr.write(text)
        except Exception:  # noqa: BLE001 - no stderr (a windowed build on Windows)
            pass

    def _show(self, error: tuple) -> None:
        """On the main thread: one dialog at a time, each distinct error at most once."""
        signature, summary, details = error
        try:
            seen = self.counts.get(signature, 0)
            self.counts[signature] = seen + 1
            dialog = self.dialog
            if dialog is not None and dialog.isVisible():
                if dialog.signature == signature:
                    dialog.note_repeat()
                else:
                    dialog.note_other()
                return
            if seen:
                return  # shown before and closed: the log has it
            if QApplication.instance() is None:
                return
            dialog = CrashDialog(summary, details, None if self.log_problem else self.log_path, self.log_problem,
                                 QApplication.activeWindow())
            dialog.signature = signature
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
            self.dialog = dialog
            self.shown.append(dialog)
            dialog.open()  # window-modal, without a nested event loop inside the hook
        except BaseException:  # noqa: BLE001 - a failing dialog is logged, never raised again
            self._write("the error dialog itself failed:\n" + traceback.format_exc())


def _on_main_thread() -> bool:
    app = QApplication.instance()
    return app is not None and QThread.currentThread() == app.thread()


def _signature(exc_type, tb) -> tuple:
    """The same error twice: the same type raised from the same places (messages may differ by an id)."""
    frames = tuple((f.filename, f.lineno, f.name) for f in traceback.extract_tb(tb)) if tb is not None else ()
    return (f"{exc_type.__module__}.{exc_type.__qualname__}", frames)


def _summary(exc_type, exc) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc_type.__name__}: {message}" if message else exc_type.__name__


def install_exception_handler(log_path: Path | None = None) -> ExceptionHandler:
    """Install the GUI's handler for uncaught exceptions (see the module docstring); returns it."""
    return ExceptionHandler(log_path).install()
