"""Voice identities through the real engine: emotion clips, cached clone prompts, mixed casts, profiles."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from studio.core.plan import plan_segments
from studio.core.project import CastEntry, GenerationParams, Project, RenderSettings, save_project
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.core.voice_library import VoiceLibrary
from studio.engine.render import DONE, RenderOptions, render_segments
from studio.engine.synth import Synthesizer, SynthReport, SynthRequest
from studio.session.pipeline import RenderJob, run_job
from studio.session.residency import ModelResidency

REPO = Path(__file__).resolve().parents[2]
SHORT = GenerationParams(max_new_tokens=10)


def tone(path: Path, freq: float, seconds: float = 1.5) -> Path:
    t = np.arange(int(24000 * seconds)) / 24000
    wave = 0.2 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))
    soundfile.write(path, wave.astype(np.float32), 24000)
    return path


@pytest.fixture
def clips(tmp_path):
    return {
        "identity": tone(tmp_path / "identity.wav", 130),
        "whisper": tone(tmp_path / "whisper.wav", 420, 1.2),
    }


@pytest.fixture
def cloned(clips):
    return VoiceSpec("clone", ref_audio=str(clips["identity"]), ref_text="This is me speaking.",
                     emotion_refs=(("Whispering", str(clips["whisper"]), "This is me whispering."),))


def spy_generate(monkeypatch, loaded):
    """Record the voice_clone_prompt that qwen-tts actually hands to the model's generate()."""
    seen = []
    real = loaded.tts.model.generate

    def generate(*args, **kwargs):
        seen.append(kwargs.get("voice_clone_prompt"))
        return real(*args, **kwargs)

    monkeypatch.setattr(loaded.tts.model, "generate", generate)
    return seen


def test_emotion_clip_keeps_the_identity_embedding_and_takes_the_clip_codes(loaded_models, cloned, monkeypatch):
    loaded = loaded_models("base")
    synth = Synthesizer(loaded)
    seen = spy_generate(monkeypatch, loaded)
    identity = synth.prompts.get(cloned.ref_audio, cloned.ref_text, x_vector_only=False)
    whisper = synth.prompts.get(cloned.emotion_refs[0][1], cloned.emotion_refs[0][2], x_vector_only=False)
    assert not torch.equal(identity.ref_spk_embedding, whisper.ref_spk_embedding)

    report = SynthReport()
    list(synth.stream(SynthRequest("Come closer.", cloned, emotion="whispering", generation=SHORT), report=report))
    prompt = seen[-1]
    assert torch.equal(prompt["ref_spk_embedding"][0], identity.ref_spk_embedding)  # who speaks
    assert torch.equal(prompt["ref_code"][0], whisper.ref_code)  # how it is said
    assert prompt["icl_mode"] == [True]
    assert report.emotion_applied

    # An emotion with no clip: the identity prompt, and the emotion is reported as not applied.
    report = SynthReport()
    list(synth.stream(SynthRequest("Get out!", cloned, emotion="Angry", generation=SHORT), report=report))
    assert torch.equal(seen[-1]["ref_code"][0], identity.ref_code)
    assert not report.emotion_applied


def test_clone_prompts_are_cached_on_disk_and_reused(loaded_models, cloned, tmp_path):
    loaded = loaded_models("base")
    folder = tmp_path / "prompts"
    first = Synthesizer(loaded, prompt_cache_dir=folder)
    started = time.perf_counter()
    first.clone_prompt(cloned, "Whispering")
    cold = time.perf_counter() - started
    assert first.prompts.computed == 2 and len(list(folder.glob("*.safetensors"))) == 2

    second = Synthesizer(loaded, prompt_cache_dir=folder)  # a later session
    started = time.perf_counter()
    items, applied = second.clone_prompt(cloned, "Whispering")
    warm = time.perf_counter() - started
    assert second.prompts.computed == 0 and applied
    fresh, _ = first.clone_prompt(cloned, "Whispering")
    assert torch.equal(items[0].ref_code, fresh[0].ref_code)
    assert torch.allclose(items[0].ref_spk_embedding, fresh[0].ref_spk_embedding)
    print(f"clone prompt: computed {cold * 1000:.1f} ms, from disk {warm * 1000:.1f} ms")


