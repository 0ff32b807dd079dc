"""The fast decoder against the reference path (qwen-tts's generate) on the tiny checkpoints.

Under greedy choice in float32 eager mode the two must produce the same codes, frame for frame, for
every voice kind. They may part only where the two best logits of a choice are within 1e-5 of each
other (a tie that float rounding inside attention decides); the test checks that this is so where they
part. With sampling, the fast loop's distribution is transformers' (tests/engine/test_sampling.py) and
the same seed gives the same audio.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
import soundfile
import torch

from studio.core.plan import PlannedSegment
from studio.core.project import GenerationParams
from studio.core.voice import VoiceSpec
from studio.engine.decoder_options import DecoderOptions
from studio.engine.fast_decode import DecoderStack
from studio.engine.render import segment_key
from studio.engine.synth import Cancelled, Synthesizer, SynthReport, SynthRequest

REFERENCE, FAST = DecoderOptions("reference"), DecoderOptions("fast")
GREEDY = GenerationParams(temperature=0.0, max_new_tokens=48)
TIE = 1e-5


def _clip(path, hz: float, seconds: float = 1.5):
    t = np.arange(int(24000 * seconds)) / 24000
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 24000)
    return path


@pytest.fixture
def voices(tmp_path):
    identity = _clip(tmp_path / "identity.wav", 170)
    angry = _clip(tmp_path / "angry.wav", 260)
    return {
        "designed": ("voice_design", VoiceSpec.design("A calm, low narrator"), None),
        "designed, whispering": ("voice_design", VoiceSpec.design("A calm, low narrator"), "whispering"),
        "preset": ("custom_voice", VoiceSpec.preset("ryan"), None),
        "preset, angry": ("custom_voice", VoiceSpec.preset("ryan"), "angry"),
        "cloned (ICL)": ("base", VoiceSpec.clone(identity, "A short reference line."), None),
        "cloned (x-vector only)": ("base", VoiceSpec.clone(identity, None, x_vector_only=True), None),
        # The identity clip's speaker embedding with another clip's codes and transcript (an emotion clip).
        "cloned, emotion clip": ("base", VoiceSpec(kind="clone", ref_audio=str(identity), ref_text="A short line.",
                                                   emotion_refs=(("angry", str(angry), "Get out now!"),)), "angry"),
    }


def first_divergence(reference: list, fast: list) -> int | None:
    for index, (a, b) in enumerate(zip(reference, fast, strict=False)):
        if not torch.equal(a, b):
            return index
    return None if len(reference) == len(fast) else min(len(reference), len(fast))


def compare_greedy(synth: Synthesizer, request: SynthRequest) -> tuple[list, list, list[float]]:
    """Reference frames, fast frames and the fast loop's per-choice margins for `request`."""
    reference = list(synth.generate_codes(request, decoder=REFERENCE))
    fast_decoder = synth.fast_decoder(FAST)
    fast_decoder.margins = []
    try:
        fast = list(synth.generate_codes(request, decoder=FAST))
        margins = fast_decoder.margins
    finally:
        fast_decoder.margins = None
    return reference, fast, margins


def assert_same_codes_or_a_tie(reference: list, fast: list, margins: list[float]) -> None:
    parted = first_divergence(reference, fast)
    if parted is None:
        return
    # A frame's 16 choices are margins[16 * frame : 16 * frame + 16] (first codebook, then the 15 others).
    closest = min(margins[16 * parted : 16 * parted + 16])
    assert closest < TIE, f"the paths part at frame {parted} where no choice was a tie (closest {closest:.3g})"


@pytest.mark.parametrize("name", ["designed", "designed, whispering", "preset", "preset, angry", "cloned (ICL)",
                                  "cloned (x-vector only)", "cloned, emotion clip"])
def test_greedy_fast_codes_equal_the_reference_codes_for_every_voice_kind(loaded_models, voices, name):
    kind, voice, emotion = voices[name]
    synth = Synthesizer(loaded_models(kind))
    request = SynthRequest("The fast loop must say exactly what the reference says.", voice, emotion=emotion,
                           language="english", generation=GREEDY)
    reference, fast, margins = compare_greedy(synth, request)
    assert len(reference) > 10
    assert_same_codes_or_a_tie(reference, fast, margins)
    # On the tiny checkpoints no choice is that close: the codes are the same to the last frame.
    assert len(fast) == len(reference) and all(torch.equal(a, b) for a, b in zip(reference, fast, strict=False))


def test_a_divergence_without_a_tie_fails_the_identity_check(loaded_models):
    # The check itself must catch a loop that computes something else: a fast loop that drops the text
    # still to be read from the talker's input parts from the reference where no choice is close.
    synth = Synthesizer(loaded_models("voice_design"))
    request = SynthRequest("A sentence long enough to be read over several frames of speech.",
                           VoiceSpec.design("A calm narrator"), language="english", generation=GREEDY)
    fast_decoder = synth.fast_decoder(FAST)
    original = fast_decoder.talker_input
    fast_decoder.talker_input = lambda frame, text: original(frame, torch.zeros_like(text))
    try:
        reference, fast, margins = compare_greedy(synth, request)
    finally:
        fast_decoder.talker_input = original
    with pytest.raises(AssertionError, match="no choice was a tie"):
        assert_same_codes_or_a_tie(reference, fast, margins)


