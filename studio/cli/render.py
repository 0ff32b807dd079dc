"""`render`: a project or plain script to audio, subtitles and a manifest, through the render session.

Everything that decides what a render is (which checkpoint each voice uses, the pre-flight check, the
order, model residency, the export) lives in studio.session; this module turns arguments into a plan,
prints progress, and turns problems into one line each with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from studio.core.pace import segment_pace
from studio.core.project import EXPORT_FORMATS
from studio.engine.decoder_options import DECODERS, DecoderOptions

_FIX_HINTS = {
    "voices": "give it a voice with --cast NAME=VOICE, or in the project (voices: qwen-tts-studio voices list)",
    "models": "install one with `qwen-tts-studio models download REPO_ID` or `models add-local FOLDER`, "
              "or pass --model",
}


def add_render_parser(commands) -> argparse.ArgumentParser:
    render = commands.add_parser(
        "render", prog="qwen-tts-studio render", help="render a project or script to WAV, SRT, VTT and a manifest"
    )
    render.add_argument("input", help="a .qtts project or a plain script file")
    render.add_argument("--model", help="checkpoint folder or hub id for the command-line voice, and the first "
                                        "choice for cast voices of its type (default: the project's model)")
    render.add_argument("--out", required=True, help="output folder (created if missing)")
    voice = render.add_mutually_exclusive_group()
    voice.add_argument("--voice", metavar="PROFILE", help="a .qvoice file, or a voice library profile id or name")
    voice.add_argument("--voice-design", metavar="TEXT", help="describe the voice (VoiceDesign models)")
    voice.add_argument("--speaker", metavar="NAME", help="a preset or fine-tuned speaker (CustomVoice models)")
    voice.add_argument("--voice-clone", metavar="WAV", help="clone the voice of a reference clip (Base models)")
    render.add_argument("--ref-text", metavar="TEXT", help="transcript of the --voice-clone clip")
    render.add_argument("--x-vector-only", action="store_true", help="clone from the speaker embedding alone")
    render.add_argument("--cast", action="append", default=[], metavar="NAME=VOICE",
                        help="the voice for [voice: NAME] lines: a library profile id or name, a .qvoice file or a "
                             "profile folder (repeatable)")
    render.add_argument("--render-what-can", action="store_true",
                        help="when the pre-flight check finds problems, render (and export) the other lines")
    render.add_argument("--language", help="language for segments without a [language: ...] tag (default: auto)")
    render.add_argument("--seed", type=int, help="project seed (default: the project's, or 0)")
    render.add_argument("--cache", metavar="DIR", help="render cache folder (default: the user cache folder)")
    render.add_argument("--device", default=None,
                        help="auto, cpu, cuda, cuda:N or mps (default: the studio's setting, or auto)")
    render.add_argument("--threads", type=int, help="CPU threads when rendering on the CPU (default: all cores)")
    render.add_argument("--memory-budget", type=float, metavar="GB",
                        help="memory the loaded models may take together (default: the settings', or automatic: "
                             "60%% of the free RAM or VRAM)")
    render.add_argument("--max-new-tokens", type=int, help="codec-frame cap per segment (default: from the text)")
    render.add_argument("--decoder", choices=DECODERS,
                        help="how codec frames are generated: fast (the studio's loop) or reference (qwen-tts's "
                             "generate) (default: the studio's setting, or fast)")
    render.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile the fast decoder: slower first start (compiled once per model and "
                             "cached on disk), faster frames (default: the studio's setting, or off)")
    render.add_argument("--int8", action=argparse.BooleanOptionalAction, default=None,
                        help="experimental, CPU only: int8 weights in the fast decoder (default: the studio's "
                             "setting, or off)")
    render.add_argument("--batch", type=_batch_size, default=0, metavar="N|auto",
                        help="segments decoded together by the fast decoder, each as it would be alone "
                             "(default: auto, from the work and the free memory; 1: one at a time; compiling "
                             "and int8 render one at a time)")
    render.add_argument("--ray", metavar="auto|ADDRESS",
                        help="render on Ray workers: auto starts Ray on this computer (a worker per GPU, or per "
                             "--threads cores), ADDRESS joins a running cluster (needs the [cluster] extra)")
    render.add_argument("--greedy", action="store_true",
                        help="no sampling anywhere (temperature 0) for this run; the project is not changed")
    render.add_argument("--format", choices=EXPORT_FORMATS,
                        help="audio format: wav, flac, or an audiobook with chapter marks and the project's book "
                             "details, m4b or mp3 (default: the project's, or wav)")
    render.add_argument("--chapter", metavar="N|TITLE",
                        help="render and export one chapter (a chapter starts at a line '# Title'), by number or title")
    render.add_argument("--per-chapter", action="store_true",
                        help="write one export per chapter (audio, subtitles and manifest each) instead of one")
    render.add_argument("--acx", action="store_true",
                        help="master for audiobook platforms (ACX): 44.1 kHz, RMS -20 dBFS, peaks under -3 dBFS, "
                             "room tone at both ends (replaces --loudness); the check's result is printed")
    render.add_argument("--stems", action="store_true", help="also write one file per speech segment")
    render.add_argument(
        "--loudness", type=float, metavar="LUFS", help="normalise the export to this loudness, e.g. -16 or -23"
    )
    render.set_defaults(handler=_cmd_render)
    return render


def _profile_voice(value: str):
    """--voice: a .qvoice file, a profile folder, or a profile id or name in the voice library."""
    import atexit
    import shutil
    import tempfile

    from studio.core.voice_library import VoiceLibraryError, default_voice_library, read_profile, unpack_profile_file

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


def _cast_overrides(values: list[str]) -> dict:
    overrides = {}
    for value in values:
        name, sep, voice = value.partition("=")
        if not sep or not name.strip() or not voice.strip():
            raise CliError(f"qwen-tts-studio render: --cast {value!r}: expected NAME=VOICE")
        overrides[name.strip()] = _profile_voice(voice.strip()).voice
    return overrides


def _check_model_option(model: str | None) -> None:
    if model is None:
        return
    from studio.session.checkpoints import describe_source

    if describe_source(model) is not None:
        return
    if Path(model).expanduser().exists() or model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise CliError(f"{model}: no such model folder (--model)" if not Path(model).expanduser().exists()
                       else f"{model}: not a Qwen3-TTS checkpoint folder (no readable config.json) (--model)")
    # A hub id that is not downloaded: the loader fetches it (or says clearly that it cannot).


def _machine_settings():
    from studio.settings import load_settings

    return load_settings()


def _batch_size(text: str) -> int:
    """--batch: "auto" (0) or a whole number from 1."""
    if text.strip().lower() == "auto":
        return 0
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number from 1, not {text!r}")
    return value


def _decoder_options(args: argparse.Namespace, settings) -> DecoderOptions:
    """The command line's choices over the machine's settings; compiling and int8 are the fast loop's."""
    decoder = args.decoder or settings.decoder
    if decoder != "fast":
        for flag, given in (("--compile", args.compile), ("--int8", args.int8)):
            if given:
                raise CliError(f"qwen-tts-studio render: {flag} needs the fast decoder (--decoder fast)")
        return DecoderOptions(decoder)
    return DecoderOptions(
        decoder,
        compile=settings.compile_decoder if args.compile is None else args.compile,
        int8=settings.int8_decoder if args.int8 is None else args.int8,
    )


