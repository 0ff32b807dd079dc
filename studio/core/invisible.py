"""Characters nobody sees: zero-width, format and control characters, which a pasted script often carries."""

from __future__ import annotations

import unicodedata


def is_invisible(char: str) -> bool:
    # Format characters (zero-width space and joiners, word joiner, BOM, bidi marks, soft hyphen) and
    # control characters (NUL and the rest of C0/C1): nothing a reader sees or a model can speak.
    return unicodedata.category(char) in ("Cf", "Cc") and char not in "\t"


def strip_invisible(text: str) -> str:
    """`text` without zero-width, format and control characters (tabs kept)."""
    if text.isprintable():  # no format or control character at all (the common case, checked in C)
        return text
    return "".join(char for char in text if not is_invisible(char))


def has_speakable_text(text: str) -> bool:
    """Whether `text` holds anything but whitespace and invisible characters."""
    if text.isprintable():
        return bool(text.strip())
    return any(not char.isspace() and not is_invisible(char) for char in text)
