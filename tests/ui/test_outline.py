"""The chapter outline in the real window: it follows the script, jumps, and renders or exports one chapter
through the real engine on a tiny checkpoint."""

from __future__ import annotations

import os

import av
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from studio.audio.audiobook import read_chapters
from studio.engine.render import DONE
from tests.ui.test_export_dialog import export_with, fill_export

SCRIPT = "A word first.\n# Night\n[Whispering]Come closer.\nStay.\n# Morning\n[Angry]Get out!\n"


def rows(window) -> list[tuple[str, str, str]]:
    tree = window.outline.tree
    return [tuple(tree.topLevelItem(i).text(c) for c in range(3)) for i in range(tree.topLevelItemCount())]


@pytest.fixture
def window(tiny_window):
    return tiny_window(SCRIPT)


def test_the_outline_lists_the_chapters_and_follows_edits(qtbot, window):
    qtbot.waitUntil(lambda: len(rows(window)) == 3)
    assert rows(window) == [("1", "Opening", "1"), ("2", "Night", "3"), ("3", "Morning", "3")]  # + the last, empty line
    cursor = window.editor.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    window.editor.setTextCursor(cursor)
    window.editor.insertPlainText("# [Sad] Evening\nGone.")  # typed: the outline follows when typing pauses
    qtbot.waitUntil(lambda: len(rows(window)) == 4)
    assert rows(window)[3] == ("4", "Evening", "2")
    assert window.outline.current_chapter() == 4  # the cursor is in it
    window.undo_stack.undo()
    qtbot.waitUntil(lambda: len(rows(window)) == 3)


def test_clicking_a_chapter_jumps_the_editor_to_its_heading(qtbot, window):
    qtbot.waitUntil(lambda: len(rows(window)) == 3)
    tree = window.outline.tree
    item = tree.topLevelItem(2)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center())
    assert window.editor.textCursor().blockNumber() == 4  # line 5, "# Morning"
    window.editor.move_cursor_to(3, 1)
    assert window.outline.current_chapter() == 2  # moving the cursor highlights its chapter


def test_a_jump_puts_the_heading_at_the_top_of_the_editor(qtbot, tiny_window):
    window = tiny_window("\n".join(["# One"] + ["Words."] * 98 + ["# Two"] + ["More words."] * 100))
    window.refresh_outline()
    window.jump_to_line(window.chapter(2).first_line)
    assert window.editor.firstVisibleBlock().blockNumber() == 99  # "# Two", with its text below it
    window.jump_to_line(1)
    assert window.editor.firstVisibleBlock().blockNumber() == 0


def visible_lines(window) -> list[int]:
    doc = window.editor.document()
    return [n for n in range(doc.blockCount()) if doc.findBlockByNumber(n).isVisible()]


def test_collapsing_a_chapter_hides_its_text_and_it_stays_collapsed_through_edits(qtbot, window):
    qtbot.waitUntil(lambda: len(rows(window)) == 3)
    window.editor.move_cursor_to(4, 3)  # inside "Night", on "Stay."
    window.outline.fold_requested.emit([2], True)  # the chapter's context menu: Collapse Chapter
    assert visible_lines(window) == [0, 1, 4, 5, 6]  # "# Night" shows, its two lines do not
    assert rows(window)[1][1] == "▸ Night" and window.outline.tree.topLevelItem(1).font(1).italic()
    assert window.editor.textCursor().blockNumber() == 1  # out of the folded text, onto its heading
    cursor = window.editor.textCursor()
    cursor.setPosition(0)
    window.editor.setTextCursor(cursor)
    window.editor.insertPlainText("A new first line.\n")  # lines move down: the same chapter stays folded
    qtbot.waitUntil(lambda: visible_lines(window) == [0, 1, 2, 5, 6, 7])
    window.outline.fold_requested.emit([1, 2, 3], False)  # Expand All
    assert visible_lines(window) == list(range(8)) and rows(window)[1][1] == "Night"


def test_a_script_without_headings_says_how_to_make_a_chapter(qtbot, tiny_window):
    window = tiny_window("Just a line.")
    window.refresh_outline()
    assert not window.outline.tree.isVisibleTo(window) and window.outline.empty_label.isVisibleTo(window)
    assert "# " in window.outline.empty_label.text()
    assert not window.render_chapter(window.chapter_at(1))
    assert "No chapter here" in window.statusBar().currentMessage()


def test_render_chapter_renders_that_chapter_only_and_export_chapter_writes_it_alone(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: len(rows(window)) == 3)
    window.editor.move_cursor_to(4, 1)  # in "Night"
    previous = window.last_outcome
    [action] = [a for a in window.findChildren(QAction) if a.text() == "Render &Chapter"]
    action.trigger()
    qtbot.waitUntil(lambda: window.last_outcome is not previous, timeout=120_000)
    outcome = window.last_outcome
    assert sorted({r.segment.line for r in outcome.results}) == [2, 3, 4]
    assert all(r.state == DONE for r in outcome.results)
    assert not window.exporting  # a chapter's render is not the project's: no timestamped copy

    target = tmp_path / "night.m4b"
    window.export_audio = lambda export=window.export_audio: export(window.chapter(2))  # as the outline's menu
    assert export_with(qtbot, window, [fill_export(target, fmt="m4b", subtitles=False)])
    assert read_chapters(target) == [("Night", 0.0)]
    night = sum(r.n_samples for r in outcome.results) / 24000
    with av.open(str(target)) as container:
        assert abs(container.duration / av.time_base - night) < 0.1  # nothing of the other chapters


def test_outline_screenshot(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: len(rows(window)) == 3)
    window.resize(1200, 760)
    window.editor.move_cursor_to(3, 1)
    qtbot.wait(50)
    assert window.grab().save(os.environ.get("OUTLINE_PNG", str(tmp_path / "outline.png")))
