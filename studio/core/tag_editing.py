"""Editing tags in a line: placing one where another of its kind is replaced, and removing one.

A "tag run" is a stretch of a line holding only tags and whitespace: the tags before the first word, or
between two words. Everything in one run applies at the same point of the speech, so a new emotion
replaces the run's emotion instead of stacking on it, and a run is rewritten with exactly one space
between its tags and around it (none at the start or end of the line). Whitespace there is never spoken,
so tidying it changes no audio.
"""

from __future__ import annotations

from studio.core.tags import _Token, _tokens, heading_end, strip_invisible, tag_kind


def _run_at(tokens: list[_Token], column: int) -> tuple[int, int]:
    """Indices [first, last) of the tokens in the run that touches `column` (a tag it falls inside counts)."""
    first = next((k for k, t in enumerate(tokens) if t.end > column), len(tokens))
    if first < len(tokens) and tokens[first].start < column and tokens[first].kind == "text":
        first += 1  # inside an escape pair: the run starts after it
    last = first
    while last < len(tokens) and tokens[last].kind != "text":
        last += 1
    while first > 0 and tokens[first - 1].kind != "text":
        first -= 1
    return first, last


def _rewrite_run(line: str, tokens: list[_Token], first: int, last: int, column: int, tags: list[str]) -> str:
    """`line` with the run tokens[first:last] (or the empty run at `column`) replaced by `tags`, spaced."""
    if first < last:
        start, end = tokens[first].start, tokens[last - 1].end
    else:  # no run here: insert before the token at the column (after an escape pair it fell inside)
        start = end = tokens[first].start if first < len(tokens) else len(line)
    parts = [line[:start], " ".join(tags), line[end:]]
    return " ".join(part for part in parts if part)


def _slot(content: str) -> str | None:
    """What a tag sets, for replacing: 'emotion', 'voice', 'directive:<key>'; None for a pause (they add up)."""
    kind = tag_kind(content)
    if kind == "pause":
        return None
    if kind == "directive":
        return "directive:" + strip_invisible(content).partition(":")[0].strip().lower()
    return kind


def place_tag(line: str, column: int, tag: str) -> str:
    """`line` with `tag` (e.g. "[Sad]") placed at a 0-based column, which should be a word's start.

    A tag of the same kind in the run of tags at that point (an emotion for an emotion, the same
    directive key, a voice) is replaced where it stands; otherwise the tag goes in at the column. A
    pause never replaces anything. The run is rewritten with single spaces, so "[Sad]Hello" with
    [Angry] placed at 0 becomes "[Angry] Hello".
    """
    # Never before a chapter heading's "#": the line would stop being a heading.
    column = max(heading_end(line), min(column, len(line)))
    tokens = _tokens(line)
    first, last = _run_at(tokens, column)
    slot = _slot(tag[1:-1] if tag.startswith("[") and tag.endswith("]") else tag)
    kept: list[str] = []
    replaced_at: int | None = None  # in place of the first tag it replaces, or else at the column
    before_column = 0
    for token in tokens[first:last]:
        if token.kind != "tag":
            continue
        if slot is not None and _slot(token.content) == slot:
            replaced_at = len(kept) if replaced_at is None else replaced_at
            continue
        kept.append(line[token.start : token.end])
        before_column += token.end <= column
    kept.insert(before_column if replaced_at is None else replaced_at, tag)
    return _rewrite_run(line, tokens, first, last, column, kept)


def remove_tag(line: str, column: int, tag_text: str) -> str:
    """`line` without the tag `tag_text` at a 0-based column, its run's spacing tidied (no double space,
    nothing left at the line's start or end). ValueError when that tag is not there."""
    tokens = _tokens(line)
    index = next((k for k, t in enumerate(tokens)
                  if t.kind == "tag" and t.start == column and line[t.start : t.end] == tag_text), None)
    if index is None:
        raise ValueError(f"there is no tag {tag_text!r} at column {column + 1}")
    first, last = _run_at(tokens, column)
    kept = [line[t.start : t.end] for k, t in enumerate(tokens[first:last], start=first)
            if t.kind == "tag" and k != index]
    return _rewrite_run(line, tokens, first, last, column, kept)


def apply_fix(line: str, column: int, old: str, new: str) -> str:
    """`line` with `old` at a 0-based column replaced by `new` ("" removes a tag, spacing tidied).

    ValueError when the text there is no longer `old` (the line was edited since the fix was offered)."""
    if not old or line[column : column + len(old)] != old:
        raise ValueError(f"the text at column {column + 1} is no longer {old!r}")
    if new == "":
        return remove_tag(line, column, old)
    return line[:column] + new + line[column + len(old):]
