"""Starting the GUI: one QApplication, the main window, and an optional project to open."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from studio import __version__


class NoDisplayError(RuntimeError):
    """Raised instead of letting Qt abort the process when there is no screen to open a window on."""


def check_display() -> None:
    # Qt's xcb plugin aborts the whole process (with a core dump) when it cannot reach a display;
    # a plain message is kinder. Other platforms always have a screen when a user runs the app.
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(
            "no display found (DISPLAY and WAYLAND_DISPLAY are unset): run the studio in a desktop session, "
            "or use the command-line subcommands (qwen-tts-studio --help)"
        )


def run_gui(project: Path | None = None) -> int:
    check_display()
    from PySide6.QtWidgets import QApplication

    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("QwenTTSStudio")
    app.setApplicationName("Qwen3-TTS Studio")
    app.setApplicationVersion(__version__)
    window = MainWindow()
    window.show()
    if project is not None:
        # A project that fails to load shows its reason in a message box; the editor stays usable.
        window.open_project(project)
    return app.exec()
