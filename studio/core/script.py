"""The project's script as a model: text lines with stable identities, per-line state, change events.

The text stays the single source of truth (tags live inline), but each line also has an id that
survives edits elsewhere in the script and reordering, so per-line state (locked, chosen take) follows
its line. Views subscribe with `subscribe(callback)` and redraw from the model; they never keep their
own copy. Every mutation goes through one of the operations below, which the UI wraps in undo commands.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from studio.core.project import LineState
from studio.core.tags import normalise_newlines

_ids = itertools.count(1)


@dataclass
class ScriptLine:
    text: str
    id: int = field(default_factory=lambda: next(_ids))
    state: LineState = field(default_factory=LineState)


@dataclass(frozen=True)
class ScriptChange:
    """What changed: lines [first, first + removed) were replaced by [first, first + added).

    `kind` is "text" for edits and moves, "state" for lock/take changes (then removed == added == 1).
    """

    kind: str
    first: int  # 0-based line index
    removed: int
    added: int


Listener = Callable[[ScriptChange], None]


class ScriptModel:
    def __init__(self, text: str = "", states: dict[int, LineState] | None = None) -> None:
        self._lines = [ScriptLine(t) for t in normalise_newlines(text).split("\n")]
        for number, state in (states or {}).items():
            if 1 <= number <= len(self._lines):
                self._lines[number - 1].state = LineState(state.locked, state.take, state.takes)
        self._listeners: list[Listener] = []
        # The joined text, kept up to date by the edits (joining 100,000 lines on every keystroke was a good
        # part of what typing in a long script cost); None when it must be joined again.
        self._text: str | None = None

    # --- reading ----------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "\n".join(line.text for line in self._lines)
        return self._text

    def __len__(self) -> int:
        return len(self._lines)

    def line(self, index: int) -> ScriptLine:
        return self._lines[index]

    def lines(self) -> list[ScriptLine]:
        return list(self._lines)

    def index_of(self, line_id: int) -> int:
        for index, line in enumerate(self._lines):
            if line.id == line_id:
                return index
        raise KeyError(line_id)

    def line_states(self) -> dict[int, LineState]:
        """1-based line number -> state, for the project file (defaults left out)."""
        return {
            number: LineState(line.state.locked, line.state.take, line.state.takes)
            for number, line in enumerate(self._lines, start=1)
            if not line.state.is_default()
        }

    def position(self, line: int, column: int) -> int:
        """Character offset of a 0-based line and 0-based column in `text`."""
        return sum(len(self._lines[i].text) + 1 for i in range(line)) + column

    def line_edit(self, index: int, new_text: str) -> tuple[int, str, str]:
        """The smallest edit (position, removed, inserted) that turns line `index` into `new_text`.

        For `replace`: rewriting a line this way keeps its id and state, and undoing the edit restores
        the old text exactly. ValueError if `new_text` holds a line break.
        """
        if "\n" in normalise_newlines(new_text):
            raise ValueError("a line's new text cannot hold a line break")
        offset, removed, inserted = diff_texts(self._lines[index].text, new_text)
        return self.position(index, 0) + offset, removed, inserted

    # --- events -------------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, change: ScriptChange) -> None:
        for listener in list(self._listeners):
            listener(change)

    # --- operations -----------------------------------------------------------------------------------

    def replace(self, position: int, removed: str, inserted: str) -> None:
        """Replace `removed` (which must be the text at `position`) with `inserted`.

        Lines outside the edited range keep their ids and state. The first edited line keeps its id
        (typing in a line does not make it a different line); lines the edit creates are new.
        """
        inserted = normalise_newlines(inserted)
        text = self.text
        end = position + len(removed)
        if text[position:end] != removed:
            raise ValueError("the text to replace is not at that position")
        first = text.count("\n", 0, position)
        last = first + removed.count("\n")
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        new_texts = (text[line_start:position] + inserted + text[end:line_end]).split("\n")
        keep = self._lines[first]
        replacement = [ScriptLine(new_texts[0], id=keep.id, state=keep.state)]
        replacement += [ScriptLine(t) for t in new_texts[1:]]
        self._lines[first : last + 1] = replacement
        self._text = text[:line_start] + "\n".join(new_texts) + text[line_end:]
        self._emit(ScriptChange("text", first, last - first + 1, len(replacement)))

    def set_text(self, text: str) -> None:
        """Replace everything (a new or reloaded script): every line is new."""
        removed = len(self._lines)
        self._lines = [ScriptLine(t) for t in normalise_newlines(text).split("\n")]
        self._text = None
        self._emit(ScriptChange("text", 0, removed, len(self._lines)))

    def insert_in_line(self, index: int, column: int, inserted: str) -> int:
        """Insert text at a 0-based column of a line; returns the character position used."""
        column = max(0, min(column, len(self._lines[index].text)))
        position = self.position(index, column)
        self.replace(position, "", inserted)
        return position

    def move_line(self, source: int, target: int) -> None:
        """Move line `source` so it ends up at index `target` (both 0-based), state and id with it."""
        if source == target:
            return
        line = self._lines.pop(source)
        self._lines.insert(target, line)
        self._text = None
        low, high = min(source, target), max(source, target)
        self._emit(ScriptChange("text", low, high - low + 1, high - low + 1))

    def set_state(self, index: int, *, locked: bool | None = None, take: int | None = None,
                  takes: int | None = None) -> None:
        state = self._lines[index].state
        new = LineState(state.locked if locked is None else locked, state.take if take is None else take,
                        state.takes if takes is None else takes)
        if new == state:
            return
        self._lines[index].state = new
        self._emit(ScriptChange("state", index, 1, 1))


def _common_prefix(a: str, b: str) -> int:
    # Binary search over slice comparisons: each comparison runs in C, so this stays fast on long
    # scripts where a character-by-character Python loop would not.
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def diff_texts(old: str, new: str) -> tuple[int, str, str]:
    """The smallest single edit (position, removed, inserted) that turns `old` into `new`."""
    prefix = _common_prefix(old, new)
    old_rest, new_rest = old[prefix:], new[prefix:]
    suffix = _common_prefix(old_rest[::-1], new_rest[::-1])
    return prefix, old_rest[: len(old_rest) - suffix], new_rest[: len(new_rest) - suffix]
