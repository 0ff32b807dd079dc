"""EPUB 2 and 3 -> Book: metadata, cover, and chapters cut where the table of contents points.

The reading order is the OPF spine (items marked linear="no", such as pop-up notes, are skipped). Chapters
begin where the table of contents points (the EPUB 3 nav document, or the EPUB 2 NCX), at a document or at an
anchor inside one; a spine document the contents do not name belongs to the chapter before it. Text comes from
the block elements of each XHTML document; footnotes, note references, images, scripts and styles are left out,
since a listener cannot follow a note marker.

Nothing here trusts the archive: entries are found only by name inside it (a path that climbs out is refused),
each is read with a size limit, and every problem is a BookImportError naming the file and the entry.
"""

from __future__ import annotations

import html.entities
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from studio.core.book_model import (
    FRONT_MATTER_TITLE,
    Book,
    BookImportError,
    clean_text,
    finish_book,
    image_type,
    title_key,
)

_ENTRY_LIMIT = 64 * 1024 * 1024  # an XHTML chapter or an image; also what stops a ZIP bomb
_OPS = "{http://www.idpf.org/2007/ops}"
_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})
_HTML_SUFFIXES = (".xhtml", ".html", ".htm")
# Fonts may be "obfuscated" under encryption.xml without any DRM; encrypted text documents are DRM.
_TEXT_SUFFIXES = (".xhtml", ".html", ".htm", ".xml", ".ncx", ".opf")
_NOTE_TYPES = frozenset({"footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes", "noteref",
                         "doc-footnote", "doc-endnote", "doc-endnotes", "doc-noteref"})
_NOTE_CLASSES = frozenset({"footnote", "footnotes", "endnote", "endnotes", "noteref", "fnanchor", "footnote-ref"})
_DROPPED = frozenset({"head", "script", "style", "img", "svg", "math", "audio", "video", "object", "embed",
                      "iframe", "rt", "rp", "template", "noscript", "input", "button", "select", "textarea"})
_BLOCKS = frozenset({"html", "body", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt",
                     "dd", "blockquote", "section", "article", "header", "footer", "main", "nav", "aside", "table",
                     "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "figure", "figcaption", "pre", "hr",
                     "address", "center", "hgroup"})
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_NOTE_MARK = re.compile(r"\W*[0-9*†‡§¶]{1,3}\W*")  # "1", "[12]", "(3)", "*": what a note link reads
_ANCHOR = -1  # the level of a block that marks an anchor (an id the contents point at) instead of text


def read_epub(path: Path) -> Book:
    """The book in the EPUB `path`; BookImportError (one line naming the file) when it cannot be read."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise BookImportError(f"{path} is not a valid EPUB (not a ZIP archive)") from None
    except OSError as exc:
        raise BookImportError(f"{path} cannot be read ({exc.strerror or exc})") from None
    with archive:
        return _Epub(path, archive).read()


def _local(tag: object) -> str:
    """An element's name without its namespace ("{http://www.w3.org/1999/xhtml}p" -> "p"); "" for comments."""
    return tag.rpartition("}")[2].lower() if isinstance(tag, str) else ""


def _html_entities_as_numbers(data: bytes) -> bytes:
    # XHTML written with HTML's named entities (&nbsp; &mdash;) relies on a DTD that no XML parser here loads;
    # numeric references mean the same and parse without it. Unknown names are left for the parser to report.
    def number(match: re.Match[bytes]) -> bytes:
        name = match.group(1).decode("ascii")
        text = html.entities.html5.get(name + ";")
        if name in _XML_ENTITIES or text is None:
            return match.group()
        return "".join(f"&#{ord(char)};" for char in text).encode("ascii")

    return _ENTITY.sub(number, data) if b"&" in data else data


@dataclass
class _Document:
    """One spine document's text: (heading level or 0, text) blocks in order, and anchors as (_ANCHOR, id)."""

    name: str
    title: str = ""
    blocks: list[tuple[int, str]] = field(default_factory=list)


