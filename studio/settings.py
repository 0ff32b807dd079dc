"""Per-machine settings, declared in one place, typed and versioned.

What belongs here: choices about this computer (render device, CPU threads, the memory models may
use, which decoder generates the codec frames) and the user's recent files. What does not: anything a
project should carry to another machine (that is the .qtts file), and Qt's own window geometry and dock
state (QSettings, in the UI).

Stored as JSON in the user config folder (``studio.paths.settings_file()``), written atomically, and
Qt-free, so ``python -m studio`` reads the same device and thread count as the window.

Reading never fails: a missing or unreadable file gives the defaults; a value of the wrong type or out
of range falls back to its default and the field is named in a warning (logged, and kept in
``Settings.load_warnings`` for a UI that wants to show them). A file written by a newer studio
(a higher ``schema_version``) is read best-effort, field by field, and is never written over: its
fields may mean something this version does not know, and an older studio launched once must not
erase them. ``save_settings`` then returns False and the changes live for this session only.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from studio.engine.decoder_options import DECODERS, DecoderOptions

SCHEMA_VERSION = 1
MAX_RECENT_FILES = 8
DEVICES = ("auto", "cpu", "cuda", "mps")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?)$")
_MAX_CPU_THREADS = 4096
_FILE_LIMIT = 1024 * 1024  # a settings file is a few hundred bytes; anything this large is not one

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N" | "mps"
    cpu_threads: int = 0  # 0: all cores
    model_memory_budget_gb: float | None = None  # None: decided from the device's memory
    recent_files: tuple[str, ...] = ()  # most recent first, at most MAX_RECENT_FILES
    last_folder: str | None = None  # where the last open/save dialog was
    last_project: str | None = None  # reopened at start when nothing else is asked for
    theme: str = "system"  # "system" | "light" | "dark"
    decoder: str = "fast"  # how codec frames are generated: one of DECODERS (see studio.engine.decoder_options)
    compile_decoder: bool = False  # fast decoder only: torch.compile it (slower first start, faster frames)
    int8_decoder: bool = False  # fast decoder only, CPU only, experimental: int8 weights
    batch: int = 1  # lines decoded together in the window (engine.render.RenderOptions.batch; 0: automatic)
    cluster: str = ""  # where the window renders: "" this computer, "auto" a Ray on it, else a Ray cluster address
    # Not stored: what reading the file found wrong, and whether the file may be written over.
    load_warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)
    read_only: bool = field(default=False, compare=False, repr=False)

    def with_recent_file(self, path: Path | str) -> Settings:
        """These settings with `path` first in the recent files (once), its folder as the last folder."""
        text = str(path)
        recent = (text, *(p for p in self.recent_files if p != text))[:MAX_RECENT_FILES]
        return replace(self, recent_files=recent, last_folder=str(Path(text).parent), last_project=text)

    def decoder_options(self) -> DecoderOptions:
        """The decoder renders use on this machine. Compiling and int8 belong to the fast decoder: with the
        reference decoder they are kept in the file (for switching back) but not applied."""
        fast = self.decoder == "fast"
        return DecoderOptions(decoder=self.decoder, compile=fast and self.compile_decoder,
                              int8=fast and self.int8_decoder)


_STORED = ("device", "cpu_threads", "model_memory_budget_gb", "recent_files", "last_folder", "last_project", "theme",
           "decoder", "compile_decoder", "int8_decoder", "batch", "cluster")
THEMES = ("system", "light", "dark")


def _check_device(value: Any) -> str:
    if isinstance(value, str) and _DEVICE.match(value):
        return value
    raise ValueError(f"expected one of auto, cpu, cuda, cuda:N, mps, not {value!r}")


def _check_cpu_threads(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_CPU_THREADS:
        return value
    raise ValueError(f"expected a whole number from 0 (all cores) to {_MAX_CPU_THREADS}, not {value!r}")


MAX_BATCH = 64


def _check_batch(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BATCH:
        return value
    raise ValueError(f"expected a whole number from 0 (automatic) to {MAX_BATCH}, not {value!r}")


def _check_cluster(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 300 and not any(c.isspace() for c in value):
        return value
    raise ValueError(f"expected \"\" (this computer), \"auto\" or a Ray cluster address, not {value!r}")


def _check_budget(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    raise ValueError(f"expected a number of gigabytes above 0, or null for automatic, not {value!r}")


def _check_recent(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of paths, not {type(value).__name__}")
    return tuple(dict.fromkeys(p for p in value if isinstance(p, str) and p))[:MAX_RECENT_FILES]


def _check_optional_path(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValueError(f"expected a path or null, not {value!r}")


def _check_theme(value: Any) -> str:
    if value in THEMES:
        return value
    raise ValueError(f"expected one of {', '.join(THEMES)}, not {value!r}")


def _check_decoder(value: Any) -> str:
    if value in DECODERS:
        return value
    raise ValueError(f"expected one of {', '.join(DECODERS)}, not {value!r}")


def _check_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, not {value!r}")


_CHECKS = {
    "theme": _check_theme,
    "device": _check_device,
    "cpu_threads": _check_cpu_threads,
    "model_memory_budget_gb": _check_budget,
    "recent_files": _check_recent,
    "last_folder": _check_optional_path,
    "last_project": _check_optional_path,
    "decoder": _check_decoder,
    "compile_decoder": _check_flag,
    "int8_decoder": _check_flag,
    "batch": _check_batch,
    "cluster": _check_cluster,
}


def settings_from_dict(data: Any, *, source: str = "settings") -> Settings:
    """Settings from a parsed JSON document; every problem becomes a warning naming the field."""
    if not isinstance(data, dict):
        return _defaults_with(f"{source}: not a JSON object; using the defaults")
    problems: list[str] = []
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        problems.append(f"{source}: schema_version {version!r} is not a version number; reading it as {SCHEMA_VERSION}")
        version = SCHEMA_VERSION
    newer = version > SCHEMA_VERSION
    values: dict[str, Any] = {}
    for name in _STORED:
        if name not in data:
            continue
        try:
            values[name] = _CHECKS[name](data[name])
        except ValueError as exc:
            problems.append(f"{source}: {name}: {exc}; using the default")
            continue
        if name == "recent_files" and len(values[name]) < min(len(data[name]), MAX_RECENT_FILES):
            # One bad entry is no reason to forget the others.
            problems.append(f"{source}: recent_files: entries that are not paths, or repeated, ignored")
    if not newer:
        # A newer studio's fields are expected to be unknown here; in a file of this version an unknown
        # name is most likely a hand-edit's typo, worth pointing at.
        for name in sorted(set(data) - set(_STORED) - {"schema_version"}):
            problems.append(f"{source}: unknown setting {name!r} ignored")
    for problem in problems:
        log.warning("%s", problem)
    return Settings(**values, load_warnings=tuple(problems), read_only=newer)


def _defaults_with(problem: str) -> Settings:
    log.warning("%s", problem)
    return Settings(load_warnings=(problem,))


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    for name in _STORED:
        value = getattr(settings, name)
        data[name] = list(value) if isinstance(value, tuple) else value
    return data


def load_settings(path: Path | None = None) -> Settings:
    """The settings in `path` (default: the user's settings file); never raises for what the file holds."""
    from studio import paths

    path = Path(path) if path is not None else paths.settings_file()
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_FILE_LIMIT + 1)
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        return _defaults_with(f"{path}: cannot be read ({exc.strerror or exc}); using the defaults")
    if len(raw) > _FILE_LIMIT:
        return _defaults_with(f"{path}: too large to be a settings file; using the defaults")
    try:
        from studio.core.limits import loads_json

        data = loads_json(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _defaults_with(f"{path}: not valid JSON ({first[:120]}); using the defaults")
    return settings_from_dict(data, source=str(path))


def save_settings(settings: Settings, path: Path | None = None) -> bool:
    """Write `settings` atomically; False (and nothing written) when they came from a newer studio's file.

    Raises OSError when the file cannot be written (a read-only config folder): the caller decides
    whether that is worth telling the user.
    """
    from studio import paths
    from studio.core.atomic import atomic_write_text

    path = Path(path) if path is not None else paths.settings_file()
    if settings.read_only:
        log.info("%s: written by a newer studio; not overwritten", path)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings_to_dict(settings), indent=2) + "\n")
    return True


def update_settings(path: Path | None = None, **changes: Any) -> Settings:
    """Read, change the named fields (each checked as when reading), save, and return the result.

    A value that fails its check raises ValueError naming the field: here the caller made it, not a file.
    """
    unknown = set(changes) - set(_STORED)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    checked = {}
    for name, value in changes.items():
        try:
            checked[name] = _CHECKS[name](value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    settings = replace(load_settings(path), **checked)
    save_settings(settings, path)
    return settings


__all__ = [
    "DECODERS",
    "DEVICES",
    "MAX_RECENT_FILES",
    "SCHEMA_VERSION",
    "Settings",
    "load_settings",
    "save_settings",
    "settings_from_dict",
    "settings_to_dict",
    "update_settings",
]
