"""training.run_folder and training.config: the run folder's one layout, its reset, and the settings reader."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.training.conftest import REPO_ROOT
from training.config import RESUME_FIELDS, config_defaults, config_from_dict, load_config
from training.protocol import CommandError
from training.run_folder import RunFolder, inspect_run, list_checkpoints


def _touch(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _trained_run(run_dir, output_dir=None):
    """A run folder as validate, prepare and two epochs of training leave it (files are stand-ins)."""
    config = {"base_model": "base", "speaker": "narrator"}
    if output_dir:
        config["output_dir"] = output_dir
    _touch(run_dir / "run.json", json.dumps(config))
    for rel in ("validation.json", "prepared.jsonl", "audio/00001_a.wav", "codes/00001_a.safetensors"):
        _touch(run_dir / rel)
    folder = RunFolder.from_saved_config(run_dir)
    for step in (2, 4):
        _touch(folder.checkpoint(step) / "state.json", json.dumps({"step": step, "total": 6}))
    _touch(folder.checkpoint_staging(6) / "model.safetensors")
    for epoch in (1, 2):
        _touch(folder.sample(epoch))
    _touch(folder.tensorboard / "events.out.tfevents.1700000000.host.1.0")
    _touch(folder.export("narrator") / "config.json", "{}")
    _touch(folder.output / "export" / ".narrator.old" / "config.json", "{}")
    _touch(folder.metrics, "step,loss\n1,2.0\n")
    _touch(folder.embedding)
    return folder


@pytest.mark.parametrize("output_dir", [None, "out"])
def test_reset_removes_training_outputs_and_only_them(tmp_path, output_dir):
    run_dir = tmp_path / "run"
    folder = _trained_run(run_dir, output_dir)
    # Files of the user's that happen to sit in the folders training writes to.
    mine = [
        _touch(folder.samples / "my-notes.txt"),
        _touch(folder.checkpoints / "README"),
        _touch(folder.output / "export" / "keep-me" / "notes.txt"),
        _touch(folder.tensorboard / "my-run.txt"),
    ]
    inputs = [run_dir / rel for rel in ("run.json", "validation.json", "prepared.jsonl", "audio/00001_a.wav")]
    assert inspect_run(run_dir).trained and len(inspect_run(run_dir).checkpoints) == 2

    removed = folder.reset_outputs()

    assert folder.metrics in removed and not folder.metrics.exists()
    assert list_checkpoints(folder.checkpoints) == [] and not folder.checkpoint_staging(6).exists()
    assert folder.list_samples() == [] and not folder.export("narrator").exists()
    assert not (folder.output / "export" / ".narrator.old").exists()
    assert not list(folder.tensorboard.glob("events.out.tfevents.*"))
    assert all(path.is_file() for path in mine + inputs), [p for p in mine + inputs if not p.is_file()]
    # The speaker embedding depends on the inputs only: kept, so a restart does not recompute it.
    assert folder.embedding.is_file()
    state = inspect_run(run_dir)
    assert not state.trained and state.checkpoints == [] and state.export is None


def test_reset_removes_emptied_folders_and_is_idempotent(tmp_path):
    folder = _trained_run(tmp_path / "run")
    folder.reset_outputs()
    for path in (folder.checkpoints, folder.samples, folder.tensorboard, folder.output / "export"):
        assert not path.exists(), path
    assert folder.reset_outputs() == []
    assert (folder.run_dir / "codes" / "00001_a.safetensors").is_file()


def test_layout_follows_output_dir(tmp_path):
    folder = RunFolder.at(tmp_path, "out")
    assert folder.config == tmp_path / "run.json" and folder.index == tmp_path / "prepared.jsonl"
    assert folder.events == tmp_path / "events.jsonl" and folder.stop_file == tmp_path / "STOP"
    assert folder.ledger == tmp_path / ".qwen-tts-studio-files"
    assert folder.checkpoint(12) == tmp_path / "out" / "checkpoints" / "step-000012"
    assert folder.export("x") == tmp_path / "out" / "export" / "x"
    assert folder.sample(3) == tmp_path / "out" / "samples" / "epoch-003.wav"


def test_config_from_dict_names_the_source_and_the_field():
    good = config_from_dict({"base_model": " base ", "speaker": "My-Voice", "language": "English"})
    assert (good.base_model, good.speaker, good.language) == ("base", "my-voice", "english")
    base = {"base_model": "b", "speaker": "s"}
    for settings, message in [
        ({"base_model": "b"}, "run.json: field 'speaker' is required"),
        ({**base, "batch_size": True}, "run.json: field 'batch_size' must be an integer"),
        ({**base, "max_grad_norm": 0}, "run.json: field 'max_grad_norm' must be greater"),
        ({**base, "warmup_steps": None, "seed": None}, "run.json: field 'seed' must be an integer, not null"),
        ({**base, "lr_schedule": "step"}, "run.json: field 'lr_schedule' must be one of cosine"),
    ]:
        with pytest.raises(CommandError) as caught:
            config_from_dict(settings)
        assert caught.value.message.startswith(message), caught.value.message
    with pytest.raises(CommandError, match=r"^settings\.json: must hold a JSON object"):
        config_from_dict([1], source="settings.json")
    with pytest.raises(CommandError) as caught:
        config_from_dict({"base_model": "b", "speaker": "s", "epochs": -1}, source="/x/run.json")
    assert caught.value.hint == "fix epochs in run.json or leave it out"


def test_load_config_and_config_from_dict_agree(tmp_path):
    path = tmp_path / "run.json"
    settings = {"base_model": "b", "speaker": "S1", "epochs": 2, "max_steps": None}
    path.write_text(json.dumps(settings))
    assert load_config(path) == config_from_dict(settings)
    path.write_text(json.dumps({**settings, "epochs": 0}))
    with pytest.raises(CommandError, match=rf"^{path}: field 'epochs' must be at least 1"):
        load_config(path)


def test_defaults_hold_only_fields_that_have_one():
    defaults = config_defaults()
    assert "base_model" not in defaults and "speaker" not in defaults
    assert set(RESUME_FIELDS) - {"base_model"} <= set(defaults)
    assert config_from_dict({"base_model": "b", "speaker": "s", **defaults}).to_json() == {
        "base_model": "b",
        "speaker": "s",
        **defaults,
    }


def test_the_wizard_side_modules_do_not_import_torch():
    code = (
        "import sys, training.config, training.run_folder, training.protocol; "
        "heavy = [m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
