"""Is this folder a Qwen3-TTS 12Hz checkpoint the studio can load? Checked from its files, without loading it.

Accepted layouts (README, "Models"):

- the published folders of all five models (1.7B VoiceDesign, CustomVoice and Base; 0.6B CustomVoice
  and Base): ``config.json``, ``generation_config.json``, one ``model.safetensors``, the slow text
  tokenizer (``vocab.json`` + ``merges.txt``; transformers converts it on load) and ``speech_tokenizer/``;
- the same with a fast ``tokenizer.json`` instead of (or beside) the slow files;
- sharded weights, ``model-0000N-of-0000M.safetensors`` listed in ``model.safetensors.index.json``, as
  community fine-tunes ship them.

Everything a user can get wrong answers with one ``EngineError`` line naming the file and what is wrong
with it: a folder that is not a checkpoint, a missing file or shard, a config of another model type, a
25 Hz model, a truncated or damaged safetensors file. Only headers are read (a few kilobytes per file),
so the model manager can check every listed model each time it draws its table.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from studio.engine.errors import EngineError

CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
SPEECH_TOKENIZER = "speech_tokenizer"
SPEECH_TOKENIZER_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
MODEL_TYPES = ("voice_design", "custom_voice", "base")
# tokenizer_type values of 12 Hz models: the published "qwen3_tts_tokenizer_12hz", the short form some
# community configs carry, and none at all (the package does not read it).
TOKENIZER_TYPES_12HZ = (None, "12hz", "qwen3_tts_tokenizer_12hz")
SPEECH_TOKENIZER_12HZ = "qwen3_tts_tokenizer_12hz"
# A safetensors header is a few hundred kilobytes even for billions of parameters; far more is damage.
_MAX_HEADER = 100_000_000


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EngineError(f"{path}: unreadable ({reason[:160]})") from None


def check_safetensors(path: Path) -> int:
    """The bytes of tensor data `path` holds; EngineError when it is not a whole safetensors file.

    The header states every tensor's byte range, so a file cut short (an interrupted copy or download)
    is found from its size, without reading the weights.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise EngineError(f"{path}: truncated ({size} bytes, not even a safetensors header)")
            (length,) = struct.unpack("<Q", prefix)
            if length > _MAX_HEADER or 8 + length > size:
                raise EngineError(f"{path}: truncated or not a safetensors file ({size} bytes)")
            header = json.loads(handle.read(length))
    except OSError as exc:
        raise EngineError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError):
        raise EngineError(f"{path}: damaged safetensors header") from None
    if not isinstance(header, dict):
        raise EngineError(f"{path}: damaged safetensors header")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(x, int) for x in offsets)):
            raise EngineError(f"{path}: damaged safetensors header (tensor {name})")
        end = max(end, offsets[1])
    if size < 8 + length + end:
        raise EngineError(f"{path}: truncated ({size} bytes, its header describes {8 + length + end}); copy it again")
    return end


def weight_files(folder: Path) -> list[Path]:
    """The model's weight files: ``model.safetensors``, or every shard its index lists.

    Raises EngineError naming the index or the missing shard; an empty list means neither is there.
    """
    single = folder / WEIGHTS
    if single.is_file():
        return [single]
    index = folder / WEIGHTS_INDEX
    if not index.is_file():
        return []
    data = _read_json(index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(v, str) for v in weight_map.values()):
        raise EngineError(f"{index}: no weight_map naming the shard files")
    shards = []
    for name in sorted(set(weight_map.values())):
        shard = folder / name
        if "/" in name or "\\" in name or name.startswith("."):
            raise EngineError(f"{index}: names a shard outside the folder ({name!r})")
        if not shard.is_file():
            raise EngineError(f"{folder}: incomplete Qwen3-TTS checkpoint, missing {name} (listed in {WEIGHTS_INDEX})")
        shards.append(shard)
    return shards


def _missing_files(folder: Path) -> list[str]:
    missing = [name for name in (GENERATION_CONFIG,) if not (folder / name).is_file()]
    if not (folder / WEIGHTS).is_file() and not (folder / WEIGHTS_INDEX).is_file():
        missing.append(f"{WEIGHTS} (or {WEIGHTS_INDEX} and its shards)")
    slow = all((folder / name).is_file() for name in ("vocab.json", "merges.txt"))
    if not slow and not (folder / "tokenizer.json").is_file():
        missing.append("the text tokenizer (vocab.json and merges.txt, or tokenizer.json)")
    missing += [f"{SPEECH_TOKENIZER}/{name}" for name in SPEECH_TOKENIZER_FILES
                if not (folder / SPEECH_TOKENIZER / name).is_file()]
    return missing


def validate_checkpoint(folder: Path) -> dict[str, Any]:
    """Check `folder` holds a Qwen3-TTS 12Hz checkpoint (see the module docstring); return its config."""
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise EngineError(f"{folder}: not a Qwen3-TTS checkpoint (no config.json)")
    config = _read_json(config_path)
    if not isinstance(config, dict) or config.get("model_type") != "qwen3_tts":
        found = config.get("model_type") if isinstance(config, dict) else None
        hint = " (a speech tokenizer folder; choose the model folder that holds it)" \
            if found == SPEECH_TOKENIZER_12HZ else ""
        raise EngineError(f"{folder}: not a Qwen3-TTS checkpoint (config.json model_type is {found!r}){hint}")
    missing = _missing_files(folder)
    if missing:
        raise EngineError(f"{folder}: incomplete Qwen3-TTS checkpoint, missing {', '.join(missing)}")
    kind = config.get("tts_model_type")
    if kind not in MODEL_TYPES:
        raise EngineError(f"{config_path}: unknown tts_model_type {kind!r} (expected {', '.join(MODEL_TYPES)})")
    if config.get("tokenizer_type") not in TOKENIZER_TYPES_12HZ:
        raise EngineError(
            f"{config_path}: tokenizer_type is {config.get('tokenizer_type')!r}; the studio runs 12 Hz models only "
            "(Qwen3-TTS-12Hz-*)"
        )
    if not isinstance(config.get("talker_config"), dict):
        raise EngineError(f"{config_path}: no talker_config")
    speech_config_path = folder / SPEECH_TOKENIZER / CONFIG
    speech_config = _read_json(speech_config_path)
    found = speech_config.get("model_type") if isinstance(speech_config, dict) else None
    if found != SPEECH_TOKENIZER_12HZ:
        raise EngineError(
            f"{speech_config_path}: model_type is {found!r}, not the 12 Hz speech tokenizer ({SPEECH_TOKENIZER_12HZ})"
        )
    for path in [*weight_files(folder), folder / SPEECH_TOKENIZER / WEIGHTS]:
        check_safetensors(path)
    return config
