"""`python -m studio render` on each tiny checkpoint type, as a subprocess, through the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from studio.core.project import CastEntry, Project, RenderSettings, save_project
from studio.core.voice import VoiceSpec

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "[Whispering]Come closer. [pause 0.5s] Closer.\n[Angry]Get out!\n"


def render(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", "render", *args, "--threads", "2", "--max-new-tokens", "12"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )


@pytest.fixture
def clip(tmp_path):
    t = np.arange(36000) / 24000
    path = tmp_path / "ref.wav"
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["voice_design", "custom_voice", "base"])
def test_render_each_model_type(tiny_checkpoints, tmp_path, clip, kind):
    script = tmp_path / "scene.txt"
    script.write_text(SCRIPT)
    voice = {
        "voice_design": ["--voice-design", "A calm, low narrator"],
        "custom_voice": ["--speaker", "serena"],
        "base": ["--voice-clone", str(clip), "--ref-text", "A reference clip."],
    }[kind]
    out = tmp_path / "out"
    result = render(str(script), "--model", str(tiny_checkpoints[kind]), "--out", str(out),
                    "--cache", str(tmp_path / "cache"), *voice)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    # Counted as segments finish; the pause (no generation) finishes first in a batched render.
    assert [line.split("]")[0] for line in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert "[1/4] line 1: pause 0.5 s" in progress
    manifest_path = next(out.glob("scene_*.json"))
    manifest = json.loads(manifest_path.read_text())
    audio, rate = soundfile.read(manifest["wav"], dtype="float32")
    assert rate == 24000 and len(audio) / rate == pytest.approx(manifest["duration"], abs=1 / rate)
    segments = manifest["segments"]
    assert [s["kind"] for s in segments] == ["speech", "pause", "speech", "speech"]
    assert segments[0]["start"] == 0 and segments[-1]["end"] == manifest["duration"]
    for before, after in zip(segments, segments[1:], strict=False):
        assert before["end"] == after["start"]
    assert segments[1]["end"] - segments[1]["start"] == pytest.approx(0.5, abs=1e-9)
    assert not audio[round(segments[1]["start"] * rate):round(segments[1]["end"] * rate)].any()
    assert [s["emotion"] for s in segments if s["kind"] == "speech"] == ["Whispering", "Whispering", "Angry"]
    srt = Path(manifest["srt"]).read_text()
    assert srt.count("-->") == 3
    applied = [s["emotion_applied"] for s in segments if s["kind"] == "speech"]
    assert applied == ([False] * 3 if kind == "base" else [True] * 3)


@pytest.mark.slow
def test_second_render_is_all_cached_and_same_seed_same_audio(tiny_checkpoints, tmp_path):
    script = tmp_path / "scene.txt"
    script.write_text(SCRIPT)
    args = [str(script), "--model", str(tiny_checkpoints["voice_design"]), "--out", str(tmp_path / "out"),
            "--voice-design", "A narrator", "--seed", "9"]
    first = render(*args, "--cache", str(tmp_path / "c1"))
    second = render(*args, "--cache", str(tmp_path / "c1"))
    fresh = render(*args, "--cache", str(tmp_path / "c2"))
    assert first.returncode == second.returncode == fresh.returncode == 0, first.stderr + second.stderr
    assert "cached" not in first.stdout
    assert sum("cached" in line for line in second.stdout.splitlines()) == 3
    wavs = sorted((tmp_path / "out").glob("scene_*.wav"))
    assert len(wavs) == 3  # three renders, three files: nothing overwritten
    audio = [soundfile.read(w, dtype="int16")[0] for w in wavs]
    np.testing.assert_array_equal(audio[0], audio[1])
    np.testing.assert_array_equal(audio[0], audio[2])


@pytest.mark.slow
def test_project_with_embedded_cast_voices(tiny_checkpoints, tmp_path):
    project = tmp_path / "play.qtts"
    save_project(
        Project(
            script="Narration.\n[voice: Wolf][Angry]Grr.",
            cast={"Narrator": CastEntry(voice=VoiceSpec.design("Old storyteller")),
                  "Wolf": CastEntry(voice=VoiceSpec.design("A big bad wolf"))},
            render=RenderSettings(model=str(tiny_checkpoints["voice_design"]), voice="Narrator", seed=1),
        ),
        project,
    )
    result = render(str(project), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c"))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(next((tmp_path / "out").glob("play_*.json")).read_text())
    assert [s["voice"] for s in manifest["segments"]] == ["Narrator", "Wolf"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--voice-design", "x"], "needs a VoiceDesign model, and none is installed"),
        (["--model", "/nonexistent/model", "--voice-design", "x"], "/nonexistent/model: no such model folder"),
        (["--model", "{voice_design}"], "no voice"),
        (["--model", "{base}", "--voice-design", "x"], "needs a VoiceDesign model, but"),
        (["--model", "{voice_design}", "--voice-clone", "/missing.wav", "--ref-text", "t"], "no such reference clip"),
        (["--model", "{voice_design}", "--voice-design", "x", "--language", "klingon"], "language 'klingon'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_checkpoints, tmp_path, args, message):
    script = tmp_path / "s.txt"
    script.write_text("Hello.")
    args = [a.format(**{k: str(v) for k, v in tiny_checkpoints.items()}) for a in args]
    result = render(str(script), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_script_error_is_reported_with_line_and_column(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("ok\n[pause 12s]")
    result = render(str(script), "--out", str(tmp_path / "o"), "--model", "x", "--voice-design", "v")
    assert result.returncode == 2
    assert result.stderr.strip() == f"{script}: line 2, column 1: pause length '12s' is longer than 10 seconds"


def test_an_unsupported_language_tag_names_its_line(tiny_checkpoints, tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("Hello.\nStill fine.\n[language: Klingon]Qapla'.\n")
    result = render(str(script), "--out", str(tmp_path / "out"), "--model", str(tiny_checkpoints["voice_design"]),
                    "--voice-design", "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"{script}: line 3: language 'klingon' is not supported")
    assert not (tmp_path / "out").exists()


def test_a_render_with_a_failed_segment_exits_1_exports_nothing_and_retries_only_it(
    tiny_checkpoints, tmp_path, monkeypatch, capsys
):
    from studio import cli
    from studio.engine.synth import Synthesizer

    real_stream = Synthesizer.stream
    failing = {"Boom."}
    # One segment at a time (--batch 1), so the failure is injected into the streaming path.

    def stream_failing(self, request, **kwargs):
        # Failure injection around the real engine: the line "Boom." dies after its first chunk.
        for chunk in real_stream(self, request, **kwargs):
            yield chunk
            if request.text in failing:
                raise RuntimeError("the device went away")

    monkeypatch.setattr(Synthesizer, "stream", stream_failing)
    script = tmp_path / "s.txt"
    script.write_text("One.\nBoom.\nThree.\n")
    args = ["render", str(script), "--model", str(tiny_checkpoints["voice_design"]), "--voice-design", "x",
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--threads", "2",
            "--max-new-tokens", "12", "--batch", "1"]
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert "line 2: FAILED: RuntimeError: the device went away" in out
    assert err.strip().splitlines()[-1].startswith("1 of 3 segments failed; nothing was exported")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    failing.clear()  # the device is back: the rerun renders only the failed line
    assert cli.main(args) == 0
    out, _ = capsys.readouterr()
    assert out.count("cached") == 2 and "line 2: " in out and "rendered in" in out
    assert len(list((tmp_path / "out").glob("s_*.wav"))) == 1
    # A random-weight model never says "end of speech", so every segment runs into its 12-frame cap:
    # the runaway warning reaches the summary lines and the manifest, for cached segments too.
    assert out.count("(warning: generation stopped at the frame cap without an end of speech") == 3
    manifest = json.loads(next((tmp_path / "out").glob("s_*.json")).read_text())
    assert [s["warning"].startswith("generation stopped at the frame cap") for s in manifest["segments"]] == [True] * 3


def test_a_paced_cloned_voice_is_stretched_and_says_so(tiny_checkpoints, tmp_path, clip):
    script = tmp_path / "slow.txt"
    script.write_text("[pace: 0.8x]Take your time.\n[pace: normal]Now.\n")
    out = tmp_path / "out"
    result = render(str(script), "--model", str(tiny_checkpoints["base"]), "--out", str(out),
                    "--voice-clone", str(clip), "--ref-text", "A reference clip.")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert "(pace 0.8x by time stretch)" in progress[0] and "pace" not in progress[1]
    manifest = json.loads(next(out.glob("slow_*.json")).read_text())
    first, second = manifest["segments"]
    assert first["pace"] == {"value": "0.8x", "rate": 0.8, "method": "time-stretch"} and "pace" not in second
    # Both lines run into the same frame cap, so the stretched one lasts 1 / 0.8 as long.
    assert (first["end"] - first["start"]) == pytest.approx((second["end"] - second["start"]) / 0.8, abs=1e-3)


def test_ray_without_ray_installed_is_one_line_naming_the_extra(tiny_checkpoints, tmp_path, monkeypatch, capsys):
    from studio import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the [cluster] extra has
    script = tmp_path / "s.txt"
    script.write_text("Hello.\n")
    code = cli.main(["render", str(script), "--model", str(tiny_checkpoints["voice_design"]), "--voice-design", "x",
                     "--out", str(tmp_path / "out"), "--ray", "auto"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--ray: Ray is not installed: pip install 'qwen-tts-studio[cluster]'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_render_on_a_ray_started_here_writes_the_same_audio_as_a_local_batched_render(tiny_checkpoints, tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("One.\nTwo is longer.\n[pause 0.2s]\nThree.\n")
    common = ["--model", str(tiny_checkpoints["voice_design"]), "--voice-design", "A calm voice", "--seed", "5"]
    local = render(str(script), *common, "--out", str(tmp_path / "local"), "--cache", str(tmp_path / "c1"))
    assert local.returncode == 0, local.stderr
    # render() passes --threads 2: two-thread workers, as the local render ran.
    on_ray = render(str(script), *common, "--out", str(tmp_path / "ray"), "--cache", str(tmp_path / "c2"),
                    "--ray", "auto")
    assert on_ray.returncode == 0, on_ray.stderr
    assert "starting 1 cluster worker(s)" in on_ray.stderr
    assert "model: voice_design" in on_ray.stderr and "decoder: fast" in on_ray.stderr  # as the workers loaded it
    here, _ = soundfile.read(next((tmp_path / "local").glob("s_*.wav")), dtype="int16")
    there, _ = soundfile.read(next((tmp_path / "ray").glob("s_*.wav")), dtype="int16")
    np.testing.assert_array_equal(there, here)
