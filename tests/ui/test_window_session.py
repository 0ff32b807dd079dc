"""The window on the render session: a mixed cast, audio that stays after reopening, one line's region."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import soundfile
from PySide6.QtCore import Qt

from studio.core.project import CastEntry, GenerationParams
from studio.core.voice import VoiceSpec
from studio.engine.render import DONE
from tests.ui.test_render_in_window import render_and_wait

SCRIPT = ("[voice: Narrator]It began.\n[voice: Guest]I was there.\n[voice: Host]Welcome back.\n"
          "[voice: Narrator]Then it ended.\n")


@pytest.fixture
def cast_window(make_window, tiny_checkpoints, tmp_path):
    t = np.arange(36000) / 24000
    clip = tmp_path / "guest.wav"
    soundfile.write(clip, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000)
    window = make_window()
    project = window.project
    project.render.output_dir = str(tmp_path / "renders")
    project.render.generation = GenerationParams(max_new_tokens=8)
    project.cast["Narrator"] = CastEntry(voice=VoiceSpec("design", description="A calm narrator",
                                                         model=str(tiny_checkpoints["voice_design"])))
    project.cast["Guest"] = CastEntry(voice=VoiceSpec("clone", ref_audio=str(clip), ref_text="This is me.",
                                                      model=str(tiny_checkpoints["base"])))
    project.cast["Host"] = CastEntry(voice=VoiceSpec("preset", speaker="ryan",
                                                     model=str(tiny_checkpoints["custom_voice"])))
    project.render.voice = "Narrator"
    window.machine.device, window.machine.cpu_threads = "cpu", 2
    window.editor.setPlainText(SCRIPT)
    return window




def _states(window) -> list[str]:
    window.refresh_views()
    return [clip.state for clip in window.timeline.clips]


def test_a_three_voice_cast_renders_from_the_window_each_voice_on_its_model(qtbot, cast_window, tiny_checkpoints):
    outcome = render_and_wait(qtbot, cast_window)
    assert outcome.error is None and [r.state for r in outcome.results] == [DONE] * 4
    manifest = json.loads(cast_window.last_export.manifest.read_text())
    assert [s["model"] for s in manifest["segments"]] == [
        str(tiny_checkpoints[k]) for k in ("voice_design", "base", "custom_voice", "voice_design")]
    assert sorted(m["type"] for m in manifest["models"]) == ["base", "custom_voice", "voice_design"]
    # The waveform holds the whole mix, in script order.
    mix = np.concatenate([r.samples for r in outcome.results])
    np.testing.assert_array_equal(cast_window.waveform.audio.view(), mix)


def test_a_paced_cloned_line_is_stretched_in_the_mix_the_window_shows(qtbot, cast_window):
    """The Base model takes no instruct, so the Guest's [pace: slow] is a time stretch: the waveform and the
    export hold the stretched audio, never the model's unstretched chunks."""
    cast_window.editor.setPlainText(SCRIPT.replace("[voice: Guest]", "[voice: Guest][pace: slow]"))
    outcome = render_and_wait(qtbot, cast_window)
    assert outcome.error is None and [r.state for r in outcome.results] == [DONE] * 4
    guest = outcome.results[1]
    assert guest.pace == "time-stretch" and "not applied" not in (guest.warning or "")
    np.testing.assert_array_equal(cast_window.waveform.audio.view(),
                                  np.concatenate([r.samples for r in outcome.results]))
    manifest = json.loads(cast_window.last_export.manifest.read_text())
    assert manifest["segments"][1]["pace"] == {"value": "slow", "rate": 0.85, "method": "time-stretch"}
    assert manifest["segments"][1]["end"] - manifest["segments"][1]["start"] == pytest.approx(
        len(guest.samples) / 24000, abs=1e-3)


