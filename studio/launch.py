"""How to start another copy of the studio: from a source checkout, an installed package or a frozen build.

A frozen build (PyInstaller) has no ``python -m``: its executable *is* the interpreter with the studio
baked in. Everything that starts a child process of ours (training commands, the self-test's Qt check)
builds its command line here, so a frozen build and a checkout take the same code path; the only
difference is the program prefix.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

# The only modules `--run-training` will run: the wizard's steps, and accelerate's launcher, which
# starts one copy of a step per GPU. Anything else is refused rather than run as arbitrary code.
TRAINING_ENTRY_POINTS = ("training.validate", "training.prepare", "training.sft", "accelerate.commands.launch")


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def frozen_console_program() -> str:
    """The frozen build's executable that has a stdout.

    On Windows the studio's main executable is a windowed program, which has no stdout at all; the
    build puts a console twin, ``qwen-tts-studio-cli.exe``, beside it for the command line and for
    child processes whose output is read (training steps speak JSON lines on stdout).
    """
    program = Path(sys.executable)
    if sys.platform == "win32" and not program.stem.endswith("-cli"):
        twin = program.with_name(f"{program.stem}-cli{program.suffix}")
        if twin.is_file():
            return str(twin)
    return str(program)


def studio_command(*args: str) -> list[str]:
    """The command line (program first) that runs ``qwen-tts-studio ARGS``."""
    if is_frozen():
        return [frozen_console_program(), *args]
    return [sys.executable, "-m", "studio", *args]


def run_training_command(module: str, args: Sequence[str] = ()) -> list[str]:
    """The command line that runs a training entry point through ``--run-training``."""
    return studio_command("--run-training", module, *[str(a) for a in args])
