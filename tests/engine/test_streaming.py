"""Intra-segment streaming against qwen-tts's one-shot path on tiny checkpoints.

The joined chunks are compared with a one-shot decode of the same codes (same seed, so the talker
produces identical frames): with enough left context to cover the tiny decoder's receptive field the
two agree to float rounding; with the default context the spectral difference stays small.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from studio.core.project import GenerationParams
from studio.core.voice import VoiceSpec
from studio.engine.decoder_options import DecoderOptions
from studio.engine.synth import Cancelled, StreamingSettings, Synthesizer, SynthReport, SynthRequest

# Both ways of generating frames stream: the reference through a forward hook on qwen-tts's talker, the
# fast decoder from its own loop.
DECODERS = pytest.mark.parametrize("decoder", [DecoderOptions("fast"), DecoderOptions("reference")],
                                   ids=["fast", "reference"])

FRAMES = 130  # about 10 s of audio: several chunks, and more frames than the left context


def request(voice, **kwargs):
    return SynthRequest("A longer sentence for comparing streaming with one-shot decoding.", voice, seed=11,
                        generation=GenerationParams(max_new_tokens=FRAMES + 1), **kwargs)


def spectral_difference(a: np.ndarray, b: np.ndarray) -> float:
    spectrum_a, spectrum_b = np.abs(np.fft.rfft(a)), np.abs(np.fft.rfft(b))
    return float(np.linalg.norm(spectrum_a - spectrum_b) / np.linalg.norm(spectrum_a))


@pytest.fixture
def clone_voice(tmp_path):
    import soundfile

    t = np.arange(30000) / 24000
    path = tmp_path / "ref.wav"
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 170 * t)).astype(np.float32), 24000)
    return VoiceSpec.clone(path, "A short reference.")


@pytest.mark.parametrize("kind", ["voice_design", "base"])
def test_joined_chunks_match_a_one_shot_decode(loaded_models, clone_voice, kind):
    loaded = loaded_models(kind)
    voice = clone_voice if kind == "base" else VoiceSpec.design("A calm narrator")
    # qwen-tts's own one-shot generate and decode against the hook-streamed reference frames (same seed,
    # same sampler, so the same frames): what chunked decoding costs.
    reference = DecoderOptions("reference")
    one_shot = next(Synthesizer(loaded, streaming=StreamingSettings(enabled=False)).stream(
        request(voice), decoder=reference)).samples
    figures = {}
    for context in (100, StreamingSettings().left_context_frames):
        synth = Synthesizer(loaded, streaming=StreamingSettings(left_context_frames=context))
        chunks = [c.samples for c in synth.stream(request(voice), decoder=reference)]
        joined = np.concatenate(chunks)
        assert len(chunks) >= 5 and len(joined) == len(one_shot)
        figures[context] = (float(np.abs(joined - one_shot).max()), spectral_difference(one_shot, joined))
    print(f"{kind}: max abs / spectral difference by left context: {figures}")
    # Context beyond the receptive field (72-frame attention window + convolutions): float rounding.
    assert figures[100][0] < 1e-4
    # The default (one attention window): a small, measured difference (2e-3 spectral at the time of writing).
    assert figures[StreamingSettings().left_context_frames][1] < 1e-2


@DECODERS
def test_first_chunk_arrives_while_the_talker_is_still_generating(loaded_models, decoder):
    synth = Synthesizer(loaded_models("voice_design"))
    report = SynthReport()
    stream = synth.stream(request(VoiceSpec.design("x")), report=report, decoder=decoder)
    first = next(stream)
    frames_at_first_chunk = report.frames
    rest = list(stream)
    assert len(first.samples) == 4 * 1920 and not first.final
    assert frames_at_first_chunk < report.frames == FRAMES
    assert rest[-1].final


@DECODERS
def test_cancel_stops_generation_between_talker_steps(loaded_models, decoder):
    synth = Synthesizer(loaded_models("voice_design"))
    cancel = threading.Event()
    report = SynthReport()
    stream = synth.stream(request(VoiceSpec.design("x")), cancel=cancel, report=report, decoder=decoder)
    next(stream)
    cancel.set()
    with pytest.raises(Cancelled):
        list(stream)
    assert report.frames < FRAMES
    assert not [t for t in threading.enumerate() if t.name == "talker-generate"]
    # The model is usable again right away.
    assert len(next(synth.stream(request(VoiceSpec.design("x")), decoder=decoder)).samples) > 0
