"""An argparse parser whose errors are exceptions, for commands whose contract is one line on stderr.

argparse prints the whole usage and exits by itself on a bad argument; every studio and training
command instead reports one line (and, for training commands, an error event) and exits with 2.
"""

from __future__ import annotations

import argparse


class ArgumentError(Exception):
    """A bad command line; str() is argparse's one-line message, `prog` the (sub)command it is about."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class OneLineArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise ArgumentError(message, self.prog)
