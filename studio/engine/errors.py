"""The engine's user-facing error types, in a module of their own so every engine module can raise them."""

from __future__ import annotations


class EngineError(RuntimeError):
    """A user-facing engine failure; str() is one line."""


class ModelError(EngineError):
    """A model-manager failure a user can cause or fix; str() is one line."""


class DownloadError(ModelError):
    """A download that failed (network, server, disk, checksum); str() is one line."""


class DownloadCancelled(Exception):  # noqa: N818 - a cancel is not an error, so no "Error" suffix
    """The cancel event was set; everything fetched so far is kept for a resume."""
