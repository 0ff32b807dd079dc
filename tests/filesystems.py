"""Real filesystems with real limits for fault tests: a tmpfs of a few KB (a full disk) and a read-only one.

Tests run as root here and in CI, where chmod does not stop a write; a read-only mount does, and a small
tmpfs fills up for real (ENOSPC from the kernel, not a patched function). Mounting needs root (or
CAP_SYS_ADMIN); where it is refused the test is skipped with the reason, never passed.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "64k", *, inodes: int | None = None) -> Iterator[Path]:
    """`folder` as a tmpfs of `size` bytes (mount's units: 64k, 2m), unmounted afterwards.

    With `inodes`, the filesystem also runs out of room after that many files, folders and links
    (ENOSPC, as on a full disk): a way to make the N-th file of a multi-file write fail for real.
    """
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (f",nr_inodes={inodes}" if inodes is not None else "")
    result = _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder))
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); run the tests as root")
    try:
        yield folder
    finally:
        _run("umount", "-l", str(folder))


def fill(folder: Path, *, leave: int = 0) -> None:
    """Fill the filesystem of `folder` until at most `leave` bytes are free."""
    import os

    filler = folder / "filler.bin"
    with open(filler, "wb") as handle:
        chunk = b"\0" * 4096
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave:
                break
            try:
                handle.write(chunk[: max(1, min(len(chunk), free - leave))])
                handle.flush()
            except OSError:
                break


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Make `folder` (which must be a mount made by small_disk) read-only until the block ends."""
    result = _run("mount", "-o", "remount,ro", str(folder))
    if result.returncode != 0:
        pytest.skip(f"cannot remount read-only here ({result.stderr.strip()})")
    try:
        yield folder
    finally:
        _run("mount", "-o", "remount,rw", str(folder))
