"""Regenerate the README screenshots: `python docs/make_screenshots.py`.

docs/empty-project.png comes from the studio's own `--screenshot` hook. docs/rendered-project.png is a
10-line tagged project rendered through the real window, worker and qwen-tts engine. No real weights
can be downloaded where this runs, so it uses a tiny random-weight VoiceDesign checkpoint: the
waveforms are noise, but every clip length, chip and state is what the studio really shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = """\
[voice: Narrator][Serious]The storm had been building over the valley since noon.
By dusk, the old lighthouse keeper had lit every lamp he owned. [pause 1s]
[Whispering]Someone is on the stairs, he thought.
Footsteps, slow and heavy, climbing toward the lamp room.
[voice: Stranger][Angry]Open this door! I know you are in there!
[voice: Narrator][Fearful]He pressed his back against the wall and held his breath.
[pause 1.5s]
[voice: Stranger][Soft]Please. I only need shelter from the storm.
[voice: Narrator][Relieved]The keeper let out a long breath, and slid back the bolt.
[neutral]And that was how the winter of the long storm began.
"""


def main() -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    subprocess.run([sys.executable, "-m", "studio", "--screenshot", str(HERE / "empty-project.png")],
                   check=True, env=env, stderr=subprocess.DEVNULL)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from studio.core.project import CastEntry, GenerationParams, Project, save_project
    from studio.core.voice import VoiceSpec
    from studio.engine.tiny import build_tiny_checkpoint
    from studio.ui.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_tiny_checkpoint(Path(tmp) / "vd", model_type="voice_design")
        project_path = Path(tmp) / "The Long Storm.qtts"
        project = Project(
            script=SCRIPT.rstrip("\n"),
            cast={
                "Narrator": CastEntry(voice=VoiceSpec.design("An old storyteller with a warm, low voice")),
                "Stranger": CastEntry(voice=VoiceSpec.design("A hoarse, tired traveller in his forties")),
            },
        )
        project.render.model = str(checkpoint)
        project.render.voice = "Narrator"
        project.render.output_dir = str(Path(tmp) / "renders")
        project.render.generation = GenerationParams(max_new_tokens=60)
        save_project(project, project_path)
        window = MainWindow()
        window.resize(1280, 820)
        window.show()
        window.open_project(project_path)
        window.machine.device = "cpu"
        window.toggle_lock(8)
        window.undo_stack.setClean()
        window.render_all()
        deadline = time.monotonic() + 300
        while window.last_outcome is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        window.timeline.select(4, emit=False)
        window.timeline.set_playhead(window.timeline.starts[4] + 0.8, 4)
        for _ in range(5):
            app.processEvents()
        window.grab().save(str(HERE / "rendered-project.png"))
        window.shutdown()
        window.undo_stack.setClean()
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
