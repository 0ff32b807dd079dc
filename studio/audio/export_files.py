"""Writing an export's files safely: a temp file beside the target, published without replacing anything.

Shared by every writer of exports (studio/audio/export.py for the program, subtitles and manifest;
studio/audio/audiobook.py for M4B and MP3), so they all publish, clean up and report failures alike.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from studio.core.atomic import current_umask
from studio.core.atomic import pid_alive as _pid_alive


class ExportError(RuntimeError):
    """An export that could not be written; str() is one line naming the path."""


def _publish(tmp: Path, final: Path) -> bool:
    """Move `tmp` to `final` unless `final` exists (a dangling link counts); return False when it does."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # Filesystems without hard links (some network and FAT mounts): exclusive create, then copy.
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        try:
            with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
                shutil.copyfileobj(src, out)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
    tmp.unlink(missing_ok=True)
    return True


# errno values os.link gives where the filesystem has no hard links (EPERM: FAT and some FUSE mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK}
_TEMP_HEAD = ".export-"


def _temp_prefix() -> str:
    return f"{_TEMP_HEAD}{os.getpid()}-"


def clean_stale_export_temps(folder: Path) -> list[Path]:
    """Remove temp files and folders that crashed exports left in `folder` (their process is gone)."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(_TEMP_HEAD) or not name.endswith(".tmp"):
            continue
        pid = name[len(_TEMP_HEAD):].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def _write_tmp(folder: Path, writer) -> Path:
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(), suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        # mkstemp makes the file 0600; an export is the user's document and gets their usual mode.
        os.chmod(name, 0o666 & ~current_umask())
        writer(Path(name))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _failure_reason(exc: BaseException, folder: Path) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    # libsndfile reports a full disk as a generic write error; the free space tells what happened.
    try:
        stats = os.statvfs(folder)
        if stats.f_bavail * stats.f_frsize < 1024 * 1024 or (stats.f_files and stats.f_favail == 0):
            return os.strerror(errno.ENOSPC)
    except (OSError, AttributeError):
        pass
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # libsndfile repeats the (temporary) path: "Error opening '/x/.export-1-ab.tmp': System error."
    return text.split("': ", 1)[1].rstrip(".") if "': " in text else text


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass
