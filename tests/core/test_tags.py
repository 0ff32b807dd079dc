"""The script tag grammar: one test per rule and per error case of the foundation issue."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.tags import (
    PauseItem,
    ScriptError,
    SpeechItem,
    decode_script_bytes,
    parse_script,
    parse_script_tolerant,
)


def as_json(text: str) -> list[dict]:
    return [item.to_json() for item in parse_script(text)]


def speech(line, text, emotion=None, directives=None, voice=None):
    return {
        "kind": "speech",
        "line": line,
        "text": text,
        "emotion": emotion,
        "directives": directives or {},
        "voice": voice,
    }


def pause(line, seconds):
    return {"kind": "pause", "line": line, "seconds": seconds}


def error_of(text: str) -> ScriptError:
    with pytest.raises(ScriptError) as info:
        parse_script(text)
    return info.value


# --- plain text, lines, whitespace ----------------------------------------------------------------


def test_plain_line_is_one_speech_segment():
    assert as_json("Hello world.") == [speech(1, "Hello world.")]


def test_empty_script_has_no_items():
    assert as_json("") == []
    assert as_json("\n\n   \n") == []


def test_each_line_is_its_own_segment_and_line_numbers_count_blank_lines():
    assert as_json("One.\n\nThree.") == [speech(1, "One."), speech(3, "Three.")]


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_crlf_and_cr_are_normalised(newline):
    assert as_json(f"One.{newline}Two.{newline}[x]Three.") == [
        speech(1, "One."),
        speech(2, "Two."),
        speech(3, "Three.", "x"),
    ]


def test_whitespace_runs_collapse_and_ends_are_trimmed():
    assert as_json("  Hello \t  big   world.  ") == [speech(1, "Hello big world.")]


def test_escaped_brackets_are_literal_text():
    assert as_json(r"An \[aside\] here.") == [speech(1, "An [aside] here.")]


def test_backslash_before_other_characters_is_kept():
    assert as_json(r"a\b \n") == [speech(1, r"a\b \n")]


def test_escaped_brackets_inside_a_tag_are_literal():
    assert as_json(r"[style: odd \[x\]]Hi") == [speech(1, "Hi", directives={"style": "odd [x]"})]


# --- emotion tags ---------------------------------------------------------------------------------


def test_emotion_tag_is_kept_as_written_but_trimmed():
    assert as_json("[  Whispering ] Come closer.") == [speech(1, "Come closer.", "Whispering")]


def test_emotion_persists_across_lines_until_changed():
    assert as_json("[Angry]One.\nTwo.\n[Soft]Three.") == [
        speech(1, "One.", "Angry"),
        speech(2, "Two.", "Angry"),
        speech(3, "Three.", "Soft"),
    ]


@pytest.mark.parametrize("tag", ["[neutral]", "[Neutral]", "[ NEUTRAL ]", "[emotion: neutral]"])
def test_neutral_resets_emotion(tag):
    assert as_json(f"[Sad]One. {tag} Two.") == [speech(1, "One.", "Sad"), speech(1, "Two.", None)]


@pytest.mark.parametrize("key", ["emotion", "Emotion", "mood", " MOOD "])
def test_emotion_and_mood_directives_set_the_emotion(key):
    assert as_json(f"[{key}:  Very happy ]Yes!") == [speech(1, "Yes!", "Very happy")]


def test_every_tag_cuts_even_when_state_is_unchanged():
    assert as_json("[Happy]One [Happy] two") == [speech(1, "One", "Happy"), speech(1, "two", "Happy")]


def test_tag_at_end_of_line_changes_state_for_the_next_line():
    assert as_json("One [Sad]\nTwo") == [speech(1, "One"), speech(2, "Two", "Sad")]


def test_speech_item_column_points_at_first_character():
    (first, second) = parse_script("  Hi [x]  there")
    assert (first.column, second.column) == (3, 11)


# --- directives and voice -------------------------------------------------------------------------


def test_directive_key_lowercased_value_trimmed_and_kept():
    assert as_json("[ Language :  German ]Hallo.") == [speech(1, "Hallo.", directives={"language": "German"})]


def test_directives_persist_and_accumulate_and_overwrite():
    assert as_json("[speed: slow]A\n[pitch: low]B\n[speed: fast]C") == [
        speech(1, "A", directives={"speed": "slow"}),
        speech(2, "B", directives={"speed": "slow", "pitch": "low"}),
        speech(3, "C", directives={"speed": "fast", "pitch": "low"}),
    ]


def test_directive_value_may_contain_colons():
    assert as_json("[note: a: b]x") == [speech(1, "x", directives={"note": "a: b"})]


def test_voice_switches_and_persists():
    assert as_json("[voice: Narrator]Once.\nUpon.\n[Voice:  Wolf ]Grr.") == [
        speech(1, "Once.", voice="Narrator"),
        speech(2, "Upon.", voice="Narrator"),
        speech(3, "Grr.", voice="Wolf"),
    ]


def test_items_do_not_share_directive_dicts():
    items = parse_script("[a: 1]x [b: 2]y")
    assert items[0].directives == {"a": "1"}
    assert items[1].directives == {"a": "1", "b": "2"}


# --- pauses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "seconds"),
    [
        ("[pause]", 0.8),
        ("[PAUSE]", 0.8),
        ("[ Pause ]", 0.8),
        ("[pause 1.5s]", 1.5),
        ("[pause 1.5]", 1.5),
        ("[pause: 1.5]", 1.5),
        ("[Pause: 2s]", 2.0),
        ("[pause 500ms]", 0.5),
        ("[pause 500 ms]", 0.5),
        ("[pause .25]", 0.25),
        ("[pause 10]", 10.0),
        ("[pause 3 seconds]", 3.0),
    ],
)
def test_pause_lengths(tag, seconds):
    assert as_json(f"A {tag} B") == [speech(1, "A"), pause(1, seconds), speech(1, "B")]


def test_pause_does_not_change_delivery_state():
    assert as_json("[Sad]A [pause] B") == [speech(1, "A", "Sad"), pause(1, 0.8), speech(1, "B", "Sad")]


def test_pause_only_line_has_its_line_number():
    assert as_json("A\n[pause 2s]\nB") == [speech(1, "A"), pause(2, 2.0), speech(3, "B")]


def test_words_starting_with_pause_are_emotions():
    assert as_json("[Paused]A") == [speech(1, "A", "Paused")]


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("[pause abc]", "not a number"),
        ("[pause 1.5x]", "not a number"),
        ("[pause: soon]", "not a number"),
        ("[pause 0]", "more than 0"),
        ("[pause -1]", "more than 0"),
        ("[pause 0ms]", "more than 0"),
        ("[pause 10.5s]", "longer than 10"),
        ("[pause 20000ms]", "longer than 10"),
        ("[pause nan]", "not a number"),
        ("[pause inf]", "not a number"),
    ],
)
def test_bad_pause_lengths_are_errors_at_the_tag(tag, reason):
    err = error_of(f"Hello.\nSay {tag} now")
    assert (err.line, err.column) == (2, 5)
    assert reason in err.reason


# --- errors ---------------------------------------------------------------------------------------


def test_unclosed_bracket_reports_its_position():
    err = error_of("fine\nab [Whisper")
    assert (err.line, err.column) == (2, 4)
    assert "unclosed" in err.reason


def test_stray_closing_bracket():
    err = error_of("ab ] c")
    assert (err.line, err.column) == (1, 4)
    assert "stray" in err.reason


def test_bracket_inside_tag_reports_the_inner_bracket():
    err = error_of("x [a [b]]")
    assert (err.line, err.column) == (1, 6)
    assert "inside a tag" in err.reason


@pytest.mark.parametrize("tag", ["[]", "[   ]", "[\t]"])
def test_empty_tag(tag):
    err = error_of(f"ab {tag}")
    assert (err.line, err.column) == (1, 4)
    assert "empty tag" in err.reason


@pytest.mark.parametrize(("tag", "reason"), [("[: x]", "no key"), ("[voice:]", "no value"), ("[ : ]", "no key")])
def test_empty_key_or_value(tag, reason):
    err = error_of(tag)
    assert (err.line, err.column) == (1, 1)
    assert reason in err.reason


def test_tag_cannot_span_lines():
    err = error_of("[Whis\nper]")
    assert (err.line, err.column) == (1, 1)


def test_error_message_format():
    err = error_of("\n\n  ]")
    assert str(err).startswith("line 3, column 3: ")


def test_columns_count_characters_not_bytes():
    err = error_of("héllo ]")
    assert err.column == 7


# --- decoding and the tolerant parse ---------------------------------------------------------------


def test_decode_rejects_bad_utf8_with_byte_offset_and_position():
    with pytest.raises(ScriptError) as info:
        decode_script_bytes(b"ok\r\nab\xffcd")
    assert "byte offset 6" in info.value.reason
    assert (info.value.line, info.value.column) == (2, 3)


def test_decode_drops_a_utf8_bom():
    assert decode_script_bytes(b"\xef\xbb\xbfHi") == "Hi"


def test_tolerant_parse_collects_every_broken_line_and_keeps_state():
    result = parse_script_tolerant("[Sad]A\nB [x\nC ]\n[Happy D")
    assert [(e.line, e.column) for e in result.errors] == [(2, 3), (3, 3), (4, 1)]
    assert [(i.line, i.text, i.emotion) for i in result.items] == [(1, "A", "Sad")]


def test_tolerant_parse_reports_tag_spans():
    result = parse_script_tolerant("a [Sad] b\n[pause 1s]")
    assert [(t.line, t.column, t.end_column, t.content) for t in result.tags] == [
        (1, 3, 7, "Sad"),
        (2, 1, 10, "pause 1s"),
    ]


def test_item_types():
    items = parse_script("a [pause] b")
    assert isinstance(items[0], SpeechItem) and isinstance(items[1], PauseItem)


# --- property tests -------------------------------------------------------------------------------

_script_alphabet = st.sampled_from(list("ab [](){}:\\\n\r\t .-0123456789smpauseNEUTRALvoice") + ["é", "\u2028", "\x00"])


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_script_alphabet, max_size=80))
def test_parser_raises_only_its_own_error(text):
    try:
        items = parse_script(text)
    except ScriptError as exc:
        assert exc.line >= 1 and exc.column >= 1
        return
    for item in items:
        assert item.line >= 1
        if isinstance(item, SpeechItem):
            assert item.text and item.text == item.text.strip() and "  " not in item.text
        else:
            assert 0 < item.seconds <= 10


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_parser_raises_only_its_own_error_on_any_text(text):
    try:
        parse_script(text)
    except ScriptError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_decoder_raises_only_its_own_error(data):
    try:
        decode_script_bytes(data)
    except ScriptError as exc:
        assert "byte offset" in exc.reason


_plain_word = st.text(alphabet="abcdefgh", min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Sad", "Happy", None]), _plain_word), min_size=1, max_size=8))
def test_generated_tagged_scripts_round_trip(parts):
    # A script built from (emotion tag, word) pairs parses back to those words with the right state.
    text = " ".join((f"[{emotion}] " if emotion else "") + word for emotion, word in parts)
    expected, emotion_now, pending = [], None, ""
    for emotion, word in parts:
        if emotion:
            if pending:
                expected.append((pending.strip(), emotion_now))
            pending, emotion_now = "", emotion
        pending += " " + word
    expected.append((pending.strip(), emotion_now))
    assert [(i.text, i.emotion) for i in parse_script(text)] == expected


def test_analyse_lines_carries_state_and_isolates_broken_lines():
    from studio.core.tags import analyse_lines

    lines = analyse_lines("[Sad][voice: Ann]One.\nTwo [x\n[pause]Three.")
    assert [(a.line, a.state_before.emotion, a.state_before.voice) for a in lines] == [
        (1, None, None), (2, "Sad", "Ann"), (3, "Sad", "Ann")
    ]
    assert lines[1].error is not None and lines[1].items == []
    assert [t.content for t in lines[0].tags] == ["Sad", "voice: Ann"]


@pytest.mark.parametrize(
    ("content", "kind"),
    [("Sad", "emotion"), ("pause 2s", "pause"), ("Pause: 1", "pause"), ("voice: A", "voice"),
     ("mood: x", "emotion"), ("pace: slow", "directive"), ("Paused", "emotion")],
)
def test_tag_kind(content, kind):
    from studio.core.tags import tag_kind

    assert tag_kind(content) == kind


# --- placing and removing tags: an emotion replaces the emotion there, spacing stays clean -----------------

from studio.core.tag_editing import apply_fix, place_tag, remove_tag  # noqa: E402 (grouped with their tests)
from studio.core.tags import KnownEmotions, TagWarning, analyse_lines  # noqa: E402

KNOWN = KnownEmotions(["Whispering", "Soft", "Happy", "Excited", "Sad", "Angry", "Shouting", "Serious",
                       "Relieved", "Fearful"])


@pytest.mark.parametrize(
    ("line", "column", "tag", "expected"),
    [
        # At the start of a line (a palette drop on a clip, a palette shortcut): one space before the text.
        ("One.", 0, "[Whispering]", "[Whispering] One."),
        ("", 0, "[Sad]", "[Sad]"),
        ("   ", 0, "[Sad]", "[Sad]"),
        ("  One.", 0, "[Sad]", "[Sad] One."),
        # An emotion replaces the line's own leading emotion, never stacks on it.
        ("[Whispering] One.", 0, "[Angry]", "[Angry] One."),
        ("[Whispering]One.", 0, "[Angry]", "[Angry] One."),
        ("[emotion: Sad] One.", 0, "[Angry]", "[Angry] One."),
        ("[Angry][Whispering]Two.", 0, "[Sad]", "[Sad] Two."),
        ("[voice: Ann] [Sad] Hi", 0, "[Angry]", "[voice: Ann] [Angry] Hi"),
        ("[voice: Ann]Hi", 0, "[Angry]", "[Angry] [voice: Ann] Hi"),
        ("[Sad] Hello [Soft] there", 0, "[Angry]", "[Angry] Hello [Soft] there"),
        # At a word (a drop into the script): the same, for the tags right before that word.
        ("Come over here.", 5, "[Soft]", "Come [Soft] over here."),
        ("Hello [Sad] there", 12, "[Angry]", "Hello [Angry] there"),
        ("Hello [Sad][pause 1s]there", 21, "[Angry]", "Hello [Angry] [pause 1s] there"),
        ("Hi", 2, "[Sad]", "Hi [Sad]"),
        # Other kinds: a directive replaces the same key, a voice the voice; a pause adds to what is there.
        ("[pace: slow]x", 0, "[pace: fast]", "[pace: fast] x"),
        ("[pace: slow] [Sad] x", 0, "[Angry]", "[pace: slow] [Angry] x"),
        ("[voice: Ann] x", 0, "[voice: Bob]", "[voice: Bob] x"),
        ("[pause] Hi", 0, "[pause 1s]", "[pause 1s] [pause] Hi"),
        # A broken line: only whole tags before the text count; the broken part is left as it is.
        ("[Sad Hello", 0, "[Angry]", "[Angry] [Sad Hello"),
        ("[Sad] Hello [oops", 0, "[Angry]", "[Angry] Hello [oops"),
        # An escaped bracket is text: a column inside "\[" is moved after it, never splits it.
        ("a\\[b", 2, "[Sad]", "a\\[ [Sad] b"),
    ],
)
def test_place_tag(line, column, tag, expected):
    assert place_tag(line, column, tag) == expected


@pytest.mark.parametrize(
    ("line", "column", "tag_text", "expected"),
    [
        ("[Sad]One [pace: slow]two", 9, "[pace: slow]", "[Sad]One two"),
        ("[Sad] One two", 0, "[Sad]", "One two"),
        ("One two [Sad]", 8, "[Sad]", "One two"),
        ("One  [Sad]  two", 5, "[Sad]", "One two"),
        ("One[Sad]two", 3, "[Sad]", "One two"),  # the tag kept the words apart; so does a space now
        ("[voice: Ann][Sad]Hi", 12, "[Sad]", "[voice: Ann] Hi"),
        ("[Sad]", 0, "[Sad]", ""),
    ],
)
def test_remove_tag_leaves_no_double_or_edge_space(line, column, tag_text, expected):
    assert remove_tag(line, column, tag_text) == expected


def test_remove_tag_refuses_a_tag_that_is_not_there():
    with pytest.raises(ValueError, match="no tag"):
        remove_tag("[Sad] One", 1, "[Sad]")
    with pytest.raises(ValueError, match="no tag"):
        remove_tag("[Sad] One", 0, "[Angry]")


_WORDS = st.sampled_from(["Hi", "there", "a", "b."])
_TAGS = st.sampled_from(["[Sad]", "[Angry]", "[emotion: Soft]", "[voice: Ann]", "[pause]", "[pace: slow]"])
_SPACE = st.sampled_from(["", " ", "  "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_SPACE, st.one_of(_WORDS, _TAGS)), max_size=8), st.sampled_from(["[Happy]", "[pause]"]))
def test_placing_at_the_start_keeps_the_speech_and_spaces_the_tags_once(parts, tag):
    line = "".join(space + part for space, part in parts)
    new = place_tag(line, 0, tag)
    # Whitespace that is touched is never spoken: every segment keeps its text.
    assert [i.text for i in parse_script(new) if isinstance(i, SpeechItem)] == [
        i.text for i in parse_script(line) if isinstance(i, SpeechItem)]
    leading = re.match(r"(?:\[[^\[\]]*\]\s*)*", new).group(0)
    tags = re.findall(r"\[[^\[\]]*\]", leading)
    rest = new[len(leading):]
    # The tags before the text: one space between them, one before the text, none at the line's ends.
    assert leading == " ".join(tags) + (" " if rest else "")
    assert new == new.strip()
    emotions = [t for t in tags if t in ("[Sad]", "[Angry]", "[emotion: Soft]", "[Happy]")]
    if tag == "[Happy]":
        assert emotions == ["[Happy]"]
    pauses_before = re.match(r"(?:\[[^\[\]]*\]\s*)*", line.lstrip()).group(0).count("[pause]")
    assert tags.count(tag) == (1 if tag == "[Happy]" else pauses_before + 1)


def test_apply_fix_replaces_and_refuses_stale_text():
    assert apply_fix("[Fearfl] Run!", 0, "[Fearfl]", "[Fearful]") == "[Fearful] Run!"
    assert apply_fix("[Angry][Sad] Run!", 0, "[Angry]", "") == "[Sad] Run!"
    with pytest.raises(ValueError, match="no longer"):
        apply_fix("[Fearful] Run!", 0, "[Fearfl]", "[Fearful]")


# --- unknown emotions and their nearest known name ---------------------------------------------------------


def test_unknown_emotion_is_warned_with_the_closest_known_name_and_a_fix():
    lines = analyse_lines("Calm.\n  [Fearfl] Run!\n[emotion: Hapy] x\n[fearful] y\n[Neutral] z", KNOWN)
    assert [w for a in lines for w in a.warnings] == [
        TagWarning(2, 3, "unknown emotion 'Fearfl': did you mean Fearful?", "[Fearfl]", "[Fearful]"),
        TagWarning(3, 1, "unknown emotion 'Hapy': did you mean Happy?", "[emotion: Hapy]", "[emotion: Happy]"),
    ]
    assert str(lines[1].warnings[0]) == "line 2, column 3: unknown emotion 'Fearfl': did you mean Fearful?"
    # A warning does not change what is rendered: the emotion is still passed on as written.
    assert lines[1].items[0].emotion == "Fearfl"


def test_an_unknown_emotion_with_no_close_name_is_warned_without_a_fix():
    (line,) = analyse_lines("[Very angry] Go.", KNOWN)
    (warning,) = line.warnings
    assert warning.new is None and warning.old == "[Very angry]"
    assert warning.reason.startswith("unknown emotion 'Very angry': not in the palette")


def test_without_known_emotions_nothing_is_warned():
    assert analyse_lines("[Fearfl] Run!")[0].warnings == []


def test_known_emotions_match_case_and_spacing_and_include_neutral():
    known = KnownEmotions(["Very  angry"])
    assert "very angry" in known and "NEUTRAL" in known and "Sad" not in known
    assert known.closest("Very angy") == "Very angry" and known.closest("Hungry") is None


def test_stacked_emotions_before_the_text_are_warned_and_the_fix_removes_the_overridden_one():
    (line,) = analyse_lines("[Angry][Whispering]Two. [Sad] three", KNOWN)
    assert line.warnings == [TagWarning(1, 1, "[Angry] is overridden by [Whispering] before any text: "
                                              "only [Whispering] applies", "[Angry]", "")]
    assert apply_fix("[Angry][Whispering]Two. [Sad] three", 0, "[Angry]", "") == "[Whispering] Two. [Sad] three"


# --- a broken line keeps what parsed before its error ------------------------------------------------------


def test_a_broken_line_keeps_its_own_voice_and_emotion_before_the_error():
    lines = analyse_lines("[voice: Ann] Hi.\n[voice: Bob][Sad] Hello [oops\nAfter.", KNOWN)
    broken = lines[1]
    assert str(broken.error) == "line 2, column 25: unclosed '[': the tag has no ']' on this line"
    assert broken.items == [] and broken.tags == []  # it renders nothing ...
    assert [(i.text, i.voice, i.emotion) for i in broken.valid_items] == [("Hello", "Bob", "Sad")]
    assert [t.content for t in broken.valid_tags] == ["voice: Bob", "Sad"]
    assert (broken.reached.voice, broken.reached.emotion) == ("Bob", "Sad")
    # ... and changes nothing for the lines after it.
    assert (lines[2].state_before.voice, lines[2].state_before.emotion) == ("Ann", None)


def test_a_tag_inside_a_tag_keeps_the_part_before_the_outer_tag():
    (line,) = analyse_lines("[voice: Bob] ok [Sad] [a[b] c")
    assert str(line.error) == "line 1, column 25: '[' inside a tag (write \\[ for a literal bracket)"
    assert [(i.text, i.emotion) for i in line.valid_items] == [("ok", None)]
    assert (line.reached.voice, line.reached.emotion) == ("Bob", "Sad")