def _chapter_scope(args: argparse.Namespace, source: Path, project, plan):
    """The segments and problems this run covers, the chapters its export marks, and its name: the whole
    script, or with --chapter that chapter alone (problems in other chapters do not stop it)."""
    from studio.core.chapters import chapters_in, find_chapter

    chapters = chapters_in(project.script)
    name = source.stem or "render"
    if args.per_chapter and not chapters:
        raise CliError(f"{source}: --per-chapter: the script has no chapters (a chapter starts at a line '# Title')")
    if args.chapter is None:
        return plan.segments, plan.problems, chapters, name
    try:
        chapter = find_chapter(chapters, args.chapter)
    except ValueError as exc:
        raise CliError(f"{source}: --chapter {args.chapter}: {exc}") from None
    problems = [p for p in plan.problems
                if not (p.lines or p.line) or any(chapter.holds(line) for line in (p.lines or (p.line,)))]
    segments = [s for s in plan.segments if chapter.holds(s.line)]
    return segments, problems, [chapter], f"{name}_ch{chapter.number:02d}"


def _export(args: argparse.Namespace, project, outcome, results, chapters, name: str, book) -> None:
    """Write one export of `results` and say what was written (and how it measures against ACX)."""
    from studio.audio.export import ExportError
    from studio.session.exporting import export_results

    try:
        exported = export_results(
            results,
            sample_rate=outcome.sample_rate,
            folder=Path(args.out),
            name=name,
            models=outcome.models,
            chapters=chapters,
            book=book,
            acx=args.acx or project.render.export.acx,
            # Command-line options override what the project asks for.
            audio_format=args.format or project.render.export.audio_format,
            stems=args.stems or project.render.export.stems,
            loudness_lufs=None if args.acx else (args.loudness if args.loudness is not None
                                                 else project.render.export.loudness_lufs),
        )
    except ExportError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {exported.audio} ({exported.document['duration']:.2f} s)")
    print(f"wrote {exported.srt}")
    print(f"wrote {exported.vtt}")
    print(f"wrote {exported.manifest}")
    if "acx" in exported.document:
        report = exported.document["acx"]
        print("ACX check: " + ("passed" if report["passed"] else "FAILED") + ("" if report["mastered"] else
              " (not mastered; --acx masters the export)"))
        for check in report["checks"]:
            print(f"  {check['name']}: {check['measured']} ({check['required']}): "
                  f"{'pass' if check['passed'] else 'fail'}")