class _TextWalker:
    """Collects a document's paragraphs from its element tree: block elements break paragraphs, inline
    elements run together, notes and non-text elements are skipped."""

    def __init__(self, anchors: set[str]) -> None:
        self.anchors = anchors
        self.blocks: list[tuple[int, str]] = []
        self.pieces: list[str] = []
        self.heading = 0

    def flush(self) -> None:
        if self.pieces:
            text = clean_text("".join(self.pieces))
            self.pieces = []
            if text:
                self.blocks.append((self.heading, text))

    def walk(self, element: ET.Element) -> None:
        tag = _local(element.tag)
        if not tag or tag in _DROPPED or _is_note(element, tag):
            return
        ident = element.get("id")
        if ident is not None and ident in self.anchors:
            self.flush()
            self.blocks.append((_ANCHOR, ident))
        block = tag in _BLOCKS
        if block:
            self.flush()
        outer_heading = self.heading
        self.heading = _HEADINGS.get(tag, self.heading)
        if tag == "br":
            self.pieces.append(" ")
        if element.text:
            self.pieces.append(element.text)
        for child in element:
            self.walk(child)
            if child.tail:
                self.pieces.append(child.tail)
        if block:
            self.flush()
        self.heading = outer_heading


def _is_note(element: ET.Element, tag: str) -> bool:
    """Whether `element` is a footnote or endnote, or a reference to one (a marker a listener cannot follow)."""
    kinds = set(element.get(f"{_OPS}type", "").split()) | set(element.get("role", "").split())
    if kinds & _NOTE_TYPES or set(element.get("class", "").lower().split()) & _NOTE_CLASSES:
        return True
    if tag == "sup":  # a superscript holding a link is a note marker; "1<sup>st</sup>" is not
        return any(_local(child.tag) == "a" for child in element.iter())
    if tag == "a" and "#" in element.get("href", ""):  # an unmarked note link: "[1]", "*", "(2)"
        return _NOTE_MARK.fullmatch("".join(element.itertext()).strip()) is not None
    return False


