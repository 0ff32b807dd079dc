"""The studio's main window: the script editor, the parsed segments beside it, and project files."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from platformdirs import user_cache_dir, user_music_dir
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QBrush, QCloseEvent, QColor, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QToolBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.audio.export import ExportError
from studio.audio.playback import PlaybackUnavailable, Player, default_output_device
from studio.core.plan import PlannedSegment
from studio.core.project import PROJECT_SUFFIX, Project, ProjectError, load_project, save_project
from studio.core.tags import PauseItem, ScriptError, parse_script_tolerant
from studio.engine.job import InputError, export_results, plan_project
from studio.engine.render import DONE, FAILED
from studio.ui.render_settings import MachineSettings, RenderSettingsDialog
from studio.ui.render_worker import JobOutcome, RenderController, RenderJob
from studio.ui.script_editor import ScriptEditor
from studio.ui.waveform import WaveformView

APP_TITLE = "Qwen3-TTS Studio"
_FILE_FILTER = f"Qwen3-TTS Studio projects (*{PROJECT_SUFFIX})"
# Re-parsing on every keystroke is cheap for short scripts but not for a 5,000-line one; a short
# idle delay keeps typing smooth either way.
_REPARSE_DELAY_MS = 150
_PLAYHEAD_INTERVAL_MS = 33


class _RenderProgress:
    """Segments done / total and an ETA from the measured speed (seconds per character rendered)."""

    def __init__(self, segments: list[PlannedSegment]) -> None:
        self.total = len(segments)
        self.done = 0
        self._chars_left = {s.index: len(s.text) for s in segments if s.kind == "speech"}
        self._chars_rendered = 0
        self._seconds = 0.0

    def finished(self, index: int, seconds_to_render: float, cached: bool) -> None:
        self.done += 1
        chars = self._chars_left.pop(index, 0)
        if not cached and chars:
            self._chars_rendered += chars
            self._seconds += seconds_to_render

    def eta_seconds(self) -> float | None:
        if not self._chars_rendered:
            return None
        return sum(self._chars_left.values()) * self._seconds / self._chars_rendered


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.project = Project()
        self.project_path: Path | None = None

        self.editor = ScriptEditor()
        self.segments = QTreeWidget()
        self.segments.setHeaderLabels(["Line", "Emotion", "Voice", "Directives", "Text", "State"])
        self.segments.setRootIsDecorated(False)
        self.segments.setAlternatingRowColors(True)
        header = self.segments.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.segments.itemActivated.connect(self._on_segments_item_activated)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.editor)
        top.addWidget(self.segments)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        self.waveform = WaveformView()
        self.waveform.seek_requested.connect(self._on_waveform_seek_requested)
        self.transport = QToolBar("Transport")
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.transport)
        bottom_layout.addWidget(self.waveform)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)

        self.machine = self._load_machine_settings()
        self.renderer = RenderController(self)
        worker = self.renderer.worker
        worker.model_loading.connect(self._on_worker_model_loading)
        worker.model_loaded.connect(self._on_worker_model_loaded)
        worker.segment_started.connect(self._on_worker_segment_started)
        worker.chunk_rendered.connect(self._on_worker_chunk_rendered)
        worker.segment_finished.connect(self._on_worker_segment_finished)
        worker.job_finished.connect(self._on_worker_job_finished)
        self._job: RenderJob | None = None
        self._shut_down = False
        self._job_segments: dict[int, PlannedSegment] = {}
        # Plan index -> (state, message, (line, text)) of the last render, shown in the segment list.
        self._segment_states: dict[int, tuple[str, str, tuple[int, str]]] = {}
        self._segment_start: dict[int, int] = {}
        self._progress: _RenderProgress | None = None
        self._model_info = None
        self.last_export = None
        self.last_outcome: JobOutcome | None = None
        self.player: Player | None = None
        self._segment_lines: list[tuple[int, int, int]] = []  # (start, end, line) for the playhead
        try:
            self.output_device = default_output_device()
            self.playback_problem: str | None = None
        except PlaybackUnavailable as exc:
            self.output_device = None
            self.playback_problem = str(exc)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setVisible(False)
        self.model_label = QLabel("no model loaded")
        self.statusBar().addPermanentWidget(self.progress_bar)
        self.statusBar().addPermanentWidget(self.model_label)
        self._playhead_timer = QTimer(self)
        self._playhead_timer.setInterval(_PLAYHEAD_INTERVAL_MS)
        self._playhead_timer.timeout.connect(self._on_playhead_timer)

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

        render_menu = self.menuBar().addMenu("&Render")
        self.render_action = QAction("&Render All", self)
        self.render_action.setShortcut(QKeySequence("Ctrl+R"))
        self.render_action.triggered.connect(self.render_all)
        self.stop_render_action = QAction("&Stop Rendering", self)
        self.stop_render_action.setShortcut(QKeySequence("Ctrl+."))
        self.stop_render_action.setEnabled(False)
        self.stop_render_action.triggered.connect(self.stop_rendering)
        settings_action = QAction("Render &Settings…", self)
        settings_action.setShortcut(QKeySequence("Ctrl+,"))
        settings_action.triggered.connect(self.edit_render_settings)
        for action in (self.render_action, self.stop_render_action, settings_action):
            render_menu.addAction(action)

        self.play_action = QAction("&Play", self)
        self.play_action.setShortcut(QKeySequence("Ctrl+Space"))
        self.play_action.triggered.connect(self.toggle_playback)
        self.stop_play_action = QAction("S&top", self)
        self.stop_play_action.triggered.connect(self.stop_playback)
        playback_menu = self.menuBar().addMenu("&Playback")
        playback_menu.addAction(self.play_action)
        playback_menu.addAction(self.stop_play_action)
        self.transport.addAction(self.render_action)
        self.transport.addAction(self.stop_render_action)
        self.transport.addSeparator()
        self.transport.addAction(self.play_action)
        self.transport.addAction(self.stop_play_action)
        self._update_transport()

    # --- model <-> view ----------------------------------------------------------------------------

    def refresh_segments(self) -> None:
        result = parse_script_tolerant(self.editor.toPlainText())
        self.segments.clear()
        rows = []
        for index, item in enumerate(result.items):
            if isinstance(item, PauseItem):
                row = QTreeWidgetItem([str(item.line), "", "", "", f"(pause {item.seconds:g} s)"])
            else:
                directives = ", ".join(f"{key}: {value}" for key, value in item.directives.items())
                row = QTreeWidgetItem([str(item.line), item.emotion or "", item.voice or "", directives, item.text])
            row.setData(0, Qt.ItemDataRole.UserRole, (item.line, item.column))
            self._show_state(row, self._state_of(index, item))
            rows.append(row)
        self.segments.addTopLevelItems(rows)
        for column in (0, 1, 2, 3, 5):
            self.segments.resizeColumnToContents(column)
        if result.errors:
            first = result.errors[0]
            more = f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
            self.statusBar().showMessage(f"{first}{more}: fix it to render this line")
        else:
            speech = sum(1 for item in result.items if not isinstance(item, PauseItem))
            self.statusBar().showMessage(f"{speech} speech segments, {len(result.items) - speech} pauses")

    def _state_of(self, index: int, item) -> tuple[str, str]:
        """The render state of parsed item `index`: what the last render did with it, or stale."""
        known = self._segment_states.get(index)
        text = getattr(item, "text", "")
        if known is None or known[2] != (item.line, text):
            return ("stale", "not rendered since the last edit")
        return known[0], known[1]

    def _show_state(self, row: QTreeWidgetItem, state: tuple[str, str]) -> None:
        name, message = state
        row.setText(5, name)
        row.setToolTip(5, message)
        colour = {"failed": "#d62728", "rendering": "#c0761a", "done": "#2a7d2a", "cached": "#2a7d2a"}.get(name)
        if colour:
            row.setForeground(5, QBrush(QColor(colour)))

    def _set_segment_state(self, index: int, state: str, message: str = "") -> None:
        segment = self._job_segments.get(index)
        if segment is None:
            return
        self._segment_states[index] = (state, message, (segment.line, segment.text))
        row = self.segments.topLevelItem(index)
        if row is not None and row.data(0, Qt.ItemDataRole.UserRole)[0] == segment.line:
            self._show_state(row, (state, message))

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

    # --- rendering --------------------------------------------------------------------------------

    def _load_machine_settings(self) -> MachineSettings:
        settings = QSettings()
        return MachineSettings(
            device=str(settings.value("render/device", "auto")),
            cpu_threads=int(settings.value("render/cpu_threads", 0)),
        )

    def edit_render_settings(self) -> bool:
        dialog = RenderSettingsDialog(self.project, self.machine, self)
        if dialog.exec() != RenderSettingsDialog.DialogCode.Accepted:
            return False
        settings = QSettings()
        settings.setValue("render/device", self.machine.device)
        settings.setValue("render/cpu_threads", self.machine.cpu_threads)
        self.editor.document().setModified(True)
        return True

    def _voices(self) -> dict:
        voices = {name: entry.voice for name, entry in self.project.cast.items() if entry.voice is not None}
        voices[None] = voices.get(self.project.render.voice)
        return voices

    def output_folder(self) -> Path:
        if self.project.render.output_dir:
            return Path(self.project.render.output_dir)
        if self.project_path is not None:
            return self.project_path.parent
        return Path(user_music_dir()) / "Qwen3-TTS Studio"

    def render_all(self) -> bool:
        """Render the whole script; returns False (with the reason shown) when it cannot start."""
        if self.renderer.busy:
            self.statusBar().showMessage("A render is already running", 4000)
            return False
        self.project.script = self.editor.toPlainText()
        try:
            segments = plan_project(self.project, source="script")
        except InputError as exc:
            first = parse_script_tolerant(self.project.script).errors
            if first and isinstance(first[0], ScriptError):
                self.editor.move_cursor_to(first[0].line, first[0].column)
            QMessageBox.warning(self, "Cannot render", f"Fix the script first: {exc}")
            return False
        if not self.project.render.model or self._voices()[None] is None:
            if not self.edit_render_settings():
                return False
            segments = plan_project(self.project, source="script")
        voices = self._voices()
        missing = sorted({s.voice for s in segments if s.kind == "speech" and voices.get(s.voice) is None}, key=str)
        if missing:
            QMessageBox.warning(self, "Cannot render", f"Voice {missing[0]!r} is not set up in the project's cast.")
            return False
        self._start_job(segments, voices)
        return True

    def _start_job(self, segments: list[PlannedSegment], voices: dict) -> None:
        self._close_player()
        self.waveform.reset(24000)
        self._segment_start.clear()
        self._segment_lines.clear()
        self._job_segments = {s.index: s for s in segments}
        self._segment_states.clear()
        for s in segments:
            self._set_segment_state(s.index, "locked" if s.locked else "queued")
        self._progress = _RenderProgress(segments)
        self._job_started = time.monotonic()
        self.progress_bar.setRange(0, max(1, len(segments)))
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self._job = self.renderer.submit(
            model=self.project.render.model,
            segments=segments,
            voices=voices,
            cache_dir=Path(user_cache_dir("qwen-tts-studio", appauthor=False)) / "renders",
            device=self.machine.device,
            cpu_threads=self.machine.cpu_threads or None,
            generation=self.project.render.generation,
        )
        self.statusBar().showMessage(f"Rendering {len(segments)} segments…")
        self._update_transport()

    def stop_rendering(self) -> None:
        self.renderer.cancel_all()
        self.statusBar().showMessage("Stopping after the current segment…")

    def _is_current(self, job_id: int) -> bool:
        return self._job is not None and job_id == self._job.job_id

    def _on_worker_model_loading(self, job_id: int, message: str) -> None:
        if self._is_current(job_id):
            self.statusBar().showMessage(message[:1].upper() + message[1:] + "…")

    def _on_worker_model_loaded(self, job_id: int, info) -> None:
        self._model_info = info
        self.model_label.setText(info.summary())
        if self._is_current(job_id) and info.sample_rate != self.waveform.audio.sample_rate:
            self.waveform.reset(info.sample_rate)

    def _on_worker_segment_started(self, job_id: int, index: int) -> None:
        if not self._is_current(job_id):
            return
        segment = self._job_segments[index]
        self._set_segment_state(index, "rendering")
        self.statusBar().showMessage(
            f"Rendering segment {index + 1} of {len(self._job_segments)} (line {segment.line})…{self._eta_text()}"
        )

    def _on_worker_chunk_rendered(self, job_id: int, index: int, chunk) -> None:
        if not self._is_current(job_id):
            return  # a result of a job the user replaced
        start, _end = self.waveform.append(chunk.samples)
        self._segment_start.setdefault(index, start)
        if self.player is None and self.output_device is not None:
            self._open_player()
            if self.player is not None:
                self.player.play()
        self._update_transport()

    def _on_worker_segment_finished(self, job_id: int, index: int, result) -> None:
        if not self._is_current(job_id):
            return
        segment = self._job_segments[index]
        start = self._segment_start.get(index, len(self.waveform.audio))
        end = len(self.waveform.audio)
        if result.state == DONE:
            if segment.kind == "pause":
                label = ""
            else:
                label = segment.emotion or ""
                if not result.emotion_applied:
                    label += " (not applied)"
            self.waveform.add_segment(start, end, label, line=segment.line, pause=segment.kind == "pause")
            self._segment_lines.append((start, end, segment.line))
        if result.state == FAILED:
            self._set_segment_state(index, "failed", result.error or "")
        else:
            notes = [] if result.emotion_applied else ["the emotion is not applied by this voice's model"]
            notes += [result.warning] if result.warning else []
            self._set_segment_state(index, "cached" if result.cached else "done", "; ".join(notes))
        self._progress.finished(index, result.seconds_to_render, result.cached)
        self.progress_bar.setValue(self._progress.done)

    def _eta_text(self) -> str:
        eta = self._progress.eta_seconds() if self._progress else None
        return "" if eta is None else f" about {eta:.0f} s left"

    def _on_worker_job_finished(self, job_id: int, outcome: JobOutcome) -> None:
        if not self._is_current(job_id):
            return
        self.last_outcome = outcome
        self._job = None
        self.progress_bar.setVisible(False)
        if self.player is not None:
            self.player.rendering_done = True
        self._update_transport()
        if outcome.error:
            self.statusBar().showMessage(f"Render failed: {outcome.error}")
            QMessageBox.critical(self, "Render failed", outcome.error)
            return
        if outcome.cancelled:
            self.statusBar().showMessage(f"Render stopped after {len(outcome.results)} segments")
            return
        failed = [r for r in outcome.results if r.state == FAILED]
        if failed:
            first = failed[0]
            self.statusBar().showMessage(
                f"{len(failed)} segments failed (line {first.segment.line}: {first.error}); nothing was exported"
            )
            return
        name = self.project_path.stem if self.project_path else "untitled"
        try:
            self.last_export = export_results(
                outcome.results,
                sample_rate=outcome.sample_rate,
                folder=self.output_folder(),
                name=name,
                model=self._model_info,
                when=datetime.now(),
            )
        except (ExportError, OSError) as exc:
            self.statusBar().showMessage(f"Export failed: {exc}")
            QMessageBox.critical(self, "Export failed", str(exc))
            return
        cached = sum(1 for r in outcome.results if r.cached)
        seconds = time.monotonic() - self._job_started
        self.statusBar().showMessage(
            f"Rendered {len(outcome.results)} segments in {seconds:.1f} s ({cached} from cache); "
            f"saved {self.last_export.audio}"
        )

    # --- playback ------------------------------------------------------------------------------------

    def _open_player(self) -> None:
        try:
            self.player = Player(self.waveform.audio, device=self.output_device)
        except PlaybackUnavailable as exc:
            self.playback_problem = str(exc)
            self.output_device = None
            self.statusBar().showMessage(str(exc))
            self.player = None
            return
        self._playhead_timer.start()

    def _close_player(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None
        self._playhead_timer.stop()

    def toggle_playback(self) -> None:
        if self.output_device is None:
            self.statusBar().showMessage(self.playback_problem or "playback is unavailable", 5000)
            return
        if self.player is None:
            if not len(self.waveform.audio):
                return
            self._open_player()
            if self.player is None:
                return
            self.player.rendering_done = self._job is None
        if self.player.playing:
            self.player.pause()
        else:
            self.player.play()
        self._update_transport()

    def stop_playback(self) -> None:
        if self.player is not None:
            self.player.stop()
            self.waveform.set_playhead(0)
        self._update_transport()

    def _on_waveform_seek_requested(self, sample: int) -> None:
        if self.player is not None:
            self.player.seek(sample)
        self.waveform.set_playhead(sample)

    def _on_playhead_timer(self) -> None:
        if self.player is None:
            return
        position = self.player.position
        self.waveform.set_playhead(position)
        line = next((ln for start, end, ln in self._segment_lines if start <= position < end), None)
        self.waveform.select_line(line)
        if not self.player.playing:
            self._update_transport()

    def _update_transport(self) -> None:
        rendering = self._job is not None
        self.render_action.setEnabled(not rendering)
        self.stop_render_action.setEnabled(rendering)
        can_play = self.output_device is not None and bool(len(self.waveform.audio))
        self.play_action.setEnabled(can_play)
        self.stop_play_action.setEnabled(can_play)
        playing = self.player is not None and self.player.playing
        self.play_action.setText("&Pause" if playing else "&Play")
        if self.output_device is None:
            self.play_action.setToolTip(self.playback_problem or "playback is unavailable")

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
        if not self._confirm_discard():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop playback and the render thread; safe to call more than once."""
        if self._shut_down:
            return
        self._shut_down = True
        self._close_player()
        if self.renderer.thread.isRunning():
            self.renderer.shutdown()
        # pyqtgraph's view must drop its scene before Qt deletes the widgets; otherwise a paint event
        # still queued for the view can reach a scene Python already collected.
        self.waveform.close()
