"""`import`: a book (EPUB, Markdown, plain text) -> a new project, one chapter per chapter of the book."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.errors import EXIT_OK, CliError


def add_import_parser(commands) -> argparse.ArgumentParser:
    from studio.session.book_project import DEFAULT_MAX_CHARS  # light: no torch, no Qt

    command = commands.add_parser(
        "import", prog="qwen-tts-studio import",
        help="import a book (.epub, .md, .txt) as a new project with its chapters",
    )
    command.add_argument("book", help="an EPUB (2 or 3, without DRM), Markdown or plain-text file")
    command.add_argument("--out", required=True, metavar="PROJECT.qtts",
                         help="the project file to create (never overwritten); a cover goes beside it")
    command.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS, metavar="N",
                         help="longest script line: longer paragraphs are split at sentence ends, never mid-word "
                              "(default: %(default)s)")
    command.set_defaults(handler=_cmd_import)
    return command


def _cmd_import(args: argparse.Namespace) -> int:
    from studio.core.book_import import BookImportError
    from studio.session.book_project import import_book

    try:
        imported = import_book(Path(args.book), Path(args.out), max_chars=args.max_chars)
    except BookImportError as exc:
        raise CliError(str(exc)) from None
    book = imported.project.book
    about = " by ".join(part for part in (book.title and repr(book.title), book.author) if part)
    print(f"wrote {imported.path}: {about + ', ' if about else ''}{imported.chapters} chapters, "
          f"{imported.lines} lines, {imported.words} words")
    if imported.cover is not None:
        print(f"wrote {imported.cover}")
    return EXIT_OK
