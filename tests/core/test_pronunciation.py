"""Pronunciation entries: what they match, what the model reads, which lines an edit touches."""

from __future__ import annotations

import pytest

from studio.core.pronunciation import Lexicon, Pronunciation, check_entry, lines_affected


@pytest.mark.parametrize("entry, text, spoken", [
    (Pronunciation("SQL", "sequel"), "SQL and sql, not SQLite.", "sequel and sequel, not SQLite."),
    (Pronunciation("SQL", "sequel", match_case=True), "SQL and sql.", "sequel and sql."),
    (Pronunciation("Al", "Al-ah"), "Al met Alan.", "Al-ah met Alan."),  # whole words only
    (Pronunciation("Al", "Al-ah", whole_word=False), "Al met Alan.", "Al-ah met Al-ahan."),
    (Pronunciation("C++", "C plus plus"), "C++ beats C++11.", "C plus plus beats C++11."),
    (Pronunciation("Zoë", "Zo-ee"), "ZOË and Zoë.", "Zo-ee and Zo-ee."),
])
def test_matching_rules(entry, text, spoken):
    assert Lexicon([entry]).spoken(text) == spoken


def test_the_longest_term_wins_whatever_the_order():
    for entries in ([Pronunciation("New York", "Noo York"), Pronunciation("New York City", "the city")],
                    [Pronunciation("New York City", "the city"), Pronunciation("New York", "Noo York")]):
        assert Lexicon(entries).spoken("New York City is not New York state.") == \
            "the city is not Noo York state."


def test_entries_limited_to_a_voice_or_a_language():
    lexicon = Lexicon([Pronunciation("Paris", "Pah-ree", language="French"),
                       Pronunciation("Bob", "Robert", voice="Ann")])
    assert lexicon.spoken("Paris, Bob.", voice="Ann", language="french") == "Pah-ree, Robert."
    assert lexicon.spoken("Paris, Bob.", voice="Bob", language="english") == "Paris, Bob."
    assert [(s, e, entry.term) for s, e, entry in lexicon.matches("Paris, Bob.")] == [(0, 5, "Paris"), (7, 10, "Bob")]


@pytest.mark.parametrize("entry, problem", [
    (Pronunciation(" ", "x"), "the term is empty"), (Pronunciation("x", ""), "what to say instead is empty"),
    (Pronunciation("a\nb", "x"), "one line each"),
])
def test_unusable_entries_are_named(entry, problem):
    assert problem in check_entry(entry)
    assert not Lexicon([entry])  # and left out of a render


def test_an_edit_touches_exactly_the_lines_that_contain_the_term():
    lines = ["Nguyen came.", "Rain.", "nguyen left.", "Nguyenville.", "SQL."]
    before = Lexicon([Pronunciation("Nguyen", "Win"), Pronunciation("SQL", "sequel")])
    after = Lexicon([Pronunciation("Nguyen", "Nwin"), Pronunciation("SQL", "sequel")])
    assert lines_affected(lines, before, after) == [0, 2]
    assert lines_affected(lines, before, Lexicon([Pronunciation("Nguyen", "Win")])) == [4]  # SQL removed
    assert lines_affected(lines, before, before) == []
