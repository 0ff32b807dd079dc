"""Help → Run Self-Test: the real self-test, run as a child process from the window."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QApplication

from studio.ui.selftest_dialog import SelfTestDialog, summarise_check


@pytest.fixture
def scratch_home(monkeypatch, tmp_path):
    # The child inherits the environment: keep its (few) files out of the real home.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_dialog_runs_the_self_test_and_lists_every_check(qtbot, scratch_home):
    dialog = SelfTestDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start()
    assert dialog.running and dialog.progress.maximum() == 0  # busy while it runs
    qtbot.waitUntil(lambda: dialog.report is not None or not dialog.running, timeout=300_000)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=5_000)
    assert dialog.report["ok"], dialog.report
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert set(rows) == {
        "✔ Application",
        "✔ PyTorch",
        "✔ Rendering (tiny model)",
        "✔ Window and waveform",
        "✔ Audiobook export",
        "✔ Sound devices",
    }
    assert "[Whispering] line rendered" in rows["✔ Rendering (tiny model)"]
    assert "written as M4B and MP3 with 2 chapter marks" in rows["✔ Audiobook export"]
    assert "All 6 checks passed" in dialog.status.text()
    dialog.copy_report()
    assert json.loads(QApplication.clipboard().text())["checks"].keys() == dialog.report["checks"].keys()


def test_a_failed_check_shows_its_error():
    line = summarise_check("qt", {"ok": False, "error": "the window check exited with code -6: could not load xcb"})
    assert line == "the window check exited with code -6: could not load xcb"
    assert summarise_check("audio", {"ok": True, "portaudio": "PortAudio V19", "output_devices": [],
                                     "note": "no output device"}) == "PortAudio V19: no output device"


def test_closing_the_dialog_stops_a_running_self_test(qtbot, scratch_home):
    dialog = SelfTestDialog()
    qtbot.addWidget(dialog)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.running, timeout=10_000)
    dialog.reject()
    assert not dialog.running
