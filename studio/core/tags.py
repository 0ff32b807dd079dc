"""The script tag grammar: plain script text -> an ordered list of speech and pause items.

A script is plain text with inline tags such as ``[Whispering]``, ``[pause 1.5s]`` or
``[voice: Narrator]``. Tags change the delivery of the text that follows them; the state they set
(emotion, directives, voice) persists across segments and lines until another tag changes it.

Every position reported here is 1-based and counts physical lines after CRLF and CR have been
normalised to LF, so the editor, the command line and error messages all agree on where a problem is.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

DEFAULT_PAUSE_SECONDS = 0.8
MAX_PAUSE_SECONDS = 10.0

# Keys of `[key: value]` tags that are not kept as free-form directives.
_VOICE_KEY = "voice"
_EMOTION_KEYS = frozenset({"emotion", "mood"})
_PAUSE_KEY = "pause"
_NEUTRAL = "neutral"

_WHITESPACE_RUN = re.compile(r"\s+")
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


def _is_invisible(char: str) -> bool:
    # Format characters (zero-width space and joiners, word joiner, BOM, bidi marks, soft hyphen) and
    # control characters (NUL and the rest of C0/C1): nothing a reader sees or a model can speak.
    return unicodedata.category(char) in ("Cf", "Cc") and char not in "\t"


def strip_invisible(text: str) -> str:
    """`text` without zero-width, format and control characters (tabs kept)."""
    return "".join(char for char in text if not _is_invisible(char))


def has_speakable_text(text: str) -> bool:
    """Whether `text` holds anything but whitespace and invisible characters."""
    return any(not char.isspace() and not _is_invisible(char) for char in text)


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
            leading = next(i for i, c in enumerate(raw) if not c.isspace() and not _is_invisible(c))
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

    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in "[]":
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
    return items, tags, state


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


@dataclass
class LineAnalysis:
    """One script line as the timeline shows it: the state it starts with and what it contains."""

    line: int  # 1-based
    state_before: DeliveryState
    items: list[ScriptItem]
    tags: list[TagSpan]
    error: ScriptError | None


def analyse_lines(text: str) -> list[LineAnalysis]:
    """Per-line parse with the delivery state carried across lines (a broken line changes nothing)."""
    state = DeliveryState()
    out: list[LineAnalysis] = []
    for line_no, line in enumerate(normalise_newlines(text).split("\n"), start=1):
        before = state.copy()
        try:
            items, tags, state = parse_line(line, line_no, state)
            out.append(LineAnalysis(line_no, before, items, tags, None))
        except ScriptError as exc:
            out.append(LineAnalysis(line_no, before, [], [], exc))
    return out


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
