"""Chapters of a script: where each begins and ends, and what it is called.

A chapter begins at a heading line ("# Chapter 3: The Storm", see `tags.heading_end`) and runs to the
line before the next heading. The heading is spoken like any line, so a chapter's audio begins with
its title read aloud (audiobook platforms ask for that). Text before the first heading, when there is
any, is a chapter of its own (the opening: a dedication, an epigraph, opening credits). A script
without headings has no chapters: it renders and exports as before, as one piece.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from studio.core.invisible import has_speakable_text
from studio.core.tags import (
    DeliveryState,
    ScriptError,
    SpeechItem,
    heading_end,
    normalise_newlines,
    parse_line,
)

OPENING_TITLE = "Opening"


@dataclass(frozen=True)
class Chapter:
    number: int  # 1-based, in script order
    title: str
    first_line: int  # 1-based: the heading (or line 1 for the opening)
    last_line: int  # 1-based, inclusive

    def holds(self, line: int) -> bool:
        return self.first_line <= line <= self.last_line


def heading_title(line: str, line_no: int = 1) -> str:
    """The words of a heading line as spoken: tags and escapes removed ("# [Sad] The End" -> "The End")."""
    try:
        items, _tags, _state = parse_line(line, line_no, DeliveryState())
    except ScriptError:  # a broken heading still names its chapter in the outline, from its raw text
        return " ".join(line[heading_end(line):].split())
    return " ".join(item.text for item in items if isinstance(item, SpeechItem))


def _speaks(line: str, line_no: int) -> bool:
    """Whether a line says anything (a line of tags alone, "[voice: Narrator]", does not)."""
    try:
        items, _tags, _state = parse_line(line, line_no, DeliveryState())
    except ScriptError:
        return has_speakable_text(line)  # broken, but words the user wrote: they belong to a chapter
    return any(isinstance(item, SpeechItem) for item in items)


def chapters_in(text: str | Sequence[str]) -> list[Chapter]:
    """The script's chapters in order (empty when it has no heading). `text` is the script or its lines."""
    lines = normalise_newlines(text).split("\n") if isinstance(text, str) else list(text)
    starts = [(number, heading_title(line, number)) for number, line in enumerate(lines, start=1)
              if heading_end(line)]
    if not starts:
        return []
    if any(_speaks(line, number) for number, line in enumerate(lines[: starts[0][0] - 1], start=1)):
        starts.insert(0, (1, OPENING_TITLE))
    ends = [start - 1 for start, _title in starts[1:]] + [len(lines)]
    return [Chapter(number, title, first, last)
            for number, ((first, title), last) in enumerate(zip(starts, ends, strict=True), start=1)]


def find_chapter(chapters: Sequence[Chapter], wanted: str) -> Chapter:
    """A chapter by its number ("3") or its title (case and spacing ignored); ValueError naming what there is."""
    if not chapters:
        raise ValueError("the script has no chapters (a chapter starts at a line '# Title')")
    if wanted.strip().isdigit():
        number = int(wanted)
        if 1 <= number <= len(chapters):
            return chapters[number - 1]
        raise ValueError(f"there is no chapter {number}: the script has {len(chapters)}")
    key = " ".join(wanted.split()).casefold()
    for chapter in chapters:
        if " ".join(chapter.title.split()).casefold() == key:
            return chapter
    names = ", ".join(f"{c.number} {c.title!r}" for c in chapters)
    raise ValueError(f"there is no chapter called {wanted!r}; the chapters are: {names}")


_UNSAFE_IN_FILE_NAMES = re.compile(r'[<>:"/\\|?*\x00-\x1f]+')


def safe_file_name(title: str, limit: int = 80) -> str:
    """`title` as part of a file name on every system: no path separators or characters Windows refuses,
    no trailing dots or spaces, at most `limit` characters ("Chapter 3: The Storm" -> "Chapter 3 - The Storm")."""
    name = _UNSAFE_IN_FILE_NAMES.sub(" - ", title)
    name = " ".join(name.split())[:limit].rstrip(" .-")
    return name or "chapter"
