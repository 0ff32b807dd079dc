"""`parse` and `check`: what a script or project holds, without loading any model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.cli.errors import EXIT_OK, CliError


def _read_script_source(source: str) -> tuple[str, str]:
    """Return (display name, text) for a script path or '-' (stdin)."""
    from studio.core.limits import SCRIPT_LIMIT, TooLargeError, read_limited, read_stream_limited
    from studio.core.tags import decode_script_bytes

    if source == "-":
        name = "<stdin>"
        try:
            data = read_stream_limited(sys.stdin.buffer, SCRIPT_LIMIT, name=name, what="script")
        except TooLargeError as exc:
            raise CliError(str(exc)) from None
    else:
        path = Path(source)
        name = str(path)
        try:
            data = read_limited(path, SCRIPT_LIMIT, what="script")
        except TooLargeError as exc:
            raise CliError(str(exc)) from None
        except FileNotFoundError:
            raise CliError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise CliError(f"{name}: is a folder, not a script file") from None
        except OSError as exc:
            raise CliError(f"{name}: cannot be read ({exc.strerror})") from None
    from studio.core.tags import ScriptError

    try:
        return name, decode_script_bytes(data)
    except ScriptError as exc:
        raise CliError(f"{name}: {exc}") from None


def _cmd_parse(args: argparse.Namespace) -> int:
    from studio.core.tags import ScriptError, parse_script

    name, text = _read_script_source(args.file)
    try:
        items = parse_script(text)
    except ScriptError as exc:
        raise CliError(f"{name}: {exc}") from None
    json.dump({"items": [item.to_json() for item in items]}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from studio.core.plan import first_unknown_voice
    from studio.core.project import ProjectError, load_project
    from studio.core.tags import ScriptError, SpeechItem, parse_script

    try:
        project = load_project(Path(args.project))
    except ProjectError as exc:
        raise CliError(str(exc)) from None
    try:
        items = parse_script(project.script)
    except ScriptError as exc:
        raise CliError(f"{args.project}: field 'script': {exc}") from None
    unknown = first_unknown_voice(items, project.cast)
    if unknown is not None:
        raise CliError(
            f"{args.project}: field 'script': line {unknown.line}: voice {unknown.voice!r} is not in the cast"
        )
    speech = sum(1 for item in items if isinstance(item, SpeechItem))
    lines = project.script.count("\n") + 1 if project.script else 0
    print(f"{args.project}: ok ({lines} lines, {speech} speech segments, {len(items) - speech} pauses)")
    return EXIT_OK
