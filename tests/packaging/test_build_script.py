"""packaging/build.sh refuses bad options with one line and exit 2, before it touches anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--torch"], "--torch needs a value: cpu or cuda"),
        (["--torch", "gpu"], "--torch takes cpu or cuda, not 'gpu'"),
        (["--torch=rocm"], "--torch takes cpu or cuda, not 'rocm'"),
        (["--fast"], "unknown option --fast"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, tmp_path):
    done = subprocess.run(["bash", "packaging/build.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert done.stdout == ""
