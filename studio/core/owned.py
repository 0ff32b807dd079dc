"""A ledger of the files a command created in a folder it shares with the user.

A command that writes into a folder the user chose (a fine-tuning run folder, which may well be the
dataset's own folder) must never delete or overwrite a file it did not make: a recording that happens to
sit in `RUN_DIR/audio/` is the user's. So every file such a command creates is first written down in a
ledger beside it, and only files in the ledger are ever replaced or cleaned up. The name goes into the
ledger *before* the file is created, so a crash between the two leaves at worst a ledger entry for a
file that does not exist, never an unlisted file of ours that a later run would refuse to touch.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from studio.core.limits import read_limited

LEDGER_NAME = ".qwen-tts-studio-files"
# A ledger lists one run folder's outputs: tens of thousands of clips at most.
_LEDGER_LIMIT = 16 * 1024 * 1024


class NotOwnedError(Exception):
    """A file is in the way that this command did not create; str() names it."""


def _check_relative(rel: str) -> str:
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(part in ("", ".", "..") for part in path.parts):
        raise ValueError(f"not a plain relative path: {rel!r}")
    return path.as_posix()


class FileLedger:
    """The files a command created under `folder`, as relative POSIX paths."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LEDGER_NAME
        self.owned: set[str] = set()
        try:
            text = read_limited(self.path, _LEDGER_LIMIT, what="file ledger").decode("utf-8", "replace")
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            try:
                self.owned.add(_check_relative(line.strip()))
            except ValueError:
                continue  # a damaged line names nothing we can safely claim

    def claim(self, rel: str) -> Path:
        """Record `rel` as ours before it is written; NotOwnedError if a file of someone else's is there."""
        rel = _check_relative(rel)
        target = self.folder / rel
        if rel not in self.owned:
            if os.path.lexists(target):
                raise NotOwnedError(f"{target}: exists and was not written by this command")
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(rel + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.owned.add(rel)
        return target

    def remove_except(self, keep: set[str], *, under: str) -> list[str]:
        """Delete the ledger's files below `under` that are not in `keep`; returns what was removed.

        Only regular files are removed (a folder or a link in the ledger's place is left alone), and
        the ledger is rewritten without them.
        """
        prefix = _check_relative(under) + "/"
        keep = {_check_relative(k) for k in keep}
        removed = []
        for rel in sorted(self.owned):
            if not rel.startswith(prefix) or rel in keep:
                continue
            target = self.folder / rel
            if target.is_file() and not target.is_symlink():
                target.unlink()
            removed.append(rel)
        if removed:
            self.owned.difference_update(removed)
            self._rewrite()
        return removed

    def _rewrite(self) -> None:
        from studio.core.atomic import atomic_write_text

        atomic_write_text(self.path, "".join(f"{rel}\n" for rel in sorted(self.owned)))
