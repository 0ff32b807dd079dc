"""The main window's exports: File -> Export Audio… (the mix, to a path the user chose), Open Containing
Folder, and the timestamped copy a Render All writes; all written off the UI thread."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import QMessageBox

from studio.audio.export import BOOK_FORMATS, ExportError, PathExport, existing_targets, export_targets
from studio.core.chapters import Chapter, chapters_in, safe_file_name
from studio.core.tags import analyse_lines
from studio.core.units import count
from studio.engine.render import SegmentResult
from studio.paths import default_output_dir
from studio.session.exporting import book_tags, export_mix, export_results
from studio.session.pipeline import SAMPLE_RATE, JobOutcome
from studio.ui.export_dialog import ExportChoice, ExportDialog

_log = logging.getLogger(__name__)


def acx_summary(report) -> str:
    """"; ACX check passed", or the checks that failed, for the status bar after an audiobook export."""
    if report is None:
        return ""
    failed = [check for check in report.checks if not check.passed]
    if not failed:
        return "; ACX check passed"
    return "; ACX check: " + "; ".join(f"{c.name} {c.measured} (needs {c.required})" for c in failed)


def replace_question(existing: list[Path]) -> tuple[str, str]:
    """The title and text of the question asked before an export replaces files."""
    def name(path: Path) -> str:
        return f"{path.name}/ (a folder)" if path.is_dir() else path.name

    folder = existing[0].parent
    if len(existing) == 1:
        question = f"Replace {existing[0].name}?"
        return question, f"{question}\n\n{name(existing[0])} already exists in {folder}. Replacing it overwrites it."
    question = f"Replace {len(existing)} files?"
    listed = "\n".join(f"  {name(p)}" for p in existing)
    return question, (f"{question}\n\nThese already exist in {folder}:\n{listed}\n\n"
                      "Replacing them overwrites what is there now.")


class ExportActions:
    """Mixed into MainWindow."""

    # Class-level defaults: the mixin has no __init__ of its own.
    _path_export_task = None
    _last_export_folder: Path | None = None
    last_path_export: PathExport | None = None  # what File -> Export Audio last wrote

    def _build_export_menu(self, file_menu) -> None:
        """The File menu's export entries (called while the menus are built)."""
        self.export_audio_action = self._action(
            "&Export Audio…", QKeySequence("Ctrl+E"), self.export_audio, menu=file_menu,
            tip="Write the rendered lines, in script order, to a file you choose")
        self.open_export_folder_action = self._action(
            "Open &Containing Folder", None, self.open_export_folder, menu=file_menu,
            tip="Show the folder of the last export in the file manager")
        self.open_export_folder_action.setEnabled(False)

    def output_folder(self) -> Path:
        if self.project.render.output_dir:
            return Path(self.project.render.output_dir)
        if self.project_path is not None:
            return self.project_path.parent
        return default_output_dir()

    # --- File -> Export Audio… ------------------------------------------------------------------------

    def _mix_status(self, chapter: Chapter | None = None) -> tuple[list[SegmentResult], int, int]:
        """The mix's segments (of one chapter, or all), the number of lines with something to render, and
        how many of those have no current audio (never rendered, edited since, or a line the script cannot
        parse)."""
        lines = self.model.lines()
        analyses = analyse_lines(self.model.text)
        wanted = missing = 0
        for number, (line, analysis) in enumerate(zip(lines, analyses, strict=True), start=1):
            if chapter is not None and not chapter.holds(number):
                continue
            if analysis.error is None and not analysis.items:
                continue  # an empty line has nothing to render
            wanted += 1
            render = self.session.current_render(line)
            if analysis.error is not None or render is None or not render.complete(len(analysis.items)):
                missing += 1
        results = self.session.mix_results(lines, [len(a.items) for a in analyses])
        if chapter is not None:
            results = [r for r in results if chapter.holds(r.segment.line)]
        return results, wanted, missing

    def _default_export_path(self, chapter: Chapter | None = None) -> Path:
        name = self.project_path.stem if self.project_path else "untitled"
        if chapter is not None:
            name = f"{name} - {chapter.number:02d} {safe_file_name(chapter.title)}"
        last = self._last_export_folder
        folder = last if last is not None and last.is_dir() else self.output_folder()
        return folder / f"{name}.{self.project.render.export.audio_format}"

    def export_audio(self, chapter: Chapter | None = None) -> bool:
        """Ask where and how, then write the mix (of one chapter, or all). True when an export was started."""
        if self._path_export_task is not None:
            self.statusBar().showMessage("An export is already being written", 4000)
            return False
        self.sync_project()
        results, wanted, missing = self._mix_status(chapter)
        if not results:
            QMessageBox.information(
                self, "Nothing to export",
                "No line has been rendered yet. Render the script first (Render → Render All, Ctrl+R).")
            return False
        if missing:
            buttons = QMessageBox.StandardButton
            box = QMessageBox(
                QMessageBox.Icon.Question, "Some lines are not rendered",
                f"{missing} of {count(wanted, 'line')} {'is' if missing == 1 else 'are'} not rendered yet "
                f"(never rendered, or edited since).\n\nExport the {wanted - missing} rendered "
                f"{'line' if wanted - missing == 1 else 'lines'} without {'it' if missing == 1 else 'them'}, "
                "or cancel and render first?",
                buttons.Yes | buttons.Cancel, self)
            box.button(buttons.Yes).setText("&Export Rendered Lines")
            box.setDefaultButton(buttons.Cancel)
            if box.exec() != buttons.Yes:
                return False
        summary = f"{count(wanted - missing, 'line')}, {sum(r.n_samples for r in results) / SAMPLE_RATE:.1f} s"
        what = "" if chapter is None else f" of chapter {chapter.number}, {chapter.title!r}"
        dialog = ExportDialog(self.project.render.export, self._default_export_path(chapter), self,
                              summary=f"Exporting {summary} of audio{what}, in script order.")
        self.export_dialog = dialog
        while True:
            if dialog.exec() != ExportDialog.DialogCode.Accepted:
                return False
            choice = dialog.choice()
            self._keep_export_settings(choice)
            targets = export_targets(choice.path, subtitles=choice.settings.subtitles, stems=choice.settings.stems)
            existing = existing_targets(targets)
            if not existing:
                break
            title, text = replace_question(existing)
            buttons = QMessageBox.StandardButton
            if QMessageBox.question(self, title, text, buttons.Yes | buttons.No, buttons.No) == buttons.Yes:
                break
            # No: back to the dialog, with what was chosen, to pick another name.
        self._start_path_export(results, choice, existing, chapter)
        return True

    def _keep_export_settings(self, choice: ExportChoice) -> None:
        if choice.settings == self.project.render.export:
            return
        self.project.render.export = choice.settings
        # Settings live outside the undo stack; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)

    def _start_path_export(self, results: list[SegmentResult], choice: ExportChoice, replace: list[Path],
                           chapter: Chapter | None = None) -> None:
        settings = choice.settings
        self.statusBar().showMessage(f"Exporting {choice.path}…")

        book = self._book_export(settings.audio_format)
        if chapter is not None:
            book["chapters"] = [chapter]

        def export(_task) -> PathExport:
            return export_mix(results, sample_rate=SAMPLE_RATE, path=choice.path, audio_format=settings.audio_format,
                              subtitles=settings.subtitles, stems=settings.stems,
                              loudness_lufs=settings.loudness_lufs, replace=replace, acx=settings.acx, **book)

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, ExportError | OSError):
                _log.error("export failed", exc_info=(type(exc), exc, exc.__traceback__))
            self._on_path_export_finished(None, _error_text(exc))

        self._path_export_task = self.background.run(
            export, on_done=lambda result: self._on_path_export_finished(result, None), on_error=failed)

    def _book_export(self, audio_format: str) -> dict:
        """The script's chapters and the project's book details, read on the UI thread for an export. A
        cover that cannot be used is said in the status bar; the audiobook is exported without it."""
        name = self.project_path.stem if self.project_path else "Untitled"
        book, problem = book_tags(self.project.book, project_folder=self.project_path.parent if self.project_path
                                  else None, fallback_title=name)
        if problem and audio_format in BOOK_FORMATS:
            self.statusBar().showMessage(f"Cover not used: {problem}", 10000)
        return {"chapters": chapters_in(self.model.text), "book": book}

    @property
    def exporting_audio(self) -> bool:
        """File -> Export Audio is writing (the files appear when it ends)."""
        return self._path_export_task is not None

    def _on_path_export_finished(self, result: PathExport | None, error: str | None) -> None:
        self._path_export_task = None
        if error is not None:
            self.statusBar().showMessage(f"Export failed: {error}")
            QMessageBox.critical(self, "Export failed", error)
            return
        self.last_path_export = result
        self._remember_export_folder(result.audio.parent)
        extras = []
        if result.subtitles:
            extras.append("subtitles")
        if result.stems:
            extras.append(count(len(result.stems), "stem"))
        more = f" with {' and '.join(extras)}" if extras else ""
        self.statusBar().showMessage(f"Exported {result.audio}{more}{acx_summary(result.acx)}")

    # --- Open Containing Folder ---------------------------------------------------------------------

    def _remember_export_folder(self, folder: Path) -> None:
        self._last_export_folder = folder
        self.open_export_folder_action.setEnabled(True)
        self.open_export_folder_action.setStatusTip(f"Show {folder} in the file manager")

    def open_export_folder(self) -> bool:
        folder = self._last_export_folder
        if folder is None:
            return False
        if not folder.is_dir():
            QMessageBox.warning(self, "Folder not found", f"{folder}: the folder of the last export is gone.")
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            QMessageBox.warning(self, "Cannot open the folder",
                                f"{folder}: no file manager could be started to show it.")
            return False
        return True

    # --- the timestamped copy after Render All ------------------------------------------------------

    def _export(self, results: list[SegmentResult], outcome: JobOutcome, summary: str) -> None:
        settings = self.project.render.export
        if not settings.timestamped_copy:
            self.statusBar().showMessage(
                f"{summary}; no timestamped copy saved (turned off in File → Export Audio…)")
            return
        name = self.project_path.stem if self.project_path else "untitled"
        self.statusBar().showMessage(f"{summary}; saving…")
        folder = self.output_folder()

        book = self._book_export(settings.audio_format)

        def export(_task):
            # Encoding and writing an hour of audio takes a while: off the UI thread, so playback and
            # editing stay smooth. The result (or the error) comes back on the main thread.
            return export_results(results, sample_rate=outcome.sample_rate, folder=folder, name=name,
                                  models=outcome.models, when=datetime.now(), audio_format=settings.audio_format,
                                  stems=settings.stems, loudness_lufs=settings.loudness_lufs, acx=settings.acx,
                                  **book)

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, ExportError | OSError):
                # A bug must still end in a dialog, never a stuck "saving…".
                _log.error("export failed", exc_info=(type(exc), exc, exc.__traceback__))
            self._on_export_finished(None, _error_text(exc), summary)

        self._export_task = self.background.run(
            export, on_done=lambda result: self._on_export_finished(result, None, summary), on_error=failed)

    @property
    def exporting(self) -> bool:
        """An export is being written (the render's files appear when it ends)."""
        return self._export_task is not None

    def _on_export_finished(self, result, error: str | None, summary: str) -> None:
        self._export_task = None
        if error is not None:
            self.statusBar().showMessage(f"Export failed: {error}")
            QMessageBox.critical(self, "Export failed", error)
            return
        self.session.last_export = result
        self._remember_export_folder(result.audio.parent)
        self.statusBar().showMessage(f"{summary}; saved {result.audio}")


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ExportError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return f"internal error while exporting: {type(exc).__name__}: {exc}"
