"""The emotion palette: tags to drag onto a clip or into the script, or apply with a shortcut."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from PySide6.QtCore import QMimeData, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QColor, QDrag, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.tags import KnownEmotions, emotion_of_tag
from studio.resources import resource_path
from studio.ui.script_editor import TAG_MIME_TYPE

PAUSE_TAG = "[pause]"
_SETTINGS_KEY = "palette/user_tags"


@dataclass(frozen=True)
class PaletteEntry:
    label: str
    tag: str  # the inline text inserted, e.g. "[Whispering]"
    colour: str
    user: bool = False


def load_default_emotions() -> list[PaletteEntry]:
    data = json.loads(resource_path("emotions.json").read_text(encoding="utf-8"))
    return [PaletteEntry(e["tag"], f"[{e['tag']}]", e["colour"]) for e in data["emotions"]]


def emotion_colour(emotion: str) -> QColor:
    """The palette colour of a default emotion; other emotions get a stable colour from their name."""
    for entry in _DEFAULTS:
        if entry.label.lower() == emotion.strip().lower():
            return QColor(entry.colour)
    hue = int(hashlib.sha1(emotion.strip().lower().encode()).hexdigest()[:4], 16) % 360
    return QColor.fromHsl(hue, 140, 120)


_DEFAULTS = load_default_emotions()


class _TagList(QListWidget):
    def startDrag(self, actions) -> None:  # noqa: N802 (Qt override)
        item = self.currentItem()
        if item is None:
            return
        mime = QMimeData()
        tag = item.data(Qt.ItemDataRole.UserRole).tag
        mime.setData(TAG_MIME_TYPE, tag.encode("utf-8"))
        mime.setText(tag)
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)


def known_emotions(entries: list[PaletteEntry]) -> KnownEmotions:
    """The emotions of palette entries (a user's "[pace: slow]" is a directive, not an emotion)."""
    names = (emotion_of_tag(entry.tag[1:-1]) for entry in entries if entry.tag.startswith("["))
    return KnownEmotions(name for name in names if name)


class EmotionPalette(QWidget):
    tag_activated = Signal(str)  # the tag text to apply to the selected line
    entries_changed = Signal()  # a user tag was added or removed: the known emotions changed

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.list = _TagList()
        self.list.setDragEnabled(True)
        self.list.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.list.itemActivated.connect(lambda item: self.tag_activated.emit(item.data(Qt.ItemDataRole.UserRole).tag))
        add = QPushButton("Add tag…")
        add.clicked.connect(self.add_user_tag_dialog)
        remove = QPushButton("Remove")
        remove.clicked.connect(self.remove_selected_user_tag)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.shortcut_actions: list[QAction] = []
        self.known_emotions = KnownEmotions([])  # of the entries shown; replaced (never mutated) on reload
        self.reload()

    def entries(self) -> list[PaletteEntry]:
        user = QSettings().value(_SETTINGS_KEY, []) or []
        if isinstance(user, str):
            user = [user]
        return [
            *_DEFAULTS,
            PaletteEntry("Pause", PAUSE_TAG, "#9aa5b1"),
            *(PaletteEntry(t, f"[{t}]", emotion_colour(t).name(), user=True) for t in user),
        ]

    def reload(self) -> None:
        entries = self.entries()
        known = known_emotions(entries)
        changed = known != self.known_emotions
        self.known_emotions = known
        self._fill(entries)
        if changed:
            self.entries_changed.emit()

    def _fill(self, entries: list[PaletteEntry]) -> None:
        self.list.clear()
        for action in self.shortcut_actions:
            self.removeAction(action)
        self.shortcut_actions.clear()
        for number, entry in enumerate(entries, start=1):
            item = QListWidgetItem(entry.label)
            pixmap = QPixmap(12, 12)
            pixmap.fill(QColor(entry.colour))
            item.setIcon(QIcon(pixmap))
            item.setData(Qt.ItemDataRole.UserRole, entry)
            # Alt+1 .. Alt+9 for the first nine, then Alt+Shift+1 .. for the next nine.
            if number <= 18:
                key = f"Alt+{'Shift+' if number > 9 else ''}{(number - 1) % 9 + 1}"
                item.setToolTip(f"{entry.tag}   ({key}: apply to the selected line)")
                action = QAction(entry.label, self)
                action.setShortcut(QKeySequence(key))
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
                action.triggered.connect(lambda _checked=False, t=entry.tag: self.tag_activated.emit(t))
                self.addAction(action)
                self.shortcut_actions.append(action)
            else:
                item.setToolTip(entry.tag)
            self.list.addItem(item)

    def add_user_tag(self, label: str) -> None:
        label = " ".join(label.replace("[", "").replace("]", "").split())
        if not label:
            return
        user = list(QSettings().value(_SETTINGS_KEY, []) or [])
        if label not in user:
            user.append(label)
            QSettings().setValue(_SETTINGS_KEY, user)
        self.reload()

    def add_user_tag_dialog(self) -> None:
        label, ok = QInputDialog.getText(self, "Add tag", "Emotion or delivery (e.g. Sarcastic):")
        if ok:
            self.add_user_tag(label)

    def remove_selected_user_tag(self) -> None:
        item = self.list.currentItem()
        entry = item.data(Qt.ItemDataRole.UserRole) if item else None
        if entry is None or not entry.user:
            return
        user = [t for t in (QSettings().value(_SETTINGS_KEY, []) or []) if t != entry.label]
        QSettings().setValue(_SETTINGS_KEY, user)
        self.reload()
