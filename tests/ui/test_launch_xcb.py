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
