"""Fine-tuning in two processes, for real: the wizard's launcher command, two CPU processes over gloo.

`accelerate launch` had never run here: the only test compared a command line, and that command, on a
machine with fewer than two GPUs, quietly started a single process. Now the two-process run must train
exactly like one process with the same global batch (each process takes its own micro-batch of every
step, DDP averages the gradients; one process accumulates the same two micro-batches), write each event,
checkpoint and metrics row once, stop on request and resume where it stopped.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.conftest import CLIPS, REPO_ROOT, build_dataset, run_command
from tests.training.test_sft import _stream_until_stop
from training.distributed import Machine, check_processes, cpu_threads_per_process
from training.protocol import CommandError, Emitter, parse_line

NAMES = ("a_good", "b_good", "c_stereo48k", "d_good16k")
SPEAKER = "duo"


@pytest.fixture(scope="module")
def four_items(tmp_path_factory, tiny_checkpoints):
    """A validated and prepared run of four items: batch size 1 makes four micro-batches an epoch."""
    from training.prepare import prepare_run, resolve_tokenizer

    root = tmp_path_factory.mktemp("ddp-data")
    data = build_dataset(root / "data", "jsonl", tuple(c for c in CLIPS if c.name in NAMES))
    run_dir = root / "run"
    result = run_command("training.validate", data.arg, "--out", run_dir)
    assert result.rc == 0, result.stderr
    prepare_run(run_dir, resolve_tokenizer(str(tiny_checkpoints["base"])), emitter=Emitter(io.StringIO()), batch_size=8)
    return run_dir


def _config(run_dir: Path, base: Path, **overrides) -> Path:
    settings = {
        "base_model": str(base),
        "speaker": SPEAKER,
        "epochs": 2,
        "batch_size": 1,
        "learning_rate": 1e-4,
        "checkpoint_every": 1,
        "keep_checkpoints": 2,
        "max_steps": 4,
        "sample_max_new_tokens": 4,
        "device": "cpu",
        "cpu_threads": 1,
        **overrides,
    }
    path = run_dir / "run.json"
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def _launch_two(config: Path, *, stop_after: int | None = None, timeout: float = 300):
    """Run the wizard's two-process command; touch STOP when step `stop_after` is reported."""
    from studio.ui.wizard.runner import training_command, training_environment

    command = training_command("training.sft", ["--config", str(config)], processes=2)
    return _stream_until_stop(config, stop_after, timeout, command=command, env=training_environment())


