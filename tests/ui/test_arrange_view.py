"""The editor's one time axis, transport keys, selection in step across views, and the window's look,
on the real MainWindow (no rendering here; see test_line_render_mix.py for that)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QContextMenuEvent, QGuiApplication, QPalette, QWheelEvent

from studio.core.project import CastEntry
from studio.core.voice import VoiceSpec
from studio.session.pipeline import SAMPLE_RATE
from studio.ui.theme import apply_theme
from studio.ui.timeline import GUTTER

SCRIPT = "\n".join([
    "[Whispering]Come closer, all of you.",
    "[voice: Mira][Angry]Get out of my house!",
    "[voice: Narrator]She said nothing for a long while. [pause 1s] Then she left.",
    "[voice: Keeper]The lamp went out.",
])


@pytest.fixture
def window(make_window):
    w = make_window()
    for name in ("Narrator", "Mira", "Keeper"):
        w.project.cast[name] = CastEntry(voice=VoiceSpec.design(f"{name}'s voice"))
    w.project.render.voice = "Narrator"
    w.resize(1200, 800)
    w.editor.setPlainText(SCRIPT)
    w.refresh_views()
    return w


def waveform_x(window, seconds: float) -> float:
    """Where the waveform draws `seconds`, in the window's coordinates."""
    view = window.waveform
    scene = view.getViewBox().mapViewToScene(QPointF(seconds, 0))
    return view.mapTo(window, view.mapFromScene(scene)).x()


def timeline_x(window, seconds: float) -> float:
    return window.timeline.mapTo(window, QPoint(int(round(window.timeline.x_of(seconds))), 0)).x()


def test_clips_sit_in_one_lane_per_voice_at_their_times(window):
    timeline = window.timeline
    assert timeline.lanes == ["Narrator", "Mira", "Keeper"]
    assert [c.voice for c in timeline.clips] == ["Narrator", "Mira", "Narrator", "Keeper"]
    lane_tops = [timeline.clip_rect(i).y() for i in range(4)]
    assert lane_tops[0] == lane_tops[2] < lane_tops[1] < lane_tops[3]
    # Each clip starts where the previous line ends (an estimate before rendering, hatched).
    for i in range(1, 4):
        assert timeline.start_of(i) == pytest.approx(timeline.end_of(i - 1))
    assert all(c.estimated for c in timeline.clips)
    # The pause inside line 3 is part of its length.
    assert timeline.end_of(2) - timeline.start_of(2) > 1.0


def test_timeline_and_waveform_share_one_axis_through_zoom_and_scroll(qtbot, window):
    qtbot.waitUntil(lambda: len(window.waveform.audio) > 0, timeout=30_000)  # the project's (silent) mix is laid out
    for seconds in (0.0, window.timeline.start_of(2), window.timeline.end_of(3)):
        assert waveform_x(window, seconds) == pytest.approx(timeline_x(window, seconds), abs=1.5)
    window.axis.zoom(3.0, window.timeline.start_of(1))
    window.axis.scroll_by_pixels(25)
    qtbot.wait(10)
    for seconds in (window.timeline.start_of(1), window.timeline.start_of(2)):
        assert waveform_x(window, seconds) == pytest.approx(timeline_x(window, seconds), abs=1.5)
    # The scroll bar shows where the view is.
    assert window.arrange.scrollbar.value() == int(window.axis.start * 1000)


def test_ctrl_wheel_on_the_timeline_zooms_both_views_at_the_mouse(qtbot, window):
    timeline = window.timeline
    at = timeline.start_of(2)
    x = timeline.x_of(at)
    scale = window.axis.pixels_per_second
    event = QWheelEvent(QPointF(x, 60), timeline.mapToGlobal(QPointF(x, 60)), QPoint(), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase,
                        False)
    QGuiApplication.sendEvent(timeline, event)
    assert window.axis.pixels_per_second == pytest.approx(scale * 1.25**2)
    assert timeline.x_of(at) == pytest.approx(x)  # the time under the mouse stayed there
    (left, right), _ = window.waveform.getViewBox().viewRange()
    assert (left, right) == pytest.approx((window.axis.start, window.axis.end))
    fit = next(a for a in window.findChildren(type(window.play_action)) if a.text() == "&Fit Project")
    fit.trigger()
    assert window.axis.fitted and window.axis.start == 0


