"""Test-run wide setup: hermetic Qt (offscreen, private settings) and one QApplication."""

from __future__ import annotations

import os

# Set before anything imports Qt: no display is needed, and settings never touch the user's own.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_settings(tmp_path_factory, monkeypatch):
    # QSettings and platformdirs both follow XDG_CONFIG_HOME / XDG_DATA_HOME on Linux.
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """One tiny random-weight checkpoint of each model type, built once per test run."""
    from studio.engine.tiny import TINY_TYPES, build_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny-checkpoints")
    return {kind: build_tiny_checkpoint(root / kind, model_type=kind, seed=0) for kind in TINY_TYPES}


@pytest.fixture(scope="session")
def loaded_models(tiny_checkpoints):
    """Loaded tiny models by type (CPU, two threads), loaded on first use and shared by the session."""
    from studio.engine.loader import load_model

    cache = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = load_model(str(tiny_checkpoints[kind]), device="cpu", cpu_threads=2)
        return cache[kind]

    return get


@pytest.fixture
def fast_loop_runs(monkeypatch):
    """The options of every segment the studio's own loop generated (the real loop, counted as it runs)."""
    from studio.engine.fast_decode import FastDecoder

    calls = []
    real_frames = FastDecoder.frames

    def counted(self, call, **kwargs):
        calls.append(self.options)
        return real_frames(self, call, **kwargs)

    monkeypatch.setattr(FastDecoder, "frames", counted)
    return calls
