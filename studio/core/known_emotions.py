"""The emotions the studio knows (palette, cloned voices' emotion clips), matched as the renderer matches them,
with the closest known name for a typo."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from studio.core.invisible import strip_invisible

# How alike a name must be to a known emotion to be offered as "did you mean": high enough that a real
# emotion of its own ("Very angry", "Hungry") is not taken for a typo of a known one ("Angry"), low enough
# for a dropped, doubled or swapped letter in a short word ("Fearfl", "Sadd", "Hapy").
_SUGGESTION_CUTOFF = 0.75


def _normal_name(name: str) -> str:
    return " ".join(strip_invisible(name).split()).lower()


class KnownEmotions:
    """A list of emotion names, matched as the renderer matches them (case and spacing ignored).

    "Neutral" is always known: it is the tag that clears the emotion.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names: dict[str, str] = {}  # normal form -> the name as first written
        for name in [*names, "Neutral"]:
            normal = _normal_name(name)
            if normal and normal not in self.names:
                self.names[normal] = " ".join(name.split())

    def __iter__(self):
        return iter(self.names.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KnownEmotions) and self.names == other.names

    __hash__ = None  # mutable-looking; compared by value only

    def __contains__(self, name: str) -> bool:
        return _normal_name(name) in self.names

    def closest(self, name: str) -> str | None:
        """The known name most like `name` (difflib), or None when none is close enough to be a typo."""
        match = difflib.get_close_matches(_normal_name(name), list(self.names), n=1, cutoff=_SUGGESTION_CUTOFF)
        return self.names[match[0]] if match else None