def test_a_mixed_cast_renders_each_voice_with_its_own_model(loaded_models, tiny_checkpoints, cloned):
    voices = {
        None: VoiceSpec.design("An old storyteller"),
        "Narrator": VoiceSpec.design("An old storyteller"),
        "Guest": cloned,
        "Ryan": VoiceSpec("preset", speaker="ryan", model=str(tiny_checkpoints["custom_voice"])),
    }
    script = "Once.\n[voice: Guest][Whispering]Hello.\n[voice: Ryan][Happy]Hi!\n[voice: Narrator]The end."
    segments = plan_segments(parse_script(script))
    used = []

    def load(source, **_options):
        used.append(source)
        return loaded_models(next(k for k, v in tiny_checkpoints.items() if str(v) == source))

    voices["Guest"] = VoiceSpec("clone", ref_audio=cloned.ref_audio, ref_text=cloned.ref_text,
                                emotion_refs=cloned.emotion_refs, model=str(tiny_checkpoints["base"]))
    models = {name: voice.model or str(tiny_checkpoints["voice_design"]) for name, voice in voices.items()}
    job = RenderJob(job_id=1, segments=segments, voices=voices, models=models, cache_dir=None, generation=SHORT)
    results = run_job(job, ModelResidency(budget_bytes=10**12, loader=load)).results
    assert [r.state for r in results] == [DONE] * 4
    assert [r.segment.index for r in results] == [0, 1, 2, 3]
    assert used == [str(tiny_checkpoints[k]) for k in ("voice_design", "base", "custom_voice")]
    assert [r.model for r in results] == [str(tiny_checkpoints[k])
                                          for k in ("voice_design", "base", "custom_voice", "voice_design")]
    assert [r.emotion_applied for r in results] == [True, True, True, True]


