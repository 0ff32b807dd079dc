"""The pronunciation dictionary: words the model should say another way, rewritten before synthesis.

Each entry maps a term to what the model reads instead: a respelling ("Nguyen" -> "Win"), or a hint
("SQL" -> "sequel"). The script keeps what the user wrote (subtitles show it); only the text handed to
the model changes, and with it the render cache key of exactly the segments that contain a term: an
edit to the dictionary re-renders those lines and no others.

Matching: whole words by default (an entry "Al" leaves "Alan" alone), case-insensitive unless the entry
says otherwise. An entry may be limited to one voice of the cast or one language. Where entries overlap,
the longest term wins ("New York City" before "New York"), so the order of the entries does not matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Pronunciation:
    term: str
    say: str
    whole_word: bool = True
    match_case: bool = False
    voice: str | None = None  # only in this cast member's segments; None: every voice
    language: str | None = None  # only in segments of this language ("english"); None: every language

    def applies_to(self, voice: str | None, language: str) -> bool:
        return (self.voice is None or self.voice == voice) and (
            self.language is None or self.language.strip().lower() == language.strip().lower())


def check_entry(entry: Pronunciation) -> str | None:
    """Why `entry` cannot be used, or None."""
    if not entry.term.strip():
        return "the term is empty"
    if not entry.say.strip():
        return f"{entry.term!r}: what to say instead is empty"
    if "\n" in entry.term or "\n" in entry.say:
        return f"{entry.term!r}: a term and what it is said as are one line each"
    return None


def _pattern(entry: Pronunciation) -> str:
    body = re.escape(entry.term.strip())
    if entry.whole_word:
        # Lookarounds rather than \b: a term that starts or ends with a non-word character ("C++", ".NET")
        # still needs no letter or digit glued to it.
        body = rf"(?<!\w){body}(?!\w)"
    return body if entry.match_case else f"(?i:{body})"


class Lexicon:
    """A project's entries, compiled once for every segment of a render and every line the editor shows."""

    def __init__(self, entries: Iterable[Pronunciation] = ()) -> None:
        usable = [e for e in entries if check_entry(e) is None]
        # Longest first: at one position, the regex engine takes the first alternative that matches.
        self.entries: tuple[Pronunciation, ...] = tuple(sorted(usable, key=lambda e: -len(e.term.strip())))

    def __bool__(self) -> bool:
        return bool(self.entries)

    @cached_property
    def _any(self) -> re.Pattern | None:
        if not self.entries:
            return None
        return re.compile("|".join(f"(?P<e{i}>{_pattern(e)})" for i, e in enumerate(self.entries)))

    def matches(self, text: str) -> list[tuple[int, int, Pronunciation]]:
        """Every (start, end, entry) in `text`, whatever voice or language the entry is limited to (the
        editor shows them all; the render applies the ones that fit each segment)."""
        if self._any is None:
            return []
        return [(m.start(), m.end(), self.entries[int(m.lastgroup[1:])]) for m in self._any.finditer(text)]

    def spoken(self, text: str, *, voice: str | None = None, language: str = "auto") -> str:
        """`text` as the model should read it in a segment of `voice` and `language`."""
        if self._any is None:
            return text
        out, last = [], 0
        for start, end, entry in self.matches(text):
            if entry.applies_to(voice, language):
                out += [text[last:start], entry.say.strip()]
                last = end
        return "".join(out) + text[last:] if out else text


def lines_affected(lines: Sequence[str], before: Lexicon, after: Lexicon) -> list[int]:
    """0-based lines whose text either dictionary would rewrite differently (what a dictionary edit makes
    stale): lines where some term of either matches and the matches or their entries differ."""
    changed = []
    for number, line in enumerate(lines):
        if before.matches(line) != after.matches(line):
            changed.append(number)
    return changed
