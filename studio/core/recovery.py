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

from studio.core.atomic import atomic_write_text, pid_alive
from studio.core.limits import PROJECT_LIMIT, loads_json, read_limited
from studio.core.project import DiskVersion, Project, ProjectError, project_from_json, project_to_json

RECOVERY_SUFFIX = ".qtts-recovery"


@dataclass(frozen=True)
class Recovery:
    path: Path  # the recovery file
    project: Project
    project_path: Path | None  # the file the work belongs to, None for an unsaved new project
    saved_at: float  # epoch seconds
    base: DiskVersion | None = None  # the version of project_path the work started from, if known


def recovery_path(folder: Path, project_path: Path | None, session: str) -> Path:
    """One recovery file per window (`session`) and project file.

    Keyed on the window too: two windows with the same project open each keep their own unsaved
    work, so one's autosave never overwrites the other's and one's save never deletes the other's.
    """
    project = str(Path(project_path).resolve()) if project_path else "untitled"
    key = f"{project}\0{session}"
    return Path(folder) / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:16] + RECOVERY_SUFFIX)


def write_recovery(
    path: Path, project: Project, project_path: Path | None, base: DiskVersion | None = None
) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "project_path": str(project_path) if project_path else None,
        "base_sha256": base.sha256 if base is not None else None,
        "saved_at": time.time(),
        "pid": os.getpid(),
        "project": project_to_json(project),
    }
    atomic_write_text(Path(path), json.dumps(doc, ensure_ascii=False), clean_stale=True)


def _process_alive(pid: int) -> bool:
    # This process's own files are never a live autosave of another window: a window that is still
    # open here would not ask for recoveries.
    return pid != os.getpid() and pid_alive(pid)


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
            doc = loads_json(read_limited(path, PROJECT_LIMIT + 2**20, what="recovery file").decode("utf-8"))
            if _process_alive(int(doc.get("pid", 0))):
                continue
            project = project_from_json(doc["project"])
            target = Path(doc["project_path"]) if doc.get("project_path") else None
            base = doc.get("base_sha256")
            version = DiskVersion(base) if isinstance(base, str) else None
            out.append(Recovery(path, project, target, float(doc["saved_at"]), version))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ProjectError):
            continue
    return sorted(out, key=lambda r: r.saved_at, reverse=True)


def discard_recovery(path: Path) -> None:
    Path(path).unlink(missing_ok=True)
