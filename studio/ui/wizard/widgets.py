"""Small pieces the wizard's pages share: progress with ETA, error banner, collapsible log, clip playback."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.audio.buffers import GrowingAudio
from studio.audio.playback import PlaybackUnavailable, Player, default_output_device
from studio.engine.models import format_duration

# The log keeps the newest lines only: a long training run writes a line per checkpoint and warning for
# hours, and a QPlainTextEdit slows down with hundreds of thousands of blocks.
_LOG_LINES = 5000


def eta_text(eta_s: float | None) -> str:
    return "ETA --" if eta_s is None else f"ETA {format_duration(eta_s)}"


class ProgressRow(QWidget):
    """A progress bar with the counts and the time left next to it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setMinimumWidth(240)
        self.bar.setTextVisible(True)
        self.label = QLabel("")
        self.label.setMinimumWidth(200)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label)
        self.reset()

    def reset(self, text: str = "") -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("%p%")
        self.label.setText(text)

    def set_busy(self, text: str) -> None:
        """Work whose size is not known yet (loading a model): a moving bar."""
        self.bar.setRange(0, 0)
        self.bar.setFormat("%p%")
        self.label.setText(text)

    def set_progress(self, done: int, total: int, eta_s: float | None, unit: str = "") -> None:
        total = max(int(total), 1)
        self.bar.setRange(0, total)
        self.bar.setValue(min(int(done), total))
        self.bar.setFormat(f"{int(done)} / {total}{' ' + unit if unit else ''}")
        self.label.setText(eta_text(eta_s) if done < total else "done")

    def set_finished(self, text: str) -> None:
        """The work is complete: a full bar."""
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        self.bar.setValue(self.bar.maximum())
        self.label.setText(text)

    def set_ended(self, text: str) -> None:
        """The work ended before it was complete (stopped, failed): the bar stays where it got to, and says so."""
        if self.bar.maximum() == 0:  # it never got going (a moving bar): an empty one
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
        counts = self.bar.format().split(" — ")[0]
        # "%p%" is the bar's own percentage, shown before any count was known: the text alone then.
        self.bar.setFormat(text if "%" in counts else f"{counts} — {text}")
        self.label.setText(text)


class ErrorBanner(QLabel):
    """A failed step's message and what to do about it (never a traceback: that stays in the log)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet(
            "QLabel { color: #8a1020; background: #fdecee; border: 1px solid #f0b7be;"
            " border-radius: 4px; padding: 6px; }"
        )
        self.message = ""
        self.hint = ""
        self.setVisible(False)

    def show_error(self, message: str, hint: str = "") -> None:
        self.message, self.hint = message, hint
        text = f"<b>{html.escape(message)}</b>"
        if hint:
            text += f"<br>{html.escape(hint[0].upper() + hint[1:])}."
        self.setText(text)
        self.setVisible(True)

    def clear_error(self) -> None:
        self.message = self.hint = ""
        self.setText("")
        self.setVisible(False)


class LogView(QWidget):
    """The command's stderr, folded away until the user asks for it."""

    def __init__(self, title: str = "Log", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setText(f"{title}")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(_LOG_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setMinimumHeight(110)
        self.text.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.text)
        self.toggle.toggled.connect(self._on_toggle_toggled)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle.setChecked(expanded)

    def _on_toggle_toggled(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.text.setVisible(expanded)
        policy = QSizePolicy.Policy.Expanding if expanded else QSizePolicy.Policy.Maximum
        self.setSizePolicy(QSizePolicy.Policy.Preferred, policy)

    def append(self, line: str) -> None:
        self.text.appendPlainText(line)

    def lines(self) -> list[str]:
        return self.text.toPlainText().splitlines()

    def clear(self) -> None:
        self.text.clear()


class ClipPlayer(QObject):
    """Plays one audio file at a time through the studio's Player; knows when there is no sound card."""

    playing_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        try:
            self.device = default_output_device()
            self.problem: str | None = None
        except PlaybackUnavailable as exc:
            self.device = None
            self.problem = str(exc)
        self._player: Player | None = None
        self.current: Path | None = None
        # Player reports its end on its feeder thread, where Qt must not be touched; polling is simpler.
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._on_timer_timeout)

    @property
    def available(self) -> bool:
        return self.device is not None

    @property
    def playing(self) -> bool:
        return self._player is not None and self._player.playing

    def play(self, path: str | Path) -> str | None:
        """Start playing `path`; returns why it cannot be played, or None."""
        self.stop()
        if self.device is None:
            return self.problem or "playback is unavailable"
        import soundfile as sf

        path = Path(path)
        try:
            samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - missing or unreadable: the item's row already says which
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"{path.name} cannot be played ({reason})"
        audio = GrowingAudio(int(rate), capacity=max(1, len(samples)))
        audio.append(samples.mean(axis=1))
        try:
            self._player = Player(audio, device=self.device)
        except PlaybackUnavailable as exc:
            self.problem = str(exc)
            self.device = None
            return self.problem
        self._player.rendering_done = True
        self._player.play()
        self.current = path
        self._timer.start()
        self.playing_changed.emit(True)
        return None

    def stop(self) -> None:
        self._timer.stop()
        if self._player is not None:
            self._player.close()
            self._player = None
            self.current = None
            self.playing_changed.emit(False)

    def _on_timer_timeout(self) -> None:
        if self._player is not None and not self._player.playing:
            self.stop()
