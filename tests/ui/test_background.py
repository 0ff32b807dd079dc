"""studio.ui.background: work on a worker thread, outcomes on the main thread, stale results dropped."""

from __future__ import annotations

import threading

import pytest

from studio.ui.background import BackgroundRunner


@pytest.fixture
def runner(qapp):
    runner = BackgroundRunner()
    yield runner
    assert runner.shutdown(timeout=10), "a background thread outlived its test"


def test_results_progress_and_errors_arrive_on_the_main_thread(qtbot, runner):
    main = threading.current_thread()
    seen = []

    def work(task):
        seen.append(("work", threading.current_thread() is main))
        for step in range(3):
            task.report(step)
        return 42

    task = runner.run(work, on_done=lambda r: seen.append(("done", r, threading.current_thread() is main)),
                      on_progress=lambda p: seen.append(("progress", p, threading.current_thread() is main)))
    qtbot.waitUntil(lambda: task.finished, timeout=5000)
    assert seen == [("work", False), ("progress", 0, True), ("progress", 1, True), ("progress", 2, True),
                    ("done", 42, True)]
    assert not task.alive and runner.running == []

    failures = []

    def fail(_task):
        raise ValueError("bad input on line 3")

    runner.run(fail, on_done=lambda r: failures.append(("done", r)),
               on_error=lambda exc: failures.append((exc, threading.current_thread() is main)))
    qtbot.waitUntil(lambda: bool(failures), timeout=5000)
    assert len(failures) == 1
    error, on_main = failures[0]
    assert isinstance(error, ValueError) and str(error) == "bad input on line 3" and on_main


def test_a_superseded_task_is_asked_to_stop_and_its_results_are_dropped(qtbot, runner):
    release = threading.Event()
    delivered = []

    def slow(task):
        task.report("old progress")
        release.wait(10)
        task.report("late progress")
        return "old"

    old = runner.run(slow, on_done=delivered.append, on_error=delivered.append, on_progress=delivered.append,
                     key="listing")
    qtbot.waitUntil(lambda: delivered == ["old progress"], timeout=5000)
    new = runner.run(lambda task: "new", on_done=delivered.append, key="listing")
    assert old.cancel_event.is_set() and old.discarded and runner.task("listing") is new
    qtbot.waitUntil(lambda: new.finished, timeout=5000)
    release.set()
    qtbot.waitUntil(lambda: old.finished, timeout=5000)
    assert delivered == ["old progress", "new"]
    assert runner.task("listing") is None and not old.alive


def test_cancel_asks_the_work_to_stop_but_still_delivers_its_outcome(qtbot, runner):
    outcomes = []

    def waits_for_cancel(task):
        if task.cancel_event.wait(10):
            raise RuntimeError("cancelled, partial result kept")
        return "finished"

    task = runner.run(waits_for_cancel, on_done=outcomes.append, on_error=outcomes.append)
    task.cancel()
    qtbot.waitUntil(lambda: bool(outcomes), timeout=5000)
    assert isinstance(outcomes[0], RuntimeError) and task.cancelled and not task.discarded
