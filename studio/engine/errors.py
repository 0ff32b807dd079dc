"""The engine's one user-facing error type, in a module of its own so every engine module can raise it."""

from __future__ import annotations


class EngineError(RuntimeError):
    """A user-facing engine failure; str() is one line."""
