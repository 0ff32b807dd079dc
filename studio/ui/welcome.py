"""The first run: a welcome that renders the bundled sample project in one click (Help -> Open Sample
Project does the same later), with whichever model is installed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.session.checkpoints import installed_checkpoints
from studio.session.sample import SampleUnavailable, sample_project
from studio.settings import load_settings

RENDER_SAMPLE, OPEN_PROJECT, START_EMPTY = "render-sample", "open-project", "start-empty"


def is_first_run() -> bool:
    """Nothing was ever opened or saved here (no recent files, no last project)."""
    settings = load_settings()
    return not settings.recent_files and not settings.last_project


class WelcomeDialog(QDialog):
    """Three ways to start; `choice` tells which was taken (None: closed)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WelcomeDialog")
        self.setWindowTitle("Welcome to Qwen3-TTS Studio")
        self.setMinimumWidth(520)
        self.choice: str | None = None
        self.sample_available = True
        layout = QVBoxLayout(self)
        title = QLabel("<h2>Welcome to Qwen3-TTS Studio</h2>")
        layout.addWidget(title)
        intro = QLabel(
            "Write a script, tag its lines with emotions such as <code>[Whispering]</code> or "
            "<code>[pause 1s]</code>, cast a voice for each speaker, and render.<br><br>"
            "The sample project is a five-line scene with two voices. It renders with the model installed "
            "here and plays as it renders.")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(intro)
        self.status_label = QLabel()
        self.status_label.setObjectName("WelcomeModelStatus")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        buttons = QHBoxLayout()
        self.render_sample_button = QPushButton("&Render the Sample Project")
        self.render_sample_button.setDefault(True)
        self.render_sample_button.clicked.connect(lambda: self._choose(RENDER_SAMPLE))
        self.open_button = QPushButton("&Open a Project…")
        self.open_button.clicked.connect(lambda: self._choose(OPEN_PROJECT))
        self.empty_button = QPushButton("Start &Empty")
        self.empty_button.clicked.connect(lambda: self._choose(START_EMPTY))
        buttons.addWidget(self.render_sample_button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.empty_button)
        layout.addLayout(buttons)
        self._describe_models()

    def _describe_models(self) -> None:
        try:
            sample_project(installed_checkpoints())
        except SampleUnavailable as exc:
            self.sample_available = False
            self.status_label.setText(str(exc))
            self.render_sample_button.setText("Get a &Model for the Sample…")
            return
        self.status_label.setText("")
        self.status_label.setVisible(False)

    def _choose(self, choice: str) -> None:
        self.choice = choice
        self.accept()


def open_sample_project(window, *, render: bool) -> bool:
    """Replace the window's project with the sample (asking first about unsaved work) and, with `render`,
    start Render All. When no installed model can speak it, say what to install and offer the model
    manager. True when the sample was opened."""
    try:
        project = sample_project(installed_checkpoints())
    except SampleUnavailable as exc:
        buttons = QMessageBox.StandardButton
        box = QMessageBox(QMessageBox.Icon.Information, "No model for the sample project", str(exc),
                          buttons.Open | buttons.Cancel, window)
        box.button(buttons.Open).setText("&Models…")
        if box.exec() == buttons.Open:
            window.manage_models()
        return False
    if not window._confirm_discard():
        return False
    # Opened as a new, untitled project: the bundled file is never written to (it may be read-only).
    window._set_project(project, None)
    if render:
        window.render_all()
    else:
        window.statusBar().showMessage("The sample project is open: Render All (Ctrl+R) renders it", 8000)
    return True


def show_welcome(window) -> str | None:
    """The welcome dialog over `window`, and what its choice leads to; returns the choice."""
    dialog = WelcomeDialog(window)
    window.welcome_dialog = dialog
    dialog.exec()
    if dialog.choice == RENDER_SAMPLE:
        if not dialog.sample_available:
            window.manage_models()
            try:
                sample_project(installed_checkpoints())
            except SampleUnavailable:
                return dialog.choice  # still no model for it: the welcome said what to get
        open_sample_project(window, render=True)
    elif dialog.choice == OPEN_PROJECT:
        window.open_project_dialog()
    return dialog.choice
