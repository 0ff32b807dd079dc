"""Starting the GUI: one QApplication, the main window, and an optional project to open."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from studio import __version__


class NoDisplayError(RuntimeError):
    """Raised instead of letting Qt abort the process when there is no screen to open a window on."""


class StartupError(RuntimeError):
    """A failure of a non-interactive start (--screenshot); str() is one line."""


def needs_offscreen(env: Mapping[str, str] | None = None) -> bool:
    """True on Linux when no platform is chosen and there is no X or Wayland display to open a window on.

    Qt's xcb plugin aborts the whole process (with a core dump) when it cannot reach a display.
    Other platforms always have a screen when a user runs the app.
    """
    env = os.environ if env is None else env
    return sys.platform.startswith("linux") and not (
        env.get("QT_QPA_PLATFORM") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
    )


def check_display() -> None:
    # A plain message is kinder than Qt's abort.
    if needs_offscreen():
        raise NoDisplayError(
            "no display found (DISPLAY and WAYLAND_DISPLAY are unset): run the studio in a desktop session, "
            "or use the command-line subcommands (qwen-tts-studio --help)"
        )


def make_application():
    """The one QApplication, named and with its icon (created on first call)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("QwenTTSStudio")
    app.setApplicationName("Qwen3-TTS Studio")
    app.setApplicationVersion(__version__)
    # Window managers match the running window to the installed .desktop entry (and its icon) by this name.
    app.setDesktopFileName("qwen-tts-studio")
    from PySide6.QtGui import QIcon

    from studio.resources import APP_ICON

    if APP_ICON.is_file():
        app.setWindowIcon(QIcon(str(APP_ICON)))
    return app


def take_screenshot(project: Path | None, png: Path) -> None:
    """Open the window (offscreen when there is no display), load `project`, lay out, save a PNG."""
    if needs_offscreen():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from studio.core.project import ProjectError, load_project

    loaded = None
    if project is not None:
        # Checked before any window exists, so a bad project is one line and exit 2, never a dialog.
        try:
            loaded = load_project(project)
        except ProjectError as exc:
            raise StartupError(str(exc)) from None
    app = make_application()
    from studio.ui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 820)
    window.show()
    if loaded is not None:
        window._set_project(loaded, Path(project))
    for _ in range(5):
        app.processEvents()
    window.refresh_views()
    window.waveform.flush()
    app.processEvents()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(png)):
        raise StartupError(f"{png}: cannot write the screenshot")
    window.shutdown()
    window.undo_stack.setClean()
    window.close()


def run_gui(project: Path | None = None) -> int:
    check_display()
    from studio.settings import load_settings
    from studio.ui.qsettings_keys import import_legacy_qsettings

    app = make_application()
    # First, so that nothing after it can fail only on stderr: an uncaught error ends in a dialog and the log.
    from studio.ui.crash_dialog import install_exception_handler

    install_exception_handler()
    import_legacy_qsettings()
    from studio.ui.main_window import MainWindow
    from studio.ui.welcome import is_first_run, show_welcome

    window = MainWindow()
    window.restore_layout()
    window.show()
    window.renderer.prewarm()
    recovered = window.offer_recovery()
    if project is None and not recovered:
        last = load_settings().last_project
        if last and Path(last).is_file():
            project = Path(last)
    if project is not None and not recovered:
        # A project that fails to load shows its reason in a message box; the editor stays usable.
        window.open_project(project)
    elif not recovered and is_first_run():
        # Once the event loop runs, so the window is drawn behind the welcome.
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, lambda: show_welcome(window))
    return app.exec()
