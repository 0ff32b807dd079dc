"""Run by test_window_playback.py in a subprocess whose HOME holds an .asoundrc that routes ALSA's default
device to a file: the real window renders a script with the real engine and plays it through its real
sounddevice/PortAudio stream, as a user would: auto-play while the render runs, then Space to play and
pause, a click on the waveform to seek, and the playhead following the sound.

argv: CHECKPOINT_DIR OUT_DIR CAPTURE_FILE. Writes OUT_DIR/result.json and OUT_DIR/rendered.npy.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.core.project import CastEntry, GenerationParams  # noqa: E402
from studio.core.voice import VoiceSpec  # noqa: E402
from studio.ui.main_window import MainWindow  # noqa: E402


def main() -> int:
    checkpoint, out, capture = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    app = QApplication([])

    def wait_until(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            app.processEvents()
            if condition():
                return True
            time.sleep(0.005)
        return False

    def captured() -> np.ndarray:
        return np.fromfile(capture, dtype="<f4") if capture.exists() else np.zeros(0, np.float32)

    window = MainWindow()
    window.show()
    window.project.render.model = str(checkpoint)
    window.project.render.output_dir = str(out / "renders")
    # Random weights never end speech, so each line renders its full 40 frames (3.2 s).
    window.project.render.generation = GenerationParams(max_new_tokens=40)
    window.project.cast["Narrator"] = CastEntry(voice=VoiceSpec.design("A calm, low narrator"))
    window.project.render.voice = "Narrator"
    window.machine.device, window.machine.cpu_threads = "cpu", 2
    window.editor.setPlainText("One.\nTwo.\nThree.")
    result: dict = {"device": window.output_device.name if window.output_device else None,
                    "device_rate": window.output_device.sample_rate if window.output_device else None}

    during_render = []

    def on_chunk(job_id, index, chunk) -> None:
        # Connected after the window's own handler: by now the window has done what it does with a chunk.
        if window.session.busy:
            during_render.append({"index": index, "player": window.player is not None,
                                  "playing": bool(window.player and window.player.playing),
                                  "captured_nonzero": int(np.count_nonzero(captured()))})

    window.renderer.worker.chunk_rendered.connect(on_chunk)
    if not window.render_all():
        result["error"] = "render_all refused"
    finished = wait_until(lambda: window.last_outcome is not None and not window.session.busy, 300)
    result["render_finished"] = finished
    result["during_render"] = during_render
    result["captured_nonzero_when_render_ended"] = int(np.count_nonzero(captured()))
    audio = np.asarray(window.waveform.audio.view()).copy()
    np.save(out / "rendered.npy", audio)
    result["rendered_samples"] = len(audio)
    result["played_to_end"] = wait_until(lambda: window.player is not None and not window.player.playing, 60)
    result["position_at_end"] = window.player.position if window.player else None
    result["captured_after_first_play"] = len(captured())

    # Click on the waveform at the middle, then Space (play) and Space again (pause) soon after.
    middle = len(audio) // 2
    window.waveform.seek_requested.emit(middle)
    app.processEvents()
    result["position_after_seek"] = window.player.position
    window.play_action.trigger()
    result["playing_after_space"] = window.player.playing
    wait_until(lambda: window.player.position > middle, 5)
    window.play_action.trigger()
    result["playing_after_second_space"] = window.player.playing
    paused_at = window.player.position
    result["paused_at"] = paused_at
    size_at_pause = len(captured())
    wait_until(lambda: False, 0.3)  # while paused nothing may be played
    result["captured_grew_while_paused"] = len(captured()) - size_at_pause
    result["position_after_pause"] = window.player.position
    # The playhead timer has drawn the paused position on the waveform.
    result["playhead_seconds"] = window.waveform.playhead.value()
    window.play_action.trigger()  # resume
    result["resumed_to_end"] = wait_until(lambda: not window.player.playing, 60)
    result["position_at_second_end"] = window.player.position
    result["captured_after_second_play"] = len(captured())
    (out / "result.json").write_text(json.dumps(result, indent=1))
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
