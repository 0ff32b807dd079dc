"""The studio's main window: timeline, script editor, emotion palette, waveform and transport.

The ScriptModel is the document. The editor and the timeline are views of it; every edit is an undo
command over a core operation, and the window's modified mark follows the undo stack's clean state.
Rendering goes through the single RenderController thread; results come back as queued signals
tagged with their job id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QCoreApplication, QEvent, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QToolBar,
)

from studio.audio.playback import PlaybackUnavailable, Player, default_output_device
from studio.core.project import (
    DiskVersion,
    Project,
)
from studio.core.pronunciation import Lexicon
from studio.core.script import ScriptChange, ScriptModel
from studio.core.units import count
from studio.core.voice_library import default_voice_library
from studio.paths import recovery_dir
from studio.session.document import Document
from studio.session.pipeline import SAMPLE_RATE
from studio.session.render_session import RenderSession
from studio.session.script_analysis import LineTexts, ScriptAnalysis
from studio.settings import load_settings, update_settings
from studio.ui.arrange_view import ArrangeView
from studio.ui.background import BackgroundRunner
from studio.ui.palette import EmotionPalette
from studio.ui.qsettings_keys import WINDOW_GEOMETRY, WINDOW_SPLITTER, WINDOW_STATE
from studio.ui.render_worker import RenderController
from studio.ui.script_editor import ScriptEditor
from studio.ui.theme import apply_theme
from studio.ui.time_axis import ZOOM_STEP
from studio.ui.window_dialogs import DialogActions
from studio.ui.window_editing import EditActions
from studio.ui.window_export import ExportActions
from studio.ui.window_files import APP_TITLE, FileActions
from studio.ui.window_help import HelpActions
from studio.ui.window_outline import OutlineActions
from studio.ui.window_playback import PlaybackActions
from studio.ui.window_render import RenderActions

# Re-analysing on every keystroke is cheap for short scripts but not for a 5,000-line one; a short
# idle delay keeps typing smooth either way.
_REFRESH_DELAY_MS = 120
_PLAYHEAD_INTERVAL_MS = 33
_MIX_DELAY_MS = 300
AUTOSAVE_INTERVAL_MS = 30_000


def recovery_folder() -> Path:
    return recovery_dir()


def unique_keys(keys: list[QKeySequence]) -> list[QKeySequence]:
    """Each key sequence once, in order."""
    seen: set[str] = set()
    out = []
    for key in keys:
        if key.toString() not in seen:
            seen.add(key.toString())
            out.append(key)
    return out


class MainWindow(DialogActions, EditActions, RenderActions, ExportActions, PlaybackActions, FileActions, HelpActions,
                 OutlineActions, QMainWindow):

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
        # The timeline's lanes and the waveform share one time axis (zoom, scroll, playhead).
        self.arrange = ArrangeView()
        self.axis = self.arrange.axis
        self.timeline = self.arrange.timeline
        self.waveform = self.arrange.waveform
        self.palette = EmotionPalette()
        self.transport = QToolBar("Transport")
        self.transport.setObjectName("Transport")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.transport)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.addWidget(self.arrange)
        self.splitter.addWidget(self.editor)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([470, 260])
        self.setCentralWidget(self.splitter)
        dock = QDockWidget("Emotions", self)
        dock.setObjectName("EmotionsDock")
        dock.setWidget(self.palette)
        self.palette.setMaximumWidth(190)
        features = QDockWidget.DockWidgetFeature
        dock.setFeatures(features.DockWidgetMovable | features.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self._build_outline()
        self.setAcceptDrops(True)  # a project or book file dropped anywhere opens or imports it

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
        self.cursor_sample = 0  # the transport's position while nothing plays (samples on the timeline)
        self._mix_ends = np.zeros(0, dtype=np.int64)  # where each line's audio ends in the mix shown
        # The script's analysis and the timeline's clips, kept per line and refreshed where lines change.
        self.analysis = ScriptAnalysis()
        self._clips: list = []
        self._dirty_lines: set[int] = set()
        try:
            self.output_device = default_output_device()
            self.playback_problem: str | None = None
        except PlaybackUnavailable as exc:
            self.output_device = None
            self.playback_problem = str(exc)

        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setVisible(False)
        self.model_label = QLabel("")
        # The progress bar sits rightmost, so the model label's changing width never moves it.
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.progress_bar)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(_REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh_changed)
        # A take chosen (or undone) shows that take's audio: looked up in the cache once the clicks settle.
        self._take_lookup_timer = QTimer(self)
        self._take_lookup_timer.setSingleShot(True)
        self._take_lookup_timer.setInterval(_REFRESH_DELAY_MS)
        self._take_lookup_timer.timeout.connect(self._on_take_lookup_timer)
        # Edits change the estimated length of unrendered lines; the mix follows once typing pauses.
        self._mix_timer = QTimer(self)
        self._mix_timer.setSingleShot(True)
        self._mix_timer.setInterval(_MIX_DELAY_MS)
        self._mix_timer.timeout.connect(self._show_mix)
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
        self.editor.cursorPositionChanged.connect(self._on_editor_cursor_moved)
        self.palette.tag_activated.connect(lambda tag: self.apply_tag(self.current_line(), tag))
        # A user tag added to the palette makes its emotion known: every line is checked again.
        self.palette.entries_changed.connect(self.refresh_views)
        self.timeline.quick_fix_requested.connect(self.apply_quick_fix)
        self.waveform.seek_requested.connect(self._on_waveform_seek_requested)
        # The one helper for work off the main thread besides the render worker (exports).
        self.background = BackgroundRunner(self)
        self._export_task = None

        self._build_menus()
        theme = load_settings().theme
        if theme != "system":
            apply_theme(theme)
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
        self._action("&Import Book…", QKeySequence("Ctrl+Shift+O"), self.import_book_dialog, menu=file_menu,
                     tip="A new project from an EPUB, Markdown or text file, one chapter per chapter of the book")
        self._action("&Save", QKeySequence.StandardKey.Save, self.save, menu=file_menu)
        self._action("Save &As…", QKeySequence.StandardKey.SaveAs, self.save_as, menu=file_menu)
        file_menu.addSeparator()
        self._build_export_menu(file_menu)
        file_menu.addSeparator()
        self._action("&Quit", QKeySequence.StandardKey.Quit, self.close, menu=file_menu)

        edit_menu = bar.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Undo))
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        # The platform's Redo keys plus Ctrl+Shift+Z, each once: Linux's Redo already holds Ctrl+Shift+Z,
        # and a key bound twice on one action is an "ambiguous shortcut" that does nothing.
        redo.setShortcuts(unique_keys(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
                                      + [QKeySequence("Ctrl+Shift+Z")]))
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        edit_menu.addSeparator()
        # The clipboard commands act on the focused widget. The script editor handles these keys itself
        # when it has focus (so they never reach these actions twice); elsewhere they copy whole lines.
        self._action("Cu&t", QKeySequence.StandardKey.Cut, lambda: self._clipboard("cut"), menu=edit_menu)
        self._action("&Copy", QKeySequence.StandardKey.Copy, lambda: self._clipboard("copy"), menu=edit_menu)
        self._action("&Paste", QKeySequence.StandardKey.Paste, lambda: self._clipboard("paste"), menu=edit_menu)
        self._action("Select &All", QKeySequence.StandardKey.SelectAll, lambda: self._clipboard("selectAll"),
                     menu=edit_menu)
        edit_menu.addSeparator()
        self._action("Copy Line as &Text", QKeySequence("Ctrl+Shift+C"),
                     lambda: self.copy_line(self.current_line()), menu=edit_menu)
        self._action("Move Line &Up", QKeySequence("Alt+Up"), lambda: self._move_current(-1), menu=edit_menu)
        self._action("Move Line &Down", QKeySequence("Alt+Down"), lambda: self._move_current(1), menu=edit_menu)
        self._action("Focus &Timeline", QKeySequence("Ctrl+1"), self.timeline.setFocus, menu=edit_menu)
        self._action("Focus Script &Editor", QKeySequence("Ctrl+2"), self.editor.setFocus, menu=edit_menu)

        view_menu = bar.addMenu("&View")
        self._action("Zoom &In", [QKeySequence("Ctrl+="), QKeySequence("Ctrl++")], lambda: self.zoom(ZOOM_STEP),
                     menu=view_menu, tip="Zoom the timeline and waveform in (Ctrl+wheel zooms at the mouse)")
        self._action("Zoom &Out", QKeySequence("Ctrl+-"), lambda: self.zoom(1 / ZOOM_STEP), menu=view_menu)
        self._action("&Fit Project", QKeySequence("Ctrl+0"), self.axis.fit, menu=view_menu,
                     tip="Show the whole project")
        self._build_theme_menu(view_menu)

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
        self._action("&Pronunciation Dictionary…", QKeySequence("Ctrl+Shift+D"), self.edit_pronunciations,
                     menu=render_menu, tip="Words the model should say another way")
        self._build_chapter_actions(render_menu, view_menu)
        tools_menu = bar.addMenu("&Tools")
        self._action("&Fine-tune a Voice…", QKeySequence("Ctrl+Shift+F"), self.open_finetune_wizard,
                     menu=tools_menu, tip="Train a new speaker from your own recordings")

        self._build_transport(bar.addMenu("&Playback"))
        help_menu = bar.addMenu("&Help")
        self._build_help_menu(help_menu)
        self._update_transport()

    def _build_theme_menu(self, view_menu) -> None:
        from PySide6.QtGui import QActionGroup

        menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        current = load_settings().theme
        self.theme_actions = {}
        for theme, label in (("system", "&System"), ("light", "&Light"), ("dark", "&Dark")):
            action = QAction(label, self, checkable=True)
            action.setChecked(theme == current)
            action.triggered.connect(lambda _checked=False, t=theme: self.set_theme(t))
            group.addAction(action)
            menu.addAction(action)
            self.theme_actions[theme] = action

    def set_theme(self, theme: str) -> None:
        apply_theme(theme)
        self.theme_actions[theme].setChecked(True)
        try:
            update_settings(theme=theme)
        except (OSError, ValueError) as exc:
            self.statusBar().showMessage(f"Theme not saved: {exc}", 5000)

    def _clipboard(self, command: str) -> None:
        from PySide6.QtWidgets import QApplication

        focus = QApplication.focusWidget()
        if focus is not None and focus is not self.timeline and hasattr(focus, command):
            getattr(focus, command)()
        elif command == "copy":
            self.copy_line(self.current_line())
        elif command == "selectAll":
            self.editor.setFocus()  # what is selected is then what typing, cut and paste act on
            self.editor.selectAll()

    def zoom(self, factor: float) -> None:
        """Zoom both views at the mouse when it is over them, else at the playhead."""
        anchor = self.arrange.anchor_seconds()
        if anchor is None:
            anchor = self.transport_position() / SAMPLE_RATE
        self.axis.zoom(factor, anchor)

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
        """An edit: the lines it touched (and those whose carried state it changed) are analysed again now,
        their clips rebuilt when typing pauses."""
        changed = self.analysis.apply(change, LineTexts(self.model.lines()))
        if change.removed != change.added:
            tail = self._clips[change.first + change.removed :]
            self._clips[change.first :] = [None] * change.added + tail
            # Messages name their line: after lines come or go above them, those clips are rebuilt too.
            shift = change.first + change.added
            self._dirty_lines.update(shift + i for i, clip in enumerate(tail) if clip is not None and clip.message)
        self._dirty_lines.update(changed)
        self._refresh_timer.start()
        if change.kind == "text":
            self._outline_timer.start()
        if change.kind == "state":
            self._take_lookup_timer.start()

    def mark_lines_changed(self, lines) -> None:
        """Lines whose render state changed: their clips are rebuilt at the next refresh."""
        self._dirty_lines.update(lines)
        self._refresh_timer.start()

    def _on_take_lookup_timer(self) -> None:
        # The mix drops a line whose take has no audio here; the lookup brings it back from the cache.
        self._show_mix()
        self._look_up_cached_audio()

    def current_line(self) -> int:
        if self.timeline.selected is not None and not self.editor.hasFocus():
            return self.timeline.selected
        return self.editor.textCursor().blockNumber()

    def refresh_views(self) -> None:
        """Everything again: every line analysed (with the emotions known now) and every clip rebuilt, for
        changes that can touch any line (the cast, the settings, a render's end)."""
        self._cast_voices = self._voices(report=False)
        self.editor.set_lexicon(Lexicon(self.project.pronunciations))
        self.analysis.reset(LineTexts(self.model.lines()), self._known_emotions())
        self._clips = [None] * len(self.model)
        self._dirty_lines = set(range(len(self.model)))
        self.refresh_changed()
        self.refresh_outline()

    def refresh_changed(self) -> None:
        """Rebuild the clips of the lines that changed since the last refresh, and nothing else."""
        self._refresh_timer.stop()
        lines = self.model.lines()
        if len(self.analysis) != len(lines) or len(self._clips) != len(lines):
            self.refresh_views()  # out of step (a model swapped underneath): start again
            return
        changed = {}
        for index in sorted(i for i in self._dirty_lines if 0 <= i < len(lines)):
            changed[index] = self._clips[index] = self._clip_for(index, lines[index], self.analysis.lines[index])
        self._dirty_lines.clear()
        if len(self.timeline.clips) != len(self._clips) or not self.timeline.update_clips(changed):
            self.timeline.set_clips(list(self._clips), lanes=self._lane_names())
        if not self.timeline.clips or self.timeline.selected is None:
            self.timeline.select(0 if self._clips else None, emit=False)
        self._layout_changed()
        if not self.session.busy:
            self._show_script_summary()
        self._show_model_choice()

    def _show_script_summary(self) -> None:
        analysis = self.analysis
        first = analysis.first_error()
        if first is not None:
            index, error = first
            more = f" (and {analysis.broken_lines - 1} more)" if analysis.broken_lines > 1 else ""
            self.statusBar().showMessage(
                f"line {index + 1}, column {error.column}: {error.reason}{more}: fix it to render this line")
            return
        summary = [count(len(analysis), "line"), count(analysis.speech_segments, "speech segment"),
                   count(analysis.pauses, "pause")]
        self.statusBar().showMessage(", ".join(summary))

    def _show_model_choice(self) -> None:
        """The status bar's model: the last one loaded, or the project's choice before any load."""
        if self.session.model_info is not None or self.session.busy:
            return
        source = self.project.render.model
        self.model_label.setText(f"Model: {Path(source).name} (loads when you render)" if source
                                 else "Model: automatic (loads when you render)")
        self.model_label.setToolTip(source or "Each voice renders with the best installed model of its type")

    def _lane_names(self) -> list[str | None]:
        """The timeline's lanes: the default voice first, then the cast in its order."""
        default = self.project.render.voice
        names = [default] if default else []
        names += [name for name in self.project.cast if name != default]
        return names

    def _on_timeline_line_selected(self, line: int) -> None:
        if self.editor.textCursor().blockNumber() != line:
            self.editor.move_cursor_to(line + 1, 1)
            self.timeline.setFocus()
        self.waveform.highlight(self._line_span_seconds(line))

    def _on_editor_cursor_moved(self) -> None:
        """The script's cursor selects its line's clip (and moves the playhead there while nothing plays)."""
        line = self.editor.textCursor().blockNumber()
        if line == self.timeline.selected or not (0 <= line < len(self.timeline.clips)):
            return
        self.timeline.select(line, emit=False)
        self.waveform.highlight(self._line_span_seconds(line))
        if not (self.player is not None and self.player.playing):
            self.seek_to(int(self.timeline.start_samples[line]))

    def _on_timeline_seek_requested(self, seconds: float) -> None:
        self.seek_to(int(round(seconds * SAMPLE_RATE)))

    def _line_span_seconds(self, line: int | None) -> tuple[float, float] | None:
        if line is None or not (0 <= line < len(self.timeline.clips)):
            return None
        return self.timeline.start_of(line), self.timeline.end_of(line)

    def _update_title(self) -> None:
        name = self.project_path.name if self.project_path else "Untitled"
        self.setWindowTitle(f"{name}[*] — {APP_TITLE}")

    def _set_project(
        self, project: Project, path: Path | None, *, modified: bool = False, version: DiskVersion | None = None
    ) -> None:
        # A render of the project being closed stops; nothing it still sends reaches the new one.
        self.renderer.cancel_all()
        self.session.reset()
        self.progress_bar.setVisible(False)
        self._bind_model(self.document.replace(project, path, version))
        self._show_mix()
        self._update_transport()
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

    # --- window state ---------------------------------------------------------------------------------

    def restore_layout(self) -> None:
        settings = QSettings()
        geometry = settings.value(WINDOW_GEOMETRY)
        state = settings.value(WINDOW_STATE)
        splitter = settings.value(WINDOW_SPLITTER)
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
            self.keep_on_screen()
        if isinstance(state, QByteArray):
            self.restoreState(state)
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)

    def keep_on_screen(self) -> None:
        """A window saved on a bigger screen (or at another scale) fits the available screen again, with its
        transport and status bar in reach."""
        screen = self.screen().availableGeometry()
        frame = self.frameGeometry()
        extra_w, extra_h = frame.width() - self.width(), frame.height() - self.height()
        if self.isMaximized() or self.isFullScreen():
            return
        width = min(self.width(), screen.width() - extra_w)
        height = min(self.height(), screen.height() - extra_h)
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        frame = self.frameGeometry()
        x = min(max(frame.x(), screen.left()), screen.right() + 1 - frame.width())
        y = min(max(frame.y(), screen.top()), screen.bottom() + 1 - frame.height())
        if (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    def save_layout(self) -> None:
        settings = QSettings()
        settings.setValue(WINDOW_GEOMETRY, self.saveGeometry())
        settings.setValue(WINDOW_STATE, self.saveState())
        settings.setValue(WINDOW_SPLITTER, self.splitter.saveState())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        # The fine-tune wizard asks its own questions (a training still running, a trained voice not yet
        # added to the library); quitting waits for its answer and stops if it stays open.
        if not self._close_finetune_wizard() or not self._confirm_discard():
            event.ignore()
            return
        self.save_layout()
        self._discard_own_recovery()
        self.shutdown()
        event.accept()

    def _close_finetune_wizard(self) -> bool:
        from shiboken6 import isValid

        wizard = getattr(self, "finetune_wizard", None)
        if wizard is None or not isValid(wizard) or not wizard.isVisible():
            return True
        return wizard.close()

    def shutdown(self) -> None:
        """Stop playback and the render thread; safe to call more than once."""
        if self._shut_down:
            return
        self._shut_down = True
        self.autosave_timer.stop()
        self._close_player()
        if self.renderer.thread.isRunning():
            self.renderer.shutdown()
        # Never leave a half-written export behind a closed window: wait for it (its result is dropped).
        self.background.shutdown()
        # Answers the render thread or an export posted just before they stopped still wait in the queue;
        # delivered now, they would redraw views being torn down. The window is closing: drop them.
        QCoreApplication.removePostedEvents(self, QEvent.Type.MetaCall)
        # pyqtgraph's view must drop its scene before Qt deletes the widgets; otherwise a paint event
        # still queued for the view can reach a scene Python already collected.
        self.waveform.close()

