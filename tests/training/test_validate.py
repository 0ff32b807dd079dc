"""`python -m training.validate`: every layout, every kind of broken item, the dataset left untouched."""

from __future__ import annotations

import hashlib
import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from tests.training.conftest import CLIPS, SR, USABLE_SECONDS, Clip, harmonic, run_command, tree_hashes
from training.protocol import Emitter
from training.validate import (
    CLIP_FRACTION,
    SILENCE_FRACTION,
    clipped_fraction,
    problem_kind,
    silent_fraction,
    validate_dataset,
)

BROKEN = {clip.name: clip.expect for clip in CLIPS if clip.expect}


def _report(run_dir):
    return json.loads((run_dir / "validation.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("layout", ["folder", "ljspeech", "jsonl"])
def test_reports_exactly_the_broken_items(make_dataset, tmp_path, layout):
    data = make_dataset(layout)
    before = tree_hashes(data.root)
    run_dir = tmp_path / "run"

    result = run_command("training.validate", data.arg, "--out", run_dir)

    assert result.rc == 0, result.stderr
    assert "Traceback" not in result.stderr
    # The user's dataset: same files, same bytes, nothing added.
    assert tree_hashes(data.root) == before

    report = _report(run_dir)
    assert report["layout"] == layout
    items = report["items"]
    assert [item["audio"] for item in items] == [str(data.audio[clip.name]) for clip in CLIPS]
    for clip, item in zip(CLIPS, items, strict=True):
        kinds = [problem_kind(p) for p in item["problems"]]
        assert kinds == ([clip.expect] if clip.expect else []), (clip.name, item["problems"])
        assert item["usable"] is (clip.expect is None)
        if clip.note:
            assert len(item["notes"]) == 1 and item["notes"][0].startswith(clip.note), (clip.name, item["notes"])
        else:
            assert item["notes"] == [], (clip.name, item["notes"])
        assert item["text"] == " ".join(clip.text.split())
        assert item["ref_audio"] is None and item["prepared_ref_audio"] is None
    by_name = {clip.name: item for clip, item in zip(CLIPS, items, strict=True)}
    assert by_name["m_retake"]["notes"] == [f"same transcript as {data.audio['b_good']}"]
    assert by_name["l_duplicate"]["problems"] == [f"duplicate audio: same samples as {data.audio['a_good']}"]

    totals = report["totals"]
    assert totals["items"] == len(CLIPS)
    assert totals["usable"] == len(CLIPS) - len(BROKEN)
    assert totals["seconds"] == pytest.approx(USABLE_SECONDS, abs=1e-3)
    assert totals["hours"] == pytest.approx(USABLE_SECONDS / 3600, abs=1e-6)
    assert totals["problems"] == {kind: 1 for kind in BROKEN.values()}

    # Every usable item has a 24 kHz mono copy in the run folder, hashed as recorded.
    prepared = sorted(p.name for p in (run_dir / "audio").iterdir())
    assert prepared == sorted(item["prepared_audio"].split("/", 1)[1] for item in items if item["usable"])
    for item in items:
        if not item["usable"]:
            assert item["prepared_audio"] is None
            continue
        path = run_dir / item["prepared_audio"]
        info = sf.info(str(path))
        assert (info.samplerate, info.channels) == (SR, 1)
        assert info.frames == pytest.approx(item["seconds"] * SR, abs=2)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item["prepared_sha256"]
    stereo = by_name["c_stereo48k"]
    assert (stereo["sample_rate"], stereo["channels"]) == (48000, 2)
    converted, _ = sf.read(str(run_dir / stereo["prepared_audio"]), dtype="float32")
    left = harmonic(2.5, 120.0, sr=48000, seed=3)
    # Downmixed (mean of 1.0 and 0.8 times the same wave), resampled, not clipped or normalised.
    assert np.max(np.abs(converted)) == pytest.approx(0.9 * np.max(np.abs(left)), rel=0.05)

    # Events: start, one progress per item, one warning per broken item, done.
    events = result.events
    assert events[0]["event"] == "start" and events[0]["total"] == len(CLIPS) and events[0]["what"] == "validate"
    assert events[-1]["event"] == "done"
    assert events[-1]["usable"] == totals["usable"] and events[-1]["report"] == str(run_dir / "validation.json")
    assert [e["done"] for e in result.kinds("progress")] == list(range(1, len(CLIPS) + 1))
    assert [e["item"] for e in result.kinds("warning")] == [str(data.audio[name]) for name in BROKEN]
    assert not result.kinds("error")


def test_nothing_usable_exits_2_with_the_report_written(make_dataset, tmp_path):
    # Every broken kind but the duplicate, which needs its usable original.
    broken = tuple(c for c in CLIPS if c.expect and c.expect != "duplicate audio")
    data = make_dataset("jsonl", broken)
    run_dir = tmp_path / "run"
    result = run_command("training.validate", data.arg, "--out", run_dir)
    assert result.rc == 2
    assert result.events[-1]["event"] == "error" and "no usable items" in result.events[-1]["message"]
    assert "validation.json" in result.events[-1]["hint"]
    assert not result.kinds("done")
    report = _report(run_dir)
    assert report["totals"]["usable"] == 0 and report["totals"]["items"] == len(broken)
    assert [line for line in result.stderr.splitlines() if "error" in line] == [
        f"training.validate: error: {result.events[-1]['message']} ({result.events[-1]['hint']})"
    ]


@pytest.mark.parametrize("case", ["missing", "text_file", "empty_folder", "out_inside", "bad_argument"])
def test_unusable_dataset_arguments_give_one_clear_line(tmp_path, case):
    out = tmp_path / "run"
    if case == "missing":
        args = [tmp_path / "nope", "--out", out]
        expect = f"{tmp_path / 'nope'}: no such file or folder"
    elif case == "text_file":
        (tmp_path / "notes.txt").write_text("hello\n")
        args = [tmp_path / "notes.txt", "--out", out]
        expect = "not a recognised dataset file"
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        args = [tmp_path / "empty", "--out", out]
        expect = "no audio files, metadata.csv or .jsonl found"
    elif case == "out_inside":
        data = tmp_path / "data"
        data.mkdir()
        sf.write(data / "a.wav", harmonic(1.5, 140.0), SR)
        (data / "a.txt").write_text("Hello.\n")
        args = [data, "--out", data / "run"]
        expect = "the run folder is inside the dataset folder"
    else:
        args = [tmp_path]
        expect = "the following arguments are required: --out"
    result = run_command("training.validate", *args)
    assert result.rc == 2
    assert [e["event"] for e in result.events] == ["error"]
    assert expect in result.events[0]["message"]
    assert result.events[0]["hint"]
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("training.validate: error: ")
    assert not (out / "validation.json").exists()
    if case == "out_inside":
        assert not (tmp_path / "data" / "run").exists()


def test_reference_audio_is_checked_and_converted_once(tmp_path):
    root = tmp_path / "data"
    (root / "wavs").mkdir(parents=True)
    (root / "refs").mkdir()
    for i, f0 in enumerate((140.0, 170.0, 200.0, 230.0)):
        sf.write(root / "wavs" / f"{i}.wav", harmonic(1.5, f0, seed=i), SR)
    ref = np.stack([harmonic(4.0, 110.0, sr=44100, seed=9)] * 2, axis=1)
    sf.write(root / "refs" / "speaker.wav", ref, 44100)
    (root / "refs" / "broken.wav").write_bytes(b"RIFF" + bytes(60))
    lines = [
        {"audio": "wavs/0.wav", "text": "One.", "ref_audio": "refs/speaker.wav"},
        {"audio": "wavs/1.wav", "text": "Two.", "ref_audio": str(root / "refs" / "speaker.wav")},
        {"audio": "wavs/2.wav", "text": "Three.", "ref_audio": "refs/gone.wav"},
        {"audio": "wavs/3.wav", "text": "Four.", "ref_audio": "refs/broken.wav"},
    ]
    (root / "list.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    run_dir = tmp_path / "run"
    result = run_command("training.validate", root / "list.jsonl", "--out", run_dir)
    assert result.rc == 0, result.stderr
    items = _report(run_dir)["items"]
    assert [item["usable"] for item in items] == [True, True, False, False]
    assert items[0]["ref_audio"] == items[1]["ref_audio"] == str(root / "refs" / "speaker.wav")
    assert items[0]["prepared_ref_audio"] == items[1]["prepared_ref_audio"] == "ref/001_speaker.wav"
    assert items[2]["problems"] == [f"ref_audio: missing audio: {root / 'refs' / 'gone.wav'} does not exist"]
    assert [problem_kind(p) for p in items[3]["problems"]] == ["ref_audio"]
    assert "unreadable audio" in items[3]["problems"][0]
    assert sorted(p.name for p in (run_dir / "ref").iterdir()) == ["001_speaker.wav"]
    info = sf.info(str(run_dir / "ref" / "001_speaker.wav"))
    assert (info.samplerate, info.channels) == (SR, 1) and info.frames == pytest.approx(4.0 * SR, abs=2)


def test_malformed_manifest_lines_are_items_with_a_problem(tmp_path):
    root = tmp_path / "lj"
    (root / "wavs").mkdir(parents=True)
    sf.write(root / "wavs" / "ok.wav", harmonic(1.5, 140.0), SR)
    (root / "metadata.csv").write_text("ok|Fine text.|\nno pipe here\n\n|orphan text\n", encoding="utf-8")
    jroot = tmp_path / "js"
    jroot.mkdir()
    sf.write(jroot / "ok.wav", harmonic(1.5, 150.0), SR)
    (jroot / "d.jsonl").write_text(
        '{"audio": "ok.wav", "text": "Fine."}\n{broken\n[1]\n{"audio": "ok.wav"}\n{"text": "no audio"}\n',
        encoding="utf-8",
    )
    stream = io.StringIO()
    lj = validate_dataset(root, tmp_path / "run-lj", emitter=Emitter(stream))
    js = validate_dataset(jroot, tmp_path / "run-js", emitter=Emitter(stream))
    assert [(i["source"], [problem_kind(p) for p in i["problems"]]) for i in lj["items"]] == [
        ("metadata.csv line 1", []),
        ("metadata.csv line 2", ["malformed line"]),
        ("metadata.csv line 4", ["malformed line"]),
    ]
    # The empty third column falls back on the second.
    assert lj["items"][0]["text"] == "Fine text."
    assert [(i["source"], [problem_kind(p) for p in i["problems"]]) for i in js["items"]] == [
        ("d.jsonl line 1", []),
        ("d.jsonl line 2", ["malformed line"]),
        ("d.jsonl line 3", ["malformed line"]),
        ("d.jsonl line 4", ["missing field"]),
        ("d.jsonl line 5", ["missing field"]),
    ]


def test_revalidating_replaces_the_prepared_audio(make_dataset, tmp_path):
    data = make_dataset("folder", CLIPS[:3])
    run_dir = tmp_path / "run"
    validate_dataset(data.arg, run_dir, emitter=Emitter(io.StringIO()))
    assert len(list((run_dir / "audio").iterdir())) == 3
    (data.root / "b_good.wav").unlink()
    (data.root / "b_good.txt").unlink()
    report = validate_dataset(data.arg, run_dir, emitter=Emitter(io.StringIO()))
    assert sorted(p.name for p in (run_dir / "audio").iterdir()) == ["00001_a_good.wav", "00002_c_stereo48k.wav"]
    assert [i["prepared_audio"] for i in report["items"]] == ["audio/00001_a_good.wav", "audio/00002_c_stereo48k.wav"]


def test_stop_file_stops_before_writing_a_report(make_dataset, tmp_path):
    data = make_dataset("folder", CLIPS[:2])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "STOP").touch()
    result = run_command("training.validate", data.arg, "--out", run_dir)
    assert result.rc == 3
    assert result.events[-1]["event"] == "done" and result.events[-1]["stopped"] is True
    assert not (run_dir / "validation.json").exists()
    assert not (run_dir / "STOP").exists()  # used up: a rerun goes through


def test_thresholds_leave_normal_speech_alone():
    tone = harmonic(2.0, 150.0)
    normalised = tone / np.max(np.abs(tone))  # peak-normalised: touches full scale, never flattens
    assert clipped_fraction(normalised[:, None]) < CLIP_FRACTION
    assert clipped_fraction(np.clip(6 * tone, -1, 1)[:, None]) > CLIP_FRACTION
    # A sentence with half a second of lead-in and trailing room tone, and a pause in the middle.
    rng = np.random.default_rng(0)
    room = (10 ** (-65 / 20) * rng.standard_normal(int(0.5 * SR))).astype(np.float32)
    sentence = np.concatenate([room, harmonic(0.8, 150.0), room, harmonic(0.8, 170.0), room])
    assert 0.4 < silent_fraction(sentence) < SILENCE_FRACTION
    assert silent_fraction(np.zeros(SR, dtype=np.float32)) == 1.0
    # Hiss at -48 dBFS is not silence on its own, but it is under a hot recording's speech (loudest
    # frame about -5.5 dBFS), being more than 40 dB below it.
    hiss = (10 ** (-48 / 20) * rng.standard_normal(int(2.7 * SR))).astype(np.float32)
    assert silent_fraction(hiss) == 0.0
    loud = np.concatenate([harmonic(0.3, 150.0, peak=1.0), hiss])
    assert silent_fraction(loud) >= SILENCE_FRACTION
    assert math.isclose(silent_fraction(harmonic(1.0, 200.0)), 0.0)


def test_duplicate_of_an_unusable_item_is_kept(make_dataset, tmp_path):
    # The first copy has no transcript, so the second is the only usable one, not a duplicate.
    clips = (Clip("a_good", "", "empty transcript"), Clip("b_copy", "Now with words.", None))
    data = make_dataset("folder", clips[:1])
    (data.root / "b_copy.wav").write_bytes((data.root / "a_good.wav").read_bytes())
    (data.root / "b_copy.txt").write_text("Now with words.\n")
    report = validate_dataset(data.arg, tmp_path / "run", emitter=Emitter(io.StringIO()))
    assert [(i["usable"], [problem_kind(p) for p in i["problems"]]) for i in report["items"]] == [
        (False, ["empty transcript"]),
        (True, []),
    ]