class _Epub:
    """One EPUB archive being read; `read` returns the Book."""

    def __init__(self, path: Path, archive: zipfile.ZipFile) -> None:
        self.path = path
        self.archive = archive
        self.names = {info.filename for info in archive.infolist() if not info.is_dir()}
        # Hrefs that differ from the entry names only in case are common in books made on Windows or macOS.
        self.folded = {name.casefold(): name for name in self.names}

    # --- reading entries -----------------------------------------------------------------------------

    def fail(self, what: str) -> BookImportError:
        return BookImportError(f"{self.path}: {what}")

    def entry(self, name: str) -> str | None:
        return name if name in self.names else self.folded.get(name.casefold())

    def read_entry(self, name: str, what: str) -> bytes:
        found = self.entry(name)
        if found is None:
            raise self.fail(f"{what} {name} is missing from the archive")
        try:
            with self.archive.open(found) as stream:
                data = stream.read(_ENTRY_LIMIT + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise self.fail(f"{found} is damaged and cannot be read ({exc})") from None
        if len(data) > _ENTRY_LIMIT:
            raise self.fail(f"{found} is larger than {_ENTRY_LIMIT // (1024 * 1024)} MB")
        return data

    def parse(self, name: str, what: str) -> ET.Element:
        data = _html_entities_as_numbers(self.read_entry(name, what))
        try:
            return ET.fromstring(data)
        except ET.ParseError as exc:
            raise self.fail(f"{self.entry(name)} is not well-formed XML ({exc})") from None

    def resolve(self, base: str, href: str, what: str) -> tuple[str | None, str]:
        """The archive path an href names, relative to the folder `base`, and its fragment; (None, "") for a
        remote resource. A path that climbs out of the archive is refused."""
        parts = urlsplit(href.strip())
        if parts.scheme or parts.netloc:
            return None, ""
        target = unquote(parts.path)
        if target.startswith("/") or target.startswith("\\"):
            raise self.fail(f"{what} {href!r} is an absolute path, outside the archive")
        name = posixpath.normpath(posixpath.join(base, target)) if target else base
        if name == ".." or name.startswith("../"):
            raise self.fail(f"{what} {href!r} points outside the archive")
        return self.entry(name) or name, unquote(parts.fragment)

    # --- the package ---------------------------------------------------------------------------------

    def read(self) -> Book:
        if self.entry("META-INF/rights.xml"):
            raise BookImportError(f"{self.path} is protected by DRM and cannot be imported")
        if self.entry("META-INF/container.xml") is None:
            raise self.fail("META-INF/container.xml is missing, so this is no EPUB (or a damaged one)")
        opf_name = self.package_name()
        opf = self.parse(opf_name, "the package document")
        opf_dir = posixpath.dirname(opf_name)
        manifest = {}  # id -> (archive path or None, media type, properties)
        for item in _children(opf, "manifest", "item"):
            href = item.get("href")
            name = self.resolve(opf_dir, href, "the manifest item")[0] if href else None
            manifest[item.get("id", "")] = (name, item.get("media-type", ""), item.get("properties", "").split())
        spine = next((el for el in opf if _local(el.tag) == "spine"), None)
        if spine is None:
            raise self.fail(f"{opf_name} has no spine (the reading order)")
        skipped = self.table_of_contents_pages(opf, manifest, opf_dir)
        reading: list[str] = []
        for itemref in spine:
            if _local(itemref.tag) != "itemref" or itemref.get("linear", "yes").strip().lower() == "no":
                continue
            name, media_type, _properties = manifest.get(itemref.get("idref", ""), (None, "", []))
            if name and name not in skipped and name not in reading and (
                    media_type in _HTML_TYPES or name.lower().endswith(_HTML_SUFFIXES)):
                reading.append(name)
        self.refuse_drm(reading)
        toc = self.table_of_contents(spine, manifest)
        anchors: dict[str, set[str]] = {}
        for _title, name, fragment in toc:
            if fragment:
                anchors.setdefault(name, set()).add(fragment)
        documents = [self.document(name, anchors.get(name, set())) for name in reading]
        title, author = _metadata(opf)
        cover, cover_type = self.cover(opf, manifest)
        return finish_book(self.path, title, author, _chapters(documents, toc), cover, cover_type)

    def package_name(self) -> str:
        container = self.parse("META-INF/container.xml", "the container")
        rootfiles = [el for el in container.iter() if _local(el.tag) == "rootfile" and el.get("full-path")]
        preferred = [el for el in rootfiles if el.get("media-type") == "application/oebps-package+xml"]
        if not rootfiles:
            raise self.fail("META-INF/container.xml names no package document (OPF)")
        name = posixpath.normpath((preferred or rootfiles)[0].get("full-path", "").lstrip("/"))
        if name == ".." or name.startswith("../"):
            raise self.fail(f"META-INF/container.xml names a package outside the archive ({name})")
        if self.entry(name) is None:
            raise self.fail(f"the package document {name} named by META-INF/container.xml is missing")
        return self.entry(name) or name

    def refuse_drm(self, reading: list[str]) -> None:
        if self.entry("META-INF/encryption.xml") is None:
            return
        try:
            encryption = self.parse("META-INF/encryption.xml", "the encryption list")
        except BookImportError:  # unreadable, so what it protects is unknown: treat it as protected
            raise BookImportError(f"{self.path} is protected by DRM and cannot be imported") from None
        protected = set()
        for reference in encryption.iter():
            if _local(reference.tag) == "cipherreference" and reference.get("URI"):
                target = posixpath.normpath(unquote(reference.get("URI", "")).lstrip("/"))
                protected.add(self.entry(target) or target)
        if protected & set(reading) or any(name.lower().endswith(_TEXT_SUFFIXES) for name in protected):
            raise BookImportError(f"{self.path} is protected by DRM and cannot be imported")

    def table_of_contents_pages(self, opf: ET.Element, manifest: dict, opf_dir: str) -> set[str]:
        """Documents that only list the chapters (the nav document, a guide's "toc" page): not read aloud."""
        pages = {name for name, _type, properties in manifest.values() if name and "nav" in properties}
        for reference in _children(opf, "guide", "reference"):
            if reference.get("type", "").lower() == "toc" and reference.get("href"):
                name = self.resolve(opf_dir, reference.get("href", ""), "the guide entry")[0]
                if name:
                    pages.add(name)
        return pages

    def table_of_contents(self, spine: ET.Element, manifest: dict) -> list[tuple[str, str, str]]:
        """(title, document, fragment) per contents entry in order: the EPUB 3 nav, else the EPUB 2 NCX."""
        nav = next((name for name, _type, properties in manifest.values() if name and "nav" in properties), None)
        entries = self.nav_entries(nav) if nav and self.entry(nav) else []
        if not entries:
            ncx = manifest.get(spine.get("toc", ""), (None, "", []))[0] or next(
                (name for name, media_type, _p in manifest.values() if media_type == "application/x-dtbncx+xml"),
                None)
            entries = self.ncx_entries(ncx) if ncx and self.entry(ncx) else []
        return entries

    def nav_entries(self, nav: str) -> list[tuple[str, str, str]]:
        root = self.parse(nav, "the navigation document")
        navs = [el for el in root.iter() if _local(el.tag) == "nav"]
        toc = next((el for el in navs if "toc" in el.get(f"{_OPS}type", "").split()), navs[0] if navs else None)
        if toc is None:
            return []
        base = posixpath.dirname(nav)
        entries = []
        for link in toc.iter():
            if _local(link.tag) == "a" and link.get("href"):
                name, fragment = self.resolve(base, link.get("href", ""), f"{nav}: the contents entry")
                if name:
                    entries.append((clean_text("".join(link.itertext())), name, fragment))
        return entries

    def ncx_entries(self, ncx: str) -> list[tuple[str, str, str]]:
        root = self.parse(ncx, "the table of contents")
        base = posixpath.dirname(ncx)
        entries = []
        for point in root.iter():  # document order is the contents' order, nested points after their parent
            if _local(point.tag) != "navpoint":
                continue
            label = next((el for el in point if _local(el.tag) == "navlabel"), None)
            content = next((el for el in point if _local(el.tag) == "content" and el.get("src")), None)
            if content is not None:
                name, fragment = self.resolve(base, content.get("src", ""), f"{ncx}: the contents entry")
                title = clean_text("".join(label.itertext())) if label is not None else ""
                if name:
                    entries.append((title, name, fragment))
        return entries

    def document(self, name: str, anchors: set[str]) -> _Document:
        root = self.parse(name, "the spine document")
        found = self.entry(name) or name
        head_title = next((el for el in root.iter() if _local(el.tag) == "title"), None)
        walker = _TextWalker(anchors)
        try:
            walker.walk(root)
        except RecursionError:
            raise self.fail(f"{found} is nested too deeply to read") from None
        walker.flush()
        title = clean_text("".join(head_title.itertext())) if head_title is not None else ""
        return _Document(name, title, walker.blocks)

    def cover(self, opf: ET.Element, manifest: dict) -> tuple[bytes | None, str | None]:
        """The cover image (JPEG or PNG only, by its bytes) or (None, None); a missing cover is no error."""
        name = next((name for name, _type, properties in manifest.values() if name and "cover-image" in properties),
                    None)
        if name is None:
            meta = next((el for el in _children(opf, "metadata", "meta") if el.get("name") == "cover"), None)
            if meta is not None:
                cover_id = meta.get("content", "")
                name = manifest.get(cover_id, (None,))[0] or self.entry(cover_id)
        if name is None or self.entry(name) is None:
            return None, None
        try:
            data = self.read_entry(name, "the cover")
        except BookImportError:
            return None, None
        kind = image_type(data)
        return (data, kind) if kind is not None else (None, None)


def _children(root: ET.Element, parent: str, child: str) -> list[ET.Element]:
    """The `child` elements of the package's `parent` section (namespaces ignored; EPUB 2's nested
    dc-metadata included)."""
    section = next((el for el in root if _local(el.tag) == parent), None)
    return [] if section is None else [el for el in section.iter() if _local(el.tag) == child]


def _metadata(opf: ET.Element) -> tuple[str | None, str | None]:
    """The book's title and its authors (creators marked as authors when any are marked, else all)."""
    titles = [clean_text("".join(el.itertext())) for el in _children(opf, "metadata", "title")]
    creators = [el for el in _children(opf, "metadata", "creator") if clean_text("".join(el.itertext()))]
    roles = {}  # EPUB 3 states a creator's role in a <meta refines="#id" property="role">
    for meta in _children(opf, "metadata", "meta"):
        if meta.get("property") == "role" and meta.get("refines", "").startswith("#"):
            roles[meta.get("refines", "")[1:]] = clean_text(meta.text or "")
    marked = {id(el): el.get("{http://www.idpf.org/2007/opf}role") or el.get("role") or roles.get(el.get("id", ""))
              for el in creators}
    if any(marked.values()):
        creators = [el for el in creators if marked[id(el)] == "aut"] or creators
    authors = [clean_text("".join(el.itertext())) for el in creators]
    return next((title for title in titles if title), None), ", ".join(authors) or None


def _chapters(documents: list[_Document], toc: list[tuple[str, str, str]]) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) per chapter: cut where the contents point, in reading order."""
    where = {doc.name: index for index, doc in enumerate(documents)}
    starts: dict[tuple[int, int], str] = {}
    for title, name, fragment in toc:
        if name not in where:  # a linear="no" document, or the contents page itself
            continue
        doc = where[name]
        block = next((i for i, (level, text) in enumerate(documents[doc].blocks)
                      if level == _ANCHOR and text == fragment), 0) if fragment else 0
        # Two entries at one place ("Part One" and its first chapter): the first names the chapter, and the
        # second's heading is read as text.
        starts.setdefault((doc, block), title or _first_heading(documents[doc].blocks[block:]) or "")
    if not starts:  # no usable contents: each document with a heading starts a chapter
        for index, doc in enumerate(documents):
            heading = _first_heading(doc.blocks)
            if heading or index == 0:
                starts[(index, 0)] = heading or doc.title or FRONT_MATTER_TITLE
    chapters: list[tuple[str, list[tuple[int, str]]]] = []
    front: list[tuple[int, str]] = []
    for index, doc in enumerate(documents):
        for position, (level, text) in enumerate(doc.blocks):
            if (index, position) in starts:
                chapters.append((starts[(index, position)], []))
            if level != _ANCHOR:
                (chapters[-1][1] if chapters else front).append((level, text))
    if front:  # kept only if more than its title is said (finish_book drops chapters left empty)
        front_title = _first_heading(front) or next((doc.title for doc in documents if doc.title), "")
        chapters.insert(0, (front_title or FRONT_MATTER_TITLE, front))
    return [(title, _without_title(title, blocks)) for title, blocks in chapters]


def _first_heading(blocks: list[tuple[int, str]]) -> str | None:
    return next((text for level, text in blocks if level in (1, 2)), None)


def _without_title(title: str, blocks: list[tuple[int, str]]) -> list[str]:
    """A chapter's paragraphs without headings that repeat its title: the script's heading already says it.
    A heading equal to the title goes wherever it is; the headings opening the chapter go when they are part
    of the title ("Chapter 1" then "The Storm" under the title "Chapter 1: The Storm")."""
    key = title_key(title)
    paragraphs = []
    opening = True
    for level, text in blocks:
        heading_key = title_key(text) if level else None
        if heading_key is not None and key and (heading_key == key or (opening and heading_key in key)):
            continue
        opening = opening and level > 0
        paragraphs.append(text)
    return paragraphs
