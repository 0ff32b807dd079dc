"""The "full" checkpoint size must have the published Qwen3-TTS 1.7B dimensions.

Everything but the last test runs on torch's meta device (shapes without storage), so checking a
1.9-billion-parameter model costs well under a second and no memory. The last test builds and loads
the real thing (4.5 GB on disk, about 12 GB peak RAM while loading, 48 s on two cores); it is
marked slow and runs in the README's test command and CI like the other slow suites.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from studio.engine import tiny
from studio.engine.tiny import SIZES, TinyCheckpointError, checkpoint_configs, meta_models

REPO_ROOT = Path(__file__).resolve().parents[2]

# Published (QWEN3_TTS_FACTS.md, "Published 1.7B sizes").
TALKER = dict(hidden=2048, layers=28, heads=16, kv_heads=8, head_dim=128, intermediate=6144)
CODE_PREDICTOR = dict(hidden=1024, layers=5, heads=16, kv_heads=8, intermediate=3072, vocab=2048)
TEXT_VOCAB = 151936
CODEC_VOCAB = 3072
CODE_GROUPS = 16
# The exact count of qwen-tts 0.1.1's Qwen3TTSForConditionalGeneration for a VoiceDesign model at these
# sizes (no speaker encoder): 1,409 M in the 28 talker layers, 311 M in the 151936 x 2048 text
# embedding, 173 M in the code predictor's layers, embeddings and 15 heads, 23 M in the text projection,
# the codec embedding and head and the code predictor's input projection.
VOICE_DESIGN_PARAMETERS = 1_916_676_352


@pytest.fixture(scope="module")
def full_voice_design():
    model, speech_tokenizer = meta_models("voice_design", "full")
    return model, speech_tokenizer


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_full_size_configs_carry_the_published_dimensions():
    model_cfg, st_cfg = checkpoint_configs("voice_design", "full")
    talker = model_cfg["talker_config"]
    cp = talker["code_predictor_config"]

    assert (talker["hidden_size"], talker["num_hidden_layers"]) == (TALKER["hidden"], TALKER["layers"])
    assert (talker["num_attention_heads"], talker["num_key_value_heads"]) == (TALKER["heads"], TALKER["kv_heads"])
    assert (talker["head_dim"], talker["intermediate_size"]) == (TALKER["head_dim"], TALKER["intermediate"])
    assert talker["vocab_size"] == CODEC_VOCAB
    assert talker["text_vocab_size"] == TEXT_VOCAB
    assert talker["num_code_groups"] == CODE_GROUPS
    assert sum(talker["rope_scaling"]["mrope_section"]) == TALKER["head_dim"] // 2
    assert (cp["hidden_size"], cp["num_hidden_layers"]) == (CODE_PREDICTOR["hidden"], CODE_PREDICTOR["layers"])
    assert (cp["num_attention_heads"], cp["num_key_value_heads"]) == (
        CODE_PREDICTOR["heads"],
        CODE_PREDICTOR["kv_heads"],
    )
    assert (cp["intermediate_size"], cp["vocab_size"]) == (CODE_PREDICTOR["intermediate"], CODE_PREDICTOR["vocab"])
    # The published codec control ids follow from a 2048-entry codebook.
    assert {k: talker[k] for k in ("codec_pad_id", "codec_bos_id", "codec_eos_token_id")} == {
        "codec_pad_id": 2148,
        "codec_bos_id": 2149,
        "codec_eos_token_id": 2150,
    }
    assert (talker["codec_think_id"], talker["codec_nothink_id"]) == (2154, 2155)
    assert (talker["codec_think_bos_id"], talker["codec_think_eos_id"]) == (2156, 2157)
    # Only Base has a speaker encoder; its x-vector is fed where the talker takes a speaker.
    assert "speaker_encoder_config" not in model_cfg
    assert checkpoint_configs("base", "full")[0]["speaker_encoder_config"]["enc_dim"] == TALKER["hidden"]
    # Qwen3TTSTokenizerV2DecoderConfig has no codebook_dim default; the decoder needs one.
    assert st_cfg["decoder_config"]["codebook_dim"] == 512
    assert model_cfg["torch_dtype"] == "bfloat16" and st_cfg["torch_dtype"] == "float32"
    assert model_cfg["studio_tiny_checkpoint"]["size"] == "full"


def test_the_full_size_model_has_1_9_billion_parameters_without_allocating_them(full_voice_design):
    model, _ = full_voice_design

    assert all(p.device.type == "meta" for p in model.parameters())
    total = _count(model)
    assert 1.8e9 <= total <= 2.1e9, total
    assert total == VOICE_DESIGN_PARAMETERS
    assert model.speaker_encoder is None
    assert tuple(model.talker.model.text_embedding.weight.shape) == (TEXT_VOCAB, TALKER["hidden"])


def test_each_talker_and_code_predictor_layer_has_the_published_shapes(full_voice_design):
    model, _ = full_voice_design
    talker_layers = model.talker.model.layers
    cp_layers = model.talker.code_predictor.model.layers

    assert len(talker_layers) == TALKER["layers"]
    assert len(cp_layers) == CODE_PREDICTOR["layers"]
    for layers, dims, head_dim in ((talker_layers, TALKER, TALKER["head_dim"]), (cp_layers, CODE_PREDICTOR, 128)):
        hidden, heads, kv, inter = dims["hidden"], dims["heads"], dims["kv_heads"], dims["intermediate"]
        attention = hidden * heads * head_dim * 2 + hidden * kv * head_dim * 2  # q, o; k, v (no biases)
        mlp = 3 * hidden * inter  # gate, up, down
        norms = 2 * hidden + 2 * head_dim  # input and post-attention norms; q and k norms
        layer = layers[0]
        assert tuple(layer.self_attn.q_proj.weight.shape) == (heads * head_dim, hidden)
        assert tuple(layer.self_attn.k_proj.weight.shape) == (kv * head_dim, hidden)
        assert tuple(layer.mlp.gate_proj.weight.shape) == (inter, hidden)
        assert _count(layers) == len(layers) * (attention + mlp + norms)


def test_the_full_size_speech_tokenizer_decoder_has_about_114_million_parameters(full_voice_design):
    _, speech_tokenizer = full_voice_design

    decoder = _count(speech_tokenizer.decoder)
    # 114,323,137 with qwen-tts 0.1.1.
    assert 110e6 < decoder < 118e6, decoder


def test_a_full_size_base_model_has_a_speaker_encoder_matching_the_talker():
    model, _ = meta_models("base", "full")

    assert model.speaker_encoder is not None
    assert model.speaker_encoder.fc.out_channels == TALKER["hidden"]


def test_streamed_safetensors_files_read_back_exactly(tmp_path):
    from safetensors import safe_open

    tensors = {
        "a.weight": torch.randn(3, 5),
        "b.weight": torch.randn(7, dtype=torch.float32).to(torch.bfloat16),
        "c.count": torch.arange(4, dtype=torch.int64),
        "d.scalar": torch.tensor(0.5),
        "e.empty": torch.zeros(0, 3),
    }
    layout = [(key, tuple(t.shape), t.dtype) for key, t in tensors.items()]
    path = tmp_path / "w.safetensors"

    tiny._write_safetensors(path, layout, iter(tensors.values()))

    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"format": "pt"}
        assert sorted(handle.keys()) == sorted(tensors)
        for key, expected in tensors.items():
            got = handle.get_tensor(key)
            assert got.dtype == expected.dtype and torch.equal(got, expected), key
    (header_length,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert header_length % 8 == 0


def test_streamed_safetensors_refuses_a_disk_without_room(tmp_path, monkeypatch):
    monkeypatch.setattr(tiny.shutil, "disk_usage", lambda _path: SimpleNamespace(total=100, used=90, free=10))

    with pytest.raises(TinyCheckpointError, match="free"):
        tiny._write_safetensors(tmp_path / "w.safetensors", [("x", (64,), torch.float32)], iter([torch.ones(64)]))
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_size_is_refused(tmp_path, capsys):
    assert tiny.main([str(tmp_path / "ckpt"), "--type", "voice_design", "--size", "giant"]) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "giant" in err[0] and "full" in err[0]
    assert not (tmp_path / "ckpt").exists()
    assert set(SIZES) == {"tiny", "0.6b", "full"}


def _safetensors_dtypes(path: Path) -> set[str]:
    raw = path.read_bytes()[:1 << 20]
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    return {entry["dtype"] for key, entry in header.items() if key != "__metadata__"}


@pytest.mark.slow
def test_a_full_size_checkpoint_builds_in_bounded_memory_loads_and_generates(tmp_path):
    from studio.core.project import GenerationParams
    from studio.core.voice import VoiceSpec
    from studio.engine.loader import load_model
    from studio.engine.synth import StreamingSettings, Synthesizer, SynthRequest

    if not Path("/proc/self/status").is_file():
        pytest.skip("reads the build's peak memory from /proc (Linux)")
    target = tmp_path / "full"
    try:
        # A subprocess, so that its peak memory is its own: the build streams one tensor at a time and
        # must never hold the 7.7 GB of float32 weights (measured: 2.8 GB peak on Linux). The child reads
        # its peak from /proc (VmHWM, the high-water mark of its own address space after exec).
        # RUSAGE_CHILDREN / wait4 cannot be used: Linux carries the parent's high-water mark into a child
        # spawned with vfork, so after any full-size load earlier in the test run (13 GiB) every child
        # "peaked" at that.
        build = (
            "import runpy, sys\n"
            f"sys.argv = ['tiny', {str(target)!r}, '--type', 'voice_design', '--size', 'full']\n"
            "code = 0\n"
            "try:\n"
            "    runpy.run_module('studio.engine.tiny', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            "    code = exit.code\n"
            "status = open('/proc/self/status').read()\n"
            "print('peak', int(status.split('VmHWM:')[1].split()[0]) * 1024)\n"
            "sys.exit(code)\n"
        )
        result = subprocess.run([sys.executable, "-c", build], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
        peak_bytes = int(result.stdout.split("peak")[-1])
        assert peak_bytes < 4 * 2**30, f"the build peaked at {peak_bytes / 2**30:.1f} GiB"
        assert _safetensors_dtypes(target / "model.safetensors") == {"BF16"}
        assert _safetensors_dtypes(target / "speech_tokenizer" / "model.safetensors") == {"F32"}

        loaded = load_model(str(target), device="cpu")
        assert loaded.info.parameters == VOICE_DESIGN_PARAMETERS
        assert loaded.info.dtype == "float32"
        request = SynthRequest(
            "A short line.", VoiceSpec.design("A calm voice"), seed=1, generation=GenerationParams(max_new_tokens=8)
        )
        chunks = list(Synthesizer(loaded, streaming=StreamingSettings(enabled=False)).stream(request))
        wav = np.concatenate([c.samples for c in chunks])
        # Random weights never emit end-of-speech: 8 tokens make 7 frames of 1920 samples.
        assert wav.size == 7 * 1920
        assert np.isfinite(wav).all()
        rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
        assert 0.03 < rms < 0.4, rms
        assert float(np.mean(np.abs(wav) >= 0.999)) < 0.01
    finally:
        # pytest keeps recent temporary folders; 4.5 GB must not linger in them.
        shutil.rmtree(target, ignore_errors=True)
