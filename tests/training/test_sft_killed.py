"""Fine-tuning killed with SIGKILL at random moments: every checkpoint on disk is whole, resume works (#15).

Checkpoints are written every step here, so the kills land in the middle of saves as often as between
them. After every kill each `step-*` folder must pass the checkpoint check (a torn one must never look
like a checkpoint), and the final run resumes from the newest and finishes with the same weights as a
run that was never interrupted.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training.conftest import REPO_ROOT, run_command
from tests.training.test_sft import _weights, prepared_run, write_config  # noqa: F401 - fixture
from training.checkpoint_state import read_manifest
from training.protocol import parse_line

KILLS = 6


def _kill_after_random_step(config: Path, rng: random.Random) -> int:
    """Start sft, let it run to a random step plus a random fraction of a step, SIGKILL it; the last step seen."""
    proc = subprocess.Popen([sys.executable, "-m", "training.sft", "--config", str(config)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    target = rng.randint(1, 30)
    last = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        event = parse_line(line)
        if event and event["event"] == "step":
            last = event["step"]
            if last >= target:
                # A step and its checkpoint take about 20 ms each on the tiny model: the kill lands inside
                # the save about half of the time.
                time.sleep(rng.uniform(0.0, 0.03))
                break
        if event and event["event"] == "done":
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return last


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_torn_checkpoint(prepared_run, tmp_path, tiny_checkpoints):  # noqa: F811
    rng = random.Random(1204)
    killed_dir, straight_dir = tmp_path / "killed", tmp_path / "straight"
    shutil.copytree(prepared_run, killed_dir)
    shutil.copytree(prepared_run, straight_dir)
    settings = dict(epochs=20, max_steps=40, checkpoint_every=1, keep_checkpoints=2, sample_every_epoch=False)
    config = write_config(killed_dir, tiny_checkpoints["base"], **settings)
    for _ in range(KILLS):
        _kill_after_random_step(config, rng)
        for folder in sorted((killed_dir / "checkpoints").glob("step-*")):
            read_manifest(folder)  # raises CheckpointDamaged for a torn checkpoint
    resumed = run_command("training.sft", "--config", config)
    assert resumed.rc == 0, resumed.stderr
    assert resumed.kinds("start")[0]["resumed_from"] is not None
    assert not resumed.kinds("warning") or all("damaged" not in w["message"] for w in resumed.kinds("warning"))
    straight = run_command("training.sft", "--config", write_config(straight_dir, tiny_checkpoints["base"],
                                                                     **settings))
    assert straight.rc == 0, straight.stderr
    ours = _weights(Path(resumed.events[-1]["export"]) / "model.safetensors")
    theirs = _weights(Path(straight.events[-1]["export"]) / "model.safetensors")
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-7, msg=key)
