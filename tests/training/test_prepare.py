"""`python -m training.prepare` on the tiny base checkpoint's speech tokenizer: codes, resume, errors."""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from tests.training.conftest import CLIPS, SR, harmonic, run_command
from training.prepare import (
    CODES_FORMAT,
    Encoder,
    Stopped,
    check_codes,
    load_items,
    prepare_run,
    read_codes,
    resolve_tokenizer,
)
from training.protocol import Emitter

# Five usable clips (1.5 to 3 s, one of them 48 kHz stereo) and one too short, which prepare must leave out.
NAMES = ("a_good", "b_good", "c_stereo48k", "d_good16k", "h_short", "m_retake")
USABLE = ("a_good", "b_good", "c_stereo48k", "d_good16k", "m_retake")


@pytest.fixture
def validated_run(tmp_path, make_dataset):
    """A validated run folder of a JSONL dataset whose first two items carry a reference clip."""
    data = make_dataset("jsonl", tuple(c for c in CLIPS if c.name in NAMES))
    (data.root / "refs").mkdir()
    sf.write(data.root / "refs" / "me.wav", harmonic(3.0, 125.0, seed=42), SR)
    lines = [json.loads(line) for line in data.arg.read_text().splitlines()]
    for record in lines[:2]:
        record["ref_audio"] = "refs/me.wav"
    data.arg.write_text("".join(json.dumps(r) + "\n" for r in lines))
    run_dir = tmp_path / "run"
    result = run_command("training.validate", data.arg, "--out", run_dir)
    assert result.rc == 0, result.stderr
    return run_dir, data


def _codes_by_item(run_dir):
    index = [json.loads(line) for line in (run_dir / "prepared.jsonl").read_text().splitlines()]
    return index, {row["audio"]: read_codes(run_dir / row["codes"]) for row in index}


def test_prepare_encodes_and_resumes_only_what_is_missing(validated_run, tiny_checkpoints):
    run_dir, data = validated_run
    checkpoint = tiny_checkpoints["base"]

    # A stop requested before the start: nothing is encoded, the request is used up.
    (run_dir / "STOP").touch()
    stopped = run_command("training.prepare", run_dir, "--tokenizer", checkpoint, "--device", "cpu")
    assert stopped.rc == 3, stopped.stderr
    last = stopped.events[-1]
    assert (last["event"], last["stopped"], last["encoded"], last["items"]) == ("done", True, 0, 5)
    assert not (run_dir / "STOP").exists() and not (run_dir / "prepared.jsonl").exists()

    first = run_command("training.prepare", run_dir, "--tokenizer", checkpoint, "--batch-size", "2", "--device", "cpu")
    assert first.rc == 0, first.stderr
    start = first.kinds("start")[0]
    assert (start["total"], start["skipped"], start["to_encode"]) == (5, 0, 5)
    assert start["tokenizer"] == str(checkpoint / "speech_tokenizer")
    assert [e["done"] for e in first.kinds("progress")] == [0, 1, 2, 3, 4, 5]
    assert [e["item"] for e in first.kinds("progress")[1:]] == [str(data.audio[n]) for n in USABLE]
    done = first.events[-1]
    assert done["event"] == "done" and (done["encoded"], done["skipped"], done["items"]) == (5, 0, 5)
    assert not first.kinds("warning") and not first.kinds("error")

    index, codes = _codes_by_item(run_dir)
    assert [row["audio"] for row in index] == [str(data.audio[n]) for n in USABLE]
    ref = str(data.root / "refs" / "me.wav")
    assert [row["ref_audio"] for row in index] == [ref, ref, None, None, None]
    assert [row["prepared_ref_audio"] for row in index] == ["ref/001_me.wav"] * 2 + [None] * 3
    for row in index:
        matrix = codes[row["audio"]]
        n_samples = sf.info(str(run_dir / row["prepared_audio"])).frames
        assert matrix.dtype == np.int16
        assert matrix.shape == (math.ceil(n_samples / 1920), 16) == (row["n_frames"], 16)
        # The tiny tokenizer's codebooks have 256 entries.
        assert 0 <= matrix.min() and matrix.max() < 256
        assert len(np.unique(matrix)) > 1
    assert done["frames"] == sum(row["n_frames"] for row in index)

    # An interrupted run's aftermath: one code file never written, one torn.
    lost = run_dir / index[1]["codes"]
    torn = run_dir / index[3]["codes"]
    lost.unlink()
    torn.write_bytes(torn.read_bytes()[:50])
    second = run_command("training.prepare", run_dir, "--tokenizer", checkpoint, "--device", "cpu")
    assert second.rc == 0, second.stderr
    start = second.kinds("start")[0]
    assert (start["skipped"], start["to_encode"]) == (3, 2)
    assert [e["message"] for e in second.kinds("warning")] == [
        f"{index[3]['codes']}: unreadable (SafetensorError); encoding again"
    ]
    assert [e["item"] for e in second.kinds("progress")[1:]] == [index[1]["audio"], index[3]["audio"]]
    assert [e["done"] for e in second.kinds("progress")] == [3, 4, 5]
    assert (second.events[-1]["encoded"], second.events[-1]["skipped"]) == (2, 3)
    # Redone in other batches (size 8 now, 2 before), the codes come out identical.
    _, again = _codes_by_item(run_dir)
    for audio, matrix in codes.items():
        np.testing.assert_array_equal(again[audio], matrix)

    # Nothing left to do: everything is skipped and the model is not even loaded.
    third = run_command("training.prepare", run_dir, "--tokenizer", checkpoint, "--device", "cpu")
    assert third.rc == 0 and (third.events[-1]["encoded"], third.events[-1]["skipped"]) == (0, 5)
    assert "loading the speech tokenizer" not in third.stderr
    assert "loading the speech tokenizer" in second.stderr


