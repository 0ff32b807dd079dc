"""Build random-weight Qwen3-TTS checkpoints laid out like the published folders: tiny ones for tests,
published-size ones for speed.

The real Qwen3-TTS weights cannot be downloaded where the studio's tests and benchmarks run, yet the
engine has to be exercised through the same code path it uses in production:
``qwen_tts.Qwen3TTSModel.from_pretrained(folder)``. This module writes a complete checkpoint folder,
built with qwen-tts's own configuration and model classes so that every shape, key name and loader
quirk matches a published checkpoint, and with the published folders' file set and config values
(QWEN3_TTS_FACTS.md, "What the published checkpoint folders hold"): a slow text tokenizer
(``vocab.json``, ``merges.txt``, ``tokenizer_config.json``; no ``tokenizer.json``), a top-level
``preprocessor_config.json``, ``speech_tokenizer/configuration.json``, ``tokenizer_type:
"qwen3_tts_tokenizer_12hz"``, no talker ``pad_token_id``, no ``speaker_encoder_config`` outside Base, and
the published ``generation_config.json`` (``max_new_tokens: 8192``: every caller must pass its own cap,
which the studio's loader enforces). ``--shards N`` splits the weights the way community fine-tunes
often ship them (``model-0000N-of-0000M.safetensors`` and an index).

Sizes (``tiny_sizes.SIZES``): ``tiny`` (the default) loads in a second and generates a few dozen frames
in a few seconds on two CPU cores, with a text embedding wider than the talker as in the 0.6B models;
``0.6b`` and ``full`` have the published 0.6B and 1.7B dimensions (0.91 and 1.92 billion parameters), so
a benchmark on them costs what the real models cost per frame. Only the text tokenizer stays small, so
the text special-token ids are the tiny tokenizer's, not the published 151644...

The weights are random but not arbitrary: they are drawn from a generator seeded by ``seed`` (same
seed, byte-identical weights, sharded or not) and scaled so the speech-tokenizer decoder produces
audible, unclipped 24 kHz audio. A freshly constructed decoder is silent (its codebooks start at
zero), which would make every "did we get sound?" check meaningless.

Usage::

    python -m studio.engine.tiny OUT_DIR --type voice_design|custom_voice|base [--size tiny|0.6b|full]
                                 [--shards N] [--seed N]

No Qt here: this runs in test fixtures, benchmark scripts and training subprocesses.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.cli_args import ArgumentError, OneLineArgumentParser
from studio.core.plan import SAMPLE_RATE
from studio.engine.tiny_sizes import SIZES, CheckpointSize
from studio.engine.tiny_tokenizer import build_text_tokenizer
from studio.engine.tiny_weights import (
    TinyCheckpointError,
    _speech_decoder_transform,
    _speech_tokenizer_rule,
    _tts_rule,
    _write_random_weights,
    _write_safetensors,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "SIZES",
    "TINY_TYPES",
    "CheckpointSize",
    "TinyCheckpointError",
    "_write_safetensors",
    "build_tiny_checkpoint",
    "checkpoint_configs",
    "meta_models",
]

TINY_TYPES = ("voice_design", "custom_voice", "base")

# 12.5 codec frames per second at 24 kHz; the decoder's upsampling chain must multiply out to this.
SAMPLES_PER_FRAME = 1920

# Preset speakers and languages as they appear in the published configs, so that the studio's
# speaker and language pickers show realistic lists when driven by a tiny checkpoint. A speaker
# mapped to a dialect makes the package swap in the dialect's language id for chinese/auto text.
PRESET_SPEAKERS: dict[str, str | bool] = {
    "serena": False,
    "vivian": False,
    "uncle_fu": False,
    "ryan": False,
    "aiden": False,
    "ono_anna": False,
    "sohee": False,
    "eric": "sichuan_dialect",
    "dylan": "beijing_dialect",
}
LANGUAGES = (
    "chinese",
    "english",
    "german",
    "italian",
    "portuguese",
    "spanish",
    "japanese",
    "korean",
    "french",
    "russian",
    "beijing_dialect",
    "sichuan_dialect",
)

# The published generation_config.json, value for value. Its max_new_tokens of 8192 frames is about
# eleven minutes of audio; random weights never emit end-of-speech, so a call that forgets its own cap
# would run all of it. The studio's loader refuses such calls (loader.require_generation_cap).
GENERATION_DEFAULTS: dict[str, Any] = {
    "do_sample": True,
    "top_k": 50,
    "top_p": 1.0,
    "temperature": 0.9,
    "repetition_penalty": 1.05,
    "subtalker_dosample": True,
    "subtalker_top_k": 50,
    "subtalker_top_p": 1.0,
    "subtalker_temperature": 0.9,
    "max_new_tokens": 8192,
}
# What the published configs say beside the model's own dimensions.
TOKENIZER_TYPE = "qwen3_tts_tokenizer_12hz"
TRANSFORMERS_VERSION = "4.57.3"
POSITION_ID_PER_SECONDS = 13
# The top-level preprocessor_config.json (the processor's text side) and the speech tokenizer's
# ModelScope descriptor, which no loader reads but every published folder carries.
PROCESSOR_CONFIG = {"processor_class": "Qwen3TTSProcessor", "padding_side": "left"}
MODELSCOPE_CONFIGURATION = {"framework": "pytorch", "task": "text-to-speech"}

# Qwen3TTSSpeakerEncoderConfig's defaults, which are the published geometry (mel_dim 128, kernel sizes
# and dilations are never changed here).
_SPEAKER_ENCODER_DEFAULTS: dict[str, Any] = {
    "enc_channels": [512, 512, 512, 512, 1536],
    "enc_attention_channels": 128,
    "enc_res2net_scale": 8,
    "enc_se_channels": 128,
}

# The codec vocabulary of the talker is the codebook plus 1024 control ids; the package suppresses
# the top 1024 ids (all but end-of-speech) while sampling. Offsets from the codebook size are the
# published ones (codebook 2048: pad 2148, bos 2149, eos 2150, think 2154, english 2050, serena 3066).
_CODEC_CONTROL_SPAN = 1024
_CODEC_OFFSETS = {
    "codec_pad_id": 100,
    "codec_bos_id": 101,
    "codec_eos_token_id": 102,
    "codec_think_id": 106,
    "codec_nothink_id": 107,
    "codec_think_bos_id": 108,
    "codec_think_eos_id": 109,
}
_LANGUAGE_OFFSETS = {
    "chinese": 7,
    "english": 2,
    "german": 5,
    "italian": 22,
    "portuguese": 23,
    "spanish": 6,
    "japanese": 10,
    "korean": 16,
    "french": 13,
    "russian": 21,
    "beijing_dialect": 26,
    "sichuan_dialect": 14,
}
_SPEAKER_OFFSETS = {
    "serena": 1018,
    "vivian": 1017,
    "uncle_fu": 962,
    "ryan": 1013,
    "aiden": 813,
    "ono_anna": 825,
    "sohee": 816,
    "eric": 827,
    "dylan": 830,
}


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------


def _round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def _talker_config(size: CheckpointSize, model_type: str, text_vocab: int) -> dict[str, Any]:
    c = size.codebook_size
    codec_ids = {name: c + off for name, off in _CODEC_OFFSETS.items()}
    languages = {name: c + _LANGUAGE_OFFSETS[name] for name in LANGUAGES}
    if model_type == "custom_voice":
        speakers = {name: c + _SPEAKER_OFFSETS[name] for name in PRESET_SPEAKERS}
        dialects = dict(PRESET_SPEAKERS)
    else:
        # The package calls spk_id.keys() on every model type, so an empty map, not None.
        speakers, dialects = {}, {}
    return {
        "code_predictor_config": {
            "vocab_size": c,
            "hidden_size": size.cp_hidden,
            "intermediate_size": size.cp_intermediate,
            "num_hidden_layers": size.cp_layers,
            "num_attention_heads": size.cp_heads,
            "num_key_value_heads": size.cp_kv_heads,
            "head_dim": size.cp_head_dim,
            "hidden_act": "silu",
            "attention_bias": False,
            "max_position_embeddings": 65536,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000,
            "num_code_groups": size.num_code_groups,
            # transformers' generation default, which the published config carries; the package passes
            # max_new_tokens to the code predictor on every frame.
            "max_length": 20,
        },
        "vocab_size": c + _CODEC_CONTROL_SPAN,
        "hidden_size": size.talker_hidden,
        "intermediate_size": size.talker_intermediate,
        "num_hidden_layers": size.talker_layers,
        "num_attention_heads": size.talker_heads,
        "num_key_value_heads": size.talker_kv_heads,
        "head_dim": size.talker_head_dim,
        "hidden_act": "silu",
        "attention_bias": False,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000,
        "rope_scaling": {
            "interleaved": True,
            "mrope_section": list(size.mrope_section),
            "rope_type": "default",
            "type": "default",
        },
        "num_code_groups": size.num_code_groups,
        "text_hidden_size": size.text_hidden,
        "text_vocab_size": text_vocab,
        **codec_ids,
        "codec_language_id": languages,
        "spk_id": speakers,
        "spk_is_dialect": dialects,
        # No pad_token_id, as published: transformers falls back to end-of-speech while generating.
        "position_id_per_seconds": POSITION_ID_PER_SECONDS,
        "use_cache": True,
    }


def _model_config(
    size: CheckpointSize,
    model_type: str,
    text_ids: dict[str, int],
    text_vocab: int,
    *,
    size_name: str,
    seed: int,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "architectures": ["Qwen3TTSForConditionalGeneration"],
        "model_type": "qwen3_tts",
        "tokenizer_type": TOKENIZER_TYPE,
        "tts_model_size": size.tts_model_size,
        "tts_model_type": model_type,
        "assistant_token_id": text_ids["assistant"],
        "im_start_token_id": text_ids["<|im_start|>"],
        "im_end_token_id": text_ids["<|im_end|>"],
        "tts_pad_token_id": text_ids["<tts_pad>"],
        "tts_bos_token_id": text_ids["<tts_text_bos>"],
        "tts_eos_token_id": text_ids["<tts_text_eod>"],
        "talker_config": _talker_config(size, model_type, text_vocab),
        "torch_dtype": size.weights_dtype,
        "transformers_version": TRANSFORMERS_VERSION,
        # Lets the studio and benchmark reports tell a random-weight checkpoint from a real one.
        "studio_tiny_checkpoint": {"size": size_name, "seed": seed},
    }
    if model_type == "base":
        # Only Base has a speaker encoder, and only its config says so: enc_dim and sample_rate, as
        # published, plus whatever geometry differs from the constructor's defaults (which are the
        # published geometry; only the tiny size differs). Only the constructor's own keys:
        # Qwen3TTSSpeakerEncoderConfig rejects anything else (model_type, transformers_version, ...).
        geometry = {
            "enc_channels": list(size.spk_channels),
            "enc_attention_channels": size.spk_attention_channels,
            "enc_res2net_scale": size.spk_res2net_scale,
            "enc_se_channels": size.spk_se_channels,
        }
        config["speaker_encoder_config"] = {
            "enc_dim": size.talker_hidden,
            "sample_rate": SAMPLE_RATE,
            **{k: v for k, v in geometry.items() if v != _SPEAKER_ENCODER_DEFAULTS[k]},
        }
    return config


def _speech_tokenizer_config(size: CheckpointSize) -> dict[str, Any]:
    return {
        "architectures": ["Qwen3TTSTokenizerV2Model"],
        "model_type": "qwen3_tts_tokenizer_12hz",
        "encoder_valid_num_quantizers": size.num_code_groups,
        "input_sample_rate": SAMPLE_RATE,
        "output_sample_rate": SAMPLE_RATE,
        "decode_upsample_rate": SAMPLES_PER_FRAME,
        "encode_downsample_rate": SAMPLES_PER_FRAME,
        "encoder_config": {
            "sampling_rate": SAMPLE_RATE,
            # Mimi's own hop is 960 samples (25 Hz); the explicit 12.5 Hz adds the stride-2
            # downsampling conv that the Qwen tokenizer relies on. "_frame_rate" is how MimiConfig
            # serialises it, and how the published config spells it.
            "_frame_rate": 12.5,
            "audio_channels": 1,
            "hidden_size": size.enc_hidden,
            "num_filters": size.enc_filters,
            "num_residual_layers": 1,
            "upsampling_ratios": [8, 6, 5, 4],
            "kernel_size": 7,
            "last_kernel_size": 3,
            "residual_kernel_size": 3,
            "dilation_growth_rate": 2,
            "use_causal_conv": True,
            "pad_mode": "constant",
            "compress": 2,
            "trim_right_ratio": 1.0,
            "codebook_size": size.codebook_size,
            "codebook_dim": size.enc_codebook_dim,
            "num_quantizers": size.enc_num_quantizers,
            "use_conv_shortcut": False,
            "vector_quantization_hidden_dimension": size.enc_codebook_dim,
            "num_semantic_quantizers": 1,
            # The downsampling conv is depthwise; groups must divide the hidden size.
            "upsample_groups": size.enc_hidden,
            "num_hidden_layers": size.enc_layers,
            "intermediate_size": size.enc_intermediate,
            "num_attention_heads": size.enc_heads,
            "num_key_value_heads": size.enc_heads,
            "head_dim": size.enc_hidden // size.enc_heads,
            "hidden_act": "gelu",
            "max_position_embeddings": 8000,
            "norm_eps": 1e-5,
            "use_cache": False,
            "rope_theta": 10000.0,
            "sliding_window": 250,
            "layer_scale_initial_scale": 0.01,
        },
        "decoder_config": {
            "codebook_size": size.codebook_size,
            "codebook_dim": size.dec_codebook_dim,
            "hidden_size": size.dec_hidden,
            "latent_dim": size.dec_latent,
            "intermediate_size": size.dec_intermediate,
            "num_hidden_layers": size.dec_layers,
            "num_attention_heads": size.dec_heads,
            "num_key_value_heads": size.dec_heads,
            "head_dim": size.dec_head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": 8000,
            "rope_theta": 10000,
            "rms_norm_eps": 1e-5,
            "sliding_window": 72,
            "layer_scale_initial_scale": 0.01,
            "num_quantizers": size.num_code_groups,
            "upsample_rates": [8, 5, 4, 3],
            "upsampling_ratios": [2, 2],
            "decoder_dim": size.dec_decoder_dim,
            "attention_bias": False,
            # Published values the decoder does not read (its first quantizer's codebook and the
            # quantizer's hidden width).
            "semantic_codebook_size": 2 * size.codebook_size,
            "num_semantic_quantizers": 1,
            "vector_quantization_hidden_dimension": size.dec_codebook_dim,
        },
        "torch_dtype": "float32",
    }


_FEATURE_EXTRACTOR_CONFIG = {
    "feature_extractor_type": "EncodecFeatureExtractor",
    "feature_size": 1,
    "padding_side": "right",
    "padding_value": 0.0,
    "return_attention_mask": True,
    "sampling_rate": SAMPLE_RATE,
    "chunk_length_s": None,
    "overlap": None,
}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _meta_models(model_cfg: dict[str, Any], st_cfg: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The TTS model and the speech tokenizer, built by qwen-tts's classes on the meta device.

    The meta device gives every parameter its shape and name without allocating or initialising it,
    so a 1.7B model costs nothing here; the weights are drawn and written one tensor at a time.
    Configs are deep-copied on the way in because the constructors edit nested dicts in place
    (rope_scaling gains keys), and the dicts written to disk must stay as built here.
    """
    import torch
    from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSConfig
    from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSForConditionalGeneration
    from qwen_tts.core.tokenizer_12hz.configuration_qwen3_tts_tokenizer_v2 import Qwen3TTSTokenizerV2Config
    from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import Qwen3TTSTokenizerV2Model

    with torch.device("meta"):
        model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**copy.deepcopy(model_cfg)))
        st_model = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**copy.deepcopy(st_cfg)))
    return model, st_model


