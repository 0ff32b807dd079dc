"""Books: a 100,000-word EPUB imported as a project, and that project opened in the window.

Targets from issue #20: the import in under 10 s, the opening in under 2 s. The book is generated (40
chapters of prose-like sentences, a table of contents, EPUB 3), so every run reads the same bytes.
"""

from __future__ import annotations

import random
import tempfile
import time
import zipfile
from pathlib import Path

WORDS = ("the storm had been building over valley since noon and nobody wanted to go out but she took her "
         "coat from a hook by door walked into rain listening for sound of river under bridge").split()


def write_book(path: Path, *, words: int = 100_000, chapters: int = 40) -> Path:
    """An EPUB 3 of about `words` words in `chapters` chapters (paragraphs of three to eight sentences)."""
    rng = random.Random(20)
    per_chapter = words // chapters
    documents = {}
    for number in range(1, chapters + 1):
        paragraphs, count = [], 0
        while count < per_chapter:
            sentences = []
            for _ in range(rng.randint(3, 8)):
                sentence = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
                count += len(sentence)
                sentences.append(" ".join(sentence).capitalize() + ".")
            paragraphs.append("<p>" + " ".join(sentences) + "</p>")
        documents[f"ch{number}.xhtml"] = (
            '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>'
            f"Chapter {number}</title></head><body><h1>Chapter {number}</h1>{''.join(paragraphs)}</body></html>")
    items = "".join(f'<item id="c{n}" href="ch{n}.xhtml" media-type="application/xhtml+xml"/>'
                    for n in range(1, chapters + 1))
    spine = "".join(f'<itemref idref="c{n}"/>' for n in range(1, chapters + 1))
    nav_items = "".join(f'<li><a href="ch{n}.xhtml">Chapter {n}</a></li>' for n in range(1, chapters + 1))
    opf = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="i">'
           '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="i">bench</dc:identifier>'
           "<dc:title>The Long Storm</dc:title><dc:creator>Bench Writer</dc:creator></metadata>"
           f'<manifest><item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>{items}'
           f"</manifest><spine>{spine}</spine></package>")
    nav = ('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
           f'<head><title>Contents</title></head><body><nav epub:type="toc"><ol>{nav_items}</ol></nav></body></html>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml", (
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/content.opf", opf, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/nav.xhtml", nav, compress_type=zipfile.ZIP_DEFLATED)
        for name, text in documents.items():
            archive.writestr(f"OEBPS/{name}", text, compress_type=zipfile.ZIP_DEFLATED)
    return path


def bench_books(table) -> None:
    from PySide6.QtWidgets import QApplication

    from studio.session.book_project import import_book
    from studio.ui.main_window import MainWindow

    folder = Path(tempfile.mkdtemp(prefix="bench-book-"))
    book = write_book(folder / "long.epub")
    started = time.perf_counter()
    imported = import_book(book, folder / "long.qtts")
    seconds = time.perf_counter() - started
    table.add("importing a 100,000-word EPUB (time / the 10 s target)", f"{seconds / 10:.3f}x",
              f"{seconds:.2f} s: {imported.words:,} words, {imported.chapters} chapters, {imported.lines:,} lines",
              "<= 1x")
    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.show()
    started = time.perf_counter()
    window.open_project(imported.path)
    app.processEvents()
    seconds = time.perf_counter() - started
    table.add("opening that book's project in the window (time / the 2 s target)", f"{seconds / 2:.3f}x",
              f"{seconds:.2f} s (parse, timeline layout, editor, outline of {window.outline.tree.topLevelItemCount()}"
              " chapters)", "<= 1x")
    window.shutdown()
    window.undo_stack.setClean()
    window.close()
