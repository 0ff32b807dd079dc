"""The script tag grammar: plain script text -> an ordered list of speech and pause items.

A script is plain text with inline tags such as ``[Whispering]``, ``[pause 1.5s]`` or
``[voice: Narrator]``. Tags change the delivery of the text that follows them; the state they set
(emotion, directives, voice) persists across segments and lines until another tag changes it.

Every position reported here is 1-based and counts physical lines after CRLF and CR have been
normalised to LF, so the editor, the command line and error messages all agree on where a problem is.

Besides errors (the line cannot be read), a line can carry warnings (it reads, but probably not as
meant): an emotion outside the known list, with the closest known name as a fix, and an emotion
overridden by another before any text. Editing helpers (`place_tag`, `remove_tag`, `apply_fix`) change
one line's text so an emotion replaces the emotion at that point instead of stacking, and so the tags
and text stay one space apart.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from studio.core.invisible import has_speakable_text, is_invisible, strip_invisible
from studio.core.known_emotions import KnownEmotions
from studio.core.pace import PACE_KEY, PaceError, set_pace

DEFAULT_PAUSE_SECONDS = 0.8
MAX_PAUSE_SECONDS = 10.0

# Keys of `[key: value]` tags that are not kept as free-form directives.
_VOICE_KEY = "voice"
_EMOTION_KEYS = frozenset({"emotion", "mood"})
_PAUSE_KEY = "pause"
_NEUTRAL = "neutral"

_WHITESPACE_RUN = re.compile(r"\s+")
# A chapter heading: "#" first on the line (after indentation) and then a space, as in Markdown. The
# heading's text is spoken like any line (audiobook chapters begin with their title read aloud);
# "\#" at the start of a line is a literal "#".
_HEADING = re.compile(r"[ \t]*#(?=[ \t])")
# "[pause]" alone, or "pause" followed by whitespace and a length: "[pause 1.5s]". "[Pauses]" or
# "[paused]" are emotions, so the word must end where the length begins.
_PAUSE_TAG = re.compile(r"pause(?:\s+(?P<length>.*))?", re.IGNORECASE | re.DOTALL)
_LENGTH = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*(?P<unit>ms|s|sec|secs|second|seconds)?",
    re.IGNORECASE,
)


class ScriptError(ValueError):
    """A problem in the script text, at a 1-based line and column."""

    def __init__(self, line: int, column: int, reason: str) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.line = line
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class SpeechItem:
    """Text to speak, with the delivery state in force where it starts."""

    line: int
    column: int  # where the segment's first character sits in the source line
    text: str
    emotion: str | None = None
    directives: dict[str, str] = field(default_factory=dict)
    voice: str | None = None

    kind = "speech"

    def to_json(self) -> dict:
        return {
            "kind": "speech",
            "line": self.line,
            "text": self.text,
            "emotion": self.emotion,
            "directives": dict(self.directives),
            "voice": self.voice,
        }


@dataclass(frozen=True)
class PauseItem:
    """Silence of a fixed length."""

    line: int
    column: int  # the column of the tag's opening bracket
    seconds: float

    kind = "pause"

    def to_json(self) -> dict:
        return {"kind": "pause", "line": self.line, "seconds": self.seconds}


ScriptItem = SpeechItem | PauseItem


@dataclass(frozen=True)
class TagSpan:
    """Where one tag sits in the source: for highlighting and for editing tags in place."""

    line: int
    column: int  # of "["
    end_column: int  # of "]", inclusive
    content: str  # the raw text between the brackets, escapes resolved


@dataclass
class DeliveryState:
    """What persists across segments and lines until a tag changes it."""

    emotion: str | None = None
    directives: dict[str, str] = field(default_factory=dict)
    voice: str | None = None

    def copy(self) -> DeliveryState:
        return DeliveryState(self.emotion, dict(self.directives), self.voice)


@dataclass
class ParseResult:
    """The outcome of a tolerant parse: every line that parsed, and every line's first error."""

    items: list[ScriptItem]
    errors: list[ScriptError]
    tags: list[TagSpan]


