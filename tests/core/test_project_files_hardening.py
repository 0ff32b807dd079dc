"""Project files the user brings or keeps: hostile content, links, permissions, crashed saves (issue #13)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio.core.atomic import clean_stale_temps
from studio.core.project import (
    Project,
    ProjectConflictError,
    ProjectError,
    load_project,
    load_project_versioned,
    save_project,
)

REPO = Path(__file__).resolve().parents[2]


def _doc(**render) -> dict:
    return {"format": "qwen-tts-studio-project", "schema_version": 1, "script": "Hello.", "render": render}


def _cli(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=REPO, input=stdin, capture_output=True,
                          timeout=timeout)


# --- hostile content ---------------------------------------------------------------------------------


def test_deep_nesting_is_a_project_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.qtts"
    path.write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(ProjectError, match="nested more than 64 levels deep") as info:
        load_project(path)
    assert str(path) in str(info.value)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    path = tmp_path / "ok.qtts"
    doc = _doc()
    doc["script"] = "[" * 5000 + "text"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert load_project(path).script.startswith("[[[[")


def test_a_5000_digit_integer_is_a_project_error(tmp_path):
    path = tmp_path / "big.qtts"
    path.write_text(json.dumps(_doc())[:-1] + ', "lines": [{"line": ' + "9" * 5000 + "}]}", encoding="utf-8")
    with pytest.raises(ProjectError, match="a number with 5000 digits"):
        load_project(path)


def test_a_seed_past_64_bits_names_the_field(tmp_path):
    path = tmp_path / "seed.qtts"
    path.write_text(json.dumps(_doc(seed=2**70)), encoding="utf-8")
    with pytest.raises(ProjectError, match="field 'render.seed': must be at most"):
        load_project(path)


def test_nan_temperature_says_it_is_not_finite(tmp_path):
    path = tmp_path / "nan.qtts"
    path.write_text(json.dumps(_doc(generation={"temperature": float("nan")})), encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        load_project(path)
    assert "field 'render.generation.temperature': expected a finite number, got nan" in str(info.value)


def test_a_byte_order_mark_is_accepted_as_scripts_accept_it(tmp_path):
    path = tmp_path / "bom.qtts"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_doc()).encode())
    assert load_project(path).script == "Hello."


@pytest.mark.parametrize("command", ["check", "render"])
def test_cli_reports_hostile_projects_in_one_line(tmp_path, command):
    cases = {
        "deep.qtts": "[" * 100_000,
        "digits.qtts": json.dumps(_doc())[:-1] + ', "lines": [{"line": ' + "9" * 5000 + "}]}",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        args = [command, str(path)] + (["--out", str(tmp_path / "out"), "--model", "x"] if command == "render" else [])
        result = _cli(*args)
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert len(stderr.strip().splitlines()) == 1 and str(path) in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("command", ["parse", "check"])
def test_reading_dev_zero_stops_at_the_size_limit(command):
    # Before the limit, `parse /dev/zero` read 3.6 GB in 3 s and kept going.
    result = _cli(command, "/dev/zero", timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert stderr.strip().startswith("/dev/zero: larger than the 32 MB") and "Traceback" not in stderr


def test_parse_from_stdin_is_bounded_too():
    result = _cli("parse", "-", stdin=b"a" * (33 * 1024 * 1024))
    assert result.returncode == 2 and b"<stdin>: larger than the 32 MB a script may have" in result.stderr


# --- links and permissions -------------------------------------------------------------------------------


def test_saving_through_a_symlink_updates_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real" / "story.qtts"
    target.parent.mkdir()
    save_project(Project(script="old"), target)
    link = tmp_path / "story-link.qtts"
    link.symlink_to(target)
    save_project(Project(script="new"), link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load_project(target).script == "new"
    assert load_project(target.with_name("story.qtts.bak")).script == "old"


def test_a_read_only_project_is_not_overwritten(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(Project(script="keep"), path)
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="the file is read-only"):
        save_project(Project(script="replace"), path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".story.qtts.*.tmp"))


def test_a_hard_linked_project_stays_linked(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(Project(script="old"), path)
    other = tmp_path / "shared-copy.qtts"
    os.link(path, other)
    save_project(Project(script="new"), path)
    assert os.stat(path).st_ino == os.stat(other).st_ino
    assert load_project(other).script == "new"
    assert load_project(path.with_name("story.qtts.bak")).script == "old"


# --- two writers -------------------------------------------------------------------------------------------


def test_a_save_over_a_file_another_process_changed_is_refused(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(Project(script="base"), path)
    _, version = load_project_versioned(path)
    code = f"""
        from pathlib import Path
        from studio.core.project import Project, save_project
        save_project(Project(script="the other window's edit"), Path({str(path)!r}))
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, check=True, timeout=60)
    with pytest.raises(ProjectConflictError, match="changed on disk since it was opened here"):
        save_project(Project(script="mine"), path, expect=version)
    assert load_project(path).script == "the other window's edit"
    # Unchanged on disk: the save goes through and returns the version to expect next time.
    _, version = load_project_versioned(path)
    newer = save_project(Project(script="mine"), path, expect=version)
    save_project(Project(script="mine again"), path, expect=newer)
    assert load_project(path).script == "mine again"


# --- crashed saves ------------------------------------------------------------------------------------------


def test_temp_files_of_a_killed_save_are_cleaned_by_the_next_save(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(Project(script="v1"), path)
    # A real writer process, killed with SIGKILL while its save is between writing and renaming
    # (its fsync is made to hang, as on a stalled disk).
    code = f"""
        import os, sys, time
        from pathlib import Path
        from studio.core.project import Project, save_project
        def stalled(fd):
            print("writing", flush=True)
            time.sleep(600)
        os.fsync = stalled
        save_project(Project(script="x" * 1_000_000), Path({str(path)!r}))
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"writing\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    leftovers = list(tmp_path.glob(".story.qtts.*.tmp"))
    assert len(leftovers) == 1 and str(child.pid) in leftovers[0].name
    assert load_project(path).script == "v1"  # the old version, whole
    save_project(Project(script="v2"), path)
    assert not list(tmp_path.glob(".story.qtts.*.tmp"))
    assert load_project(path).script == "v2"


def test_temp_files_of_a_live_writer_are_left_alone(tmp_path):
    path = tmp_path / "story.qtts"
    live = tmp_path / f".story.qtts.{os.getppid()}.abcd1234.tmp"  # our parent: alive while we run
    live.write_bytes(b"in progress")
    old_style = tmp_path / ".story.qtts.k2j3h4g5.tmp"  # made before temp names carried a pid
    old_style.write_bytes(b"leftover")
    an_hour_ago = time.time() - 7200
    os.utime(old_style, (an_hour_ago, an_hour_ago))
    assert clean_stale_temps(path) == [old_style]
    assert live.exists()
