"""Where the studio's own files (``resources/``: emotion palette, icons, .desktop entry) live.

``resources/`` sits beside the ``studio`` package, in a source checkout and in the frozen build alike
(the PyInstaller spec copies it next to the bundled packages), so one relative path serves both.
"""

from __future__ import annotations

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"
APP_ICON = RESOURCES_DIR / "icons" / "qwen-tts-studio.png"


def resource_path(*parts: str) -> Path:
    return RESOURCES_DIR.joinpath(*parts)
