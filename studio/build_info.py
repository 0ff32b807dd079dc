"""What build this is: the frozen bundle's build-info.json, for the About box and the self-test.

A module of its own below both the window and the self-test, so neither imports the other for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from studio.launch import is_frozen

BUILD_INFO_FILE = "build-info.json"


def build_info() -> dict[str, Any] | None:
    """The frozen bundle's build-info.json (written by packaging/build.sh), or None outside a bundle."""
    if not is_frozen():
        return None
    path = Path(sys.executable).resolve().parent / BUILD_INFO_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"error": f"{path}: {exc}"}
