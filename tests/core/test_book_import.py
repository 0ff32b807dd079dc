"""Book import: EPUB 2/3, Markdown and plain text -> chapters of plain paragraphs -> a script with headings."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.book_import import (
    Book,
    BookImportError,
    Chapter,
    read_book,
    script_from_book,
    split_paragraph,
)
from studio.core.chapters import chapters_in
from studio.core.tags import SpeechItem, parse_script

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


# --- building EPUBs --------------------------------------------------------------------------------------

def container(opf: str) -> str:
    return ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            f'<rootfiles><rootfile full-path="{opf}" media-type="application/oebps-package+xml"/></rootfiles>'
            "</container>")


def xhtml(body: str, title: str = "A page", doctype: bool = False) -> str:
    dtd = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">'
           if doctype else "")
    return (f'<?xml version="1.0" encoding="utf-8"?>{dtd}<html xmlns="http://www.w3.org/1999/xhtml" '
            f'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>{title}</title>'
            f"<style>p {{ color: red }} /* STYLETEXT */</style></head><body>{body}</body></html>")


def write_epub(path: Path, files: dict[str, str | bytes], opf: str | None = "OEBPS/content.opf") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        if opf is not None:
            archive.writestr("META-INF/container.xml", container(opf), compress_type=zipfile.ZIP_DEFLATED)
        for name, data in files.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


EPUB3_OPF = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="id">urn:test:3</dc:identifier>
    <dc:title>The Test Voyage</dc:title>
    <dc:creator id="c1">Ada Writer</dc:creator>
    <dc:creator id="c2">Ed Itor</dc:creator>
    <meta refines="#c1" property="role" scheme="marc:relators">aut</meta>
    <meta refines="#c2" property="role" scheme="marc:relators">edt</meta>
  </metadata>
  <manifest>
    <item id="nav" href="nav/nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="cover" href="Images/cover.png" media-type="image/png" properties="cover-image"/>
    <item id="map" href="Images/map.png" media-type="image/png"/>
    <item id="front" href="Text/front.xhtml" media-type="application/xhtml+xml"/>
    <item id="ch1" href="Text/ch1.xhtml" media-type="application/xhtml+xml"/>
    <item id="interlude" href="Text/interlude.xhtml" media-type="application/xhtml+xml"/>
    <item id="notes" href="Text/notes.xhtml" media-type="application/xhtml+xml"/>
    <item id="ch2" href="Text/chapter%20two.xhtml" media-type="application/xhtml+xml"/>
  </manifest>
  <spine>
    <itemref idref="front"/>
    <itemref idref="ch1"/>
    <itemref idref="interlude"/>
    <itemref idref="notes" linear="no"/>
    <itemref idref="ch2"/>
    <itemref idref="nav"/>
  </spine>
</package>"""

EPUB3_NAV = xhtml("""
<nav epub:type="toc"><h1>Contents</h1><ol>
  <li><a href="../Text/ch1.xhtml">Chapter 1: The Storm</a></li>
  <li><a href="../Text/chapter%20two.xhtml">Chapter 2</a>
    <ol><li><a href="../Text/chapter%20two.xhtml#s%C3%A9c3">Chapter 3</a></li></ol></li>
  <li><a href="../Text/notes.xhtml">Notes</a></li>
</ol></nav>
<nav epub:type="landmarks"><ol><li><a epub:type="bodymatter" href="../Text/ch1.xhtml">Start</a></li></ol></nav>""")

