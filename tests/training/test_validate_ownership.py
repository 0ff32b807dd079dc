"""`training.validate` never deletes or overwrites a file it did not create (issue #13, item 1)."""

from __future__ import annotations

import io
import json

import pytest
import soundfile as sf

from tests.training.conftest import CLIPS, SR, harmonic, run_command, tree_hashes
from training.protocol import CommandError, Emitter
from training.validate import validate_dataset


def _jsonl_dataset_with_audio_folder(root):
    """A JSONL dataset whose recordings sit in ROOT/audio, plus outtakes the manifest does not list."""
    audio = root / "audio"
    audio.mkdir(parents=True)
    lines = []
    for index, f0 in enumerate((140.0, 180.0)):
        sf.write(audio / f"take{index}.wav", harmonic(1.5, f0, seed=index), SR, subtype="PCM_16")
        lines.append(json.dumps({"audio": f"audio/take{index}.wav", "text": f"Sentence number {index}."}))
    sf.write(audio / "outtake.wav", harmonic(1.5, 200.0, seed=9), SR, subtype="PCM_16")
    (root / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "train.jsonl"


@pytest.mark.parametrize("layout", ["jsonl", "ljspeech"])
def test_run_folder_that_is_the_dataset_folder_is_refused_and_nothing_is_touched(make_dataset, tmp_path, layout):
    if layout == "jsonl":
        arg = _jsonl_dataset_with_audio_folder(tmp_path / "data")
        root = arg.parent
    else:
        data = make_dataset("ljspeech", CLIPS[:3])
        root, arg = data.root, data.arg
        # The user keeps other recordings in an audio/ folder beside wavs/.
        (root / "audio").mkdir()
        sf.write(root / "audio" / "mine.wav", harmonic(1.5, 150.0), SR)
    before = tree_hashes(root)
    result = run_command("training.validate", arg, "--out", root)
    assert result.rc == 2
    assert "the run folder is inside the dataset folder" in result.events[-1]["message"]
    assert "Traceback" not in result.stderr
    assert tree_hashes(root) == before


def test_files_of_the_users_in_the_run_folder_survive_a_validation(make_dataset, tmp_path):
    data = make_dataset("folder", CLIPS[:3])
    run_dir = tmp_path / "run"
    (run_dir / "audio").mkdir(parents=True)
    (run_dir / "ref").mkdir()
    sf.write(run_dir / "audio" / "my_note.wav", harmonic(1.0, 150.0), SR)
    sf.write(run_dir / "ref" / "my_ref.wav", harmonic(1.0, 160.0), SR)
    mine = {rel: digest for rel, digest in tree_hashes(run_dir).items()}
    for _ in range(2):  # the second run is the one that used to clean up "stale" clips
        validate_dataset(data.arg, run_dir, emitter=Emitter(io.StringIO()))
        after = tree_hashes(run_dir)
        assert {rel: after.get(rel) for rel in mine} == mine
    assert sorted(p.name for p in (run_dir / "audio").iterdir()) == [
        "00001_a_good.wav", "00002_b_good.wav", "00003_c_stereo48k.wav", "my_note.wav"
    ]


def test_a_file_of_the_users_where_a_prepared_clip_would_go_is_never_overwritten(make_dataset, tmp_path):
    data = make_dataset("folder", CLIPS[:2])
    run_dir = tmp_path / "run"
    (run_dir / "audio").mkdir(parents=True)
    clash = run_dir / "audio" / "00002_b_good.wav"
    clash.write_bytes(b"the user's own file")
    with pytest.raises(CommandError, match="00002_b_good.wav: exists and was not written by this command"):
        validate_dataset(data.arg, run_dir, emitter=Emitter(io.StringIO()))
    assert clash.read_bytes() == b"the user's own file"


def test_a_listed_recording_inside_the_run_folder_is_refused(tmp_path):
    # The manifest lives elsewhere but points into the folder chosen as the run folder.
    recordings = tmp_path / "recordings"
    (recordings / "audio").mkdir(parents=True)
    sf.write(recordings / "audio" / "a.wav", harmonic(1.5, 140.0), SR)
    manifest = tmp_path / "lists" / "train.jsonl"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"audio": str(recordings / "audio" / "a.wav"), "text": "Hello there."}) + "\n")
    before = tree_hashes(recordings)
    with pytest.raises(CommandError, match="the run folder holds the dataset's recording"):
        validate_dataset(manifest, recordings, emitter=Emitter(io.StringIO()))
    assert tree_hashes(recordings) == before


def test_a_non_utf8_manifest_names_the_line_and_column(tmp_path):
    manifest = tmp_path / "metadata.csv"
    manifest.write_bytes(b"a|Hello there.\nb|Caf\xe9 au lait.\n")
    result = run_command("training.validate", manifest, "--out", tmp_path / "run")
    assert result.rc == 2
    assert f"{manifest}: line 2, column 6: not UTF-8 text" in result.events[-1]["message"]


def test_oversized_manifests_and_transcripts_are_refused_by_size(make_dataset, tmp_path):
    manifest = tmp_path / "huge" / "metadata.csv"
    manifest.parent.mkdir()
    with open(manifest, "wb") as handle:  # sparse: 65 MB of zeros without writing them
        handle.truncate(65 * 1024 * 1024)
    result = run_command("training.validate", manifest, "--out", tmp_path / "run1")
    assert result.rc == 2
    assert result.events[-1]["message"] == f"{manifest}: larger than the 64 MB a dataset manifest may have"

    data = make_dataset("folder", CLIPS[:2])
    (data.root / "b_good.txt").write_text("word " * 300_000, encoding="utf-8")  # 1.5 MB "transcript"
    report = validate_dataset(data.arg, tmp_path / "run2", emitter=Emitter(io.StringIO()))
    assert report["items"][1]["problems"] == ["unreadable transcript: b_good.txt is larger than 1 MB"]