def test_reopening_a_rendered_project_shows_its_audio_without_rendering(qtbot, cast_window, make_window, tmp_path):
    outcome = render_and_wait(qtbot, cast_window)
    path = tmp_path / "show.qtts"
    assert cast_window._save_to(path)
    mix = np.concatenate([r.samples for r in outcome.results])

    reopened = make_window()
    reopened.machine.device, reopened.machine.cpu_threads = "cpu", 2
    probed = []
    reopened.renderer.worker.cache_probed.connect(lambda job, found: probed.append(found))
    assert reopened.open_project(path)
    qtbot.waitUntil(lambda: bool(probed), timeout=60_000)
    qtbot.waitUntil(lambda: len(reopened.waveform.audio) > 0, timeout=10_000)
    assert _states(reopened) == ["cached"] * 4 + ["empty"]  # the script ends with a newline
    np.testing.assert_array_equal(reopened.waveform.audio.view(), mix)
    # Found from files alone: no model was loaded for it.
    assert reopened.renderer.worker.residency is None and reopened.last_outcome is None

    # An edited line is not taken from the cache under its old text.
    third = make_window()
    third.machine.device, third.machine.cpu_threads = "cpu", 2
    probed.clear()
    third.renderer.worker.cache_probed.connect(lambda job, found: probed.append(found))
    assert third.open_project(path)
    third.editor.setPlainText(SCRIPT.replace("I was there.", "I was not there."))
    qtbot.waitUntil(lambda: bool(probed), timeout=60_000)
    qtbot.wait(50)
    assert _states(third)[1] == "stale"


def test_a_cache_answer_still_queued_when_the_window_closes_is_dropped(qtbot, cast_window, make_window, tmp_path):
    # CI once failed here: the render thread's answer was posted to the window just before it shut down, and
    # was delivered after the waveform had dropped its scene ("PlotCurveItem already deleted" in a slot).
    render_and_wait(qtbot, cast_window)
    path = tmp_path / "show.qtts"
    assert cast_window._save_to(path)
    closing = make_window()
    closing.machine.device, closing.machine.cpu_threads = "cpu", 2
    answered = threading.Event()
    # Runs on the render thread after the window's own (queued) slot has been posted.
    closing.renderer.worker.cache_probed.connect(lambda job, found: answered.set(),
                                                 Qt.ConnectionType.DirectConnection)
    assert closing.open_project(path)
    assert answered.wait(60)  # the UI thread has not run since: the answer waits in its queue
    closing.shutdown()
    qtbot.wait(50)  # an exception in the slot fails the test (pytest-qt catches it)
    assert not closing.session.mix_results(closing.model.lines(), closing._items_per_line())  # dropped


def test_a_new_take_replaces_that_lines_region_of_the_mix_only(qtbot, cast_window):
    outcome = render_and_wait(qtbot, cast_window)
    before = [r.samples.copy() for r in outcome.results]
    # The status bar names every model the render used, not the last one loaded.
    assert cast_window.model_label.text().startswith("3 models: VoiceDesign 1.7B, Base 1.7B, CustomVoice 1.7B")
    previous = cast_window.last_outcome
    cast_window.new_take(1)
    qtbot.waitUntil(lambda: cast_window.last_outcome is not previous, timeout=120_000)
    (take,) = cast_window.last_outcome.results
    assert take.segment.line == 2 and take.segment.take == 1
    assert not np.array_equal(take.samples, before[1])
    expected = np.concatenate([before[0], take.samples, before[2], before[3]])
    np.testing.assert_array_equal(cast_window.waveform.audio.view(), expected)
    # Back to the first take: its audio comes from the cache (nothing renders) into the same region.
    probed = []
    cast_window.renderer.worker.cache_probed.connect(lambda job, found: probed.append(job))
    outcome_before = cast_window.last_outcome
    cast_window.choose_take(1, 0)
    first_take_mix = np.concatenate(before)

    def shows_the_first_take() -> bool:
        # Every take here is as long as the others (each runs into its frame cap): compare the samples.
        audio = cast_window.waveform.audio.view()
        return len(audio) == len(first_take_mix) and np.array_equal(audio, first_take_mix)

    qtbot.waitUntil(shows_the_first_take, timeout=60_000)
    assert probed
    assert cast_window.last_outcome is outcome_before
    assert _states(cast_window)[:4] == ["done", "cached", "done", "done"]


