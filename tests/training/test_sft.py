"""`python -m training.sft` on the tiny base checkpoint: label shift, speaker embedding, stop, resume, export."""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.training.conftest import CLIPS, REPO_ROOT, SR, build_dataset, harmonic, run_command
from training.config import load_config
from training.data import (
    IGNORE_INDEX,
    PromptTokens,
    build_batch,
    epoch_batches,
    load_prepared,
    resolve_base,
    sequence_layout,
)
from training.loss import code_predictor_loss, sft_forward, talker_loss
from training.optim import lr_factor
from training.protocol import Emitter, parse_line
from training.run_folder import RunFolder
from training.speaker import average_speaker_embedding, clip_embedding, speaker_clips
from training.trainer import Trainer, is_oom

NAMES = ("a_good", "b_good", "c_stereo48k", "d_good16k", "m_retake")
SPEAKER = "narrator"


@pytest.fixture(scope="module")
def prepared_run(tmp_path_factory, tiny_checkpoints):
    """A validated and prepared run folder (5 items, the first two with a shared reference clip), built once."""
    from training.prepare import prepare_run, resolve_tokenizer

    root = tmp_path_factory.mktemp("sft-data")
    data = build_dataset(root / "data", "jsonl", tuple(c for c in CLIPS if c.name in NAMES))
    (data.root / "refs").mkdir()
    sf.write(data.root / "refs" / "me.wav", harmonic(3.0, 125.0, seed=42), SR)
    lines = [json.loads(line) for line in data.arg.read_text().splitlines()]
    for record in lines[:2]:
        record["ref_audio"] = "refs/me.wav"
    data.arg.write_text("".join(json.dumps(r) + "\n" for r in lines))
    run_dir = root / "run"
    result = run_command("training.validate", data.arg, "--out", run_dir)
    assert result.rc == 0, result.stderr
    spec = resolve_tokenizer(str(tiny_checkpoints["base"]))
    prepare_run(run_dir, spec, emitter=Emitter(io.StringIO()), batch_size=8)
    return run_dir


