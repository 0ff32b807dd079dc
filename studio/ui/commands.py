"""Undo commands: each holds data (never widgets) and applies one core operation on the ScriptModel.

Typing arrives already applied in the editor, so the first redo() of a TextEditCommand recorded from
the editor only updates the model; undo and later redos update the model, and the editor follows
through the model's change events.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from studio.core.script import ScriptModel
from studio.core.tag_editing import apply_fix, place_tag, remove_tag

_TYPING_ID = 1


class TextEditCommand(QUndoCommand):
    """Replace `removed` at `position` with `inserted`. Consecutive typing merges into one step."""

    def __init__(self, model: ScriptModel, position: int, removed: str, inserted: str, *,
                 text: str = "Typing", merge: bool = True) -> None:
        super().__init__(text)
        self.model = model
        self.position = position
        self.removed = removed
        self.inserted = inserted
        self._mergeable = merge

    def redo(self) -> None:
        self.model.replace(self.position, self.removed, self.inserted)

    def undo(self) -> None:
        self.model.replace(self.position, self.inserted, self.removed)

    def id(self) -> int:  # noqa: A003 (Qt API)
        return _TYPING_ID if self._mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt API)
        if not isinstance(other, TextEditCommand) or not other._mergeable:
            return False
        # Typing forwards within one line: the next insertion starts where this one ended.
        if (
            not self.removed
            and not other.removed
            and other.position == self.position + len(self.inserted)
            and "\n" not in other.inserted
            and "\n" not in self.inserted
        ):
            self.inserted += other.inserted
            return True
        # Backspacing: each deletion ends where the previous one started.
        if (
            not self.inserted
            and not other.inserted
            and other.position + len(other.removed) == self.position
            and "\n" not in other.removed
        ):
            self.position = other.position
            self.removed = other.removed + self.removed
            return True
        return False


class InsertTagCommand(TextEditCommand):
    """Insert tag text verbatim at a column (no replacing, no spacing): PlaceTagCommand is what the editor uses."""

    def __init__(self, model: ScriptModel, line: int, column: int, tag: str) -> None:
        column = max(0, min(column, len(model.line(line).text)))
        super().__init__(model, model.position(line, column), "", tag, text=f"Insert {tag}", merge=False)


class LineEditCommand(TextEditCommand):
    """Rewrite one line, recorded as the smallest edit, so undo restores the old text exactly.

    `changed` is False when the new text equals the old: such a command should not be pushed.
    """

    def __init__(self, model: ScriptModel, line: int, new_text: str, *, text: str) -> None:
        self.changed = model.line(line).text != new_text
        position, removed, inserted = model.line_edit(line, new_text)
        super().__init__(model, position, removed, inserted, text=text, merge=False)


class PlaceTagCommand(LineEditCommand):
    """Place a tag at a word of a line; an emotion replaces the emotion already there (core: place_tag)."""

    def __init__(self, model: ScriptModel, line: int, column: int, tag: str) -> None:
        new_text = place_tag(model.line(line).text, column, tag)
        super().__init__(model, line, new_text, text=f"Place {tag} on line {line + 1}")


class RemoveTagCommand(LineEditCommand):
    """Remove one tag, tidying the spacing around it; ValueError when the tag is no longer there."""

    def __init__(self, model: ScriptModel, line: int, column: int, tag_text: str) -> None:
        new_text = remove_tag(model.line(line).text, column, tag_text)
        super().__init__(model, line, new_text, text=f"Remove {tag_text} from line {line + 1}")


class QuickFixCommand(LineEditCommand):
    """Replace `old` at a column with `new` (a suggested correction); ValueError when `old` is no longer there."""

    def __init__(self, model: ScriptModel, line: int, column: int, old: str, new: str) -> None:
        new_text = apply_fix(model.line(line).text, column, old, new)
        what = f"Replace {old} with {new}" if new else f"Remove {old}"
        super().__init__(model, line, new_text, text=f"{what} on line {line + 1}")


class MoveLineCommand(QUndoCommand):
    def __init__(self, model: ScriptModel, source: int, target: int) -> None:
        super().__init__(f"Move line {source + 1}")
        self.model, self.source, self.target = model, source, target

    def redo(self) -> None:
        self.model.move_line(self.source, self.target)

    def undo(self) -> None:
        self.model.move_line(self.target, self.source)


class LineStateCommand(QUndoCommand):
    """Lock/unlock a line or choose its take; addressed by line id so it survives other edits."""

    def __init__(self, model: ScriptModel, line_id: int, *, locked: bool | None = None,
                 take: int | None = None, takes: int | None = None) -> None:
        index = model.index_of(line_id)
        if locked is not None:
            what = "Lock" if locked else "Unlock"
        else:
            what = f"New take {take + 1} of" if takes is not None else f"Choose take {take + 1} of"
        super().__init__(f"{what} line {index + 1}")
        self.model = model
        self.line_id = line_id
        old = model.line(index).state
        self.before = (old.locked, old.take, old.takes)
        self.after = (old.locked if locked is None else locked, old.take if take is None else take,
                      old.takes if takes is None else takes)

    def redo(self) -> None:
        locked, take, takes = self.after
        self.model.set_state(self.model.index_of(self.line_id), locked=locked, take=take, takes=takes)

    def undo(self) -> None:
        locked, take, takes = self.before
        self.model.set_state(self.model.index_of(self.line_id), locked=locked, take=take, takes=takes)
