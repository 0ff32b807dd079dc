"""What the real qwen-tts model receives for each voice kind, from a tagged script (issue #15).

The report's instruct and the manifest say what the studio meant; these tests read the keyword
arguments of the model's own generate() call, decoding its token ids back to text, for the streaming
path and the one-shot path alike.
"""

from __future__ import annotations

import pytest

from studio.core.plan import plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.render import DONE, RenderOptions, render_segments
from studio.engine.synth import StreamingSettings, Synthesizer

SCRIPT = "[Whispering][pace: slow][language: German]Komm näher.\n[neutral][Angry]Raus hier!"
GENERATION = GenerationParams(temperature=0.7, top_k=20, top_p=0.9, repetition_penalty=1.2, max_new_tokens=9)


def _spy(monkeypatch, loaded) -> list[dict]:
    seen: list[dict] = []
    real = loaded.tts.model.generate

    def generate(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(loaded.tts.model, "generate", generate)
    return seen


def _text(loaded, ids) -> str:
    return loaded.tts.processor.batch_decode(ids)[0]


def _render(loaded, voice: VoiceSpec, streaming: bool):
    synth = Synthesizer(loaded, streaming=StreamingSettings(enabled=streaming))
    segments = plan_segments(parse_script(SCRIPT))
    results = render_segments(segments, synth=synth, voices={None: voice}, cache=None,
                              options=RenderOptions(generation=GENERATION, use_cache=False))
    assert [r.state for r in results] == [DONE, DONE]
    return results


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "one-shot"])
def test_a_designed_voice_sends_identity_then_delivery(loaded_models, monkeypatch, streaming):
    loaded = loaded_models("voice_design")
    seen = _spy(monkeypatch, loaded)
    results = _render(loaded, VoiceSpec.design("A deep, raspy old cowboy"), streaming)
    first, second = seen
    assert _text(loaded, first["instruct_ids"][0]) == (
        "<|im_start|>user\nA deep, raspy old cowboy. Delivery: Whispering; pace: slow.<|im_end|>\n"
    )
    # The next line's [Angry] replaces the emotion; the directive persists; the identity stays word for word.
    assert _text(loaded, second["instruct_ids"][0]) == (
        "<|im_start|>user\nA deep, raspy old cowboy. Delivery: Angry; pace: slow.<|im_end|>\n"
    )
    assert "Komm näher." in _text(loaded, first["input_ids"][0])
    assert first["languages"] == ["german"] and second["languages"] == ["german"]
    assert "speakers" not in first or first["speakers"] in (None, [None])
    for kwargs in seen:
        assert (kwargs["temperature"], kwargs["top_k"], kwargs["top_p"], kwargs["repetition_penalty"]) == (
            0.7, 20, 0.9, 1.2)
        assert kwargs["max_new_tokens"] == 9 and kwargs["do_sample"] is True
    assert all(r.emotion_applied for r in results)


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "one-shot"])
def test_a_preset_voice_sends_its_speaker_and_the_delivery(loaded_models, monkeypatch, streaming):
    loaded = loaded_models("custom_voice")
    seen = _spy(monkeypatch, loaded)
    results = _render(loaded, VoiceSpec.preset("Ryan"), streaming)
    first, second = seen
    assert first["speakers"] == ["Ryan"] and second["speakers"] == ["Ryan"]
    assert _text(loaded, first["instruct_ids"][0]) == (
        "<|im_start|>user\nDelivery: Whispering; pace: slow.<|im_end|>\n"
    )
    assert _text(loaded, second["instruct_ids"][0]) == "<|im_start|>user\nDelivery: Angry; pace: slow.<|im_end|>\n"
    assert first["languages"] == ["german"]
    assert all(r.emotion_applied for r in results)


def test_a_line_without_delivery_sends_no_instruct_to_a_preset(loaded_models, monkeypatch):
    loaded = loaded_models("custom_voice")
    seen = _spy(monkeypatch, loaded)
    synth = Synthesizer(loaded)
    segments = plan_segments(parse_script("Just words."))
    render_segments(segments, synth=synth, voices={None: VoiceSpec.preset("ryan")}, cache=None,
                    options=RenderOptions(generation=GENERATION, use_cache=False))
    assert seen[0]["instruct_ids"] == [None]
