"""The tiny random-weight checkpoints must load and speak through the real qwen-tts entry points."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.engine import tiny
from studio.engine.tiny import TINY_TYPES, build_tiny_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXT = "Hello world, this is a short test."
FRAMES = 30


# `tiny_checkpoints` (one folder per type, seed 0, built once per session) lives in tests/conftest.py.


def _load(path: Path):
    from qwen_tts import Qwen3TTSModel

    return Qwen3TTSModel.from_pretrained(str(path))


def _reference_clip(seconds: float = 1.5, sr: int = 24000) -> np.ndarray:
    # A gliding tone with a slow amplitude wobble: deterministic and not silent.
    t = np.arange(int(seconds * sr)) / sr
    tone = np.sin(2 * np.pi * (150 + 60 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * tone).astype(np.float32)


def _assert_speech_like(wav: np.ndarray, sr: int) -> None:
    assert sr == 24000
    assert wav.ndim == 1 and wav.dtype == np.float32
    assert wav.size >= 1920 * 10, f"only {wav.size} samples"
    assert np.isfinite(wav).all()
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    clipped = float(np.mean(np.abs(wav) >= 0.999))
    assert 0.03 < rms < 0.4, f"rms {rms:.4f} outside a speech-like range"
    assert clipped < 0.01, f"{clipped:.1%} of samples clipped"


def _generate(model, model_type: str, **kwargs):
    if model_type == "voice_design":
        return model.generate_voice_design(
            TEXT, instruct="A calm, low voice.", language="english", max_new_tokens=FRAMES, **kwargs
        )
    if model_type == "custom_voice":
        return model.generate_custom_voice(
            TEXT, speaker="ryan", language="english", instruct="Cheerful.", max_new_tokens=FRAMES, **kwargs
        )
    prompt = model.create_voice_clone_prompt(ref_audio=(_reference_clip(), 24000), x_vector_only_mode=True)
    return model.generate_voice_clone(
        TEXT, language="english", voice_clone_prompt=prompt, max_new_tokens=FRAMES, **kwargs
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("model_type", TINY_TYPES)
def test_each_type_loads_and_generates_audible_audio(tiny_checkpoints, model_type):
    model = _load(tiny_checkpoints[model_type])
    assert model.model.tts_model_type == model_type

    wavs, sr = _generate(model, model_type)

    assert len(wavs) == 1
    _assert_speech_like(wavs[0], sr)
    # Random weights never emit end-of-speech, so the frame cap decides the length.
    assert wavs[0].size % 1920 == 0 and wavs[0].size // 1920 >= FRAMES - 2


PUBLISHED = json.loads((Path(__file__).parent / "published_layout.json").read_text(encoding="utf-8"))
# The one key a random-weight checkpoint adds: it tells reports and the studio it is not a real model.
OUR_MARKER = "studio_tiny_checkpoint"


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _check_config_keys(config: dict, model_type: str, *, published_size: bool) -> None:
    keys = PUBLISHED["config"]
    expected = set(keys["top_level"]) | (set(keys["base_only"]) if model_type == "base" else set())
    assert set(config) - {OUR_MARKER} == expected
    talker = config["talker_config"]
    assert set(talker) == set(keys["talker_config"]), "talker_config keys differ (a pad_token_id?)"
    assert set(talker["code_predictor_config"]) == set(keys["code_predictor_config"])
    for key, value in keys["values"].items():
        assert config[key] == value, key
    assert talker["position_id_per_seconds"] == keys["talker_values"]["position_id_per_seconds"]
    if model_type == "base":
        speaker = config["speaker_encoder_config"]
        if published_size:
            assert set(speaker) == set(keys["speaker_encoder_config"])
        else:
            # The tiny geometry needs its own channel counts, and nothing the constructor would refuse.
            import inspect

            from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSSpeakerEncoderConfig

            allowed = set(inspect.signature(Qwen3TTSSpeakerEncoderConfig.__init__).parameters) - {"self"}
            assert set(keys["speaker_encoder_config"]) <= set(speaker) <= allowed
        assert speaker["enc_dim"] == talker["hidden_size"]


def _check_speech_tokenizer_keys(st_config: dict) -> None:
    keys = PUBLISHED["speech_tokenizer_config"]
    assert set(st_config) == set(keys["top_level"])
    assert set(st_config["decoder_config"]) == set(keys["decoder_config"])
    assert keys["encoder_frame_rate_key"] in st_config["encoder_config"]
    assert "frame_rate" not in st_config["encoder_config"]


@pytest.mark.parametrize("model_type", TINY_TYPES)
def test_each_folder_holds_the_published_files_and_config_keys(tiny_checkpoints, model_type):
    folder = tiny_checkpoints[model_type]

    assert _files(folder) == sorted(PUBLISHED["files"]["common"])
    config = json.loads((folder / "config.json").read_text())
    _check_config_keys(config, model_type, published_size=False)
    _check_speech_tokenizer_keys(json.loads((folder / "speech_tokenizer" / "config.json").read_text()))
    assert json.loads((folder / "generation_config.json").read_text()) == PUBLISHED["generation_config"]
    assert json.loads((folder / "preprocessor_config.json").read_text()) == PUBLISHED["preprocessor_config"]
    preprocessor = json.loads((folder / "speech_tokenizer" / "preprocessor_config.json").read_text())
    assert preprocessor["sampling_rate"] == 24000
    # The 0.6B shape: the text projection maps a wider text embedding onto the talker.
    talker = config["talker_config"]
    assert talker["text_hidden_size"] > talker["hidden_size"]


@pytest.mark.parametrize(("model_type", "size"), [("voice_design", "full"), ("custom_voice", "full"), ("base", "full"),
                                                  ("custom_voice", "0.6b"), ("base", "0.6b")])
def test_published_sizes_have_the_published_config_keys_and_values(model_type, size):
    model_cfg, st_cfg = tiny.checkpoint_configs(model_type, size)
    values = PUBLISHED["config"]

    _check_config_keys(model_cfg, model_type, published_size=True)
    _check_speech_tokenizer_keys(st_cfg)
    assert model_cfg["tts_model_size"] == values["tts_model_size"][size]
    talker = model_cfg["talker_config"]
    for key, value in values["talker_values"].items():
        assert talker[key] == value, key
    expected_speakers = values["custom_voice_spk_id"] if model_type == "custom_voice" else {}
    assert talker["spk_id"] == expected_speakers
    geometry = values["geometry"][size]
    assert (talker["hidden_size"], talker["text_hidden_size"], talker["intermediate_size"]) == (
        geometry["hidden_size"], geometry["text_hidden_size"], geometry["intermediate_size"]
    )
    if model_type == "base":
        assert model_cfg["speaker_encoder_config"]["enc_dim"] == geometry["enc_dim"]
    for key, value in PUBLISHED["speech_tokenizer_config"]["values_at_full"].items():
        section = st_cfg["encoder_config"] if key.startswith("_") else st_cfg["decoder_config"]
        assert section[key] == value, key


def test_the_0_6b_size_has_the_published_parameter_count():
    model, _ = tiny.meta_models("base", "0.6b")

    # QWEN3_TTS_FACTS.md: 914,643,008 parameters in Qwen3-TTS-12Hz-0.6B-Base's model.safetensors.
    assert sum(p.numel() for p in model.parameters()) == 914_643_008
    assert tuple(model.talker.model.text_embedding.weight.shape) == (151936, 2048)
    assert model.speaker_encoder.fc.out_channels == 1024


def test_the_slow_tokenizer_files_reproduce_the_config_ids(tiny_checkpoints):
    from transformers import AutoTokenizer

    folder = tiny_checkpoints["custom_voice"]
    config = json.loads((folder / "config.json").read_text())
    # transformers converts vocab.json + merges.txt into a fast tokenizer, as it does for the published ones.
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    expected = {
        "im_start_token_id": "<|im_start|>",
        "im_end_token_id": "<|im_end|>",
        "tts_pad_token_id": "<tts_pad>",
        "tts_bos_token_id": "<tts_text_bos>",
        "tts_eos_token_id": "<tts_text_eod>",
        "assistant_token_id": "assistant",
    }
    for key, token in expected.items():
        assert tokenizer.convert_ids_to_tokens(config[key]) == token, key
    assert config["talker_config"]["text_vocab_size"] > max(config[key] for key in expected)
    # The package slices prompts by position; "assistant" and "\n" must be single tokens.
    ids = tokenizer("<|im_start|>assistant\n")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<|im_start|>", "assistant", "Ċ"]


def test_a_sharded_build_holds_the_same_weights_in_shards_and_an_index(tiny_checkpoints, tmp_path):
    from safetensors.torch import load_file

    sharded = build_tiny_checkpoint(tmp_path / "sharded", model_type="base", seed=0, shards=3)

    names = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert sorted(set(_files(sharded)) - set(_files(tiny_checkpoints["base"]))) == [
        *names, "model.safetensors.index.json"
    ]
    assert not (sharded / "model.safetensors").exists()
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    single = load_file(str(tiny_checkpoints["base"] / "model.safetensors"))
    assert set(index["weight_map"]) == set(single) and set(index["weight_map"].values()) == set(names)
    merged = {}
    for name in names:
        part = load_file(str(sharded / name))
        assert part and all(index["weight_map"][key] == name for key in part)
        merged.update(part)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in merged.values())
    for key, tensor in single.items():
        assert torch.equal(merged[key], tensor), key


def test_custom_voice_lists_speakers_and_languages(tiny_checkpoints):
    model = _load(tiny_checkpoints["custom_voice"])

    speakers = model.get_supported_speakers()
    languages = model.get_supported_languages()

    assert speakers is not None and {"serena", "ryan"} <= set(speakers)
    assert {"auto", "english", "chinese", "german"} <= set(languages)
    assert not any("dialect" in name for name in languages)


def test_custom_voice_honours_instruct(tiny_checkpoints):
    model = _load(tiny_checkpoints["custom_voice"])
    # Greedy decoding makes the two runs comparable; a 0.6B-marked model would drop instruct and
    # produce identical audio.
    greedy = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=12)

    plain, _ = model.generate_custom_voice(TEXT, speaker="serena", language="english", **greedy)
    styled, _ = model.generate_custom_voice(
        TEXT, speaker="serena", language="english", instruct="Speak angrily.", **greedy
    )

    assert not np.array_equal(plain[0], styled[0])


def test_voice_design_and_base_have_no_preset_speakers(tiny_checkpoints):
    for model_type in ("voice_design", "base"):
        model = _load(tiny_checkpoints[model_type])
        assert not model.get_supported_speakers()


@pytest.mark.parametrize("x_vector_only", [True, False])
def test_base_clones_a_voice_from_a_prompt(tiny_checkpoints, x_vector_only):
    model = _load(tiny_checkpoints["base"])
    hidden = json.loads((tiny_checkpoints["base"] / "config.json").read_text())["talker_config"]["hidden_size"]

    prompt = model.create_voice_clone_prompt(
        ref_audio=(_reference_clip(), 24000),
        ref_text=None if x_vector_only else "A short reference clip.",
        x_vector_only_mode=x_vector_only,
    )

    (item,) = prompt
    assert tuple(item.ref_spk_embedding.shape) == (hidden,)
    assert float(item.ref_spk_embedding.norm()) > 0
    if x_vector_only:
        assert item.ref_code is None
    else:
        assert item.icl_mode
        assert item.ref_code.ndim == 2 and item.ref_code.shape[1] == 16
        # 1.5 s at 12.5 frames per second.
        assert abs(item.ref_code.shape[0] - 19) <= 1
        assert len(set(item.ref_code[:, 0].tolist())) > 1, "encoder maps everything to one code"

    wavs, sr = model.generate_voice_clone(TEXT, language="english", voice_clone_prompt=prompt, max_new_tokens=FRAMES)
    _assert_speech_like(wavs[0], sr)


def test_same_seed_gives_identical_weights_and_other_seed_differs(tiny_checkpoints, tmp_path):
    reference = tiny_checkpoints["voice_design"]
    again = build_tiny_checkpoint(tmp_path / "again", model_type="voice_design", seed=0)
    other = build_tiny_checkpoint(tmp_path / "other", model_type="voice_design", seed=1)

    for name in ("model.safetensors", "speech_tokenizer/model.safetensors"):
        assert _sha256(again / name) == _sha256(reference / name), name
        assert _sha256(other / name) != _sha256(reference / name), name


def test_build_into_an_empty_folder_and_leave_no_staging_behind(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()

    assert tiny.main([str(target), "--type", "voice_design", "--seed", "3"]) == 0

    assert (target / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(folder, *args, **kwargs):
        (folder / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tiny, "_build_into", broken)

    with pytest.raises(RuntimeError):
        build_tiny_checkpoint(tmp_path / "ckpt", model_type="base")
    assert list(tmp_path.iterdir()) == []


def test_unknown_type_is_refused_by_the_api(tmp_path):
    with pytest.raises(tiny.TinyCheckpointError):
        build_tiny_checkpoint(tmp_path / "ckpt", model_type="large")
    assert not (tmp_path / "ckpt").exists()


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "studio.engine.tiny", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_rejects_an_unknown_type_with_one_line(tmp_path):
    result = _run_cli(str(tmp_path / "ckpt"), "--type", "giant")

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "giant" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ckpt").exists()


def test_cli_refuses_a_non_empty_output_folder(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "keep.txt").write_text("mine")

    result = _run_cli(str(target), "--type", "base")

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]


def test_cli_refuses_a_model_that_was_never_published(tmp_path):
    result = _run_cli(str(tmp_path / "ckpt"), "--type", "voice_design", "--size", "0.6b")

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no published 0.6B VoiceDesign" in lines[0], result.stderr
    assert not (tmp_path / "ckpt").exists()
