"""Folders that really refuse writes, for export tests: a read-only tmpfs and a tmpfs of a few KB.

Tests run as root, where chmod 0555 does not stop a write; a read-only mount does (EROFS from the
kernel), and a small tmpfs really fills up (ENOSPC). Mounting needs root or CAP_SYS_ADMIN. Where it is
refused, `read_only_folder` falls back to making `os.open` fail with EROFS for paths inside the folder
(the call every file creation goes through), and `full_disk_export` to running the export in a
subprocess under RLIMIT_FSIZE with SIGXFSZ ignored, so the write fails with EFBIG; both say which they
used, so a test can expect the matching reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _mount(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


@contextlib.contextmanager
def read_only_folder(folder: Path, monkeypatch) -> Iterator[str]:
    """Make `folder` read-only for the block; yields "mount" or "os.open" (the fallback used)."""
    if _mount(folder, "ro,size=64k"):
        try:
            yield "mount"
        finally:
            _unmount(folder)
        return
    real_open = os.open
    inside = str(folder.resolve()) + os.sep

    def refusing_open(path, flags, *args, **kwargs):
        if str(Path(path).resolve()).startswith(inside) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refusing_open)
        yield "os.open"


_EXPORT_UNDER_FSIZE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError
try:
    VoiceLibrary(sys.argv[1]).export(sys.argv[2], sys.argv[3])
except VoiceLibraryError as exc:
    print(exc)
    sys.exit(3)
"""


@dataclass
class FailedExport:
    message: str  # the VoiceLibraryError's text
    left: list[str]  # what the export left in the folder
    how: str  # "mount" (a 64 KB tmpfs: ENOSPC) or "rlimit" (RLIMIT_FSIZE: EFBIG)


def full_disk_export(library, profile_id: str, folder: Path) -> FailedExport:
    """Export into a 64 KB tmpfs at `folder`, or under a 16 KB file-size limit where mounting is refused."""
    from studio.core.voice_library import VoiceLibraryError

    target = folder / "out.qvoice"
    if _mount(folder, "size=64k"):
        try:
            try:
                library.export(profile_id, target)
            except VoiceLibraryError as exc:
                return FailedExport(str(exc), sorted(os.listdir(folder)), "mount")
            raise AssertionError("the export to a full disk did not fail")
        finally:
            _unmount(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-c", _EXPORT_UNDER_FSIZE, str(library.folder), profile_id, str(target)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 3, result.stderr
    return FailedExport(result.stdout.strip(), sorted(os.listdir(folder)), "rlimit")
