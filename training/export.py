"""Turn a fine-tuned Base checkpoint into a CustomVoice checkpoint with one named speaker.

A Base model is conditioned on a speaker embedding (x-vector) computed from reference audio at every
call; a CustomVoice model looks its speakers up by name: ``talker_config.spk_id`` maps each name to a
row of the talker's codec-embedding table, and that row is fed where a Base model takes the x-vector.
Fine-tuning trains the talker with the new speaker's averaged x-vector in that place, so the export
writes the same vector into a free control row of the table, maps the speaker's name to it and drops
the speaker encoder, which a CustomVoice model neither has nor loads.

The exported folder is a complete checkpoint laid out like the published CustomVoice ones: ``config.json``
(``tts_model_type: "custom_voice"``, no ``speaker_encoder_config``), one ``model.safetensors`` (also when
the base is sharded), ``generation_config.json``, ``preprocessor_config.json``, the text-tokenizer files
(slow or fast, whichever the base has) and ``speech_tokenizer/``, all but the weights and the config
copied from the base. ``qwen_tts.Qwen3TTSModel.from_pretrained``
loads it and ``generate_custom_voice(text, speaker=NAME)`` speaks with the new voice.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# The published SFT recipe puts its speaker at codec id 3000 of the 3072-entry table; keeping that row
# when it is free makes our exports look like theirs to anyone comparing configs.
PREFERRED_SPEAKER_SLOT = 3000
# The package suppresses the top 1024 codec ids (all but end-of-speech) while sampling, so a speaker
# row there can never be generated as audio. That span is where every control id lives.
CONTROL_SPAN = 1024
SPEAKER_ENCODER_PREFIX = "speaker_encoder."
CODEC_EMBEDDING_KEY = "talker.model.codec_embedding.weight"
# Files of the base folder that the export writes itself (or must not carry over).
_NOT_COPIED = {"config.json", "model.safetensors", "model.safetensors.index.json"}


class ExportError(Exception):
    """The base checkpoint or the trained weights do not fit together; str() is one line."""


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    speaker: str
    slot: int
    parameters: int


def _used_codec_ids(talker_config: Mapping[str, Any]) -> set[int]:
    used: set[int] = set()
    for key, value in talker_config.items():
        if key.endswith("_id") and isinstance(value, int) and not isinstance(value, bool):
            used.add(value)
    for key in ("codec_language_id", "spk_id"):
        table = talker_config.get(key) or {}
        used.update(v for v in table.values() if isinstance(v, int))
    return used


def pick_speaker_slot(talker_config: Mapping[str, Any], speaker: str) -> int:
    """The codec-embedding row for `speaker`: its existing row, 3000 when free, else the highest free one."""
    existing = (talker_config.get("spk_id") or {}).get(speaker)
    if isinstance(existing, int):
        return existing
    vocab = int(talker_config["vocab_size"])
    codebook = int((talker_config.get("code_predictor_config") or {}).get("vocab_size", vocab - CONTROL_SPAN))
    control = range(max(codebook, vocab - CONTROL_SPAN), vocab)
    used = _used_codec_ids(talker_config)
    if PREFERRED_SPEAKER_SLOT in control and PREFERRED_SPEAKER_SLOT not in used:
        return PREFERRED_SPEAKER_SLOT
    for slot in reversed(control):
        if slot not in used:
            return slot
    raise ExportError(f"no free codec-embedding row for speaker {speaker!r} (all {len(control)} control ids in use)")


def read_base_weights(base: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the base checkpoint, from one model.safetensors or a sharded index."""
    from safetensors.torch import load_file

    single = base / "model.safetensors"
    if single.is_file():
        return load_file(str(single))
    index = base / "model.safetensors.index.json"
    if not index.is_file():
        raise ExportError(f"{base}: no model.safetensors")
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{index}: unreadable ({exc})") from None
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update(load_file(str(base / shard)))
    return state


def custom_voice_config(base_config: Mapping[str, Any], speaker: str, slot: int, info: Mapping[str, Any]) -> dict:
    config = json.loads(json.dumps(base_config))  # a deep copy that is also JSON-clean
    config["tts_model_type"] = "custom_voice"
    # As in the published CustomVoice configs: the speaker encoder's weights are not exported, so
    # neither is its config.
    config.pop("speaker_encoder_config", None)
    talker = config["talker_config"]
    talker["spk_id"] = {**(talker.get("spk_id") or {}), speaker: slot}
    # The package reads spk_is_dialect[speaker] for chinese and auto text; a missing key is a KeyError.
    talker["spk_is_dialect"] = {**(talker.get("spk_is_dialect") or {}), speaker: False}
    config["studio_fine_tune"] = dict(info)
    return config


