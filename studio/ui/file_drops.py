"""Files dropped on the window: a project opens, a book (EPUB, Markdown, text) is imported as a new one."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData

from studio.core.project import PROJECT_SUFFIX

BOOK_SUFFIXES = (".epub", ".md", ".markdown", ".txt")


def dropped_file(mime: QMimeData) -> Path | None:
    """The one local project or book file a drag carries, or None (text, tags, several files, others)."""
    urls = mime.urls() if mime.hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return path if path.suffix.lower() in (PROJECT_SUFFIX, *BOOK_SUFFIXES) else None