def _kinds(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(four_items, tiny_checkpoints, tmp_path):
    import shutil

    base = tiny_checkpoints["base"]
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    shutil.copytree(four_items, one_dir)
    shutil.copytree(four_items, two_dir)
    # One process accumulating two micro-batches per step; two processes taking one each.
    one = run_command("training.sft", "--config", _config(one_dir, base, gradient_accumulation=2), timeout=300)
    assert one.rc == 0, one.stderr
    config = _config(two_dir, base, gradient_accumulation=1)

    # 1. Two processes, stopped after their first step.
    rc, stopped, stderr = _launch_two(config, stop_after=1)
    # The launcher reports its processes' stop exit (3) as its own failure, with a traceback of its own
    # (see training.sft); the training itself raised nothing.
    assert rc == 1 and "ChildFailedError" in stderr, stderr[-3000:]
    # (training.sft's code lives in several modules of training/ since the split by role.)
    assert not re.search(r'training/\w+\.py", line', stderr), stderr[-3000:]
    (start,) = _kinds(stopped, "start")
    assert start["processes"] == 2 and start["steps_per_epoch"] == 2 and start["total"] == 4
    done = stopped[-1]
    assert done["event"] == "done" and done["stopped"] is True
    saved = done["step"]
    assert 1 <= saved < 4
    # Each event once: rank 1 writes nothing on stdout, so no step or checkpoint appears twice.
    assert [e["step"] for e in _kinds(stopped, "step")] == list(range(1, saved + 1))
    states = [e["step"] for e in _kinds(stopped, "checkpoint") if e["kind"] == "state"]
    assert states == list(range(1, saved + 1))
    checkpoint = two_dir / "checkpoints" / f"step-{saved:06d}"
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["processes"] == 2
    from safetensors import safe_open

    with safe_open(str(checkpoint / "rng.safetensors"), framework="pt") as rng:
        assert {key.split(".")[0] for key in rng.keys()} == {"0", "1"}  # both processes' RNG states

    # 2. The same command again resumes there and finishes.
    rc, resumed, stderr = _launch_two(config)
    assert rc == 0, stderr[-3000:]
    (start,) = _kinds(resumed, "start")
    assert start["processes"] == 2 and start["resumed_from"] == saved
    assert [e["step"] for e in _kinds(resumed, "step")] == list(range(saved + 1, 5))
    done = resumed[-1]
    assert done["event"] == "done" and "stopped" not in done and done["step"] == 4
    exports = [e for e in _kinds(resumed, "checkpoint") if e["kind"] == "export"]
    samples = [e["epoch"] for e in _kinds(stopped + resumed, "checkpoint") if e["kind"] == "sample"]
    assert len(exports) == 1 and sorted(samples) == [1, 2]
    rows = (two_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4]

    # 3. Same losses, step by step, and the same weights as the one-process run: each process saw its
    #    own half of every step's items (had both seen the same half, the mean would be another one).
    by_step = {e["step"]: e["loss"] for e in one.kinds("step")}
    assert sorted(by_step) == [1, 2, 3, 4]
    for event in _kinds(stopped, "step") + _kinds(resumed, "step"):
        assert event["loss"] == pytest.approx(by_step[event["step"]], rel=1e-5), event["step"]
    ours = _weights(two_dir / "export" / SPEAKER / "model.safetensors")
    theirs = _weights(one_dir / "export" / SPEAKER / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-7, msg=key)
    start_weights = _weights(base / "model.safetensors")
    assert not torch.equal(ours["talker.codec_head.weight"], start_weights["talker.codec_head.weight"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_more_processes_than_gpus_is_one_error_line(four_items, tiny_checkpoints, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(four_items, run_dir)
    config = _config(run_dir, tiny_checkpoints["base"], device="auto")
    # What accelerate launch sets for the main one of two processes; the check runs before any rendezvous.
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "training.sft", "--config", str(config)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stdout.splitlines()
    event = parse_line(line)
    assert event["event"] == "error" and event["message"] == "2 GPUs were asked for, but this machine has no CUDA GPU"
    assert "device to cpu" in event["hint"]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize(
    ("processes", "device", "machine", "message"),
    [
        (2, "cuda", Machine(cuda_devices=1, distributed=True, nccl=True, gloo=True),
         "2 GPUs were asked for, but this machine has 1"),
        (4, "auto", Machine(cuda_devices=2, distributed=True, nccl=True, gloo=True),
         "4 GPUs were asked for, but this machine has 2"),
        (2, "auto", Machine(cuda_devices=0, distributed=True, nccl=False, gloo=True),
         "2 GPUs were asked for, but this machine has no CUDA GPU"),
        (2, "cuda", Machine(cuda_devices=2, distributed=True, nccl=False, gloo=True),
         "training on 2 GPUs needs the NCCL backend, which this PyTorch build lacks"),
        (2, "cpu", Machine(cuda_devices=0, distributed=True, nccl=False, gloo=False),
         "training in 2 CPU processes needs the gloo backend, which this PyTorch build lacks"),
        (2, "cpu", Machine(cuda_devices=0, distributed=False, nccl=False, gloo=False),
         "training in 2 processes needs torch.distributed, which this PyTorch build does not have"),
    ],
)
def test_a_launch_the_machine_cannot_run_is_refused(processes, device, machine, message):
    with pytest.raises(CommandError) as caught:
        check_processes(processes, device, machine)
    assert caught.value.message == message and caught.value.hint


def test_launches_the_machine_can_run_pass():
    gpus = Machine(cuda_devices=2, distributed=True, nccl=True, gloo=True)
    check_processes(2, "cuda", gpus)
    check_processes(2, "auto", gpus)
    check_processes(2, "cpu", Machine(cuda_devices=0, distributed=True, nccl=False, gloo=True))
    check_processes(1, "cuda", Machine(cuda_devices=0, distributed=False, nccl=False, gloo=False))
    # Two CPU processes share the cores instead of each taking all of them.
    assert cpu_threads_per_process(None, 2) == max(1, (os.cpu_count() or 1) // 2)
    assert cpu_threads_per_process(3, 2) == 3 and cpu_threads_per_process(None, 1) is None
