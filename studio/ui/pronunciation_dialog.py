"""Render -> Pronunciation Dictionary…: the project's entries in a table, edited and checked before use."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.pronunciation import Pronunciation, check_entry

COLUMNS = ("Term", "Say as", "Whole word", "Match case", "Only for voice", "Only in language")
_TERM, _SAY, _WHOLE, _CASE, _VOICE, _LANGUAGE = range(len(COLUMNS))


class PronunciationDialog(QDialog):
    """`entries()` after it is accepted: the rows as entries, each checked (a bad row names itself)."""

    def __init__(self, entries: Sequence[Pronunciation], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PronunciationDialog")
        self.setWindowTitle("Pronunciation Dictionary")
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        intro = QLabel("Words the model should say another way: a respelling (“Nguyen” → “Win”) or a hint "
                       "(“SQL” → “sequel”). The script keeps your words; only what the model reads changes, "
                       "and only the lines that contain a changed term are rendered again.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("PronunciationTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(_TERM, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(_SAY, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        for entry in entries:
            self.add_row(entry)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("&Add")
        self.add_button.clicked.connect(lambda: self._add_and_edit())
        self.remove_button = QPushButton("&Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout.addWidget(box)

    def add_row(self, entry: Pronunciation | None = None) -> int:
        entry = entry or Pronunciation("", "")
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, text in ((_TERM, entry.term), (_SAY, entry.say), (_VOICE, entry.voice or ""),
                             (_LANGUAGE, entry.language or "")):
            self.table.setItem(row, column, QTableWidgetItem(text))
        for column, checked in ((_WHOLE, entry.whole_word), (_CASE, entry.match_case)):
            item = QTableWidgetItem()
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.table.setItem(row, column, item)
        return row

    def _add_and_edit(self) -> None:
        row = self.add_row()
        self.table.setCurrentCell(row, _TERM)
        self.table.editItem(self.table.item(row, _TERM))

    def remove_selected(self) -> None:
        for row in sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)

    def _text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text().strip() if item is not None else ""

    def entries(self) -> list[Pronunciation]:
        """The rows with a term or a respelling (an untouched empty row is dropped)."""
        out = []
        for row in range(self.table.rowCount()):
            if not self._text(row, _TERM) and not self._text(row, _SAY):
                continue
            out.append(Pronunciation(
                term=self._text(row, _TERM), say=self._text(row, _SAY),
                whole_word=self.table.item(row, _WHOLE).checkState() == Qt.CheckState.Checked,
                match_case=self.table.item(row, _CASE).checkState() == Qt.CheckState.Checked,
                voice=self._text(row, _VOICE) or None, language=self._text(row, _LANGUAGE) or None,
            ))
        return out

    def problem(self) -> tuple[int, str] | None:
        """The first row that cannot be used (0-based) and why."""
        rows = [r for r in range(self.table.rowCount()) if self._text(r, _TERM) or self._text(r, _SAY)]
        for row, entry in zip(rows, self.entries(), strict=True):
            reason = check_entry(entry)
            if reason is not None:
                return row, reason
        return None

    def accept(self) -> None:
        problem = self.problem()
        if problem is not None:
            row, reason = problem
            self.table.setCurrentCell(row, _TERM if "term" in reason else _SAY)
            QMessageBox.warning(self, "Pronunciation Dictionary", f"Row {row + 1}: {reason}.")
            return
        super().accept()
