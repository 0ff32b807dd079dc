"""`python -m studio parse` and `check`, run as real subprocesses the way a user or script runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.project import CastEntry, Project, RenderSettings, save_project

REPO = Path(__file__).resolve().parents[2]


def studio(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2
    assert result.stdout == b""
    err = result.stderr.decode("utf-8")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_parse_file_prints_items_json(tmp_path):
    script = tmp_path / "s.txt"
    script.write_bytes(b"[voice: Narrator]Hello [Whispering] there.\r\n[pause 1.5s]\n[language: German]Hallo")
    result = studio("parse", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert json.loads(result.stdout) == {
        "items": [
            {"kind": "speech", "line": 1, "text": "Hello", "emotion": None, "directives": {}, "voice": "Narrator"},
            {"kind": "speech", "line": 1, "text": "there.", "emotion": "Whispering", "directives": {},
             "voice": "Narrator"},
            {"kind": "pause", "line": 2, "seconds": 1.5},
            {"kind": "speech", "line": 3, "text": "Hallo", "emotion": "Whispering",
             "directives": {"language": "German"}, "voice": "Narrator"},
        ]
    }


def test_parse_stdin():
    result = studio("parse", "-", stdin="[Sad]Ünïcode ok".encode())
    assert result.returncode == 0
    assert json.loads(result.stdout)["items"][0]["text"] == "Ünïcode ok"


def test_parse_error_names_line_and_column(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("fine\nbroken [tag here\n", encoding="utf-8")
    err = assert_one_line_error(studio("parse", str(script)), "line 2, column 8:", "unclosed")
    assert err.startswith(f"{script}: ")


def test_parse_error_on_stdin_names_stdin():
    assert_one_line_error(studio("parse", "-", stdin=b"a ] b"), "<stdin>: line 1, column 3:", "stray")


def test_parse_non_utf8_names_the_byte_offset():
    assert_one_line_error(studio("parse", "-", stdin=b"Hello\n\xc3\x28"), "byte offset 6", "line 2, column 1:")


def test_parse_missing_file(tmp_path):
    assert_one_line_error(studio("parse", str(tmp_path / "nope.txt")), "no such file")


def test_parse_without_a_file_argument():
    assert_one_line_error(studio("parse"), "required")


def test_check_valid_project(tmp_path):
    path = tmp_path / "p.qtts"
    save_project(
        Project(script="[voice: Ann]Hi.\n[pause]", cast={"Ann": CastEntry("ann")}, render=RenderSettings(voice="Ann")),
        path,
    )
    result = studio("check", str(path))
    assert result.returncode == 0, result.stderr
    assert b"ok (2 lines, 1 speech segments, 1 pauses)" in result.stdout


def test_check_truncated_project(tmp_path):
    path = tmp_path / "p.qtts"
    save_project(Project(script="Hello"), path)
    path.write_bytes(path.read_bytes()[:30])
    assert_one_line_error(studio("check", str(path)), str(path), "not valid JSON")


def test_check_wrong_typed_field(tmp_path):
    path = tmp_path / "p.qtts"
    path.write_text(json.dumps({"schema_version": 1, "render": {"seed": "x"}}), encoding="utf-8")
    assert_one_line_error(studio("check", str(path)), "field 'render.seed'", "expected an integer")


def test_check_reports_script_grammar_errors(tmp_path):
    path = tmp_path / "p.qtts"
    save_project(Project(script="ok\n[pause 99s] no"), path)
    assert_one_line_error(studio("check", str(path)), "field 'script': line 2, column 1:", "longer than 10")


def test_check_reports_voices_missing_from_the_cast(tmp_path):
    path = tmp_path / "p.qtts"
    save_project(Project(script="x\n[voice: Bob]Hi", cast={"Ann": CastEntry("ann")}), path)
    assert_one_line_error(studio("check", str(path)), "line 2", "'Bob' is not in the cast")


@pytest.mark.parametrize("argv", [["bogus-command-file.qtts", "--nope"], ["check"]])
def test_usage_errors_are_one_line(argv):
    assert_one_line_error(studio(*argv))


def test_version():
    result = studio("--version")
    assert result.returncode == 0 and result.stdout.startswith(b"qwen-tts-studio ")
