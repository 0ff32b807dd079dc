"""The training commands' arguments as the wizard builds them, and the names it suggests (no Qt)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from studio import paths
from training.run_folder import RunFolder

SPEAKER_RE = r"[a-z0-9][a-z0-9_-]{0,47}"


def default_runs_root() -> Path:
    return paths.runs_dir()


def new_run_dir(root: Path) -> Path:
    return Path(root) / datetime.now().strftime("%Y%m%d-%H%M%S")


def lr_text(value: float) -> str:
    mantissa, exponent = f"{value:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def speaker_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:48]
    return slug if slug and re.fullmatch(SPEAKER_RE, slug) else "my-voice"


def command_text(command: list[str]) -> str:
    """A command line the user can paste into their shell."""
    if sys.platform == "win32":  # pragma: no cover
        return subprocess.list2cmdline(command)
    return shlex.join(command)


def validate_args(dataset: Path, run_dir: Path) -> list[str]:
    return [str(dataset), "--out", str(run_dir)]


def prepare_args(run_dir: Path, config: dict[str, Any]) -> list[str]:
    args = [str(run_dir), "--tokenizer", str(config.get("base_model", "")), "--device", config.get("device") or "auto"]
    if config.get("cpu_threads"):
        args += ["--cpu-threads", str(config["cpu_threads"])]
    return args


def sft_args(run_dir: Path) -> list[str]:
    return ["--config", str(RunFolder.at(run_dir).config)]