def checkpoint_configs(
    model_type: str, size_name: str = "tiny", *, text_ids: dict[str, int] | None = None, seed: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``config.json`` of the model and of its speech tokenizer, as a build would write them.

    ``text_ids`` are the text special-token ids (by token); without them the ids the tiny tokenizer
    assigns are assumed (they follow from its fixed vocabulary), which lets tests and benchmarks
    inspect a size, or build it on the meta device, without writing a tokenizer.
    """
    size = SIZES[size_name]
    if text_ids is None:
        with tempfile.TemporaryDirectory() as scratch:
            text_ids = build_text_tokenizer(Path(scratch))
    text_vocab = size.text_vocab_size or _round_up(max(text_ids.values()) + 1, 64)
    model_cfg = _model_config(size, model_type, text_ids, text_vocab, size_name=size_name, seed=seed)
    return model_cfg, _speech_tokenizer_config(size)


def meta_models(model_type: str, size_name: str = "tiny") -> tuple[torch.nn.Module, torch.nn.Module]:
    """The TTS model and speech tokenizer of a size, without weights (meta device): for counting."""
    return _meta_models(*checkpoint_configs(model_type, size_name))


def _build_into(folder: Path, model_type: str, seed: int, size_name: str, shards: int = 1) -> None:
    import torch

    size = SIZES[size_name]
    text_ids = build_text_tokenizer(folder)
    model_cfg, st_cfg = checkpoint_configs(model_type, size_name, text_ids=text_ids, seed=seed)
    model, st_model = _meta_models(model_cfg, st_cfg)

    gen = torch.Generator().manual_seed(int(seed))
    eos = model_cfg["talker_config"]["codec_eos_token_id"]

    def pin_eos(key: str, value: torch.Tensor) -> torch.Tensor:
        if key == "talker.codec_head.weight":
            # A zero row pins the end-of-speech logit at 0, below the top-k of the codebook logits.
            value[eos] = 0.0
        return value

    _write_random_weights(
        model, folder / "model.safetensors", gen, _tts_rule(size), dtype=getattr(torch, size.weights_dtype),
        transform=pin_eos, shards=shards,
    )
    del model

    st_dir = folder / "speech_tokenizer"
    st_dir.mkdir()
    # Always float32: the decoder's last conv taps are made zero-sum (no DC offset), which bfloat16
    # rounding would undo, and at 154 M parameters (0.6 GB) there is little to save.
    _write_random_weights(
        st_model, st_dir / "model.safetensors", gen, _speech_tokenizer_rule(size), dtype=torch.float32,
        transform=_speech_decoder_transform(st_model.state_dict().keys(), size),
    )
    del st_model

    _write_json(folder / "config.json", model_cfg)
    _write_json(folder / "generation_config.json", GENERATION_DEFAULTS)
    _write_json(folder / "preprocessor_config.json", PROCESSOR_CONFIG)
    _write_json(st_dir / "config.json", st_cfg)
    _write_json(st_dir / "configuration.json", MODELSCOPE_CONFIGURATION)
    _write_json(st_dir / "preprocessor_config.json", _FEATURE_EXTRACTOR_CONFIG)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _check_request(out_dir: Path, model_type: str, size_name: str = "tiny", shards: int = 1) -> None:
    if model_type not in TINY_TYPES:
        raise TinyCheckpointError(f"unknown checkpoint type {model_type!r}; choose one of {', '.join(TINY_TYPES)}")
    if size_name not in SIZES:
        raise TinyCheckpointError(f"unknown checkpoint size {size_name!r}; choose one of {', '.join(SIZES)}")
    if model_type == "voice_design" and SIZES[size_name].tts_model_size == "0b6":
        raise TinyCheckpointError("there is no published 0.6B VoiceDesign model; build it at size full or tiny")
    if not 1 <= shards <= 99:
        raise TinyCheckpointError(f"--shards must be between 1 and 99, not {shards}")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise TinyCheckpointError(f"{out_dir} exists and is not a folder")
        if any(out_dir.iterdir()):
            raise TinyCheckpointError(f"{out_dir} exists and is not empty")


def build_tiny_checkpoint(
    out_dir: Path, *, model_type: str, seed: int = 0, size: str = "tiny", shards: int = 1
) -> Path:
    """Write a random-weight ``model_type`` checkpoint folder at ``out_dir`` and return its path.

    ``size`` names an entry of ``SIZES``: "tiny" (the default, for tests), "0.6b" or "full" (the
    published 0.6B and 1.7B dimensions, about 2.5 and 4.5 GB, for speed benchmarks). ``shards`` > 1
    writes the model's weights as that many ``model-0000N-of-0000M.safetensors`` files and an index.
    ``out_dir`` must not exist or be an empty folder. The folder appears complete or not at all:
    it is built next to ``out_dir`` and renamed into place at the end.
    Raises ``TinyCheckpointError`` for an unknown type or size, an occupied ``out_dir``, or (full
    size) too little free disk space.
    """
    out_dir = Path(out_dir)
    _check_request(out_dir, model_type, size, shards)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        _build_into(staging, model_type, int(seed), size, shards)
        # mkdtemp makes a private folder and safetensors writes 0600 files; a checkpoint is meant
        # to be read by other processes and users (benchmark runners, a copied-out cache).
        for path in [staging, *staging.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if out_dir.exists():
            # An empty folder (e.g. made by the caller) is replaced; rename cannot overwrite it on
            # every platform.
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        prog="python -m studio.engine.tiny",
        description="Write a random-weight Qwen3-TTS checkpoint laid out like the published folders.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--type", dest="model_type", metavar="TYPE", required=True, help=" | ".join(TINY_TYPES))
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="weight seed (default 0)")
    parser.add_argument(
        "--size",
        default="tiny",
        metavar="SIZE",
        help="tiny (default) | 0.6b | full: the published 0.6B or 1.7B dimensions, about 2.5 or 4.5 GB on disk",
    )
    parser.add_argument(
        "--shards", type=int, default=1, metavar="N", help="split the weights into N safetensors shards (default 1)"
    )
    try:
        args = parser.parse_args(argv)
        # Checked before the heavy imports so a typo fails fast and without library noise.
        _check_request(args.out_dir, args.model_type, args.size, args.shards)
    except (ArgumentError, TinyCheckpointError) as exc:
        print(f"tiny: error: {exc}", file=sys.stderr)
        return 2
    try:
        path = build_tiny_checkpoint(
            args.out_dir, model_type=args.model_type, seed=args.seed, size=args.size, shards=args.shards
        )
    except TinyCheckpointError as exc:
        print(f"tiny: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
