"""A directive the voice's model cannot honour is reported as not applied (issue #15).

"[tone: warm]" reaches a model only through the instruct text: a Base model (cloning) has no instruct
input and the 0.6B CustomVoice ignores it, so there the directive must be reported as not applied, in
the result, the warning (segment list, CLI summary) and the exported manifest; never as applied.
(A pace is the exception: the studio stretches the audio instead, see test_pace.py.)
"""

from __future__ import annotations

import dataclasses
import json

from studio.core.cache import RenderCache
from studio.core.plan import plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.loader import LoadedModel
from studio.engine.render import DONE, RenderOptions, render_segments
from studio.engine.synth import Synthesizer
from studio.session.exporting import export_results

OPTIONS = RenderOptions(generation=GenerationParams(max_new_tokens=6))


def _render(loaded, voice, script, cache=None):
    results = render_segments(plan_segments(parse_script(script)), synth=Synthesizer(loaded), voices={None: voice},
                              cache=cache, options=OPTIONS)
    assert all(r.state == DONE for r in results)
    return results


def test_a_cloned_voice_reports_its_directives_as_not_applied(loaded_models, reference_clip, tmp_path):
    loaded = loaded_models("base")
    voice = VoiceSpec.clone(reference_clip, "This is me speaking.")
    cache = RenderCache(tmp_path / "cache")
    for attempt in ("rendered", "cached"):
        [slow, plain] = _render(loaded, voice, "[tone: warm][language: English]Hello there.\n[neutral]Fine.", cache)
        assert slow.cached is (attempt == "cached")
        assert not slow.directives_applied
        assert "not applied by this voice's model (it takes no instruct): tone: warm" in slow.warning
        # [language: ...] is the engine's own directive and always applied; a later line keeps [tone: warm].
        assert "language" not in slow.warning.split("tone: warm")[1]
        assert not plain.directives_applied

    exported = export_results([slow, plain], sample_rate=loaded.info.sample_rate, folder=tmp_path / "out",
                              name="s", models={loaded.info.source: loaded.info})
    manifest = json.loads(exported.manifest.read_text())
    assert [s["directives_applied"] for s in manifest["segments"]] == [False, False]
    assert "tone: warm" in manifest["segments"][0]["warning"]


def test_an_instruct_model_applies_directives(loaded_models):
    [result] = _render(loaded_models("voice_design"), VoiceSpec.design("A calm voice"), "[tone: warm]Hello.")
    assert result.directives_applied and "not applied" not in (result.warning or "")


def test_a_language_tag_alone_is_not_a_delivery_directive(loaded_models, reference_clip):
    [result] = _render(loaded_models("base"), VoiceSpec.clone(reference_clip, "This is me speaking."),
                       "[language: English]Hello.")
    assert result.directives_applied and "not applied" not in (result.warning or "")


def test_the_small_custom_voice_model_ignores_directives(loaded_models):
    loaded = loaded_models("custom_voice")
    # The same weights labelled as the 0.6B model: the studio's capability table is what decides.
    small = LoadedModel(loaded.tts, dataclasses.replace(loaded.info, size="0b6"))
    [result] = _render(small, VoiceSpec.preset("ryan"), "[tone: warm]Hello.")
    assert not result.directives_applied and "tone: warm" in result.warning
    [full] = _render(loaded, VoiceSpec.preset("ryan"), "[tone: warm]Hello.")
    assert full.directives_applied
