"""`python -m studio` / `qwen-tts-studio`: the GUI, and subcommands for scripting and checks.

Every user-facing failure ends as one line on stderr and exit code 2; a traceback is a bug. Heavy
imports (Qt, torch) happen inside the subcommand that needs them, so `parse` and `check` start fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio import __version__
from studio.cli.book import add_import_parser
from studio.cli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError
from studio.cli.models import add_models_parser
from studio.cli.render import add_render_parser
from studio.cli.script import _cmd_check, _cmd_parse
from studio.cli.voices import add_voices_parser
from studio.core.cli_args import ArgumentError, OneLineArgumentParser


def _build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="qwen-tts-studio",
        usage="%(prog)s [PROJECT]  |  %(prog)s COMMAND ...",
        description=(
            "Qwen3-TTS Studio. With no COMMAND, opens the editor (with PROJECT if given); "
            "--screenshot PNG saves a picture of the window and exits; --self-test checks this installation "
            "(Qt, torch, a tiny model rendering a tagged line, PortAudio) and prints one JSON object."
        ),
    )
    parser.add_argument("--version", action="version", version=f"qwen-tts-studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser)

    parse = commands.add_parser(
        "parse", prog="qwen-tts-studio parse", help="parse a tagged script and print its items as JSON"
    )
    parse.add_argument("file", help="script file, or - for standard input")
    parse.set_defaults(handler=_cmd_parse)

    check = commands.add_parser("check", prog="qwen-tts-studio check", help="validate a .qtts project file")
    check.add_argument("project", help="the .qtts file")
    check.set_defaults(handler=_cmd_check)

    add_render_parser(commands)
    add_import_parser(commands)
    add_voices_parser(commands)

    add_models_parser(commands)
    return parser


SUBCOMMANDS = ("parse", "check", "render", "import", "voices", "models")


def _names_subcommand(argv: list[str]) -> bool:
    """Whether the first positional argument is a subcommand rather than the GUI's PROJECT."""
    positionals = [arg for arg in argv if not arg.startswith("-")]
    return bool(positionals) and positionals[0] in SUBCOMMANDS


def _run_training(argv: list[str]) -> int:
    """`--run-training MODULE ARGS...`: run a training step in this process, as `python -m MODULE` would.

    This is how the wizard starts its subprocesses, in a checkout and in a frozen build alike (see
    studio/launch.py). The module runs with its own argv and its own exit code.
    """
    import runpy

    from studio.launch import TRAINING_ENTRY_POINTS

    if not argv or argv[0] not in TRAINING_ENTRY_POINTS:
        given = repr(argv[0]) if argv else "nothing"
        print(
            f"qwen-tts-studio: --run-training takes one of {', '.join(TRAINING_ENTRY_POINTS)}, not {given}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    module, rest = argv[0], argv[1:]
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--run-training"]:
        return _run_training(argv[1:])
    parser = _build_parser()
    try:
        if _names_subcommand(argv):
            args = parser.parse_args(argv)
            return args.handler(args)
        gui = OneLineArgumentParser(prog="qwen-tts-studio", add_help=False)
        gui.add_argument("project", nargs="?")
        gui.add_argument("--screenshot", metavar="PNG")
        gui.add_argument("--self-test", action="store_true")
        gui.add_argument("--self-test-qt", metavar="WAV", help=argparse.SUPPRESS)
        if any(a in ("-h", "--help", "--version") for a in argv):
            parser.parse_args(argv)  # prints help or version and exits 0
        args = gui.parse_args(argv)
        if args.self_test or args.self_test_qt:
            from studio.selftest import run_qt_check, run_self_test

            return run_qt_check(Path(args.self_test_qt)) if args.self_test_qt else run_self_test()
        from studio.ui.app import NoDisplayError, StartupError, run_gui, take_screenshot

        project = Path(args.project) if args.project else None
        try:
            if args.screenshot:
                take_screenshot(project, Path(args.screenshot))
                return EXIT_OK
            return run_gui(project=project)
        except (NoDisplayError, StartupError) as exc:
            raise CliError(f"qwen-tts-studio: {exc}") from None
    except ArgumentError as exc:
        print(f"{exc.prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `python -m studio parse x | head` closes the pipe early; that is not an error of ours.
        return EXIT_OK