@pytest.fixture
def run_dir(prepared_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(prepared_run, target)
    return target


def write_config(run_dir: Path, base: Path, **overrides) -> Path:
    settings = {
        "base_model": str(base),
        "speaker": "Narrator",  # names are stored lower-case, as the package looks them up
        "epochs": 3,
        "batch_size": 2,
        "gradient_accumulation": 1,
        # High enough that 8 steps move the tiny model visibly, so a lost optimizer state would show.
        "learning_rate": 1e-4,
        "checkpoint_every": 2,
        "keep_checkpoints": 2,
        "max_steps": 8,
        "sample_max_new_tokens": 6,
        "device": "cpu",
        "cpu_threads": 2,
        **overrides,
    }
    path = run_dir / "run.json"
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


# --- label shift -----------------------------------------------------------------------------------------


def _codes(frames: int, groups: int = 16, offset: int = 0) -> np.ndarray:
    return (np.arange(frames * groups).reshape(frames, groups) * 7 + offset) % 250


TOKENS = PromptTokens(
    tts_pad=90, tts_bos=91, tts_eos=92, codec_prefix=(300, 301, 302), codec_pad=356, codec_bos=357, codec_eos=358
)


def test_labels_pair_each_output_with_the_next_input():
    ids = [1, 2, 3, 40, 41]  # role prefix + two text tokens
    codes = _codes(3)
    batch = build_batch([(ids, codes), ([1, 2, 3, 40], _codes(2, offset=1))], TOKENS)
    lay = sequence_layout(2, 3, 3)
    assert lay == {"speaker": 6, "text": 8, "bos": 11, "first_frame": 12, "length": 15}
    row = {k: v[0] for k, v in batch.items()}
    assert row["codec_ids"][lay["bos"]] == TOKENS.codec_bos
    assert row["speaker_mask"].nonzero().flatten().tolist() == [6]
    assert row["text_ids"][8:11].tolist() == [40, 41, TOKENS.tts_eos]
    # Every label is the first-codebook id fed at the next position; the last one is end of speech.
    labelled = (row["labels"] != IGNORE_INDEX).nonzero().flatten().tolist()
    assert labelled == [11, 12, 13, 14]
    for p in labelled[:-1]:
        assert row["labels"][p] == row["codec_ids"][p + 1] == row["frame_codes"][p + 1, 0]
        assert torch.equal(row["target_codes"][p], row["frame_codes"][p + 1])
    assert row["labels"][14] == TOKENS.codec_eos
    assert row["cp_mask"].nonzero().flatten().tolist() == [11, 12, 13]
    # The shorter second row is padded out of the loss and the attention.
    assert batch["attention_mask"][1].sum() == 13 and (batch["labels"][1, 13:] == IGNORE_INDEX).all()

    # A perfect next-token oracle scores zero; one that reads its own position (off by one) does not.
    vocab = 512
    flat = batch["labels"][batch["labels"] != IGNORE_INDEX]
    oracle = torch.full((flat.numel(), vocab), -50.0)
    oracle[torch.arange(flat.numel()), flat] = 50.0
    assert talker_loss(oracle, flat) < 1e-6
    same_position = batch["codec_ids"][batch["labels"] != IGNORE_INDEX]
    wrong = torch.full((flat.numel(), vocab), -50.0)
    wrong[torch.arange(flat.numel()), same_position] = 50.0
    assert talker_loss(wrong, flat) > 10
    # The code predictor's column j predicts codebook j + 1.
    cp_codes = torch.as_tensor(codes, dtype=torch.long)
    cp_oracle = torch.full((3, 15, vocab), -50.0)
    for j in range(15):
        cp_oracle[torch.arange(3), j, cp_codes[:, j + 1]] = 50.0
    assert code_predictor_loss(cp_oracle, cp_codes) < 1e-6
    assert code_predictor_loss(cp_oracle.roll(1, dims=1), cp_codes) > 10


def test_predictions_see_only_earlier_frames(loaded_models):
    """The real talker: the logit scored against frame t must depend on frame t - 1 and never on frame t."""
    model = loaded_models("base").tts.model
    config = model.config.to_dict()
    tokens = PromptTokens.from_config(config)
    ids = [config["im_start_token_id"], 50, 51, 60, 61, 62]
    codes = _codes(4)
    changed = codes.copy()
    changed[1] = (changed[1] + 3) % 250  # every codebook of frame 1
    one_book = codes.copy()
    one_book[2, 5] = (one_book[2, 5] + 3) % 250  # codebook 5 of frame 2 only
    speaker = torch.randn(model.talker.config.hidden_size, generator=torch.Generator().manual_seed(0))

    def forward(c):
        with torch.no_grad():
            return sft_forward(model.talker, build_batch([(ids, c)], tokens), speaker, keep_logits=True)

    ref, new, new_book = forward(codes), forward(changed), forward(one_book)
    assert ref["talker_labels"].tolist() == [*codes[:, 0].tolist(), tokens.codec_eos]
    assert torch.equal(ref["cp_codes"], torch.as_tensor(codes, dtype=torch.long))
    assert torch.isfinite(ref["loss"]) and ref["loss"] > 0
    # The losses are computed from exactly these pairs (the causality checks below pin what each row sees).
    torch.testing.assert_close(ref["talker_loss"], talker_loss(ref["talker_logits"], ref["talker_labels"]))
    torch.testing.assert_close(ref["code_predictor_loss"], code_predictor_loss(ref["cp_logits"], ref["cp_codes"]))
    torch.testing.assert_close(ref["loss"], ref["talker_loss"] + 0.3 * ref["code_predictor_loss"])
    # Talker rows predict frames 0, 1, 2, 3 and end of speech.
    torch.testing.assert_close(new["talker_logits"][:2], ref["talker_logits"][:2], rtol=0, atol=0)
    assert not torch.allclose(new["talker_logits"][2], ref["talker_logits"][2])
    # Code predictor: frame 2's predictions of codebooks 1..5 cannot see codebook 5; that of codebook 6 must.
    torch.testing.assert_close(new_book["cp_logits"][2, :5], ref["cp_logits"][2, :5], rtol=0, atol=0)
    assert not torch.allclose(new_book["cp_logits"][2, 5], ref["cp_logits"][2, 5])


# --- speaker embedding -----------------------------------------------------------------------------------


def test_speaker_embedding_is_the_mean_over_the_reference_clips(
    loaded_models, prepared_run, tiny_checkpoints, tmp_path
):
    model = loaded_models("base").tts.model
    config = write_config(tmp_path, tiny_checkpoints["base"])
    base = resolve_base(load_config(config), config)
    items = load_prepared(prepared_run, base)
    clips = speaker_clips(items)
    # ref_audio where given (shared by the first two items, so counted once), else the item's own audio.
    assert [c.relative_to(prepared_run).as_posix() for c in clips] == [
        "ref/001_me.wav",
        items[2].audio.relative_to(prepared_run).as_posix(),
        items[3].audio.relative_to(prepared_run).as_posix(),
        items[4].audio.relative_to(prepared_run).as_posix(),
    ]
    first, second = clip_embedding(model, clips[0]), clip_embedding(model, clips[1])
    mean = average_speaker_embedding(model, clips[:2])
    assert mean.shape == first.shape == (model.talker.config.hidden_size,)
    assert not torch.allclose(mean, first, atol=1e-4)
    torch.testing.assert_close(mean, (first + second) / 2)


# --- pure helpers ----------------------------------------------------------------------------------------


def test_schedule_and_batches():
    factors = [lr_factor(s, 20, 4, "cosine") for s in range(1, 21)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False)) and factors[-1] > 0
    assert lr_factor(20, 20, 0, "linear") > 0
    first = epoch_batches(5, 2, seed=3, epoch=0)
    assert first == epoch_batches(5, 2, seed=3, epoch=0) != epoch_batches(5, 2, seed=3, epoch=1)
    assert sorted(i for b in first for i in b) == [0, 1, 2, 3, 4] and [len(b) for b in first] == [2, 2, 1]
    shards = [epoch_batches(5, 2, seed=3, epoch=0, rank=r, world=2) for r in range(2)]
    assert [len(s) for s in shards] == [2, 2]
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory")) and is_oom(RuntimeError("CUDA out of memory."))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_config_defaults_and_errors(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"base_model": "x", "speaker": "My_Voice"}))
    config = load_config(path)
    assert config.speaker == "my_voice" and config.learning_rate == 1e-7 and config.weight_decay == 0.01
    assert (config.precision, config.device, config.keep_checkpoints) == ("auto", "auto", 2)
    paths = RunFolder.for_config(path, config)
    assert paths.export("my_voice") == tmp_path / "export" / "my_voice"
    assert paths.checkpoints == tmp_path / "checkpoints"
    for settings, message in [
        ({"base_model": "x"}, "field 'speaker' is required"),
        ({"base_model": "x", "speaker": "a b"}, "field 'speaker' 'a b' is not a usable speaker name"),
        ({"base_model": "x", "speaker": "a", "epochs": 0}, "field 'epochs' must be at least 1"),
        ({"base_model": "x", "speaker": "a", "epochs": 2.5}, "field 'epochs' must be an integer"),
        ({"base_model": "x", "speaker": "a", "learning_rate": 0}, "field 'learning_rate' must be greater than 0"),
        ({"base_model": "x", "speaker": "a", "precision": "fp16"}, "field 'precision' must be one of auto, bf16"),
        ({"base_model": "x", "speaker": "a", "lerning_rate": 1}, "unknown field 'lerning_rate'"),
    ]:
        path.write_text(json.dumps(settings))
        with pytest.raises(Exception, match=message.replace("(", r"\(")):
            load_config(path)


