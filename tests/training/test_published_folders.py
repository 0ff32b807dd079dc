"""Folders laid out exactly as published, through every step a user takes with them.

Slow text tokenizer only, the published config values (tokenizer_type "qwen3_tts_tokenizer_12hz", no
talker pad_token_id, max_new_tokens 8192, a text embedding wider than the talker), and weights sharded
the way community fine-tunes ship them: load, render one line with each kind of voice, validate and
prepare recordings, two fine-tuning steps, export, and render with the exported speaker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.training.conftest import CLIPS, REPO_ROOT, SR, build_dataset, harmonic, run_command

SPEAKER = "published"
NAMES = ("a_good", "b_good", "c_stereo48k", "d_good16k")


def _render_line(loaded, voice) -> np.ndarray:
    from studio.core.project import GenerationParams
    from studio.engine.synth import Synthesizer, SynthRequest

    request = SynthRequest("Hello from a published layout.", voice, language="english", seed=1,
                           generation=GenerationParams(max_new_tokens=8))
    audio = np.concatenate([chunk.samples for chunk in Synthesizer(loaded).stream(request)])
    assert audio.size > 0 and np.isfinite(audio).all() and float(np.abs(audio).max()) > 0.01
    return audio


@pytest.mark.slow
def test_published_and_sharded_folders_load_render_fine_tune_and_export(tmp_path):
    from studio.core.voice import VoiceSpec
    from studio.engine.loader import load_model
    from studio.engine.tiny import TINY_TYPES, build_tiny_checkpoint

    models = {kind: build_tiny_checkpoint(tmp_path / "models" / kind, model_type=kind, seed=5, shards=2)
              for kind in TINY_TYPES}
    for folder in models.values():
        assert not (folder / "tokenizer.json").exists() and (folder / "vocab.json").is_file()
        assert not (folder / "model.safetensors").exists() and (folder / "model.safetensors.index.json").is_file()
        config = json.loads((folder / "config.json").read_text())
        assert config["tokenizer_type"] == "qwen3_tts_tokenizer_12hz"
        assert "pad_token_id" not in config["talker_config"]
        assert config["talker_config"]["text_hidden_size"] != config["talker_config"]["hidden_size"]
        assert json.loads((folder / "generation_config.json").read_text())["max_new_tokens"] == 8192

    # Load, and one line with each kind of voice.
    clip = tmp_path / "me.wav"
    sf.write(clip, harmonic(2.0, 140.0, seed=3), SR)
    voices = {
        "voice_design": VoiceSpec.design("A calm, low voice."),
        "custom_voice": VoiceSpec.preset("ryan"),
        "base": VoiceSpec.clone(clip, "A short clip of me speaking."),
    }
    for kind, folder in models.items():
        loaded = load_model(str(folder), device="cpu", cpu_threads=2)
        assert loaded.info.model_type == kind
        _render_line(loaded, voices[kind])

    # Validate and prepare recordings with the sharded Base's speech tokenizer.
    data = build_dataset(tmp_path / "data", "jsonl", tuple(c for c in CLIPS if c.name in NAMES))
    run_dir = tmp_path / "run"
    validated = run_command("training.validate", data.arg, "--out", run_dir)
    assert validated.rc == 0, validated.stderr
    prepared = run_command("training.prepare", run_dir, "--tokenizer", models["base"], "--cpu-threads", "2")
    assert prepared.rc == 0, prepared.stderr
    assert prepared.events[-1]["event"] == "done"

    # Two fine-tuning steps from the sharded Base, then the export.
    (run_dir / "run.json").write_text(json.dumps({
        "base_model": str(models["base"]), "speaker": SPEAKER, "epochs": 1, "batch_size": 2, "gradient_accumulation": 1,
        "learning_rate": 1e-4, "max_steps": 2, "sample_max_new_tokens": 4, "device": "cpu", "cpu_threads": 2,
    }))
    trained = run_command("training.sft", "--config", run_dir / "run.json", timeout=300)
    assert trained.rc == 0, trained.stderr
    assert [e["step"] for e in trained.kinds("step")] == [1, 2]
    export = Path(trained.events[-1]["export"])
    exported = json.loads((export / "config.json").read_text())
    assert exported["tts_model_type"] == "custom_voice" and exported["talker_config"]["spk_id"] == {SPEAKER: 1279}
    assert "speaker_encoder_config" not in exported
    assert (export / "model.safetensors").is_file() and not (export / "model.safetensors.index.json").exists()
    assert (export / "vocab.json").is_file() and not (export / "tokenizer.json").exists()

    # The exported speaker, rendered by the command line a user would run.
    script = tmp_path / "line.txt"
    script.write_text("Hello from the fine-tuned voice.\n")
    rendered = subprocess.run(
        [sys.executable, "-m", "studio", "render", str(script), "--model", str(export), "--speaker", SPEAKER,
         "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--max-new-tokens", "8",
         "--threads", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "pad_token_id" not in rendered.stderr and "Loading checkpoint" not in rendered.stderr
    audio, rate = sf.read(next((tmp_path / "out").glob("*.wav")))
    assert rate == 24000 and len(audio) > 0 and np.abs(audio).max() > 0.01
