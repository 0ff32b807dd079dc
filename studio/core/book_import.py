"""Book files -> a studio script with chapters: the book model, plain text and Markdown, and the script writer.

`read_book` reads an EPUB (see `book_epub`), a Markdown or a plain-text file into a `Book`: its title, author,
cover and chapters of plain-text paragraphs. `script_from_book` writes the book as a script: a heading line
"# Title" per chapter (the grammar's chapter mark, see `tags.heading_end`), then one line per paragraph, long
paragraphs split at sentence ends so each line stays a comfortable length for the models.

Every problem with the input is a `BookImportError` whose message is one line naming the file.
"""

from __future__ import annotations

import codecs
import html
import re
from pathlib import Path

from studio.core.book_model import (  # noqa: F401 - Book, Chapter and the error are this module's API too
    FRONT_MATTER_TITLE,
    Book,
    BookImportError,
    Chapter,
    clean_text,
    finish_book,
    has_words,
    title_key,
)
from studio.core.limits import SCRIPT_LIMIT, TooLargeError, read_limited
from studio.core.tags import ScriptError, decode_script_bytes, normalise_newlines


def read_book(path: Path) -> Book:
    """The book in `path`, by its suffix: .epub, .md / .markdown or .txt."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".epub":
        from studio.core.book_epub import read_epub  # only when needed: XML parsing and zip handling

        return read_epub(path)
    if suffix in (".md", ".markdown"):
        return _read_markdown(path)
    if suffix == ".txt":
        return _read_plain_text(path)
    kind = f"a '{suffix}' file" if suffix else "a file without a suffix"
    raise BookImportError(f"{path}: cannot import {kind}; a book must be .epub, .md, .markdown or .txt")


def _read_text_file(path: Path) -> str:
    try:
        data = read_limited(path, SCRIPT_LIMIT, what="book")
    except TooLargeError as exc:
        raise BookImportError(str(exc)) from None
    except OSError as exc:
        raise BookImportError(f"{path} cannot be read ({exc.strerror or exc})") from None
    # Windows editors save "Unicode" text as UTF-16 with a byte order mark; that is unambiguous, so accept it.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(codecs.BOM_UTF32_LE):
        try:
            return normalise_newlines(data.decode("utf-16"))
        except UnicodeDecodeError as exc:
            raise BookImportError(f"{path} is not valid UTF-16 text ({exc.reason})") from None
    try:
        return normalise_newlines(decode_script_bytes(data))
    except ScriptError as exc:
        # Guessing a legacy code page would silently garble names and quotes; ask for UTF-8 instead.
        raise BookImportError(f"{path} is in an unknown text encoding ({exc.reason}); "
                              "save it as UTF-8 and import it again") from None


def _title_from_stem(path: Path) -> str:
    return " ".join(path.stem.replace("_", " ").split()) or "Chapter 1"


# --- plain text -----------------------------------------------------------------------------------------

_NUMBER = (
    r"(?:\d{1,4}"
    r"|(?=[ivxlcdm])m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
    r"|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|seven|eight"
    r"|nine))?"
    r"|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen"
    r"|eighteen|nineteen)"
)
# "Chapter 3", "CHAPTER IV.", "Chapter 3: The Storm", "Chapter 3 The Storm", "Part One", "Prologue", "Epilogue".
# A title after the number without a separator must start with a capital and hold no sentence end, so a
# paragraph that merely begins "Part one of the plan" is no heading.
_TEXT_HEADING = re.compile(
    rf"(?:(?:chapter|chap\.|part|book)\s+{_NUMBER}\.?(?:\s*[:.\-–—]\s*\S.*|\s+[A-Z0-9\"'“‘][^.!?]{{0,60}})?"
    r"|(?:prologue|epilogue|preface|foreword|introduction|afterword|interlude)(?:\s*[:.\-–—]\s*\S.*)?)",
    re.IGNORECASE,
)
_GUTENBERG_START = re.compile(r"\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
_GUTENBERG_END = re.compile(r"\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
_HEADER_FIELD = re.compile(r"(Title|Author):\s*(\S.*)", re.IGNORECASE)


def _is_text_heading(line: str) -> bool:
    line = line.strip()
    # Matched without regard to case ("CHAPTER IV", "Chapter iv"), but a heading starts with a capital: a
    # lower-case line ("part two of it") is prose.
    return len(line) <= 100 and line[:1].isupper() and _TEXT_HEADING.fullmatch(line) is not None


def _gutenberg_body(lines: list[str]) -> tuple[list[str], str | None, str | None]:
    """The lines between Project Gutenberg's START and END markers, and the header's title and author."""
    start = next((i for i, line in enumerate(lines) if _GUTENBERG_START.match(line.strip())), None)
    if start is None:
        return lines, None, None
    fields = {}
    for line in lines[:start]:
        match = _HEADER_FIELD.fullmatch(line.strip())
        if match:
            fields.setdefault(match.group(1).lower(), match.group(2))
    end = next((i for i in range(start + 1, len(lines)) if _GUTENBERG_END.match(lines[i].strip())), len(lines))
    return lines[start + 1:end], fields.get("title"), fields.get("author")


def _text_blocks(lines: list[str]) -> list[list[str]]:
    """Runs of non-blank lines (the paragraphs of a plain-text book)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _read_plain_text(path: Path) -> Book:
    lines, title, author = _gutenberg_body(_read_text_file(path).split("\n"))
    chapters: list[tuple[str, list[str]]] = []
    front: list[str] = []
    for block in _text_blocks(lines):
        # A heading stands alone, or is followed on the next line by the chapter's name ("CHAPTER I." then
        # "Down the Rabbit-Hole", as Project Gutenberg writes them).
        named = len(block) == 2 and len(block[1]) <= 80 and not block[1].endswith((".", ",", ";", "!", "?"))
        if _is_text_heading(block[0]) and (len(block) == 1 or named):
            heading = block[0].rstrip(". ")
            chapters.append((f"{heading}: {block[1]}" if named else heading, []))
        elif len(block) > 2 and all(_is_text_heading(line) for line in block):
            continue  # a table of contents: the chapters themselves follow
        else:
            (chapters[-1][1] if chapters else front).append(" ".join(block))
    if not chapters:
        return finish_book(path, title, author, [(title or _title_from_stem(path), front)])
    if any(has_words(text) for text in front):
        chapters.insert(0, (FRONT_MATTER_TITLE, front))
    return finish_book(path, title, author, chapters)