def test_the_frame_cap_and_the_end_of_speech_rule_match_the_reference(loaded_models):
    # min_new_tokens, the suppressed top of the codec vocabulary and the cap: with a cap of 5 tokens
    # qwen-tts yields 4 frames; the fast loop must stop at the same place and report the cap the same way.
    synth = Synthesizer(loaded_models("custom_voice"))
    request = SynthRequest("Short.", VoiceSpec.preset("ryan"), generation=GenerationParams(temperature=0.0,
                                                                                           max_new_tokens=5))
    reports = {}
    for options in (REFERENCE, FAST):
        reports[options.decoder] = SynthReport()
        audio = np.concatenate([c.samples for c in synth.stream(request, decoder=options,
                                                                 report=reports[options.decoder])])
        assert len(audio) == 4 * 1920
    assert reports["fast"].frames == reports["reference"].frames == 4
    assert reports["fast"].hit_token_cap


def test_same_seed_same_audio_other_seed_other_audio_with_sampling(loaded_models):
    synth = Synthesizer(loaded_models("voice_design"))
    voice = VoiceSpec.design("A bright young voice")

    def render(seed: int) -> np.ndarray:
        request = SynthRequest("Sampling with a seed.", voice, seed=seed,
                               generation=GenerationParams(max_new_tokens=30))
        return np.concatenate([c.samples for c in synth.stream(request, decoder=FAST)])

    first, again, other = render(5), render(5), render(6)
    np.testing.assert_array_equal(first, again)
    assert len(first) != len(other) or not np.array_equal(first, other)


def test_cancel_stops_the_fast_loop_between_frames(loaded_models):
    synth = Synthesizer(loaded_models("voice_design"))
    cancel = threading.Event()
    report = SynthReport()
    request = SynthRequest("A longer line to cancel part way.", VoiceSpec.design("x"),
                           generation=GenerationParams(max_new_tokens=120))
    stream = synth.stream(request, cancel=cancel, report=report, decoder=FAST)
    next(stream)
    cancel.set()
    with pytest.raises(Cancelled):
        list(stream)
    assert report.frames < 119
    assert not [t for t in threading.enumerate() if t.name == "talker-generate"]


