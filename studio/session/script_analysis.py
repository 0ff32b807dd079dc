"""The script's per-line analysis, kept current edit by edit instead of re-parsed whole.

A line's analysis depends on its text and on the delivery state it starts with (an emotion or voice set
on an earlier line carries on). After an edit of lines [first, first + added), only those lines are
parsed again, and then the lines after them for as long as the state they start with has changed: typing
in line 50,000 of a 100,000-line script parses one line, not 100,000.

Analyses keep the line numbers they were parsed at; after lines are inserted or removed above them the
numbers inside (items, tags, errors) are stale, so readers take the line's position from its index, not
from the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

from studio.core.script import ScriptChange
from studio.core.tags import DeliveryState, KnownEmotions, LineAnalysis, analyse_line


class LineTexts(Sequence[str]):
    """The texts of a list of script lines, read where needed (no copy of a 100,000-line script per edit)."""

    def __init__(self, lines) -> None:
        self._lines = lines

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, index):  # noqa: ANN001 (int or slice, as Sequence has it)
        if isinstance(index, slice):
            return [line.text for line in self._lines[index]]
        return self._lines[index].text


class ScriptAnalysis:
    def __init__(self) -> None:
        self.lines: list[LineAnalysis] = []
        self._after: list[DeliveryState] = []  # the state each line hands to the next
        self.known: KnownEmotions | None = None
        # Totals over the script, kept as lines change (the status bar's line, without a pass over them all).
        self.speech_segments = 0
        self.pauses = 0
        self.broken_lines = 0

    def _count(self, analysis: LineAnalysis | None, sign: int) -> None:
        if analysis is None:
            return
        speech = sum(1 for item in analysis.items if item.kind == "speech")
        self.speech_segments += sign * speech
        self.pauses += sign * (len(analysis.items) - speech)
        self.broken_lines += sign * (analysis.error is not None)

    def first_error(self) -> tuple[int, object] | None:
        """(index, error) of the first broken line, or None."""
        if not self.broken_lines:
            return None
        return next((i, a.error) for i, a in enumerate(self.lines) if a.error is not None)

    def __len__(self) -> int:
        return len(self.lines)

    def reset(self, texts: Sequence[str], known: KnownEmotions | None) -> None:
        """Analyse every line (a new script, or other known emotions)."""
        self.known = known
        self.lines = []
        self._after = []
        self.speech_segments = self.pauses = self.broken_lines = 0
        state = DeliveryState()
        for number, text in enumerate(texts, start=1):
            analysis, state = analyse_line(text, number, state, known)
            self.lines.append(analysis)
            self._after.append(state)
            self._count(analysis, 1)

    def apply(self, change: ScriptChange, texts: Sequence[str]) -> range:
        """Follow one edit of the script (`texts` is the script after it). Returns the indexes of the lines
        whose analysis changed (every line after a changed state, up to where the state settles)."""
        first, removed, added = change.first, change.removed, change.added
        if len(self.lines) - removed + added != len(texts):
            # Out of step (an edit this analysis did not see): start again.
            self.reset(texts, self.known)
            return range(len(texts))
        for gone in self.lines[first : first + removed]:
            self._count(gone, -1)
        self.lines[first : first + removed] = [None] * added  # type: ignore[list-item]
        self._after[first : first + removed] = [None] * added  # type: ignore[list-item]
        state = self._after[first - 1] if first > 0 else DeliveryState()
        index = first
        while index < len(texts):
            previous = self.lines[index]
            if index >= first + added and previous is not None and previous.state_before == state:
                break  # from here on nothing changed: same text, same state to start with
            analysis, state = analyse_line(texts[index], index + 1, state, self.known)
            self._count(previous, -1)
            self._count(analysis, 1)
            self.lines[index] = analysis
            self._after[index] = state
            index += 1
        return range(first, index)
