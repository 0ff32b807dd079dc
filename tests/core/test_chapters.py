"""Chapter headings in the script grammar, and the chapters they make."""

from __future__ import annotations

import pytest

from studio.core.chapters import OPENING_TITLE, chapters_in, find_chapter, heading_title
from studio.core.tag_editing import place_tag
from studio.core.tags import ScriptError, SpeechItem, parse_script, parse_script_tolerant

BOOK = """[voice: Narrator]
For my mother.
# Chapter 1: The Storm
The storm had been building since noon.
[Whispering] Nobody went out.

# [Sad] Chapter 2
It ended.
"""


def test_a_heading_is_spoken_as_its_title_and_its_tags_apply():
    items = parse_script("# [Whispering] Chapter 1: Night\nThe house slept.")
    assert [(i.line, i.column, i.text, i.emotion) for i in items if isinstance(i, SpeechItem)] == [
        (1, 16, "Chapter 1: Night", "Whispering"), (2, 1, "The house slept.", "Whispering")]


@pytest.mark.parametrize("line, spoken", [
    ("#hashtag", "#hashtag"),  # no space after '#': text, as before
    ("\\# 1 in the charts", "# 1 in the charts"),  # escaped at the start of a line: a literal '#'
    ("Item # 4", "Item # 4"),  # '#' later in a line is text
])
def test_hash_signs_that_are_not_headings_are_spoken(line, spoken):
    assert [i.text for i in parse_script(line)] == [spoken]
    assert chapters_in(line) == []


@pytest.mark.parametrize("line", ["# ", "  #\t[pause 1s]", "# [Sad]"])
def test_a_heading_without_words_is_an_error_at_its_hash(line):
    with pytest.raises(ScriptError) as caught:
        parse_script("Before.\n" + line)
    assert (caught.value.line, caught.value.column) == (2, line.index("#") + 1)
    assert "chapter heading needs a title" in str(caught.value)


def test_chapters_run_from_heading_to_heading_with_the_opening_first():
    chapters = chapters_in(BOOK)
    assert [(c.number, c.title, c.first_line, c.last_line) for c in chapters] == [
        (1, OPENING_TITLE, 1, 2), (2, "Chapter 1: The Storm", 3, 6), (3, "Chapter 2", 7, 9)]
    # Every line belongs to exactly one chapter.
    lines = BOOK.split("\n")
    assert [sum(c.holds(n) for c in chapters) for n in range(1, len(lines) + 1)] == [1] * len(lines)


def test_no_opening_chapter_when_only_tags_come_before_the_first_heading():
    chapters = chapters_in("[voice: Narrator]\n\n# One\nA.\n# Two\nB.")
    assert [(c.title, c.first_line) for c in chapters] == [("One", 3), ("Two", 5)]


def test_a_broken_heading_still_names_its_chapter():
    result = parse_script_tolerant("# The [End\nText.")
    assert result.errors and result.errors[0].line == 1
    assert heading_title("# The [End") == "The [End"
    assert [c.title for c in chapters_in("# The [End\nText.")] == ["The [End"]


def test_find_chapter_by_number_or_title_and_errors_name_the_choices():
    chapters = chapters_in(BOOK)
    assert find_chapter(chapters, "2").title == "Chapter 1: The Storm"
    assert find_chapter(chapters, "  chapter 2 ").number == 3
    with pytest.raises(ValueError, match="there is no chapter 9: the script has 3"):
        find_chapter(chapters, "9")
    with pytest.raises(ValueError, match="'Chapter 1: The Storm'"):
        find_chapter(chapters, "Epilogue")
    with pytest.raises(ValueError, match="no chapters"):
        find_chapter([], "1")


def test_placing_an_emotion_on_a_heading_keeps_it_a_heading():
    assert place_tag("# The Storm", 0, "[Angry]") == "# [Angry] The Storm"
    assert [c.title for c in chapters_in(place_tag("# The Storm", 0, "[Angry]"))] == ["The Storm"]
