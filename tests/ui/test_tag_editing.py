"""Tags as a user places them in the real window: an emotion replaces the line's emotion (one undo step),
spacing stays clean, unknown emotions are flagged with a fix, and a broken line shows its own voice and error."""

from __future__ import annotations

from PySide6.QtGui import QTextCursor

from studio.ui.clip_info import QuickFix
from studio.ui.main_window import MainWindow


def start(make_window, text: str) -> MainWindow:
    window = make_window()
    window.editor.setPlainText(text)
    window.undo_stack.clear()
    window.refresh_views()
    return window


def chips(window: MainWindow, line: int) -> list[tuple[str, bool]]:
    window.refresh_views()
    return [(chip.label, chip.inherited) for chip in window.timeline.clips[line].chips]


def assert_text(window: MainWindow, text: str) -> None:
    assert window.model.text == text
    assert window.editor.toPlainText() == text


def palette_item(window: MainWindow, label: str):
    return next(window.palette.list.item(row) for row in range(window.palette.list.count())
                if window.palette.list.item(row).text() == label)


# --- placing an emotion replaces the line's emotion ---------------------------------------------------------


def test_palette_drop_on_a_clip_replaces_the_emotion_in_one_undo_step(make_window):
    window = start(make_window, "[Angry] One.\n[Whispering]Two.")
    window.timeline.tag_dropped.emit(1, "[Sad]")  # what the timeline's dropEvent emits
    assert_text(window, "[Angry] One.\n[Sad] Two.")
    assert chips(window, 1) == [("Sad", False)]
    assert window.undo_stack.count() == 1
    window.undo_stack.undo()
    assert_text(window, "[Angry] One.\n[Whispering]Two.")
    window.undo_stack.redo()
    assert_text(window, "[Angry] One.\n[Sad] Two.")


def test_palette_double_click_on_a_line_with_stacked_emotions_leaves_one(make_window):
    window = start(make_window, "One.\n[Angry][Whispering]Two.")
    window.timeline.setFocus()
    window.timeline.select(1)
    window.palette.list.itemActivated.emit(palette_item(window, "Happy"))
    assert_text(window, "One.\n[Happy] Two.")
    assert chips(window, 1) == [("Happy", False)]
    window.undo_stack.undo()
    assert_text(window, "One.\n[Angry][Whispering]Two.")
    assert window.undo_stack.count() == 1


def test_palette_shortcuts_in_a_row_replace_each_other_and_keep_other_tags(make_window):
    window = start(make_window, "[voice: Ann]  Hello there.")
    window.timeline.setFocus()
    window.timeline.select(0)
    for label in ("Sad", "Angry", "Soft"):
        next(a for a in window.palette.shortcut_actions if a.text() == label).trigger()
    assert_text(window, "[Soft] [voice: Ann] Hello there.")
    assert window.undo_stack.count() == 3
    window.undo_stack.undo()
    assert_text(window, "[Angry] [voice: Ann] Hello there.")
    window.undo_stack.undo()
    window.undo_stack.undo()
    assert_text(window, "[voice: Ann]  Hello there.")


def test_placing_the_emotion_a_line_already_has_adds_no_undo_step(make_window):
    window = start(make_window, "[Sad] One.")
    window.apply_tag(0, "[Sad]")
    assert_text(window, "[Sad] One.")
    assert window.undo_stack.count() == 0


def test_a_pause_from_the_palette_is_added_not_replacing_the_emotion(make_window):
    window = start(make_window, "[Sad]One.")
    window.apply_tag(0, "[pause]")
    assert_text(window, "[pause] [Sad] One.")


