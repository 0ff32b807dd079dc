"""The benchmark harness measures what it says: warm-up runs never count (issue #15)."""

from __future__ import annotations

from bench.__main__ import alternate


def test_the_warm_up_run_is_not_in_any_median():
    calls = {"a": 0, "b": 0}

    def contender(name: str, first: float, later: float):
        def run() -> float:
            calls[name] += 1
            # The first call pays the one-off costs; what the contender measures itself reflects it.
            return first if calls[name] == 1 else later
        return run

    medians = alternate({"a": contender("a", 100.0, 1.0), "b": contender("b", 50.0, 2.0)}, repeats=2)
    assert calls == {"a": 3, "b": 3}
    assert medians == {"a": 1.0, "b": 2.0}

