"""The fast decoder against the reference at the published sizes (random weights, float32, greedy).

The tiny checkpoints cannot show everything that depends on the real dimensions: at 1.7B the talker
(2048 wide) feeds the code predictor (1024 wide) through a projection, at 0.6B both are 1024 wide and the
projection is the identity while the text embedding (2048) is projected down; 28 talker layers and a
3072-entry codec vocabulary decide how close two logits come. Each case builds its checkpoint (2.5 to
4.5 GB), compares a few frames of every voice kind the model type serves, and deletes it again.
Slow (about a minute and a half per case on two cores); part of the README's test command and CI.
"""

from __future__ import annotations

import gc
import shutil

import numpy as np
import pytest
import soundfile

from studio.core.project import GenerationParams
from studio.core.voice import VoiceSpec
from studio.engine.synth import Synthesizer, SynthRequest
from tests.engine.test_fast_decode import assert_same_codes_or_a_tie, compare_greedy

FRAMES = 5


def voices_for(model_type: str, clip) -> dict[str, VoiceSpec]:
    if model_type == "voice_design":
        return {"designed": VoiceSpec.design("A calm, low narrator")}
    if model_type == "custom_voice":
        return {"preset": VoiceSpec.preset("ryan")}
    return {"cloned (ICL)": VoiceSpec.clone(clip, "A short reference line."),
            "cloned (x-vector only)": VoiceSpec.clone(clip, None, x_vector_only=True)}


@pytest.mark.slow
@pytest.mark.parametrize("size,model_type", [("0.6b", "custom_voice"), ("0.6b", "base"), ("full", "voice_design"),
                                             ("full", "custom_voice"), ("full", "base")])
def test_greedy_fast_codes_equal_the_reference_at_the_published_sizes(tmp_path, size, model_type):
    from studio.engine.loader import load_model
    from studio.engine.tiny import build_tiny_checkpoint

    folder = tmp_path / f"{model_type}-{size}"
    clip = tmp_path / "ref.wav"
    t = np.arange(36000) / 24000
    soundfile.write(clip, (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 24000)
    try:
        build_tiny_checkpoint(folder, model_type=model_type, seed=3, size=size)
        synth = Synthesizer(load_model(str(folder), device="cpu"))
        for name, voice in voices_for(model_type, clip).items():
            request = SynthRequest("Every frame the same, at full size.", voice, language="english",
                                   generation=GenerationParams(temperature=0.0, max_new_tokens=FRAMES + 1))
            reference, fast, margins = compare_greedy(synth, request)
            assert reference, name
            assert_same_codes_or_a_tie(reference, fast, margins)
            print(f"{size} {model_type} {name}: {len(reference)} frames, closest choice {min(margins):.3g}")
    finally:
        synth = None
        gc.collect()
        shutil.rmtree(folder, ignore_errors=True)
