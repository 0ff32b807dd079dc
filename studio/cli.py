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
from studio.core.cli_args import ArgumentError, OneLineArgumentParser

EXIT_OK = 0
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


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


def _default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("qwen-tts-studio", appauthor=False)) / "renders"


def _profile_voice(value: str):
    """--voice: a .qvoice file, a profile folder, or a profile id or name in the voice library."""
    import atexit
    import shutil
    import tempfile

    from studio.core.voices import VoiceLibraryError, default_voice_library, read_profile, unpack_profile_file

    path = Path(value)
    try:
        if path.is_file():
            # Unpacked for this run only, with the library's own checks (names, sizes, links); the
            # library is left as it is.
            folder = Path(tempfile.mkdtemp(prefix="qvoice-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            return unpack_profile_file(path, folder)
        if path.is_dir():
            return read_profile(path)
        return default_voice_library().get(value)
    except VoiceLibraryError as exc:
        raise CliError(str(exc)) from None


def _voice_from_args(args: argparse.Namespace):
    from studio.core.voice import VoiceError, VoiceSpec

    if args.voice is not None:
        return _profile_voice(args.voice).voice
    try:
        if args.voice_design is not None:
            return VoiceSpec.design(args.voice_design)
        if args.speaker is not None:
            return VoiceSpec.preset(args.speaker)
        if args.voice_clone is not None:
            from studio.core.reference_clip import check_reference_clip

            clip = Path(args.voice_clone)
            if not clip.is_file():
                raise CliError(f"{clip}: no such reference clip (--voice-clone)")
            # Checked before any model loads; what is usable but doubtful is said once, here.
            for warning in check_reference_clip(clip).warnings:
                print(f"warning: {warning}", file=sys.stderr)
            return VoiceSpec.clone(clip, args.ref_text, x_vector_only=args.x_vector_only)
    except VoiceError as exc:
        raise CliError(f"qwen-tts-studio render: {exc}") from None
    return None


def _voices_for(project, cli_voice, segments, source: Path) -> dict:
    """Cast name -> VoiceSpec for every voice the segments use; the command-line voice is the default."""
    from studio.core.voices import CastError, default_voice_library, resolve_cast

    try:
        voices = resolve_cast(project.cast, project.render.voice, default_voice_library())
    except CastError as exc:
        raise CliError(f"{source}: {exc}") from None
    default = cli_voice or voices.get(None)
    voices[None] = default
    if project.render.voice is not None:
        voices[project.render.voice] = default
    for segment in segments:
        if segment.kind == "speech" and voices.get(segment.voice) is None:
            if segment.voice is None:
                raise CliError(
                    "qwen-tts-studio render: no voice: pass --voice PROFILE, --voice-design TEXT, --speaker NAME "
                    "or --voice-clone WAV"
                )
            raise CliError(f"{source}: line {segment.line}: voice {segment.voice!r} is not in the project's cast")
    return voices


def _cmd_render(args: argparse.Namespace) -> int:
    import threading

    from studio.core.cache import RenderCache
    from studio.core.project import GenerationParams
    from studio.engine.job import InputError, export_results, plan_project, read_input
    from studio.engine.loader import EngineError, load_model
    from studio.engine.render import FAILED, RenderCallbacks, RenderOptions, render_by_model
    from studio.engine.synth import Synthesizer

    source = Path(args.input)
    try:
        project = read_input(source)
        if args.language is not None:
            project.render.language = args.language
        if args.seed is not None:
            project.render.seed = args.seed
        from studio.core.voices import default_voice_library

        segments = plan_project(project, source=str(source), library=default_voice_library())
    except InputError as exc:
        raise CliError(str(exc)) from None
    model_source = args.model or project.render.model
    if not model_source:
        raise CliError("qwen-tts-studio render: no model: pass --model DIR_OR_ID (or set one in the project)")
    voices = _voices_for(project, _voice_from_args(args), segments, source)
    from studio.core.voices import default_voice_library
    from studio.engine.render import model_of
    from studio.engine.synth import SynthRequest

    prompt_cache = default_voice_library().prompt_cache
    resident: dict[str, Synthesizer] = {}

    def synth_for(model: str) -> Synthesizer:
        # One model resident at a time: a cast that needs several loads them one after the other.
        if model not in resident:
            resident.clear()
            loaded = load_model(model, device=args.device, cpu_threads=args.threads,
                                progress=lambda message: print(message, file=sys.stderr))
            print(f"model: {loaded.info.summary()}", file=sys.stderr)
            resident[model] = Synthesizer(loaded, prompt_cache_dir=prompt_cache)
        return resident[model]

    try:
        # Check every voice against its model before rendering anything (wrong model type, unknown
        # speaker or language): one clear line instead of every segment failing the same way.
        by_model: dict = {}
        for segment in segments:
            if segment.kind == "speech":
                by_model.setdefault(model_of(segment, voices, model_source), []).append(segment)
        for model, group in by_model.items():
            synth = synth_for(model)
            for segment in group:
                try:
                    synth.check_request(
                        SynthRequest(text=segment.text, voice=voices[segment.voice], language=segment.language)
                    )
                except EngineError as exc:
                    # Named by the first line it concerns: "[language: Klingon]" is a line in the script.
                    raise CliError(f"{source}: line {segment.line}: {exc}") from None
    except EngineError as exc:
        raise CliError(str(exc)) from None
    sample_rate = next(iter(resident.values())).sample_rate if resident else 24000

    total = len(segments)

    def on_finished(result) -> None:
        seg = result.segment
        n = seg.index + 1
        seconds = result.n_samples / sample_rate
        if seg.kind == "pause":
            print(f"[{n}/{total}] line {seg.line}: pause {seg.seconds:g} s", flush=True)
        elif result.state == FAILED:
            print(f"[{n}/{total}] line {seg.line}: FAILED: {result.error}", flush=True)
        else:
            how = "cached" if result.cached else f"rendered in {result.seconds_to_render:.1f} s"
            notes = "" if result.emotion_applied else " (emotion not applied by this model)"
            notes += f" (warning: {result.warning})" if result.warning else ""
            print(f"[{n}/{total}] line {seg.line}: {seconds:.2f} s, {how}: {seg.text[:60]!r}{notes}", flush=True)

    gen = project.render.generation
    generation = GenerationParams(
        temperature=gen.temperature,
        top_k=gen.top_k,
        top_p=gen.top_p,
        repetition_penalty=gen.repetition_penalty,
        max_new_tokens=args.max_new_tokens if args.max_new_tokens is not None else gen.max_new_tokens,
    )
    cache = RenderCache(Path(args.cache) if args.cache else _default_cache_dir())
    results = render_by_model(
        segments,
        default_model=model_source,
        synth_for=synth_for,
        voices=voices,
        cache=cache,
        options=RenderOptions(generation=generation),
        cancel=threading.Event(),
        callbacks=RenderCallbacks(segment_finished=on_finished),
    )
    failed = [r for r in results if r.state == FAILED]
    if failed:
        print(f"{len(failed)} of {total} segments failed; nothing was exported (fixed segments re-render, "
              "the rest come from the cache)", file=sys.stderr)
        return 1
    from studio.audio.export import ExportError

    name = source.stem or "render"
    try:
        exported = export_results(
            results,
            sample_rate=sample_rate,
            folder=Path(args.out),
            name=name,
            model=next(iter(resident.values())).loaded.info,
            # Command-line options override what the project asks for.
            audio_format=args.format or project.render.export.audio_format,
            stems=args.stems or project.render.export.stems,
            loudness_lufs=args.loudness if args.loudness is not None else project.render.export.loudness_lufs,
        )
    except ExportError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {exported.audio} ({exported.document['duration']:.2f} s)")
    print(f"wrote {exported.srt}")
    print(f"wrote {exported.vtt}")
    print(f"wrote {exported.manifest}")
    return EXIT_OK


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

    render = commands.add_parser(
        "render", prog="qwen-tts-studio render", help="render a project or script to WAV, SRT, VTT and a manifest"
    )
    render.add_argument("input", help="a .qtts project or a plain script file")
    render.add_argument("--model", help="checkpoint folder or hub id (default: the project's model)")
    render.add_argument("--out", required=True, help="output folder (created if missing)")
    voice = render.add_mutually_exclusive_group()
    voice.add_argument("--voice", metavar="PROFILE", help="a .qvoice file, or a voice library profile id or name")
    voice.add_argument("--voice-design", metavar="TEXT", help="describe the voice (VoiceDesign models)")
    voice.add_argument("--speaker", metavar="NAME", help="a preset or fine-tuned speaker (CustomVoice models)")
    voice.add_argument("--voice-clone", metavar="WAV", help="clone the voice of a reference clip (Base models)")
    render.add_argument("--ref-text", metavar="TEXT", help="transcript of the --voice-clone clip")
    render.add_argument("--x-vector-only", action="store_true", help="clone from the speaker embedding alone")
    render.add_argument("--language", help="language for segments without a [language: ...] tag (default: auto)")
    render.add_argument("--seed", type=int, help="project seed (default: the project's, or 0)")
    render.add_argument("--cache", metavar="DIR", help="render cache folder (default: the user cache folder)")
    render.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    render.add_argument("--threads", type=int, help="CPU threads when rendering on the CPU (default: all cores)")
    render.add_argument("--max-new-tokens", type=int, help="codec-frame cap per segment (default: from the text)")
    render.add_argument("--format", choices=("wav", "flac"), help="audio format (default: the project's, or wav)")
    render.add_argument("--stems", action="store_true", help="also write one file per speech segment")
    render.add_argument(
        "--loudness", type=float, metavar="LUFS", help="normalise the export to this loudness, e.g. -16 or -23"
    )
    render.set_defaults(handler=_cmd_render)

    from studio.cli_models import add_models_parser

    add_models_parser(commands)
    return parser


SUBCOMMANDS = ("parse", "check", "render", "models")


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
        return 130
    except BrokenPipeError:
        # `python -m studio parse x | head` closes the pipe early; that is not an error of ours.
        return EXIT_OK
