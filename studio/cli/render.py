"""`render`: a project or plain script to audio, subtitles and a manifest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.cli.errors import EXIT_OK, CliError


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
