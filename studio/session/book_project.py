"""A book file (EPUB, Markdown, plain text) -> a new project file with one chapter per chapter of the book.

Shared by `qwen-tts-studio import` and the window's File -> Import Book. The import never overwrites:
the project file (and the cover image written beside it) must not exist yet, and a failure part-way
leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from studio.core.atomic import atomic_write_bytes
from studio.core.book_import import Book, BookImportError, read_book, script_from_book
from studio.core.chapters import chapters_in
from studio.core.project import PROJECT_SUFFIX, BookInfo, DiskVersion, Project, ProjectConflictError, save_project

DEFAULT_MAX_CHARS = 300  # characters per script line: a few sentences, well inside what the models read well
_COVER_SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png"}


@dataclass(frozen=True)
class ImportedBook:
    project: Project
    path: Path
    chapters: int
    lines: int
    words: int
    cover: Path | None


def cover_path_for(project_path: Path, cover_type: str | None) -> Path | None:
    suffix = _COVER_SUFFIXES.get(cover_type or "")
    return None if suffix is None else project_path.with_name(f"{project_path.stem}.cover{suffix}")


def book_project(book: Book, *, max_chars: int = DEFAULT_MAX_CHARS, cover: str | None = None) -> Project:
    """The project for `book` (not saved): its script with chapter headings, and its title and author."""
    project = Project(script=script_from_book(book, max_chars=max_chars))
    project.book = BookInfo(title=book.title, author=book.author, cover=cover)
    return project


def import_book(book_path: Path, project_path: Path, *, max_chars: int = DEFAULT_MAX_CHARS) -> ImportedBook:
    """Read `book_path` and write it as the new project `project_path`; BookImportError names what is wrong."""
    book_path, project_path = Path(book_path), Path(project_path)
    if project_path.suffix != PROJECT_SUFFIX:
        raise BookImportError(f"{project_path}: a project file must end in {PROJECT_SUFFIX}")
    if os.path.lexists(project_path):
        raise BookImportError(f"{project_path}: already exists; nothing was overwritten")
    if not project_path.parent.is_dir():
        raise BookImportError(f"{project_path.parent}: no such folder")
    if max_chars < 40:
        raise BookImportError(f"--max-chars {max_chars}: a line needs room for a sentence (at least 40)")
    book = read_book(book_path)
    cover = cover_path_for(project_path, book.cover_type) if book.cover else None
    if cover is not None and os.path.lexists(cover):
        raise BookImportError(f"{cover}: already exists (the book's cover goes there); nothing was written")
    project = book_project(book, max_chars=max_chars, cover=cover.name if cover else None)
    written: list[Path] = []
    try:
        if cover is not None:
            atomic_write_bytes(cover, book.cover)
            written.append(cover)
        save_project(project, project_path, expect=DiskVersion(None))  # refuses a file that appeared meanwhile
    except ProjectConflictError:
        _remove(written)
        raise BookImportError(f"{project_path}: appeared while importing; nothing was overwritten") from None
    except OSError as exc:
        _remove(written)
        raise BookImportError(f"{project_path}: cannot write the project ({exc.strerror or exc})") from None
    lines = [line for line in project.script.split("\n") if line.strip()]
    words = sum(len(line.split()) for line in lines)
    return ImportedBook(project, project_path, len(chapters_in(project.script)), len(lines), words, cover)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except OSError:
            pass
