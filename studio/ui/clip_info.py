"""What the timeline draws for one script line: the window derives these records from the script model and
the render state (window_editing.clip_for); the timeline keeps no script data of its own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from studio.core.tags import TagWarning


@dataclass(frozen=True)
class QuickFix:
    """A one-click correction offered for a line (e.g. an unknown emotion replaced by the closest known one)."""

    label: str  # what the menu says, e.g. "Replace [Fearfl] with [Fearful]"
    column: int  # 0-based column of `old` in the line
    old: str
    new: str


def quick_fixes_for(warnings: Iterable[TagWarning]) -> list[QuickFix]:
    """The one-click corrections of a line's tag warnings (those that have one)."""
    fixes = []
    for warning in warnings:
        if warning.new is None or not warning.old:
            continue
        label = f"Replace {warning.old} with {warning.new}" if warning.new else f"Remove {warning.old}"
        fixes.append(QuickFix(label, warning.column - 1, warning.old, warning.new))
    return fixes


@dataclass
class Chip:
    label: str
    inherited: bool = False  # set on an earlier line; shown outlined
    column: int | None = None  # 0-based column of the tag in the line (own chips only)
    tag_text: str = ""  # the exact inline text, for removal


@dataclass
class ClipInfo:
    index: int  # 0-based line index
    line_id: int
    text: str  # the line's speech, tags removed
    voice: str | None
    chips: list[Chip]
    pieces: list[tuple[str, float]]  # ("speech" | "pause", seconds) in order
    estimated: bool  # durations predicted from text, not rendered
    state: str  # stale, queued, rendering, done, cached, failed, locked, error
    message: str = ""  # failure reason, grammar error, warnings
    warning: bool = False  # e.g. the emotion cannot be applied by this voice
    locked: bool = False
    take: int = 0
    takes: int = 1
    tags: list[tuple[int, str]] = field(default_factory=list)  # (column, text) of every tag, for removal
    quick_fixes: list[QuickFix] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(seconds for _kind, seconds in self.pieces)