def _copy_support_files(base: Path, staging: Path) -> None:
    for entry in sorted(base.iterdir()):
        name = entry.name
        if name.startswith(".") or name in _NOT_COPIED or (name.startswith("model-") and name.endswith(".safetensors")):
            continue
        if entry.is_dir():
            if name == "speech_tokenizer":
                # Hub snapshots hold symlinks into a blob store; the export must stand on its own.
                shutil.copytree(entry, staging / name, symlinks=False)
        elif entry.is_file():
            shutil.copy2(entry, staging / name)


class ExportWriteError(ExportError):
    """The export could not be written (a full disk, a read-only folder); the checkpoint is fine."""


def _write_failure(exc: BaseException) -> str | None:
    """A one-line reason when `exc` is a failed write, else None (a bug, to be reported as such)."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        # copytree gathers one (source, target, "[Errno 28] No space left on device: ...") per file.
        first = str(exc.args[0][0][-1])
        return first.split("] ", 1)[-1].split(": ", 1)[0]
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    # safetensors reports I/O failures as its own error with the OS message inside:
    # "Error while serializing: I/O error: No space left on device (os error 28)".
    text = str(exc)
    if type(exc).__name__ == "SafetensorError" and "I/O error: " in text:
        return text.split("I/O error: ", 1)[1].split(" (os error", 1)[0]
    return None


def export_custom_voice(
    base: Path,
    out_dir: Path,
    *,
    speaker: str,
    speaker_embedding: torch.Tensor,
    trained: Mapping[str, torch.Tensor],
    info: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Write the CustomVoice checkpoint for `speaker` into `out_dir` (replacing an older export).

    `trained` holds the fine-tuned tensors under the full model's key names ("talker.…"); every
    other tensor comes from the base. Each tensor keeps the base's dtype, so a bf16 base exports bf16.
    """
    import torch
    from safetensors.torch import save_file

    base = Path(base)
    out_dir = Path(out_dir)
    try:
        base_config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{base / 'config.json'}: unreadable ({exc})") from None
    if base_config.get("tts_model_type") != "base":
        raise ExportError(f"{base}: tts_model_type is {base_config.get('tts_model_type')!r}, not 'base'")
    slot = pick_speaker_slot(base_config["talker_config"], speaker)

    state = read_base_weights(base)
    for key in [k for k in state if k.startswith(SPEAKER_ENCODER_PREFIX)]:
        del state[key]
    for key, tensor in trained.items():
        if key not in state:
            raise ExportError(f"trained weight {key} is not in the base checkpoint {base}")
        if tuple(tensor.shape) != tuple(state[key].shape):
            raise ExportError(
                f"trained weight {key} has shape {tuple(tensor.shape)}, the base {tuple(state[key].shape)}"
            )
        state[key] = tensor.detach().to("cpu", state[key].dtype)
    table = state[CODEC_EMBEDDING_KEY].clone()
    vector = speaker_embedding.detach().to("cpu", torch.float32).reshape(-1)
    if vector.numel() != table.shape[1]:
        raise ExportError(f"speaker embedding has {vector.numel()} values, the codec embedding rows {table.shape[1]}")
    table[slot] = vector.to(table.dtype)
    state[CODEC_EMBEDDING_KEY] = table

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        _copy_support_files(base, staging)
        config = custom_voice_config(base_config, speaker, slot, info or {})
        (staging / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        save_file(
            {k: v.contiguous() for k, v in state.items()}, str(staging / "model.safetensors"), metadata={"format": "pt"}
        )
        for path in [staging, *staging.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        # Swap in the new export only once it is complete: a crash leaves the old one or the new one.
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = _write_failure(exc)
        if reason is not None:
            raise ExportWriteError(f"{out_dir}: cannot write the exported checkpoint ({reason})") from None
        raise
    return ExportResult(folder=out_dir, speaker=speaker, slot=slot, parameters=sum(t.numel() for t in state.values()))
