"""The chapter outline: the script's chapters in a list beside the editor, to see a book's shape and jump.

Each row is one chapter (its number, title and how many lines it holds). Clicking a row jumps the editor
to its heading; the chapter the cursor is in stays highlighted. The context menu renders or exports one
chapter. A script without headings shows how to make one.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QLabel, QMenu, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from studio.core.chapters import Chapter

_NUMBER = Qt.ItemDataRole.UserRole


class ChapterOutline(QWidget):
    jump_requested = Signal(int)  # 1-based line of a chapter's heading
    render_requested = Signal(int)  # chapter number
    export_requested = Signal(int)  # chapter number
    fold_requested = Signal(object, bool)  # chapter numbers (a list), collapsed or expanded

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChapterOutline")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tree = QTreeWidget()
        self.tree.setObjectName("ChapterList")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["#", "Chapter", "Lines"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)  # the title takes the room; number and count fit their text
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.tree.itemActivated.connect(self._on_item_clicked)  # Enter on the keyboard
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.empty_label = QLabel("No chapters yet. A line that starts with “# ” (for example "
                                  "“# Chapter 1: The Storm”) begins one.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setMargin(8)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty_label, 1)
        self.chapters: list[Chapter] | None = None  # None: nothing shown yet
        self.folded: set[int] = set()  # numbers of the chapters shown collapsed
        self.set_chapters([])

    def set_chapters(self, chapters: Sequence[Chapter], folded: set[int] | None = None) -> None:
        """Show `chapters` (and which are collapsed), keeping the highlighted row's chapter number where
        it still exists."""
        folded = self.folded if folded is None else folded
        if list(chapters) == self.chapters and folded == self.folded:
            return
        self.folded = set(folded)  # typing inside a chapter changes nothing here: the selection and scroll stay
        current = self.current_chapter()
        self.chapters = list(chapters)
        self.tree.clear()
        for chapter in self.chapters:
            item = QTreeWidgetItem([str(chapter.number), chapter.title,
                                    str(chapter.last_line - chapter.first_line + 1)])
            item.setData(0, _NUMBER, chapter.number)
            item.setToolTip(1, f"{chapter.title}\nlines {chapter.first_line}–{chapter.last_line}")
            if chapter.number in self.folded:  # collapsed: the title in italics, "▸" before it
                item.setText(1, f"▸ {chapter.title}")
                font = item.font(1)
                font.setItalic(True)
                item.setFont(1, font)
            item.setTextAlignment(0, Qt.AlignmentFlag.AlignRight)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
            self.tree.addTopLevelItem(item)
        self.tree.setVisible(bool(self.chapters))
        self.empty_label.setVisible(not self.chapters)
        if current is not None and current <= len(self.chapters):
            self.tree.setCurrentItem(self.tree.topLevelItem(current - 1))

    def show_line(self, line: int) -> None:
        """Highlight the chapter that holds the 1-based `line` (the editor's cursor moved)."""
        for index, chapter in enumerate(self.chapters):
            if chapter.holds(line):
                item = self.tree.topLevelItem(index)
                if self.tree.currentItem() is not item:
                    self.tree.setCurrentItem(item)
                return

    def current_chapter(self) -> int | None:
        item = self.tree.currentItem()
        return None if item is None else int(item.data(0, _NUMBER))

    def _on_item_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        self.jump_requested.emit(self.chapters[int(item.data(0, _NUMBER)) - 1].first_line)

    def _on_context_menu(self, position) -> None:
        item = self.tree.itemAt(position)
        if item is None:
            return
        number = int(item.data(0, _NUMBER))
        menu = QMenu(self)
        menu.addAction("&Go to Chapter", lambda: self._on_item_clicked(item))
        menu.addAction("&Render Chapter", lambda: self.render_requested.emit(number))
        menu.addAction("&Export Chapter…", lambda: self.export_requested.emit(number))
        menu.addSeparator()
        folded = number in self.folded
        menu.addAction("E&xpand Chapter" if folded else "&Collapse Chapter",
                       lambda: self.fold_requested.emit([number], not folded))
        everything = [c.number for c in self.chapters]
        menu.addAction("Collapse &All", lambda: self.fold_requested.emit(everything, True))
        menu.addAction("Expand A&ll", lambda: self.fold_requested.emit(everything, False))
        menu.exec(self.tree.viewport().mapToGlobal(position))
