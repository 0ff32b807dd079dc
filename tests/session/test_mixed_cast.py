"""A cast of three voices, each on its own checkpoint, through the real qwen-tts path on tiny models.

The pipeline is driven in-process (with a loader that records every load) for the residency rules, and
the command line as a subprocess for the whole user path: models registered, voices added, a plain
script with [voice: X] tags rendered with --cast, and the manifest naming each segment's model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from studio.core.plan import plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.render import DONE
from studio.session.pipeline import JobEvents, RenderJob, run_job
from studio.session.residency import ModelResidency

REPO = Path(__file__).resolve().parents[2]
SHORT = GenerationParams(max_new_tokens=8)
# Interleaved on purpose: rendered in script order with one model resident, this would load six times.
SCRIPT = ("[voice: Narrator]It began.\n[voice: Guest]I was there.\n[voice: Host]Welcome back.\n"
          "[voice: Narrator][pause 0.2s]Then it ended.\n[voice: Guest]I left.\n[voice: Host]Goodbye.\n")


@pytest.fixture
def clip(tmp_path):
    t = np.arange(36000) / 24000
    path = tmp_path / "guest.wav"
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000)
    return path


@pytest.fixture
def cast(tiny_checkpoints, clip):
    voices = {
        "Narrator": VoiceSpec("design", description="A calm, low narrator",
                              model=str(tiny_checkpoints["voice_design"])),
        "Guest": VoiceSpec("clone", ref_audio=str(clip), ref_text="This is me speaking.",
                           model=str(tiny_checkpoints["base"])),
        "Host": VoiceSpec("preset", speaker="ryan", model=str(tiny_checkpoints["custom_voice"])),
    }
    return voices, {name: voice.model for name, voice in voices.items()}


def _job(cast, job_id=1):
    voices, models = cast
    return RenderJob(job_id=job_id, segments=plan_segments(parse_script(SCRIPT)), voices=voices, models=models,
                     cache_dir=None, generation=SHORT)


def _recording_loader(loaded_models, tiny_checkpoints, loads):
    def load(source, **_options):
        loads.append(Path(source).name)
        return loaded_models(Path(source).name)

    return load


def test_a_budget_of_one_model_loads_each_model_once_and_keeps_script_order(loaded_models, tiny_checkpoints, cast):
    loads: list[str] = []
    started: list[int] = []
    residency = ModelResidency(budget_bytes=1, loader=_recording_loader(loaded_models, tiny_checkpoints, loads))
    outcome = run_job(_job(cast), residency, JobEvents(segment_started=started.append))
    assert outcome.error is None and [r.state for r in outcome.results] == [DONE] * 7
    # Exactly as many loads as distinct models: the segments were grouped by model.
    assert loads == ["voice_design", "base", "custom_voice"]
    assert [Path(s).name for s in residency.evictions] == ["voice_design", "base"]
    assert residency.resident == [str(tiny_checkpoints["custom_voice"])]
    # Grouped: the Narrator's segments first, then the Guest's, then the Host's; the pause (3) goes with the
    # speech before it (the Host's), so it never costs a load of its own.
    assert started == [0, 4, 1, 5, 2, 3, 6]
    # ... but the results, and so the mix, come back in script order, each naming its model.
    assert [r.segment.index for r in outcome.results] == list(range(7))
    names = [Path(r.model).name if r.model else None for r in outcome.results]
    assert names == ["voice_design", "base", "custom_voice", None, "voice_design", "base", "custom_voice"]
    assert set(outcome.models) == {str(tiny_checkpoints[k]) for k in ("voice_design", "base", "custom_voice")}

    # The same job with room for every model renders in script order; the audio is the same sample for
    # sample (seeds come from the content, not the order), so grouping never changes the mix.
    roomy_loads: list[str] = []
    roomy = ModelResidency(budget_bytes=10**12, loader=_recording_loader(loaded_models, tiny_checkpoints,
                                                                          roomy_loads))
    in_order: list[int] = []
    again = run_job(_job(cast, 2), roomy, JobEvents(segment_started=in_order.append))
    assert in_order == list(range(7)) and roomy_loads == ["voice_design", "base", "custom_voice"]
    for grouped, ordered in zip(outcome.results, again.results, strict=True):
        np.testing.assert_array_equal(grouped.samples, ordered.samples)
    # Everything stayed resident: the next job loads nothing.
    run_job(_job(cast, 3), roomy)
    assert roomy_loads == ["voice_design", "base", "custom_voice"] and not roomy.evictions


def test_each_swap_is_reported_by_name(loaded_models, tiny_checkpoints, cast):
    messages: list[str] = []
    residency = ModelResidency(budget_bytes=1, loader=_recording_loader(loaded_models, tiny_checkpoints, []))
    run_job(_job(cast), residency, JobEvents(model_loading=messages.append))
    assert messages == ["loading VoiceDesign 1.7B (model 1 of 3)", "loading Base 1.7B (model 2 of 3)",
                        "loading CustomVoice 1.7B (model 3 of 3)"]


def _cli(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


@pytest.fixture
def user_env(tmp_path):
    """A private user: its own models registry, voice library and caches."""
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.mark.slow
def test_the_command_line_renders_a_three_voice_cast_with_voices_it_added(tiny_checkpoints, clip, tmp_path,
                                                                          user_env):
    for kind in ("voice_design", "base", "custom_voice"):
        assert _cli(user_env, "models", "add-local", str(tiny_checkpoints[kind])).returncode == 0
    # No --model: each voice gets the installed checkpoint of its type.
    added = [
        _cli(user_env, "voices", "add", "Narrator", "--design", "A calm, low narrator"),
        _cli(user_env, "voices", "add", "Guest", "--clone", str(clip), "--ref-text", "This is me speaking."),
        _cli(user_env, "voices", "add", "Host", "--speaker", "ryan", "--model", str(tiny_checkpoints["custom_voice"])),
    ]
    assert [r.returncode for r in added] == [0, 0, 0], [r.stderr for r in added]
    listing = json.loads(_cli(user_env, "voices", "list", "--json").stdout)
    assert {v["name"]: v["model"] for v in listing} == {
        "Narrator": None, "Guest": None, "Host": str(tiny_checkpoints["custom_voice"])}

    script = tmp_path / "show.txt"
    script.write_text(SCRIPT)
    result = _cli(user_env, "render", str(script), "--cast", "Narrator=Narrator", "--cast", "Guest=Guest",
                  "--cast", "Host=Host", "--out", str(tmp_path / "out"), "--memory-budget", "0.000001",
                  "--threads", "2", "--max-new-tokens", "8")
    assert result.returncode == 0, result.stderr
    # One model at a time, and still one load per model.
    # (The loader's own steps follow each swap, prefixed with it: "loading Base 1.7B (model 2 of 3): ...".)
    loading = [line for line in result.stderr.splitlines() if line.startswith("loading ") and line.endswith(" of 3)")]
    assert loading == ["loading VoiceDesign 1.7B (model 1 of 3)", "loading Base 1.7B (model 2 of 3)",
                       "loading CustomVoice 1.7B (model 3 of 3)"]
    manifest = json.loads(next((tmp_path / "out").glob("show_*.json")).read_text())
    by_voice = {(s["voice"], s["model"]) for s in manifest["segments"] if s["kind"] == "speech"}
    assert by_voice == {("Narrator", str(tiny_checkpoints["voice_design"])), ("Guest", str(tiny_checkpoints["base"])),
                        ("Host", str(tiny_checkpoints["custom_voice"]))}
    assert sorted(m["type"] for m in manifest["models"]) == ["base", "custom_voice", "voice_design"]
    assert "model" not in manifest  # three models: no single "model" to name
    assert [s["line"] for s in manifest["segments"]] == [1, 2, 3, 4, 4, 5, 6]  # script order


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "X", "--clone", "/missing.wav", "--ref-text", "t"], "/missing.wav: no such reference clip (--clone)"),
        (["add", "X", "--design", "d", "--model", "{base}"], "a Base model, but a designed voice needs a VoiceDesign"),
        (["add", "X", "--speaker", "nobody", "--model", "{custom_voice}"], "has no speaker 'nobody'"),
        (["add", "X", "--design", "d", "--model", "/no/such/model"], "/no/such/model: no such model on this machine"),
        (["remove", "Ghost"], "no voice profile 'Ghost'"),
        (["export", "Ghost", "x.qvoice"], "no voice profile 'Ghost'"),
    ],
)
def test_voices_command_bad_input_is_one_line_and_exit_2(tiny_checkpoints, user_env, args, message):
    args = [a.format(**{k: str(v) for k, v in tiny_checkpoints.items()}) for a in args]
    result = _cli(user_env, "voices", *args, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(_cli(user_env, "voices", "list", "--json").stdout) == []


def test_voices_round_trip_through_a_file(user_env, tmp_path):
    assert _cli(user_env, "voices", "add", "Teller", "--design", "An old storyteller", "--seed", "7").returncode == 0
    target = tmp_path / "teller.qvoice"
    assert _cli(user_env, "voices", "export", "Teller", str(target)).returncode == 0
    again = _cli(user_env, "voices", "export", "Teller", str(target))
    assert again.returncode == 2 and "exists" in again.stderr  # never replaced
    assert _cli(user_env, "voices", "remove", "Teller").returncode == 0
    assert json.loads(_cli(user_env, "voices", "list", "--json").stdout) == []
    assert _cli(user_env, "voices", "import", str(target)).returncode == 0
    [teller] = json.loads(_cli(user_env, "voices", "list", "--json").stdout)
    assert (teller["name"], teller["seed"], teller["describe"]) == ("Teller", 7, "designed: An old storyteller")


def test_preflight_lists_every_problem_before_any_work(tiny_checkpoints, user_env, tmp_path, clip):
    assert _cli(user_env, "models", "add-local", str(tiny_checkpoints["voice_design"])).returncode == 0
    assert _cli(user_env, "voices", "add", "Guest", "--clone", str(clip), "--ref-text", "t").returncode == 0
    script = tmp_path / "s.txt"
    script.write_text("[voice: Narrator]Hello.\n[voice: Guest]Hi.\n[voice: Ghost]Boo.\n"
                      "[voice: Narrator][language: Klingon]Qapla'.\n")
    out = tmp_path / "out"
    result = _cli(user_env, "render", str(script), "--cast", "Narrator=" + "x", "--out", str(out))
    assert result.returncode == 2 and "no voice profile 'x'" in result.stderr  # --cast names an unknown voice

    result = _cli(user_env, "render", str(script), "--voice-design", "unused", "--cast", "Guest=Guest",
                  "--out", str(out), "--threads", "2", "--max-new-tokens", "8")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    # Narrator and Ghost have no voice; the Guest (cloned) has no Base model installed; all said at once.
    # Each problem names every line it stops (the Narrator speaks on lines 1 and 4).
    assert [line.split(": ", 2)[1] for line in lines] == ["lines 1, 4", "line 2", "line 3"], lines
    assert "voice 'Narrator' is not in the project's cast" in lines[0] and "voice 'Ghost' is not" in lines[2]
    assert "needs a Base model, and none is installed" in lines[1] and "models add-local" in lines[1]
    assert not out.exists()
