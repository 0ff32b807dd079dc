"""The main window's exports: writing a finished render's audio, subtitles and manifest off the UI thread."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from studio.audio.export import ExportError
from studio.engine.render import SegmentResult
from studio.paths import default_output_dir
from studio.session.exporting import export_results
from studio.session.pipeline import JobOutcome


class ExportActions:
    """Mixed into MainWindow."""

    def _build_export_menu(self, file_menu) -> None:
        """The File menu's export entries (called while the menus are built)."""

    def output_folder(self) -> Path:
        if self.project.render.output_dir:
            return Path(self.project.render.output_dir)
        if self.project_path is not None:
            return self.project_path.parent
        return default_output_dir()

    def _export(self, results: list[SegmentResult], outcome: JobOutcome, summary: str) -> None:
        name = self.project_path.stem if self.project_path else "untitled"
        self.statusBar().showMessage(f"{summary}; saving…")
        folder, settings = self.output_folder(), self.project.render.export

        def export(_task):
            # Encoding and writing an hour of audio takes a while: off the UI thread, so playback and
            # editing stay smooth. The result (or the error) comes back on the main thread.
            return export_results(results, sample_rate=outcome.sample_rate, folder=folder, name=name,
                                  models=outcome.models, when=datetime.now(), audio_format=settings.audio_format,
                                  stems=settings.stems, loudness_lufs=settings.loudness_lufs)

        def failed(exc: BaseException) -> None:
            if isinstance(exc, ExportError | OSError):
                self._on_export_finished(None, str(exc), summary)
                return
            # A bug must still end in a dialog, never a stuck "saving…".
            logging.getLogger(__name__).error("export failed", exc_info=(type(exc), exc, exc.__traceback__))
            self._on_export_finished(None, f"internal error while exporting: {type(exc).__name__}: {exc}", summary)

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
        self.statusBar().showMessage(f"{summary}; saved {result.audio}")

