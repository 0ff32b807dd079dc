"""Resuming fine-tuning in the middle of an epoch continues at the right batch (issue #15).

The stop/resume test in test_sft.py happens to stop near an epoch boundary; here the stop lands inside
the first epoch (3 steps of 2 items each over 5 items), so a resume that restarted the epoch, skipped
to the next one or reshuffled would train on other batches and end with other weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.training.conftest import run_command
from tests.training.test_sft import _stream_until_stop, _weights, prepared_run, write_config  # noqa: F401


@pytest.mark.slow
def test_a_stop_inside_an_epoch_resumes_at_the_next_batch(prepared_run, tmp_path, tiny_checkpoints):  # noqa: F811
    stopped_dir, straight_dir = tmp_path / "stopped", tmp_path / "straight"
    shutil.copytree(prepared_run, stopped_dir)
    shutil.copytree(prepared_run, straight_dir)
    # max_steps 5: the epoch boundaries are after steps 3 and 6; checkpoints only where a stop puts them.
    settings = dict(max_steps=5, checkpoint_every=100)

    config = write_config(stopped_dir, tiny_checkpoints["base"], **settings)
    rc, events, stderr = _stream_until_stop(config, stop_after=1)
    assert rc == 3, stderr
    saved = events[-1]["step"]
    assert saved in (1, 2), f"the stop must land inside the first epoch, it landed at step {saved}"
    resumed = run_command("training.sft", "--config", config)
    assert resumed.rc == 0, resumed.stderr
    assert resumed.kinds("start")[0]["resumed_from"] == saved
    steps = resumed.kinds("step")
    assert [(e["step"], e["epoch"]) for e in steps] == [(s, (s - 1) // 3 + 1) for s in range(saved + 1, 6)]

    straight = run_command("training.sft", "--config", write_config(straight_dir, tiny_checkpoints["base"],
                                                                     **settings))
    assert straight.rc == 0, straight.stderr
    # Same losses step by step from the resume on: the same batches, the same optimizer state.
    by_step = {e["step"]: e["loss"] for e in straight.kinds("step")}
    for e in steps:
        assert e["loss"] == pytest.approx(by_step[e["step"]], rel=1e-5), e["step"]
    ours = _weights(Path(resumed.events[-1]["export"]) / "model.safetensors")
    theirs = _weights(Path(straight.events[-1]["export"]) / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-7, msg=key)
    base = _weights(tiny_checkpoints["base"] / "model.safetensors")
    changed = [k for k in ours if not torch.equal(ours[k], base[k])]
    assert changed  # the training moved the weights: equal exports are not two untouched copies
