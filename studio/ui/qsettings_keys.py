"""The QSettings keys the window still uses, and the one-time move of the others to studio.settings.

QSettings keeps only what is Qt's own: window geometry, dock and splitter state (opaque QByteArrays
that only Qt can restore). Everything else a user chooses lives in the typed settings file
(studio.settings), which the command line reads as well.
"""

from __future__ import annotations

from pathlib import Path

WINDOW_GEOMETRY = "window/geometry"
WINDOW_STATE = "window/state"
WINDOW_SPLITTER = "window/splitter"

# Keys of the studio before studio.settings; read once, by import_legacy_qsettings, and never written.
LEGACY_DEVICE = "render/device"
LEGACY_CPU_THREADS = "render/cpu_threads"
LEGACY_RECENT = "files/recent"
LEGACY_LAST_FOLDER = "files/last_folder"
LEGACY_LAST_PROJECT = "files/last_project"


def _as_list(value) -> list[str]:
    # QSettings' INI backend hands a one-element list back as a plain string.
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value if v]


def import_legacy_qsettings(qsettings=None, path: Path | None = None) -> bool:
    """Copy the old QSettings values into the settings file, once: only when that file does not exist yet.

    Values are checked like any settings file's (a bad one falls back to its default with a warning).
    Returns True when a settings file was written.
    """
    from PySide6.QtCore import QSettings

    from studio import paths
    from studio.settings import save_settings, settings_from_dict

    target = Path(path) if path is not None else paths.settings_file()
    if target.exists():
        return False
    qsettings = qsettings if qsettings is not None else QSettings()
    found: dict = {}
    if qsettings.contains(LEGACY_DEVICE):
        found["device"] = str(qsettings.value(LEGACY_DEVICE))
    if qsettings.contains(LEGACY_CPU_THREADS):
        try:
            found["cpu_threads"] = int(qsettings.value(LEGACY_CPU_THREADS))
        except (TypeError, ValueError):
            found["cpu_threads"] = str(qsettings.value(LEGACY_CPU_THREADS))  # reported as invalid
    if qsettings.contains(LEGACY_RECENT):
        found["recent_files"] = _as_list(qsettings.value(LEGACY_RECENT))
    for key, name in ((LEGACY_LAST_FOLDER, "last_folder"), (LEGACY_LAST_PROJECT, "last_project")):
        if qsettings.contains(key) and qsettings.value(key):
            found[name] = str(qsettings.value(key))
    if not found:
        return False
    return save_settings(settings_from_dict(found, source="QSettings"), target)
