"""The studio's main window: the script editor, the parsed segments beside it, and project files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
)

from studio.core.project import PROJECT_SUFFIX, Project, ProjectError, load_project, save_project
from studio.core.tags import PauseItem, parse_script_tolerant
from studio.ui.script_editor import ScriptEditor

APP_TITLE = "Qwen3-TTS Studio"
_FILE_FILTER = f"Qwen3-TTS Studio projects (*{PROJECT_SUFFIX})"
# Re-parsing on every keystroke is cheap for short scripts but not for a 5,000-line one; a short
# idle delay keeps typing smooth either way.
_REPARSE_DELAY_MS = 150


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.project = Project()
        self.project_path: Path | None = None

        self.editor = ScriptEditor()
        self.segments = QTreeWidget()
        self.segments.setHeaderLabels(["Line", "Emotion", "Voice", "Directives", "Text"])
        self.segments.setRootIsDecorated(False)
        self.segments.setAlternatingRowColors(True)
        self.segments.itemActivated.connect(self._on_segments_item_activated)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.editor)
        splitter.addWidget(self.segments)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)

        self._reparse_timer = QTimer(self)
        self._reparse_timer.setSingleShot(True)
        self._reparse_timer.setInterval(_REPARSE_DELAY_MS)
        self._reparse_timer.timeout.connect(self.refresh_segments)
        self.editor.textChanged.connect(self._reparse_timer.start)
        self.editor.document().modificationChanged.connect(self.setWindowModified)

        self._build_menus()
        self.resize(1100, 700)
        self._update_title()
        self.refresh_segments()

    # --- menus ------------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("&New", QKeySequence.StandardKey.New, self.new_project),
            ("&Open…", QKeySequence.StandardKey.Open, self.open_project_dialog),
            ("&Save", QKeySequence.StandardKey.Save, self.save),
            ("Save &As…", QKeySequence.StandardKey.SaveAs, self.save_as),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            action = QAction(text, self)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)

        edit_menu = self.menuBar().addMenu("&Edit")
        undo = QAction("&Undo", self)
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        undo.triggered.connect(self.editor.undo)
        self.editor.undoAvailable.connect(undo.setEnabled)
        undo.setEnabled(False)
        redo = QAction("&Redo", self)
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        redo.triggered.connect(self.editor.redo)
        self.editor.redoAvailable.connect(redo.setEnabled)
        redo.setEnabled(False)
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)

    # --- model <-> view ----------------------------------------------------------------------------

    def refresh_segments(self) -> None:
        result = parse_script_tolerant(self.editor.toPlainText())
        self.segments.clear()
        rows = []
        for item in result.items:
            if isinstance(item, PauseItem):
                row = QTreeWidgetItem([str(item.line), "", "", "", f"(pause {item.seconds:g} s)"])
            else:
                directives = ", ".join(f"{key}: {value}" for key, value in item.directives.items())
                row = QTreeWidgetItem([str(item.line), item.emotion or "", item.voice or "", directives, item.text])
            row.setData(0, Qt.ItemDataRole.UserRole, (item.line, item.column))
            rows.append(row)
        self.segments.addTopLevelItems(rows)
        for column in range(4):
            self.segments.resizeColumnToContents(column)
        if result.errors:
            first = result.errors[0]
            more = f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
            self.statusBar().showMessage(f"{first}{more}: fix it to render this line")
        else:
            speech = sum(1 for item in result.items if not isinstance(item, PauseItem))
            self.statusBar().showMessage(f"{speech} speech segments, {len(result.items) - speech} pauses")

    def _on_segments_item_activated(self, row: QTreeWidgetItem, _column: int) -> None:
        line, column = row.data(0, Qt.ItemDataRole.UserRole)
        self.editor.move_cursor_to(line, column)

    def _update_title(self) -> None:
        name = self.project_path.name if self.project_path else "Untitled"
        self.setWindowTitle(f"{name}[*] — {APP_TITLE}")

    def _set_project(self, project: Project, path: Path | None) -> None:
        self.project = project
        self.project_path = path
        self.editor.setPlainText(project.script)
        self.editor.document().setModified(False)
        self._update_title()
        self.refresh_segments()

    # --- files --------------------------------------------------------------------------------------

    def new_project(self) -> None:
        if self._confirm_discard():
            self._set_project(Project(), None)

    def open_project_dialog(self) -> None:
        if not self._confirm_discard():
            return
        name, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_folder(), _FILE_FILTER)
        if name:
            self.open_project(Path(name))

    def open_project(self, path: Path) -> bool:
        """Load `path`; on failure show the reason and keep the current project as it was."""
        try:
            project = load_project(path)
        except ProjectError as exc:
            QMessageBox.critical(self, "Cannot open project", str(exc))
            return False
        self._set_project(project, path)
        QSettings().setValue("files/last_folder", str(path.parent))
        return True

    def save(self) -> bool:
        if self.project_path is None:
            return self.save_as()
        return self._save_to(self.project_path)

    def save_as(self) -> bool:
        name, _ = QFileDialog.getSaveFileName(self, "Save project", self._last_folder(), _FILE_FILTER)
        if not name:
            return False
        path = Path(name)
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        self.project.script = self.editor.toPlainText()
        try:
            save_project(self.project, path)
        except OSError as exc:
            QMessageBox.critical(self, "Cannot save project", f"{path}: {exc.strerror or exc}")
            return False
        self.project_path = path
        self.editor.document().setModified(False)
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _last_folder(self) -> str:
        return str(QSettings().value("files/last_folder", str(Path.home())))

    def _confirm_discard(self) -> bool:
        if not self.editor.document().isModified():
            return True
        answer = QMessageBox.question(
            self,
            APP_TITLE,
            "The script has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self._confirm_discard():
            event.accept()
        else:
            event.ignore()
