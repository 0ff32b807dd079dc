"""Uncaught exceptions in Qt slots end in one dialog with "Copy Details" and in the log file."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from studio.ui import crash_dialog
from studio.ui.crash_dialog import CrashDialog, install_exception_handler, log_file

# pytest-qt would catch the slots' exceptions itself; these tests check what the studio's own hook does.
pytestmark = pytest.mark.qt_no_exception_capture


class Emitter(QObject):
    fired = Signal()


@pytest.fixture
def handler(tmp_path):
    h = install_exception_handler(tmp_path / "logs" / "studio.log")
    yield h
    for dialog in h.shown:
        dialog.close()
    h.uninstall()


def broken_slot():
    raise ZeroDivisionError("the render plan divided by zero")


def test_an_exception_in_a_slot_is_logged_and_shown_with_copy_details(qtbot, handler):
    emitter = Emitter()
    emitter.fired.connect(broken_slot)
    emitter.fired.emit()  # a real slot call: PySide6 hands the exception to sys.excepthook
    qtbot.waitUntil(lambda: handler.dialog is not None and handler.dialog.isVisible(), timeout=5000)
    dialog = handler.dialog
    assert isinstance(dialog, CrashDialog)
    assert "ZeroDivisionError: the render plan divided by zero" in dialog.summary_label.text()
    assert str(handler.log_path) in dialog.advice_label.text()
    log = handler.log_path.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in log and "in broken_slot" in log
    assert "ZeroDivisionError: the render plan divided by zero" in log
    dialog.copy_button.click()
    copied = QApplication.clipboard().text()
    assert "in broken_slot" in copied and "Qwen3-TTS Studio" in copied and "ZeroDivisionError" in copied


def test_fifty_identical_errors_make_one_dialog_that_counts_them(qtbot, handler):
    emitter = Emitter()
    emitter.fired.connect(broken_slot)
    for _ in range(50):
        emitter.fired.emit()
    assert len(handler.shown) == 1
    assert "happened 50 times" in handler.shown[0].count_label.text()
    # Closed, the same error again is logged only; a different one gets its own dialog.
    handler.shown[0].close()
    emitter.fired.emit()
    assert len(handler.shown) == 1
    QTimer.singleShot(0, lambda: {}["missing"])
    qtbot.waitUntil(lambda: len(handler.shown) == 2, timeout=5000)
    assert "KeyError" in handler.shown[1].summary_label.text()
    assert handler.log_path.read_text(encoding="utf-8").count("ZeroDivisionError: the render plan") == 51


def test_a_failing_dialog_is_logged_and_neither_recurses_nor_raises(qtbot, handler, monkeypatch):
    calls = []

    def broken_dialog(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("the dialog could not be built")

    monkeypatch.setattr(crash_dialog, "CrashDialog", broken_dialog)
    emitter = Emitter()
    emitter.fired.connect(broken_slot)
    emitter.fired.emit()
    emitter.fired.emit()
    log = handler.log_path.read_text(encoding="utf-8")
    assert log.count("ZeroDivisionError: the render plan") == 2
    assert "the error dialog itself failed" in log and "RuntimeError: the dialog could not be built" in log
    assert calls == [1]  # the second, identical error did not try again
    assert sys.excepthook is handler


def test_an_error_in_a_worker_thread_is_shown_on_the_main_thread(qtbot, handler):
    thread = threading.Thread(target=broken_slot)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: handler.dialog is not None, timeout=5000)
    assert handler.dialog.thread() == QApplication.instance().thread()
    assert "ZeroDivisionError" in handler.dialog.summary_label.text()


def test_the_gui_installs_the_handler_before_anything_else(qtbot, monkeypatch):
    from studio.ui import app as app_module

    class Stop(Exception):
        pass

    def stop():
        raise Stop

    # run_gui up to the point it imports the window: the hook must be installed by then.
    monkeypatch.setattr(app_module, "check_display", lambda: None)
    monkeypatch.setattr("studio.ui.qsettings_keys.import_legacy_qsettings", stop)
    previous = sys.excepthook
    app = QApplication.instance()
    names = (app.organizationName(), app.applicationName(), app.applicationVersion(), app.desktopFileName(),
             app.windowIcon())
    try:
        with pytest.raises(Stop):
            app_module.run_gui()
        assert isinstance(sys.excepthook, crash_dialog.ExceptionHandler)
        assert sys.excepthook.log_path == log_file()
    finally:
        if isinstance(sys.excepthook, crash_dialog.ExceptionHandler):
            sys.excepthook.uninstall()
        sys.excepthook = previous
        # run_gui named the test run's one QApplication; later tests get it back as it was.
        app.setOrganizationName(names[0])
        app.setApplicationName(names[1])
        app.setApplicationVersion(names[2])
        app.setDesktopFileName(names[3])
        app.setWindowIcon(names[4])


def test_crash_dialog_screenshot(qtbot, tmp_path):
    dialog = CrashDialog("KeyError: None", 'Traceback (most recent call last):\n  File "main_window.py", line 709, '
                         "in render_all\nKeyError: None\n", tmp_path / "logs" / "studio.log")
    qtbot.addWidget(dialog)
    dialog.note_repeat()
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.grab().save(os.environ.get("CRASH_DIALOG_PNG", str(tmp_path / "crash.png")))
