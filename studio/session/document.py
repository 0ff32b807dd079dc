"""The document: a project, its script model, the file it lives in, and its recovery copy. No Qt.

The window asks the questions (save over a changed file? recover?); the document does the work, with
the guarantees of studio.core (atomic saves, a save over a file someone else changed is refused unless
the caller says to overwrite, recovery copies keyed per window so two windows never share one).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from studio import paths
from studio.core.project import DiskVersion, Project, load_project_versioned, save_project
from studio.core.recovery import Recovery, discard_recovery, find_recoveries, recovery_path, write_recovery
from studio.core.script import ScriptModel


class Document:
    def __init__(self, recovery_dir: Path | None = None) -> None:
        self.project = Project()
        self.path: Path | None = None
        # What the file held when it was read: a save checks it is still there, so a save from another
        # window or program in between is never silently replaced.
        self.disk_version: DiskVersion | None = None
        self.model = ScriptModel("")
        self.session = uuid.uuid4().hex[:8]
        self._recovery_dir = recovery_dir

    @property
    def recovery_dir(self) -> Path:
        return self._recovery_dir or paths.recovery_dir()

    @property
    def name(self) -> str:
        return self.path.name if self.path else "Untitled"

    def replace(self, project: Project, path: Path | None, version: DiskVersion | None = None) -> ScriptModel:
        """Show another project (new, opened or recovered); this window's old recovery copy goes."""
        self.discard_recovery()
        self.project = project
        self.path = Path(path) if path is not None else None
        self.disk_version = version
        self.model = ScriptModel(project.script, project.lines)
        return self.model

    def open(self, path: Path) -> ScriptModel:
        """Read `path` (raises ProjectError naming the file and field); the current project stays on failure."""
        project, version = load_project_versioned(Path(path))
        return self.replace(project, Path(path), version)

    def sync(self) -> Project:
        """Copy the script model into the project record (before saving, rendering or autosaving)."""
        self.project.script = self.model.text
        self.project.lines = self.model.line_states()
        return self.project

    def save(self, path: Path, *, overwrite_changes: bool = False) -> None:
        """Save to `path`. Over the file this document came from, a version changed on disk meanwhile
        raises ProjectConflictError unless `overwrite_changes` (the old one is kept as .bak)."""
        path = Path(path)
        same_file = self.path is not None and path == self.path
        expect = self.disk_version if same_file and not overwrite_changes else None
        self.disk_version = save_project(self.sync(), path, expect=expect)
        self.discard_recovery()
        self.path = path

    # --- recovery --------------------------------------------------------------------------------

    def recovery_path(self) -> Path:
        return recovery_path(self.recovery_dir, self.path, self.session)

    def autosave(self) -> Path:
        """Write the unsaved work to this window's recovery copy (never over the project file)."""
        path = self.recovery_path()
        write_recovery(path, self.sync(), self.path, self.disk_version)
        return path

    def discard_recovery(self) -> None:
        discard_recovery(self.recovery_path())

    def recoveries(self) -> list[Recovery]:
        return find_recoveries(self.recovery_dir)