@pytest.fixture
def answer_preflight(monkeypatch):
    """Answer the pre-flight dialog as a user would: remember what it showed, press one of its buttons."""
    from studio.ui import preflight_dialog

    shown = []

    def answer(choice):
        def exec_choice(self):
            shown.append(self)
            button = self.open_buttons.get(choice) if choice in self.open_buttons else (
                self.render_button if choice == self.RENDER_WHAT_CAN else None)
            if button is None:
                self._choose(self.CANCEL)
            else:
                assert button.isEnabled()
                button.click()  # the real button and its real slot
            return self.choice

        monkeypatch.setattr(preflight_dialog.PreflightDialog, "exec_choice", exec_choice)
        return shown

    return answer


def test_a_problem_stops_the_render_before_any_work_and_its_button_opens_the_fix(qtbot, cast_window, answer_preflight,
                                                                                 monkeypatch, tmp_path):
    from studio.session.preflight import FIX_MODELS, FIX_VOICES

    # The Guest's clip is gone and the Host's checkpoint is not on this machine.
    project = cast_window.project
    project.cast["Guest"] = CastEntry(voice=VoiceSpec("clone", ref_audio=str(tmp_path / "gone.wav"),
                                                      ref_text="t", model=project.cast["Guest"].voice.model))
    project.cast["Host"] = CastEntry(voice=VoiceSpec("preset", speaker="ryan", model=str(tmp_path / "no-model")))
    opened = []
    monkeypatch.setattr(cast_window, "edit_voices", lambda: opened.append("voices"))
    monkeypatch.setattr(cast_window, "manage_models", lambda: opened.append("models"))
    shown = answer_preflight(FIX_MODELS)
    assert not cast_window.render_all()
    (dialog,) = shown
    rows = [[dialog.table.item(r, c).text() for c in range(4)] for r in range(dialog.table.rowCount())]
    assert [row[:2] for row in rows] == [["2", "Guest"], ["3", "Host"]]
    assert "gone.wav" in rows[0][2] and "no-model" in rows[1][2] and "not on this machine" in rows[1][2]
    assert set(dialog.open_buttons) == {FIX_VOICES, FIX_MODELS}
    assert opened == ["models"] and not cast_window.session.busy and cast_window.last_outcome is None

    # "Render the other lines": lines 1 and 4 render; nothing is exported (a partial script).
    shown = answer_preflight(dialog.RENDER_WHAT_CAN)
    previous = cast_window.last_outcome
    assert cast_window.render_all()
    qtbot.waitUntil(lambda: cast_window.last_outcome is not previous, timeout=120_000)
    assert [r.segment.line for r in cast_window.last_outcome.results] == [1, 4]
    assert cast_window.last_export is None


def test_the_model_a_voice_renders_with_is_chosen_in_the_voices_dialog(qtbot, make_window, tiny_checkpoints,
                                                                       tmp_path):
    from studio.engine.models import register_local_folder
    from studio.ui.voices_dialog import ProfileEditor, VoicesDialog

    for kind in ("voice_design", "base"):
        register_local_folder(tiny_checkpoints[kind])
    window = make_window()
    editor = ProfileEditor("design", window)
    # Automatic first, then the installed VoiceDesign checkpoints only (the Base one is not offered).
    assert editor.model_choice.count() == 2 and editor.model_choice.model is None
    assert editor.model_choice.itemData(1) == str(tiny_checkpoints["voice_design"])
    editor.model_choice.setCurrentIndex(1)
    editor.description_edit.setPlainText("A calm narrator")
    assert editor.voice().model == str(tiny_checkpoints["voice_design"])

    dialog = VoicesDialog(window.project, window.library, window)
    profile = dialog.create_profile("Teller", VoiceSpec.design("An old storyteller"))
    assert profile.voice.model is None
    updated = dialog.set_profile_model(profile, str(tiny_checkpoints["voice_design"]))
    assert window.library.get(profile.id).voice.model == str(tiny_checkpoints["voice_design"])
    assert updated.kind_label == "designed" and dialog.changed
    assert "VoiceDesign 1.7B" in dialog.profiles.item(0).text()
    dialog.set_profile_model(updated, None)
    assert window.library.get(profile.id).voice.model is None


