"""Help -> User Guide: the README's user-guide sections, shown in the window.

The README is the one copy of the guide. A source checkout has it beside ``resources/``; the packaged
build carries it in the same place (packaging/qwen-tts-studio.spec copies README.md and the pictures it
shows into the bundle's root), so one path serves both and the guide never drifts from the README.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from studio.resources import RESOURCES_DIR

README = RESOURCES_DIR.parent / "README.md"
# Sections for people building or measuring the studio, not for people using it.
NOT_USER_GUIDE = ("Install", "Performance", "Development")
_PICTURE_WIDTH = 640  # the README's screenshots are full windows: shown smaller, the text beside stays readable
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def user_guide_markdown(readme_text: str, base: Path | None = None) -> str:
    """The README's `## ` sections meant for users, in order. A picture whose file is not under `base`
    becomes its caption in italics rather than a broken image."""
    sections = re.split(r"(?m)^(?=## )", readme_text)
    kept = [s for s in sections[1:] if s.splitlines()[0][3:].strip() not in NOT_USER_GUIDE]

    def picture(match: re.Match) -> str:
        if base is not None and (base / match.group(2)).is_file():
            return match.group(0)
        return f"*{match.group(1)}*"

    return "# Qwen3-TTS Studio user guide\n\n" + _IMAGE.sub(picture, "".join(kept).rstrip() + "\n")


class UserGuideDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, readme: Path = README) -> None:
        super().__init__(parent)
        self.setObjectName("UserGuideDialog")
        self.setWindowTitle("Qwen3-TTS Studio User Guide")
        self.resize(860, 720)
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        try:
            text = readme.read_text(encoding="utf-8")
        except OSError as exc:
            self.browser.setPlainText(f"{readme}: the user guide cannot be read ({exc.strerror or exc}).")
        else:
            self.browser.setSearchPaths([str(readme.parent)])
            self.browser.setMarkdown(user_guide_markdown(text, readme.parent))
            _fit_pictures(self.browser, _PICTURE_WIDTH)
        layout.addWidget(self.browser, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def _fit_pictures(browser: QTextBrowser, width: int) -> None:
    """Give every picture a width (Qt keeps its aspect ratio when only the width is set)."""
    document = browser.document()
    block = document.begin()
    while block.isValid():
        fragments = block.begin()
        while not fragments.atEnd():
            fragment = fragments.fragment()
            if fragment.isValid() and fragment.charFormat().isImageFormat():
                picture = fragment.charFormat().toImageFormat()
                picture.setWidth(width)
                cursor = QTextCursor(document)
                cursor.setPosition(fragment.position())
                cursor.setPosition(fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor)
                cursor.setCharFormat(picture)
            fragments += 1
        block = block.next()
