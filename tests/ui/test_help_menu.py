"""Help: the shortcut list comes from the window's real actions; the user guide is the README's."""

from __future__ import annotations

import re

from PySide6.QtGui import QAction, QKeySequence

from studio.resources import RESOURCES_DIR
from studio.ui.shortcuts_dialog import ShortcutsDialog
from studio.ui.user_guide import README, UserGuideDialog, user_guide_markdown

NATIVE = QKeySequence.SequenceFormat.NativeText


def help_action(window, text):
    [action] = [a for a in window.findChildren(QAction) if a.text().replace("&", "") == text]
    return action


def table(dialog):
    return [tuple(dialog.table.item(r, c).text() for c in range(3)) for r in range(dialog.table.rowCount())]


def test_the_shortcut_table_lists_the_windows_real_shortcuts(qtbot, make_window):
    window = make_window()
    help_action(window, "Keyboard Shortcuts…").trigger()
    dialog = window.shortcuts_dialog
    assert isinstance(dialog, ShortcutsDialog) and dialog.isVisible()
    rows = table(dialog)
    by_action = {(a, w): k for a, k, w in rows}
    # What the actions really have, read from the actions the test finds itself.
    render_all = window.render_action
    assert by_action[("Render All", "Render")] == render_all.shortcut().toString(NATIVE)
    assert by_action[("Export Audio…", "File")] == QKeySequence("Ctrl+E").toString(NATIVE)
    redo = next(a for a in window.findChildren(QAction) if a.text().replace("&", "").startswith("Redo"))
    redo_row = next(k for a, k, w in rows if a.startswith("Redo") and w == "Edit")
    assert redo_row == ", ".join(k.toString(NATIVE) for k in redo.shortcuts())
    # Every action of the window with a shortcut is in the table, wherever it lives (the palette's too).
    with_keys = {id(a): a for a in window.findChildren(QAction) if any(not k.isEmpty() for k in a.shortcuts())}
    assert len(rows) == len(with_keys)
    assert any(w == "Emotion palette" for _a, _k, w in rows)
    dialog.close()


def test_a_shortcut_added_later_appears_without_touching_the_list(qtbot, make_window):
    window = make_window()
    extra = QAction("Frobnicate the &Takes", window)
    extra.setShortcut(QKeySequence("Ctrl+Alt+Shift+Q"))
    window.menuBar().actions()[1].menu().addAction(extra)  # the Edit menu
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    assert ("Frobnicate the Takes", QKeySequence("Ctrl+Alt+Shift+Q").toString(NATIVE), "Edit") in table(dialog)


def test_the_filter_matches_actions_keys_and_menus(qtbot, make_window):
    window = make_window()
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    dialog.filter_edit.setText("render")
    visible = dialog.visible_rows()
    assert visible and all("render" in f"{r.action} {r.keys} {r.where}".lower() for r in visible)
    assert any(r.action == "Render All" for r in visible)
    assert len(visible) < len(dialog.rows)
    dialog.filter_edit.setText("ctrl+r")  # also Ctrl+Return
    assert {r.action for r in dialog.visible_rows()} == {"Render All", "Render Line"}
    dialog.filter_edit.setText("")
    assert len(dialog.visible_rows()) == len(dialog.rows)


def readme_sections():
    return [line[3:].strip() for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]


def test_the_user_guide_shows_the_readmes_user_sections(qtbot, make_window):
    window = make_window()
    help_action(window, "User Guide").trigger()
    dialog = window.user_guide_dialog
    assert isinstance(dialog, UserGuideDialog) and dialog.isVisible()
    shown = dialog.browser.toPlainText()
    sections = readme_sections()
    for title in ("The editor", "The script", "Rendering", "Voices", "Fine-tuning"):
        assert title in sections, f"the README has no '{title}' section any more"
        assert title in shown
    assert "Development" not in [line.strip() for line in shown.splitlines()]
    # A sentence of the README's guide, verbatim: the guide is the README's text, not a copy of it.
    sentence = re.search(r"Every edit is undoable[^.]*\.", README.read_text(encoding="utf-8")).group(0)
    assert " ".join(sentence.split())[:60] in " ".join(shown.split())
    dialog.close()


def test_a_picture_that_is_not_there_becomes_its_caption(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.png").write_bytes(b"")
    text = "# T\n\nintro\n\n## Install\n\nsetup\n\n## Use\n\n![Shown](docs/here.png) ![Gone](docs/gone.png)\n"
    out = user_guide_markdown(text, tmp_path)
    assert "setup" not in out and "intro" not in out
    assert "![Shown](docs/here.png)" in out and "*Gone*" in out and "gone.png" not in out


def test_the_packaged_build_carries_the_readme_where_the_guide_looks(tmp_path):
    # The guide reads README.md beside resources/; the spec must put it (and its pictures) there too.
    assert README == RESOURCES_DIR.parent / "README.md"
    spec = (RESOURCES_DIR.parent / "packaging" / "qwen-tts-studio.spec").read_text(encoding="utf-8")
    assert 'datas += [(str(ROOT / "README.md"), ".")]' in spec
    assert '(ROOT / "docs").glob("*.png")' in spec and '(str(ROOT / "resources"), "resources")' in spec


def test_help_screenshots(qtbot, make_window, tmp_path):
    import os

    window = make_window()
    shortcuts = ShortcutsDialog(window)
    qtbot.addWidget(shortcuts)
    shortcuts.show()
    qtbot.waitExposed(shortcuts)
    guide = UserGuideDialog(window)
    qtbot.addWidget(guide)
    guide.show()
    qtbot.waitExposed(guide)
    folder = os.environ.get("HELP_PNG_DIR", str(tmp_path))
    assert shortcuts.grab().save(f"{folder}/shortcuts_dialog.png")
    assert guide.grab().save(f"{folder}/user_guide.png")
