"""File → Import Book… and dropping a book on the real window: the new project opens with its chapters;
an existing project is never replaced; a book that cannot be read is one message naming it."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from studio.core.project import load_project
from tests.core.test_book_import import EPUB2_FILES, write_epub
from tests.ui.test_export_dialog import ModalDriver

TITLES = ["The First Tale", "The Second Tale", "Its Sequel"]


def drop(window, path) -> None:
    """A file dropped on the window, as the platform delivers it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)  # Qt delivers a drop only to a widget that accepted the drag
    assert enter.isAccepted()
    event = QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    assert event.isAccepted()


def test_a_dropped_epub_becomes_a_new_project_and_never_replaces_one(qtbot, make_window, tmp_path, monkeypatch):
    book = write_epub(tmp_path / "old.epub", EPUB2_FILES, opf="content.opf")
    taken = tmp_path / "taken.qtts"
    taken.write_text("the user's own project")
    answers = [str(taken), str(tmp_path / "tales")]  # first a name that exists, then a new one (no suffix)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (answers.pop(0), ""))
    window = make_window()
    said = []
    driver = ModalDriver(qtbot, [lambda box: (said.append(box.text()), box.accept())])
    try:
        drop(window, book)
        qtbot.waitUntil(lambda: window.project_path == tmp_path / "tales.qtts", timeout=20_000)
    finally:
        driver.stop()
    assert "taken.qtts already exists" in said[0] and taken.read_text() == "the user's own project"
    qtbot.waitUntil(lambda: window.outline.tree.topLevelItemCount() == 3)
    assert [window.outline.tree.topLevelItem(i).text(1) for i in range(3)] == TITLES
    assert load_project(tmp_path / "tales.qtts").book.author == "Bea Author"
    assert "Imported old.epub: 3 chapters" in window.statusBar().currentMessage()


def test_the_editor_leaves_a_dropped_book_to_the_window(make_window, tmp_path):
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "book.epub"))])
    assert not window.editor.canInsertFromMimeData(mime)  # its path is not pasted into the script
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "photo.jpg"))])
    assert window.editor.canInsertFromMimeData(mime)  # other files: the editor's usual behaviour


def test_a_book_that_cannot_be_read_is_one_message_and_nothing_is_written(qtbot, make_window, tmp_path,
                                                                          monkeypatch):
    broken = tmp_path / "broken.epub"
    broken.write_bytes(b"not a zip at all")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(broken), ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "broken.qtts"), ""))
    window = make_window()
    said = []

    def critical(box):
        assert isinstance(box, QMessageBox)
        said.append((box.windowTitle(), box.text()))
        box.accept()

    driver = ModalDriver(qtbot, [critical])
    try:
        assert window.import_book_dialog()
        qtbot.waitUntil(lambda: bool(said), timeout=20_000)
    finally:
        driver.stop()
    title, text = said[0]
    assert title == "Cannot import the book" and "broken.epub" in text and len(text.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.epub"] and window.project_path is None
