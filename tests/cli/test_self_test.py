"""`python -m studio --self-test` and `--run-training`, run as subprocesses the way a user runs them.

The packaged build runs the same self-test from its frozen executable (tests/packaging); these tests
keep the checks themselves honest on a source checkout: they pass on a working installation and each
one fails, by name, when its piece is broken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.xvfb import xvfb_display

ROOT = Path(__file__).resolve().parents[2]


def self_test(env: dict[str, str], *extra: str, timeout: int = 300) -> tuple[int, dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "studio", "--self-test", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )
    # stdout is the report and nothing else, whatever the libraries print while it runs.
    return result.returncode, json.loads(result.stdout), result.stderr


def _headless_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}


def test_self_test_passes_headless_and_reports_every_check(tmp_path):
    env = _headless_env()
    env["HOME"] = str(tmp_path / "home")  # proves it needs nothing from the user's home and leaves nothing there
    code, report, stderr = self_test(env)
    assert code == 0, (report, stderr[-2000:])
    assert report["ok"] is True and report["failed"] == []
    checks = report["checks"]
    assert set(checks) == {"python", "torch", "engine", "qt", "audiobook", "audio"}
    assert checks["engine"]["emotion"] == "Whispering"
    assert "Whispering" in checks["engine"]["instruct"]
    assert checks["engine"]["chunks"] >= 2  # streamed, not one-shot
    assert checks["engine"]["wav_frames"] > 0
    assert checks["qt"]["platform"] == "offscreen" and checks["qt"]["note"].startswith("no display")
    assert checks["qt"]["waveform_changed_px"] >= 200
    assert "PortAudio" in checks["audio"]["portaudio"]
    audio_s = checks["engine"]["audio_s"]
    assert checks["audiobook"]["stretched_s"] == pytest.approx(audio_s / 0.85, abs=0.01)
    for kind in ("m4b", "mp3"):
        (first, _), (second, start) = checks["audiobook"][kind]["chapters"]
        assert (first, second) == ("One", "Two") and start == pytest.approx(audio_s, abs=0.05)
    home = tmp_path / "home"
    assert not home.exists() or not any(p.is_file() for p in home.rglob("*"))


@pytest.mark.slow
def test_self_test_on_a_real_x_server():
    with xvfb_display() as display:
        env = {**_headless_env(), "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        code, report, stderr = self_test(env)
    assert code == 0, (report, stderr[-2000:])
    assert report["checks"]["qt"]["platform"] == "xcb"


def test_a_qt_platform_that_cannot_load_fails_the_qt_check_by_name():
    # Qt aborts the process when its platform plugin cannot load; the report must still come out,
    # with Qt's own reason in it, and the other checks must still run.
    env = {**_headless_env(), "QT_QPA_PLATFORM": "no-such-platform"}
    code, report, _stderr = self_test(env)
    assert code == 1
    assert report["failed"] == ["qt"]
    assert "no-such-platform" in report["checks"]["qt"]["error"]
    assert report["checks"]["engine"]["ok"] and report["checks"]["audio"]["ok"]


def test_run_training_refuses_modules_it_does_not_know():
    result = subprocess.run(
        [sys.executable, "-m", "studio", "--run-training", "os"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "training.validate" in result.stderr and "'os'" in result.stderr


def _both_ways(*args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    def run(command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)

    direct = run([sys.executable, "-m", "training.validate", *args])
    dispatched = run([sys.executable, "-m", "studio", "--run-training", "training.validate", *args])
    return direct, dispatched


def test_run_training_runs_the_step_with_its_own_arguments_and_exit_code(tmp_path):
    direct, dispatched = _both_ways("--help")
    assert dispatched.returncode == direct.returncode == 0
    # Help goes to stderr: a training step's stdout is reserved for its JSON-lines protocol.
    assert dispatched.stderr == direct.stderr and "usage" in dispatched.stderr
    # A folder with no recordings: the step's own error event and exit code come back unchanged.
    empty = tmp_path / "empty"
    empty.mkdir()
    direct, dispatched = _both_ways(str(empty), "--out", str(tmp_path / "run"))
    assert dispatched.returncode == direct.returncode != 0

    def events(stdout: str) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k != "t"} for line in stdout.splitlines()]

    assert events(dispatched.stdout) == events(direct.stdout)
    assert events(dispatched.stdout)[-1]["event"] == "error" and "no audio files" in dispatched.stdout
