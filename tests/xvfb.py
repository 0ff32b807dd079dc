"""A private Xvfb server for tests that need the real xcb platform (what users' desktops run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager


@contextmanager
def xvfb_display(width: int = 1280, height: int = 800):
    """Start Xvfb on a free display number and yield the DISPLAY string (":N")."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed: run the README's test command, which installs it")
    read_fd, write_fd = os.pipe()
    # -displayfd lets the server pick a free display and tell us which one, so parallel test runs
    # never collide on a hard-coded number.
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)
