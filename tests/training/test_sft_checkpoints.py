"""SFT checkpoints: no pickle is ever read, a damaged newest checkpoint falls back, a full disk is one line."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.filesystems import small_disk as small_tmpfs
from tests.training.conftest import REPO_ROOT, run_command
from tests.training.test_sft import _stream_until_stop, prepared_run, write_config  # noqa: F401 - fixture
from training.protocol import parse_line

MARKER_NAME = "PWNED"
# Where accelerate's save_state put its pickles; a run folder from elsewhere may carry any of them.
PICKLE_NAMES = ("optimizer.bin", "scheduler.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl", "pytorch_model.bin")


class _Payload:
    """Unpickling this creates the marker file: proof that someone unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def payload(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def step_dir(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:06d}"


def plant_pickles(folder: Path, marker: Path) -> None:
    """A pickle under each name accelerate's save_state used.

    A file already there is kept, except the scheduler's custom_checkpoint_0.pkl, which accelerate
    unpickled with weights_only=False: the version before this one resumed such a folder by running the
    payload (its optimizer.bin and random_states_0.pkl went through torch's weights-only unpickler).
    """
    for name in PICKLE_NAMES:
        path = folder / name
        if name == "custom_checkpoint_0.pkl" or not path.exists():
            path.write_bytes(payload(marker))


@pytest.fixture(scope="module")
def stopped_run(prepared_run, tiny_checkpoints, tmp_path_factory):  # noqa: F811 - the imported fixture
    """A run stopped after step 3 of 8: checkpoints step-000002 and step-000003 (built once)."""
    run = tmp_path_factory.mktemp("stopped") / "run"
    shutil.copytree(prepared_run, run)
    config = write_config(run, tiny_checkpoints["base"])
    rc, events, stderr = _stream_until_stop(config, stop_after=3)
    assert rc == 3, stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    return run


@pytest.fixture
def run(stopped_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(stopped_run, target)
    return target


def _finished_from(result, step: int) -> None:
    assert result.rc == 0, result.stderr
    assert "Traceback" not in result.stderr
    start = result.kinds("start")[0]
    assert start["resumed_from"] == step and start["checkpoint"].endswith(f"step-{step:06d}")
    assert [e["step"] for e in result.kinds("step")] == list(range(step + 1, 9))
    assert result.events[-1]["event"] == "done" and result.events[-1]["step"] == 8


# --- item 3: nothing in a run folder is ever unpickled ------------------------------------------------


@pytest.mark.slow
def test_resume_never_unpickles_the_run_folder(run, tmp_path):
    marker = tmp_path / MARKER_NAME
    # Pickles where accelerate kept its state, in both checkpoints: to be ignored.
    for step in (2, 3):
        plant_pickles(step_dir(run, step), marker)
    # And the newest one's optimizer state swapped for a pickle: to be refused, naming the file.
    tampered = step_dir(run, 3) / "optimizer.safetensors"
    tampered.write_bytes(payload(marker))

    result = run_command("training.sft", "--config", run / "run.json")
    assert not marker.exists(), "a pickle from the run folder was unpickled"
    warnings = [e["message"] for e in result.kinds("warning") if "damaged" in e["message"]]
    assert len(warnings) == 1 and str(tampered) in warnings[0], warnings
    _finished_from(result, 2)


@pytest.mark.slow
def test_an_old_pickled_checkpoint_is_refused_in_one_line(run, tmp_path):
    marker = tmp_path / MARKER_NAME
    newest = step_dir(run, 3)
    # What accelerate's save_state left: state.json without a format, the state in pickles.
    state = json.loads((newest / "state.json").read_text())
    state.pop("format", None)
    (newest / "state.json").write_text(json.dumps(state))
    for name in ("optimizer.safetensors", "rng.safetensors"):
        (newest / name).unlink(missing_ok=True)
    plant_pickles(newest, marker)

    result = run_command("training.sft", "--config", run / "run.json")
    assert not marker.exists(), "a pickle from the run folder was unpickled"
    assert result.rc == 2 and [e["event"] for e in result.events] == ["error"], result.stderr
    message = result.events[0]["message"]
    assert f"checkpoint {newest} was written by an older version and holds pickled state" in message
    assert "start a new run" in result.events[0]["hint"]
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

    # Its weights are safetensors, so exporting it still works, still without unpickling anything.
    exported = run_command("training.sft", "--config", run / "run.json", "--export-only")
    assert exported.rc == 0, exported.stderr
    assert exported.events[-1]["checkpoint"] == str(newest) and not marker.exists()


# --- item 8: a damaged newest checkpoint falls back -----------------------------------------------------


@pytest.mark.slow
def test_a_truncated_newest_checkpoint_falls_back_to_the_older_one(run):
    weights = step_dir(run, 3) / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as handle:
        handle.truncate(size // 2)

    result = run_command("training.sft", "--config", run / "run.json")
    assert result.kinds("warning"), f"no warning; it ended with {result.events[-1]}"
    warning = result.kinds("warning")[0]
    assert warning["item"] == str(weights)
    assert warning["message"] == (
        f"checkpoint step-000003 is damaged: {weights}: truncated ({size // 2} bytes, the header describes {size})"
    )
    assert "resuming from the older checkpoint step-000002 instead" in [e["message"] for e in result.kinds("warning")]
    _finished_from(result, 2)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000006", "step-000008"]


@pytest.mark.slow
def test_with_every_checkpoint_damaged_training_starts_over(run):
    (step_dir(run, 2) / "state.json").write_text('{"format": 2, "step": ')
    (step_dir(run, 3) / "model.safetensors").unlink()
    # A stop request waiting at the start: the run reports where it would begin and ends at once.
    (run / "STOP").touch()

    result = run_command("training.sft", "--config", run / "run.json")
    assert result.rc == 3, f"exit {result.rc}, last event {result.events[-1]}"
    messages = [e["message"] for e in result.kinds("warning")]
    assert messages[0] == f"checkpoint step-000003 is damaged: {step_dir(run, 3) / 'model.safetensors'}: missing"
    assert messages[1].startswith(
        f"checkpoint step-000002 is damaged: {step_dir(run, 2) / 'state.json'}: not valid JSON"
    )
    assert messages[2] == f"no usable checkpoint left in {run / 'checkpoints'}: training starts from the beginning"
    assert result.kinds("start")[0]["resumed_from"] is None
    assert list((run / "checkpoints").iterdir()) == []


# --- item 8: a full disk while checkpointing ------------------------------------------------------------


def _no_traceback_single_error(result) -> dict:
    assert "Traceback" not in result.stderr and "internal error" not in result.stdout
    errors = result.kinds("error")
    assert len(errors) == 1 and result.events[-1] is errors[0]
    return errors[0]


@pytest.mark.slow
def test_a_full_disk_while_checkpointing_is_one_line_and_resumable(run, tiny_checkpoints, tmp_path):
    shutil.rmtree(run / "checkpoints")
    # About 1.5 checkpoints of the tiny model (7.7 MB each): step 2 fits, the disk fills during step 4.
    with small_tmpfs(tmp_path / "disk", "12m") as disk:
        config = write_config(run, tiny_checkpoints["base"], output_dir=str(disk))
        result = run_command("training.sft", "--config", config)
        assert result.rc == 2, f"exit {result.rc}, last event {result.events[-1]}"
        error = _no_traceback_single_error(result)
        assert [e["step"] for e in result.kinds("checkpoint") if e["kind"] == "state"] == [2]
        assert error["message"] == (
            f"no space left on device while saving checkpoint {disk / 'checkpoints' / 'step-000004'} "
            "(No space left on device); free space and resume"
        )
        # Nothing half-written is left to pass for a checkpoint.
        assert sorted(p.name for p in (disk / "checkpoints").iterdir()) == ["step-000002"]

        # Space freed; a save killed outright would have left its staging folder: both are dealt with.
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        stale = disk / "checkpoints" / ".step-000004.partial"
        stale.mkdir()
        (stale / "model.safetensors").write_bytes(b"\0" * 1000)
        resumed = run_command("training.sft", "--config", config)
        _finished_from(resumed, 2)
        assert not stale.exists()


@pytest.mark.slow
def test_a_stop_whose_save_hits_a_full_disk_does_not_stop_the_resumed_run(run, tiny_checkpoints, tmp_path):
    shutil.rmtree(run / "checkpoints")
    with small_tmpfs(tmp_path / "disk", "4m") as disk:  # less than one checkpoint
        config = write_config(run, tiny_checkpoints["base"], output_dir=str(disk))
        # The user presses Stop after step 1: the run saves a checkpoint and ends, but the disk is full.
        rc, events, stderr = _stream_until_stop(Path(config), stop_after=1)
        assert rc == 2 and "Traceback" not in stderr
        assert events[-1]["event"] == "error" and events[-1]["message"].startswith("no space left on device")
        assert not (run / "STOP").exists()  # answered; left behind it would stop the next run at once


def _limit_file_size() -> None:
    # A real write limit without root: writes past it fail with EFBIG (SIGXFSZ would kill instead).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


@pytest.mark.slow
def test_a_file_size_limit_while_checkpointing_is_one_line(run, tiny_checkpoints):
    shutil.rmtree(run / "checkpoints")
    config = write_config(run, tiny_checkpoints["base"])
    proc = subprocess.run(
        [sys.executable, "-m", "training.sft", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    events = [parse_line(line) for line in proc.stdout.splitlines()]
    assert all(events), proc.stdout
    assert proc.returncode == 2, f"exit {proc.returncode}, last event {events[-1]}"
    assert "Traceback" not in proc.stderr
    assert [e["event"] for e in events if e["event"] in ("error", "done")] == ["error"]
    final = run / "checkpoints" / "step-000002"
    assert events[-1]["message"] == (
        f"no space left on device while saving checkpoint {final} (File too large); free space and resume"
    )
    assert os.listdir(run / "checkpoints") == []


# --- the format itself, in-process ----------------------------------------------------------------------


def _tiny_training():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    optimizer = torch.optim.AdamW(
        [
            {"params": [model[0].weight], "weight_decay": 0.01},
            {"params": [model[0].bias, *model[1].parameters()], "weight_decay": 0.0},
        ],
        lr=1e-2,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0 / (e + 1))
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler) -> None:
    model(torch.randn(5, 4)).square().sum().backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def test_safetensors_writer_is_read_by_safetensors(tmp_path):
    from safetensors.torch import load_file

    from training.checkpoint_state import read_header, write_safetensors

    tensors = {
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "bf16": torch.randn(3, 5).to(torch.bfloat16),
        "mask": torch.tensor([True, False, True]),
        "u8": torch.arange(7, dtype=torch.uint8),
        "i64": torch.arange(-3, 3),
        "strided": torch.randn(4, 6).t(),
    }
    path = tmp_path / "t.safetensors"
    size = write_safetensors(path, tensors)
    assert size == path.stat().st_size
    loaded = load_file(str(path))
    assert loaded.keys() == tensors.keys()
    for key, tensor in tensors.items():
        assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor), key
    assert read_header(path, size)["bf16"] == ("BF16", (3, 5))


def test_checkpoint_round_trip_is_exact_and_damage_is_named(tmp_path):
    from training.checkpoint_state import (
        CheckpointDamaged,
        capture_rng,
        load_checkpoint,
        read_manifest,
        write_checkpoint,
    )
    from training.protocol import CommandError

    torch.manual_seed(0)
    model, optimizer, scheduler = _tiny_training()
    for _ in range(3):
        _step(model, optimizer, scheduler)
    folder = tmp_path / "step-000003"
    rng = {f"0.{k}": v for k, v in capture_rng(torch.device("cpu")).items()}
    write_checkpoint(
        folder,
        info={"step": 3, "processes": 1},
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict(),
        rng=rng,
    )
    _step(model, optimizer, scheduler)  # what the straight run does next
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(1)  # a different RNG stream and fresh weights: the checkpoint must restore both
    again, optimizer2, scheduler2 = _tiny_training()
    manifest = read_manifest(folder)
    load_checkpoint(
        manifest, module=again, optimizer=optimizer2, scheduler=scheduler2, rank=0, device=torch.device("cpu")
    )
    assert scheduler2.last_epoch == 3 and optimizer2.param_groups[0]["betas"] == (0.9, 0.999)
    _step(again, optimizer2, scheduler2)
    for key, tensor in again.state_dict().items():
        assert torch.equal(tensor, expected[key]), key

    def damaged(name: str, change) -> str:
        broken = tmp_path / f"broken-{name}" / folder.name
        shutil.copytree(folder, broken)
        change(broken)
        with pytest.raises(CheckpointDamaged) as caught:
            read_manifest(broken)
        return str(caught.value).replace(str(broken), "CK")

    def cut(path: Path) -> None:
        path.write_bytes(path.read_bytes()[:-10])

    assert damaged("truncated", lambda f: cut(f / "model.safetensors")).startswith("CK/model.safetensors: truncated")
    assert damaged("json", lambda f: (f / "state.json").write_text("{")).startswith("CK/state.json: not valid JSON")
    assert damaged("missing", lambda f: (f / "optimizer.safetensors").unlink()) == "CK/optimizer.safetensors: missing"
    assert damaged("pickle", lambda f: (f / "rng.safetensors").write_bytes(payload(tmp_path / MARKER_NAME))).startswith(
        "CK/rng.safetensors: "
    )
    assert not (tmp_path / MARKER_NAME).exists()
    state = json.loads((folder / "state.json").read_text())
    state["format"] = 1
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(CommandError, match="was written by an older version and holds pickled state"):
        read_manifest(folder)
