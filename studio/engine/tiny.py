"""Build random-weight Qwen3-TTS checkpoints: tiny ones for tests, published-size ones for speed.

The real Qwen3-TTS weights cannot be downloaded where the studio's tests and benchmarks run, yet the
engine has to be exercised through the same code path it uses in production:
``qwen_tts.Qwen3TTSModel.from_pretrained(folder)``. This module writes a complete checkpoint folder,
built with qwen-tts's own configuration and model classes so that every shape, key name and loader
quirk matches a published checkpoint. The default ``tiny`` size loads in a second and generates a
few dozen frames in a few seconds on two CPU cores; the ``full`` size has the published 1.7B
dimensions (1.92 billion parameters, about 4.5 GB on disk), so a benchmark on it costs what the real
model costs per frame.

The weights are random but not arbitrary: they are drawn from a generator seeded by ``seed`` (same
seed, byte-identical ``model.safetensors``) and scaled so the speech-tokenizer decoder produces
audible, unclipped 24 kHz audio. A freshly constructed decoder is silent (its codebooks start at
zero), which would make every "did we get sound?" check meaningless.

Usage::

    python -m studio.engine.tiny OUT_DIR --type voice_design|custom_voice|base [--size tiny|full] [--seed N]

No Qt here: this runs in test fixtures, benchmark scripts and training subprocesses.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.cli_args import ArgumentError, OneLineArgumentParser

if TYPE_CHECKING:
    import torch

TINY_TYPES = ("voice_design", "custom_voice", "base")

SAMPLE_RATE = 24000
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

# Text special tokens, in the order they are appended after the byte-level BPE vocabulary. The
# names are the ones the published tokenizer uses; the ids follow from this order.
TEXT_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tts_pad>",
    "<tts_text_bos>",
    "<tts_text_eod>",
    "<tts_text_bos_single>",
)

# Words that become single tokens. The role words must: the package slices the prompt
# "<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n" by token position
# ([:3] role prefix, [3:-5] text), which only works when "assistant" is one token. They come first
# so that no later merge can break their merge chains.
_ROLE_WORDS = ("assistant", "user", "system")
_COMMON_WORDS = tuple(
    " " + word
    for word in (
        "the and to of a in is it you that this for with on was be are have I he she we they not but "
        "what all can there one so my hello world speech voice text test"
    ).split()
) + ("ing", "ed", "The", "Hello")

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
    # A forgotten max_new_tokens must not turn a test into a 2048-frame run: random weights never
    # emit end-of-speech, so this cap is what ends generation (about 3.8 s of audio).
    "max_new_tokens": 48,
}


@dataclass(frozen=True)
class CheckpointSize:
    """Every dimension a checkpoint size decides. Add published sizes to ``SIZES``."""

    # Talker (the autoregressive model over the first codebook).
    talker_hidden: int
    talker_intermediate: int
    talker_layers: int
    talker_heads: int
    talker_kv_heads: int
    talker_head_dim: int
    mrope_section: tuple[int, int, int]
    text_hidden: int
    # None: just large enough for the tiny tokenizer. The published models use 151936.
    text_vocab_size: int | None
    # Code predictor (fills in codebooks 2..16 for every frame).
    cp_hidden: int
    cp_intermediate: int
    cp_layers: int
    cp_heads: int
    cp_kv_heads: int
    cp_head_dim: int
    # Codec shared by talker, code predictor and speech tokenizer.
    codebook_size: int
    num_code_groups: int
    # Speaker encoder (Base only); its output is fed to the talker, so enc_dim == talker_hidden.
    spk_channels: tuple[int, ...]
    spk_attention_channels: int
    spk_res2net_scale: int
    spk_se_channels: int
    # Speech tokenizer decoder.
    dec_hidden: int
    dec_latent: int
    dec_codebook_dim: int
    dec_intermediate: int
    dec_layers: int
    dec_heads: int
    dec_head_dim: int
    dec_decoder_dim: int
    # Speech tokenizer encoder (a Mimi encoder).
    enc_hidden: int
    enc_filters: int
    enc_layers: int
    enc_heads: int
    enc_intermediate: int
    enc_codebook_dim: int
    enc_num_quantizers: int
    # Weight scaling that makes the random decoder speak at speech-like levels.
    dec_output_gain: float
    dec_residual_gain: float
    dec_layer_scale: float
    dec_convnext_gamma: float
    # Spread of the talker's codec logits; a wide spread keeps the never-trained end-of-speech
    # logit (0) out of the sampled top-k so every run lasts exactly max_new_tokens frames.
    codec_head_std: float
    # dtype of the main model.safetensors ("float32" or "bfloat16"); the speech tokenizer is always
    # float32 (see _build_into).
    weights_dtype: str


SIZES: dict[str, CheckpointSize] = {
    "tiny": CheckpointSize(
        talker_hidden=64,
        talker_intermediate=128,
        talker_layers=2,
        talker_heads=4,
        talker_kv_heads=2,
        talker_head_dim=16,
        mrope_section=(2, 3, 3),
        text_hidden=64,
        text_vocab_size=None,
        cp_hidden=32,
        cp_intermediate=64,
        cp_layers=1,
        cp_heads=2,
        cp_kv_heads=1,
        cp_head_dim=16,
        codebook_size=256,
        num_code_groups=16,
        spk_channels=(32, 32, 32, 32, 96),
        spk_attention_channels=16,
        spk_res2net_scale=4,
        spk_se_channels=16,
        dec_hidden=32,
        dec_latent=32,
        dec_codebook_dim=32,
        dec_intermediate=64,
        dec_layers=1,
        dec_heads=2,
        dec_head_dim=16,
        dec_decoder_dim=64,
        enc_hidden=32,
        enc_filters=8,
        enc_layers=1,
        enc_heads=2,
        enc_intermediate=64,
        enc_codebook_dim=16,
        enc_num_quantizers=16,
        dec_output_gain=0.045,
        dec_residual_gain=0.3,
        dec_layer_scale=0.5,
        dec_convnext_gamma=0.5,
        codec_head_std=0.4,
        weights_dtype="float32",
    ),
    # The published 1.7B dimensions (Qwen3-TTS-12Hz-1.7B-* and Qwen3-TTS-Tokenizer-12Hz configs; see
    # QWEN3_TTS_FACTS.md). Only the weights are random. The text tokenizer stays the small
    # byte-level one, so its special ids are not the published 151644...; the text embedding still
    # has all 151936 rows, so memory, load time and per-frame cost match the real model.
    "full": CheckpointSize(
        talker_hidden=2048,
        talker_intermediate=6144,
        talker_layers=28,
        talker_heads=16,
        talker_kv_heads=8,
        talker_head_dim=128,
        # Sums to head_dim / 2: one rotary section per (time, height, width) position axis.
        mrope_section=(24, 20, 20),
        text_hidden=2048,
        text_vocab_size=151936,
        cp_hidden=1024,
        cp_intermediate=3072,
        cp_layers=5,
        cp_heads=16,
        cp_kv_heads=8,
        cp_head_dim=128,
        codebook_size=2048,
        num_code_groups=16,
        # Only built for Base; these are Qwen3TTSSpeakerEncoderConfig's own (published) defaults.
        spk_channels=(512, 512, 512, 512, 1536),
        spk_attention_channels=128,
        spk_res2net_scale=8,
        spk_se_channels=128,
        # 114.3 M decoder parameters, the "about 114 M" of the published speech tokenizer.
        dec_hidden=512,
        dec_latent=1024,
        dec_codebook_dim=512,
        dec_intermediate=1024,
        dec_layers=8,
        dec_heads=16,
        dec_head_dim=64,
        dec_decoder_dim=1536,
        enc_hidden=512,
        enc_filters=64,
        enc_layers=8,
        enc_heads=8,
        enc_intermediate=2048,
        enc_codebook_dim=256,
        enc_num_quantizers=32,
        # Measured on 40 frames of random codes with the other three gains as in "tiny": at an
        # output gain of 1 the decoder's last conv gives rms 2.45 (peaks 10), so 0.06 puts the
        # decoded noise near rms 0.15 with peaks near 0.6: finite, audible and unclipped. It is
        # noise, not speech; at this size only the timing is meant to be realistic.
        dec_output_gain=0.06,
        dec_residual_gain=0.3,
        dec_layer_scale=0.5,
        dec_convnext_gamma=0.5,
        # The tiny spread (0.4 over 64 inputs) scaled to 2048 inputs: logits with the same spread.
        codec_head_std=0.07,
        # Half the disk of float32 (3.8 GB instead of 7.7 GB) and exactly what the loader uses on
        # CUDA; on the CPU the loader upcasts to float32 tensor by tensor while loading.
        weights_dtype="bfloat16",
    ),
}

# The codec vocabulary of the talker is the codebook plus 1024 control ids; the package suppresses
# the top 1024 ids (all but end-of-speech) while sampling. Offsets match the published layout
# (codebook 2048: pad 2148, bos 2149, eos 2150, think 2154, ...).
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
_LANGUAGE_OFFSET = 2
_SPEAKER_OFFSET = 900


class TinyCheckpointError(Exception):
    """A request that cannot be built (bad type, occupied output folder)."""


# ---------------------------------------------------------------------------------------------
# Text tokenizer
# ---------------------------------------------------------------------------------------------

# Qwen2's pre-tokenizer split: letters, single digits, punctuation runs and newlines stay apart,
# which is what keeps "\n" a token of its own after "assistant".
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes, indexed by byte value."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    table: dict[int, str] = {b: chr(b) for b in keep}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return [table[b] for b in range(256)]


def _build_text_tokenizer(folder: Path) -> dict[str, int]:
    """Write the Qwen2 tokenizer files into ``folder``; return the special-token ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    alphabet = _byte_alphabet()
    vocab: dict[str, int] = {ch: i for i, ch in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    for word in _ROLE_WORDS + _COMMON_WORDS:
        symbols = [alphabet[b] for b in word.encode("utf-8")]
        left = symbols[0]
        for right in symbols[1:]:
            merged = left + right
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append((left, right))
            left = merged

    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in TEXT_SPECIAL_TOKENS])

    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        errors="replace",
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in TEXT_SPECIAL_TOKENS}

    # The package slices the prompt by position ([:3] role prefix, [3:-5] text); if the role
    # words or the newline split differently it would silently feed the wrong embeddings.
    probe = tokenizer("<|im_start|>assistant\nHi.<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    role = ["<|im_start|>", "assistant", "Ċ"]
    if tokenizer.convert_ids_to_tokens(probe[:3]) != role or tokenizer.convert_ids_to_tokens(probe[-5:]) != [
        "<|im_end|>",
        "Ċ",
        *role,
    ]:
        raise RuntimeError(f"tiny text tokenizer splits the chat prompt unexpectedly: {probe}")

    tokenizer.save_pretrained(str(folder))
    return ids


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------


def _round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def _talker_config(size: CheckpointSize, model_type: str, text_vocab: int) -> dict[str, Any]:
    c = size.codebook_size
    codec_ids = {name: c + off for name, off in _CODEC_OFFSETS.items()}
    languages = {name: c + _LANGUAGE_OFFSET + i for i, name in enumerate(LANGUAGES)}
    if model_type == "custom_voice":
        speakers = {name: c + _SPEAKER_OFFSET + i for i, name in enumerate(PRESET_SPEAKERS)}
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
            "max_position_embeddings": 65536,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000,
            "num_code_groups": size.num_code_groups,
            "use_cache": True,
        },
        "vocab_size": c + _CODEC_CONTROL_SPAN,
        "hidden_size": size.talker_hidden,
        "intermediate_size": size.talker_intermediate,
        "num_hidden_layers": size.talker_layers,
        "num_attention_heads": size.talker_heads,
        "num_key_value_heads": size.talker_kv_heads,
        "head_dim": size.talker_head_dim,
        "hidden_act": "silu",
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
        # Without it transformers logs "Setting pad_token_id to eos_token_id" on every generate.
        "pad_token_id": codec_ids["codec_pad_id"],
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
    return {
        "architectures": ["Qwen3TTSForConditionalGeneration"],
        "model_type": "qwen3_tts",
        "tokenizer_type": "12hz",
        # The package drops instruct whenever tts_model_size is a substring of "0b6", so the tiny
        # models claim the 1.7B marker to keep instruct (emotion/style) flowing through.
        "tts_model_size": "1b7",
        "tts_model_type": model_type,
        "im_start_token_id": text_ids["<|im_start|>"],
        "im_end_token_id": text_ids["<|im_end|>"],
        "tts_pad_token_id": text_ids["<tts_pad>"],
        "tts_bos_token_id": text_ids["<tts_text_bos>"],
        "tts_eos_token_id": text_ids["<tts_text_eod>"],
        "talker_config": _talker_config(size, model_type, text_vocab),
        # Only the constructor's own keys: Qwen3TTSSpeakerEncoderConfig rejects anything else
        # (model_type, transformers_version, ...), which is why configs are written by hand here.
        "speaker_encoder_config": {
            # extract_speaker_embedding always computes 128 mel bands.
            "mel_dim": 128,
            "enc_dim": size.talker_hidden,
            "enc_channels": list(size.spk_channels),
            "enc_kernel_sizes": [5, 3, 3, 3, 1],
            "enc_dilations": [1, 2, 3, 4, 1],
            "enc_attention_channels": size.spk_attention_channels,
            "enc_res2net_scale": size.spk_res2net_scale,
            "enc_se_channels": size.spk_se_channels,
            "sample_rate": SAMPLE_RATE,
        },
        "torch_dtype": size.weights_dtype,
        # Lets the studio and benchmark reports tell a random-weight checkpoint from a real one.
        "studio_tiny_checkpoint": {"size": size_name, "seed": seed},
    }


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
            # downsampling conv that the Qwen tokenizer relies on.
            "frame_rate": 12.5,
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
            "attention_dropout": 0.0,
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


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Const:
    value: float