def test_drop_into_the_script_replaces_the_emotion_at_that_word(make_window):
    window = start(make_window, "[Angry] Come over [Soft]here.")
    window.editor.drop_tag("[Sad]", 0, 2)  # on the leading [Angry]
    assert_text(window, "[Sad] Come over [Soft]here.")
    window.editor.drop_tag("[Happy]", 0, 24)  # inside "here", after [Soft]
    assert_text(window, "[Sad] Come over [Happy] here.")
    assert chips(window, 0) == [("Sad", False), ("Happy", False)]
    window.undo_stack.undo()
    assert_text(window, "[Sad] Come over [Soft]here.")
    window.undo_stack.undo()
    assert_text(window, "[Angry] Come over [Soft]here.")


# --- removing a chip leaves clean spacing -------------------------------------------------------------------


def test_removing_chips_leaves_no_double_or_edge_spaces(make_window):
    window = start(make_window, "[Sad] One [pace: slow] two [Soft]")
    window.refresh_views()
    for expected in ("[Sad] One two [Soft]", "One two [Soft]", "One two"):
        chip = next(c for c in window.timeline.clips[0].chips if not c.inherited)
        if expected == "[Sad] One two [Soft]":
            chip = next(c for c in window.timeline.clips[0].chips if c.label == "pace: slow")
        window.timeline.chip_remove_requested.emit(0, chip.column, chip.tag_text)
        assert_text(window, expected)
    for expected in ("One two [Soft]", "[Sad] One two [Soft]", "[Sad] One [pace: slow] two [Soft]"):
        window.undo_stack.undo()
        assert_text(window, expected)


def test_removing_a_chip_whose_tag_has_moved_changes_nothing(make_window):
    window = start(make_window, "[Sad] One.")
    window.remove_tag(0, 3, "[Sad]")
    assert_text(window, "[Sad] One.")
    assert window.undo_stack.count() == 0


# --- unknown emotions: a warning with the closest known name, and a quick fix --------------------------------


def test_unknown_emotion_is_flagged_on_its_clip_with_a_quick_fix(make_window):
    window = start(make_window, "Calm.\n  [Fearfl] Run!")
    window.refresh_views()
    clip = window.timeline.clips[1]
    assert clip.warning
    assert clip.message == "line 2, column 3: unknown emotion 'Fearfl': did you mean Fearful?"
    assert clip.quick_fixes == [QuickFix("Replace [Fearfl] with [Fearful]", 2, "[Fearfl]", "[Fearful]")]
    assert not window.timeline.clips[0].warning and window.timeline.clips[0].quick_fixes == []

    fix = clip.quick_fixes[0]
    window.apply_quick_fix(1, fix.column, fix.old, fix.new)
    assert_text(window, "Calm.\n  [Fearful] Run!")
    window.refresh_views()
    assert not window.timeline.clips[1].warning and window.timeline.clips[1].message == ""
    assert window.undo_stack.count() == 1
    window.undo_stack.undo()
    assert_text(window, "Calm.\n  [Fearfl] Run!")


def test_a_stale_quick_fix_is_refused(make_window):
    window = start(make_window, "[Fearfl] Run!")
    window.apply_quick_fix(0, 0, "[Fearfl]", "[Fearful]")
    window.apply_quick_fix(0, 0, "[Fearfl]", "[Fearful]")  # offered before the first was applied
    assert_text(window, "[Fearful] Run!")
    assert window.undo_stack.count() == 1


def test_stacked_emotions_are_flagged_and_the_fix_removes_the_overridden_one(make_window):
    window = start(make_window, "[Angry][Whispering]Two.")
    window.refresh_views()
    clip = window.timeline.clips[0]
    assert clip.warning and "[Angry] is overridden by [Whispering]" in clip.message
    assert clip.quick_fixes == [QuickFix("Remove [Angry]", 0, "[Angry]", "")]
    window.apply_quick_fix(0, 0, "[Angry]", "")
    assert_text(window, "[Whispering] Two.")
    window.undo_stack.undo()
    assert_text(window, "[Angry][Whispering]Two.")


