"""Which checkpoint folders the studio accepts, and one line naming the file for each that it cannot use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.engine.checkpoint_files import validate_checkpoint
from studio.engine.loader import EngineError, load_model
from studio.engine.tiny import build_tiny_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sharded_base(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("sharded") / "base", model_type="base", shards=2)


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --- accepted ---------------------------------------------------------------------------------------------


def test_the_published_slow_tokenizer_layout_loads(tiny_checkpoints):
    folder = tiny_checkpoints["custom_voice"]
    assert not (folder / "tokenizer.json").exists() and (folder / "vocab.json").is_file()

    assert validate_checkpoint(folder)["tokenizer_type"] == "qwen3_tts_tokenizer_12hz"
    loaded = load_model(str(folder), device="cpu", cpu_threads=2)
    assert loaded.info.model_type == "custom_voice" and "ryan" in loaded.info.speakers


def test_a_fast_tokenizer_folder_is_accepted_too(tiny_checkpoints, tmp_path):
    from transformers import AutoTokenizer

    folder = _copy(tiny_checkpoints["voice_design"], tmp_path / "fast")
    AutoTokenizer.from_pretrained(str(folder)).save_pretrained(str(folder))
    (folder / "vocab.json").unlink()
    (folder / "merges.txt").unlink()

    validate_checkpoint(folder)
    loaded = load_model(str(folder), device="cpu", cpu_threads=2)
    assert loaded.info.model_type == "voice_design"


def test_a_sharded_folder_validates_loads_and_counts_every_shard(sharded_base, tiny_checkpoints):
    from studio.engine.models import count_parameters, register_local_folder

    assert not (sharded_base / "model.safetensors").exists()
    assert validate_checkpoint(sharded_base)["tts_model_type"] == "base"
    loaded = load_model(str(sharded_base), device="cpu", cpu_threads=2)
    single = load_model(str(tiny_checkpoints["base"]), device="cpu", cpu_threads=2)
    assert loaded.info.parameters == single.info.parameters
    assert count_parameters(sharded_base) == count_parameters(tiny_checkpoints["base"])
    assert register_local_folder(sharded_base).state == "ready"


# --- refused, with one line naming the file ------------------------------------------------------------------


def _break(case: str, tiny_checkpoints, sharded_base, tmp_path) -> tuple[Path, str]:
    """A folder that is almost a checkpoint, and the text its one-line error must contain."""
    if case == "no_speech_tokenizer":
        folder = _copy(tiny_checkpoints["base"], tmp_path / case)
        shutil.rmtree(folder / "speech_tokenizer")
        return folder, f"{folder}: incomplete Qwen3-TTS checkpoint, missing speech_tokenizer/config.json"
    if case == "other_model_type":
        folder = _copy(tiny_checkpoints["base"], tmp_path / case)
        _edit_json(folder / "config.json", model_type="qwen2")
        return folder, f"{folder}: not a Qwen3-TTS checkpoint (config.json model_type is 'qwen2')"
    if case == "speech_tokenizer_folder":
        folder = tiny_checkpoints["base"] / "speech_tokenizer"
        return folder, "a speech tokenizer folder; choose the model folder that holds it"
    if case == "unknown_tts_model_type":
        folder = _copy(tiny_checkpoints["base"], tmp_path / case)
        _edit_json(folder / "config.json", tts_model_type="music")
        return folder, f"{folder / 'config.json'}: unknown tts_model_type 'music'"
    if case == "truncated_weights":
        folder = _copy(tiny_checkpoints["custom_voice"], tmp_path / case)
        _truncate(folder / "model.safetensors")
        return folder, f"{folder / 'model.safetensors'}: truncated"
    if case == "truncated_speech_tokenizer":
        folder = _copy(tiny_checkpoints["custom_voice"], tmp_path / case)
        _truncate(folder / "speech_tokenizer" / "model.safetensors", keep=0.9)
        return folder, f"{folder / 'speech_tokenizer' / 'model.safetensors'}: truncated"
    if case == "not_safetensors":
        folder = _copy(tiny_checkpoints["custom_voice"], tmp_path / case)
        (folder / "model.safetensors").write_bytes(b"<html>Repository not found</html>")
        return folder, f"{folder / 'model.safetensors'}: truncated or not a safetensors file"
    if case == "tokenizer_25hz":
        folder = _copy(tiny_checkpoints["voice_design"], tmp_path / case)
        _edit_json(folder / "config.json", tokenizer_type="qwen3_tts_tokenizer_25hz")
        return folder, f"{folder / 'config.json'}: tokenizer_type is 'qwen3_tts_tokenizer_25hz'; the studio runs 12 Hz"
    if case == "speech_tokenizer_25hz":
        folder = _copy(tiny_checkpoints["voice_design"], tmp_path / case)
        _edit_json(folder / "speech_tokenizer" / "config.json", model_type="qwen3_tts_tokenizer_25hz")
        return folder, (f"{folder / 'speech_tokenizer' / 'config.json'}: model_type is 'qwen3_tts_tokenizer_25hz', "
                        "not the 12 Hz speech tokenizer")
    if case == "missing_shard":
        folder = _copy(sharded_base, tmp_path / case)
        (folder / "model-00002-of-00002.safetensors").unlink()
        return folder, (f"{folder}: incomplete Qwen3-TTS checkpoint, missing model-00002-of-00002.safetensors "
                        "(listed in model.safetensors.index.json)")
    if case == "damaged_index":
        folder = _copy(sharded_base, tmp_path / case)
        (folder / "model.safetensors.index.json").write_text('{"weight_map": ')
        return folder, f"{folder / 'model.safetensors.index.json'}: unreadable"
    if case == "no_text_tokenizer":
        folder = _copy(tiny_checkpoints["voice_design"], tmp_path / case)
        (folder / "merges.txt").unlink()
        return folder, "missing the text tokenizer (vocab.json and merges.txt, or tokenizer.json)"
    raise AssertionError(case)


CASES = (
    "no_speech_tokenizer",
    "other_model_type",
    "speech_tokenizer_folder",
    "unknown_tts_model_type",
    "truncated_weights",
    "truncated_speech_tokenizer",
    "not_safetensors",
    "tokenizer_25hz",
    "speech_tokenizer_25hz",
    "missing_shard",
    "damaged_index",
    "no_text_tokenizer",
)


@pytest.mark.parametrize("case", CASES)
def test_an_almost_checkpoint_gets_one_line_naming_the_file(case, tiny_checkpoints, sharded_base, tmp_path):
    folder, expected = _break(case, tiny_checkpoints, sharded_base, tmp_path)

    with pytest.raises(EngineError) as caught:
        validate_checkpoint(folder)
    message = str(caught.value)
    assert expected in message and len(message.splitlines()) == 1, message
    # The loader refuses it before transformers sees it, with the same line.
    with pytest.raises(EngineError) as loading:
        load_model(str(folder), device="cpu")
    assert str(loading.value) == message


@pytest.mark.parametrize("case", ["truncated_weights", "tokenizer_25hz", "missing_shard"])
def test_the_command_line_says_it_in_one_line(case, tiny_checkpoints, sharded_base, tmp_path):
    folder, expected = _break(case, tiny_checkpoints, sharded_base, tmp_path)
    env = {**os.environ, "QWEN_TTS_STUDIO_MODELS": str(tmp_path / "models")}

    result = subprocess.run(
        [sys.executable, "-m", "studio", "models", "add-local", str(folder)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert result.stdout == ""


# --- the generation cap -----------------------------------------------------------------------------------------


def test_a_generate_call_without_its_own_cap_is_refused(loaded_models, tiny_checkpoints, capfd):
    import time

    tts = loaded_models("custom_voice").tts
    generation = json.loads((tiny_checkpoints["custom_voice"] / "generation_config.json").read_text())
    assert generation["max_new_tokens"] == 8192  # as published: minutes of audio when nothing else caps it

    started = time.perf_counter()
    with pytest.raises(EngineError, match="without its own max_new_tokens .*8192"):
        tts.generate_custom_voice("Hello world.", speaker="ryan", language="english")
    with pytest.raises(EngineError, match="without its own max_new_tokens"):
        tts.model.generate(input_ids=[], languages=["english"], speakers=["ryan"])
    assert time.perf_counter() - started < 1.0  # refused up front, not after generating

    wavs, rate = tts.generate_custom_voice("Hello world.", speaker="ryan", language="english", max_new_tokens=5)
    assert len(wavs[0]) == 4 * 1920 and rate == 24000
    # The published talker config has no pad_token_id; the loader sets the one transformers would pick.
    assert "pad_token_id" not in capfd.readouterr().err