EPUB3_FILES = {
    "OEBPS/content.opf": EPUB3_OPF,
    "OEBPS/nav/nav.xhtml": EPUB3_NAV,
    "OEBPS/Images/cover.png": PNG,
    "OEBPS/Images/map.png": PNG,
    "OEBPS/Text/front.xhtml": xhtml("<h1>The Test Voyage</h1><p>For my crew.</p>"),
    "OEBPS/Text/ch1.xhtml": xhtml(
        "<h1>Chapter 1</h1><h2>The Storm</h2>"
        '<p>The wind rose<a epub:type="noteref" href="notes.xhtml#n1">1</a> over the <i>grey</i> sea.</p>'
        '<script>var hidden = "SCRIPTTEXT";</script>'
        "<p>She wrote &#91;sic] in the log&#160;book.</p>"
        '<div><img src="../Images/map.png" alt="MAPALT"/>'
        '<svg xmlns="http://www.w3.org/2000/svg"><text>SVGTEXT</text></svg></div>'
        "<p># 42 was the cabin.</p>"
        '<aside epub:type="footnote" id="fn1"><p>FOOTNOTETEXT about the wind.</p></aside>'
        "<p>Line one<br/>line two.</p>"),
    "OEBPS/Text/interlude.xhtml": xhtml("<p>Between the chapters, the sea was calm.</p>"),
    "OEBPS/Text/notes.xhtml": xhtml('<p id="n1">NOTESDOCUMENT text.</p>'),
    "OEBPS/Text/chapter two.xhtml": xhtml(
        '<h1>Chapter 2</h1><p>Morning came.<sup><a href="notes.xhtml#n2">2</a></sup> It was 1<sup>st</sup>.</p>'
        '<section id="séc3"><h1>Chapter 3</h1><p>Night fell.</p></section>'),
}


EPUB2_OPF = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="2.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">
    <dc:title>Old Tales</dc:title>
    <dc:creator opf:role="aut">Bea Author</dc:creator>
    <dc:creator opf:role="ill">Ill Ustrator</dc:creator>
    <dc:identifier id="id">urn:test:2</dc:identifier>
    <meta name="cover" content="cover-img"/>
  </metadata>
  <manifest>
    <item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>
    <item id="cover-img" href="images/cover.jpg" media-type="image/jpeg"/>
    <item id="contents" href="contents.html" media-type="application/xhtml+xml"/>
    <item id="one" href="text/one.html" media-type="application/xhtml+xml"/>
    <item id="popup" href="text/popup.html" media-type="application/xhtml+xml"/>
    <item id="two" href="text/two.html" media-type="application/xhtml+xml"/>
  </manifest>
  <spine toc="ncx">
    <itemref idref="contents"/>
    <itemref idref="one"/>
    <itemref idref="popup" linear="no"/>
    <itemref idref="two"/>
  </spine>
  <guide><reference type="toc" title="Contents" href="contents.html"/></guide>
</package>"""

EPUB2_NCX = """<?xml version="1.0" encoding="utf-8"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><head/><docTitle><text>Old Tales</text></docTitle>
<navMap>
  <navPoint id="p1" playOrder="1"><navLabel><text>The First Tale</text></navLabel>
    <content src="text/one.html"/></navPoint>
  <navPoint id="p2" playOrder="2"><navLabel><text>The Second Tale</text></navLabel><content src="text/two.html"/>
    <navPoint id="p3" playOrder="3"><navLabel><text>Its Sequel</text></navLabel>
      <content src="text/two.html#sequel"/></navPoint>
  </navPoint>