def _cmd_render(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from studio.core.project import GenerationParams
    from studio.core.voice_library import default_voice_library
    from studio.engine.render import FAILED, PACE_BY_STRETCH
    from studio.session.checkpoints import installed_checkpoints
    from studio.session.pipeline import JobEvents, RenderJob, run_job
    from studio.session.preflight import renderable
    from studio.session.render_plan import InputError, plan_render, read_input
    from studio.session.residency import ModelResidency

    source = Path(args.input)
    try:
        project = read_input(source)
    except InputError as exc:
        raise CliError(str(exc)) from None
    if args.language is not None:
        project.render.language = args.language
    if args.seed is not None:
        project.render.seed = args.seed
    default_voice = _voice_from_args(args)
    if default_voice is not None and args.model and not default_voice.model:
        # The command line's own voice renders with the model named beside it (a profile that names its
        # own checkpoint, a fine-tuned speaker, keeps it).
        default_voice = replace(default_voice, model=args.model)
    library = default_voice_library()
    try:
        plan = plan_render(project, source=str(source), library=library, installed=installed_checkpoints(),
                           default_voice=default_voice, overrides=_cast_overrides(args.cast),
                           preferred_model=args.model)
    except InputError as exc:
        raise CliError(str(exc)) from None
    _check_model_option(args.model)  # after the script: a grammar error is the first thing to fix
    segments, problems, chapters, name = _chapter_scope(args, source, project, plan)
    if problems:
        for problem in problems:
            hint = _FIX_HINTS.get(problem.where, problem.fix)
            print(f"{source}: " + (f"{problem.where_text}: " if problem.where_text else "") + f"{problem.what}; {hint}",
                  file=sys.stderr)
        if not args.render_what_can:
            return EXIT_USAGE
        segments = renderable(segments, problems)
        if not any(s.kind == "speech" for s in segments):
            print(f"{source}: no line can be rendered", file=sys.stderr)
            return EXIT_USAGE
        print(f"rendering the {len(segments)} segments the problems above do not concern", file=sys.stderr)

    settings = _machine_settings()
    if args.ray:
        from studio.engine.errors import EngineError
        from studio.session.cluster import import_ray

        try:
            import_ray()
        except EngineError as exc:
            raise CliError(f"qwen-tts-studio render: --ray: {exc}") from None
    decoder = _decoder_options(args, settings)
    budget_gb = args.memory_budget if args.memory_budget is not None else settings.model_memory_budget_gb
    if budget_gb is not None and budget_gb <= 0:
        raise CliError(f"qwen-tts-studio render: --memory-budget {budget_gb:g}: expected a positive number of GB")
    from studio import paths

    residency = ModelResidency(
        device=args.device or settings.device,
        cpu_threads=args.threads or settings.cpu_threads or None,
        budget_bytes=None if budget_gb is None else int(budget_gb * 1024**3),
        prompt_cache_dir=library.prompt_cache,
        fingerprint_memo=paths.fingerprint_memo_file(),
    )
    gen = project.render.generation
    generation = GenerationParams(
        # Greedy: temperature 0 turns sampling off for the talker and the code predictor alike.
        temperature=0.0 if args.greedy else gen.temperature,
        top_k=gen.top_k,
        top_p=gen.top_p,
        repetition_penalty=gen.repetition_penalty,
        max_new_tokens=args.max_new_tokens if args.max_new_tokens is not None else gen.max_new_tokens,
    )
    job = RenderJob(
        job_id=1, segments=segments, voices=plan.cast.voices, models=plan.cast.models,
        cache_dir=Path(args.cache) if args.cache else paths.render_cache_dir(), generation=generation,
        decoder=decoder, batch=args.batch,
    )
    total = len(segments)
    finished_count = [0]

    def on_finished(result) -> None:
        # Counted as they finish: a batched render finishes segments out of script order.
        seg = result.segment
        finished_count[0] += 1
        n = finished_count[0]
        seconds = result.n_samples / outcome_rate
        if seg.kind == "pause":
            print(f"[{n}/{total}] line {seg.line}: pause {seg.seconds:g} s", flush=True)
        elif result.state == FAILED:
            print(f"[{n}/{total}] line {seg.line}: FAILED: {result.error}", flush=True)
        else:
            how = "cached" if result.cached else f"rendered in {result.seconds_to_render:.1f} s"
            notes = "" if result.emotion_applied else " (emotion not applied by this model)"
            if result.pace == PACE_BY_STRETCH:
                notes += f" (pace {segment_pace(seg.directives):g}x by time stretch)"
            notes += f" (warning: {result.warning})" if result.warning else ""
            print(f"[{n}/{total}] line {seg.line}: {seconds:.2f} s, {how}: {seg.text[:60]!r}{notes}", flush=True)

    from studio.session.pipeline import SAMPLE_RATE

    outcome_rate = SAMPLE_RATE
    decoder_line = decoder.describe(args.batch) + (", greedy (no sampling)" if generation.temperature == 0 else "")
    events = JobEvents(
        model_loading=lambda message: print(message, file=sys.stderr, flush=True),
        model_loaded=lambda info: print(f"model: {info.summary()}\ndecoder: {decoder_line}", file=sys.stderr,
                                        flush=True),
        segment_finished=on_finished,
    )
    if args.ray:
        from studio.session.cluster import ClusterOptions, run_job_on_cluster

        cluster = ClusterOptions(address=args.ray, cpu_threads=args.threads or settings.cpu_threads or 2,
                                 device=args.device or settings.device)
        outcome = run_job_on_cluster(job, cluster, events)
    else:
        outcome = run_job(job, residency, events)
    if outcome.error:
        raise CliError(outcome.error)
    failed = [r for r in outcome.results if r.state == FAILED]
    if failed:
        print(f"{len(failed)} of {total} segments failed; nothing was exported (fixed segments re-render, "
              "the rest come from the cache)", file=sys.stderr)
        return EXIT_FAILED
    from studio.session.exporting import book_tags

    book, cover_problem = book_tags(project.book, project_folder=source.parent, fallback_title=source.stem)
    if cover_problem and (args.format or project.render.export.audio_format) in ("m4b", "mp3"):
        print(f"warning: {cover_problem}", file=sys.stderr)
    if not args.per_chapter:
        _export(args, project, outcome, outcome.results, chapters, name, book)
        return EXIT_OK
    # One file per chapter (audiobook platforms ask for that), each with its own subtitles and manifest.
    for chapter in chapters:
        mine = [r for r in outcome.results if chapter.holds(r.segment.line)]
        if any(r.segment.kind == "speech" for r in mine):
            _export(args, project, outcome, mine, [chapter], f"{name}_ch{chapter.number:02d}", book)
    return EXIT_OK
