"""The window's chapters: the outline dock, jumping to a chapter, rendering or exporting one chapter."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget

from studio.core.chapters import Chapter, chapters_in
from studio.ui.outline import ChapterOutline

OUTLINE_DELAY_MS = 250  # after typing pauses: finding headings reads every line


class OutlineActions:
    """Mixed into MainWindow."""

    def _build_outline(self) -> None:
        self.outline = ChapterOutline()
        dock = QDockWidget("Chapters", self)
        dock.setObjectName("ChaptersDock")
        dock.setWidget(self.outline)
        features = QDockWidget.DockWidgetFeature
        dock.setFeatures(features.DockWidgetMovable | features.DockWidgetFloatable | features.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.outline_dock = dock
        self._outline_timer = QTimer(self)
        self._outline_timer.setSingleShot(True)
        self._outline_timer.setInterval(OUTLINE_DELAY_MS)
        self._outline_timer.timeout.connect(self.refresh_outline)
        self.outline.jump_requested.connect(self.jump_to_line)
        self.outline.render_requested.connect(self.render_chapter)
        self.outline.export_requested.connect(lambda number: self.export_audio(self.chapter(number)))
        self.outline.fold_requested.connect(self.fold_chapters)
        # Collapsed chapters, by the id of their first line (which survives edits above it).
        self._folded_ids: set[int] = set()
        self._folding = False  # whether some lines are hidden in the editor now
        self.editor.cursorPositionChanged.connect(
            lambda: self.outline.show_line(self.editor.textCursor().blockNumber() + 1))

    def _build_chapter_actions(self, render_menu, view_menu) -> None:
        self._action("Render &Chapter", QKeySequence("Ctrl+Shift+R"),
                     lambda: self.render_chapter(self.chapter_at(self.current_line() + 1)), menu=render_menu,
                     tip="Render the chapter the cursor is in")
        toggle = self.outline_dock.toggleViewAction()
        toggle.setText("&Chapters")
        view_menu.addAction(toggle)

    def jump_to_line(self, line: int) -> None:
        """Put the cursor on 1-based `line` with that line at the top of the editor (a chapter's heading
        above its text): from the end of the script, the editor scrolls up just far enough to show it."""
        cursor = self.editor.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.editor.setTextCursor(cursor)
        self.editor.move_cursor_to(line, 1)

    def chapters(self) -> list[Chapter]:
        return chapters_in([line.text for line in self.model.lines()])

    def chapter(self, number: int) -> Chapter | None:
        chapters = self.chapters()
        return chapters[number - 1] if 1 <= number <= len(chapters) else None

    def chapter_at(self, line: int) -> int | None:
        """The number of the chapter holding 1-based `line`, or None (a script without chapters)."""
        return next((c.number for c in self.chapters() if c.holds(line)), None)

    def refresh_outline(self) -> None:
        self._outline_timer.stop()
        chapters, lines = self.chapters(), self.model.lines()
        folded = [c for c in chapters if lines[c.first_line - 1].id in self._folded_ids]
        self._folded_ids = {lines[c.first_line - 1].id for c in folded}  # a heading deleted: unfolded
        self.outline.set_chapters(chapters, {c.number for c in folded})
        hidden = {n for c in folded for n in range(c.first_line, c.last_line)}  # 0-based, after the heading
        if hidden or self._folding:
            self.editor.fold(hidden)
            self._folding = bool(hidden)
        self.outline.show_line(self.editor.textCursor().blockNumber() + 1)

    def fold_chapters(self, numbers, folded: bool) -> None:
        """Collapse (or expand) chapters in the editor: only the heading of a collapsed chapter shows."""
        lines, chapters = self.model.lines(), self.chapters()
        ids = {lines[chapters[n - 1].first_line - 1].id for n in numbers if 1 <= n <= len(chapters)}
        self._folded_ids = self._folded_ids | ids if folded else self._folded_ids - ids
        self.refresh_outline()

    def render_chapter(self, number: int | None) -> bool:
        """Render one chapter's lines (into the cache, the timeline and the mix); False with the reason shown."""
        chapter = None if number is None else self.chapter(number)
        if chapter is None:
            self.statusBar().showMessage("No chapter here: a chapter starts at a line “# Title”", 4000)
            return False
        planned = self._plan(lines=range(chapter.first_line - 1, chapter.last_line))
        if planned is None:
            return False
        plan, mine = planned
        if not any(s.kind == "speech" for s in mine):
            self.statusBar().showMessage(f"Chapter {chapter.number} has nothing to render", 4000)
            return False
        self._start_job(plan, mine, full=False)
        return True
