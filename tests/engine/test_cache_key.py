"""The render cache key: every input that changes the audio changes it, nothing else does (issue #15).

Property-based over the real `segment_key` (not a dict the test builds), plus the end-to-end case that
matters most to a user: editing a voice under the same cast name renders again instead of replaying.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.cache import RenderCache
from studio.core.plan import PlannedSegment, plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.loader import ModelInfo
from studio.engine.render import DONE, RenderOptions, render_segments, segment_key
from studio.engine.synth import Synthesizer

INFO = ModelInfo(source="/models/vd", folder="/models/vd", model_type="voice_design", size="1b7",
                 languages=("english",), speakers=(), sample_rate=24000, device="cpu", dtype="float32",
                 attention="sdpa", parameters=1, revision="rev-1")
SEGMENT = PlannedSegment(index=0, kind="speech", line=1, text="Hello there.", emotion="Sad",
                         directives={"pace": "slow", "pitch": "low"}, voice=None, language="english", seed=7, take=0)
VOICE = VoiceSpec.design("A deep voice")
GENERATION = GenerationParams()

text = st.text(min_size=1, max_size=20)

# One change to one input that reaches the model (or decides which model and weights render it).
CHANGES = st.one_of(
    text.map(lambda v: ("segment", "text", v)),
    st.one_of(st.none(), text).map(lambda v: ("segment", "emotion", v)),
    st.dictionaries(st.sampled_from(["pace", "pitch", "volume"]), text, max_size=3).map(
        lambda v: ("segment", "directives", v)),
    st.sampled_from(["german", "auto", "chinese"]).map(lambda v: ("segment", "language", v)),
    st.integers(0, 2**63 - 1).map(lambda v: ("segment", "seed", v)),
    st.integers(0, 9999).map(lambda v: ("segment", "take", v)),
    # A designed voice's description must say something (whitespace alone, even U+0085, is refused).
    text.filter(str.strip).map(lambda v: ("voice", "description", v)),
    text.map(lambda v: ("info", "source", v)),
    text.map(lambda v: ("info", "revision", v)),
    st.sampled_from(["bfloat16", "float16"]).map(lambda v: ("info", "dtype", v)),
    st.sampled_from(["cuda", "cuda:1", "mps"]).map(lambda v: ("info", "device", v)),
    st.floats(0.0, 5.0).map(lambda v: ("generation", "temperature", v)),
    st.integers(0, 1000).map(lambda v: ("generation", "top_k", v)),
    st.floats(0.0, 1.0).map(lambda v: ("generation", "top_p", v)),
    st.floats(0.5, 5.0).map(lambda v: ("generation", "repetition_penalty", v)),
    st.one_of(st.none(), st.integers(1, 8192)).map(lambda v: ("generation", "max_new_tokens", v)),
)


def _key(segment=SEGMENT, voice=VOICE, info=INFO, generation=GENERATION) -> str:
    return segment_key(segment, voice, info, generation)


def _changed(where: str, name: str, value):
    parts = {"segment": SEGMENT, "voice": VOICE, "info": INFO, "generation": GENERATION}
    original = getattr(parts[where], name)
    parts[where] = dataclasses.replace(parts[where], **{name: value})
    return parts, original


@settings(max_examples=300, deadline=None)
@given(CHANGES)
def test_changing_any_one_input_changes_the_key(change):
    where, name, value = change
    parts, original = _changed(where, name, value)
    same = value == original or (where == "info" and name == "device" and value.split(":")[0] == "cpu")
    if name == "directives":  # equal mappings in another order are another instruct
        same = list(value.items()) == list(original.items())
    assert (_key(**parts) == _key()) is same, (where, name, value)


@settings(max_examples=100, deadline=None)
@given(index=st.integers(0, 10_000), line=st.integers(1, 10_000), locked=st.booleans(),
       folder=text, parameters=st.integers(1, 10**10), device_index=st.sampled_from(["cpu", "cpu:0"]))
def test_what_does_not_reach_the_model_does_not_change_the_key(index, line, locked, folder, parameters,
                                                               device_index):
    segment = dataclasses.replace(SEGMENT, index=index, line=line, locked=locked)
    info = dataclasses.replace(INFO, folder=folder, parameters=parameters, device=device_index)
    assert _key(segment=segment, info=info) == _key()


def test_directive_order_is_in_the_key_because_it_is_in_the_instruct():
    # "[pace: slow][pitch: low]" and "[pitch: low][pace: slow]" give the model different instruct text.
    reordered = dataclasses.replace(SEGMENT, directives={"pitch": "low", "pace": "slow"})
    assert _key(segment=reordered) != _key()


def test_editing_a_voice_under_the_same_cast_name_renders_again(loaded_models, tmp_path, monkeypatch):
    loaded = loaded_models("voice_design")
    cache = RenderCache(tmp_path / "cache")
    calls = []
    real = loaded.tts.model.generate

    def generate(*args, **kwargs):
        calls.append(loaded.tts.processor.batch_decode(kwargs["instruct_ids"][0])[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(loaded.tts.model, "generate", generate)
    segments = plan_segments(parse_script("[voice: Ann]Hello there."))
    options = RenderOptions(generation=GenerationParams(max_new_tokens=6))

    def render(description: str):
        [result] = render_segments(segments, synth=Synthesizer(loaded), cache=cache, options=options,
                                   voices={None: None, "Ann": VoiceSpec.design(description)})
        assert result.state == DONE
        return result

    assert not render("A young, bright voice").cached
    assert render("A young, bright voice").cached and len(calls) == 1
    edited = render("An old, rough voice")  # same cast name, new description
    assert not edited.cached and len(calls) == 2 and "An old, rough voice" in calls[-1]


def test_a_new_time_stretch_changes_the_keys_of_paced_segments_only(monkeypatch):
    from studio.engine import render

    plain = dataclasses.replace(SEGMENT, directives={"pitch": "low"})
    normal = dataclasses.replace(SEGMENT, directives={"pace": "normal"})
    before = (_key(), _key(segment=plain), _key(segment=normal))
    monkeypatch.setattr(render, "STRETCH_VERSION", "librosa-99-pv2048/512")
    after = (_key(), _key(segment=plain), _key(segment=normal))
    assert after[0] != before[0]  # "slow" may be stretched: its audio depends on the stretch
    assert after[1:] == before[1:]
