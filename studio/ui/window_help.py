"""The main window's Help menu: self-test, about."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox


class HelpActions:
    """Mixed into MainWindow."""

    def _build_help_menu(self, help_menu) -> None:
        self._action("Run &Self-Test…", None, self.run_self_test, menu=help_menu,
                     tip="Check this installation: Qt, torch, rendering with a tiny model, sound devices")
        self._action("&About Qwen3-TTS Studio", None, self.show_about, menu=help_menu)

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

