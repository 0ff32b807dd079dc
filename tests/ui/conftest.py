"""Shared fixtures for window tests."""

from __future__ import annotations

import pytest

from studio.audio.playback import PlaybackUnavailable
from studio.ui import main_window as main_window_module
from studio.ui.main_window import MainWindow


@pytest.fixture
def no_sound_card(monkeypatch):
    """Tests must not depend on the machine's sound card: the window sees no output device."""

    def no_device():
        raise PlaybackUnavailable("no audio output device found; rendering and export still work")

    monkeypatch.setattr(main_window_module, "default_output_device", no_device)


@pytest.fixture
def make_window(qtbot, no_sound_card):
    """Windows for one test, kept alive until teardown and then shut down the way a user's close does.

    Holding a strong reference matters: a window collected by Python at the end of the test would be
    destroyed with paint events for its pyqtgraph view still queued.
    """
    windows = []

    def make() -> MainWindow:
        window = MainWindow()
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
        assert not window.renderer.thread.isRunning()
        window.undo_stack.setClean()
        window.setWindowModified(False)
        window.close()
        window.deleteLater()
    qtbot.wait(10)


@pytest.fixture
def tiny_window(make_window, tiny_checkpoints, tmp_path):
    """A window ready to render `script` for real: a tiny VoiceDesign checkpoint, one designed default voice,
    a short token cap, the CPU, and renders written under the test's tmp_path."""
    from studio.core.project import CastEntry, GenerationParams
    from studio.core.voice import VoiceSpec

    def make(script: str):
        w = make_window()
        w.project.render.model = str(tiny_checkpoints["voice_design"])
        w.project.render.output_dir = str(tmp_path / "renders")
        w.project.render.generation = GenerationParams(max_new_tokens=12)
        w.project.cast["Narrator"] = CastEntry(voice=VoiceSpec.design("A calm, low narrator"))
        w.project.render.voice = "Narrator"
        w.machine.device = "cpu"
        w.machine.cpu_threads = 2
        w.editor.setPlainText(script)
        return w

    return make