</navMap></ncx>"""

EPUB2_FILES = {
    "content.opf": EPUB2_OPF,
    "toc.ncx": EPUB2_NCX,
    "images/cover.jpg": JPEG,
    "contents.html": xhtml('<p><a href="text/one.html">The First Tale</a></p><p>CONTENTSPAGE</p>', doctype=True),
    "text/one.html": xhtml(
        "<h2>The First Tale</h2><p>Wait&nbsp;&mdash;&nbsp;what&hellip; really?</p>"
        '<p>A king [long ago] ruled.<a href="#fn1" class="pginternal">[1]</a></p>'
        '<p><img src="../images/cover.jpg" alt="COVERALT"/></p><script>SCRIPTTEXT()</script>'
        '<div class="footnote"><p><a id="fn1"></a>[1] FOOTNOTETEXT of the king.</p></div>', doctype=True),
    "text/popup.html": xhtml("<p>POPUPTEXT</p>", doctype=True),
    "text/two.html": xhtml("<h2>The Second Tale</h2><p>A queen ruled.</p>"
                           '<h2 id="sequel">Its Sequel</h2><p>Then nobody ruled.</p>', doctype=True),
}


def all_text(book: Book) -> str:
    return "\n".join(chapter.title + "\n" + "\n".join(chapter.paragraphs) for chapter in book.chapters)


# --- EPUB ------------------------------------------------------------------------------------------------

def test_epub3_chapters_follow_the_nav_with_notes_scripts_and_images_left_out(tmp_path):
    book = read_book(write_epub(tmp_path / "voyage.epub", EPUB3_FILES))
    assert (book.title, book.author) == ("The Test Voyage", "Ada Writer")  # the editor is no author
    assert (book.cover, book.cover_type) == (PNG, "image/png")
    assert book.chapters == (
        # front matter before the first contents entry, titled by its h1 (which is not repeated)
        Chapter("The Test Voyage", ("For my crew.",)),
        # "Chapter 1" and "The Storm" headings are the title: not read twice; the interlude, which the
        # contents do not name, runs on in the chapter before it
        Chapter("Chapter 1: The Storm", ("The wind rose over the grey sea.", "She wrote [sic] in the log book.",
                                         "# 42 was the cabin.", "Line one line two.",
                                         "Between the chapters, the sea was calm.")),
        Chapter("Chapter 2", ("Morning came. It was 1st.",)),  # a linked superscript is a note marker
        Chapter("Chapter 3", ("Night fell.",)),  # cut at the anchor inside the same document
    )
    text = all_text(book)
    for hidden in ("FOOTNOTETEXT", "NOTESDOCUMENT", "SCRIPTTEXT", "STYLETEXT", "SVGTEXT", "MAPALT", "Contents",
                   "Start", "Notes"):
        assert hidden not in text


def test_epub2_chapters_follow_the_ncx_and_html_entities_are_read(tmp_path):
    book = read_book(write_epub(tmp_path / "tales.epub", EPUB2_FILES, opf="content.opf"))
    assert (book.title, book.author) == ("Old Tales", "Bea Author")
    assert (book.cover, book.cover_type) == (JPEG, "image/jpeg")
    assert book.chapters == (
        Chapter("The First Tale", ("Wait — what… really?", "A king [long ago] ruled.")),
        Chapter("The Second Tale", ("A queen ruled.",)),
        Chapter("Its Sequel", ("Then nobody ruled.",)),
    )
    text = all_text(book)
    for hidden in ("FOOTNOTETEXT", "POPUPTEXT", "CONTENTSPAGE", "SCRIPTTEXT", "COVERALT", "[1]"):
        assert hidden not in text


def test_an_epub_without_contents_makes_a_chapter_of_each_document_with_a_heading(tmp_path):
    files = dict(EPUB2_FILES)
    del files["toc.ncx"]
    files["content.opf"] = EPUB2_OPF.replace('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>',
                                             "")
    book = read_book(write_epub(tmp_path / "tales.epub", files, opf="content.opf"))
    assert [chapter.title for chapter in book.chapters] == ["The First Tale", "The Second Tale"]
    assert book.chapters[1].paragraphs == ("A queen ruled.", "Its Sequel", "Then nobody ruled.")


def test_epub_hrefs_differing_in_case_still_find_their_documents(tmp_path):
    files = dict(EPUB2_FILES)
    files["content.opf"] = EPUB2_OPF.replace('href="text/two.html"', 'href="Text/Two.html"')
    book = read_book(write_epub(tmp_path / "tales.epub", files, opf="content.opf"))
    assert [chapter.title for chapter in book.chapters] == ["The First Tale", "The Second Tale", "Its Sequel"]


def test_the_epub_script_parses_with_its_chapters_and_literal_brackets(tmp_path):
    book = read_book(write_epub(tmp_path / "voyage.epub", EPUB3_FILES))
    script = script_from_book(book)
    assert "She wrote \\[sic\\] in the log book." in script.split("\n")
    assert "\\# 42 was the cabin." in script.split("\n")
    assert [chapter.title for chapter in chapters_in(script)] == [chapter.title for chapter in book.chapters]
    spoken = [item.text for item in parse_script(script) if isinstance(item, SpeechItem)]
    assert "She wrote [sic] in the log book." in spoken  # a bracket is read, not taken for a tag
    assert "# 42 was the cabin." in spoken  # and a leading '#' is text, not a heading


# --- bad EPUBs -------------------------------------------------------------------------------------------

def assert_one_line_naming(path: Path, caught: pytest.ExceptionInfo, *words: str) -> None:
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message


def test_a_file_that_is_no_zip_is_refused_by_name(tmp_path):
    path = tmp_path / "fake.epub"
    path.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "not a valid EPUB (not a ZIP archive)")


def test_a_truncated_zip_is_refused_by_name(tmp_path):
    path = write_epub(tmp_path / "cut.epub", EPUB3_FILES)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "not a valid EPUB")


def test_a_damaged_entry_is_named(tmp_path):
    path = write_epub(tmp_path / "bad-crc.epub", EPUB3_FILES)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("OEBPS/Text/ch1.xhtml")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 5, start + 25):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "OEBPS/Text/ch1.xhtml", "damaged")


@pytest.mark.parametrize("remove, expected", [
    ("META-INF/container.xml", "META-INF/container.xml is missing"),
    ("OEBPS/content.opf", "OEBPS/content.opf named by META-INF/container.xml is missing"),
    ("OEBPS/Text/ch1.xhtml", "OEBPS/Text/ch1.xhtml is missing"),
])
def test_missing_pieces_are_named(tmp_path, remove, expected):
    path = tmp_path / "holes.epub"
    files = {name: data for name, data in EPUB3_FILES.items() if name != remove}
    write_epub(path, files, opf=None if remove == "META-INF/container.xml" else "OEBPS/content.opf")
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, expected)


def test_malformed_xhtml_names_the_entry(tmp_path):
    files = dict(EPUB3_FILES)
    files["OEBPS/Text/chapter two.xhtml"] = xhtml("<p>Unclosed <i>italic</p>")
    path = write_epub(tmp_path / "broken.epub", files)
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "OEBPS/Text/chapter two.xhtml", "not well-formed")


ENCRYPTION = """<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
    xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
  <enc:EncryptionMethod Algorithm="{algorithm}"/>
  <enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData>