# --- the command ---------------------------------------------------------------------------------------


def _stream_until_stop(config: Path, stop_after: int | None, timeout: float = 120, *,
                       command: list[str] | None = None, env: dict | None = None):
    """Run sft (`command`, default `python -m training.sft --config CONFIG`), creating the stop file when
    step `stop_after` is reported, as the wizard's stop button does; None never stops it."""
    proc = subprocess.Popen(
        command or [sys.executable, "-m", "training.sft", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events = []
    assert proc.stdout is not None
    for line in proc.stdout:
        event = parse_line(line)
        assert event is not None, f"stdout line is not a protocol event: {line!r}"
        events.append(event)
        if stop_after is not None and event["event"] == "step" and event["step"] == stop_after:
            (config.parent / "STOP").touch()
    stderr = proc.stderr.read() if proc.stderr else ""
    return proc.wait(timeout=timeout), events, stderr


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.slow
def test_train_stop_resume_export_render(run_dir, tmp_path, prepared_run, tiny_checkpoints, loaded_models):
    config = write_config(run_dir, tiny_checkpoints["base"])

    # 1. Train until the stop file: the step in flight finishes, is saved, and the run exits with 3.
    rc, events, stderr = _stream_until_stop(config, stop_after=3)
    assert rc == 3, stderr
    assert "Traceback" not in stderr
    start = events[0]
    assert (start["event"], start["what"], start["total"], start["resumed_from"]) == ("start", "sft", 8, None)
    assert (start["steps_per_epoch"], start["items"], start["speaker_clips"], start["speaker"]) == (3, 5, 4, SPEAKER)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    for e in steps:
        assert e["total"] == 8 and math.isfinite(e["loss"]) and e["loss"] > 0
        assert math.isfinite(e["grad_norm"]) and 0 < e["lr"] <= 1e-4 and e["peak_mem_gb"] > 0
        assert e["epoch"] == (e["step"] - 1) // 3 + 1 and e["eta_s"] is not None
        assert e["talker_loss"] + 0.3 * e["code_predictor_loss"] == pytest.approx(e["loss"], rel=1e-5)
    done = events[-1]
    saved = steps[-1]["step"]
    assert 3 <= saved < 8
    assert done["event"] == "done" and done["stopped"] is True and done["step"] == saved
    states = [e for e in events if e["event"] == "checkpoint" and e["kind"] == "state"]
    assert states[-1]["step"] == saved and Path(done["checkpoint"]) == run_dir / "checkpoints" / f"step-{saved:06d}"
    assert [e["step"] for e in states if e["step"] != saved] == [s for s in (2, 4) if s < saved]
    assert not (run_dir / "STOP").exists()
    kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(kept) <= 2 and kept[-1] == f"step-{saved:06d}"
    assert (run_dir / "samples" / "epoch-001.wav").is_file()
    assert (run_dir / "tensorboard").is_dir() and (run_dir / "metrics.csv").is_file()

    # Settings that would change the data order or the schedule cannot resume that checkpoint.
    write_config(run_dir, tiny_checkpoints["base"], batch_size=3)
    refused = run_command("training.sft", "--config", config)
    assert refused.rc == 2 and [e["event"] for e in refused.events] == ["error"]
    assert "was made with batch_size 2, run.json now says 3" in refused.events[0]["message"]
    write_config(run_dir, tiny_checkpoints["base"])

    # 2. The same command again resumes from the saved step, with the schedule where it was.
    resumed = run_command("training.sft", "--config", config)
    assert resumed.rc == 0, resumed.stderr
    start = resumed.kinds("start")[0]
    assert start["resumed_from"] == saved and start["checkpoint"].endswith(f"step-{saved:06d}")
    steps2 = resumed.kinds("step")
    assert steps2[0]["step"] == saved + 1 and steps2[-1]["step"] == 8
    assert steps2[0]["lr"] == pytest.approx(1e-4 * lr_factor(saved + 1, 8, 0, "cosine"))
    done = resumed.events[-1]
    assert done["event"] == "done" and "stopped" not in done and done["step"] == 8
    export = Path(done["export"])
    assert export == run_dir / "export" / SPEAKER
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [f"epoch-00{i}.wav" for i in (1, 2, 3)]
    assert done["samples"] == [str(run_dir / "samples" / f"epoch-00{i}.wav") for i in (1, 2, 3)]
    audio, rate = sf.read(run_dir / "samples" / "epoch-003.wav")
    assert rate == 24000 and len(audio) > 0
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 9))

    # 3. An uninterrupted run of the same settings ends with the same weights: the resume restored the
    #    weights, the AdamW moments, the schedule and the position in the data.
    straight_dir = tmp_path / "straight"
    shutil.copytree(prepared_run, straight_dir)
    straight_config = write_config(straight_dir, tiny_checkpoints["base"])
    cfg = load_config(straight_config)
    out = io.StringIO()
    try:
        summary = Trainer(
            cfg,
            RunFolder.for_config(straight_config, cfg),
            resolve_base(cfg, straight_config),
            Emitter(out),
            should_stop=lambda: False,
        ).run()
    finally:
        # accelerate keeps process-wide singletons; later tests must not inherit this run's settings.
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    assert summary["step"] == 8
    in_process = [json.loads(line) for line in out.getvalue().splitlines()]
    assert in_process[0]["resumed_from"] is None and in_process[-1]["kind"] == "export"
    ours, theirs = _weights(export / "model.safetensors"), _weights(Path(summary["export"]) / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-7, msg=key)
    base_weights = _weights(tiny_checkpoints["base"] / "model.safetensors")
    assert not torch.equal(ours["talker.codec_head.weight"], base_weights["talker.codec_head.weight"])

    # 4. The export: a CustomVoice checkpoint whose speaker row is the run's averaged speaker embedding.
    exported = json.loads((export / "config.json").read_text())
    slot = exported["talker_config"]["spk_id"][SPEAKER]
    assert exported["tts_model_type"] == "custom_voice" and done["slot"] == slot
    assert exported["talker_config"]["spk_is_dialect"] == {SPEAKER: False}
    assert not any(k.startswith("speaker_encoder.") for k in ours)
    assert {k for k in base_weights if not k.startswith("speaker_encoder.")} == set(ours)
    # Laid out like a published CustomVoice folder: the base's support files, no speaker encoder.
    base_files = {p.relative_to(tiny_checkpoints["base"]) for p in tiny_checkpoints["base"].rglob("*") if p.is_file()}
    assert {p.relative_to(export) for p in export.rglob("*") if p.is_file()} == base_files
    assert "speaker_encoder_config" not in exported
    base = resolve_base(cfg, straight_config)
    clips = speaker_clips(load_prepared(prepared_run, base))
    expected = average_speaker_embedding(loaded_models("base").tts.model, clips)
    torch.testing.assert_close(ours["talker.model.codec_embedding.weight"][slot], expected, rtol=1e-5, atol=1e-6)

    # 5. --export-only rebuilds the same export from the newest checkpoint without training.
    again = run_command("training.sft", "--config", config, "--export-only")
    assert again.rc == 0, again.stderr
    assert again.kinds("start")[0]["what"] == "sft-export" and not again.kinds("step")
    rebuilt = _weights(export / "model.safetensors")
    assert all(torch.equal(rebuilt[k], ours[k]) for k in ours)

    # 6. qwen-tts and the studio load it and speak with the new speaker.
    from studio.engine.loader import load_model
    from studio.engine.qwen_import import import_qwen_tts

    tts = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(export))
    assert list(tts.get_supported_speakers()) == [SPEAKER]
    torch.manual_seed(0)
    wavs, rate = tts.generate_custom_voice("Hello world.", speaker=SPEAKER, max_new_tokens=6)
    assert rate == 24000 and len(wavs[0]) > 0
    loaded = load_model(str(export), device="cpu", cpu_threads=2)
    assert loaded.info.model_type == "custom_voice" and loaded.info.speakers == (SPEAKER,)

    script = tmp_path / "line.txt"
    script.write_text("Hello from the new voice.\n")
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "render",
            str(script),
            "--model",
            str(export),
            "--speaker",
            SPEAKER,
            "--out",
            str(tmp_path / "out"),
            "--cache",
            str(tmp_path / "cache"),
            "--max-new-tokens",
            "12",
            "--threads",
            "2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rendered.returncode == 0, rendered.stderr
    wav = next((tmp_path / "out").glob("*.wav"))
    audio, rate = sf.read(wav)
    assert rate == 24000 and len(audio) > 0


