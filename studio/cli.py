"""`python -m studio` / `qwen-tts-studio`: the GUI, and subcommands for scripting and checks.

Every user-facing failure ends as one line on stderr and exit code 2; a traceback is a bug. Heavy
imports (Qt, torch) happen inside the subcommand that needs them, so `parse` and `check` start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio import __version__

EXIT_OK = 0
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


class _ArgumentParser(argparse.ArgumentParser):
    # argparse prints the full usage on errors; one line is what scripts and people can read.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message}")


def _read_script_source(source: str) -> tuple[str, str]:
    """Return (display name, text) for a script path or '-' (stdin)."""
    from studio.core.tags import decode_script_bytes

    if source == "-":
        name, data = "<stdin>", sys.stdin.buffer.read()
    else:
        path = Path(source)
        name = str(path)
        try:
            data = path.read_bytes()
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
    voices = {item.voice for item in items if isinstance(item, SpeechItem) and item.voice is not None}
    unknown = sorted(voices - set(project.cast)) if project.cast else []
    if unknown:
        first = next(i for i in items if isinstance(i, SpeechItem) and i.voice == unknown[0])
        raise CliError(
            f"{args.project}: field 'script': line {first.line}: voice {unknown[0]!r} is not in the cast"
        )
    speech = sum(1 for item in items if isinstance(item, SpeechItem))
    lines = project.script.count("\n") + 1 if project.script else 0
    print(f"{args.project}: ok ({lines} lines, {speech} speech segments, {len(items) - speech} pauses)")
    return EXIT_OK


def _build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="qwen-tts-studio",
        usage="%(prog)s [PROJECT]  |  %(prog)s COMMAND ...",
        description="Qwen3-TTS Studio. With no COMMAND, opens the editor (with PROJECT if given).",
    )
    parser.add_argument("--version", action="version", version=f"qwen-tts-studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)

    parse = commands.add_parser(
        "parse", prog="qwen-tts-studio parse", help="parse a tagged script and print its items as JSON"
    )
    parse.add_argument("file", help="script file, or - for standard input")
    parse.set_defaults(handler=_cmd_parse)

    check = commands.add_parser("check", prog="qwen-tts-studio check", help="validate a .qtts project file")
    check.add_argument("project", help="the .qtts file")
    check.set_defaults(handler=_cmd_check)
    return parser


SUBCOMMANDS = ("parse", "check")


def _names_subcommand(argv: list[str]) -> bool:
    """Whether the first positional argument is a subcommand rather than the GUI's PROJECT."""
    positionals = [arg for arg in argv if not arg.startswith("-")]
    return bool(positionals) and positionals[0] in SUBCOMMANDS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    try:
        if _names_subcommand(argv):
            args = parser.parse_args(argv)
            return args.handler(args)
        gui = _ArgumentParser(prog="qwen-tts-studio", add_help=False)
        gui.add_argument("project", nargs="?")
        if any(a in ("-h", "--help", "--version") for a in argv):
            parser.parse_args(argv)  # prints help or version and exits 0
        args = gui.parse_args(argv)
        from studio.ui.app import NoDisplayError, run_gui

        try:
            return run_gui(project=Path(args.project) if args.project else None)
        except NoDisplayError as exc:
            raise CliError(f"qwen-tts-studio: {exc}") from None
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `python -m studio parse x | head` closes the pipe early; that is not an error of ours.
        return EXIT_OK
