"""The script model: edits keep line identity and state where they should, and report what changed."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.project import LineState
from studio.core.script import ScriptModel


def model_with_events(text, states=None):
    model = ScriptModel(text, states)
    events = []
    model.subscribe(events.append)
    return model, events


def test_text_round_trip_and_states_from_the_project():
    model = ScriptModel("a\nb\nc", {2: LineState(locked=True, take=2)})
    assert model.text == "a\nb\nc" and len(model) == 3
    assert model.line_states() == {2: LineState(True, 2)}


def test_typing_inside_a_line_keeps_its_identity():
    model, events = model_with_events("one\ntwo\nthree")
    ids = [line.id for line in model.lines()]
    model.replace(model.position(1, 3), "", "!")
    assert model.text == "one\ntwo!\nthree"
    assert [line.id for line in model.lines()] == ids
    assert (events[-1].kind, events[-1].first, events[-1].removed, events[-1].added) == ("text", 1, 1, 1)


def test_inserting_a_newline_splits_and_the_new_line_is_new():
    model = ScriptModel("one\ntwo", {2: LineState(locked=True)})
    ids = [line.id for line in model.lines()]
    model.replace(model.position(0, 1), "", "\n")
    assert model.text == "o\nne\ntwo"
    assert model.line(0).id == ids[0] and model.line(2).id == ids[1]
    assert model.line(1).id not in ids
    assert model.line_states() == {3: LineState(locked=True)}


def test_joining_lines_removes_the_second_line():
    model, events = model_with_events("ab\ncd\nef")
    model.replace(2, "\n", "")
    assert model.text == "abcd\nef" and len(model) == 2
    assert (events[-1].first, events[-1].removed, events[-1].added) == (0, 2, 1)


def test_replace_checks_the_removed_text():
    model = ScriptModel("abc")
    with pytest.raises(ValueError):
        model.replace(0, "x", "")


def test_move_line_carries_state():
    model, events = model_with_events("a\nb\nc", {1: LineState(take=3)})
    model.move_line(0, 2)
    assert model.text == "b\nc\na"
    assert model.line_states() == {3: LineState(take=3)}
    assert (events[-1].first, events[-1].removed) == (0, 3)


def test_set_state_emits_only_on_change():
    model, events = model_with_events("a\nb")
    model.set_state(1, locked=True)
    model.set_state(1, locked=True)
    assert [e.kind for e in events] == ["state"]
    assert model.line(1).state == LineState(locked=True)


def test_insert_in_line_clamps_the_column():
    model = ScriptModel("hello\nworld")
    model.insert_in_line(1, 99, "[Sad]")
    assert model.text == "hello\nworld[Sad]"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab\n", max_size=30), st.data())
def test_random_replacements_match_plain_string_edits(text, data):
    model = ScriptModel(text)
    position = data.draw(st.integers(0, len(text)))
    length = data.draw(st.integers(0, len(text) - position))
    inserted = data.draw(st.text(alphabet="xy\n", max_size=5))
    model.replace(position, text[position:position + length], inserted)
    assert model.text == text[:position] + inserted + text[position + length:]
    assert len({line.id for line in model.lines()}) == len(model)


def test_lines_untouched_by_an_edit_keep_ids_in_a_long_script():
    lines = [f"line {i}" for i in range(50)]
    model = ScriptModel("\n".join(lines))
    ids = [line.id for line in model.lines()]
    rng = random.Random(1)
    target = rng.randrange(50)
    model.replace(model.position(target, 0), lines[target], "edited\nsplit")
    new_ids = [line.id for line in model.lines()]
    assert new_ids[:target + 1] == ids[:target + 1]
    assert new_ids[target + 2:] == ids[target + 1:]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab\n", max_size=20), st.text(alphabet="ab\n", max_size=20))
def test_diff_texts_gives_an_edit_that_turns_old_into_new(old, new):
    from studio.core.script import diff_texts

    position, removed, inserted = diff_texts(old, new)
    assert old[position:position + len(removed)] == removed
    assert old[:position] + inserted + old[position + len(removed):] == new
    if old != new:
        assert removed or inserted


def test_line_edit_is_the_smallest_edit_and_undoing_it_restores_the_line_exactly():
    model, events = model_with_events("One.\n[Angry][Whispering]Two.\nThree.", {2: LineState(locked=True)})
    ids = [line.id for line in model.lines()]
    position, removed, inserted = model.line_edit(1, "[Sad] Two.")
    assert (position, removed, inserted) == (6, "Angry][Whispering]", "Sad] ")
    model.replace(position, removed, inserted)
    assert model.text == "One.\n[Sad] Two.\nThree."
    assert [line.id for line in model.lines()] == ids and model.line_states() == {2: LineState(locked=True)}
    assert [(e.first, e.removed, e.added) for e in events] == [(1, 1, 1)]
    model.replace(position, inserted, removed)
    assert model.text == "One.\n[Angry][Whispering]Two.\nThree."
    assert model.line_edit(1, model.line(1).text) == (model.position(1, 0) + len(model.line(1).text), "", "")
    with pytest.raises(ValueError, match="line break"):
        model.line_edit(0, "a\nb")