def test_stop_between_batches_then_resume_in_process(validated_run, tiny_checkpoints):
    run_dir, _ = validated_run
    spec = resolve_tokenizer(str(tiny_checkpoints["base"] / "speech_tokenizer"))
    encoder = Encoder(spec, "cpu")
    events = []
    emitter = Emitter(io.StringIO(), sink=events.append)
    calls = []

    def stop_after_first_batch():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Stopped) as stop:
        prepare_run(run_dir, spec, emitter=emitter, batch_size=2, should_stop=stop_after_first_batch, encoder=encoder)
    assert (stop.value.encoded, stop.value.items) == (2, 5)
    items = load_items(run_dir)
    assert [check_codes(item, spec) for item in items] == [None, None, "missing", "missing", "missing"]
    assert not (run_dir / "prepared.jsonl").exists()

    events.clear()
    summary = prepare_run(run_dir, spec, emitter=emitter, batch_size=2, encoder=encoder)
    assert (summary["skipped"], summary["encoded"], summary["items"]) == (2, 3, 5)
    assert events[0]["event"] == "start" and events[0]["skipped"] == 2
    assert (run_dir / "prepared.jsonl").is_file()

    # Codes made by another tokenizer, or from audio that has changed since, are not reused.
    other = dataclasses.replace(spec, fingerprint="0" * 64)
    assert check_codes(items[0], other) == "stale (made by another tokenizer)"
    assert check_codes(dataclasses.replace(items[0], audio_sha256="f" * 64), spec) == "stale (made from other audio)"
    from safetensors import safe_open

    with safe_open(str(items[0].codes), framework="numpy") as handle:
        assert handle.metadata()["format"] == CODES_FORMAT


@pytest.mark.parametrize("case", ["no_report", "no_run_dir", "no_tokenizer", "not_a_tokenizer"])
def test_missing_inputs_give_an_error_event_with_a_hint(tmp_path, validated_run, case):
    run_dir, data = validated_run
    tokenizer = str(data.root)  # a folder, but no speech tokenizer in it
    if case == "no_report":
        run_dir = tmp_path / "empty-run"
        run_dir.mkdir()
        expect = "validation.json: not found"
    elif case == "no_run_dir":
        run_dir = tmp_path / "nowhere"
        expect = "no such run folder"
    elif case == "no_tokenizer":
        tokenizer = str(tmp_path / "no-such-model")
        expect = "no such model folder"
    else:
        expect = "not a speech tokenizer folder"
    result = run_command("training.prepare", run_dir, "--tokenizer", tokenizer)
    assert result.rc == 2
    assert [e["event"] for e in result.events] == ["error"]
    assert expect in result.events[0]["message"] and result.events[0]["hint"]
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