@pytest.mark.parametrize(
    "case", ["no_base", "not_base", "no_prepared", "corrupt_codes", "bad_field", "export_without_checkpoint"]
)
def test_bad_input_gives_an_error_event_and_exit_2(run_dir, tiny_checkpoints, case):
    base = tiny_checkpoints["base"]
    args = []
    overrides = {}
    if case == "no_base":
        base, expect = run_dir / "no-such-model", "no such model folder"
    elif case == "not_base":
        base, expect = tiny_checkpoints["custom_voice"], "is a custom_voice checkpoint, not a Base one"
    elif case == "no_prepared":
        (run_dir / "prepared.jsonl").unlink()
        expect = "prepared.jsonl: not found"
    elif case == "corrupt_codes":
        victim = sorted((run_dir / "codes").iterdir())[1]
        victim.write_bytes(victim.read_bytes()[:40])
        expect = f"{victim}: prepared code file unreadable"
    elif case == "bad_field":
        overrides, expect = {"batch_size": 0}, "field 'batch_size' must be at least 1"
    else:
        args, expect = ["--export-only"], "no checkpoint to export"
    config = write_config(run_dir, base, **overrides)
    result = run_command("training.sft", "--config", config, *args)
    assert result.rc == 2, result.stderr
    assert [e["event"] for e in result.events] == ["error"]
    assert expect in result.events[0]["message"] and result.events[0]["hint"]
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
