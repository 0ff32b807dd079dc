"""Crash-safe file writes.

A save either leaves the old file in place or the complete new one, never a torn mix: the data goes to
a temporary file in the same folder (same filesystem, so the rename is atomic), is flushed and fsynced,
and then renamed over the target. The folder is fsynced too so the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
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


def atomic_write_bytes(path: Path, data: bytes, *, backup_suffix: str | None = None) -> None:
    """Write `data` to `path` atomically.

    With `backup_suffix` (e.g. ".bak"), an existing `path` is first copied to `path + suffix`, itself
    atomically, so the previous version survives the save.
    """
    path = Path(path)
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if backup_suffix and path.exists():
            backup = path.with_name(path.name + backup_suffix)
            bfd, btmp_name = tempfile.mkstemp(prefix=f".{backup.name}.", suffix=".tmp", dir=folder)
            os.close(bfd)
            try:
                shutil.copy2(path, btmp_name)
                os.replace(btmp_name, backup)
            except BaseException:
                Path(btmp_name).unlink(missing_ok=True)
                raise
        # mkstemp creates the file 0600; a saved document should get the user's normal permissions.
        if path.exists():
            shutil.copymode(path, tmp)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)


def atomic_write_text(path: Path, text: str, *, backup_suffix: str | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), backup_suffix=backup_suffix)
