"""Starting the GUI: one QApplication, the main window, and an optional project to open."""

from __future__ import annotations

import sys
from pathlib import Path

from studio import __version__


def run_gui(project: Path | None = None) -> int:
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
