"""What every page of the fine-tune wizard shares: the page ids, the context the pages work in, a base page.

Pages never reach into the wizard: each gets a WizardContext when it is made, reads the run's folder and
the wizard's services (voice library, clip player, runs folder) from it, and asks the wizard for what only
the wizard can do (reopen another run, announce a registered voice) through the context's signals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget, QWizard, QWizardPage

if TYPE_CHECKING:
    from studio.core.voice_library import VoiceLibrary
    from studio.ui.wizard.widgets import ClipPlayer

PAGE_DATASET, PAGE_VALIDATION, PAGE_SETTINGS, PAGE_PREPARE, PAGE_TRAIN, PAGE_FINISH = range(6)


class WizardContext(QObject):
    """The run the wizard is making (recordings, run folder) and what its pages share."""

    open_run_requested = Signal(object)  # Path of a run folder to reopen in this wizard
    voice_registered = Signal(object)  # the VoiceProfile added to the library

    def __init__(
        self, *, library: VoiceLibrary, runs_root: Path, clip_player: ClipPlayer, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.runs_root = runs_root
        self.clip_player = clip_player
        self.dataset: Path | None = None
        self.run_dir: Path | None = None
        # True while the wizard replays the pages of a reopened run that already did their work.
        self.restoring = False
        self.registered_profile = None


class BasePage(QWizardPage):
    """A page of the fine-tune wizard, working in `ctx`."""

    def __init__(self, ctx: WizardContext) -> None:
        super().__init__()
        self.ctx = ctx

    def validatePage(self) -> bool:  # noqa: N802 (Qt override)
        # QWizard.next() only asks validatePage, not isComplete: without this a programmatic next()
        # would walk past a failed step.
        return self.isComplete()

    def _note_playback_availability(self, play_button: QPushButton, note: QLabel) -> None:
        """Say why Play cannot work on a machine without sound output, next to the button."""
        player = self.ctx.clip_player
        if not player.available:
            problem = player.problem or "playback is unavailable"
            play_button.setToolTip(problem)
            note.setText("No sound output: " + problem)

    def _set_back_enabled(self, enabled: bool) -> None:
        # QWizard recomputes its buttons whenever a page reports completeChanged, so this is re-applied
        # right after each such signal.
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            wizard.button(QWizard.WizardButton.BackButton).setEnabled(enabled)


def browse_row(edit: QWidget, *buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    for button in buttons:
        row.addWidget(button)
    return row