def test_the_memory_budget_set_in_render_settings_is_kept_and_reaches_the_render_thread(make_window, monkeypatch):
    from studio.settings import load_settings
    from studio.ui.render_settings import RenderSettingsDialog

    window = make_window()
    window.project.cast["Narrator"] = CastEntry(voice=VoiceSpec.design("A calm narrator"))
    window.project.render.voice = "Narrator"
    shown = []

    def user_sets_a_budget(self):
        shown.append(self.budget_spin.specialValueText())
        self.budget_spin.setValue(2.5)
        self.device_combo.setCurrentText("cpu")
        self.accept()  # the dialog's own OK: it writes the machine settings
        return self.result()

    monkeypatch.setattr(RenderSettingsDialog, "exec", user_sets_a_budget)
    assert window.edit_render_settings()
    assert "automatic" in shown[0]
    kept = load_settings()
    assert (kept.model_memory_budget_gb, kept.device) == (2.5, "cpu")
    # A new window (the next start) renders with it.
    again = make_window()
    machine = again._render_machine()
    assert machine.budget_bytes == int(2.5 * 1024**3) and machine.device == "cpu"


def test_opening_another_project_mid_render_stops_it_and_keeps_its_audio_out(qtbot, cast_window, tmp_path):
    from studio.core.project import Project, save_project

    other = tmp_path / "other.qtts"
    save_project(Project(script="Nothing rendered here yet."), other)
    finished = []
    cast_window.renderer.worker.job_finished.connect(lambda job, outcome: finished.append(outcome))
    assert cast_window.render_all()
    qtbot.waitUntil(lambda: cast_window.session.active.progress.done >= 1 or bool(finished), timeout=120_000)
    assert cast_window.open_project(other)
    assert not cast_window.session.busy and cast_window.render_action.isEnabled()
    qtbot.waitUntil(lambda: bool(finished), timeout=120_000)
    qtbot.wait(50)
    assert finished[0].cancelled  # the old job stopped between segments
    # The new project's mix is its one unrendered line's estimated length of silence: nothing of the old job.
    assert [c.state for c in cast_window.timeline.clips] == ["stale"] and cast_window.last_outcome is None
    assert len(cast_window.waveform.audio) == cast_window.timeline.end_samples[-1] > 0
    assert not np.any(cast_window.waveform.audio.view())


def test_every_take_stays_reachable_after_reopening(qtbot, cast_window, make_window, tmp_path):
    render_and_wait(qtbot, cast_window)
    previous = cast_window.last_outcome
    cast_window.new_take(1)
    qtbot.waitUntil(lambda: cast_window.last_outcome is not previous, timeout=120_000)
    cast_window.choose_take(1, 0)  # back to the first take: the second is still one of the line's takes
    path = tmp_path / "takes.qtts"
    assert cast_window._save_to(path)
    saved = json.loads(path.read_text())
    assert saved["lines"] == [{"line": 2, "locked": False, "take": 0, "takes": 2}]

    reopened = make_window()
    assert reopened.open_project(path)
    assert [(c.take, c.takes) for c in reopened.timeline.clips][:2] == [(0, 1), (0, 2)]
    # Undo of a new take takes the take back off the list.
    third = make_window()
    third.project.cast.update(cast_window.project.cast)
    third.project.render.voice = "Narrator"
    third.machine.device, third.machine.cpu_threads = "cpu", 2
    third.editor.setPlainText(SCRIPT)
    third.new_take(0)
    assert third.model.line(0).state.takes == 2
    qtbot.waitUntil(lambda: not third.session.busy, timeout=120_000)
    third.undo_stack.undo()
    assert (third.model.line(0).state.take, third.model.line(0).state.takes) == (0, 1)
