"""Help -> Keyboard Shortcuts: a searchable table built from the window's own QActions each time it
opens, so it lists exactly the shortcuts that work (a list written by hand goes stale)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLineEdit,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class ShortcutRow:
    action: str  # the action's text, without mnemonics
    keys: str  # its shortcuts, as the platform writes them, comma separated
    where: str  # the menu it lives in ("Edit", "File › Open Recent"), or the part of the window


def _plain(text: str) -> str:
    # "&Save As…" -> "Save As…"; "&&" is a literal ampersand.
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").strip()


def _humanize(name: str) -> str:
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).split()
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else name


def _menu_paths(window) -> dict[int, str]:
    """id(action) -> the menu path it sits in, walking the menu bar."""
    paths: dict[int, str] = {}

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            sub = action.menu()
            if sub is not None:
                walk(sub, f"{path} › {_plain(action.text())}")
            elif not action.isSeparator():
                paths.setdefault(id(action), path)

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.text()))
    return paths


def shortcut_rows(window) -> list[ShortcutRow]:
    """Every action of `window` (menus, toolbars, the palette, ...) that has a shortcut."""
    paths = _menu_paths(window)
    rows = []
    seen: set[int] = set()
    for action in window.findChildren(QAction):
        if id(action) in seen or not action.shortcuts():
            continue
        seen.add(id(action))
        native = QKeySequence.SequenceFormat.NativeText
        keys = ", ".join(k.toString(native) for k in action.shortcuts() if not k.isEmpty())
        if not keys:
            continue
        where = paths.get(id(action))
        if where is None:
            owner = action.parent()
            where = "Window" if owner is window or owner is None else _humanize(
                owner.objectName() or type(owner).__name__)
        text = _plain(action.text()) or _plain(action.toolTip()) or action.objectName()
        rows.append(ShortcutRow(text, keys, where))
    order = {name: i for i, name in enumerate(_plain(a.text()) for a in window.menuBar().actions())}
    rows.sort(key=lambda r: (order.get(r.where.split(" › ")[0], len(order)), r.where, r.action.lower()))
    return rows


class ShortcutsDialog(QDialog):
    """The shortcut table, with a filter that matches the action, the keys or the menu."""

    def __init__(self, window, parent: QWidget | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        self.setObjectName("ShortcutsDialog")
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(620, 560)
        layout = QVBoxLayout(self)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Search actions, keys or menus…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._apply_filter)
        layout.addWidget(self.filter_edit)
        self.rows = shortcut_rows(window)
        self.table = QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut", "Menu"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        for row, entry in enumerate(self.rows):
            for column, text in enumerate((entry.action, entry.keys, entry.where)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.filter_edit.setFocus()

    def visible_rows(self) -> list[ShortcutRow]:
        return [entry for row, entry in enumerate(self.rows) if not self.table.isRowHidden(row)]

    def _apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for row, entry in enumerate(self.rows):
            haystack = f"{entry.action} {entry.keys} {entry.where}".lower()
            self.table.setRowHidden(row, not all(word in haystack for word in words))
