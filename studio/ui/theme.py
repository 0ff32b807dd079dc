"""Light and dark: the application palette, chosen in View -> Theme and kept in the settings.

Every view draws with palette roles (Base, Text, Highlight, Mid...), never fixed colours, so switching the
palette is the whole of a theme. "System" keeps the platform's palette (which follows the desktop's
dark mode where Qt can read it).
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


def dark_palette() -> QPalette:
    palette = QPalette()
    role = QPalette.ColorRole
    colours = {
        role.Window: "#2b2d31", role.WindowText: "#e3e5e8", role.Base: "#1e1f22", role.AlternateBase: "#26282c",
        role.ToolTipBase: "#383a40", role.ToolTipText: "#e3e5e8", role.PlaceholderText: "#8a8f98",
        role.Text: "#e3e5e8", role.Button: "#35373c", role.ButtonText: "#e3e5e8", role.BrightText: "#ff6b6b",
        role.Highlight: "#4a8fe0", role.HighlightedText: "#ffffff", role.Link: "#7ab0ff",
        role.Light: "#45474d", role.Midlight: "#3b3d42", role.Mid: "#55585f", role.Dark: "#1a1b1e",
        role.Shadow: "#000000",
    }
    for colour_role, colour in colours.items():
        palette.setColor(colour_role, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled
    for colour_role in (role.Text, role.ButtonText, role.WindowText):
        palette.setColor(disabled, colour_role, QColor("#6d7078"))
    return palette


def light_palette() -> QPalette:
    app = QApplication.instance()
    return app.style().standardPalette()


_system: dict[str, object] = {}  # the platform's palette and style, as they were before any theme


def apply_theme(theme: str) -> None:
    """Switch the running application to `theme` ("system", "light" or "dark")."""
    app = QApplication.instance()
    _system.setdefault("palette", QPalette(app.palette()))
    _system.setdefault("style", app.style().name())
    if theme == "dark":
        app.setStyle("Fusion")  # the native styles of some platforms ignore a dark palette
        app.setPalette(dark_palette())
    elif theme == "light":
        app.setStyle("Fusion")
        app.setPalette(light_palette())
    else:
        app.setStyle(str(_system["style"]))
        app.setPalette(_system["palette"])