# --- Markdown -------------------------------------------------------------------------------------------

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+")
_QUOTE = re.compile(r"[ \t]{0,3}(?:>[ \t]?)+")
_LINK_DEFINITION = re.compile(r" {0,3}\[[^\]]+\]:\s*\S")
_FOOTNOTE_DEFINITION = re.compile(r" {0,3}\[\^[^\]]+\]:")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_IMAGE = re.compile(r"!\[[^\]]*\](?:\((?:[^()]|\([^)]*\))*\)|\[[^\]]*\])")
_FOOTNOTE_REF = re.compile(r"\[\^[^\]]+\]")
_LINK = re.compile(r"\[([^\]]*)\](?:\((?:[^()]|\([^)]*\))*\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^>\s]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_STRONG_STAR = re.compile(r"(\*{1,3})(?=\S)(.+?)(?<=\S)\1")
_STRONG_UNDERSCORE = re.compile(r"(?<![\w\\])(_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_PROTECTED = 0xE000  # escaped characters hide in the private use area while markup is removed


def _protect(text: str) -> str:
    return "".join(chr(_PROTECTED + ord(char)) if char in "\\`*_[]()<>!~&#" else char for char in text)


def _unprotect(text: str) -> str:
    return re.sub("[\ue000-\ue07f]", lambda m: chr(ord(m.group()) - _PROTECTED), text)


def markdown_inline_text(text: str) -> str:
    """Markdown inline text as plain text: emphasis and code marks, links (their text kept), images, footnote
    references and HTML tags removed; backslash escapes and entities resolved."""
    text = _MD_ESCAPE.sub(lambda m: _protect(m.group(1)), text)
    text = _CODE_SPAN.sub(lambda m: _protect(m.group(2).strip()), text)  # code is read as written
    text = _IMAGE.sub("", text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub("", text)
    text = _HTML_TAG.sub("", text)
    for pattern in (_STRONG_STAR, _STRONG_UNDERSCORE, _STRIKE):
        previous = None
        while previous != text:  # nested emphasis ("***a** b*") comes off one layer at a time
            previous, text = text, pattern.sub(lambda m: m.group(m.lastindex), text)
    return clean_text(html.unescape(_unprotect(text)))


def _front_matter(lines: list[str]) -> tuple[dict[str, str], int]:
    """YAML front matter's title and author (simple `key: value` lines and `- item` lists), and where the
    body starts."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return {}, 0
    fields: dict[str, list[str]] = {}
    key = None
    for line in lines[1:end]:
        match = re.fullmatch(r"([A-Za-z_][\w-]*):\s*(.*)", line.strip()) if not line[:1].isspace() else None
        if match:
            key = match.group(1).lower()
            value = match.group(2).strip()
            if value.startswith("[") and value.endswith("]"):
                fields[key] = [item.strip() for item in value[1:-1].split(",")]
            else:
                fields[key] = [value] if value else []
        elif key and line.strip().startswith("- "):
            fields[key].append(line.strip()[2:])
    meta = {}
    for name in ("title", "author"):
        values = [value.strip().strip("\"'") for value in fields.get(name, [])]
        if any(values):
            meta[name] = ", ".join(value for value in values if value)
    return meta, end + 1


def _markdown_blocks(lines: list[str]) -> list[tuple[int, str]]:
    """(heading level, text) per block in order; level 0 is a paragraph. Code blocks are dropped."""
    blocks: list[tuple[int, str]] = []
    paragraph: list[str] = []
    fence = None
    in_footnote = False

    def flush() -> None:
        if paragraph:
            blocks.append((0, " ".join(paragraph)))
            paragraph.clear()

    for line in lines:
        if fence:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        opening = _FENCE.match(line)
        if opening:
            flush()
            fence = opening.group(1)
            continue
        if not line.strip():
            flush()
            in_footnote = False
            continue
        if in_footnote:
            continue
        quote = _QUOTE.match(line)
        if quote:
            line = line[quote.end():]
            if not line.strip():
                flush()
                continue
        heading = _ATX.fullmatch(line)
        setext = _SETEXT.fullmatch(line) if paragraph and not quote else None
        if heading:
            flush()
            blocks.append((len(heading.group(1)), heading.group(2) or ""))
        elif setext:
            blocks.append((1 if setext.group(1)[0] == "=" else 2, " ".join(paragraph)))
            paragraph.clear()
        elif _RULE.fullmatch(line) or _LINK_DEFINITION.match(line):
            flush()
        elif _FOOTNOTE_DEFINITION.match(line):
            flush()
            in_footnote = True  # a footnote's text is not read inline, as in an EPUB
        elif line.lstrip().startswith("|"):  # a table row: its cells, one after another
            flush()
            blocks.append((0, ", ".join(cell.strip() for cell in line.strip().strip("|").split("|"))))
        elif _LIST_ITEM.match(line):
            flush()
            paragraph.append(line[_LIST_ITEM.match(line).end():].strip())
        else:
            paragraph.append(line.strip())
    flush()
    return [(level, markdown_inline_text(text)) for level, text in blocks]


def _read_markdown(path: Path) -> Book:
    lines = _read_text_file(path).split("\n")
    meta, body_start = _front_matter(lines)
    blocks = _markdown_blocks(_COMMENT.sub("", "\n".join(lines[body_start:])).split("\n"))
    title, author = meta.get("title"), meta.get("author")
    levels = [level for level, _text in blocks if level]
    first_heading = next((i for i, (level, _text) in enumerate(blocks) if level), None)
    level_one = levels.count(1)
    if level_one == 1 and first_heading is not None and blocks[first_heading][0] == 1 and len(levels) > 1:
        # "# Book title" at the top, then "##" chapters: the h1 names the book, the next level the chapters.
        book_heading = blocks.pop(first_heading)[1]
        title = title or book_heading
        levels.remove(1)
        chapter_level = min(levels)
        front_title = book_heading or FRONT_MATTER_TITLE
    else:
        repeated = [level for level in set(levels) if levels.count(level) > 1]
        chapter_level = 1 if level_one else min(repeated or levels or [1])
        front_title = FRONT_MATTER_TITLE
    chapters: list[tuple[str, list[str]]] = []
    front: list[str] = []
    for level, text in blocks:
        if level and level <= chapter_level:
            chapters.append((text, []))
        else:
            (chapters[-1][1] if chapters else front).append(text)
    if not chapters:
        if title is None and level_one == 1:
            title = next(text for level, text in blocks if level == 1)
        return finish_book(path, title, author, [(title or _title_from_stem(path), front)])
    if title is None and len(chapters) == 1 and level_one == 1:
        title = chapters[0][0]
    if any(has_words(text) for text in front):
        chapters.insert(0, (front_title, front))
    return finish_book(path, title, author, chapters)


# --- script writing -------------------------------------------------------------------------------------

# A sentence ends at . ! ? or … (and any closing quotes or brackets) before a space, or at CJK 。！？
# (which are followed by no space).
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?= )|[。！？]+[」』”’）)]*")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "prof", "jr", "sr", "vs", "etc", "e.g", "i.e", "mt"})
# Where a too-long sentence may break: at a space, or after a dash or CJK clause mark (no space follows those).
_BREAK = re.compile(r" |(?<=[—–，、；：])(?=[^ ])")
_CLAUSE_MARKS = ",;:–—，、；："


def _width(line: str) -> int:
    """Characters `line` takes in the script once escaped (see `_escape`)."""
    return len(line) + line.count("[") + line.count("]") + (1 if line.startswith("#") else 0)


def _sentences(text: str) -> list[tuple[str, str]]:
    """(separator before, sentence) pairs whose concatenation is `text`."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.group() == ".":  # "Mr. Darcy", "J. R. R. Tolkien": no sentence ends there
            word = text[text.rfind(" ", 0, match.start()) + 1:match.start()].lstrip("\"'(“‘")
            if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper() and word != "I"):
                continue
        if text[match.end():match.end() + 2].lstrip()[:1].islower():
            continue  # '"Run!" she said': the dialogue goes on
        if match.end() > start:
            chunk = text[start:match.end()]
            pieces.append((" " if chunk.startswith(" ") else "", chunk.strip()))
            start = match.end()
    if start < len(text):
        chunk = text[start:]
        pieces.append((" " if chunk.startswith(" ") else "", chunk.strip()))
    return [(sep, sentence) for sep, sentence in pieces if sentence]


def _split_sentence(sentence: str, max_chars: int) -> list[str]:
    """A sentence too long for one line, broken at the last space (preferring one after a clause mark in the
    line's second half) that keeps each piece within `max_chars`; a word longer than that stays whole."""
    pieces: list[str] = []
    pos, end = 0, len(sentence)
    while end - pos > max_chars or _width(sentence[pos:]) > max_chars:
        window = sentence[pos:pos + max_chars + 1]
        fitting = [m.start() for m in _BREAK.finditer(window)
                   if m.start() > 0 and _width(window[:m.start()].rstrip()) <= max_chars]
        clause = [cut for cut in fitting if cut >= max_chars // 2 and window[cut - 1] in _CLAUSE_MARKS]
        if clause or fitting:
            cut = pos + (clause or fitting)[-1]
        else:  # the first word alone is too long: keep it whole, up to the next break
            following = _BREAK.search(sentence, pos + 1)
            if following is None:
                break
            cut = following.start()
        pieces.append(sentence[pos:cut].rstrip())
        pos = cut
        while pos < end and sentence[pos] == " ":
            pos += 1
    if pos < end:
        pieces.append(sentence[pos:])
    return pieces or [sentence]


def split_paragraph(text: str, max_chars: int = 300) -> list[str]:
    """A paragraph as script lines of at most `max_chars` characters once escaped: whole sentences while they
    fit, a longer sentence at word breaks, never inside a word (so one word longer than the limit is a line
    of its own)."""
    text = clean_text(text)
    if _width(text) <= max_chars:
        return [text] if text else []
    lines: list[str] = []
    current = ""
    for sep, sentence in _sentences(text):
        candidate = current + sep + sentence if current else sentence
        if _width(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            lines.append(current)
        if _width(sentence) <= max_chars:
            current = sentence
        else:
            *full, current = _split_sentence(sentence, max_chars)
            lines.extend(full)
    if current:
        lines.append(current)
    return lines


def _escape_brackets(text: str) -> str:
    # "[" and "]" open and close tags in the script grammar; "\[" and "\]" are literal brackets. A backslash
    # already in the text needs nothing: the grammar reads "\\[" as a backslash and then a literal "[".
    return text.replace("[", "\\[").replace("]", "\\]")


def _escape(line: str) -> str:
    line = _escape_brackets(line)
    # A text line beginning with "#" would read as a chapter heading; the grammar reads "\#" at the start of
    # a line as a literal "#" (see tags.parse_line).
    return "\\" + line if line.startswith("#") else line


def script_from_book(book: Book, *, max_chars: int = 300) -> str:
    """The script for `book`: "# Title" per chapter, then its paragraphs, one line each (split at sentence ends
    when longer than `max_chars`), a blank line between chapters."""
    parts: list[str] = []
    for number, chapter in enumerate(book.chapters, start=1):
        title = _escape_brackets(clean_text(chapter.title) or f"Chapter {number}")
        lines = [f"# {title}"]
        for paragraph in chapter.paragraphs:
            lines.extend(_escape(line) for line in split_paragraph(paragraph, max_chars))
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else ""