def normalise_newlines(text: str) -> str:
    # U+2028/U+2029 (line and paragraph separators) are line breaks to Qt's editor, which turns them
    # into "\n" in what it hands back; treating them as newlines here too keeps every line count (and
    # the per-line state keyed on it: locks, takes) the same in the editor, the model and the files.
    return (
        text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    )


def decode_script_bytes(data: bytes) -> str:
    """Decode UTF-8 script bytes (a leading BOM is dropped); a bad byte is a ScriptError naming it."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = normalise_newlines(data[: exc.start].decode("utf-8"))
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise ScriptError(
            line,
            column,
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start}",
        ) from None


def parse_script(text: str) -> list[ScriptItem]:
    """Parse a whole script; the first problem raises ScriptError."""
    state = DeliveryState()
    items: list[ScriptItem] = []
    for line_no, line in enumerate(normalise_newlines(text).split("\n"), start=1):
        line_items, _tags, state = parse_line(line, line_no, state)
        items.extend(line_items)
    return items


def parse_script_tolerant(text: str) -> ParseResult:
    """Parse line by line, collecting errors instead of stopping.

    A line with an error contributes no items and leaves the delivery state as it was, so the
    lines after it keep the emotion and voice they would have had without the broken line's tags.
    This is what the editor shows while the user types.
    """
    state = DeliveryState()
    result = ParseResult(items=[], errors=[], tags=[])
    for line_no, line in enumerate(normalise_newlines(text).split("\n"), start=1):
        try:
            line_items, tags, state = parse_line(line, line_no, state)
        except ScriptError as exc:
            result.errors.append(exc)
            continue
        result.items.extend(line_items)
        result.tags.extend(tags)
    return result


def parse_line(
    line: str, line_no: int, state: DeliveryState
) -> tuple[list[ScriptItem], list[TagSpan], DeliveryState]:
    """Parse one physical line (no newline in it) starting from `state`.

    Returns the line's items, its tag spans and the state after it. `state` itself is not changed.
    """
    state = state.copy()
    items: list[ScriptItem] = []
    tags: list[TagSpan] = []
    text_chars: list[str] = []
    text_start: int | None = None  # 0-based index of the pending text's first character

    def flush_text() -> None:
        nonlocal text_start
        raw = "".join(text_chars)
        text_chars.clear()
        # Control characters (a NUL pasted from a binary file) are dropped; joiners inside real words
        # are kept, but a run of nothing but invisible characters is no speech at all.
        collapsed = _WHITESPACE_RUN.sub(" ", "".join(c for c in raw if unicodedata.category(c) != "Cc"
                                                     or c == "\t")).strip()
        if collapsed and has_speakable_text(collapsed):
            leading = next(i for i, c in enumerate(raw) if not c.isspace() and not is_invisible(c))
            items.append(
                SpeechItem(
                    line=line_no,
                    column=(text_start or 0) + leading + 1,
                    text=collapsed,
                    emotion=state.emotion,
                    directives=dict(state.directives),
                    voice=state.voice,
                )
            )
        text_start = None

    heading = _HEADING.match(line)
    i = heading.end() if heading else 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and (line[i + 1] in "[]" or (line[i + 1] == "#" and not line[:i].strip())):
            if text_start is None:
                text_start = i
            text_chars.append(line[i + 1])
            i += 2
            continue
        if ch == "]":
            raise ScriptError(line_no, i + 1, "stray ']' with no '[' before it (write \\] for a literal bracket)")
        if ch == "[":
            open_at = i
            content_chars: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise ScriptError(line_no, open_at + 1, "unclosed '[': the tag has no ']' on this line")
                c = line[i]
                if c == "\\" and i + 1 < n and line[i + 1] in "[]":
                    content_chars.append(line[i + 1])
                    i += 2
                    continue
                if c == "[":
                    raise ScriptError(line_no, i + 1, "'[' inside a tag (write \\[ for a literal bracket)")
                if c == "]":
                    break
                content_chars.append(c)
                i += 1
            close_at = i
            i += 1
            content = "".join(content_chars)
            flush_text()
            tags.append(TagSpan(line_no, open_at + 1, close_at + 1, content))
            pause = _apply_tag(content, line_no, open_at + 1, state)
            if pause is not None:
                items.append(PauseItem(line=line_no, column=open_at + 1, seconds=pause))
            continue
        if text_start is None:
            text_start = i
        text_chars.append(ch)
        i += 1
    flush_text()
    if heading and not any(isinstance(item, SpeechItem) for item in items):
        raise ScriptError(line_no, heading.end(), "a chapter heading needs a title after '#'")
    return items, tags, state


def heading_end(line: str) -> int:
    """Where a chapter heading's "#" ends (0-based, after it; tags and text go after this), or 0 when
    `line` is no heading ("# Chapter 3: The Storm")."""
    heading = _HEADING.match(line)
    return heading.end() if heading else 0


def _apply_tag(content: str, line_no: int, column: int, state: DeliveryState) -> float | None:
    """Apply one tag's content to `state`; return a pause length when the tag is a pause."""
    # A zero-width character typed or pasted into "[pause 1s]" must not turn it into an emotion.
    stripped = strip_invisible(content).strip()
    if not stripped:
        raise ScriptError(line_no, column, "empty tag")
    if ":" in stripped:
        key, _, value = stripped.partition(":")
        key = key.strip().lower()
        value = value.strip()
        if not key:
            raise ScriptError(line_no, column, f"tag [{stripped}] has no key before ':'")
        if not value:
            raise ScriptError(line_no, column, f"tag [{stripped}] has no value after ':'")
        if key == _PAUSE_KEY:
            return parse_pause_length(value, line_no, column)
        if key == _VOICE_KEY:
            state.voice = value
        elif key in _EMOTION_KEYS:
            state.emotion = None if value.lower() == _NEUTRAL else value
        elif key == PACE_KEY:
            try:
                set_pace(state.directives, value)
            except PaceError as exc:
                raise ScriptError(line_no, column, str(exc)) from None
        else:
            state.directives[key] = value
        return None
    pause = _PAUSE_TAG.fullmatch(stripped)
    if pause is not None:
        length = pause.group("length")
        return DEFAULT_PAUSE_SECONDS if length is None else parse_pause_length(length, line_no, column)
    state.emotion = None if stripped.lower() == _NEUTRAL else stripped
    return None


