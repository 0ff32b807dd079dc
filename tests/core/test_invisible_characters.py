"""Characters nobody sees: line separators, zero-width and control characters (issue #13, item 10)."""

from __future__ import annotations

import json

import pytest

from studio.core.project import load_project
from studio.core.script import ScriptModel
from studio.core.tags import PauseItem, SpeechItem, analyse_lines, parse_script


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_unicode_line_separators_are_line_breaks_everywhere(separator):
    text = f"One.{separator}Two.{separator}Three."
    items = parse_script(text)
    assert [(i.line, i.text) for i in items] == [(1, "One."), (2, "Two."), (3, "Three.")]
    assert len(ScriptModel(text)) == 3 and len(analyse_lines(text)) == 3


def test_line_state_of_a_project_with_separators_stays_on_its_line(tmp_path):
    path = tmp_path / "sep.qtts"
    doc = {"schema_version": 1, "script": "One.\u2028Two.\u2029Three.", "lines": [{"line": 3, "locked": True}]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    project = load_project(path)  # line 3 exists: before, the file was "past the end of the script"
    model = ScriptModel(project.script, project.lines)
    assert [line.text for line in model.lines()] == ["One.", "Two.", "Three."]
    assert [line.state.locked for line in model.lines()] == [False, False, True]


@pytest.mark.parametrize("tag", ["[pau\u200bse 1s]", "[\u200bpause 1s]", "[pause\u200d 1s]", "[\ufeffpause: 1s]",
                                 "[pause 1s\u2060]"])
def test_zero_width_characters_do_not_turn_a_pause_into_an_emotion(tag):
    items = parse_script(f"Before. {tag} After.")
    assert [type(i) for i in items] == [SpeechItem, PauseItem, SpeechItem]
    assert items[1].seconds == 1.0 and items[2].emotion is None


def test_a_voice_tag_with_a_zero_width_space_names_the_voice():
    [item] = parse_script("[voice: \u200bNarrator]Hello.")
    assert item.voice == "Narrator"


@pytest.mark.parametrize("junk", ["\u200b\u200b", "\x00\x00", "\u200d \u200c", "\x00\u200b\x07"])
def test_segments_of_only_invisible_characters_are_not_speech(junk):
    items = parse_script(f"Hello. [Sad]{junk}[pause 0.5s]{junk}")
    assert [(type(i).__name__, getattr(i, "text", None)) for i in items] == [
        ("SpeechItem", "Hello."), ("PauseItem", None)
    ]


def test_control_characters_are_dropped_from_speech_but_joiners_in_words_stay():
    [item] = parse_script("Hel\x00lo \u0915\u094d\u200d\u0937 there")
    assert item.text == "Hello \u0915\u094d\u200d\u0937 there"
