"""What every command shares: the one-line error and the exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the work ran and some of it failed (e.g. segments that did not render)
EXIT_USAGE = 2  # bad input: one line on stderr, nothing done
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""
