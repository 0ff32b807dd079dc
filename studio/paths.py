"""Every folder and file of the user's the studio reads or writes outside a project, decided in one place.

Pure Python (platformdirs, no Qt, no torch), so the command line, the window, the engine and training
all agree on where things live. Each function computes its answer on every call, so a test (or a user)
that sets an override in the environment sees it at once; nothing here creates a folder.

    data_dir()            <user data>/qwen-tts-studio               (~/.local/share/qwen-tts-studio)
      models_dir()        <data>/models          or $QWEN_TTS_STUDIO_MODELS
      voices_dir()        <data>/voices          or $QWEN_TTS_STUDIO_VOICES
      prompt_cache_dir()  <voices>/.prompts      clone prompts cached as safetensors
      recovery_dir()      <data>/recovery        autosaved copies of unsaved documents
      runs_dir()          <data>/runs            fine-tuning runs started from the wizard
      model_registry_file()  <data>/local_models.json  registered local checkpoint folders
    cache_dir()           <user cache>/qwen-tts-studio
      render_cache_dir()  <cache>/renders        content-addressed rendered segments
      fingerprint_memo_file()  <cache>/checkpoint-fingerprints.json  weight hashes by path, size, mtime
    config_dir()          <user config>/qwen-tts-studio
      settings_file()     <config>/settings.json the typed per-machine settings (studio.settings)
    default_output_dir()  <user music>/Qwen3-TTS Studio   where renders of an unsaved project go
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "qwen-tts-studio"
MODELS_ENV = "QWEN_TTS_STUDIO_MODELS"
VOICES_ENV = "QWEN_TTS_STUDIO_VOICES"
OUTPUT_FOLDER_NAME = "Qwen3-TTS Studio"
SETTINGS_FILE_NAME = "settings.json"
MODEL_REGISTRY_FILE_NAME = "local_models.json"


def _override(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """The studio's own data folder (models, voices, recovery, runs)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Data the studio can always make again (rendered segments)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """Where downloaded models go: $QWEN_TTS_STUDIO_MODELS, else <data>/models."""
    return _override(MODELS_ENV) or data_dir() / "models"


def model_registry_file() -> Path:
    """The list of local checkpoint folders the user registered with the model manager."""
    return data_dir() / MODEL_REGISTRY_FILE_NAME


def voices_dir() -> Path:
    """The voice library: $QWEN_TTS_STUDIO_VOICES, else <data>/voices."""
    return _override(VOICES_ENV) or data_dir() / "voices"


def prompt_cache_dir() -> Path:
    """Clone prompts (speaker embeddings, reference codes) of the voice library, cached as safetensors."""
    return voices_dir() / ".prompts"


def recovery_dir() -> Path:
    """Autosaved copies of documents with unsaved changes."""
    return data_dir() / "recovery"


def log_dir() -> Path:
    """The studio's log files (studio.log, rotated): tracebacks of errors shown in the crash dialog."""
    return data_dir() / "logs"


def runs_dir() -> Path:
    """Fine-tuning runs started from the wizard."""
    return data_dir() / "runs"


def render_cache_dir() -> Path:
    """The content-addressed cache of rendered segments."""
    return cache_dir() / "renders"


def fingerprint_memo_file() -> Path:
    """Checkpoint weight hashes memoised by path, size and mtime (studio.engine.loader.checkpoint_fingerprint)."""
    return cache_dir() / "checkpoint-fingerprints.json"


def settings_file() -> Path:
    """The typed per-machine settings (see studio.settings)."""
    return config_dir() / SETTINGS_FILE_NAME


def default_output_dir() -> Path:
    """Where renders of a project that was never saved (and names no output folder) go."""
    from platformdirs import user_music_dir

    return Path(user_music_dir()) / OUTPUT_FOLDER_NAME
