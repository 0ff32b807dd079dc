"""Rendering from the window through the real QThread worker and the real engine on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from studio.core.plan import plan_segments
from studio.core.project import CastEntry, GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.render import DONE
from studio.session.pipeline import RenderJob
from studio.ui.render_worker import RenderController, RenderMachine

SCRIPT = "[Whispering]Come closer. [pause 0.3s] Closer.\n[Angry]Get out!\n[neutral]Fine."


@pytest.fixture
def window(tiny_window):
    return tiny_window(SCRIPT)


def render_and_wait(qtbot, window):
    """Start a render and wait until the window (not just the worker) has handled its end."""
    previous = window.last_outcome
    assert window.render_all()
    qtbot.waitUntil(lambda: window.last_outcome is not previous, timeout=120_000)
    # A full render's export is written off the UI thread; wait for it too.
    qtbot.waitUntil(lambda: not window.exporting, timeout=60_000)
    return window.last_outcome


def test_render_all_streams_into_the_waveform_and_exports(qtbot, window):
    order = []
    worker = window.renderer.worker
    worker.chunk_rendered.connect(lambda job, index, chunk: order.append(("chunk", index, len(chunk.samples))))
    worker.job_finished.connect(lambda job, outcome: order.append(("finished", job, None)))
    assert window.render_all()
    assert window.stop_render_action.isEnabled() and not window.render_action.isEnabled()
    qtbot.waitUntil(lambda: window.last_outcome is not None, timeout=120_000)
    outcome = window.last_outcome
    assert not outcome.cancelled and outcome.error is None
    assert [r.state for r in outcome.results] == [DONE] * 5
    # Chunks arrived (and were drawn) while the job was still running.
    assert [kind for kind, *_ in order].index("finished") == len(order) - 1
    # Each speech segment streams in more than one chunk (a short first chunk, then the rest).
    chunks = [index for kind, index, _ in order if kind == "chunk"]
    assert all(chunks.count(i) >= 2 for i in (0, 2, 3, 4)) and chunks.count(1) == 1 and chunks == sorted(chunks)
    assert window.render_action.isEnabled()
    qtbot.waitUntil(lambda: window.last_export is not None, timeout=60_000)

    # The waveform holds exactly the rendered samples, in order.
    rendered = np.concatenate([r.samples for r in outcome.results])
    np.testing.assert_array_equal(np.asarray(window.waveform.audio.view()), rendered)
    assert len(window.waveform.pyramid) == len(rendered)
    # And the export is those samples (16-bit) with its subtitles.
    audio, rate = soundfile.read(window.last_export.audio, dtype="float32")
    assert rate == 24000 and len(audio) == len(rendered)
    assert np.abs(audio - np.clip(rendered, -1, 1)).max() < 1e-4
    assert window.last_export.srt.read_text().count("-->") == 4
    assert "saved" in window.statusBar().currentMessage()
    assert "voice_design" in window.model_label.text()
    window.refresh_views()
    clips = window.timeline.clips
    assert [c.state for c in clips] == ["done"] * 3
    # Rendered clips take their real length: the pause is exactly 0.3 s, the rest what was rendered.
    assert not clips[0].estimated and clips[0].pieces[1] == ("pause", 0.3)
    assert sum(c.seconds for c in clips) == pytest.approx(len(rendered) / 24000)
    # Editing a line makes it stale; the others keep their state.
    window.editor.setPlainText(SCRIPT.replace("Get out!", "Get out now!"))
    window.refresh_views()
    assert [c.state for c in window.timeline.clips] == ["done", "stale", "done"]


def test_second_render_comes_from_the_cache(qtbot, window):
    render_and_wait(qtbot, window)
    second = render_and_wait(qtbot, window)
    speech = [r for r in second.results if r.segment.kind == "speech"]
    assert speech and all(r.cached for r in speech)
    window.refresh_views()
    assert [c.state for c in window.timeline.clips] == ["cached"] * 3


def test_playback_is_disabled_with_a_reason_when_there_is_no_device(window):
    assert window.output_device is None
    assert not window.play_action.isEnabled()
    window.toggle_playback()
    assert "no audio output device" in window.statusBar().currentMessage()


def test_results_of_a_replaced_job_are_dropped(qtbot, window):
    assert not window.session.busy
    window._on_worker_chunk_rendered(12345, 0, object())
    assert len(window.waveform.audio) == 0


def test_script_errors_block_the_render_and_show_the_line(qtbot, window, monkeypatch):
    shown = []
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    window.editor.setPlainText("fine\nbad [tag")
    assert not window.render_all()
    assert "line 2, column 5" in shown[0]
    assert window.editor.textCursor().blockNumber() == 1


def test_closing_during_a_render_stops_the_thread(qtbot, window):
    with qtbot.waitSignal(window.renderer.worker.segment_started, timeout=120_000):
        window.render_all()
    window.shutdown()
    assert not window.renderer.thread.isRunning()


def test_controller_cancel_between_segments(qtbot, tiny_checkpoints):
    controller = RenderController()
    segments = plan_segments(parse_script("One.\nTwo.\nThree.\nFour."))
    started = []
    controller.worker.segment_started.connect(lambda job, index: started.append(index))
    controller.worker.segment_finished.connect(lambda job, index, result: job_holder[0].cancel.set())
    job_holder = []
    with qtbot.waitSignal(controller.worker.job_finished, timeout=120_000) as finished:
        job_holder.append(
            controller.submit(
                RenderJob(job_id=1, segments=segments, voices={None: VoiceSpec.design("x")},
                          models={None: str(tiny_checkpoints["voice_design"])}, cache_dir=None,
                          generation=GenerationParams(max_new_tokens=8)),
                RenderMachine(device="cpu", cpu_threads=2),
            )
        )
    outcome = finished.args[1]
    assert outcome.cancelled and len(outcome.results) == 1 and started == [0]
    assert controller.shutdown()


def test_render_line_renders_only_that_line(qtbot, window):
    window.refresh_views()
    assert window.render_line(1)
    qtbot.waitUntil(lambda: window.last_outcome is not None, timeout=120_000)
    assert [r.segment.line for r in window.last_outcome.results] == [2]
    window.refresh_views()
    assert [c.state for c in window.timeline.clips] == ["stale", "done", "stale"]
    assert window.last_export is None  # a line render is not an export


def test_new_take_keeps_the_old_take_to_choose_back(qtbot, window):
    window.refresh_views()
    first = window.render_line(1)
    assert first
    qtbot.waitUntil(lambda: window.last_outcome is not None, timeout=120_000)
    take0 = window.last_outcome.results[0].samples.copy()
    previous = window.last_outcome
    window.new_take(1)
    qtbot.waitUntil(lambda: window.last_outcome is not previous, timeout=120_000)
    take1 = window.last_outcome.results[0]
    assert not take1.cached and not np.array_equal(take1.samples, take0)
    window.refresh_views()
    clip = window.timeline.clips[1]
    assert (clip.take, clip.takes) == (1, 2)
    # Choosing the first take again is undoable and renders nothing new: it is still in the cache.
    window.choose_take(1, 0)
    previous = window.last_outcome
    window.render_line(1)
    qtbot.waitUntil(lambda: window.last_outcome is not previous, timeout=120_000)
    again = window.last_outcome.results[0]
    assert again.cached and np.array_equal(again.samples, take0)
    window.undo_stack.undo()
    assert window.model.line(1).state.take == 1


def test_a_locked_line_is_not_rendered_again(qtbot, window):
    first = render_and_wait(qtbot, window)
    line1 = [r.samples.copy() for r in first.results if r.segment.line == 1]
    window.toggle_lock(0)
    window.project.render.seed = 99  # would change every segment's audio
    second = render_and_wait(qtbot, window)
    assert {r.segment.line for r in second.results} == {2, 3}  # line 1 was not sent to the worker
    exported, _ = soundfile.read(window.last_export.audio, dtype="float32")
    head = np.concatenate(line1)
    assert np.abs(exported[: len(head)] - np.clip(head, -1, 1)).max() < 1e-4
    window.refresh_views()
    assert window.timeline.clips[0].state == "locked"


def test_a_real_drop_event_on_a_clip_inserts_the_tag(qtbot, window):
    from PySide6.QtCore import QMimeData, QPointF, Qt
    from PySide6.QtGui import QDropEvent

    from studio.ui.script_editor import TAG_MIME_TYPE

    window.refresh_views()
    mime = QMimeData()
    mime.setData(TAG_MIME_TYPE, b"[Fearful]")
    point = QPointF(window.timeline.clip_rect(2).center())
    event = QDropEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    # Qt only delivers drop events while a platform drag is in progress, which an offscreen test
    # cannot start; the handler the platform would call is called with a real QDropEvent instead.
    window.timeline.dropEvent(event)
    assert event.isAccepted()
    assert window.model.line(2).text == "[Fearful] Fine."  # the dropped emotion replaces the line's own
    assert window.isWindowModified()


@pytest.mark.slow
def test_every_profile_kind_renders_through_the_worker(qtbot, window, tiny_checkpoints, tmp_path):
    """A cast of library profiles of each kind, each on its own model, one model resident at a time."""
    t = np.arange(30000) / 24000
    clip = tmp_path / "me.wav"
    soundfile.write(clip, (0.2 * np.sin(2 * np.pi * 160 * t)).astype(np.float32), 24000)
    library = window.library
    profiles = {
        "Narrator": library.add("Narrator", VoiceSpec.design("An old storyteller")),
        "Me": library.add("Me", VoiceSpec("clone", ref_audio=str(clip), ref_text="This is me.",
                                          model=str(tiny_checkpoints["base"]),
                                          emotion_refs=(("Whispering", str(clip), "This is me."),))),
        "Serena": library.add("Serena", VoiceSpec("preset", speaker="serena",
                                                  model=str(tiny_checkpoints["custom_voice"]))),
    }
    window.project.cast = {name: CastEntry(profile=p.id) for name, p in profiles.items()}
    window.project.render.voice = "Narrator"
    window.editor.setPlainText(
        "[Sad]Once.\n[voice: Me][Whispering]Hello.\n[voice: Me][Angry]Go!\n[voice: Serena][Happy]Hi!"
    )
    window.refresh_views()
    assert window.timeline.clips[2].warning  # a cloned voice with no clip for Angry, said before rendering
    outcome = render_and_wait(qtbot, window)
    assert [r.state for r in outcome.results] == [DONE] * 4
    assert [r.emotion_applied for r in outcome.results] == [True, True, False, True]
    manifest = json.loads(window.last_export.manifest.read_text())
    assert [s["voice"] for s in manifest["segments"]] == ["Narrator", "Me", "Me", "Serena"]
    assert [s["emotion_applied"] for s in manifest["segments"]] == [True, True, False, True]
    # The waveform was rebuilt in script order after three models rendered.
    np.testing.assert_array_equal(np.asarray(window.waveform.audio.view()),
                                  np.concatenate([r.samples for r in outcome.results]))


def test_a_segment_failing_mid_stream_leaves_no_audio_in_the_waveform(qtbot, window, monkeypatch):
    from studio.engine.synth import Synthesizer

    real_stream = Synthesizer.stream

    def stream_failing_after_a_chunk(self, request, **kwargs):
        # Failure injection around the real engine: the line "Boom." dies after its first chunk.
        for chunk in real_stream(self, request, **kwargs):
            yield chunk
            if request.text == "Boom.":
                raise RuntimeError("the device went away")

    monkeypatch.setattr(Synthesizer, "stream", stream_failing_after_a_chunk)
    window.editor.setPlainText("One.\nBoom.\nThree.")
    outcome = render_and_wait(qtbot, window)
    assert [r.state for r in outcome.results] == [DONE, "failed", DONE]
    assert "the device went away" in outcome.results[1].error
    assert window.last_export is None  # a render with a failed segment is not exported
    expected = np.concatenate([outcome.results[0].samples, outcome.results[2].samples])
    np.testing.assert_array_equal(np.asarray(window.waveform.audio.view()), expected)
    window.refresh_views()
    assert window.timeline.clips[1].state == "failed" and "device went away" in window.timeline.clips[1].message


def test_export_settings_from_the_dialog_shape_the_saved_files(qtbot, window):
    from studio.ui.render_settings import RenderSettingsDialog

    dialog = RenderSettingsDialog(window.project, window.machine, window)
    qtbot.addWidget(dialog)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("flac"))
    dialog.stems_check.setChecked(True)
    dialog.loudness_spin.setValue(-20.0)
    dialog.accept()
    assert window.project.render.export.loudness_lufs == -20.0
    render_and_wait(qtbot, window)
    exported = window.last_export
    assert exported.audio.suffix == ".flac" and soundfile.info(exported.audio).format == "FLAC"
    assert len(exported.stems) == 4
    assert exported.document["loudness"]["target_lufs"] == -20.0


def test_an_export_to_a_full_disk_ends_in_one_dialog(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from tests.filesystems import fill, small_disk

    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append((title, text)))
    with small_disk(tmp_path / "disk", "256k") as disk:
        fill(disk, leave=16 * 1024)
        window.project.render.output_dir = str(disk)
        outcome = render_and_wait(qtbot, window)
        assert outcome.error is None and window.last_export is None
        assert len(shown) == 1 and shown[0][0] == "Export failed"
        assert shown[0][1].startswith(f"{disk}: not enough free space for the export")
        assert window.statusBar().currentMessage().startswith("Export failed:")
        assert sorted(p.name for p in disk.iterdir()) == ["filler.bin"]


def test_a_runaway_warning_reaches_the_clip_and_the_exported_manifest(qtbot, window):
    # A random-weight model never ends speech on its own, so each segment runs into its 12-frame cap.
    outcome = render_and_wait(qtbot, window)
    assert all(r.warning for r in outcome.results if r.segment.kind == "speech")
    window.refresh_views()
    for clip in window.timeline.clips:
        assert clip.warning and "generation stopped at the frame cap" in clip.message
    manifest = json.loads(window.last_export.manifest.read_text())
    speech = [s for s in manifest["segments"] if s["kind"] == "speech"]
    assert speech and all(s["warning"].startswith("generation stopped at the frame cap") for s in speech)
