"""The studio starts as a user starts it: `python -m studio PROJECT` on a real X server (Xvfb, xcb)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from studio.core.project import Project, save_project
from tests.xvfb import xvfb_display


def _window_titles(display: str) -> str:
    result = subprocess.run(
        ["xwininfo", "-root", "-tree"], capture_output=True, text=True, env={**os.environ, "DISPLAY": display}
    )
    return result.stdout


@pytest.mark.slow
def test_gui_launches_on_xcb_and_opens_the_project(tmp_path):
    project = tmp_path / "night.qtts"
    save_project(Project(script="[Whispering]Hello."), project)
    with xvfb_display() as display:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        app = subprocess.Popen(
            [sys.executable, "-m", "studio", str(project)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            titles = ""
            while time.monotonic() < deadline and app.poll() is None:
                titles = _window_titles(display)
                if "night.qtts" in titles:
                    break
                time.sleep(0.3)
            assert app.poll() is None, app.communicate()[1]
            assert "night.qtts" in titles and "Qwen3-TTS Studio" in titles
        finally:
            app.terminate()
            app.wait(timeout=10)


def test_no_display_is_a_one_line_error():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "studio"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no display found" in result.stderr


def test_screenshot_hook_writes_a_png_of_the_window(tmp_path):
    from PySide6.QtGui import QImage

    project = tmp_path / "p.qtts"
    save_project(Project(script="[Sad]One.\n[pause]\nTwo."), project)
    png = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "studio", str(project), "--screenshot", str(png)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert image.width() >= 1000 and image.height() >= 700
    # Not a blank grab: the window draws many distinct colours (text, chips, clip bodies).
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 20


def test_screenshot_of_a_broken_project_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.qtts"
    bad.write_text("{", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "studio", str(bad), "--screenshot", str(tmp_path / "x.png")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"qwen-tts-studio: {bad}: not valid JSON "
                                                 "(line 1, column 2: Expecting property name enclosed in double "
                                                 "quotes); the file may be truncated"]
    assert not (tmp_path / "x.png").exists()