</enc:EncryptedData></encryption>"""


@pytest.mark.parametrize("extra", [
    {"META-INF/rights.xml": "<rights/>"},
    {"META-INF/encryption.xml": ENCRYPTION.replace("{algorithm}", "http://www.w3.org/2001/04/xmlenc#aes128-cbc")
     .replace("{uri}", "OEBPS/Text/ch1.xhtml")},
])
def test_drm_is_refused_by_name(tmp_path, extra):
    path = write_epub(tmp_path / "locked.epub", {**EPUB3_FILES, **extra})
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "is protected by DRM and cannot be imported")


def test_obfuscated_fonts_are_no_drm(tmp_path):
    encryption = (ENCRYPTION.replace("{algorithm}", "http://www.idpf.org/2008/embedding")
                  .replace("{uri}", "OEBPS/Fonts/serif.otf"))
    path = write_epub(tmp_path / "fonts.epub", {**EPUB3_FILES, "META-INF/encryption.xml": encryption,
                                                "OEBPS/Fonts/serif.otf": b"\x00font"})
    assert len(read_book(path).chapters) == 4


def test_an_href_climbing_out_of_the_archive_is_refused(tmp_path):
    files = dict(EPUB3_FILES)
    files["OEBPS/content.opf"] = EPUB3_OPF.replace('href="Text/ch1.xhtml"', 'href="../../../etc/passwd"')
    path = write_epub(tmp_path / "escape.epub", files)
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "outside the archive")


def test_an_epub_without_words_contains_no_text(tmp_path):
    files = {name: data for name, data in EPUB3_FILES.items() if not name.startswith("OEBPS/Text/")}
    opf = EPUB3_OPF
    for page in ("front", "ch1", "interlude", "notes", "ch2"):
        files[f"OEBPS/Text/{page}.xhtml"] = xhtml('<p><img src="../Images/map.png" alt="A map"/></p><p>* * *</p>')
    files["OEBPS/Text/chapter two.xhtml"] = files.pop("OEBPS/Text/ch2.xhtml")
    path = write_epub(tmp_path / "pictures.epub", {**files, "OEBPS/content.opf": opf})
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "contains no text")


@pytest.mark.parametrize("name", ["book.pdf", "book"])
def test_an_unknown_kind_of_file_is_refused_by_name(tmp_path, name):
    path = tmp_path / name
    path.write_text("Chapter 1\n\nText.\n")
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, ".epub, .md, .markdown or .txt")


@pytest.mark.parametrize("name", ["missing.epub", "missing.txt", "missing.md"])
def test_a_missing_file_is_named(tmp_path, name):
    with pytest.raises(BookImportError) as caught:
        read_book(tmp_path / name)
    assert_one_line_naming(tmp_path / name, caught, "cannot be read")


# --- plain text ------------------------------------------------------------------------------------------

def test_plain_text_headings_start_chapters_and_lines_join_into_paragraphs(tmp_path):
    path = tmp_path / "tale.txt"
    path.write_text(
        "A Tale\nby Someone\n\n"
        "Prologue\n\nIt began\nquietly.\n\n"
        "Part One\n\n"
        "CHAPTER IV.\n\nThe first\nline ran on.\n\nA second paragraph.\n\n"
        "Chapter 3: The Storm\n\nPart one of the plan was simple.\n\n* * *\n\nRain.\n\n"
        "CHAPTER V.\nDown the Hole\n\nFalling.\n\n"
        "Epilogue\n\nThe end.\n", encoding="utf-8")
    book = read_book(path)
    assert book.chapters == (
        Chapter("Front matter", ("A Tale by Someone",)),
        Chapter("Prologue", ("It began quietly.",)),
        # "Part One" has no text of its own before the next heading: no empty chapter is made of it
        Chapter("CHAPTER IV", ("The first line ran on.", "A second paragraph.")),
        Chapter("Chapter 3: The Storm", ("Part one of the plan was simple.", "Rain.")),  # prose, not a heading
        Chapter("CHAPTER V: Down the Hole", ("Falling.",)),
        Chapter("Epilogue", ("The end.",)),
    )


def test_plain_text_without_headings_is_one_chapter_named_after_the_file(tmp_path):
    path = tmp_path / "my_short_story.txt"
    path.write_bytes("\ufeffOne line\nand its rest.\r\n\r\nAnother.\r\n".encode())
    assert read_book(path) == Book(None, None, (Chapter("my short story", ("One line and its rest.", "Another.")),))


def test_project_gutenberg_text_keeps_only_the_book_and_its_header_details(tmp_path):
    path = tmp_path / "pg.txt"
    path.write_text(
        "The Project Gutenberg eBook of Small Book\n\nTitle: Small Book\n\nAuthor: Ann Author\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK SMALL BOOK ***\n\n"
        "Contents\n\nCHAPTER I.     Beginnings\nCHAPTER II.    Endings\nCHAPTER III.   Afterwards\n\n"
        "CHAPTER I.\nBeginnings\n\nShe began.\n\nCHAPTER II.\nEndings\n\nShe ended.\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK SMALL BOOK ***\n\nLICENSETEXT applies.\n", encoding="utf-8")
    book = read_book(path)
    assert (book.title, book.author) == ("Small Book", "Ann Author")
    assert book.chapters == (
        Chapter("Front matter", ("Contents",)),  # the list of chapters itself is not read out
        Chapter("CHAPTER I: Beginnings", ("She began.",)),
        Chapter("CHAPTER II: Endings", ("She ended.",)),
    )


def test_utf16_text_with_its_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes("Chapter 1\n\nCafé au lait.\n".encode("utf-16"))
    assert read_book(path).chapters == (Chapter("Chapter 1", ("Café au lait.",)),)


def test_text_in_an_unknown_encoding_is_refused_by_name(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Chapter 1\n\nCafé au lait.\n".encode("latin-1"))
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "unknown text encoding", "UTF-8")


def test_an_empty_text_file_contains_no_text(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n\n   \n* * *\n")
    with pytest.raises(BookImportError) as caught:
        read_book(path)
    assert_one_line_naming(path, caught, "contains no text")


# --- Markdown --------------------------------------------------------------------------------------------

def test_markdown_book_title_then_chapters_with_markup_stripped(tmp_path):
    path = tmp_path / "novel.md"
    path.write_text(
        "---\ntitle: \"The Real Title\"\nauthor:\n  - Ann One\n  - Bo Two\ntags: [x]\n---\n\n"
        "# The Heading Title\n\nA foreword with *emphasis*.\n\n"
        "## One\n\nSome **bold**, _slanted_ and `code` words, a [link](http://x.org \"t\") and snake_case_name."
        "![a picture](pic.png)\n<span class=\"x\">Tagged</span> text &amp; more.[^1]\n\n"
        "```python\nprint('CODEBLOCK')\n```\n\n### A subheading\n\n- first item\n- second item\n\n"
        "> quoted line\n> continues\n\n[^1]: FOOTNOTETEXT here.\n\n"
        "## Two\n\nA line \\*with\\* escapes and \\[brackets\\].\n\n---\n\nAfter a rule.\n",
        encoding="utf-8")
    book = read_book(path)
    assert (book.title, book.author) == ("The Real Title", "Ann One, Bo Two")
    assert book.chapters == (
        Chapter("The Heading Title", ("A foreword with emphasis.",)),
        Chapter("One", ("Some bold, slanted and code words, a link and snake_case_name. Tagged text & more.",
                        "A subheading", "first item", "second item", "quoted line continues")),
        Chapter("Two", ("A line *with* escapes and [brackets].", "After a rule.")),
    )


def test_markdown_uses_the_heading_level_that_repeats(tmp_path):
    path = tmp_path / "levels.md"
    path.write_text("Intro text.\n\n## First\n\nAlpha.\n\n### Detail\n\nBeta.\n\n## Second\n\nGamma.\n")
    book = read_book(path)
    assert book.title is None
    assert [(chapter.title, chapter.paragraphs) for chapter in book.chapters] == [
        ("Front matter", ("Intro text.",)), ("First", ("Alpha.", "Detail", "Beta.")), ("Second", ("Gamma.",))]


def test_markdown_with_several_top_headings_and_setext(tmp_path):
    path = tmp_path / "parts.md"
    path.write_text("# Part A\n\nOne.\n\nPart B\n======\n\nTwo.\n\n## Inner\n\nThree.\n")
    assert [(chapter.title, chapter.paragraphs) for chapter in read_book(path).chapters] == [
        ("Part A", ("One.",)), ("Part B", ("Two.", "Inner", "Three."))]


def test_markdown_without_headings_is_one_chapter(tmp_path):
    path = tmp_path / "notes.markdown"
    path.write_text("Just *one* paragraph.\n")
    assert read_book(path) == Book(None, None, (Chapter("notes", ("Just one paragraph.",)),))


# --- the script ------------------------------------------------------------------------------------------

def test_the_script_has_a_heading_per_chapter_and_escapes_what_the_grammar_would_misread():
    book = Book("T", "A", (Chapter("One [draft]", ("Plain text.", "#hashtag starts this", "a [b] c \\ d")),
                           Chapter("Two", ("End.",))))
    assert script_from_book(book) == ("# One \\[draft\\]\nPlain text.\n\\#hashtag starts this\na \\[b\\] c \\ d\n"
                                      "\n# Two\nEnd.\n")
    spoken = [item.text for item in parse_script(script_from_book(book)) if isinstance(item, SpeechItem)]
    assert spoken == ["One [draft]", "Plain text.", "#hashtag starts this", "a [b] c \\ d", "Two", "End."]


def test_a_backslash_before_a_bracket_survives_the_grammar():
    script = script_from_book(Book(None, None, (Chapter("C", ("path C:\\[x] here",)),)))
    assert [item.text for item in parse_script(script)][1] == "path C:\\[x] here"


def test_long_paragraphs_split_at_sentence_ends():
    sentences = [f"Sentence number {n} says a few more words here." for n in range(12)]
    lines = split_paragraph(" ".join(sentences), 120)
    assert len(lines) > 1
    assert all(len(line) <= 120 and line.endswith(".") for line in lines)
    assert " ".join(lines) == " ".join(sentences)


def test_abbreviations_and_initials_are_no_sentence_ends():
    text = "Mr. Darcy met J. R. Smith at noon. " * 3 + "They talked."
    lines = split_paragraph(text, 40)
    assert all(line.startswith(("Mr. Darcy", "They")) for line in lines)


def test_closing_quotes_stay_with_their_sentence():
    # '"Run!"' ends no sentence (the dialogue tag follows), '"Now?" he asked.' does
    assert split_paragraph('"Run!" she said. "Now?" he asked. ' * 4, 40) == ['"Run!" she said. "Now?" he asked.'] * 4
    assert split_paragraph('He asked, "Now?" Then he ran. ' * 2, 40) == ['He asked, "Now?" Then he ran.'] * 2


def test_a_long_sentence_breaks_at_a_clause_mark_or_space_and_a_long_word_stays_whole():
    lines = split_paragraph("first part of a long sentence, and then the second part goes on and on", 50)
    assert lines == ["first part of a long sentence,", "and then the second part goes on and on"]
    word = "x" * 70
    assert split_paragraph(f"tiny {word} end of it", 40) == ["tiny", word, "end of it"]


def test_cjk_sentences_split_without_spaces():
    text = "这是第一句话。" * 6
    lines = split_paragraph(text, 15)
    assert lines == ["这是第一句话。这是第一句话。"] * 3


WORDS = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=60).flatmap(
        lambda word: st.sampled_from([word, word + ".", word + ",", f"[{word}]", "#" + word, word + "!\""])),
    min_size=1, max_size=120)


@settings(max_examples=300, deadline=None)
@given(words=WORDS, max_chars=st.integers(min_value=20, max_value=200))
def test_split_lines_fit_and_give_back_the_words(words, max_chars):
    paragraph = " ".join(words)
    lines = split_paragraph(paragraph, max_chars)
    assert " ".join(lines).split() == words  # nothing lost, nothing split inside a word
    script = script_from_book(Book(None, None, (Chapter("C", (paragraph,)),)), max_chars=max_chars)
    body = script.rstrip("\n").split("\n")[1:]
    assert len(body) == len(lines)
    for line in body:  # the limit holds for the line as written, escapes included
        assert len(line) <= max_chars or " " not in line, (line, max_chars)


# --- speed -----------------------------------------------------------------------------------------------

def test_a_100000_word_book_imports_quickly(tmp_path, capsys):
    words = "the quick brown fox jumps over a lazy dog while rain falls".split()
    # 40 chapters of 50 paragraphs of 50 words, sentences of 17 words: paragraphs short enough to be one line
    # and long ones to split, as in a novel
    paragraph = " ".join(f"{words[i % len(words)]}{'.' if i % 17 == 16 else ''}" for i in range(50))
    files = dict(EPUB3_FILES)
    chapters = 40
    manifest = "".join(f'<item id="g{n}" href="Text/g{n}.xhtml" media-type="application/xhtml+xml"/>'
                       for n in range(chapters))
    spine = "".join(f'<itemref idref="g{n}"/>' for n in range(chapters))
    nav = "".join(f'<li><a href="../Text/g{n}.xhtml">Chapter {n + 1}</a></li>' for n in range(chapters))
    files["OEBPS/content.opf"] = EPUB3_OPF.replace("</manifest>", manifest + "</manifest>").replace(
        "</spine>", spine + "</spine>")
    files["OEBPS/nav/nav.xhtml"] = EPUB3_NAV.replace("</ol></nav>\n<nav", nav + "</ol></nav>\n<nav")
    for n in range(chapters):
        files[f"OEBPS/Text/g{n}.xhtml"] = xhtml(f"<h1>Chapter {n + 1}</h1>" + f"<p>{paragraph}</p>" * 50)
    path = write_epub(tmp_path / "big.epub", files)
    text = tmp_path / "big.txt"
    text.write_text("".join(f"Chapter {n + 1}\n\n" + f"{paragraph}\n\n" * 50 for n in range(chapters)))

    for source in (path, text):
        started = time.perf_counter()
        book = read_book(source)
        script = script_from_book(book)
        seconds = time.perf_counter() - started
        count = sum(len(p.split()) for chapter in book.chapters for p in chapter.paragraphs)
        assert count >= 100_000
        assert len(chapters_in(script)) >= chapters
        with capsys.disabled():
            print(f"\n{source.suffix}: {count} words imported and scripted in {seconds:.2f} s")