@pytest.mark.slow
def test_cli_renders_every_profile_kind_with_voice(tiny_checkpoints, clips, tmp_path):
    library = VoiceLibrary(tmp_path / "voices")
    profiles = {
        "voice_design": library.add("Cowboy", VoiceSpec.design("a tired cowboy"), seed=5),
        "custom_voice": library.add("Serena", VoiceSpec.preset("serena")),
        "base": library.add("Me", VoiceSpec.clone(clips["identity"], "This is me speaking.")),
    }
    tuned = library.add("Tuned", VoiceSpec("preset", speaker="ryan", model=str(tiny_checkpoints["custom_voice"])))
    script = tmp_path / "s.txt"
    script.write_text("[Whispering]Hello there.")
    for kind, profile in profiles.items():
        qvoice = library.export(profile.id, tmp_path / f"{kind}.qvoice")
        result = subprocess.run(
            [sys.executable, "-m", "studio", "render", str(script), "--model", str(tiny_checkpoints[kind]),
             "--voice", str(qvoice), "--out", str(tmp_path / kind), "--max-new-tokens", "10", "--threads", "2"],
            capture_output=True, text=True, cwd=REPO, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        manifest = json.loads(next((tmp_path / kind).glob("s_*.json")).read_text())
        assert manifest["segments"][0]["emotion_applied"] is (kind != "base")
    # A fine-tuned profile names its own checkpoint: no --model needed. Looked up by name in the library.
    env = {**__import__("os").environ, "QWEN_TTS_STUDIO_VOICES": str(library.folder)}
    result = subprocess.run(
        [sys.executable, "-m", "studio", "render", str(script), "--voice", "Tuned", "--model",
         str(tiny_checkpoints["voice_design"]), "--out", str(tmp_path / "tuned"), "--max-new-tokens", "10",
         "--threads", "2"],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "custom_voice" in result.stderr  # the profile's own model was loaded
    # Pinned to a checkpoint, but a published speaker: a preset (a fine-tuned speaker has its own name, as
    # in tests/core/test_voices.py).
    assert tuned.kind_label == "preset"


def test_cli_rejects_a_voice_not_in_the_cast(tiny_checkpoints, tmp_path):
    project = tmp_path / "p.qtts"
    save_project(Project(script="Hi.\n[voice: Ghost]Boo.",
                         cast={"Ann": CastEntry(voice=VoiceSpec.design("Ann"))},
                         render=RenderSettings(model=str(tiny_checkpoints["voice_design"]), voice="Ann")), project)
    result = subprocess.run([sys.executable, "-m", "studio", "render", str(project), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2
    # Found by the pre-flight check, before any model loads, with how to fix it.
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{project}: line 2: voice 'Ghost' is not in the project's cast; give it a voice with")


# --- reference clips checked before the model sees them ---------------------------------------------------


def bad_clip(path: Path, kind: str) -> Path:
    if kind == "0 samples":
        soundfile.write(path, np.zeros(0, np.float32), 24000)
    elif kind == "NaN":
        soundfile.write(path, np.full(24000, np.nan, np.float32), 24000, subtype="FLOAT")
    else:  # 10 ms
        tone(path, 200, 0.01)
    return path


BAD_CLIP_REASONS = {
    "0 samples": "the reference clip holds no audio (0 samples)",
    "NaN": "the reference clip holds non-finite samples (NaN or infinity) from 0.00 s on",
    "10 ms": "the reference clip is only 10 ms long",
}


@pytest.mark.parametrize("kind", list(BAD_CLIP_REASONS))
def test_a_bad_reference_clip_fails_its_segments_naming_the_clip(loaded_models, tmp_path, kind):
    clip = bad_clip(tmp_path / "ref.wav", kind)
    voice = VoiceSpec.clone(clip, "This is me speaking.")
    segments = plan_segments(parse_script("Hello there.\n[Whispering]Goodbye."))
    synth = Synthesizer(loaded_models("base"))
    results = render_segments(segments, synth=synth, voices={None: voice}, cache=None,
                              options=RenderOptions(generation=SHORT))
    speech = [r for r in results if r.segment.kind == "speech"]
    assert [r.state for r in speech] == ["failed", "failed"]
    for result in speech:
        assert result.error.startswith(f"{clip}: {BAD_CLIP_REASONS[kind]}"), result.error
    # The same clip through the synthesizer's own check (the command line's pre-flight) and the prompt cache.
    from studio.core.reference_clip import ReferenceClipError
    from studio.engine.loader import EngineError

    with pytest.raises(EngineError, match="^" + re.escape(f"{clip}: {BAD_CLIP_REASONS[kind]}")):
        synth.check_request(SynthRequest("Hello.", voice))
    with pytest.raises(ReferenceClipError, match="^" + re.escape(f"{clip}: {BAD_CLIP_REASONS[kind]}")):
        synth.clone_prompt(voice)
    assert synth.prompts.computed == 0


def test_a_silent_reference_clip_renders_with_a_warning_naming_it(loaded_models, tmp_path):
    from studio.core.cache import RenderCache

    silent = tmp_path / "room-tone.wav"
    soundfile.write(silent, np.zeros(36000, np.float32), 24000)
    voice = VoiceSpec.clone(silent, "This is me speaking.")
    segments = plan_segments(parse_script("Hello there."))
    synth = Synthesizer(loaded_models("base"))
    cache = RenderCache(tmp_path / "cache")
    for cached in (False, True):  # the warning comes with a cached segment too
        (result,) = render_segments(segments, synth=synth, voices={None: voice}, cache=cache,
                                    options=RenderOptions(generation=SHORT))
        assert result.state == DONE and result.cached is cached and result.n_samples > 0
        assert result.warning.startswith(f"{silent}: the reference clip is silent (digital silence"), result.warning


@pytest.mark.slow
def test_cli_voice_clone_names_a_bad_clip_and_warns_about_a_silent_one(tiny_checkpoints, tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("Hello there.")

    def render(clip: Path, out: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "studio", "render", str(script), "--model", str(tiny_checkpoints["base"]),
             "--voice-clone", str(clip), "--ref-text", "This is me speaking.", "--out", str(tmp_path / out),
             "--max-new-tokens", "10", "--threads", "2", "--cache", str(tmp_path / "cache")],
            capture_output=True, text=True, cwd=REPO, timeout=300,
        )

    nan = bad_clip(tmp_path / "nan.wav", "NaN")
    result = render(nan, "bad")
    assert result.returncode == 2, result.stderr
    # One line naming the clip (the command line may put the script line it concerns first).
    assert result.stderr.strip().splitlines()[-1].endswith(
        f"{nan}: {BAD_CLIP_REASONS['NaN']}; re-export it from the original recording")
    assert "Traceback" not in result.stderr

    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(24000, np.float32), 24000)
    result = render(silent, "quiet")
    assert result.returncode == 0, result.stderr
    assert f"(warning: {silent}: the reference clip is silent" in result.stdout
    manifest = json.loads(next((tmp_path / "quiet").glob("s_*.json")).read_text())
    assert manifest["segments"][0]["warning"].startswith(f"{silent}: the reference clip is silent")
