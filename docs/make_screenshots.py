"""Regenerate the README screenshots: `python docs/make_screenshots.py`.

docs/empty-project.png comes from the studio's own `--screenshot` hook. docs/rendered-project.png is a
22-line, two-chapter, 3-voice tagged project rendered through the real window, worker and qwen-tts
engine, in the light and the dark theme (docs/rendered-project-dark.png). No real weights
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
# [voice: Narrator]Chapter 1: The Storm
[Serious]The storm had been building over the valley since noon.
By dusk, the old lighthouse keeper had lit every lamp he owned. [pause 1s]
[voice: Keeper][Whispering]Someone is on the stairs.
[voice: Narrator]Footsteps, slow and heavy, climbing toward the lamp room.
[voice: Stranger][Angry]Open this door! I know you are in there!
[voice: Keeper][Fearful]Who sent you? Nobody comes up here in a storm.
[voice: Stranger][Soft]Please. I only need shelter until morning.
[voice: Narrator]The keeper pressed his ear against the cold iron door.
[pause 1.5s]
[voice: Keeper][Serious]Put your lantern on the step, where I can see it.
[voice: Stranger][Relieved]There. It is on the step. I am unarmed.
[voice: Narrator][Relieved]The keeper let out a long breath, and slid back the bolt.
# Chapter 2: Shelter
[voice: Stranger][Happy]Thank you. You have saved my life tonight.
[voice: Keeper][Soft]Sit by the lamp. The kettle is still warm.
[voice: Narrator][neutral]Outside, the waves broke over the rocks below.
[voice: Stranger][Sad]I lost my boat on the reef. And my brother with it.
[voice: Keeper][Soft]Then we will watch for him together, until the light comes.
[voice: Narrator][Whispering]Neither of them slept.
[pause 1s]
[voice: Narrator][neutral]And that was how the winter of the long storm began.
"""


def main() -> int:
    # Settings, voices and the render cache of a scratch folder: the user's own are neither read nor written.
    scratch = tempfile.mkdtemp(prefix="qtts-screenshots-")
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        os.environ[variable] = os.path.join(scratch, variable.lower())
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
                "Keeper": CastEntry(voice=VoiceSpec.design("An old lighthouse keeper, gruff and slow")),
                "Stranger": CastEntry(voice=VoiceSpec.design("A hoarse, tired traveller in his forties")),
            },
        )
        project.render.model = str(checkpoint)
        project.render.voice = "Narrator"
        project.render.output_dir = str(Path(tmp) / "renders")
        project.render.generation = GenerationParams(max_new_tokens=40)
        save_project(project, project_path)
        window = MainWindow()
        window.resize(1400, 860)
        window.show()
        window.open_project(project_path)
        window.machine.device = "cpu"
        window.toggle_lock(11)
        window.undo_stack.setClean()
        window.render_all()
        deadline = time.monotonic() + 600
        while (window.last_outcome is None or window.exporting) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        window.refresh_views()
        window.axis.fit()
        window.axis.zoom(2.0, 0.0)  # the first half of the project: clips wide enough to read
        window.timeline.select(4)
        window.seek_to(int(window.timeline.start_samples[4] + 0.8 * 24000))
        window.editor.setFocus()
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        window.grab().save(str(HERE / "rendered-project.png"))
        window.set_theme("dark")
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        window.grab().save(str(HERE / "rendered-project-dark.png"))
        window.set_theme("system")
        window.shutdown()
        window.undo_stack.setClean()
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
