"""The main window's Help menu: the user guide, the shortcut list, the sample project, self-test, about."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox


class HelpActions:
    """Mixed into MainWindow."""

    def _build_help_menu(self, help_menu) -> None:
        self._action("&User Guide", QKeySequence.StandardKey.HelpContents, self.show_user_guide, menu=help_menu,
                     tip="The studio's user guide (from the README)")
        self._action("&Keyboard Shortcuts…", QKeySequence("Ctrl+/"), self.show_shortcuts, menu=help_menu,
                     tip="Every shortcut of this window, searchable")
        self._action("Open &Sample Project", None, lambda: self.open_sample_project(), menu=help_menu,
                     tip="A short two-voice scene that renders with the model installed here")
        help_menu.addSeparator()
        self._action("Run &Self-Test…", None, self.run_self_test, menu=help_menu,
                     tip="Check this installation: Qt, torch, rendering with a tiny model, sound devices")
        self._action("&About Qwen3-TTS Studio", None, self.show_about, menu=help_menu)

    def show_user_guide(self) -> None:
        from studio.ui.user_guide import UserGuideDialog

        # Not modal: the guide stays open beside the window while the user tries things.
        dialog = UserGuideDialog(self)
        self.user_guide_dialog = dialog
        dialog.show()

    def show_shortcuts(self) -> None:
        from studio.ui.shortcuts_dialog import ShortcutsDialog

        dialog = ShortcutsDialog(self)
        self.shortcuts_dialog = dialog
        dialog.show()

    def open_sample_project(self, *, render: bool = False) -> bool:
        from studio.ui.welcome import open_sample_project

        return open_sample_project(self, render=render)

    def run_self_test(self) -> None:
        from studio.ui.selftest_dialog import SelfTestDialog

        dialog = SelfTestDialog(self)
        self.self_test_dialog = dialog
        dialog.start()
        dialog.exec()

    def show_about(self) -> None:
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        from studio import __version__
        from studio.build_info import build_info

        info = build_info()
        build = (
            f"<br>Build: {info.get('variant', '?')} variant, torch {info.get('torch', '?')}, "
            f"commit {str(info.get('git_commit', '?'))[:10]}, built {info.get('built_at', '?')}"
            if info
            else "<br>Running from source."
        )
        QMessageBox.about(
            self,
            "About Qwen3-TTS Studio",
            f"<b>Qwen3-TTS Studio {__version__}</b><br>A desktop editor for long-form expressive speech "
            f"with the Qwen3-TTS 12Hz models.{build}<br>Qt {qVersion()}, PySide6 {pyside_version}",
        )
