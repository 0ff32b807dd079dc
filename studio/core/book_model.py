"""The book as the importers read it: chapters of plain-text paragraphs, with its title, author and cover,
and the text helpers every importer shares (book_import for text and Markdown, book_epub for EPUB)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.invisible import strip_invisible

FRONT_MATTER_TITLE = "Front matter"


@dataclass(frozen=True)
class Chapter:
    title: str
    paragraphs: tuple[str, ...]  # plain text, whitespace normalised, no markup


@dataclass(frozen=True)
class Book:
    title: str | None
    author: str | None
    chapters: tuple[Chapter, ...]
    cover: bytes | None = None  # image bytes (an EPUB's cover) or None
    cover_type: str | None = None  # "image/jpeg" or "image/png"


class BookImportError(ValueError):
    """One line that names the file (and the entry inside an EPUB) and what is wrong."""


def clean_text(text: str) -> str:
    """`text` on one line: whitespace runs as one space, zero-width and control characters (soft hyphens,
    BOMs, bidi marks) removed, since a model cannot speak them and they split words."""
    text = " ".join(text.split())
    return " ".join(strip_invisible(text).split()) if not text.isprintable() else text


def has_words(text: str) -> bool:
    """Whether a paragraph says anything: ornaments such as "* * *" or "~" have nothing to speak."""
    return any(char.isalnum() for char in text)


def title_key(text: str) -> str:
    """What two titles are compared by: letters and digits only, case folded."""
    return "".join(char for char in text.casefold() if char.isalnum())


def finish_book(path: Path, title: str | None, author: str | None, chapters: list[tuple[str, list[str]]],
                cover: bytes | None = None, cover_type: str | None = None) -> Book:
    """The Book from raw (title, paragraphs) pairs: text cleaned, wordless paragraphs and empty chapters dropped;
    a book with no words at all is an error naming `path`."""
    result = []
    for number, (chapter_title, paragraphs) in enumerate(chapters, start=1):
        kept = tuple(text for text in map(clean_text, paragraphs) if has_words(text))
        if kept:
            result.append(Chapter(clean_text(chapter_title) or f"Chapter {number}", kept))
    if not result:
        raise BookImportError(f"{path} contains no text")
    return Book(clean_text(title or "") or None, clean_text(author or "") or None, tuple(result), cover,
                cover_type if cover else None)


JPEG, PNG = "image/jpeg", "image/png"


def image_type(data: bytes) -> str | None:
    """The MIME type of a cover picture by its first bytes: JPEG or PNG, the two every player shows; else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None
