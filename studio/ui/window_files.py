"""The main window's files: new, open, save (refusing to overwrite another program's changes), recent
files, autosave and recovery. The work is the document's (studio.session.document); this asks the
questions."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QMessageBox,
)

from studio.core.book_model import BookImportError
from studio.core.project import (
    PROJECT_SUFFIX,
    Project,
    ProjectConflictError,
    ProjectError,
    load_project_versioned,
)
from studio.core.recovery import discard_recovery
from studio.core.units import count
from studio.session.book_project import import_book
from studio.settings import load_settings, save_settings
from studio.ui.file_drops import dropped_file

APP_TITLE = "Qwen3-TTS Studio"
_FILE_FILTER = f"Qwen3-TTS Studio projects (*{PROJECT_SUFFIX})"
_BOOK_FILTER = "Books (*.epub *.md *.markdown *.txt);;All files (*)"


class FileActions:
    """Mixed into MainWindow."""

    _import_task = None  # a book being imported (File -> Import Book…)

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
            project, version = load_project_versioned(path)
        except ProjectError as exc:
            QMessageBox.critical(self, "Cannot open project", str(exc))
            return False
        self._set_project(project, Path(path), version=version)
        self._remember(Path(path))
        return True

    # --- File -> Import Book… ---------------------------------------------------------------------------

    def import_book_dialog(self) -> bool:
        """Ask for a book and where its project goes, then import it in the background and open it."""
        if self._import_task is not None or not self._confirm_discard():
            return False
        name, _ = QFileDialog.getOpenFileName(self, "Import book", self._last_folder(), _BOOK_FILTER)
        return bool(name) and self.import_book(Path(name))

    def import_book(self, book: Path) -> bool:
        """Ask where the new project goes (beside the book by default) and import `book` into it."""
        start = book.with_suffix(PROJECT_SUFFIX)
        while True:
            name, _ = QFileDialog.getSaveFileName(self, "Save the imported book as", str(start), _FILE_FILTER,
                                                  options=QFileDialog.Option.DontConfirmOverwrite)
            if not name:
                return False
            target = Path(name) if name.endswith(PROJECT_SUFFIX) else Path(name + PROJECT_SUFFIX)
            if not target.exists():
                break
            # An import makes a new project: it never replaces one (that project's audio and takes).
            QMessageBox.warning(self, "Choose another name", f"{target} already exists. An import never "
                                "replaces a project; choose a new name.")
            start = target
        self.statusBar().showMessage(f"Importing {book.name}…")

        def done(imported) -> None:
            self._import_task = None
            if self.open_project(imported.path):
                self.statusBar().showMessage(
                    f"Imported {book.name}: {count(imported.chapters, 'chapter')}, {count(imported.lines, 'line')}, "
                    f"{count(imported.words, 'word')}. Give it a voice (Render → Voices and Cast) and render.")

        def failed(exc: BaseException) -> None:
            self._import_task = None
            if not isinstance(exc, BookImportError):  # a bug: its traceback goes to the log for a report
                logging.getLogger(__name__).error("import failed", exc_info=(type(exc), exc, exc.__traceback__))
            self.statusBar().showMessage("Import failed", 4000)
            QMessageBox.critical(self, "Cannot import the book", str(exc) or type(exc).__name__)

        self._import_task = self.background.run(lambda _task: import_book(book, target), on_done=done,
                                                on_error=failed)
        return True

    # --- files dropped on the window -------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()
            return
        super().dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        path = dropped_file(event.mimeData())
        if path is None:
            super().dropEvent(event)
            return
        event.acceptProposedAction()
        # After the drop has returned: the questions that follow are modal, and the drag source waits.
        QTimer.singleShot(0, lambda: self.open_dropped(path))

    def open_dropped(self, path: Path) -> bool:
        """A dropped project opens; a dropped book is imported as a new project (after asking where)."""
        if not self._confirm_discard():
            return False
        if path.suffix.lower() == PROJECT_SUFFIX:
            return self.open_project(path)
        return self._import_task is None and self.import_book(path)

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

    def _save_to(self, path: Path, *, overwrite_changes: bool = False) -> bool:
        # Saving over the file this window opened checks that nobody changed it meanwhile; Save As onto
        # another existing file was already confirmed in the file dialog.
        try:
            self.document.save(path, overwrite_changes=overwrite_changes)
        except ProjectConflictError as exc:
            buttons = QMessageBox.StandardButton
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                "Project changed on disk",
                f"{exc}.\n\nSaving here would replace those changes. Save your version under another name, or "
                "overwrite the file (what is on disk now is kept as a .bak file)?",
                buttons.Save | buttons.Discard | buttons.Cancel,
                self,
            )
            box.button(buttons.Save).setText("Save &As…")
            box.button(buttons.Discard).setText("&Overwrite")
            box.setDefaultButton(buttons.Save)
            answer = buttons(box.exec())
            if answer == QMessageBox.StandardButton.Save:
                return self.save_as()
            if answer != QMessageBox.StandardButton.Discard:
                return False
            return self._save_to(path, overwrite_changes=True)
        except OSError as exc:
            QMessageBox.critical(
                self, "Cannot save project",
                f"{path}: {exc.strerror or exc}. Your changes are still open here; use Save As to keep them "
                "elsewhere.",
            )
            return False
        self.undo_stack.setClean()
        self.setWindowModified(False)
        self._update_title()
        self._remember(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _remember(self, path: Path) -> None:
        try:
            save_settings(load_settings().with_recent_file(path))
        except OSError as exc:
            self.statusBar().showMessage(f"Recent files not saved: {exc}", 5000)

    def recent_files(self) -> list[str]:
        return list(load_settings().recent_files)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for name in self.recent_files():
            self.recent_menu.addAction(name, lambda n=name: self._open_recent(Path(n)))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _open_recent(self, path: Path) -> None:
        if self._confirm_discard():
            self.open_project(path)

    def _last_folder(self) -> str:
        return load_settings().last_folder or str(Path.home())

    def _confirm_discard(self) -> bool:
        if self.undo_stack.isClean() and not self.isWindowModified():
            return True
        answer = QMessageBox.question(
            self,
            APP_TITLE,
            "The project has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # --- autosave and recovery ------------------------------------------------------------------------

    def autosave(self) -> Path | None:
        """Write unsaved work to the recovery folder (never over the project file itself)."""
        if not self.isWindowModified():
            return None
        try:
            return self.document.autosave()
        except OSError as exc:
            self.statusBar().showMessage(f"Autosave failed: {exc}", 5000)
            return None

    def _discard_own_recovery(self) -> None:
        self.document.discard_recovery()

    def offer_recovery(self) -> bool:
        """After a crash: offer the newest recovery file. Returns True when one was restored."""
        recoveries = self.document.recoveries()
        if not recoveries:
            return False
        newest = recoveries[0]
        when = datetime.fromtimestamp(newest.saved_at).strftime("%Y-%m-%d %H:%M")
        target = str(newest.project_path) if newest.project_path else "an unsaved project"
        answer = QMessageBox.question(
            self,
            "Recover unsaved work?",
            f"Qwen3-TTS Studio did not close cleanly. Unsaved changes to {target} from {when} were kept.\n\n"
            "Recover them? (The project file itself was not changed.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            discard_recovery(newest.path)
            return False
        self._set_project(newest.project, newest.project_path, modified=True, version=newest.base)
        discard_recovery(newest.path)
        self.autosave()
        self.statusBar().showMessage(f"Recovered unsaved changes from {when}; save to keep them")
        return True