def test_selection_follows_between_clip_script_and_waveform(qtbot, window):
    timeline = window.timeline
    # A click on a clip selects its script line and moves the playhead to its start.
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=timeline.clip_rect(2).center())
    assert timeline.selected == 2 and window.editor.textCursor().blockNumber() == 2
    assert window.transport_position() == timeline.start_samples[2]
    # Moving the script's cursor selects that line's clip.
    window.editor.move_cursor_to(4, 3)
    assert timeline.selected == 3
    assert window.transport_position() == timeline.start_samples[3]
    # A click on the waveform moves the playhead there and selects the line under it.
    qtbot.waitUntil(lambda: len(window.waveform.audio) > 0, timeout=30_000)
    inside_line_2 = (timeline.start_of(1) + timeline.end_of(1)) / 2
    x = window.waveform.mapFrom(window, QPoint(int(waveform_x(window, inside_line_2)), 0)).x()
    qtbot.mouseClick(window.waveform.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 40))
    assert timeline.selected == 1 and window.editor.textCursor().blockNumber() == 1
    assert window.transport_position() == pytest.approx(inside_line_2 * SAMPLE_RATE, abs=SAMPLE_RATE * 0.05)
    assert window.waveform.highlighted == (timeline.start_of(1), timeline.end_of(1))


def test_transport_keys_move_the_playhead_and_the_readout(qtbot, window):
    timeline = window.timeline
    timeline.setFocus()
    total = int(timeline.end_samples[-1])
    qtbot.keyClick(timeline, Qt.Key.Key_End)
    assert window.transport_position() == total
    qtbot.keyClick(timeline, Qt.Key.Key_J)
    assert window.transport_position() == total - 5 * SAMPLE_RATE
    qtbot.keyClick(timeline, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert window.transport_position() == total - 6 * SAMPLE_RATE
    qtbot.keyClick(timeline, Qt.Key.Key_Home)
    assert window.transport_position() == 0
    qtbot.keyClick(timeline, Qt.Key.Key_L)
    assert window.transport_position() == 5 * SAMPLE_RATE
    minutes, seconds = divmod(total / SAMPLE_RATE, 60)
    assert window.time_label.text() == f"0:05.0 / {int(minutes)}:{int(seconds):02d}.{int(seconds * 10) % 10}"


def test_typing_in_the_script_is_not_taken_by_the_transport_keys(qtbot, window):
    window.editor.setFocus()
    window.editor.move_cursor_to(4, 1)
    qtbot.keyClicks(window.editor, "jkl ")
    assert window.model.line(3).text.startswith("jkl [voice: Keeper]")
    assert window.transport_position() == window.timeline.start_samples[3]


def test_without_a_sound_card_the_transport_says_why(window):
    assert window.output_device is None
    assert not window.play_action.isEnabled()
    assert window.device_label.isVisibleTo(window) and "No sound output" in window.device_label.text()
    assert "no audio output device" in window.device_label.toolTip()


def test_the_menu_key_opens_the_selected_clips_menu_at_the_clip(qtbot, window):
    timeline = window.timeline
    timeline.select(3)
    centre = timeline.rect().center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Keyboard, centre, timeline.mapToGlobal(centre))
    QGuiApplication.sendEvent(timeline, event)
    menu = timeline.last_menu
    assert menu is not None and menu.isVisible()
    texts = [a.text() for a in menu.actions()]
    assert "Render line" in texts
    menu.actions()[texts.index("Copy as text")].trigger()
    assert QGuiApplication.clipboard().text() == window.model.line(3).text
    menu.close()


