"""Render planned segments: cache lookups, generation, failures, pauses. No threads, no Qt.

`render_segments` is what both the command line and the GUI's render worker call. It reports through
plain callbacks and stops between chunks when `cancel` is set, so it runs the same synchronously in a
test, in a subprocess or on a QThread.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np

from studio.core.cache import CachedAudio, RenderCache, cache_key
from studio.core.instruct import delivery_directives
from studio.core.pace import PACE_KEY, segment_pace
from studio.core.plan import PlannedSegment, length_warning
from studio.core.project import GenerationParams
from studio.core.reference_clip import check_voice_clips
from studio.core.voice import VoiceError, VoiceSpec
from studio.engine.decoder_options import DecoderOptions
from studio.engine.loader import EngineError, ModelInfo
from studio.engine.synth import AudioChunk, Cancelled, Synthesizer, SynthReport, SynthRequest
from studio.engine.time_stretch import STRETCH_VERSION, stretch_speech

# Segment states, as the timeline shows them.
STALE, QUEUED, RENDERING, DONE, FAILED, LOCKED = "stale", "queued", "rendering", "done", "failed", "locked"

# How a segment's [pace: ...] was honoured: read by the model in its instruct, or by stretching the audio.
PACE_BY_INSTRUCT, PACE_BY_STRETCH = "instruct", "time-stretch"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


# Package versions that can change generated audio; part of every cache key.
AUDIO_PACKAGE_VERSIONS = {name: _version(name) for name in ("qwen-tts", "transformers", "torch")}


@dataclass
class SegmentResult:
    segment: PlannedSegment
    state: str
    samples: np.ndarray | None = None
    cached: bool = False
    error: str | None = None
    warning: str | None = None
    emotion_applied: bool = True
    directives_applied: bool = True
    instruct: str = ""
    key: str = ""
    seconds_to_render: float = 0.0
    model: str = ""  # the source of the checkpoint that rendered it ("" for pauses)
    pace: str = ""  # PACE_BY_INSTRUCT or PACE_BY_STRETCH when the segment has a pace, else ""

    @property
    def n_samples(self) -> int:
        return 0 if self.samples is None else len(self.samples)


@dataclass
class RenderCallbacks:
    """Optional hooks; each gets the segment index first so stale results can be told apart."""

    segment_started: Callable[[int], None] | None = None
    chunk_ready: Callable[[int, AudioChunk], None] | None = None
    segment_finished: Callable[[SegmentResult], None] | None = None


@dataclass
class RenderOptions:
    generation: GenerationParams = field(default_factory=GenerationParams)
    use_cache: bool = True
    decoder: DecoderOptions = field(default_factory=DecoderOptions)
    # Segments decoded together (studio.engine.batch_decode): 1 renders one at a time, streaming each;
    # 0 sizes the batch automatically from the work and the free memory.
    batch: int = 1


def segment_key(segment: PlannedSegment, voice: VoiceSpec, info: ModelInfo, generation: GenerationParams,
                decoder: DecoderOptions | None = None) -> str:
    """The render cache key. `info` needs only source, revision, dtype and device, so a key can also be
    computed for a model that is not loaded (to find a project's audio in the cache when it opens)."""
    tag = (decoder or DecoderOptions()).cache_tag()
    return cache_key(
        ({"decoder": tag} if tag else {}) | {
            "text": segment.model_text,  # what the model reads: a pronunciation entry changes the key
            "emotion": segment.emotion,
            # A list, not a mapping: the canonical JSON sorts mapping keys, but the directives' order is
            # the order of their clauses in the instruct the model reads.
            "directives": [[key, value] for key, value in segment.directives.items()],
            "voice": voice.fingerprint(),
            "model": {"source": info.source, "revision": info.revision, "dtype": info.dtype,
                      "device": info.device.split(":")[0]},
            "language": segment.language,
            "seed": segment.seed,
            "take": segment.take,
            "generation": {
                "temperature": generation.temperature,
                "top_k": generation.top_k,
                "top_p": generation.top_p,
                "repetition_penalty": generation.repetition_penalty,
                "max_new_tokens": generation.max_new_tokens,
            },
            "packages": AUDIO_PACKAGE_VERSIONS,
        } | ({"time_stretch": STRETCH_VERSION} if segment_pace(segment.directives) else {})
    )


def pace_method(segment: PlannedSegment, voice: VoiceSpec, instruct_honoured: bool) -> str:
    """How `segment`'s pace is honoured with `voice` on a model that does (or does not) follow an
    instruct: "" when it has no pace. A cloned voice never has an instruct, whatever the model."""
    if segment.kind != "speech" or segment_pace(segment.directives) is None:
        return ""
    return PACE_BY_INSTRUCT if voice.kind != "clone" and instruct_honoured else PACE_BY_STRETCH


def pause_samples(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(round(seconds * sample_rate), dtype=np.float32)


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _empty_device_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _generate(
    synth: Synthesizer,
    request: SynthRequest,
    index: int,
    cancel: threading.Event | None,
    callbacks: RenderCallbacks,
    decoder: DecoderOptions,
) -> tuple[np.ndarray, SynthReport]:
    """All chunks of one request, joined; retried once after an out-of-memory error."""
    for attempt in (1, 2):
        report = SynthReport()
        pieces: list[np.ndarray] = []
        try:
            for chunk in synth.stream(request, cancel=cancel, report=report, decoder=decoder):
                pieces.append(chunk.samples)
                if callbacks.chunk_ready:
                    callbacks.chunk_ready(index, chunk)
            return (np.concatenate(pieces) if pieces else np.zeros(0, np.float32)), report
        except Cancelled:
            raise
        except Exception as exc:
            if attempt == 1 and _is_out_of_memory(exc) and not pieces:
                _empty_device_cache()
                continue
            raise
    raise AssertionError("unreachable")


def render_segments(
    segments: Sequence[PlannedSegment],
    *,
    synth: Synthesizer,
    voices: Mapping[str | None, VoiceSpec],
    cache: RenderCache | None,
    options: RenderOptions | None = None,
    cancel: threading.Event | None = None,
    callbacks: RenderCallbacks | None = None,
) -> list[SegmentResult]:
    """Render every segment in order. A failing segment is marked failed; the others still render.

    Raises Cancelled when `cancel` is set; segments finished before that were already reported.
    """
    options = options or RenderOptions()
    callbacks = callbacks or RenderCallbacks()
    rate = synth.sample_rate
    if options.decoder.batched(options.batch):
        return _render_batched(segments, synth, voices, cache, options, cancel, callbacks, rate)
    results: list[SegmentResult] = []
    for segment in segments:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if callbacks.segment_started:
            callbacks.segment_started(segment.index)
        result = _render_one(segment, synth, voices, cache, options, cancel, callbacks, rate)
        results.append(result)
        if callbacks.segment_finished:
            callbacks.segment_finished(result)
    return results


def render_segment(
    segment: PlannedSegment,
    *,
    synth: Synthesizer,
    voices: Mapping[str | None, VoiceSpec],
    cache: RenderCache | None,
    options: RenderOptions | None = None,
    cancel: threading.Event | None = None,
    callbacks: RenderCallbacks | None = None,
) -> SegmentResult:
    """Render one segment (see render_segments); the caller decides the order and the model."""
    return render_segments([segment], synth=synth, voices=voices, cache=cache, options=options, cancel=cancel,
                           callbacks=callbacks)[0]


def _join_warnings(*warnings: str | None) -> str | None:
    return "; ".join(w for w in warnings if w) or None


def _unapplied_directives(segment: PlannedSegment, model_applied: bool, pace: str) -> dict[str, str]:
    """The segment's delivery directives that did not reach its audio: none when the model read them all,
    else all of them but a pace the studio applied by stretching."""
    if model_applied:
        return {}
    unapplied = delivery_directives(segment.directives)
    if pace == PACE_BY_STRETCH:
        unapplied.pop(PACE_KEY, None)
    return unapplied


def _directives_warning(unapplied: Mapping[str, str]) -> str | None:
    if not unapplied:
        return None
    named = ", ".join(f"{key}: {value}" for key, value in unapplied.items())
    return f"not applied by this voice's model (it takes no instruct): {named}"


def cached_result(segment: PlannedSegment, hit: CachedAudio, key: str, model: str,
                  clip_warnings: Sequence[str] = ()) -> SegmentResult:
    """A segment whose audio came from the cache, with the honesty flags its render stored."""
    pace = str(hit.meta.get("pace", ""))
    unapplied = _unapplied_directives(segment, bool(hit.meta.get("directives_applied", True)), pace)
    return SegmentResult(
        segment,
        DONE,
        samples=hit.samples,
        cached=True,
        warning=_join_warnings(*clip_warnings, hit.meta.get("warning"), _directives_warning(unapplied)),
        emotion_applied=bool(hit.meta.get("emotion_applied", True)),
        directives_applied=not unapplied,
        instruct=str(hit.meta.get("instruct", "")),
        key=key,
        model=model,
        pace=pace,
    )


@dataclass
class _Work:
    """A segment the cache did not have: what to ask the model, and what its result needs afterwards."""

    segment: PlannedSegment
    request: SynthRequest
    key: str
    clip_warnings: list[str]
    pace: str
    started: float


def _failure(segment: PlannedSegment, exc: Exception) -> SegmentResult:
    if isinstance(exc, (EngineError, VoiceError)):
        return SegmentResult(segment, FAILED, error=str(exc))
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return SegmentResult(segment, FAILED, error=f"{type(exc).__name__}: {message}"[:300])


def _look_up(segment, synth, voices, cache, options, callbacks, rate) -> SegmentResult | _Work:
    """A pause, a failure before any generation, or a cache hit as a result (its audio handed to
    `chunk_ready`); otherwise the work of generating the segment."""
    if segment.kind == "pause":
        samples = pause_samples(segment.seconds, rate)
        if callbacks.chunk_ready:
            callbacks.chunk_ready(segment.index, AudioChunk(samples, rate, 0, True))
        return SegmentResult(segment, DONE, samples=samples)
    voice = voices.get(segment.voice)
    if voice is None:
        name = "the default voice" if segment.voice is None else f"voice {segment.voice!r}"
        return SegmentResult(segment, FAILED, error=f"line {segment.line}: {name} is not set up in the cast")
    started = time.perf_counter()
    try:
        # A cloned voice's clips are checked before anything else (errors name the clip); their warnings
        # (silent, very long) go with every segment they voice, cached or not.
        clip_warnings = check_voice_clips(voice, segment.emotion)
        key = segment_key(segment, voice, synth.loaded.info, options.generation, options.decoder)
    except Exception as exc:  # noqa: BLE001 - one segment's failure must not end the render
        return _failure(segment, exc)
    hit = cache.get(key) if (cache is not None and options.use_cache) else None
    if hit is not None and hit.sample_rate == rate:
        if callbacks.chunk_ready:
            callbacks.chunk_ready(segment.index, AudioChunk(hit.samples, rate, 0, True))
        return cached_result(segment, hit, key, synth.loaded.info.source, clip_warnings)
    request = SynthRequest(text=segment.model_text, voice=voice, language=segment.language, emotion=segment.emotion,
                           directives=segment.directives, seed=segment.seed, generation=options.generation)
    pace = pace_method(segment, voice, synth.loaded.info.instruct_honoured)
    return _Work(segment, request, key, list(clip_warnings), pace, started)


def _finish(work: _Work, samples: np.ndarray, report: SynthReport, *, synth, cache, callbacks, rate,
            streamed: bool) -> SegmentResult:
    """The result of generated audio: stretched to its pace when the model could not read it, handed whole
    to `chunk_ready` unless its chunks were `streamed` as they were, cached, with its warnings."""
    segment, pace = work.segment, work.pace
    spoken_seconds = len(samples) / rate
    if pace == PACE_BY_STRETCH:
        samples = stretch_speech(samples, segment_pace(segment.directives))
    if callbacks.chunk_ready and (pace == PACE_BY_STRETCH or not streamed):
        callbacks.chunk_ready(segment.index, AudioChunk(samples, rate, 0, True))
    # Judged on the model's own timing: a stretch is asked for, a runaway generation is not.
    warning = length_warning(segment.model_text, spoken_seconds, hit_token_cap=report.hit_token_cap)
    meta = {"warning": warning, "emotion_applied": report.emotion_applied,
            "directives_applied": report.directives_applied, "instruct": report.instruct, "seed": segment.seed,
            "pace": pace}
    if cache is not None:
        cache.put(work.key, samples, rate, meta)
    unapplied = _unapplied_directives(segment, report.directives_applied, pace)
    return SegmentResult(
        segment,
        DONE,
        samples=samples,
        warning=_join_warnings(*work.clip_warnings, warning, _directives_warning(unapplied)),
        emotion_applied=report.emotion_applied,
        directives_applied=not unapplied,
        instruct=report.instruct,
        key=work.key,
        seconds_to_render=time.perf_counter() - work.started,
        model=synth.loaded.info.source,
        pace=pace,
    )


def _render_one(segment, synth, voices, cache, options, cancel, callbacks, rate) -> SegmentResult:
    work = _look_up(segment, synth, voices, cache, options, callbacks, rate)
    if isinstance(work, SegmentResult):
        return work
    # Stretched audio differs from what the model streams, so a listener gets the segment whole once it is
    # stretched rather than chunks that the final audio would then contradict.
    generating = dataclasses.replace(callbacks, chunk_ready=None) if work.pace == PACE_BY_STRETCH else callbacks
    try:
        samples, report = _generate(synth, work.request, segment.index, cancel, generating, options.decoder)
        return _finish(work, samples, report, synth=synth, cache=cache, callbacks=callbacks, rate=rate,
                       streamed=True)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - one segment's failure must not end the render
        return _failure(segment, exc)


def _render_batched(segments, synth, voices, cache, options, cancel, callbacks, rate) -> list[SegmentResult]:
    """render_segments with the segments the cache lacks decoded `options.batch` at a time: the same
    results and callbacks, but segments finish (and are reported) in the order they end, and each one's
    audio reaches `chunk_ready` whole. Out of memory, the batch is halved and the unfinished retried."""
    results: dict[int, SegmentResult] = {}
    waiting: dict[int, tuple[_Work, SynthReport]] = {}  # script order

    def done(result: SegmentResult) -> None:
        results[result.segment.index] = result
        if callbacks.segment_finished:
            callbacks.segment_finished(result)

    for segment in segments:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        work = _look_up(segment, synth, voices, cache, options, callbacks, rate)
        if isinstance(work, SegmentResult):
            if callbacks.segment_started:
                callbacks.segment_started(segment.index)
            done(work)
        else:
            waiting[segment.index] = (work, SynthReport())
    for index in waiting:
        if callbacks.segment_started:
            callbacks.segment_started(index)

    def prepared():
        # Made as the batch has room, so a long book's prompts are never all held at once.
        for index, (work, report) in waiting.items():
            if index in results:
                continue
            try:
                yield synth.batch_job(work.request, index, report)
            except Exception as exc:  # noqa: BLE001 - one segment's failure must not end the render
                done(_failure(work.segment, exc))

    batch = options.batch or None  # None: automatic
    while True:
        try:
            left = sum(1 for index in waiting if index not in results)
            for index, samples, frames in synth.run_batch(prepared(), batch=batch, count=left, cancel=cancel):
                work, report = waiting[index]
                report.frames = frames
                try:
                    result = _finish(work, samples, report, synth=synth, cache=cache, callbacks=callbacks,
                                     rate=rate, streamed=False)
                except Exception as exc:  # noqa: BLE001 - as above
                    result = _failure(work.segment, exc)
                done(result)
            break
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - the unfinished segments fail, the finished ones stay
            tried = batch or synth.last_batch
            if _is_out_of_memory(exc) and tried > 1:
                _empty_device_cache()
                batch = tried // 2
                continue
            for index, (work, _report) in waiting.items():
                if index not in results:
                    done(_failure(work.segment, exc))
            break
    return [results[segment.index] for segment in segments]
