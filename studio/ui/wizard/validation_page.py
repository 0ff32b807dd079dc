"""Page 2 of the fine-tune wizard: training.validate checks the recordings; the report, item by item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.engine.models import format_duration
from studio.ui.wizard.base import BasePage, WizardContext
from studio.ui.wizard.commands import validate_args
from studio.ui.wizard.runner import StepRunner
from studio.ui.wizard.widgets import ErrorBanner, LogView, ProgressRow
from training.protocol import CRASHED, FINISHED, Outcome
from training.run_folder import RunFolder


class ValidationPage(BasePage):
    COLUMNS = ("Item", "Length", "Status", "Problems and notes")
    _PROBLEM_BRUSH = QColor(253, 226, 228)
    _NOTE_BRUSH = QColor(255, 246, 214)

    def __init__(self, ctx: WizardContext) -> None:
        super().__init__(ctx)
        self.setTitle("Check the recordings")
        self.setSubTitle(
            "Each item is checked for missing or unreadable audio, empty transcripts, length (1 to 30 s), "
            "clipping, silence and duplicates. Items with problems are left out; notes are only for your information."
        )
        self.progress = ProgressRow()
        self.totals = QLabel("")
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setMinimumHeight(180)
        self.table.setWordWrap(False)
        self.show_all = QCheckBox("Show &usable items without notes too")
        self.play_button = QPushButton("&Play")
        self.play_button.setEnabled(False)
        self.playback_note = QLabel("")
        self.playback_note.setStyleSheet("color: #666;")
        self.again_button = QPushButton("Check &again")
        self.error = ErrorBanner()
        self.log = LogView("Details")
        self.runner = StepRunner(self)
        self.items: list[dict[str, Any]] = []
        self.report: dict[str, Any] | None = None
        self._ok = False
        self._report_mtime: float | None = None

        buttons = QHBoxLayout()
        buttons.addWidget(self.show_all)
        buttons.addStretch(1)
        buttons.addWidget(self.playback_note)
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.again_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress)
        layout.addWidget(self.totals)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.error)
        layout.addWidget(self.log)

        self.runner.event_received.connect(self._on_runner_event_received)
        self.runner.log_received.connect(self.log.append)
        self.runner.finished.connect(self._on_runner_finished)
        self.show_all.toggled.connect(self._on_show_all_toggled)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.table.itemDoubleClicked.connect(self._on_table_item_double_clicked)
        self.play_button.clicked.connect(self._on_play_button_clicked)
        self.again_button.clicked.connect(self.start)
        ctx.clip_player.playing_changed.connect(self._on_player_playing_changed)

    # --- running ----------------------------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        ctx = self.ctx
        self._note_playback_availability(self.play_button, self.playback_note)
        report = RunFolder.at(ctx.run_dir).report if ctx.run_dir else None
        if ctx.restoring:
            # Reopening shows what the folder holds and starts nothing; Check again is one click away.
            if report is not None and report.is_file():
                self._load_report(report)
                self._ok = bool(self.report and self.report.get("totals", {}).get("usable"))
                self.progress.set_finished("checked earlier")
            else:
                self.error.show_error("this run folder has no validation report", "check the recordings again")
            self.completeChanged.emit()
        else:
            self.start()

    def start(self) -> None:
        ctx = self.ctx
        if self.runner.running or ctx.run_dir is None or ctx.dataset is None:
            return
        self._ok = False
        self.items, self.report = [], None
        self.table.setRowCount(0)
        self.totals.setText("")
        self.error.clear_error()
        self.log.clear()
        self.again_button.setEnabled(False)
        self.progress.set_busy("starting…")
        report = RunFolder.at(ctx.run_dir).report
        self._report_mtime = report.stat().st_mtime if report.is_file() else None
        self.completeChanged.emit()
        self.runner.start("training.validate", validate_args(ctx.dataset, ctx.run_dir), run_dir=ctx.run_dir)

    def cleanupPage(self) -> None:  # noqa: N802 (Qt override)
        self.runner.kill()
        self.ctx.clip_player.stop()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self._ok and not self.runner.running

    def _on_runner_event_received(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self.progress.set_progress(0, int(event.get("total") or 0), None, "items")
        elif kind == "progress":
            self.progress.set_progress(int(event["done"]), int(event["total"]), event.get("eta_s"), "items")
        elif kind == "warning":
            self.log.append(f"warning: {event.get('message', '')}")

    def _on_runner_finished(self, outcome: Outcome) -> None:
        self.again_button.setEnabled(True)
        report = RunFolder.at(self.ctx.run_dir).report
        fresh = report.is_file() and report.stat().st_mtime != self._report_mtime
        if outcome.status == FINISHED:
            self._load_report(report)
            self._ok = bool(self.report and self.report.get("totals", {}).get("usable"))
            self.progress.set_finished("done")
        else:
            # "Nothing usable" still writes the report: the table then shows why.
            if fresh:
                self._load_report(report)
            self.progress.set_ended("failed")
            self.error.show_error(outcome.message, outcome.hint)
            if outcome.status == CRASHED:
                self.log.set_expanded(True)
        self.completeChanged.emit()

    # --- the report ------------------------------------------------------------------------------------

    def _load_report(self, path: Path) -> None:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            items = list(report["items"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.error.show_error(f"{path}: unreadable ({exc})", "check the recordings again")
            return
        self.report, self.items = report, items
        self._fill_table()
        totals = report.get("totals", {})
        kinds = totals.get("problems") or {}
        left_out = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
        text = (
            f"<b>{totals.get('usable', 0)}</b> of {totals.get('items', 0)} items usable, "
            f"{format_duration(float(totals.get('seconds') or 0.0))} of audio."
        )
        if left_out:
            text += f" Left out: {left_out}."
        self.totals.setText(text)

    def _fill_table(self) -> None:
        show_all = self.show_all.isChecked()
        rows = [item for item in self.items if show_all or item.get("problems") or item.get("notes")]
        self.table.setRowCount(len(rows))
        for row, item in enumerate(rows):
            problems, notes = list(item.get("problems") or []), list(item.get("notes") or [])
            audio = str(item.get("audio") or "")
            seconds = item.get("seconds")
            status = "left out" if problems else ("usable, see note" if notes else "usable")
            cells = (
                Path(audio).name or str(item.get("source", "")),
                "—" if seconds is None else f"{float(seconds):.1f} s",
                status,
                "; ".join(problems + notes),
            )
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setData(Qt.ItemDataRole.UserRole, audio)
                cell.setToolTip(f"{item.get('source', '')}\n{audio}\n“{item.get('text', '')}”")
                if problems:
                    cell.setBackground(self._PROBLEM_BRUSH)
                elif notes:
                    cell.setBackground(self._NOTE_BRUSH)
                self.table.setItem(row, column, cell)
        self._on_table_selection_changed()

    def problem_rows(self) -> list[str]:
        """Item names of the rows that are left out of training, as the table shows them."""
        return [
            self.table.item(row, 0).text()
            for row in range(self.table.rowCount())
            if self.table.item(row, 2).text() == "left out"
        ]

    # --- playback ---------------------------------------------------------------------------------------

    def _selected_audio(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        cell = self.table.item(rows[0].row(), 0)
        return cell.data(Qt.ItemDataRole.UserRole) if cell else None

    def _on_show_all_toggled(self, _checked: bool) -> None:
        self._fill_table()

    def _on_table_selection_changed(self) -> None:
        player = self.ctx.clip_player
        self.play_button.setEnabled(bool(player and player.available and self._selected_audio()))

    def _on_table_item_double_clicked(self, _item: QTableWidgetItem) -> None:
        self._on_play_button_clicked()

    def _on_play_button_clicked(self) -> None:
        player = self.ctx.clip_player
        if player.playing:
            player.stop()
            return
        audio = self._selected_audio()
        if audio:
            problem = player.play(audio)
            self.playback_note.setText(problem or "")

    def _on_player_playing_changed(self, playing: bool) -> None:
        self.play_button.setText("&Stop" if playing else "&Play")
