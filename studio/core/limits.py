"""Bounded reading: every file the studio reads has a size limit, and every JSON document a depth limit.

A path can name anything: `/dev/zero`, a named pipe, a 40 GB file dropped on the window by mistake. The
studio reads at most `limit + 1` bytes and refuses past the limit, so a wrong file costs a clear
message instead of all the memory. JSON is parsed with a bound on nesting (the C parser recurses and
would raise RecursionError) and on the digits of an integer (Python refuses to convert more than 4,300
and raises a bare ValueError).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, BinaryIO

# A script of a 100,000-word book is under 1 MB; a project adds its cast and per-line state.
SCRIPT_LIMIT = 32 * 1024 * 1024
PROJECT_LIMIT = 32 * 1024 * 1024
# Small JSON documents the studio writes for itself (profiles, reports, checkpoints' state, records).
SMALL_JSON_LIMIT = 64 * 1024 * 1024
JSON_MAX_DEPTH = 64
JSON_MAX_DIGITS = 40


class TooLargeError(ValueError):
    """A file over its size limit; str() says which file and what the limit is."""


class JsonLimitError(ValueError):
    """A JSON document nested too deeply or holding an absurd number; str() says which."""


def _size_words(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"


def read_stream_limited(stream: BinaryIO, limit: int, *, name: str, what: str = "file") -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{name}: larger than the {_size_words(limit)} a {what} may have")
    return data


def read_limited(path: Path, limit: int, *, what: str = "file") -> bytes:
    """The bytes of `path`, at most `limit` of them; TooLargeError past that, OSError as open() raises it."""
    with open(path, "rb") as handle:
        return read_stream_limited(handle, limit, name=str(path), what=what)


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > JSON_MAX_DIGITS:
        raise JsonLimitError(f"a number with {digits} digits (at most {JSON_MAX_DIGITS})")
    return int(text)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _depth_ok(text: str) -> bool:
    """Whether no array or object nests deeper than JSON_MAX_DEPTH (brackets inside strings skipped).

    Cheap for normal documents: the scan only starts when the text holds that many opening brackets,
    and then only the brackets outside strings are walked.
    """
    if text.count("[") + text.count("{") <= JSON_MAX_DEPTH:
        return True
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > JSON_MAX_DEPTH:
                return False
        else:
            depth -= 1
    return True


def loads_json(text: str) -> Any:
    """json.loads with the depth and digit limits; json.JSONDecodeError or JsonLimitError on bad input."""
    if not _depth_ok(text):
        raise JsonLimitError(f"nested more than {JSON_MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_int=_bounded_int)
    except RecursionError:  # pragma: no cover - _depth_ok rules this out; kept as a last line of defence
        raise JsonLimitError(f"nested more than {JSON_MAX_DEPTH} levels deep") from None


def read_json_limited(path: Path, limit: int = SMALL_JSON_LIMIT, *, what: str = "file") -> Any:
    """Read and parse a JSON file within limits; OSError, TooLargeError, ValueError (incl. JSON errors)."""
    return loads_json(read_limited(path, limit, what=what).decode("utf-8-sig"))