# What a weight rule may answer for one tensor: a standard deviation for a normal draw, a constant
# fill, or None for "1 / sqrt(fan_in)" (vectors: ones, which suits every norm weight).
_Rule = Callable[[str, "torch.Tensor"], "float | _Const | None"]
# A last edit of one drawn float32 tensor, by key, before it is cast and written.
_Transform = Callable[[str, "torch.Tensor"], "torch.Tensor"]


def _fan_in(tensor: torch.Tensor, transposed_stride: int | None) -> int:
    shape = tuple(tensor.shape)
    if len(shape) == 2:
        return shape[1]
    if transposed_stride is not None:
        # ConvTranspose1d weight is (in, out, k); each output sample sees in * k / stride inputs.
        return max(1, shape[0] * shape[2] // transposed_stride)
    # Conv1d weight is (out, in / groups, k).
    return max(1, shape[1] * shape[2])


def _draw(key: str, like: torch.Tensor, gen: torch.Generator, rule: _Rule, stride: int | None) -> torch.Tensor:
    """One float32 tensor shaped like ``like`` (which may live on the meta device)."""
    import torch

    shape = tuple(like.shape)
    leaf = key.rsplit(".", 1)[-1]
    if not like.is_floating_point():
        return torch.zeros(shape, dtype=like.dtype)
    if leaf in ("running_var", "cluster_usage", "initialized"):
        return torch.ones(shape)
    if leaf in ("bias", "running_mean", "alpha", "beta"):
        # Snake alpha/beta are stored as logs: zero means a plain x + sin^2(x).
        return torch.zeros(shape)
    spec = rule(key, like)
    if isinstance(spec, _Const):
        return torch.full(shape, spec.value)
    if like.dim() == 1:
        return torch.ones(shape)
    std = spec if spec is not None else 1.0 / math.sqrt(_fan_in(like, stride))
    return torch.randn(shape, generator=gen, dtype=torch.float32).mul_(std)


def _write_random_weights(
    module: torch.nn.Module,
    path: Path,
    gen: torch.Generator,
    rule: _Rule,
    *,
    dtype: torch.dtype,
    transform: _Transform | None = None,
) -> None:
    """Draw every saved tensor of ``module`` from ``gen`` and stream it into a safetensors file.

    ``module`` is built on the meta device: only its key names and shapes are used. Everything is
    filled explicitly, in state-dict order, so the bytes depend only on the seed and this code,
    never on how transformers happens to initialise a freshly constructed model. One tensor at a
    time is in memory, which is what keeps a 1.9-billion-parameter build at about 2 GB of RAM (the
    largest tensor, the 151936 x 2048 text embedding, drawn in float32 and cast).
    """
    import torch

    strides = {
        f"{name}.weight": int(sub.stride[0])
        for name, sub in module.named_modules()
        if isinstance(sub, torch.nn.ConvTranspose1d)
    }
    state = module.state_dict()
    layout = [(key, tuple(t.shape), dtype if t.is_floating_point() else t.dtype) for key, t in state.items()]

    def tensors() -> Iterator[torch.Tensor]:
        for key, like in state.items():
            value = _draw(key, like, gen, rule, strides.get(key))
            if transform is not None:
                value = transform(key, value)
            yield value.to(dtype) if value.is_floating_point() else value

    _write_safetensors(path, layout, tensors())


def _tts_rule(size: CheckpointSize) -> _Rule:
    def rule(key: str, tensor: torch.Tensor) -> float | _Const | None:
        if key.endswith("codec_head.weight"):
            return size.codec_head_std
        if key.startswith("speaker_encoder."):
            # Conv stacks with ReLUs: fan-in scaling keeps the x-vector away from zero.
            return None
        # The transformer init the published code assumes (initializer_range).
        return 0.02

    return rule


def _speech_tokenizer_rule(size: CheckpointSize) -> _Rule:
    def rule(key: str, tensor: torch.Tensor) -> float | _Const | None:
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "scale":
            # Layer scales start at 0.01 in a fresh model, which mutes the transformer blocks.
            return _Const(size.dec_layer_scale)
        if leaf == "gamma":
            # ConvNeXt gamma starts at 1e-6: the blocks would be identities.
            return _Const(size.dec_convnext_gamma)
        if leaf in ("embedding_sum", "embed_sum"):
            # Codebooks start at zero: every code would decode to silence.
            return 1.0
        return None

    return rule


def _final_conv_key(keys: Iterable[str]) -> str:
    # decoder.decoder is [conv, upsampling blocks..., snake, conv]: the waveform comes out of the
    # highest-numbered top-level conv.
    pattern = re.compile(r"decoder\.decoder\.(\d+)\.conv\.weight")
    indexed = {int(m.group(1)): k for k in keys if (m := pattern.fullmatch(k))}
    return indexed[max(indexed)]


def _speech_decoder_transform(keys: Iterable[str], size: CheckpointSize) -> _Transform:
    """Scale the decoder's residual branches, and make its last conv DC-free at a set output level."""
    final = _final_conv_key(keys)

    def transform(key: str, value: torch.Tensor) -> torch.Tensor:
        if key.startswith("decoder.decoder.") and key.endswith(".conv2.conv.weight"):
            return value * size.dec_residual_gain
        if key == final:
            # Snake activations add a positive sin^2 term; zero-sum taps keep it from becoming DC offset.
            return (value - value.mean(dim=-1, keepdim=True)) * size.dec_output_gain
        return value

    return transform


# safetensors' names for the dtypes a checkpoint here can hold.
_SAFETENSORS_DTYPES = {
    "float32": "F32",
    "bfloat16": "BF16",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "bool": "BOOL",
}


def _write_safetensors(
    path: Path, layout: Sequence[tuple[str, tuple[int, ...], torch.dtype]], tensors: Iterable[torch.Tensor]
) -> None:
    """Write a safetensors file whose tensors arrive one by one, in ``layout`` order.

    ``safetensors.torch.save_file`` needs every tensor in memory at once and then copies each into a
    bytes object, two full copies of a multi-gigabyte checkpoint. The format is simple enough to
    stream: an 8-byte little-endian header length, a JSON header with each tensor's dtype, shape and
    byte range, then the raw little-endian data in that order.
    """
    import torch

    header: dict[str, Any] = {}
    offset = 0
    for key, shape, dtype in layout:
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        header[key] = {
            "dtype": _SAFETENSORS_DTYPES[str(dtype).replace("torch.", "")],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    # transformers refuses safetensors files whose metadata does not say they hold torch tensors.
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Space padding to 8 bytes keeps the data section aligned for readers that memory-map it.
    encoded += b" " * (-len(encoded) % 8)

    free = shutil.disk_usage(path.parent).free
    if free < offset + len(encoded):
        raise TinyCheckpointError(
            f"{path.parent}: {offset / 1e9:.1f} GB of weights to write but only {free / 1e9:.1f} GB free"
        )
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for (key, shape, dtype), tensor in zip(layout, tensors, strict=True):
            if tuple(tensor.shape) != shape or tensor.dtype != dtype:
                raise RuntimeError(f"{key}: drew {tuple(tensor.shape)} {tensor.dtype}, expected {shape} {dtype}")
            # A byte view of the tensor's own memory: no copy beyond the one contiguous() may make.
            handle.write(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)


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
            text_ids = _build_text_tokenizer(Path(scratch))
    text_vocab = size.text_vocab_size or _round_up(max(text_ids.values()) + 1, 64)
    model_cfg = _model_config(size, model_type, text_ids, text_vocab, size_name=size_name, seed=seed)
    return model_cfg, _speech_tokenizer_config(size)


def meta_models(model_type: str, size_name: str = "tiny") -> tuple[torch.nn.Module, torch.nn.Module]:
    """The TTS model and speech tokenizer of a size, without weights (meta device): for counting."""
    return _meta_models(*checkpoint_configs(model_type, size_name))


def _build_into(folder: Path, model_type: str, seed: int, size_name: str) -> None:
    import torch

    size = SIZES[size_name]
    text_ids = _build_text_tokenizer(folder)
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
        transform=pin_eos,
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
    _write_json(st_dir / "config.json", st_cfg)
    _write_json(st_dir / "preprocessor_config.json", _FEATURE_EXTRACTOR_CONFIG)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _check_request(out_dir: Path, model_type: str, size_name: str = "tiny") -> None:
    if model_type not in TINY_TYPES:
        raise TinyCheckpointError(f"unknown checkpoint type {model_type!r}; choose one of {', '.join(TINY_TYPES)}")
    if size_name not in SIZES:
        raise TinyCheckpointError(f"unknown checkpoint size {size_name!r}; choose one of {', '.join(SIZES)}")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise TinyCheckpointError(f"{out_dir} exists and is not a folder")
        if any(out_dir.iterdir()):
            raise TinyCheckpointError(f"{out_dir} exists and is not empty")


def build_tiny_checkpoint(out_dir: Path, *, model_type: str, seed: int = 0, size: str = "tiny") -> Path:
    """Write a random-weight ``model_type`` checkpoint folder at ``out_dir`` and return its path.

    ``size`` names an entry of ``SIZES``: "tiny" (the default, for tests) or "full" (the published
    1.7B dimensions, about 4.5 GB, for speed benchmarks).
    ``out_dir`` must not exist or be an empty folder. The folder appears complete or not at all:
    it is built next to ``out_dir`` and renamed into place at the end.
    Raises ``TinyCheckpointError`` for an unknown type or size, an occupied ``out_dir``, or (full
    size) too little free disk space.
    """
    out_dir = Path(out_dir)
    _check_request(out_dir, model_type, size)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        _build_into(staging, model_type, int(seed), size)
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
        description="Write a random-weight Qwen3-TTS checkpoint (tiny, or at the published 1.7B size).",
    )
    parser.add_argument("out_dir", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--type", dest="model_type", metavar="TYPE", required=True, help=" | ".join(TINY_TYPES))
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="weight seed (default 0)")
    parser.add_argument(
        "--size",
        default="tiny",
        metavar="SIZE",
        help="tiny (default) | full: the published 1.7B dimensions, about 4.5 GB on disk",
    )
    try:
        args = parser.parse_args(argv)
        # Checked before the heavy imports so a typo fails fast and without library noise.
        _check_request(args.out_dir, args.model_type, args.size)
    except (ArgumentError, TinyCheckpointError) as exc:
        print(f"tiny: error: {exc}", file=sys.stderr)
        return 2
    try:
        path = build_tiny_checkpoint(args.out_dir, model_type=args.model_type, seed=args.seed, size=args.size)
    except TinyCheckpointError as exc:
        print(f"tiny: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
