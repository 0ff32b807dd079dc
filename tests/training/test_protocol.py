"""The JSON-lines protocol: what the commands write and what the wizard's reader accepts."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training import protocol
from training.protocol import EVENT_KINDS, Emitter, Eta, parse_line

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_helper_writes_one_flushed_json_line():
    stream = io.StringIO()
    seen = []
    emitter = Emitter(stream, sink=seen.append, clock=lambda: 1000.25)
    emitter.start(total=3, what="validate")
    emitter.progress(1, 3, item="a.wav", eta_s=2.0)
    emitter.step(5, 100, loss=1.5, lr=1e-7)
    emitter.checkpoint(Path("/run/checkpoints/step-5"), step=5)
    emitter.warning("a.wav: too short", item="a.wav")
    emitter.error("RUN/validation.json: not found", hint="run validate first")
    emitter.done(items=3, usable=2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 7
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["start", "progress", "step", "checkpoint", "warning", "error", "done"]
    assert all(e["t"] == 1000.25 for e in events)
    assert events == seen
    assert events[0] == {"event": "start", "t": 1000.25, "what": "validate", "total": 3, "protocol": 1}
    assert events[1] == {"event": "progress", "t": 1000.25, "done": 1, "total": 3, "item": "a.wav", "eta_s": 2.0}
    assert events[3]["path"] == "/run/checkpoints/step-5" and events[3]["step"] == 5
    assert events[5]["hint"] == "run validate first"
    assert set(EVENT_KINDS) == {e["event"] for e in events}


def test_values_json_cannot_hold_are_made_safe():
    stream = io.StringIO()
    Emitter(stream).step(1, 2, loss=math.nan, grad_norm=math.inf, lr=np.float32(0.5), count=np.int64(3))
    event = json.loads(stream.getvalue())  # strict: NaN would make this line unreadable for some readers
    assert event["loss"] is None and event["grad_norm"] is None
    assert event["lr"] == 0.5 and event["count"] == 3


def test_unknown_kinds_are_refused_and_a_disabled_emitter_is_silent():
    stream = io.StringIO()
    with pytest.raises(ValueError):
        Emitter(stream).emit("finished")
    Emitter(stream, enabled=False).done(x=1)
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Loading weights...",
        "{not json",
        "[1, 2]",
        '{"no_event": 1}',
        '{"event": 3}',
        "  \x1b[31mwarning\x1b[0m",
    ],
)
def test_parse_line_ignores_noise(line):
    assert parse_line(line) is None


def test_parse_line_reads_events_from_text_or_bytes():
    assert parse_line('{"event": "done", "t": 1.0}\n') == {"event": "done", "t": 1.0}
    assert parse_line(b'  {"event": "progress", "t": 2.0, "done": 1}\r\n')["done"] == 1


def test_stop_file_helpers(tmp_path):
    assert not protocol.stop_requested(tmp_path)
    protocol.request_stop(tmp_path)
    assert (tmp_path / "STOP").is_file() and protocol.stop_requested(tmp_path)
    protocol.clear_stop(tmp_path)
    protocol.clear_stop(tmp_path)  # a second clear is harmless
    assert not protocol.stop_requested(tmp_path)


def test_eta_counts_only_work_done_in_this_run():
    now = [0.0]
    eta = Eta(10, clock=lambda: now[0])
    assert eta(4, baseline=4) is None  # nothing done yet in this run
    now[0] = 2.0
    assert eta(5, baseline=4) == 10.0  # 2 s per item, 5 left
    assert eta(10, baseline=4) == 0.0


def test_a_process_emitter_keeps_stray_output_off_the_channel():
    # Library banners and C-level writes to fd 1 must land on stderr, never between two events.
    code = (
        "import os\n"
        "from training.protocol import Emitter\n"
        "e = Emitter.for_process()\n"
        "print('a banner from some library')\n"
        "os.write(1, b'raw write to fd 1\\n')\n"
        "e.progress(1, 2)\n"
        "e.done(ok=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    events = [parse_line(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["progress", "done"]
    assert "a banner from some library" in proc.stderr and "raw write to fd 1" in proc.stderr