def test_an_emotion_added_to_the_palette_is_no_longer_unknown(make_window):
    window = start(make_window, "[Sarcastic] Sure.")
    window.refresh_views()
    assert window.timeline.clips[0].warning
    assert "unknown emotion 'Sarcastic': not in the palette" in window.timeline.clips[0].message
    assert window.timeline.clips[0].quick_fixes == []
    window.palette.add_user_tag("Sarcastic")
    assert not window.timeline.clips[0].warning and window.timeline.clips[0].message == ""


def test_the_script_editor_underlines_an_unknown_emotion_explains_it_and_offers_the_fix(make_window):
    window = start(make_window, "Calm.\nThen [Fearfl] run!")
    editor = window.editor
    block = editor.document().findBlockByNumber(1)
    underlined = [(f.start, f.length) for f in block.layout().formats()
                  if f.format.underlineStyle() == f.format.underlineStyle().WaveUnderline]
    assert underlined == [(5, len("[Fearfl]"))]
    assert not [f for f in editor.document().findBlockByNumber(0).layout().formats()
                if f.format.underlineStyle() == f.format.underlineStyle().WaveUnderline]

    cursor = QTextCursor(block)
    cursor.setPosition(block.position() + 8)
    pos = editor.cursorRect(cursor).center()
    assert editor.tooltip_at(pos) == ("line 2, column 6: unknown emotion 'Fearfl': did you mean Fearful?\n"
                                      "(right-click for the fix)")
    menu = editor.context_menu_at(pos)
    labels = [action.text() for action in menu.actions()]
    assert labels[0] == "Replace [Fearfl] with [Fearful]" and any("Copy" in label for label in labels)
    menu.actions()[0].trigger()
    assert_text(window, "Calm.\nThen [Fearful] run!")
    assert [f for f in editor.document().findBlockByNumber(1).layout().formats()
            if f.format.underlineStyle() == f.format.underlineStyle().WaveUnderline] == []
    window.undo_stack.undo()
    assert_text(window, "Calm.\nThen [Fearfl] run!")


# --- a broken line shows its own voice and its whole error ----------------------------------------------------


def test_a_broken_line_shows_its_own_voice_and_its_whole_error(make_window):
    window = start(make_window, "[voice: Ann] Hi.\n[voice: Bob][Sad] Hello [voice: Cat] [oops and more words\n"
                                "[voice: Cat] [oops")
    window.refresh_views()
    clip = window.timeline.clips[1]
    assert clip.state == "error"
    assert (clip.voice, clip.text) == ("Bob", "Hello")  # the voice its first words have, not line 1's
    assert clip.message == "line 2, column 38: unclosed '[': the tag has no ']' on this line"
    assert [(chip.label, chip.inherited) for chip in clip.chips] == [("Sad", False)]
    # No words before the error: the voice its tags set (a broken line changes nothing for the next line).
    third = window.timeline.clips[2]
    assert (third.state, third.voice, third.text) == ("error", "Cat", "")
    assert third.message == "line 3, column 14: unclosed '[': the tag has no ']' on this line"
    # Its chips stay removable, which is one way to repair it.
    window.timeline.chip_remove_requested.emit(1, clip.chips[0].column, clip.chips[0].tag_text)
    assert_text(window, "[voice: Ann] Hi.\n[voice: Bob] Hello [voice: Cat] [oops and more words\n[voice: Cat] [oops")


def test_a_broken_line_with_an_unknown_emotion_shows_both(make_window):
    window = start(make_window, "[Fearfl] Hello ] there")
    window.refresh_views()
    clip = window.timeline.clips[0]
    assert clip.state == "error" and clip.warning
    assert clip.message == ("line 1, column 16: stray ']' with no '[' before it (write \\] for a literal bracket); "
                            "line 1, column 1: unknown emotion 'Fearfl': did you mean Fearful?")
    assert clip.quick_fixes == [QuickFix("Replace [Fearfl] with [Fearful]", 0, "[Fearfl]", "[Fearful]")]

