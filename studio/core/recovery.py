"""Autosave recovery files: unsaved work survives a crash.

While a project has unsaved changes the window writes it, every 30 seconds, to a recovery file in the
user data folder (never over the project itself: the user decides when their file changes). A clean
save or a deliberate close removes the recovery file; one that is still there at the next start means
the studio did not shut down cleanly, and the user is offered its content.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from studio.core.atomic import atomic_write_text
from studio.core.project import Project, ProjectError, project_from_json, project_to_json

RECOVERY_SUFFIX = ".qtts-recovery"


@dataclass(frozen=True)
class Recovery:
    path: Path  # the recovery file
    project: Project
    project_path: Path | None  # the file the work belongs to, None for an unsaved new project
    saved_at: float  # epoch seconds


def recovery_path(folder: Path, project_path: Path | None, session: str) -> Path:
    """One recovery file per project file; unsaved new projects get one per running session."""
    key = str(Path(project_path).resolve()) if project_path else f"untitled-{session}"
    return Path(folder) / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:16] + RECOVERY_SUFFIX)


def write_recovery(path: Path, project: Project, project_path: Path | None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "project_path": str(project_path) if project_path else None,
        "saved_at": time.time(),
        "pid": os.getpid(),
        "project": project_to_json(project),
    }
    atomic_write_text(Path(path), json.dumps(doc, ensure_ascii=False))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def find_recoveries(folder: Path) -> list[Recovery]:
    """Readable recovery files of studios that are no longer running, newest first.

    Files of another studio window that is still running are its live autosaves, not crash leftovers.
    Unreadable files are skipped, never deleted.
    """
    out: list[Recovery] = []
    folder = Path(folder)
    if not folder.is_dir():
        return out
    for path in folder.glob(f"*{RECOVERY_SUFFIX}"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if _process_alive(int(doc.get("pid", 0))):
                continue
            project = project_from_json(doc["project"])
            target = Path(doc["project_path"]) if doc.get("project_path") else None
            out.append(Recovery(path, project, target, float(doc["saved_at"])))
        except (OSError, ValueError, KeyError, TypeError, ProjectError):
            continue
    return sorted(out, key=lambda r: r.saved_at, reverse=True)


def discard_recovery(path: Path) -> None:
    Path(path).unlink(missing_ok=True)
