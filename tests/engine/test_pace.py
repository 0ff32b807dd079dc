"""`[pace: ...]` through the real engine on tiny checkpoints (issue #20).

Where the voice's model follows an instruct, the pace is read there and the audio is left alone; where it
does not (a cloned voice, the 0.6B CustomVoice), the studio stretches the model's audio without changing
its pitch, reports the pace as applied "time-stretch", hands listeners the stretched audio only, and
keeps the stretched audio in the cache.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile

from studio.core.cache import RenderCache
from studio.core.plan import plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine import render as render_module
from studio.engine.render import (
    DONE,
    PACE_BY_INSTRUCT,
    PACE_BY_STRETCH,
    RenderCallbacks,
    RenderOptions,
    render_segments,
)
from studio.engine.synth import StreamingSettings, Synthesizer
from studio.engine.time_stretch import stretch_speech
from studio.session.exporting import export_results

OPTIONS = RenderOptions(generation=GenerationParams(max_new_tokens=14))


def _segments(script: str):
    return plan_segments(parse_script(script))


def _render(loaded, voice, segments, cache=None, callbacks=None, streaming=True):
    synth = Synthesizer(loaded, streaming=StreamingSettings(enabled=streaming))
    results = render_segments(segments, synth=synth, voices={None: voice}, cache=cache, options=OPTIONS,
                              callbacks=callbacks)
    assert all(r.state == DONE for r in results), [r.error for r in results]
    return results


def _with_pace(segment, value: str):
    # The same seed as the plain segment, so the model generates the same audio and only the pace differs.
    return dataclasses.replace(segment, directives={**segment.directives, "pace": value})


def test_a_cloned_voice_is_stretched_to_the_pace_with_its_own_audio(loaded_models, clone_voice):
    loaded = loaded_models("base")
    [plain_segment] = _segments("Hello there, how are you?")
    slow_segment = _with_pace(plain_segment, "0.8x")
    fast_segment = _with_pace(plain_segment, "fast")
    [plain, slow, fast] = _render(loaded, clone_voice, [plain_segment, slow_segment, fast_segment])

    assert plain.pace == "" and slow.pace == fast.pace == PACE_BY_STRETCH
    assert len(slow.samples) == round(len(plain.samples) / 0.8)
    assert len(fast.samples) == round(len(plain.samples) / 1.15)
    # What is stretched is the model's audio for this segment, at the rate the tag asks for.
    np.testing.assert_array_equal(slow.samples, stretch_speech(plain.samples, 0.8))
    np.testing.assert_array_equal(fast.samples, stretch_speech(plain.samples, 1.15))
    # The pace counts as applied: no "not applied" warning for it.
    assert slow.directives_applied and "not applied" not in (slow.warning or "")


def test_listeners_get_only_the_stretched_audio(loaded_models, clone_voice):
    """The window plays and draws the chunks it is sent; chunks of the unstretched audio would be heard and
    then contradicted by the final mix."""
    loaded = loaded_models("base")
    [plain_segment] = _segments("Hello there, how are you?")
    segments = [plain_segment, dataclasses.replace(_with_pace(plain_segment, "slow"), index=1)]
    chunks: dict[int, list[np.ndarray]] = {0: [], 1: []}
    callbacks = RenderCallbacks(chunk_ready=lambda index, chunk: chunks[index].append(chunk.samples))
    plain, slow = _render(loaded, clone_voice, segments, callbacks=callbacks)

    assert len(chunks[0]) > 1, "the plain segment streams chunk by chunk"
    np.testing.assert_array_equal(np.concatenate(chunks[0]), plain.samples)
    assert len(chunks[1]) == 1
    np.testing.assert_array_equal(chunks[1][0], slow.samples)


def test_the_stretched_audio_is_what_the_cache_keeps(loaded_models, clone_voice, tmp_path, monkeypatch):
    loaded = loaded_models("base")
    cache = RenderCache(tmp_path / "cache")
    segments = _segments("[pace: slow][tone: warm]Hello there.")
    [first] = _render(loaded, clone_voice, segments, cache=cache)

    def no_stretch(*args, **kwargs):
        raise AssertionError("a cached segment is not stretched again")

    monkeypatch.setattr(render_module, "stretch_speech", no_stretch)
    [again] = _render(loaded, clone_voice, segments, cache=cache)
    assert again.cached and again.pace == PACE_BY_STRETCH
    np.testing.assert_array_equal(again.samples, first.samples)
    # The pace was applied, the tone was not (a clone has no instruct): only the tone is reported.
    for result in (first, again):
        assert not result.directives_applied
        assert "not applied by this voice's model (it takes no instruct): tone: warm" in result.warning
        assert "pace" not in result.warning


def test_a_model_that_follows_the_instruct_reads_the_pace_and_is_not_stretched(loaded_models, monkeypatch):
    loaded = loaded_models("voice_design")
    seen = []
    real = loaded.tts.model.generate
    monkeypatch.setattr(loaded.tts.model, "generate", lambda *a, **k: seen.append(k) or real(*a, **k))
    monkeypatch.setattr(render_module, "stretch_speech", lambda *a, **k: pytest.fail("stretched"))
    [result] = _render(loaded, VoiceSpec.design("A calm voice"), _segments("[pace: slow]Hello."),
                       streaming=False)
    assert result.pace == PACE_BY_INSTRUCT and result.directives_applied
    instruct = loaded.tts.processor.batch_decode(seen[0]["instruct_ids"][0])[0]
    assert "pace: slow" in instruct


def test_the_small_custom_voice_model_is_stretched(loaded_models):
    loaded = loaded_models("custom_voice")
    small = dataclasses.replace(loaded, info=dataclasses.replace(loaded.info, size="0b6"))
    [plain_segment] = _segments("Hello.")
    [plain, slow] = _render(small, VoiceSpec.preset("ryan"), [plain_segment, _with_pace(plain_segment, "75%")])
    assert slow.pace == PACE_BY_STRETCH and len(slow.samples) == round(len(plain.samples) / 0.75)


def test_the_manifest_says_how_each_pace_was_honoured(loaded_models, clone_voice, tmp_path):
    loaded = loaded_models("base")
    results = _render(loaded, clone_voice, _segments("[pace: 0.9x]Slowly now.\n[pace: normal]Back to normal."))
    exported = export_results(results, sample_rate=loaded.info.sample_rate, folder=tmp_path / "out", name="s",
                              models={loaded.info.source: loaded.info})
    segments = json.loads(exported.manifest.read_text())["segments"]
    assert segments[0]["pace"] == {"value": "0.9x", "rate": 0.9, "method": "time-stretch"}
    assert "pace" not in segments[1]
    # The exported audio holds the stretched segment.
    audio, _rate = soundfile.read(exported.audio, dtype="float32")
    assert segments[0]["end"] - segments[0]["start"] == pytest.approx(len(results[0].samples) / 24000, abs=1e-3)
    assert len(audio) >= len(results[0].samples) + len(results[1].samples)
