"""`python -m studio models ...` as a subprocess, downloading from the local fake hub."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.test_models import REPO, FakeHub, _repo_files, closed_port_endpoint

ROOT = Path(__file__).resolve().parents[2]



def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "studio", "models", *args]


@pytest.fixture
def env(tmp_path):
    environment = dict(os.environ)
    environment["QWEN_TTS_STUDIO_MODELS"] = str(tmp_path / "models")
    environment.pop("HF_HUB_OFFLINE", None)
    environment.pop("HF_ENDPOINT", None)
    return environment


def models_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(_command(*args), capture_output=True, cwd=ROOT, env=env, timeout=120)
    # Decoded by hand: text=True would turn the progress line's carriage returns into newlines.
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


@pytest.fixture
def hub(tiny_checkpoints):
    with FakeHub({REPO: _repo_files(tiny_checkpoints["custom_voice"])}) as server:
        yield server


def test_list_known_models(env):
    result = models_cli(env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "STATE", "ON", "DISK", "DOWNLOAD", "VRAM", "bf16", "EMOTIONS"]
    row = next(line for line in lines if line.startswith("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign"))
    assert "not downloaded" in row and "~4.5 GB" in row and row.rstrip().endswith("yes")
    assert next(line for line in lines if line.startswith("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice")).endswith("no")
    assert lines[-1].startswith(f"models folder: {env['QWEN_TTS_STUDIO_MODELS']}")

    listed = json.loads(models_cli("list", "--json", env=env).stdout)
    assert len(listed["models"]) == 6 and {m["state"] for m in listed["models"]} == {"not downloaded"}


def test_download_prints_progress_then_lists_ready(env, hub, tiny_checkpoints):
    from studio.engine.models import format_bytes

    # The repo is the tiny checkpoint plus a README: its size follows the fixture.
    size = format_bytes(sum(len(data) for data in _repo_files(tiny_checkpoints["custom_voice"]).values()))
    env["HF_ENDPOINT"] = hub.endpoint
    hub.throttle = 5_000_000  # about a second, so the line is rewritten a few times
    result = models_cli("download", REPO, env=env)
    assert result.returncode == 0, result.stderr
    folder = Path(env["QWEN_TTS_STUDIO_MODELS"]) / "Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice"
    assert result.stdout.strip() == f"{REPO}: ready in {folder}"
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")  # one line, rewritten in place
    updates = [u.strip() for u in result.stderr.split("\r") if u.strip()]
    assert updates[0] == f"{REPO}: fetching the file list"
    assert updates[-1] == f"{REPO}: {size} of {size} (100%), done"
    progress = rf"MB of {re.escape(size)} \(\d+%\), [\d.]+ [kM]B/s, \d+s left \["
    moving = [u for u in updates[1:-1] if re.search(progress, u)]
    assert moving, updates

    listing = models_cli(env=env)
    row = next(line for line in listing.stdout.splitlines() if line.startswith(REPO))
    assert row.split()[1] == "ready"


def test_download_failures_are_one_line(env, hub):
    bad = models_cli("download", "not-a-repo", env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a hub repo id" in bad.stderr

    env["HF_ENDPOINT"] = closed_port_endpoint()
    offline = models_cli("download", REPO, env=env)
    assert offline.returncode == 2 and offline.stderr.count("\n") == 1
    assert "cannot reach" in offline.stderr and "models add-local FOLDER" in offline.stderr

    missing = models_cli("download", "nobody/nothing", "--endpoint", hub.endpoint, env=env)
    assert missing.returncode == 2 and "no such model" in missing.stderr.splitlines()[-1]

    hub.repos["someone/not-a-model"] = {"config.json": b'{"model_type": "bert"}'}
    unusable = models_cli("download", "someone/not-a-model", "--endpoint", hub.endpoint, env=env)
    assert unusable.returncode == 2 and "but it is not usable: not a Qwen3-TTS checkpoint" in unusable.stderr

    usage = models_cli("download", env=env)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "REPO_ID" in usage.stderr


def test_ctrl_c_cancels_and_the_next_run_resumes(env, hub):
    env["HF_ENDPOINT"] = hub.endpoint
    hub.throttle = 1_000_000  # bytes per second: the whole model would take about 5 s
    proc = subprocess.Popen(_command("download", REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    staging = Path(env["QWEN_TTS_STUDIO_MODELS"]) / ".Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice.download"
    big = staging / "model.safetensors.part"  # about 2.6 s of the throttled transfer
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (big.is_file() and big.stat().st_size > 0):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "download cancelled" in stderr and "download it again to resume" in stderr
    assert 0 < big.stat().st_size < len(hub.repos[REPO]["model.safetensors"]), "the partial file was not kept"
    kept = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file() and p.name != ".studio-model.json")

    hub.throttle = None
    hub.reset_counts()
    result = models_cli("download", REPO, env=env)
    assert result.returncode == 0, result.stderr
    total = sum(len(d) for d in hub.repos[REPO].values())
    assert hub.bytes_served == total - kept


def test_add_local_and_delete(env, hub, tiny_checkpoints, tmp_path):
    not_a_checkpoint = tmp_path / "empty"
    not_a_checkpoint.mkdir()
    result = models_cli("add-local", str(not_a_checkpoint), env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no config.json" in result.stderr

    folder = tiny_checkpoints["voice_design"]
    result = models_cli("add-local", str(folder), env=env)
    assert result.returncode == 0, result.stderr
    assert "voice_design" in result.stdout and "honours emotions" in result.stdout
    listed = models_cli(env=env).stdout.splitlines()
    assert any(line.startswith(f"{folder} (local)") and " ready " in line for line in listed)
    result = models_cli("delete", str(folder), env=env)
    assert result.returncode == 0 and "left alone" in result.stdout and folder.is_dir()

    assert models_cli("download", REPO, "--endpoint", hub.endpoint, env=env).returncode == 0
    result = models_cli("delete", REPO, env=env)
    assert result.returncode == 0 and "deleted" in result.stdout
    again = models_cli("delete", REPO, env=env)
    assert again.returncode == 2 and "nothing to delete" in again.stderr
