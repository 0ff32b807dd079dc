"""Crash-safe file writes.

A save either leaves the old file in place or the complete new one, never a torn mix: the data goes to
a temporary file in the same folder (same filesystem, so the rename is atomic), is flushed and fsynced,
and then renamed over the target. The folder is fsynced too so the rename itself survives a power cut.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    # Not every platform can open a directory for fsync (Windows cannot); the rename is still atomic.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_TEMP_SUFFIX = ".tmp"
# A temp file of the old naming (no pid) older than this is a crashed save's leftover.
_OLD_TEMP_AGE_S = 3600.0


def _temp_prefix(name: str) -> str:
    # The writer's pid is in the name, so a later save can tell a crashed writer's leftovers (pid gone)
    # from another live process's save in progress (pid alive).
    return f".{name}.{os.getpid()}."


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but belongs to someone else
    return True


def clean_stale_temps(path: Path) -> list[Path]:
    """Remove temp files that crashed writes of `path` left in its folder; returns what was removed.

    Only names this module makes for `path` are considered (`.NAME.PID.XXXX.tmp`), and only those
    whose writer is gone.
    """
    path = Path(path)
    head = f".{path.name}."
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        name = sibling.name
        if not (name.startswith(head) and name.endswith(_TEMP_SUFFIX)) or not sibling.is_file():
            continue
        middle = name[len(head) : -len(_TEMP_SUFFIX)]
        pid_text = middle.split(".", 1)[0]
        try:
            if pid_text.isdigit():
                if pid_alive(int(pid_text)):
                    continue
            elif time.time() - sibling.stat().st_mtime < _OLD_TEMP_AGE_S:
                continue
            sibling.unlink()
            removed.append(sibling)
        except OSError:
            continue
    return removed


def _is_read_only(st: os.stat_result) -> bool:
    # Judged by the mode bits, not os.access: root may write anything, but a file the user marked
    # read-only is a statement of intent that a save must respect.
    return not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def _copy_backup(path: Path, backup: Path) -> None:
    bfd, btmp_name = tempfile.mkstemp(prefix=_temp_prefix(backup.name), suffix=_TEMP_SUFFIX, dir=path.parent)
    os.close(bfd)
    try:
        shutil.copy2(path, btmp_name)
        os.replace(btmp_name, backup)
    except BaseException:
        Path(btmp_name).unlink(missing_ok=True)
        raise


def _write_in_place(path: Path, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(
    path: Path, data: bytes, *, backup_suffix: str | None = None, clean_stale: bool = False
) -> None:
    """Write `data` to `path` atomically.

    With `backup_suffix` (e.g. ".bak"), an existing `path` is first copied to `path + suffix`, itself
    atomically, so the previous version survives the save. With `clean_stale`, temp files that
    crashed saves of the same file left behind are removed first.

    A symbolic link is followed: its target gets the new content and the link stays a link. A file
    without any write permission bit is refused (PermissionError "the file is read-only"). A file with
    several hard links is rewritten in place after its backup, so every name keeps seeing it (an
    atomic rename would detach this name from the others).
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    folder = path.parent
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and _is_read_only(st):
        raise PermissionError(errno.EACCES, "the file is read-only", str(path))
    if clean_stale:
        clean_stale_temps(path)
        if backup_suffix:
            clean_stale_temps(path.with_name(path.name + backup_suffix))
    if st is not None and st.st_nlink > 1 and stat.S_ISREG(st.st_mode):
        if backup_suffix:
            _copy_backup(path, path.with_name(path.name + backup_suffix))
        _write_in_place(path, data)
        return
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=_TEMP_SUFFIX, dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if backup_suffix and st is not None:
            _copy_backup(path, path.with_name(path.name + backup_suffix))
        # mkstemp creates the file 0600; a saved document should get the user's normal permissions.
        if st is not None:
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def current_umask() -> int:
    # os.umask can only be read by setting it, which briefly changes it for every thread; Linux
    # reports it without that race.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_text(
    path: Path, text: str, *, backup_suffix: str | None = None, clean_stale: bool = False
) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), backup_suffix=backup_suffix, clean_stale=clean_stale)