def test_int8_leaves_the_models_own_weights_alone_and_moves_the_logits_a_little(loaded_models):
    loaded = loaded_models("voice_design")
    synth = Synthesizer(loaded)
    talker = loaded.tts.model.talker
    weight = talker.model.layers[0].self_attn.q_proj.weight
    before = weight.detach().clone()
    said = []
    int8 = synth.fast_decoder(DecoderOptions("fast", int8=True), progress=said.append)
    assert said == ["preparing int8 weights for the decoder (once per loaded model)"]  # 30 s at 1.7B: said
    assert torch.equal(weight, before) and type(talker.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    assert int8.talker_stack.layers[0].self_attn.q_proj.weight().dtype == torch.qint8
    # The same hidden state through both heads: int8 moves the logits by a small fraction of their spread.
    hidden = torch.randn(1, talker.config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        exact, rough = talker.codec_head(hidden), int8.codec_head(hidden)
    relative = float((rough - exact).abs().max() / exact.abs().max())
    print(f"int8 codec head: largest logit change {relative:.2%} of the largest logit")
    assert 0 < relative < 0.05
    # The reference path still reads the float weights: its greedy codes do not change.
    request = SynthRequest("Unchanged.", VoiceSpec.design("x"), generation=GREEDY)
    reference = list(synth.generate_codes(request, decoder=REFERENCE))
    fast = list(synth.generate_codes(request, decoder=FAST))
    assert len(reference) == len(fast) and all(torch.equal(a, b) for a, b in zip(reference, fast, strict=True))


def test_compiling_int8_layers_falls_back_to_eager_and_says_so(loaded_models):
    # torch.compile cannot trace dynamically quantised linears: the decoder must stay usable, eager.
    synth = Synthesizer(loaded_models("voice_design"))
    options = DecoderOptions("fast", compile=True, int8=True)
    said = []
    decoder = synth.fast_decoder(options, progress=said.append)
    assert decoder.compile_status.startswith("eager:")
    assert decoder._talker_step == decoder._eager_talker_step
    request = SynthRequest("Still speaks.", VoiceSpec.design("x"), generation=GREEDY)
    compiled_try = list(synth.generate_codes(request, decoder=options))
    eager = list(synth.generate_codes(request, decoder=DecoderOptions("fast", int8=True)))
    assert said and len(compiled_try) == len(eager)
    assert all(torch.equal(a, b) for a, b in zip(compiled_try, eager, strict=True))


def test_the_compile_probe_and_every_segment_run_on_the_decoders_one_thread(loaded_models, monkeypatch):
    # torch keeps CUDA graphs per thread: if each segment ran on a new thread, a compiled decoder would
    # record its graphs again, in a new memory pool, for every segment; if two segments overlapped they
    # would write the same static caches.
    calls, active, most = [], [0], [0]
    original = DecoderStack.forward

    def recorded(stack, x, start):
        active[0] += 1
        most[0] = max(most[0], active[0])
        calls.append(threading.current_thread())
        try:
            return original(stack, x, start)
        finally:
            active[0] -= 1

    monkeypatch.setattr(DecoderStack, "forward", recorded)
    synth = Synthesizer(loaded_models("voice_design"))
    options = DecoderOptions("fast", compile=True, int8=True)  # compiling is tried (its probe runs), then refused
    decoder = synth.fast_decoder(options)
    assert decoder.compile_status.startswith("eager:") and calls  # the probe ran eager frames
    probe_threads = set(calls)
    request = SynthRequest("A line long enough to leave part way through.", VoiceSpec.design("x"),
                           generation=GenerationParams(max_new_tokens=40))
    abandoned = synth.generate_codes(request, decoder=options)
    next(abandoned)
    abandoned.close()  # the caller stops reading: the producer stops after its frame in flight
    assert len(list(synth.generate_codes(request, decoder=options))) > 2
    assert probe_threads == set(calls) == {decoder._thread} and decoder._thread is not threading.current_thread()
    assert most[0] == 1  # never two forwards at once
    # Dropping the decoder ends its thread.
    thread = decoder._thread
    synth._fast = decoder = None
    gc.collect()  # a failed compile leaves reference cycles behind
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_compiled_steps_outputs_survive_the_next_call_into_the_graph_pool():
    # A CUDA graph writes every call's output into the same pool memory; on an H200 the talker's next step
    # overwrote the predictor's codes still in use. The wrapper must hand out copies.
    from studio.engine.fast_compile import _owned

    pool = torch.zeros(15, dtype=torch.long)

    def graphed(value: int) -> torch.Tensor:  # a replay: the same output storage every time
        return pool.fill_(value)

    step = _owned(graphed)
    codes = step(7)
    step(9)
    assert codes.tolist() == [7] * 15


@pytest.mark.slow
def test_compiled_steps_give_the_eager_codes(loaded_models):
    # About a minute of compiling on two cores (inductor generates and builds C++ for both graphs).
    synth = Synthesizer(loaded_models("voice_design"))
    compiled = DecoderOptions("fast", compile=True)
    decoder = synth.fast_decoder(compiled)
    assert decoder.compile_status.startswith("compiled"), decoder.compile_status
    assert decoder._predict != decoder.predict_codes  # the predictor loop is compiled (on a GPU the talker step too)
    for generation in (GREEDY, GenerationParams(max_new_tokens=48)):  # greedy, then sampling (a recompile)
        request = SynthRequest("Compiled or not, the same words.", VoiceSpec.design("x"), seed=2,
                               generation=generation)
        fast = list(synth.generate_codes(request, decoder=compiled))
        if generation is GREEDY:
            eager = list(synth.generate_codes(request, decoder=FAST))
            assert len(fast) == len(eager) > 10
            assert all(torch.equal(a, b) for a, b in zip(fast, eager, strict=True))
        else:  # the compiled sampler draws its own random numbers, deterministically from the seed
            assert all(torch.equal(a, b) for a, b in zip(fast, synth.generate_codes(request, decoder=compiled),
                                                         strict=True))


def test_the_cache_key_keeps_the_keys_made_before_and_sets_int8_apart(monkeypatch):
    from studio.engine import render
    from studio.engine.loader import ModelKeyParts

    # Package versions pinned so the key is a fixed value: the one segment_key gave for these inputs before
    # the fast decoder existed (computed on the previous commit). Renders made then must still be found
    # with either decoder, or upgrading would empty every project's timeline.
    monkeypatch.setattr(render, "AUDIO_PACKAGE_VERSIONS",
                        {"qwen-tts": "0.1.1", "transformers": "4.57.3", "torch": "2.14.1"})
    segment = PlannedSegment(index=0, line=1, kind="speech", text="Hello.", voice=None, emotion="Sad", seed=3)
    voice = VoiceSpec.design("x")
    info = ModelKeyParts(source="m", revision="r", dtype="float32", device="cpu")
    generation = GenerationParams()
    keys = {name: segment_key(segment, voice, info, generation, options) for name, options in {
        "reference": REFERENCE, "fast": FAST, "compiled": DecoderOptions("fast", compile=True),
        "int8": DecoderOptions("fast", int8=True), "int8 compiled": DecoderOptions("fast", compile=True, int8=True),
    }.items()}
    before = "b9c7a4c33f48fc01939493da6b2b98277be8251625d6d7f13feae746185d6ffd"
    assert keys["reference"] == keys["fast"] == keys["compiled"] == before
    assert keys["int8"] == keys["int8 compiled"] != before
