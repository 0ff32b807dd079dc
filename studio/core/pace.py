"""`[pace: ...]`: how fast the following segments are spoken, relative to the model's own delivery.

A pace is a word (`slow`, `fast`, `very slow`, `very fast`, `normal`) or a rate: `0.9x`, `0.9` or `90%`
(0.9 = ten percent slower). The engine honours it through the instruct where the voice's model reads
one, and otherwise as a pitch-preserving time stretch of the rendered audio (see engine.time_stretch).
`[pace: normal]` (or `1x`) clears the pace, as `[neutral]` clears an emotion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, MutableMapping

PACE_KEY = "pace"
MIN_RATE, MAX_RATE = 0.5, 2.0

# The words a user can write and the rate each stands for when the audio has to be stretched. The
# steps are what narrators call a noticeably slower or faster read, not a caricature of one.
PACE_WORDS = {"very slow": 0.75, "slow": 0.85, "normal": 1.0, "fast": 1.15, "very fast": 1.3}

_RATE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>x|%)?", re.IGNORECASE)


class PaceError(ValueError):
    """A pace value that is neither a known word nor a rate within MIN_RATE..MAX_RATE."""


def pace_rate(value: str) -> float:
    """The speaking rate `value` asks for (1.0 = as the model speaks).

    >>> pace_rate("Slow"), pace_rate("0.9x"), pace_rate("120%"), pace_rate("1.1")
    (0.85, 0.9, 1.2, 1.1)
    """
    text = " ".join(value.split()).lower()
    if text in PACE_WORDS:
        return PACE_WORDS[text]
    match = _RATE.fullmatch(text)
    if match is None:
        words = ", ".join(PACE_WORDS)
        raise PaceError(f"pace {value.strip()!r} is not one of {words} nor a rate such as 0.9x or 90%")
    rate = float(match.group("number"))
    if match.group("unit") == "%":
        rate /= 100.0
    if not math.isfinite(rate) or not MIN_RATE <= rate <= MAX_RATE:
        raise PaceError(f"pace {value.strip()!r} is outside {MIN_RATE:g}x to {MAX_RATE:g}x")
    return round(rate, 4)


def set_pace(directives: MutableMapping[str, str], value: str) -> None:
    """Apply a `[pace: value]` tag to the directives in force (raises PaceError for a bad value).
    A rate of 1 ("normal", "1x") clears the pace, as "[neutral]" clears an emotion."""
    if pace_rate(value) == 1.0:
        directives.pop(PACE_KEY, None)
    else:
        directives[PACE_KEY] = value


def segment_pace(directives: Mapping[str, str]) -> float | None:
    """The rate of a segment's `[pace: ...]` directive; None when it has none (or an invalid one, which
    the parser reports before a segment is ever planned)."""
    value = directives.get(PACE_KEY)
    if value is None:
        return None
    try:
        rate = pace_rate(value)
    except PaceError:
        return None
    return None if rate == 1.0 else rate
