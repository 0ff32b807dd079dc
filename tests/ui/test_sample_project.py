"""The first run: the bundled sample project renders in one click with whichever model is installed."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMessageBox

from studio.core.project import load_project
from studio.engine.models import register_local_folder
from studio.engine.render import DONE
from studio.session import sample as sample_module
from studio.session.sample import SAMPLE_FILE
from studio.settings import load_settings, save_settings
from studio.ui import welcome
from studio.ui.welcome import RENDER_SAMPLE, WelcomeDialog, is_first_run, show_welcome


@pytest.fixture
def fast_sample(monkeypatch):
    """The sample as bundled, with a small generation cap: the tiny random model would otherwise run to the
    cap a real model stops long before (the cap only shortens the test, the cast and models are the file's)."""
    real_load = sample_module.load_project

    def load(path):
        project = real_load(path)
        project.render.generation.max_new_tokens = 12
        return project

    monkeypatch.setattr(sample_module, "load_project", load)


def cpu_window(make_window):
    window = make_window()
    window.machine.device = "cpu"
    window.machine.cpu_threads = 2
    return window


def wait_for_render(qtbot, window):
    qtbot.waitUntil(lambda: window.last_outcome is not None, timeout=120_000)
    qtbot.waitUntil(lambda: not window.exporting, timeout=60_000)
    return window.last_outcome


def test_the_bundled_sample_is_a_valid_two_voice_project():
    project = load_project(SAMPLE_FILE)
    assert len(project.cast) == 2 and project.render.model is None
    assert {entry.voice.kind for entry in project.cast.values()} == {"design"}
    assert len(project.script.splitlines()) >= 4


def test_with_only_voicedesign_installed_the_welcome_renders_the_sample_in_one_click(
        qtbot, make_window, tiny_checkpoints, fast_sample, tmp_path, monkeypatch):
    register_local_folder(tiny_checkpoints["voice_design"])
    monkeypatch.setattr("studio.ui.window_export.default_output_dir", lambda: tmp_path / "out")
    window = cpu_window(make_window)
    assert is_first_run()

    def click_render():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, WelcomeDialog) and not dialog.status_label.isVisible()
        dialog.render_sample_button.click()

    QTimer.singleShot(50, click_render)
    assert show_welcome(window) == RENDER_SAMPLE
    outcome = wait_for_render(qtbot, window)
    assert outcome.error is None and not outcome.cancelled
    speech = [r for r in outcome.results if r.segment.kind == "speech"]
    assert len(speech) == 4 and all(r.state == DONE and r.samples is not None for r in outcome.results)
    # Both voices spoke, on the installed checkpoint chosen automatically.
    assert {r.segment.voice for r in speech} == {"Narrator", "Fox"}
    assert {r.model for r in speech} == {str(tiny_checkpoints["voice_design"].resolve())}
    assert window.project_path is None  # an untitled copy: the bundled file is never written to
    mix = window.session.mix_results(window.model.lines(), window._items_per_line())
    assert sum(len(r.samples) for r in mix) == sum(len(r.samples) for r in outcome.results) > 0


def test_with_only_customvoice_installed_the_sample_speaks_with_preset_speakers(
        qtbot, make_window, tiny_checkpoints, fast_sample, tmp_path, monkeypatch):
    register_local_folder(tiny_checkpoints["custom_voice"])
    monkeypatch.setattr("studio.ui.window_export.default_output_dir", lambda: tmp_path / "out")
    window = cpu_window(make_window)
    assert window.open_sample_project(render=True)
    assert {e.voice.kind for e in window.project.cast.values()} == {"preset"}
    speakers = {e.voice.speaker for e in window.project.cast.values()}
    assert len(speakers) == 2
    outcome = wait_for_render(qtbot, window)
    assert outcome.error is None
    assert all(r.state == DONE for r in outcome.results)


def test_with_only_a_base_model_the_user_is_told_what_to_install(qtbot, make_window, tiny_checkpoints):
    register_local_folder(tiny_checkpoints["base"])
    window = cpu_window(make_window)
    window.editor.setPlainText("My own script.")
    seen = []

    def answer():
        box = QApplication.activeModalWidget()
        seen.append(box.text())
        box.button(QMessageBox.StandardButton.Cancel).click()

    QTimer.singleShot(50, answer)
    assert not window.open_sample_project(render=True)
    assert "needs a VoiceDesign or CustomVoice model" in seen[0] and "Base" in seen[0]
    assert window.model.text == "My own script."  # the user's project is untouched


def test_the_welcome_is_for_a_first_run_only(tmp_path):
    assert is_first_run()
    project = tmp_path / "mine.qtts"
    save_settings(load_settings().with_recent_file(project))
    assert not is_first_run()


def test_help_menu_opens_the_sample(qtbot, make_window, tiny_checkpoints):
    register_local_folder(tiny_checkpoints["voice_design"])
    window = cpu_window(make_window)
    [action] = [a for a in window.findChildren(QAction)
                if a.text().replace("&", "") == "Open Sample Project"]
    action.trigger()
    assert window.model.text == load_project(SAMPLE_FILE).script
    assert not window.session.busy  # Help opens it; the welcome's button is the one that also renders


def test_welcome_screenshot(qtbot, tmp_path):
    dialog = WelcomeDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    import os
    assert dialog.grab().save(os.environ.get("WELCOME_PNG", str(tmp_path / "welcome.png")))


def test_welcome_without_a_model_says_what_to_get(qtbot):
    dialog = WelcomeDialog()
    qtbot.addWidget(dialog)
    assert "needs a VoiceDesign or CustomVoice model" in dialog.status_label.text()
    assert "Model" in dialog.render_sample_button.text()
    assert welcome.installed_checkpoints() == []


def test_without_a_model_the_welcome_leads_to_the_model_manager_and_then_renders(
        qtbot, make_window, tiny_checkpoints, fast_sample, tmp_path, monkeypatch):
    monkeypatch.setattr("studio.ui.window_export.default_output_dir", lambda: tmp_path / "out")
    window = cpu_window(make_window)
    managed = []

    def model_manager():
        # What the user does there: get a VoiceDesign model.
        managed.append(1)
        register_local_folder(tiny_checkpoints["voice_design"])

    monkeypatch.setattr(window, "manage_models", model_manager)
    QTimer.singleShot(50, lambda: QApplication.activeModalWidget().render_sample_button.click())
    assert show_welcome(window) == RENDER_SAMPLE
    assert managed == [1]
    outcome = wait_for_render(qtbot, window)
    assert outcome.error is None and all(r.state == DONE for r in outcome.results)