def parse_pause_length(text: str, line_no: int, column: int) -> float:
    """'1.5s', '1.5', '500ms' -> seconds, within (0, MAX_PAUSE_SECONDS]."""
    match = _LENGTH.fullmatch(text.strip())
    if match is None:
        raise ScriptError(
            line_no, column, f"pause length {text.strip()!r} is not a number of seconds (e.g. 1.5s or 500ms)"
        )
    seconds = float(match.group("number"))
    if (match.group("unit") or "").lower() == "ms":
        seconds /= 1000.0
    if not math.isfinite(seconds) or seconds <= 0:
        raise ScriptError(line_no, column, f"pause length {text.strip()!r} must be more than 0 seconds")
    if seconds > MAX_PAUSE_SECONDS:
        raise ScriptError(
            line_no, column, f"pause length {text.strip()!r} is longer than {MAX_PAUSE_SECONDS:g} seconds"
        )
    return seconds


@dataclass(frozen=True)
class TagWarning:
    """Something in a line that parses but is probably not what the user meant, with a fix when one is known.

    The fix replaces `old` (the exact source text at 0-based `column - 1`) with `new`; `new` == "" removes
    the tag (spacing around it tidied, see `remove_tag`).
    """

    line: int
    column: int  # 1-based, of the tag's "["
    reason: str
    old: str = ""
    new: str | None = None  # None: no fix to offer

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.reason}"


