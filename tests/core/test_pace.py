"""`[pace: ...]` in the script grammar: its values, its errors at line:column, and `normal` clearing it."""

from __future__ import annotations

import pytest

from studio.core.pace import PaceError, pace_rate, segment_pace
from studio.core.plan import plan_segments
from studio.core.tags import ScriptError, parse_script


@pytest.mark.parametrize(("value", "rate"), [
    ("slow", 0.85), ("Very  Slow", 0.75), ("fast", 1.15), ("very fast", 1.3), ("normal", 1.0),
    ("0.9x", 0.9), ("0.9 X", 0.9), ("1.1", 1.1), ("120%", 1.2), (".5x", 0.5), ("2x", 2.0),
])
def test_words_and_rates(value, rate):
    assert pace_rate(value) == rate


@pytest.mark.parametrize("value", ["quick", "0.4x", "2.5x", "-1x", "x0.9", "0x", "nan", "1e3x"])
def test_what_is_not_a_pace(value):
    with pytest.raises(PaceError):
        pace_rate(value)


def test_a_bad_pace_is_a_script_error_at_its_tag():
    with pytest.raises(ScriptError) as caught:
        parse_script("Hello.\nWell [pace: sluggish] then.")
    assert (caught.value.line, caught.value.column) == (2, 6)
    assert "sluggish" in caught.value.reason and "0.9x" in caught.value.reason


def test_a_pace_holds_until_normal_clears_it():
    segments = plan_segments(parse_script("[pace: slow]One.\nTwo.\n[pace: normal]Three.\n[pace: 1x][pace: 110%]Four."))
    assert [s.directives.get("pace") for s in segments] == ["slow", "slow", None, "110%"]
    assert [segment_pace(s.directives) for s in segments] == [0.85, 0.85, None, 1.1]
