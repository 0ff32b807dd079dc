"""The problems the pre-flight check found, with buttons that open the place to fix them."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.session.preflight import FIX_MODELS, FIX_SETTINGS, FIX_VOICES, Problem

_OPEN_LABELS = {FIX_VOICES: "Open &Voices…", FIX_MODELS: "Open &Models…", FIX_SETTINGS: "Render &Settings…"}


class PreflightDialog(QDialog):
    RENDER_WHAT_CAN = "render-what-can"
    CANCEL = "cancel"

    def __init__(self, problems: list[Problem], *, can_render_some: bool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Before rendering")
        self.problems = problems
        self.choice = self.CANCEL
        intro = QLabel(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} would stop lines from rendering. "
            "Nothing has been rendered yet."
        )
        intro.setWordWrap(True)
        self.table = QTableWidget(len(problems), 4)
        self.table.setHorizontalHeaderLabels(["Lines", "Voice", "Problem", "How to fix it"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Problems name files and models: long text wraps within its column, and each row grows to fit it,
        # instead of being cut off.
        self.table.setWordWrap(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for row, problem in enumerate(problems):
            cells = (problem.where_text.removeprefix("lines ").removeprefix("line "),
                     problem.cast_name or "(default)", problem.what, problem.fix)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox()
        self.open_buttons: dict[str, QPushButton] = {}
        # One button per place that fixes something here, in a steady order.
        for where in (FIX_VOICES, FIX_MODELS, FIX_SETTINGS):
            if any(p.where == where for p in problems):
                button = buttons.addButton(_OPEN_LABELS[where], QDialogButtonBox.ButtonRole.ActionRole)
                button.clicked.connect(lambda _=False, w=where: self._choose(w))
                self.open_buttons[where] = button
        self.render_button = buttons.addButton("&Render the Other Lines", QDialogButtonBox.ButtonRole.AcceptRole)
        self.render_button.setEnabled(can_render_some)
        self.render_button.setToolTip("Render every line no problem concerns, into the timeline, the mix and the "
                                      "cache; the script is exported once every line renders")
        self.render_button.clicked.connect(lambda: self._choose(self.RENDER_WHAT_CAN))
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.clicked.connect(lambda: self._choose(self.CANCEL))
        # Enter opens the first place to fix things; a partial render is never the default.
        self.render_button.setAutoDefault(False)
        first_fix = next(iter(self.open_buttons.values()), cancel)
        first_fix.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(980, 160 + 56 * min(len(problems), 8))

    def _choose(self, choice: str) -> None:
        self.choice = choice
        if choice == self.CANCEL:
            self.reject()
        else:
            self.accept()

    def exec_choice(self) -> str:
        """Show the dialog; returns a FIX_* place to open, RENDER_WHAT_CAN or CANCEL."""
        self.exec()
        return self.choice
