"""The studio's main window: timeline, script editor, emotion palette, waveform and transport.

The ScriptModel is the document. The editor and the timeline are views of it; every edit is an undo
command over a core operation, and the window's modified mark follows the undo stack's clean state.
Rendering goes through the single RenderController thread; results come back as queued signals
tagged with their job id.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from studio.audio.buffers import GrowingAudio
from studio.audio.export import ExportError
from studio.audio.playback import PlaybackUnavailable, Player, default_output_device
from studio.core.instruct import delivery_directives
from studio.core.plan import PlannedSegment, expected_seconds, first_unknown_voice
from studio.core.project import (
    PROJECT_SUFFIX,
    DiskVersion,
    Project,
    ProjectConflictError,
    ProjectError,
    load_project_versioned,
)
from studio.core.recovery import discard_recovery
from studio.core.script import ScriptChange, ScriptModel
from studio.core.tags import PauseItem, SpeechItem, analyse_lines, tag_kind
from studio.core.voices import CastError, VoiceLibraryError, default_voice_library, resolve_cast
from studio.engine.render import DONE, FAILED, SegmentResult
from studio.paths import default_output_dir, recovery_dir, render_cache_dir
from studio.session.checkpoints import choose_checkpoint, installed_checkpoints
from studio.session.design_clone import keep_as_cloned_voice
from studio.session.document import Document
from studio.session.exporting import export_results
from studio.session.pipeline import SAMPLE_RATE, JobOutcome, RenderJob
from studio.session.preflight import FIX_MODELS, FIX_SETTINGS, FIX_VOICES, renderable
from studio.session.render_plan import InputError, RenderPlan, plan_render
from studio.session.render_session import JobEnd, MixPiece, RenderSession
from studio.session.residency import fingerprint_memo_file
from studio.ui.commands import InsertTagCommand, LineStateCommand, MoveLineCommand, RemoveTagCommand
from studio.ui.palette import EmotionPalette
from studio.ui.render_settings import MachineSettings, RenderSettingsDialog
from studio.ui.render_worker import RenderController, RenderMachine
from studio.ui.script_editor import ScriptEditor
from studio.ui.timeline import Chip, ClipInfo, TimelineView
from studio.ui.waveform import WaveformView

APP_TITLE = "Qwen3-TTS Studio"
_FILE_FILTER = f"Qwen3-TTS Studio projects (*{PROJECT_SUFFIX})"
# Re-analysing on every keystroke is cheap for short scripts but not for a 5,000-line one; a short
# idle delay keeps typing smooth either way.
_REFRESH_DELAY_MS = 120
_PLAYHEAD_INTERVAL_MS = 33
AUTOSAVE_INTERVAL_MS = 30_000
_MAX_RECENT = 8


def recovery_folder() -> Path:
    return recovery_dir()


class MainWindow(QMainWindow):
    export_finished = Signal(object, object, str)  # ExportResult | None, error | None, render summary

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("MainWindow")
        # The document (project, file, recovery copy) and the render session hold the state; the
        # window shows them and forwards what the user does.
        self.document = Document()
        self.undo_stack = QUndoStack(self)
        self.model = self.document.model
        self._shut_down = False

        self.editor = ScriptEditor()
        self.timeline = TimelineView()
        self.timeline_scroll = QScrollArea()
        self.timeline_scroll.setWidget(self.timeline)
        self.timeline_scroll.setWidgetResizable(False)
        self.timeline_scroll.setMinimumHeight(150)
        self.palette = EmotionPalette()
        self.waveform = WaveformView()
        self.transport = QToolBar("Transport")
        self.transport.setObjectName("Transport")

        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.transport)
        bottom_layout.addWidget(self.waveform)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.addWidget(self.timeline_scroll)
        self.splitter.addWidget(self.editor)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([460, 130, 180])
        self.waveform.setMinimumHeight(120)
        self.setCentralWidget(self.splitter)
        dock = QDockWidget("Emotions", self)
        dock.setObjectName("EmotionsDock")
        dock.setWidget(self.palette)
        self.palette.setMaximumWidth(190)
        features = QDockWidget.DockWidgetFeature
        dock.setFeatures(features.DockWidgetMovable | features.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        # Rendering: the session keeps every render's state; the controller gives it a thread.
        self.machine = self._load_machine_settings()
        self.session = RenderSession()
        self.renderer = RenderController(self)
        worker = self.renderer.worker
        worker.model_loading.connect(self._on_worker_model_loading)
        worker.model_loaded.connect(self._on_worker_model_loaded)
        worker.segment_started.connect(self._on_worker_segment_started)
        worker.chunk_rendered.connect(self._on_worker_chunk_rendered)
        worker.segment_finished.connect(self._on_worker_segment_finished)
        worker.job_finished.connect(self._on_worker_job_finished)
        worker.cache_probed.connect(self._on_worker_cache_probed)
        self.library = default_voice_library()
        self.last_cloned_profile = None

        # Playback.
        self.player: Player | None = None
        self._play_offset = 0.0  # where the audio in the waveform starts on the timeline (seconds)
        self._segment_lines: list[tuple[int, int, int]] = []  # (start, end, line index) in the waveform
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

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(_REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh_views)
        self._playhead_timer = QTimer(self)
        self._playhead_timer.setInterval(_PLAYHEAD_INTERVAL_MS)
        self._playhead_timer.timeout.connect(self._on_playhead_timer)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

        self.undo_stack.cleanChanged.connect(self._on_undo_stack_clean_changed)
        self.timeline.line_selected.connect(self._on_timeline_line_selected)
        self.timeline.seek_requested.connect(self._on_timeline_seek_requested)
        self.timeline.tag_dropped.connect(self.apply_tag)
        self.timeline.chip_remove_requested.connect(self.remove_tag)
        self.timeline.line_moved.connect(self.move_line)
        self.timeline.render_line_requested.connect(self.render_line)
        self.timeline.new_take_requested.connect(self.new_take)
        self.timeline.take_chosen.connect(self.choose_take)
        self.timeline.play_line_requested.connect(self.play_line)
        self.timeline.lock_toggled.connect(self.toggle_lock)
        self.timeline.copy_line_requested.connect(self.copy_line)
        self.palette.tag_activated.connect(lambda tag: self.apply_tag(self.current_line(), tag))
        self.waveform.seek_requested.connect(self._on_waveform_seek_requested)
        self.export_finished.connect(self._on_export_finished)
        self._export_thread: threading.Thread | None = None

        self._build_menus()
        self.resize(1280, 820)
        self._bind_model(self.document.model)
        self._update_title()

    # --- menus ------------------------------------------------------------------------------------

    def _action(self, text: str, shortcut, slot, *, menu=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(shortcut)
        action.triggered.connect(slot)
        if tip:
            action.setStatusTip(tip)
        if menu is not None:
            menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action("&New", QKeySequence.StandardKey.New, self.new_project, menu=file_menu)
        self._action("&Open…", QKeySequence.StandardKey.Open, self.open_project_dialog, menu=file_menu)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._action("&Save", QKeySequence.StandardKey.Save, self.save, menu=file_menu)
        self._action("Save &As…", QKeySequence.StandardKey.SaveAs, self.save_as, menu=file_menu)
        file_menu.addSeparator()
        self._action("&Quit", QKeySequence.StandardKey.Quit, self.close, menu=file_menu)

        edit_menu = bar.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        edit_menu.addSeparator()
        self._action("Copy Line as &Text", QKeySequence("Ctrl+Shift+C"),
                     lambda: self.copy_line(self.current_line()), menu=edit_menu)
        self._action("Move Line &Up", QKeySequence("Alt+Up"), lambda: self._move_current(-1), menu=edit_menu)
        self._action("Move Line &Down", QKeySequence("Alt+Down"), lambda: self._move_current(1), menu=edit_menu)
        self._action("Focus &Timeline", QKeySequence("Ctrl+1"), self.timeline.setFocus, menu=edit_menu)
        self._action("Focus Script &Editor", QKeySequence("Ctrl+2"), self.editor.setFocus, menu=edit_menu)

        line_menu = bar.addMenu("&Line")
        self.render_line_action = self._action(
            "&Render Line", [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")],
            lambda: self.render_line(self.current_line()), menu=line_menu)
        self._action("&New Take", QKeySequence("Ctrl+T"), lambda: self.new_take(self.current_line()),
                     menu=line_menu)
        self._action("&Play Line", QKeySequence("Ctrl+P"), lambda: self.play_line(self.current_line()),
                     menu=line_menu)
        self._action("&Lock / Unlock Line", QKeySequence("Ctrl+L"), lambda: self.toggle_lock(self.current_line()),
                     menu=line_menu)

        render_menu = bar.addMenu("&Render")
        self.render_action = self._action("&Render All", QKeySequence("Ctrl+R"), self.render_all, menu=render_menu)
        self.stop_render_action = self._action("&Stop Rendering", QKeySequence("Ctrl+."), self.stop_rendering,
                                               menu=render_menu)
        self.stop_render_action.setEnabled(False)
        self._action("Render &Settings…", QKeySequence("Ctrl+,"), self.edit_render_settings, menu=render_menu)
        self._action("&Voices and Cast…", QKeySequence("Ctrl+Shift+V"), self.edit_voices, menu=render_menu)
        self._action("&Models…", QKeySequence("Ctrl+Shift+M"), self.manage_models, menu=render_menu)
        tools_menu = bar.addMenu("&Tools")
        self._action("&Fine-tune a Voice…", QKeySequence("Ctrl+Shift+F"), self.open_finetune_wizard,
                     menu=tools_menu, tip="Train a new speaker from your own recordings")

        playback_menu = bar.addMenu("&Playback")
        self.play_action = self._action("&Play", QKeySequence("Space"), self.toggle_playback, menu=playback_menu)
        self.stop_play_action = self._action("S&top", QKeySequence("Shift+Space"), self.stop_playback,
                                             menu=playback_menu)
        help_menu = bar.addMenu("&Help")
        self._action("Run &Self-Test…", None, self.run_self_test, menu=help_menu,
                     tip="Check this installation: Qt, torch, rendering with a tiny model, sound devices")
        self._action("&About Qwen3-TTS Studio", None, self.show_about, menu=help_menu)
        for action in (self.render_action, self.stop_render_action):
            self.transport.addAction(action)
        self.transport.addSeparator()
        self.transport.addAction(self.play_action)
        self.transport.addAction(self.stop_play_action)
        self._update_transport()

    # --- the document ---------------------------------------------------------------------------------

    def _bind_model(self, model: ScriptModel) -> None:
        self.model = model
        self.document.model = model
        self.editor.bind(model, self.undo_stack)
        model.subscribe(self._on_model_changed)
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.setWindowModified(False)
        self.refresh_views()

    def _on_undo_stack_clean_changed(self, clean: bool) -> None:
        self.setWindowModified(not clean)

    def _on_model_changed(self, change: ScriptChange) -> None:
        self._refresh_timer.start()

    def current_line(self) -> int:
        if self.timeline.selected is not None and not self.editor.hasFocus():
            return self.timeline.selected
        return self.editor.textCursor().blockNumber()

    def refresh_views(self) -> None:
        """Rebuild the timeline's clips from the model and the render state."""
        self._refresh_timer.stop()
        analyses = analyse_lines(self.model.text)
        self._cast_voices = self._voices(report=False)
        clips = []
        errors = []
        for index, (line, analysis) in enumerate(zip(self.model.lines(), analyses, strict=True)):
            clips.append(self._clip_for(index, line, analysis))
            if analysis.error is not None:
                errors.append(analysis.error)
        self.timeline.set_clips(clips)
        if not self.timeline.clips or self.timeline.selected is None:
            self.timeline.select(0 if clips else None, emit=False)
        self._fit_timeline()
        if not self.session.busy:
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                self.statusBar().showMessage(f"{errors[0]}{more}: fix it to render this line")
            else:
                speech = sum(1 for a in analyses for i in a.items if isinstance(i, SpeechItem))
                pauses = sum(1 for a in analyses for i in a.items if isinstance(i, PauseItem))
                self.statusBar().showMessage(f"{len(clips)} lines, {speech} speech segments, {pauses} pauses")

    def _clip_for(self, index: int, line, analysis) -> ClipInfo:
        state_before = analysis.state_before
        chips: list[Chip] = []
        tags = []
        speech = [i for i in analysis.items if isinstance(i, SpeechItem)]
        first_text_column = speech[0].column if speech else None
        emotion_set_before_text = False
        for tag in analysis.tags:
            kind = tag_kind(tag.content)
            text = line.text[tag.column - 1 : tag.end_column]
            tags.append((tag.column - 1, text))
            if kind in ("emotion", "directive"):
                label = tag.content.strip()
                if kind == "emotion" and ":" in label:
                    label = label.partition(":")[2].strip()
                if kind == "emotion" and (first_text_column is None or tag.column < first_text_column):
                    emotion_set_before_text = True
                chips.append(Chip(label, column=tag.column - 1, tag_text=text))
        # An emotion carried over from an earlier line is shown (outlined) while it still applies to
        # this line's first words, which is what makes persistence visible on the timeline.
        if state_before.emotion and speech and not emotion_set_before_text:
            chips.insert(0, Chip(state_before.emotion, inherited=True))
        voice = speech[0].voice if speech else state_before.voice
        voice = voice or self.project.render.voice
        render = self.session.current_render(line)
        current = render is not None
        pieces: list[tuple[str, float]] = []
        if current and render.results and len(render.results) == len(analysis.items):
            pieces = [(r.segment.kind, r.n_samples / SAMPLE_RATE) for r in render.ordered()]
            estimated = False
        else:
            for item in analysis.items:
                if isinstance(item, PauseItem):
                    pieces.append(("pause", item.seconds))
                else:
                    pieces.append(("speech", max(0.6, expected_seconds(item.text))))
            estimated = True
        message = ""
        if analysis.error is not None:
            state, message = "error", str(analysis.error)
        elif not analysis.items:
            state = "empty"
        elif (unknown := first_unknown_voice(speech, self.project.cast)) is not None:
            state, message = "error", f"line {index + 1}: voice {unknown.voice!r} is not in the project's cast"
        elif line.state.locked:
            state = "locked"
        elif current and render.states:
            # Pauses are silence, never "from the cache": they do not decide between done and cached.
            states = {
                state for ordinal, state in render.states.items()
                if ordinal not in render.results or render.results[ordinal].segment.kind == "speech"
            } or {"done"}
            state = next((s for s in ("failed", "rendering", "queued", "stale") if s in states), None)
            if state is None:
                state = "cached" if states == {"cached"} else "done"
            failures = [r.error for r in render.results.values() if r.state == FAILED and r.error]
            message = "; ".join(failures)
        else:
            state = "stale"
        warning = self.session.warnings.get(line.id) if current else None
        if warning is None:
            warning = self._capability_warning(speech)
        if warning:
            message = "; ".join(m for m in (message, warning) if m)
        return ClipInfo(
            index=index,
            line_id=line.id,
            text=" ".join(i.text for i in speech)
            or " ".join(f"(pause {i.seconds:g} s)" for i in analysis.items if isinstance(i, PauseItem)),
            voice=voice,
            chips=chips,
            pieces=pieces,
            estimated=estimated,
            state=state,
            message=message,
            warning=bool(warning),
            locked=line.state.locked,
            take=line.state.take,
            takes=self.session.takes_of(line),
            tags=tags,
        )

    def _capability_warning(self, speech: list[SpeechItem]) -> str | None:
        """Before rendering: an emotion that the segment's voice cannot deliver, said up front."""
        voices = self._cast_voices
        for item in speech:
            voice = voices.get(item.voice if item.voice is not None else self.project.render.voice)
            if voice is None:
                continue
            directives = delivery_directives(item.directives)
            if voice.kind == "clone" and directives:
                named = ", ".join(f"{key}: {value}" for key, value in directives.items())
                return f"a cloned voice's model takes no instruct, so these are not applied: {named}"
            if item.emotion is None:
                continue
            if voice.kind == "clone" and voice.emotion_ref(item.emotion) is None:
                return (f"a cloned voice takes its delivery from a reference clip, and this one has no clip "
                        f"for {item.emotion!r}: the emotion will not be applied")
        return None

    # --- editing ----------------------------------------------------------------------------------------

    def apply_tag(self, line: int, tag: str) -> None:
        """Insert a tag at the start of a line (a palette drop on a clip, or a palette shortcut)."""
        if not (0 <= line < len(self.model)):
            return
        self.undo_stack.push(InsertTagCommand(self.model, line, 0, tag))
        self.refresh_views()

    def remove_tag(self, line: int, column: int, tag_text: str) -> None:
        self.undo_stack.push(RemoveTagCommand(self.model, line, column, tag_text))
        self.refresh_views()

    def move_line(self, source: int, target: int) -> None:
        if 0 <= source < len(self.model) and 0 <= target < len(self.model) and source != target:
            self.undo_stack.push(MoveLineCommand(self.model, source, target))
            self.refresh_views()
            self.timeline.select(target)

    def _move_current(self, delta: int) -> None:
        line = self.current_line()
        self.move_line(line, line + delta)

    def toggle_lock(self, line: int) -> None:
        if 0 <= line < len(self.model):
            state = self.model.line(line).state
            self.undo_stack.push(LineStateCommand(self.model, self.model.line(line).id, locked=not state.locked))
            self.refresh_views()

    def choose_take(self, line: int, take: int) -> None:
        if 0 <= line < len(self.model) and self.model.line(line).state.take != take:
            self.undo_stack.push(LineStateCommand(self.model, self.model.line(line).id, take=take))
            self.refresh_views()

    def new_take(self, line: int) -> None:
        """A new take gets a new seed; the old take stays in the cache and in the takes list."""
        if not (0 <= line < len(self.model)):
            return
        self.choose_take(line, self.session.new_take_number(self.model.line(line)))
        self.render_line(line)

    def copy_line(self, line: int) -> None:
        if 0 <= line < len(self.model):
            QGuiApplication.clipboard().setText(self.model.line(line).text)
            self.statusBar().showMessage(f"Copied line {line + 1}", 3000)

    def _on_timeline_line_selected(self, line: int) -> None:
        if self.editor.textCursor().blockNumber() != line:
            self.editor.move_cursor_to(line + 1, 1)
            self.timeline.setFocus()

    def _on_timeline_seek_requested(self, seconds: float) -> None:
        if self.player is not None and self._play_offset == 0.0:
            self.player.seek(int(seconds * SAMPLE_RATE))
            self.waveform.set_playhead(int(seconds * SAMPLE_RATE))

    def _update_title(self) -> None:
        name = self.project_path.name if self.project_path else "Untitled"
        self.setWindowTitle(f"{name}[*] — {APP_TITLE}")

    def _set_project(
        self, project: Project, path: Path | None, *, modified: bool = False, version: DiskVersion | None = None
    ) -> None:
        self.session.reset()
        self._bind_model(self.document.replace(project, path, version))
        self._show_results([], offset=0.0)
        if modified:
            # Recovered work differs from what is on disk: one undoable step that changes nothing
            # would be odd, so mark the stack dirty by resetting its clean index instead.
            self.undo_stack.resetClean()
            self.setWindowModified(True)
        self._update_title()
        self._look_up_cached_audio()

    @property
    def project(self) -> Project:
        return self.document.project

    @property
    def project_path(self) -> Path | None:
        return self.document.path

    def sync_project(self) -> Project:
        """Copy the model into the project record (before saving, rendering or autosaving)."""
        return self.document.sync()

    # --- rendering --------------------------------------------------------------------------------

    def _load_machine_settings(self) -> MachineSettings:
        settings = QSettings()
        return MachineSettings(
            device=str(settings.value("render/device", "auto")),
            cpu_threads=int(settings.value("render/cpu_threads", 0)),
        )

    def _render_machine(self) -> RenderMachine:
        budget = getattr(self.machine, "memory_budget_gb", None)
        return RenderMachine(
            device=self.machine.device,
            cpu_threads=self.machine.cpu_threads or None,
            budget_bytes=None if not budget else int(budget * 1024**3),
            prompt_cache_dir=self.library.prompt_cache,
            fingerprint_memo=fingerprint_memo_file(),
        )

    def edit_render_settings(self) -> bool:
        dialog = RenderSettingsDialog(self.project, self.machine, self)
        if dialog.exec() != RenderSettingsDialog.DialogCode.Accepted:
            return False
        settings = QSettings()
        settings.setValue("render/device", self.machine.device)
        settings.setValue("render/cpu_threads", self.machine.cpu_threads)
        # Settings live outside the undo stack; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)
        self.refresh_views()
        return True

    def edit_voices(self) -> None:
        from studio.ui.voices_dialog import VoicesDialog

        dialog = VoicesDialog(self.project, self.library, self)
        dialog.design_then_clone_requested.connect(self.design_then_clone)
        dialog.exec()
        if dialog.changed:
            self.undo_stack.resetClean()
            self.setWindowModified(True)
        self.refresh_views()

    def open_finetune_wizard(self) -> None:
        from studio.ui.wizard import FineTuneWizard

        wizard = FineTuneWizard(self, library=self.library)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wizard.voice_registered.connect(self._on_wizard_voice_registered)
        wizard.show()
        self.finetune_wizard = wizard

    def _on_wizard_voice_registered(self, profile) -> None:
        self.statusBar().showMessage(f"Added {profile.name} to the voice library", 5000)

    def manage_models(self) -> None:
        from studio.ui.models_dialog import ModelManagerDialog

        dialog = ModelManagerDialog(self.machine, self, current_model=self.project.render.model)
        dialog.model_chosen.connect(self.use_model)
        dialog.exec()
        # The dialog edits the device in MachineSettings, a per-machine choice kept in QSettings.
        QSettings().setValue("render/device", self.machine.device)
        self.refresh_views()

    def run_self_test(self) -> None:
        from studio.ui.selftest_dialog import SelfTestDialog

        dialog = SelfTestDialog(self)
        self.self_test_dialog = dialog
        dialog.start()
        dialog.exec()

    def show_about(self) -> None:
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        from studio import __version__
        from studio.build_info import build_info

        info = build_info()
        build = (
            f"<br>Build: {info.get('variant', '?')} variant, torch {info.get('torch', '?')}, "
            f"commit {str(info.get('git_commit', '?'))[:10]}, built {info.get('built_at', '?')}"
            if info
            else "<br>Running from source."
        )
        QMessageBox.about(
            self,
            "About Qwen3-TTS Studio",
            f"<b>Qwen3-TTS Studio {__version__}</b><br>A desktop editor for long-form expressive speech "
            f"with the Qwen3-TTS 12Hz models.{build}<br>Qt {qVersion()}, PySide6 {pyside_version}",
        )

    def use_model(self, source: str) -> None:
        if source == self.project.render.model:
            return
        self.project.render.model = source
        # Settings live outside the undo stack; a changed project must still ask to be saved.
        self.undo_stack.resetClean()
        self.setWindowModified(True)
        self.refresh_views()

    def design_then_clone(self, profile_id: str, sentence: str) -> bool:
        """Render a designed voice once and keep the result as a cloned profile (the clip + sentence)."""
        if self.session.busy:
            self.statusBar().showMessage("A render is already running", 4000)
            return False
        profile = self.library.get(profile_id)
        model = choose_checkpoint(profile.voice, preferred=self.project.render.model, installed=installed_checkpoints())
        if not model:
            QMessageBox.warning(self, "Design → clone", "Install a VoiceDesign model first (Models…), or choose one "
                                                        "for this voice in Voices.")
            return False
        segment = PlannedSegment(index=0, kind="speech", line=1, text=sentence, voice="design",
                                 language=self.project.render.language, seed=profile.seed or self.project.render.seed)
        job = RenderJob(job_id=self.session.next_job_id(), segments=[segment],
                        voices={"design": profile.voice, None: profile.voice}, models={"design": model, None: model},
                        cache_dir=None, generation=self.project.render.generation)
        self.session.start_detached(job, (profile, sentence))
        self.renderer.submit(job, self._render_machine())
        self.statusBar().showMessage(f"Rendering a reference clip for {profile.name}…")
        self._update_transport()
        return True

    def _finish_design_then_clone(self, end: JobEnd) -> None:
        profile, sentence = end.context
        result = end.results[0] if end.results else None
        if end.message or result is None or result.state != DONE:
            reason = end.message or (result.error if result else "cancelled")
            QMessageBox.critical(self, "Design → clone", f"Could not render {profile.name}: {reason}")
            return
        try:
            new = keep_as_cloned_voice(self.library, profile, sentence, result.samples, SAMPLE_RATE)
        except (VoiceLibraryError, OSError) as exc:
            # A rendered reference too short or broken to clone from (the clip check names why).
            QMessageBox.critical(self, "Design → clone", f"Could not keep {profile.name} as a cloned voice: {exc}")
            return
        self.last_cloned_profile = new
        if new.warnings:
            QMessageBox.warning(self, "Design → clone", f"Saved {new.name}, but: " + "; ".join(new.warnings))
        self.statusBar().showMessage(f"Saved {new.name} to the voice library")

    def _voices(self, *, report: bool = True) -> dict:
        """Cast name -> VoiceSpec; a member whose library profile is gone is left out (and reported)."""
        try:
            return resolve_cast(self.project.cast, self.project.render.voice, self.library)
        except CastError as exc:
            if report:
                self.statusBar().showMessage(str(exc))
            voices = {n: e.voice for n, e in self.project.cast.items() if e.voice is not None}
            voices[None] = voices.get(self.project.render.voice)
            return voices

    def output_folder(self) -> Path:
        if self.project.render.output_dir:
            return Path(self.project.render.output_dir)
        if self.project_path is not None:
            return self.project_path.parent
        return default_output_dir()

    def _items_per_line(self) -> list[int]:
        return [len(a.items) for a in analyse_lines(self.model.text)]

    def _plan(self, *, line: int | None = None) -> tuple[RenderPlan, list[PlannedSegment]] | None:
        """Plan and check the render; a problem found before any work is shown with ways to fix it.
        Returns the plan and the segments to render, or None (with the reason shown)."""
        if self.session.busy:
            self.statusBar().showMessage("A render is already running", 4000)
            return None
        self.sync_project()
        try:
            plan = plan_render(self.project, source="script", library=self.library, installed=installed_checkpoints())
        except InputError as exc:
            errors = [a.error for a in analyse_lines(self.project.script) if a.error is not None]
            if errors:
                self.editor.move_cursor_to(errors[0].line, errors[0].column)
            QMessageBox.warning(self, "Cannot render", f"Fix the script first: {exc}")
            return None
        segments = plan.segments if line is None else [s for s in plan.segments if s.line == line + 1]
        if line is None and not any(s.kind == "speech" for s in segments):
            self.statusBar().showMessage("The script has nothing to say yet", 4000)
            return None
        problems = [p for p in plan.problems if line is None or line + 1 in p.lines]
        if problems:
            from studio.ui.preflight_dialog import PreflightDialog

            dialog = PreflightDialog(problems, can_render_some=bool(renderable(segments, problems)), parent=self)
            self.preflight_dialog = dialog
            choice = dialog.exec_choice()
            if choice == PreflightDialog.RENDER_WHAT_CAN:
                segments = renderable(segments, problems)
            else:
                {FIX_VOICES: self.edit_voices, FIX_MODELS: self.manage_models,
                 FIX_SETTINGS: self.edit_render_settings}.get(choice, lambda: None)()
                return None
        return plan, segments

    def render_all(self) -> bool:
        """Render the whole script and export it; returns False (with the reason shown) when it cannot start."""
        planned = self._plan()
        if planned is None:
            return False
        plan, segments = planned
        self._start_job(plan, segments, full=len(segments) == len(plan.segments))
        return True

    def render_line(self, line: int) -> bool:
        """Render one line's segments (into the cache, the timeline and its region of the mix)."""
        if not (0 <= line < len(self.model)):
            return False
        planned = self._plan(line=line)
        if planned is None:
            return False
        plan, mine = planned
        if not mine:
            self.statusBar().showMessage(f"Line {line + 1} has nothing to render", 4000)
            return False
        self._start_job(plan, mine, full=False)
        return True

    def _start_job(self, plan: RenderPlan, segments: list[PlannedSegment], *, full: bool) -> None:
        job = RenderJob(job_id=self.session.next_job_id(), segments=[], voices=plan.cast.voices,
                        models=plan.cast.models, cache_dir=render_cache_dir(),
                        generation=self.project.render.generation)
        offset = 0.0 if full else self.timeline.starts[segments[0].line - 1]
        to_render = self.session.start(job, segments, self.model.lines(), full=full, offset_seconds=offset)
        self._close_player()
        self.waveform.reset(SAMPLE_RATE)
        self._segment_lines.clear()
        self._play_offset = offset
        self.progress_bar.setRange(0, max(1, len(to_render)))
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.renderer.submit(job, self._render_machine())
        self.statusBar().showMessage(f"Rendering {len(to_render)} segments…")
        self._update_transport()
        self.refresh_views()

    def stop_rendering(self) -> None:
        self.renderer.cancel_all()
        self.statusBar().showMessage("Stopping after the current segment…")

    def _on_worker_model_loading(self, job_id: int, message: str) -> None:
        if self.session.is_current(job_id):
            self.statusBar().showMessage(message[:1].upper() + message[1:] + "…")

    def _on_worker_model_loaded(self, job_id: int, info) -> None:
        self.model_label.setText(info.summary())

    def _on_worker_segment_started(self, job_id: int, index: int) -> None:
        segment = self.session.segment_started(job_id, index)
        if segment is None:
            return
        progress = self.session.active.progress
        self.statusBar().showMessage(
            f"Rendering {progress.done + 1} of {progress.total} (line {segment.line})…{self.session.eta_text()}"
        )
        self._refresh_timer.start()

    def _on_worker_chunk_rendered(self, job_id: int, index: int, chunk) -> None:
        self._add_to_mix(self.session.chunk(job_id, index, chunk.samples) if self.session.is_current(job_id) else [])

    def _add_to_mix(self, pieces: list[MixPiece]) -> None:
        """Append what the session says joins the mix now; start playback with the first audio."""
        if not pieces:
            return
        for piece in pieces:
            self.waveform.append(piece.samples)
            if piece.segment is not None:
                segment = piece.segment
                label = "" if segment.kind == "pause" else (segment.emotion or "")
                if piece.result is not None and not piece.result.emotion_applied:
                    label += " (not applied)"
                self.waveform.add_segment(piece.start, piece.end, label, line=segment.line - 1,
                                          pause=segment.kind == "pause")
                self._segment_lines.append((piece.start, piece.end, segment.line - 1))
        if self.player is None and self.output_device is not None and len(self.waveform.audio):
            self._open_player()
            if self.player is not None:
                self.player.play()
        self._update_transport()

    def _on_worker_segment_finished(self, job_id: int, index: int, result: SegmentResult) -> None:
        if not self.session.is_current(job_id):
            return
        self._add_to_mix(self.session.segment_finished(job_id, result))
        if self.session.active is not None:
            self.progress_bar.setValue(self.session.active.progress.done)
        self._refresh_timer.start()

    def _on_worker_job_finished(self, job_id: int, outcome: JobOutcome) -> None:
        end = self.session.job_finished(job_id, outcome)
        if end is None:
            return
        self.waveform.flush()
        self.progress_bar.setVisible(False)
        if end.kind == "detached":
            self._update_transport()
            self._finish_design_then_clone(end)
            return
        if self.player is not None:
            self.player.rendering_done = True
        self._update_transport()
        self.refresh_views()
        if end.show_mix:
            self._show_mix()
        if end.kind == "error":
            self.statusBar().showMessage(f"Render failed: {end.message}")
            QMessageBox.critical(self, "Render failed", end.message)
            return
        if end.kind != "export":
            self.statusBar().showMessage(end.message)
            return
        self._export(end.results, outcome, end.message)

    def _export(self, results: list[SegmentResult], outcome: JobOutcome, summary: str) -> None:
        name = self.project_path.stem if self.project_path else "untitled"
        self.statusBar().showMessage(f"{summary}; saving…")
        folder, settings = self.output_folder(), self.project.render.export

        def export() -> None:
            # Encoding and writing an hour of audio takes a while: off the UI thread, so playback and
            # editing stay smooth. The result comes back through a queued signal.
            try:
                result = export_results(results, sample_rate=outcome.sample_rate, folder=folder, name=name,
                                        models=outcome.models, when=datetime.now(),
                                        audio_format=settings.audio_format, stems=settings.stems,
                                        loudness_lufs=settings.loudness_lufs)
            except (ExportError, OSError) as exc:
                self.export_finished.emit(None, str(exc), summary)
                return
            except Exception as exc:  # noqa: BLE001 - a bug must still end in a dialog, never a stuck "saving…"
                logging.getLogger(__name__).exception("export failed")
                self.export_finished.emit(None, f"internal error while exporting: {type(exc).__name__}: {exc}",
                                          summary)
                return
            self.export_finished.emit(result, None, summary)

        self._export_thread = threading.Thread(target=export, name="export", daemon=True)
        self._export_thread.start()

    def _on_export_finished(self, result, error: str | None, summary: str) -> None:
        self._export_thread = None
        if error is not None:
            self.statusBar().showMessage(f"Export failed: {error}")
            QMessageBox.critical(self, "Export failed", error)
            return
        self.session.last_export = result
        self.statusBar().showMessage(f"{summary}; saved {result.audio}")

    @property
    def last_outcome(self) -> JobOutcome | None:
        return self.session.last_outcome

    @property
    def last_export(self):
        return self.session.last_export

    # --- audio that stays -------------------------------------------------------------------------------

    def _look_up_cached_audio(self) -> None:
        """After opening a project: find the lines whose audio is in the render cache (no model loads)."""
        try:
            plan = plan_render(self.sync_project(), source="script", library=self.library,
                               installed=installed_checkpoints())
        except InputError:
            return  # the script does not parse: nothing can be looked up, the user sees why on the timeline
        job = RenderJob(job_id=self.session.next_job_id(), segments=plan.segments, voices=plan.cast.voices,
                        models=plan.cast.models, cache_dir=render_cache_dir(),
                        generation=self.project.render.generation)
        self.session.begin_probe(job, self.model.lines())
        self.renderer.probe(job, self._render_machine())

    def _on_worker_cache_probed(self, job_id: int, results: list) -> None:
        restored = self.session.restore(job_id, results, self.model.lines(), self._items_per_line())
        if not restored:
            return
        self.refresh_views()
        if not self.session.busy:
            self._show_mix()
        self.statusBar().showMessage(f"{restored} lines have their audio from earlier renders", 5000)

    def _show_mix(self) -> None:
        """Show the project's audio: every line whose render is current, in script order."""
        self._show_results(self.session.mix_results(self.model.lines(), self._items_per_line()), offset=0.0)

    # --- playback ------------------------------------------------------------------------------------

    def _open_player(self, audio: GrowingAudio | None = None) -> None:
        try:
            self.player = Player(audio or self.waveform.audio, device=self.output_device)
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
            self.player.rendering_done = not self.session.busy
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

    def play_line(self, line: int) -> None:
        """Play a line's last rendered audio (render it first if it has none)."""
        if not (0 <= line < len(self.model)):
            return
        render = self.session.current_render(self.model.line(line))
        results = render.ordered() if render is not None else []
        if not results or any(r.samples is None for r in results):
            self.render_line(line)
            return
        if self.output_device is None:
            self.statusBar().showMessage(self.playback_problem or "playback is unavailable", 5000)
            return
        self._show_results(results, offset=self.timeline.starts[line])
        self._open_player()
        if self.player is not None:
            self.player.rendering_done = True
            self.player.play()
        self._update_transport()

    def _show_results(self, results: list[SegmentResult], *, offset: float) -> None:
        """Put finished segments into the waveform (replacing what it showed)."""
        self._close_player()
        self.waveform.reset(SAMPLE_RATE)
        self._segment_lines.clear()
        for result in results:
            start, end = self.waveform.append(result.samples)
            segment = result.segment
            label = "" if segment.kind == "pause" else (segment.emotion or "")
            self.waveform.add_segment(start, end, label, line=segment.line - 1, pause=segment.kind == "pause")
            self._segment_lines.append((start, end, segment.line - 1))
        self.waveform.flush()
        self._play_offset = offset

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
        self.timeline.set_playhead(self._play_offset + position / SAMPLE_RATE, line)
        if not self.player.playing:
            self._update_transport()

    def _update_transport(self) -> None:
        rendering = self.session.busy
        self.render_action.setEnabled(not rendering)
        self.stop_render_action.setEnabled(rendering)
        can_play = self.output_device is not None and bool(len(self.waveform.audio))
        self.play_action.setEnabled(self.output_device is not None)
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
            project, version = load_project_versioned(path)
        except ProjectError as exc:
            QMessageBox.critical(self, "Cannot open project", str(exc))
            return False
        self._set_project(project, Path(path), version=version)
        self._remember(Path(path))
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
        settings = QSettings()
        settings.setValue("files/last_folder", str(path.parent))
        settings.setValue("files/last_project", str(path))
        recent = [p for p in (settings.value("files/recent", []) or []) if p != str(path)]
        settings.setValue("files/recent", [str(path), *recent][:_MAX_RECENT])

    def recent_files(self) -> list[str]:
        recent = QSettings().value("files/recent", []) or []
        return [recent] if isinstance(recent, str) else list(recent)

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
        return str(QSettings().value("files/last_folder", str(Path.home())))

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

    # --- window state ---------------------------------------------------------------------------------

    def restore_layout(self) -> None:
        settings = QSettings()
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        splitter = settings.value("window/splitter")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)

    def save_layout(self) -> None:
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/splitter", self.splitter.saveState())

    def _fit_timeline(self) -> None:
        viewport = self.timeline_scroll.viewport()
        self.timeline.fit_width(viewport.width(), viewport.height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_timeline()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if not self._confirm_discard():
            event.ignore()
            return
        self.save_layout()
        self._discard_own_recovery()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop playback and the render thread; safe to call more than once."""
        if self._shut_down:
            return
        self._shut_down = True
        self.autosave_timer.stop()
        self._close_player()
        if self.renderer.thread.isRunning():
            self.renderer.shutdown()
        if self._export_thread is not None:
            # Never leave a half-written export behind a closed window.
            self._export_thread.join()
        # pyqtgraph's view must drop its scene before Qt deletes the widgets; otherwise a paint event
        # still queued for the view can reach a scene Python already collected.
        self.waveform.close()

