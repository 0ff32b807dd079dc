"""The one-time move of the old QSettings values into the typed settings file."""

from __future__ import annotations

from studio.settings import load_settings


def test_old_qsettings_values_are_imported_once(tmp_path, qapp):
    from PySide6.QtCore import QSettings

    from studio.ui import qsettings_keys as keys

    old = QSettings(str(tmp_path / "old.ini"), QSettings.Format.IniFormat)
    old.setValue(keys.LEGACY_DEVICE, "cpu")
    old.setValue(keys.LEGACY_CPU_THREADS, 6)
    old.setValue(keys.LEGACY_RECENT, ["/only.qtts"])  # INI hands a one-element list back as a string
    old.setValue(keys.LEGACY_LAST_PROJECT, "/only.qtts")
    old.sync()
    old = QSettings(str(tmp_path / "old.ini"), QSettings.Format.IniFormat)
    path = tmp_path / "settings.json"
    assert keys.import_legacy_qsettings(old, path)
    settings = load_settings(path)
    assert (settings.device, settings.cpu_threads, settings.recent_files, settings.last_project) == (
        "cpu", 6, ("/only.qtts",), "/only.qtts")
    old.setValue(keys.LEGACY_DEVICE, "cuda")
    assert not keys.import_legacy_qsettings(old, path)  # once: the settings file now decides
    assert load_settings(path).device == "cpu"