@dataclass
class LineAnalysis:
    """One script line as the timeline shows it: the state it starts with and what it contains.

    A broken line contributes no items and no tags (it does not render and changes nothing for the
    lines after it), but what parsed before its error is kept in `valid_items`, `valid_tags` and
    `reached`, so the line can still show its own voice and emotion rather than the previous line's.
    """

    line: int  # 1-based
    state_before: DeliveryState
    items: list[ScriptItem]
    tags: list[TagSpan]
    error: ScriptError | None
    valid_items: list[ScriptItem] = field(default_factory=list)
    valid_tags: list[TagSpan] = field(default_factory=list)
    reached: DeliveryState = field(default_factory=DeliveryState)  # the state after the (valid part of the) line
    warnings: list[TagWarning] = field(default_factory=list)  # filled when analyse_lines is given known emotions


def parse_valid_prefix(
    line: str, line_no: int, state: DeliveryState, error: ScriptError
) -> tuple[list[ScriptItem], list[TagSpan], DeliveryState]:
    """Parse the part of a broken line before its error (shortened further if that part is broken too)."""
    end = error.column - 1
    while True:
        try:
            return parse_line(line[:end], line_no, state)
        except ScriptError as again:
            # "'[' inside a tag" points at the inner bracket: the prefix then ends in an open tag, whose
            # own error points further left. Every round shortens the prefix, and "" always parses.
            end = max(0, min(end - 1, again.column - 1))


def analyse_lines(text: str, known_emotions: Iterable[str] | KnownEmotions | None = None) -> list[LineAnalysis]:
    """Per-line parse with the delivery state carried across lines (a broken line changes nothing).

    With `known_emotions` (the palette's names, the cast's emotion clips), each line's `warnings` name
    emotion tags outside that list and emotions overridden before any text is spoken.
    """
    known = None if known_emotions is None else (
        known_emotions if isinstance(known_emotions, KnownEmotions) else KnownEmotions(known_emotions))
    state = DeliveryState()
    out: list[LineAnalysis] = []
    for line_no, line in enumerate(normalise_newlines(text).split("\n"), start=1):
        analysis, state = analyse_line(line, line_no, state, known)
        out.append(analysis)
    return out


def analyse_line(
    line: str, line_no: int, state: DeliveryState, known: KnownEmotions | None = None
) -> tuple[LineAnalysis, DeliveryState]:
    """One line of `analyse_lines`: its analysis, and the state the next line starts with."""
    before = state.copy()
    try:
        items, tags, after = parse_line(line, line_no, state)
        # parse_line returns a fresh state and never changes the one it is given: sharing it is safe.
        analysis = LineAnalysis(line_no, before, items, tags, None, items, tags, after)
    except ScriptError as exc:
        valid_items, valid_tags, reached = parse_valid_prefix(line, line_no, before, exc)
        analysis = LineAnalysis(line_no, before, [], [], exc, valid_items, valid_tags, reached)
        after = state
    if known is not None:
        analysis.warnings = tag_warnings(line, analysis.valid_tags, known)
    return analysis, after


# --- emotions the studio knows, and warnings about the ones it does not -----------------------------------

def emotion_of_tag(content: str) -> str | None:
    """The emotion an emotion tag sets, as written ("Sad" for [Sad] and [emotion: Sad]); None for other tags."""
    if tag_kind(content) != "emotion":
        return None
    stripped = strip_invisible(content).strip()
    if ":" in stripped:
        stripped = stripped.partition(":")[2].strip()
    return stripped


def unknown_emotion_warning(line_text: str, tag: TagSpan, known: KnownEmotions) -> TagWarning | None:
    """A warning for an emotion tag whose emotion is not known, with the closest known one as its fix."""
    emotion = emotion_of_tag(tag.content)
    if emotion is None or emotion in known:
        return None
    old = line_text[tag.column - 1 : tag.end_column]
    suggestion = known.closest(emotion)
    if suggestion is None:
        return TagWarning(tag.line, tag.column, f"unknown emotion {emotion!r}: not in the palette, so it is sent "
                                                f"to the model as written (add it to the palette if that is meant)",
                          old)
    at = old.rfind(emotion)
    if at > 0:
        new = old[:at] + suggestion + old[at + len(emotion):]
    else:  # written with escapes or invisible characters: write the tag afresh, in the same form
        key = strip_invisible(tag.content).partition(":")[0].strip() if ":" in tag.content else ""
        new = f"[{key}: {suggestion}]" if key else f"[{suggestion}]"
    return TagWarning(tag.line, tag.column, f"unknown emotion {emotion!r}: did you mean {suggestion}?", old, new)


