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