def test_redo_with_ctrl_shift_z_works_outside_the_script_editor(qtbot, window):
    window.apply_tag(0, "[Sad]")
    text = window.model.line(0).text
    window.undo_stack.undo()
    assert window.model.line(0).text != text
    window.timeline.setFocus()
    qtbot.keyClick(window.timeline, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.model.line(0).text == text


def test_copy_and_select_all_act_on_what_has_focus(qtbot, window):
    window.timeline.setFocus()
    window.timeline.select(1)
    qtbot.keyClick(window.timeline, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == window.model.line(1).text
    edit = next(a for a in window.menuBar().actions() if a.text() == "&Edit").menu()
    assert {"Cu&t", "&Copy", "&Paste", "Select &All"} <= {a.text() for a in edit.actions()}
    window.editor.setFocus()
    next(a for a in edit.actions() if a.text() == "Select &All").trigger()
    assert window.editor.textCursor().selectedText().replace("\u2029", "\n") == SCRIPT


def test_a_window_saved_on_a_bigger_screen_is_restored_within_this_one(make_window):
    first = make_window()
    first.resize(4000, 3000)
    first.move(-500, 2000)
    first.save_layout()
    second = make_window()
    second.restore_layout()
    screen = second.screen().availableGeometry()
    assert screen.contains(second.frameGeometry())


def test_the_dark_theme_reaches_the_timeline_and_the_waveform(qtbot, window):
    try:
        window.set_theme("dark")
        qtbot.wait(10)
        base = QColor("#1e1f22")
        assert window.timeline.palette().color(QPalette.ColorRole.Base) == base
        image = window.timeline.grab().toImage()
        # The lane area of the first lane, right of the gutter, away from clips: the dark base colour.
        x = window.timeline.width() - 5
        assert image.pixelColor(x, 30) == base
        wave = window.waveform.grab().toImage()
        assert wave.pixelColor(wave.width() - 3, 3) == base
        from studio.settings import load_settings

        assert load_settings().theme == "dark"
    finally:
        apply_theme("system")


def test_a_long_project_draws_only_the_clips_in_view(qtbot):
    from studio.ui.arrange_view import ArrangeView
    from studio.ui.clip_info import ClipInfo

    view = ArrangeView()
    qtbot.addWidget(view)
    view.resize(1200, 400)
    view.show()
    clips = [ClipInfo(index=i, line_id=i, text=f"Line {i}", voice="Narrator", chips=[], pieces=[("speech", 1.5)],
                      estimated=True, state="stale") for i in range(100_000)]
    view.timeline.set_clips(clips, lanes=["Narrator"])
    assert np.isclose(view.timeline.total_seconds, 150_000.0)
    view.axis.zoom(1e6, 36_000.0)  # all the way in, ten hours into the project
    first, last = view.timeline.visible_range()
    assert first <= 24_000 < last and last - first < 10
    view.axis.fit()
    assert view.timeline.visible_range() == (0, 100_000)
    # Every line in view: drawn as one mark per pixel column, which shows as a filled lane.
    image = view.timeline.grab().toImage()
    lane_middle = view.timeline.lane_top(0) + 29
    x = GUTTER + 300
    assert image.pixelColor(x, lane_middle) != view.timeline.palette().color(QPalette.ColorRole.Base)


def test_quitting_asks_the_fine_tune_wizard_first(qtbot, window, monkeypatch):
    from studio.ui.wizard import FineTuneWizard

    window.open_finetune_wizard()
    wizard = window.finetune_wizard
    assert wizard.isVisible()
    # The wizard's question about a trained voice not added yet, answered with Cancel: the window stays open.
    asked = []
    monkeypatch.setattr(FineTuneWizard, "settle_trained_voice", lambda self: asked.append(1) or False)
    window.undo_stack.setClean()
    assert not window.close()
    assert asked and window.isVisible() and wizard.isVisible()
    monkeypatch.undo()
    assert window.close()
    assert not window.isVisible()


def test_a_clips_quick_fix_from_its_menu_corrects_the_line(window):
    window.editor.setPlainText("[Fearfl]Hello there.\nFine.")
    window.refresh_views()
    clip = window.timeline.clips[0]
    assert clip.warning and "did you mean Fearful" in clip.message
    menu = window.timeline.build_menu(0)
    fix = next(a for a in menu.actions() if "Fearful" in a.text())
    fix.trigger()
    assert window.model.line(0).text.startswith("[Fearful]") and "Hello there." in window.model.line(0).text
    window.undo_stack.undo()
    assert window.model.line(0).text == "[Fearfl]Hello there."


def test_render_all_with_a_model_but_no_voices_says_why_instead_of_nothing(make_window, tiny_checkpoints,
                                                                           monkeypatch):
    from studio.ui.preflight_dialog import PreflightDialog

    window = make_window()
    window.project.render.model = str(tiny_checkpoints["voice_design"])
    window.editor.setPlainText("Hello there.\nSecond line.")
    shown = []
    monkeypatch.setattr(PreflightDialog, "exec_choice", lambda dialog: shown.append(dialog.problems) or "")
    assert not window.render_all()
    assert shown and any("no voice is set" in problem.what for problem in shown[0])
    assert not window.session.busy


def test_the_status_bar_names_the_chosen_model_before_any_render(make_window, tiny_checkpoints):
    window = make_window()
    assert "automatic" in window.model_label.text()
    window.use_model(str(tiny_checkpoints["custom_voice"]))
    assert window.model_label.text() == "Model: custom_voice (loads when you render)"


def test_a_new_project_shows_none_of_the_previous_projects_audio(qtbot, window):
    from studio.audio.buffers import GrowingAudio, TimelineAudio

    compact = GrowingAudio(SAMPLE_RATE)
    compact.append(np.full(SAMPLE_RATE, 0.5, np.float32))
    window.waveform.show_timeline(TimelineAudio(compact, SAMPLE_RATE, [(0, 0, SAMPLE_RATE)]))
    assert len(window.waveform._curve.getData()[0])
    window.undo_stack.setClean()  # nothing to ask about
    window.new_project()
    qtbot.wait(10)
    x, _y = window.waveform._curve.getData()
    assert x is None or len(x) == 0
    assert window.waveform.highlighted is None


def test_a_broken_line_keeps_a_place_on_the_timeline_with_its_own_voice(window):
    window.editor.setPlainText("[voice: Mira]Hello there.\n[voice: Keeper]Then we run [now.\nFine.")
    window.refresh_views()
    timeline = window.timeline
    clip = timeline.clips[1]
    assert clip.state == "error" and clip.voice == "Keeper" and clip.estimated
    assert timeline.end_of(1) - timeline.start_of(1) >= 0.6
    assert timeline.clip_rect(1).width() > 4
    assert clip.message.startswith("line 2, column")


def test_the_lanes_give_way_in_a_small_window_instead_of_overlapping_the_waveform(window):
    # A window manager may make the window smaller than its layout's minimum (a small screen, a tiling
    # WM): the lanes then have to shrink (and scroll), so their minimum is one lane, not all of them.
    arrange = window.arrange
    assert len(window.timeline.lanes) == 3
    assert arrange.lanes.minimumHeight() <= window.timeline.height_for_lanes(1) + 2 * arrange.lanes.frameWidth()
    assert arrange.minimumSizeHint().height() < window.timeline.height_for_lanes(3) + window.waveform.minimumHeight()


def test_a_clip_is_coloured_by_its_emotion_never_by_a_directive(make_window):
    window = make_window()
    window.editor.setPlainText("Plain.\n[pace: normal]Normal pace.\n[pace: fast][Angry]Fast and angry.\n[Angry]Angry.")
    window.refresh_views()
    window.timeline.selected = -1  # no selection border in the way
    image = window.timeline.grab().toImage()

    def body(index: int):
        rect = window.timeline.clip_rect(index)
        return image.pixelColor(rect.left() + 4, rect.bottom() - 4)

    plain, normal, fast_angry, angry = (body(i) for i in range(4))
    assert normal == plain  # "[pace: normal]" is no emotion: the clip keeps the plain colour
    assert fast_angry == angry != plain