# A line's tokens (tags, spaces, text) and its tag runs: what the warnings below and studio.core.tag_editing read.


@dataclass(frozen=True)
class _Token:
    start: int  # 0-based, inclusive
    end: int  # exclusive
    kind: str  # "tag", "space" or "text"
    content: str = ""  # a tag's text between its brackets, escapes resolved


def _tokens(line: str) -> list[_Token]:
    """The line as tags, runs of whitespace and text characters; a '[' with no ']' after it is text."""
    tokens: list[_Token] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in "[]":
            tokens.append(_Token(i, i + 2, "text"))
            i += 2
            continue
        if ch == "[":
            j, content = i + 1, []
            while j < n and line[j] not in "[]":
                if line[j] == "\\" and j + 1 < n and line[j + 1] in "[]":
                    content.append(line[j + 1])
                    j += 2
                    continue
                content.append(line[j])
                j += 1
            if j < n and line[j] == "]":
                tokens.append(_Token(i, j + 1, "tag", "".join(content)))
                i = j + 1
                continue
            tokens.append(_Token(i, i + 1, "text"))
            i += 1
            continue
        if ch.isspace() or is_invisible(ch):
            j = i + 1
            while j < n and (line[j].isspace() or is_invisible(line[j])):
                j += 1
            tokens.append(_Token(i, j, "space"))
            i = j
            continue
        tokens.append(_Token(i, i + 1, "text"))
        i += 1
    return tokens


def _tag_runs(line: str) -> list[list[_Token]]:
    """The tags of each run of tags and whitespace, in order (runs without tags left out)."""
    runs: list[list[_Token]] = [[]]
    for token in _tokens(line):
        if token.kind == "text":
            runs.append([])
        elif token.kind == "tag":
            runs[-1].append(token)
    return [run for run in runs if run]


def tag_warnings(line_text: str, tags: list[TagSpan], known: KnownEmotions) -> list[TagWarning]:
    """Warnings for one line's tags: unknown emotions, and an emotion overridden before any text is spoken."""
    warnings: list[TagWarning] = []
    for tag in tags:
        warning = unknown_emotion_warning(line_text, tag, known)
        if warning is not None:
            warnings.append(warning)
    if sum(1 for tag in tags if emotion_of_tag(tag.content) is not None) < 2:
        return warnings  # the common case, kept cheap: a long script is checked on every refresh
    parsed = {tag.column for tag in tags}  # on a broken line, only the tags before its error
    for run in _tag_runs(line_text):
        emotions = [t for t in run if t.start + 1 in parsed and emotion_of_tag(t.content) is not None]
        for tag in emotions[:-1]:
            old = line_text[tag.start : tag.end]
            newer = line_text[emotions[-1].start : emotions[-1].end]
            warnings.append(TagWarning(tags[0].line, tag.start + 1,
                                       f"{old} is overridden by {newer} before any text: only {newer} applies",
                                       old, ""))
    warnings.sort(key=lambda w: w.column)
    return warnings


def tag_kind(content: str) -> str:
    """'pause', 'voice', 'emotion' or 'directive' for a tag's content (assumed valid)."""
    stripped = strip_invisible(content).strip()
    if ":" in stripped:
        key = stripped.partition(":")[0].strip().lower()
        if key == _PAUSE_KEY:
            return "pause"
        if key == _VOICE_KEY:
            return "voice"
        return "emotion" if key in _EMOTION_KEYS else "directive"
    return "pause" if _PAUSE_TAG.fullmatch(stripped) else "emotion"
