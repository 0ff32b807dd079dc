"""The per-line analysis kept current edit by edit must always equal a fresh analysis of the whole script."""

from __future__ import annotations

import random

from studio.core.script import ScriptModel
from studio.core.tags import KnownEmotions, analyse_lines
from studio.session.script_analysis import ScriptAnalysis

KNOWN = KnownEmotions(["Angry", "Sad", "Whispering", "Fearful"])
PIECES = ["[Angry]", "[Sad]", "[Fearfl]", "[voice: Mira]", "[voice: Bob]", "[pause 1s]", "[Whispering]", "Hello ",
          "there. ", "[neutral]", "[", "]", "[pace: slow]", "\n", "\n", "a", " "]


def what_matters(analysis, line_number: int):
    """Everything a reader takes from a line's analysis, line numbers excepted (stale after inserts above)."""
    items = [(type(i).__name__, i.column, getattr(i, "text", None), getattr(i, "emotion", None),
              getattr(i, "voice", None), dict(getattr(i, "directives", {})), getattr(i, "seconds", None))
             for i in analysis.items]
    return (analysis.state_before, analysis.reached, items, [(t.column, t.content) for t in analysis.tags],
            (analysis.error.column, analysis.error.reason) if analysis.error else None,
            [(w.column, w.reason, w.old, w.new) for w in analysis.warnings], len(analysis.valid_items))


def test_incremental_analysis_equals_a_fresh_one_through_random_edits():
    rng = random.Random(7)
    model = ScriptModel("[Angry]One.\n[voice: Mira]Two.\nThree.\n[Sad]Four.")
    analysis = ScriptAnalysis()
    analysis.reset([line.text for line in model.lines()], KNOWN)
    reparsed = []
    model.subscribe(lambda change: reparsed.append(
        len(analysis.apply(change, [line.text for line in model.lines()]))))
    for _ in range(400):
        text = model.text
        position = rng.randint(0, len(text))
        removed = text[position : position + rng.choice([0, 0, 1, 3, 12])]
        inserted = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3)))
        model.replace(position, removed, inserted)
        fresh = analyse_lines(model.text, KNOWN)
        assert len(analysis) == len(fresh)
        for number, (kept, new) in enumerate(zip(analysis.lines, fresh, strict=True), start=1):
            assert what_matters(kept, number) == what_matters(new, number), (number, model.text)
    # The point of it: most edits re-parse a line or two, not the script.
    assert sorted(reparsed)[len(reparsed) // 2] <= 3


def test_an_edit_that_changes_a_carried_state_reparses_until_it_settles():
    model = ScriptModel("\n".join(["[Angry]One."] + ["More."] * 50 + ["[Sad]Stop.", "After."]))
    analysis = ScriptAnalysis()
    analysis.reset([line.text for line in model.lines()], None)
    changed = []
    model.subscribe(lambda change: changed.append(analysis.apply(change, [line.text for line in model.lines()])))
    model.replace(1, "Angry", "Sad")  # the carried emotion changes for every line up to [Sad]Stop.
    assert changed[-1] == range(0, 52)
    assert all(a.state_before.emotion == "Sad" for a in analysis.lines[1:52])
    model.replace(model.position(30, 0), "", "x")  # typing inside one line: that line only
    assert changed[-1] == range(30, 31)


def test_the_running_totals_match_a_count_of_the_lines():
    rng = random.Random(3)
    model = ScriptModel("[Angry]One. [pause 1s] Two.\n[\nThree.")
    analysis = ScriptAnalysis()
    analysis.reset([line.text for line in model.lines()], None)
    model.subscribe(lambda change: analysis.apply(change, [line.text for line in model.lines()]))
    for _ in range(200):
        text = model.text
        position = rng.randint(0, len(text))
        model.replace(position, text[position : position + rng.choice([0, 1, 5])],
                      "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 2))))
        fresh = analyse_lines(model.text)
        assert analysis.speech_segments == sum(1 for a in fresh for i in a.items if i.kind == "speech")
        assert analysis.pauses == sum(1 for a in fresh for i in a.items if i.kind == "pause")
        assert analysis.broken_lines == sum(1 for a in fresh if a.error is not None)
        first = analysis.first_error()
        assert (first[0] if first else None) == next((n for n, a in enumerate(fresh) if a.error), None)
