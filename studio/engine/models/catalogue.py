"""The model catalogue: which Qwen3-TTS models exist, what each can do, and how much memory it needs.

Pure data and arithmetic; nothing here touches the disk except count_parameters (safetensors headers).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# Capabilities: the one table that decides whether a model honours instruct (emotions, directives)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstructSupport:
    honoured: bool
    reason: str  # for warnings in the UI and the render manifest


def instruct_support(model_type: str | None, size: str | None) -> InstructSupport:
    """Whether `generate_*` of qwen-tts 0.1.1 uses the instruct text for this model type and size."""
    if model_type == "base":
        return InstructSupport(False, "Base (voice clone) models take no instruct; use emotion reference clips")
    # The package tests `tts_model_size in "0b6"` (a substring test) and then drops instruct, so the
    # same test is used here: whatever the package treats as 0.6B, the studio does too.
    if model_type == "custom_voice" and str(size or "") in "0b6":
        return InstructSupport(False, "qwen-tts ignores instruct on 0.6B CustomVoice models")
    if model_type in ("voice_design", "custom_voice"):
        return InstructSupport(True, "")
    return InstructSupport(False, f"not a speech model type qwen-tts knows ({model_type!r})")


def instruct_honoured(model_type: str | None, size: str | None) -> bool:
    return instruct_support(model_type, size).honoured


# ---------------------------------------------------------------------------------------------
# Known models and their sizes
# ---------------------------------------------------------------------------------------------

# Where the numbers come from (all approximate; the real figure is whatever the hub serves):
# parameter counts were taken by building qwen-tts 0.1.1's Qwen3TTSForConditionalGeneration on the
# meta device with the published dimensions (QWEN3_TTS_FACTS.md): 1.7B = talker 1,742 M (311 M of it
# the 151936 x 2048 text embedding) + code predictor 175 M + speaker encoder 12 M (Base only);
# 0.6B = talker 764 M + code predictor 142 M + speaker encoder 9 M (Base only). The weights ship as
# bf16, 2 bytes each. The speech tokenizer (inside every model repo, and alone as the tokenizer repo)
# is taken as about 170 M parameters (decoder about 114 M per the facts file, plus a Mimi encoder)
# stored as float32: about 0.68 GB. The Qwen2 text-tokenizer files and configs add about 11 MB.
# Result: 1.7B about 4.5 GB, 0.6B about 2.5 GB, tokenizer about 0.7 GB to download.
_SPEECH_TOKENIZER_PARAMETERS = 170_000_000
_SPEECH_TOKENIZER_BYTES = _SPEECH_TOKENIZER_PARAMETERS * 4
_SMALL_FILES_BYTES = 11_000_000

# Published talker KV layout (28 layers, 8 KV heads of 128), the same for 1.7B and 0.6B.
PUBLISHED_KV = (28, 8, 128)


@dataclass(frozen=True)
class KnownModel:
    repo_id: str
    kind: str  # "tts" (a speech model) or "tokenizer" (the speech tokenizer alone)
    model_type: str | None  # voice_design | custom_voice | base; None for the tokenizer
    size: str | None  # "1b7" | "0b6", as qwen-tts names it; None for the tokenizer
    parameters: int  # approximate, speech tokenizer included
    download_bytes: int  # approximate
    description: str

    @property
    def honours_emotions(self) -> bool | None:
        return None if self.kind != "tts" else instruct_honoured(self.model_type, self.size)


def _tts(repo: str, model_type: str, size: str, model_parameters: int, description: str) -> KnownModel:
    return KnownModel(
        repo_id=repo,
        kind="tts",
        model_type=model_type,
        size=size,
        parameters=model_parameters + _SPEECH_TOKENIZER_PARAMETERS,
        download_bytes=model_parameters * 2 + _SPEECH_TOKENIZER_BYTES + _SMALL_FILES_BYTES,
        description=description,
    )


KNOWN_MODELS: tuple[KnownModel, ...] = (
    _tts("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", "voice_design", "1b7", 1_917_000_000,
         "designs a voice from a text description; emotions as instruct"),
    _tts("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", "custom_voice", "1b7", 1_917_000_000,
         "nine preset speakers; emotions as instruct"),
    _tts("Qwen/Qwen3-TTS-12Hz-1.7B-Base", "base", "1b7", 1_929_000_000,
         "clones a voice from a reference clip; base for fine-tuning"),
    _tts("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", "custom_voice", "0b6", 906_000_000,
         "nine preset speakers, smaller; ignores emotions"),
    _tts("Qwen/Qwen3-TTS-12Hz-0.6B-Base", "base", "0b6", 915_000_000,
         "clones a voice from a reference clip, smaller"),
    KnownModel(
        repo_id="Qwen/Qwen3-TTS-Tokenizer-12Hz",
        kind="tokenizer",
        model_type=None,
        size=None,
        parameters=_SPEECH_TOKENIZER_PARAMETERS,
        download_bytes=_SPEECH_TOKENIZER_BYTES + 1_000_000,
        description="the 12 Hz speech tokenizer alone (codec extraction for fine-tuning)",
    ),
)


def known_model(repo_id: str) -> KnownModel | None:
    return next((m for m in KNOWN_MODELS if m.repo_id == repo_id), None)


# ---------------------------------------------------------------------------------------------
# Memory: VRAM estimate and precision
# ---------------------------------------------------------------------------------------------

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
_SAFETENSORS_DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                            "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}

# VRAM estimate = weights x 1.2 + KV cache.
#   weights  = parameters x bytes per parameter of the dtype the model is loaded in (the speech
#              tokenizer is loaded in the same dtype).
#   x 1.2    = CUDA context, allocator slack, activations of one generation step and of the chunked
#              speech-tokenizer decode (a common rule of thumb for batch-1 inference).
#   KV cache = 2 (K and V) x layers x KV heads x head_dim x dtype bytes x positions, for the talker;
#              positions = 4096 covers the prompt (text, instruct, reference codes) plus the package's
#              max_new_tokens of 2048 codec frames. The code predictor's cache (17 positions) is noise.
# 1.7B in bf16: about 5.5 GB, 0.6B: about 3.1 GB, so one resident model fits a 12 GB card.
VRAM_OVERHEAD = 1.2
KV_POSITIONS = 4096


def kv_cache_bytes(dtype: str, *, layers: int, kv_heads: int, head_dim: int, positions: int = KV_POSITIONS) -> int:
    return 2 * layers * kv_heads * head_dim * DTYPE_BYTES[dtype] * positions


def estimate_vram_bytes(
    parameters: int, dtype: str = "bfloat16", *, kv: tuple[int, int, int] | None = PUBLISHED_KV
) -> int:
    """Approximate GPU memory to load a model of `parameters` in `dtype` and generate one segment."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}")
    weights = parameters * DTYPE_BYTES[dtype]
    cache = kv_cache_bytes(dtype, layers=kv[0], kv_heads=kv[1], head_dim=kv[2]) if kv else 0
    return int(weights * VRAM_OVERHEAD) + cache


def pick_precision(device: str) -> str:
    """The dtype name the engine loads in on `device` (mirrors loader.pick_dtype, without importing torch)."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def count_parameters(folder: Path) -> int:
    """Parameters in every *.safetensors under `folder`, read from the headers (no weights are loaded)."""
    total = 0
    for path in sorted(folder.rglob("*.safetensors")):
        try:
            with path.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 100_000_000:  # a header this large is a damaged file, not a model
                    continue
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error):
            continue
        for name, tensor in header.items():
            if name == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = 1
            for dim in tensor.get("shape", ()):
                count *= int(dim)
            total += count
    return total


def kv_layout(config: dict[str, Any]) -> tuple[int, int, int] | None:
    talker = config.get("talker_config")
    if not isinstance(talker, dict):
        return None
    try:
        heads = int(talker["num_attention_heads"])
        head_dim = int(talker.get("head_dim") or int(talker["hidden_size"]) // heads)
        return int(talker["num_hidden_layers"]), int(talker.get("num_key_value_heads") or heads), head_dim
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
