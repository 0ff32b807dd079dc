"""The engine through the real qwen-tts path on tiny checkpoints: loading, errors, synthesis, rendering."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
import soundfile

from studio.core.cache import RenderCache
from studio.core.plan import plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.loader import EngineError, load_model
from studio.engine.render import DONE, FAILED, RenderCallbacks, RenderOptions, render_segments
from studio.engine.synth import Cancelled, Synthesizer, SynthReport, SynthRequest

SHORT = GenerationParams(max_new_tokens=12)
DESIGN = VoiceSpec.design("A calm, low narrator")


@pytest.fixture
def clip(tmp_path):
    """A reference clip for cloning: two seconds of a voiced-like tone, 16-bit WAV at 24 kHz."""
    t = np.arange(48000) / 24000
    audio = 0.2 * np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    path = tmp_path / "ref.wav"
    soundfile.write(path, audio.astype(np.float32), 24000, subtype="PCM_16")
    return path


# --- loading -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "speakers", "honoured"),
    [("voice_design", False, True), ("custom_voice", True, True), ("base", False, False)],
)
def test_load_reports_what_was_loaded(loaded_models, kind, speakers, honoured):
    info = loaded_models(kind).info
    assert info.model_type == kind
    assert info.sample_rate == 24000
    assert info.device == "cpu" and info.dtype == "float32" and info.attention in ("sdpa", "flash_attention_2")
    assert "english" in info.languages and "auto" in info.languages
    assert bool(info.speakers) == speakers
    assert info.instruct_honoured == honoured
    assert len(info.revision) == 64 and info.parameters > 0


def test_missing_folder(tmp_path):
    with pytest.raises(EngineError, match="no such model folder"):
        load_model(str(tmp_path / "nope"))


def test_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(EngineError, match="not a Qwen3-TTS checkpoint .*'bert'"):
        load_model(str(tmp_path))
    with pytest.raises(EngineError, match="not a Qwen3-TTS checkpoint \\(no config.json\\)"):
        load_model(str(tmp_path / ".."))


def test_incomplete_checkpoint_names_the_missing_files(tiny_checkpoints, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoints["voice_design"], broken)
    shutil.rmtree(broken / "speech_tokenizer")
    with pytest.raises(EngineError, match="missing speech_tokenizer/config.json"):
        load_model(str(broken))


def test_hub_id_without_network_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EngineError) as info:
        load_model("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign")
    message = str(info.value)
    assert "\n" not in message
    assert "not downloaded yet" in message and "local checkpoint folder" in message


# --- synthesis ------------------------------------------------------------------------------------------


def test_stream_yields_audible_chunks_with_instruct_identity_first(loaded_models):
    synth = Synthesizer(loaded_models("voice_design"))
    report = SynthReport()
    request = SynthRequest("Hello there.", DESIGN, emotion="Whispering", generation=SHORT)
    chunks = list(synth.stream(request, report=report))
    assert chunks and chunks[-1].final
    audio = np.concatenate([c.samples for c in chunks])
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert 0.01 < float(np.sqrt(np.mean(audio**2))) < 0.5
    assert report.instruct == "A calm, low narrator. Delivery: Whispering."
    assert report.emotion_applied


def test_same_seed_same_audio_other_seed_other_audio(loaded_models):
    synth = Synthesizer(loaded_models("voice_design"))

    def render(seed):
        request = SynthRequest("Same words.", DESIGN, seed=seed, generation=SHORT)
        return np.concatenate([c.samples for c in synth.stream(request)])

    first, again, other = render(5), render(5), render(6)
    np.testing.assert_array_equal(first, again)
    assert len(first) != len(other) or not np.array_equal(first, other)


def test_preset_speaker_and_clone_voices(loaded_models, clip):
    preset = Synthesizer(loaded_models("custom_voice"))
    audio = next(preset.stream(SynthRequest("Hi.", VoiceSpec.preset("Ryan"), emotion="Happy", generation=SHORT)))
    assert len(audio.samples) > 0
    clone = Synthesizer(loaded_models("base"))
    for voice in (VoiceSpec.clone(clip, "A test clip."), VoiceSpec.clone(clip, None, x_vector_only=True)):
        report = SynthReport()
        chunk = next(clone.stream(SynthRequest("Hi.", voice, emotion="Angry", generation=SHORT), report=report))
        assert len(chunk.samples) > 0
        # A Base model has no instruct: the emotion is recorded as not applied, never silently dropped.
        assert report.emotion_applied is False and report.instruct == ""


@pytest.mark.parametrize(
    ("kind", "voice", "language", "message"),
    [
        ("base", DESIGN, "auto", "designed voice needs a VoiceDesign checkpoint"),
        ("voice_design", VoiceSpec.preset("ryan"), "auto", "preset voice needs a CustomVoice checkpoint"),
        ("custom_voice", VoiceSpec.preset("bob"), "auto", "speaker 'bob' is not in"),
        ("voice_design", DESIGN, "klingon", "language 'klingon' is not supported"),
    ],
)
def test_requests_a_model_cannot_serve(loaded_models, kind, voice, language, message):
    synth = Synthesizer(loaded_models(kind))
    with pytest.raises(EngineError, match=message):
        next(synth.stream(SynthRequest("Hi.", voice, language=language)))


def test_cancel_before_generation(loaded_models):
    synth = Synthesizer(loaded_models("voice_design"))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        next(synth.stream(SynthRequest("Hi.", DESIGN, generation=SHORT), cancel=cancel))


def test_cap_from_text_length_is_used_and_flagged(loaded_models):
    synth = Synthesizer(loaded_models("voice_design"))
    report = SynthReport()
    list(synth.stream(SynthRequest("Hi.", DESIGN), report=report))
    # Random weights never emit end-of-speech, so generation runs into the text-derived cap.
    assert report.max_new_tokens == 40
    assert report.hit_token_cap


# --- rendering with the cache ------------------------------------------------------------------------------

SCRIPT = "[Whispering]Come closer. [pause 0.5s] Closer.\n[Angry]Now!\n[language: German][neutral]Gut."


def plan(script):
    return plan_segments(parse_script(script), seed=3)


def run(loaded, segments, cache, voices=None, **kwargs):
    return render_segments(
        segments,
        synth=Synthesizer(loaded),
        voices=voices or {None: DESIGN},
        cache=cache,
        options=RenderOptions(generation=SHORT),
        **kwargs,
    )


def test_render_then_everything_cached_then_only_the_edited_line(loaded_models, tmp_path):
    loaded = loaded_models("voice_design")
    cache = RenderCache(tmp_path / "cache")
    first = run(loaded, plan(SCRIPT), cache)
    assert [r.state for r in first] == [DONE] * 5
    assert [r.cached for r in first if r.segment.kind == "speech"] == [False] * 4
    pause = first[1]
    assert pause.segment.kind == "pause" and pause.n_samples == 12000 and not pause.samples.any()

    second = run(loaded, plan(SCRIPT), cache)
    assert all(r.cached for r in second if r.segment.kind == "speech")
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)

    edited = SCRIPT.replace("[Angry]Now!", "[Angry]Right now!")
    third = run(loaded, plan(edited), cache)
    rendered = [r.segment.line for r in third if r.segment.kind == "speech" and not r.cached]
    assert rendered == [2]


def test_corrupt_cache_entry_is_rendered_again(loaded_models, tmp_path):
    loaded = loaded_models("voice_design")
    cache = RenderCache(tmp_path / "cache")
    first = run(loaded, plan("One."), cache)
    data = next((tmp_path / "cache").rglob("*.f32"))
    data.write_bytes(data.read_bytes()[:100])
    second = run(loaded, plan("One."), cache)
    assert not second[0].cached
    np.testing.assert_array_equal(first[0].samples, second[0].samples)


def test_failing_segment_is_marked_and_the_rest_render(loaded_models, tmp_path):
    segments = plan("One.\n[voice: Ghost]Two.\n[voice: Ann]Three.")
    results = run(loaded_models("voice_design"), segments, None, voices={None: DESIGN, "Ann": DESIGN})
    assert [r.state for r in results] == [DONE, FAILED, DONE]
    assert "voice 'Ghost' is not set up in the cast" in results[1].error


def test_callbacks_report_chunks_in_order_and_cancel_stops_between_segments(loaded_models):
    events = []
    cancel = threading.Event()

    def finished(result):
        events.append(("finished", result.segment.index))
        cancel.set()  # the user pressed stop while segment 0 rendered

    callbacks = RenderCallbacks(
        segment_started=lambda i: events.append(("started", i)),
        chunk_ready=lambda i, chunk: events.append(("chunk", i)),
        segment_finished=finished,
    )
    with pytest.raises(Cancelled):
        run(loaded_models("voice_design"), plan("One.\nTwo."), None, cancel=cancel, callbacks=callbacks)
    # Streaming: several chunks of segment 0 (12 frames: a first chunk of 4, then the rest), then stop.
    assert events[0] == ("started", 0) and events[-1] == ("finished", 0)
    assert events[1:-1] == [("chunk", 0)] * (len(events) - 2) and len(events) - 2 >= 2


def test_out_of_memory_is_retried_once_after_emptying_the_cache(loaded_models, monkeypatch):
    import torch

    synth = Synthesizer(loaded_models("voice_design"))
    real_stream = synth.stream
    calls = []

    def stream_failing_first(request, **kwargs):
        # Failure injection around the real engine: the first attempt runs out of memory.
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        yield from real_stream(request, **kwargs)

    monkeypatch.setattr(synth, "stream", stream_failing_first)
    results = render_segments(plan("One."), synth=synth, voices={None: DESIGN}, cache=None,
                              options=RenderOptions(generation=SHORT))
    assert results[0].state == DONE and len(calls) == 2

    calls.clear()

    def always_oom(request, **kwargs):
        calls.append(1)
        raise torch.OutOfMemoryError("CUDA out of memory.")
        yield  # pragma: no cover - makes this a generator like the real one

    monkeypatch.setattr(synth, "stream", always_oom)
    results = render_segments(plan("One.\nTwo."), synth=synth, voices={None: DESIGN}, cache=None,
                              options=RenderOptions(generation=SHORT))
    assert [r.state for r in results] == [FAILED, FAILED] and len(calls) == 4
    assert "OutOfMemoryError: CUDA out of memory." in results[0].error
