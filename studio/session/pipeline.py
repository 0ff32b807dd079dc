"""One render job from start to end: model per segment, render order, swaps, results. No Qt, no threads.

The command line calls `run_job` directly; the window calls it on its render thread (ui/render_worker)
and receives the events as queued signals. Either way the same code decides which model renders what,
in which order, and what the user is told about it.

Order: when every model the job needs fits the memory budget at once, segments render in script
order (so audio streams to the player in the order it plays). When they do not, segments are grouped by
model, in order of first use, so each model is loaded once; results always come back in script order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from studio.core.cache import RenderCache
from studio.core.plan import SAMPLE_RATE, PlannedSegment
from studio.core.project import GenerationParams
from studio.core.voice import VoiceError, VoiceSpec
from studio.engine.decoder_options import DecoderOptions
from studio.engine.errors import EngineError
from studio.engine.loader import ModelInfo, ModelKeyParts, key_parts
from studio.engine.render import (
    DONE,
    FAILED,
    RenderCallbacks,
    RenderOptions,
    SegmentResult,
    cached_result,
    pause_samples,
    render_segments,
    segment_key,
)
from studio.engine.synth import AudioChunk, Cancelled
from studio.session.checkpoints import describe_source
from studio.session.residency import ModelResidency


@dataclass
class RenderJob:
    """What to render and with what: everything here is plain data, safe to hand to another thread."""

    job_id: int
    segments: list[PlannedSegment]
    voices: dict[str | None, VoiceSpec]
    models: dict[str | None, str]  # cast name -> checkpoint source (see checkpoints.choose_checkpoint)
    cache_dir: Path | None
    generation: GenerationParams = field(default_factory=GenerationParams)
    use_cache: bool = True
    decoder: DecoderOptions = field(default_factory=DecoderOptions)
    batch: int = 1  # segments decoded together (engine.render.RenderOptions.batch; 0: automatic)
    cancel: threading.Event = field(default_factory=threading.Event)

    def model_for(self, segment: PlannedSegment) -> str | None:
        return self.models.get(segment.voice)


@dataclass
class JobOutcome:
    job_id: int
    results: list[SegmentResult]  # script order
    sample_rate: int
    cancelled: bool = False
    error: str | None = None  # the whole job failed (e.g. a model did not load)
    models: dict[str, ModelInfo] = field(default_factory=dict)  # every model that rendered something
    loads: list[str] = field(default_factory=list)  # the models this job had to load, in order


@dataclass
class JobEvents:
    """What a running job reports; every hook is optional. Called on the rendering thread."""

    model_loading: Callable[[str], None] | None = None  # "loading Base 1.7B (model 2 of 3)"
    model_loaded: Callable[[ModelInfo], None] | None = None
    segment_started: Callable[[int], None] | None = None
    chunk_ready: Callable[[int, AudioChunk], None] | None = None
    segment_finished: Callable[[SegmentResult], None] | None = None


def _pause_models(segments: Sequence[PlannedSegment], job: RenderJob) -> dict[int, str | None]:
    """Segment index -> the model it goes with. A pause only needs a sample rate: it goes with the
    speech before it (or after it, at the start), so it never causes a model load of its own."""
    out: dict[int, str | None] = {}
    last = None
    for segment in segments:
        if segment.kind == "speech":
            last = job.model_for(segment)
        out[segment.index] = last
    following = None
    for segment in reversed(segments):
        if segment.kind == "speech":
            following = job.model_for(segment)
        elif out[segment.index] is None:
            out[segment.index] = following
    return out


def render_order(segments: Sequence[PlannedSegment], models: Mapping[int, str | None], *, grouped: bool) -> list:
    """Segments in the order to render them: script order, or grouped by model in order of first use."""
    if not grouped:
        return list(segments)
    groups: dict[str | None, list[PlannedSegment]] = {}
    for segment in segments:
        groups.setdefault(models[segment.index], []).append(segment)
    return [segment for group in groups.values() for segment in group]


def run_job(job: RenderJob, residency: ModelResidency, events: JobEvents | None = None) -> JobOutcome:
    """Render `job` with models from `residency`. Never raises for a segment's failure (that segment is
    marked failed); a model that cannot load ends the job with `error`; a cancel ends it `cancelled`."""
    events = events or JobEvents()
    results: list[SegmentResult] = []
    models = _pause_models(job.segments, job)
    distinct = list(dict.fromkeys(m for m in models.values() if m is not None))
    grouped = len(distinct) > 1 and not residency.fits_together(distinct)
    outcome = JobOutcome(job.job_id, results, SAMPLE_RATE)
    cache = RenderCache(job.cache_dir) if job.cache_dir else None
    options = RenderOptions(generation=job.generation, use_cache=job.use_cache, decoder=job.decoder, batch=job.batch)

    def finished(result: SegmentResult) -> None:
        results.append(result)
        if events.segment_finished:
            events.segment_finished(result)

    callbacks = RenderCallbacks(segment_started=events.segment_started, chunk_ready=events.chunk_ready,
                                segment_finished=finished)
    try:
        # Runs of segments on one model go to the engine together, so a batch can span them.
        for source, run in groupby(render_order(job.segments, models, grouped=grouped), lambda s: models[s.index]):
            if job.cancel.is_set():
                raise Cancelled()
            if source is None:
                for segment in run:
                    _without_model(segment, events, finished)
                continue
            synth = _acquire(residency, source, distinct, events, outcome)
            if job.decoder.fast and not job.decoder.batched(job.batch):
                # Building the fast decoder may compile it (a minute or more, once per model): said, not silent.
                synth.fast_decoder(job.decoder, progress=events.model_loading)
            render_segments(list(run), synth=synth, voices=job.voices, cache=cache, options=options,
                            cancel=job.cancel, callbacks=callbacks)
    except Cancelled:
        outcome.cancelled = True
    except EngineError as exc:
        outcome.error = str(exc)
    results.sort(key=lambda r: r.segment.index)
    return outcome


def _without_model(segment: PlannedSegment, events: JobEvents, finished) -> None:
    """A segment whose voice has no model: a pause still gets its silence, speech fails and says why."""
    if events.segment_started:
        events.segment_started(segment.index)
    if segment.kind == "pause":
        samples = pause_samples(segment.seconds, SAMPLE_RATE)
        if events.chunk_ready:
            events.chunk_ready(segment.index, AudioChunk(samples, SAMPLE_RATE, 0, True))
        finished(SegmentResult(segment, DONE, samples=samples))
    else:
        finished(SegmentResult(segment, FAILED, error=f"line {segment.line}: no model is set for voice "
                                                       f"{segment.voice!r}"))


def _acquire(residency: ModelResidency, source: str, distinct: list[str], events: JobEvents, outcome: JobOutcome):
    if source not in residency.resident:
        described = describe_source(source)
        name = described.label if described is not None and described.model_type else source
        where = f" (model {distinct.index(source) + 1} of {len(distinct)})" if len(distinct) > 1 else ""
        swap = f"loading {name}{where}"
        progress = None
        if events.model_loading:
            events.model_loading(swap)
            # The loader's own steps (a download, "loading <folder> on cuda") say which swap they belong to.
            progress = lambda message: events.model_loading(f"{swap}: {message}")  # noqa: E731
        synth = residency.acquire(source, progress=progress)
        outcome.loads.append(source)
        if events.model_loaded:
            events.model_loaded(synth.loaded.info)
    else:
        synth = residency.acquire(source)
    if synth.sample_rate != SAMPLE_RATE:
        raise EngineError(f"{source}: decodes at {synth.sample_rate} Hz; Qwen3-TTS 12Hz models decode at "
                          f"{SAMPLE_RATE} Hz")
    outcome.models[source] = synth.loaded.info
    return synth


def model_key_parts(source: str, device: str, fingerprint_memo: Path | None) -> ModelKeyParts | None:
    """The key parts a load of `source` on `device` would report; None when it is not on this machine."""
    described = describe_source(source)
    if described is None:
        return None
    try:
        return key_parts(source, described.folder, device, fingerprint_memo)
    except EngineError:
        return None


def cached_results(
    job: RenderJob, *, device: str, fingerprint_memo: Path | None = None
) -> list[SegmentResult]:
    """The results a render of `job` would take from the cache, found without loading any model.

    This is how a reopened project shows the audio it already has: each speech segment whose key is in
    the cache comes back done (`cached`), each pause as its silence; the rest are left out.
    """
    if job.cache_dir is None:
        return []
    cache = RenderCache(job.cache_dir)
    parts: dict[str, ModelKeyParts | None] = {}
    found: list[SegmentResult] = []
    for segment in job.segments:
        if job.cancel.is_set():
            break
        if segment.kind == "pause":
            found.append(SegmentResult(segment, DONE, samples=pause_samples(segment.seconds, SAMPLE_RATE)))
            continue
        source = job.model_for(segment)
        voice = job.voices.get(segment.voice)
        if source is None or voice is None:
            continue
        if source not in parts:
            parts[source] = model_key_parts(source, device, fingerprint_memo)
        if parts[source] is None:
            continue
        try:
            key = segment_key(segment, voice, parts[source], job.generation, job.decoder)
        except VoiceError:
            continue  # a clip that is gone: the render will say so
        hit = cache.get(key)
        if hit is None or hit.sample_rate != SAMPLE_RATE:
            continue
        found.append(cached_result(segment, hit, key, source))
    return found
