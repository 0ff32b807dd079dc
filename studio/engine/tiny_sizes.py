"""The dimensions of each random-weight checkpoint size ``studio.engine.tiny`` can build.

``tiny`` is for tests (loads in a second, a few dozen frames in a few seconds on two CPU cores);
``0.6b`` and ``full`` (1.7B) are the published Qwen3-TTS 12Hz geometries (QWEN3_TTS_FACTS.md), for speed
benchmarks and shape checks: only their weights are random.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


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
    # float32 (see tiny._build_into).
    weights_dtype: str
    # config.json's tts_model_size: "1b7" or "0b6". The package drops instruct whenever this is a
    # substring of "0b6", so it decides whether a CustomVoice model honours emotions.
    tts_model_size: str


# The published 1.7B dimensions (see the comment at "full" below); 0.6B differs only in the talker.
_FULL = CheckpointSize(
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
    tts_model_size="1b7",
)

SIZES: dict[str, CheckpointSize] = {
    "tiny": CheckpointSize(
        talker_hidden=64,
        talker_intermediate=128,
        talker_layers=2,
        talker_heads=4,
        talker_kv_heads=2,
        talker_head_dim=16,
        mrope_section=(2, 3, 3),
        # Wider than the talker, as in the published 0.6B models: the text projection really projects,
        # so code that confuses the two widths fails on the tiny checkpoints too.
        text_hidden=128,
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
        # The 1.7B marker keeps instruct (emotion, style) flowing through the tiny CustomVoice model.
        tts_model_size="1b7",
    ),
    # The published 1.7B dimensions (Qwen3-TTS-12Hz-1.7B-* and Qwen3-TTS-Tokenizer-12Hz configs; see
    # QWEN3_TTS_FACTS.md). Only the weights are random. The text tokenizer stays the small
    # byte-level one, so its special ids are not the published 151644...; the text embedding still
    # has all 151936 rows, so memory, load time and per-frame cost match the real model.
    "full": _FULL,
    # The published 0.6B dimensions (Qwen3-TTS-12Hz-0.6B-Base / -CustomVoice): a talker half as wide
    # as 1.7B's under the same 2048-wide text embedding (the text projection maps 2048 to 1024), and
    # the same code predictor, speech tokenizer and codec ids. 914,643,008 parameters for Base.
    "0.6b": dataclasses.replace(
        _FULL,
        talker_hidden=1024,
        talker_intermediate=3072,
        # The tiny spread (0.4 over 64 inputs) scaled to 1024 inputs.
        codec_head_std=0.1,
        tts_model_size="0b6",
    ),
}

