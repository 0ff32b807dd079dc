"""studio.paths (every user folder in one place) and studio.settings (typed, versioned, never crashes)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from studio import paths
from studio.settings import (
    MAX_RECENT_FILES,
    SCHEMA_VERSION,
    Settings,
    load_settings,
    save_settings,
    update_settings,
)


def test_folders_follow_the_platform_and_the_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.MODELS_ENV, raising=False)
    monkeypatch.delenv(paths.VOICES_ENV, raising=False)
    data = Path(os.environ["XDG_DATA_HOME"]) / "qwen-tts-studio"
    assert paths.data_dir() == data
    assert paths.models_dir() == data / "models"
    assert paths.voices_dir() == data / "voices"
    assert paths.prompt_cache_dir() == data / "voices" / ".prompts"
    assert paths.recovery_dir() == data / "recovery"
    assert paths.runs_dir() == data / "runs"
    assert paths.model_registry_file() == data / "local_models.json"
    assert paths.render_cache_dir() == Path(os.environ["XDG_CACHE_HOME"]) / "qwen-tts-studio" / "renders"
    assert paths.fingerprint_memo_file().parent == paths.cache_dir()
    assert paths.settings_file() == Path(os.environ["XDG_CONFIG_HOME"]) / "qwen-tts-studio" / "settings.json"
    assert paths.default_output_dir().name == "Qwen3-TTS Studio"

    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "big-disk"))
    monkeypatch.setenv(paths.VOICES_ENV, str(tmp_path / "voices"))
    assert paths.models_dir() == tmp_path / "big-disk"
    assert paths.voices_dir() == tmp_path / "voices"
    assert paths.prompt_cache_dir() == tmp_path / "voices" / ".prompts"
    assert not (tmp_path / "big-disk").exists()  # asking never creates


def test_the_voice_library_and_the_model_store_use_the_same_folders(tmp_path, monkeypatch):
    from studio.core.voice_library import default_voice_library
    from studio.engine import models

    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "m"))
    monkeypatch.setenv(paths.VOICES_ENV, str(tmp_path / "v"))
    assert models.models_dir() == paths.models_dir()
    assert default_voice_library().folder == paths.voices_dir()
    assert default_voice_library().prompt_cache == paths.prompt_cache_dir()


def test_missing_file_gives_defaults_and_a_save_round_trips(tmp_path):
    path = tmp_path / "config" / "settings.json"
    settings = load_settings(path)
    assert settings == Settings() and settings.load_warnings == ()
    changed = Settings(device="cuda:1", cpu_threads=6, model_memory_budget_gb=10.5,
                       recent_files=("/a/one.qtts", "/b/two.qtts"), last_folder="/a", last_project="/a/one.qtts")
    assert save_settings(changed, path)
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["recent_files"] == ["/a/one.qtts", "/b/two.qtts"]
    assert load_settings(path) == changed
    assert not list(path.parent.glob("*.tmp"))


def test_the_default_file_is_the_one_in_paths(monkeypatch):
    update_settings(cpu_threads=3)
    assert json.loads(paths.settings_file().read_text())["cpu_threads"] == 3
    assert load_settings().cpu_threads == 3


def test_bad_values_fall_back_one_field_at_a_time_and_name_the_field(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "schema_version": 1,
        "device": "gpu please",
        "cpu_threads": -2,
        "model_memory_budget_gb": "lots",
        "recent_files": ["/ok.qtts", 7, "", "/ok.qtts", "/also.qtts"],
        "last_folder": "/somewhere",
        "colour": "blue",
    }))
    with caplog.at_level(logging.WARNING, logger="studio.settings"):
        settings = load_settings(path)
    assert settings.device == "auto" and settings.cpu_threads == 0 and settings.model_memory_budget_gb is None
    assert settings.recent_files == ("/ok.qtts", "/also.qtts") and settings.last_folder == "/somewhere"
    text = "\n".join(settings.load_warnings)
    for name in ("device", "cpu_threads", "model_memory_budget_gb", "recent_files", "'colour'"):
        assert name in text, name
    assert len(caplog.records) == len(settings.load_warnings) == 5
    assert all(str(path) in w for w in settings.load_warnings)
    assert save_settings(settings, path)  # a file of this version with bad values may be rewritten


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe", b"{" * 5000 + b"}" * 5000, b""])
def test_a_damaged_file_never_crashes(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    settings = load_settings(path)
    assert settings == Settings() and len(settings.load_warnings) == 1
    assert str(path) in settings.load_warnings[0]


def test_a_newer_file_is_read_best_effort_and_never_written_over(tmp_path):
    path = tmp_path / "settings.json"
    newer = {"schema_version": SCHEMA_VERSION + 1, "device": "cpu", "cpu_threads": 4, "render_queue": {"x": 1},
             "model_memory_budget_gb": "per-device now"}
    path.write_text(json.dumps(newer))
    settings = load_settings(path)
    assert settings.device == "cpu" and settings.cpu_threads == 4 and settings.read_only
    # Its unknown fields are expected, not warned about; a known field it now spells differently is.
    assert len(settings.load_warnings) == 1 and "model_memory_budget_gb" in settings.load_warnings[0]
    assert not save_settings(settings.with_recent_file("/x.qtts"), path)
    update_settings(path, device="cuda")
    assert json.loads(path.read_text()) == newer


def test_recent_files_are_most_recent_first_unique_and_bounded():
    settings = Settings()
    for index in range(MAX_RECENT_FILES + 3):
        settings = settings.with_recent_file(f"/p/{index}.qtts")
    settings = settings.with_recent_file("/p/9.qtts")
    assert settings.recent_files[0] == "/p/9.qtts" and len(settings.recent_files) == MAX_RECENT_FILES
    assert settings.recent_files.count("/p/9.qtts") == 1
    assert settings.last_project == "/p/9.qtts" and settings.last_folder == "/p"


def test_update_refuses_a_bad_value_from_code(tmp_path):
    path = tmp_path / "settings.json"
    with pytest.raises(ValueError, match="cpu_threads"):
        update_settings(path, cpu_threads="eight")
    with pytest.raises(ValueError, match="unknown setting"):
        update_settings(path, colour="blue")
    assert not path.exists()
    assert update_settings(path, device="mps", recent_files=["/a.qtts"]).recent_files == ("/a.qtts",)

