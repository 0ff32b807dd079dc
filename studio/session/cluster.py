"""Rendering on a Ray cluster when one machine is not enough (issue #21). Optional: `pip install
qwen-tts-studio[cluster]` on this computer and on every node.

The driver (this process) owns everything a user keeps: the render cache, the results, the progress and
the exports. Workers are Ray actors, one per GPU (or per `cpu_threads` cores); each loads the model once
and renders the segments it is handed with the batched decoder (studio.engine.batch_decode), which makes a
segment's audio independent of what it is rendered beside, so the cluster's audio is the local render's,
byte for byte, on machines of one kind (the same CPU or GPU model, the same thread count per worker;
floating-point rounding differs between kinds). Segments go out largest first, a few per task. A worker
that dies (killed, out of memory, its node gone) loses nothing: its unfinished segments go to another
worker, up to MAX_ATTEMPTS tries each, then are reported failed with the reason; finished ones are already
in the cache, so a rerun resumes. Cancelling kills the workers at once.

Every node needs the same studio version and the model at the same path (or a hub id it can download),
and a cloned voice's clips at the same paths.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from studio.core.cache import RenderCache
from studio.core.plan import SAMPLE_RATE, PlannedSegment
from studio.core.voice import VoiceError
from studio.engine.errors import EngineError
from studio.engine.render import (
    DONE,
    FAILED,
    RenderOptions,
    SegmentResult,
    cached_result,
    pause_samples,
    segment_key,
)
from studio.engine.synth import AudioChunk
from studio.session.pipeline import JobEvents, JobOutcome, RenderJob

RAY_MISSING = ("Ray is not installed: pip install 'qwen-tts-studio[cluster]' (on this computer and on every "
               "node of the cluster)")
MAX_ATTEMPTS = 3  # tries per segment before it is reported failed
START_TIMEOUT_S = 600  # a worker loading (or downloading) a model; after that with no worker answering, give up
SEGMENTS_PER_TASK = 4  # what a worker decodes together per task (one row block of the batched decoder)


def import_ray():
    """The ray module, or EngineError saying how to get it."""
    try:
        import ray
    except ImportError:
        raise EngineError(RAY_MISSING) from None
    return ray


# The address this process's Ray was started with by run_job_on_cluster (absent: not started by it).
_connected: dict[str, str | None] = {}


@dataclass
class ClusterOptions:
    address: str | None = None  # None or "auto": a Ray started on this computer; else a cluster's address
    workers: int | None = None  # None: one per GPU, else one per `cpu_threads` cores of the cluster
    cpu_threads: int = 2  # torch threads per CPU worker (and CPUs Ray reserves for it)
    device: str = "auto"  # what each worker loads its model on


class _CapturingCache:
    """A worker's stand-in for the render cache: nothing is found, and what would be stored is kept, so the
    driver stores exactly what a local render would have (samples and metadata) in the real cache."""

    def __init__(self) -> None:
        self.stored: dict[str, tuple] = {}

    def get(self, key):  # noqa: ARG002 - the interface of RenderCache.get
        return None

    def put(self, key, samples, rate, meta) -> None:
        self.stored[key] = (rate, meta)


class RenderWorker:
    """A cluster worker (made a Ray actor by `_actor_class`): one loaded model, segments in, results out."""

    def __init__(self, source: str, device: str, cpu_threads: int) -> None:
        from studio.engine.loader import load_model
        from studio.engine.synth import Synthesizer

        self.synth = Synthesizer(load_model(source, device=device, cpu_threads=cpu_threads))

    def pid(self) -> int:
        return os.getpid()

    def model_info(self):
        return self.synth.loaded.info

    def render(self, segments, voices, generation, decoder) -> list[tuple[SegmentResult, tuple | None]]:
        from studio.engine.render import render_segments

        capture = _CapturingCache()
        # batch 0: the batched decoder whatever the count, so the audio is what any grouping gives.
        options = RenderOptions(generation=generation, use_cache=False, decoder=decoder, batch=0)
        results = render_segments(segments, synth=self.synth, voices=voices, cache=capture, options=options)
        return [(r, capture.stored.get(r.key)) for r in results]


def _actor_class(ray, options: ClusterOptions, gpus: int):
    resources = {"num_gpus": 1} if gpus else {"num_cpus": options.cpu_threads}
    # A killed worker comes back (its model loaded again) for the segments still to do.
    return ray.remote(max_restarts=MAX_ATTEMPTS, max_task_retries=0, **resources)(RenderWorker)


def _worker_count(ray, options: ClusterOptions) -> tuple[int, int]:
    """(workers, GPUs per worker) for the cluster's resources."""
    # The nodes alive now (the cluster's totals lag behind a node that left).
    alive = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    resources = {"CPU": sum(r.get("CPU", 0) for r in alive), "GPU": sum(r.get("GPU", 0) for r in alive)}
    gpus = int(resources.get("GPU", 0)) if options.device in ("auto", "cuda") else 0
    if options.workers:
        return options.workers, 1 if gpus else 0
    if gpus:
        return gpus, 1
    return max(1, int(resources.get("CPU", 1)) // max(1, options.cpu_threads)), 0


@dataclass
class _Task:
    worker: object
    segments: list[PlannedSegment]


def run_job_on_cluster(job: RenderJob, options: ClusterOptions, events: JobEvents | None = None,
                       on_workers: Callable[[list], None] | None = None) -> JobOutcome:
    """Render `job` on a Ray cluster; the same outcome as pipeline.run_job. `on_workers` receives each model's
    worker handles as they are asked to start."""
    events = events or JobEvents()
    outcome = JobOutcome(job.job_id, [], SAMPLE_RATE)
    try:
        ray = import_ray()
    except EngineError as exc:
        outcome.error = str(exc)
        return outcome
    address = None if options.address in (None, "", "auto") else options.address
    if ray.is_initialized() and _connected.get("address", address) != address:
        ray.shutdown()  # another cluster was chosen since the last render: leave the old one
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds for an unreachable cluster
            _connected.clear()
            outcome.error = f"Ray cluster at {address or 'this computer'}: {_reason(exc)}"
            return outcome
        _connected["address"] = address
    cache = RenderCache(job.cache_dir) if job.cache_dir else None
    results: dict[int, SegmentResult] = {}

    def finished(result: SegmentResult) -> None:
        results[result.segment.index] = result
        if events.chunk_ready and result.samples is not None:
            events.chunk_ready(result.segment.index, AudioChunk(result.samples, SAMPLE_RATE, 0, True))
        if events.segment_finished:
            events.segment_finished(result)

    workers: list = []
    try:
        for source in dict.fromkeys(s for s in (job.model_for(seg) for seg in job.segments) if s is not None):
            segments = [s for s in job.segments if job.model_for(s) == source and s.kind == "speech"]
            workers = _start_workers(ray, options, source, events)
            if on_workers:
                on_workers(workers)
            pool = _Pool(ray, workers, job)
            info = pool.first_model_info(source)
            outcome.models[source] = info
            outcome.loads.append(source)
            if events.model_loaded:
                events.model_loaded(info)
            todo = _look_up(segments, job, info, cache, finished)
            _distribute(pool, todo, job, cache, finished, events)
            for worker in workers:
                ray.kill(worker, no_restart=True)
            workers = []
        for segment in job.segments:
            if segment.index in results:
                continue
            if segment.kind == "pause":
                finished(SegmentResult(segment, DONE, samples=pause_samples(segment.seconds, SAMPLE_RATE)))
            else:
                finished(SegmentResult(segment, FAILED, error=f"line {segment.line}: no model is set for voice "
                                                               f"{segment.voice!r}"))
    except _CancelledOnCluster:
        outcome.cancelled = True
    except EngineError as exc:
        outcome.error = str(exc)
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)
    outcome.results.extend(sorted(results.values(), key=lambda r: r.segment.index))
    return outcome


class _CancelledOnCluster(Exception):
    pass


def _start_workers(ray, options: ClusterOptions, source: str, events: JobEvents) -> list:
    """The workers for `source`, asked to start (each loads the model; none is waited for here)."""
    count, gpus = _worker_count(ray, options)
    if events.model_loading:
        events.model_loading(f"starting {count} cluster worker(s) for {source}")
    actor = _actor_class(ray, options, gpus)
    device = "cuda" if gpus else ("cpu" if options.device == "auto" else options.device)
    return [actor.remote(source, device, options.cpu_threads) for _ in range(count)]


class _Pool:
    """The workers of one model: idle ones, busy ones, and ones not answering yet (starting, or restarting
    after a crash). A worker gets work once it answers; one that is gone for good is dropped; one that
    cannot be placed (its node left, no room) simply never answers and never holds anything up."""

    def __init__(self, ray, workers: list, job: RenderJob) -> None:
        self.ray, self.job = ray, job
        self.idle: deque = deque()
        self.waiting = {worker.pid.remote(): worker for worker in workers}  # probe ref -> worker
        self.last_answer = time.monotonic()

    def probe(self, worker) -> None:
        self.waiting[worker.pid.remote()] = worker

    def answered(self, ref) -> None:
        """A probe came back: the worker is idle, starting again, or gone."""
        worker = self.waiting.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.ActorDiedError:
            return  # gone for good (its restarts used up, or its model would not load): the others carry on
        except self.ray.exceptions.RayError:
            self.probe(worker)  # still coming back
            return
        self.idle.append(worker)
        self.last_answer = time.monotonic()

    def stalled(self) -> bool:
        """No worker can take work: none answers (for START_TIMEOUT_S), or none is left."""
        if self.idle:
            return False
        return not self.waiting or time.monotonic() - self.last_answer > START_TIMEOUT_S

    def first_model_info(self, source: str):
        """The model as the first worker to answer loaded it (its device and precision make the cache keys)."""
        while not self.idle:
            if self.job.cancel.is_set():
                raise _CancelledOnCluster()
            if self.stalled():
                raise EngineError(f"{source}: no cluster worker could load it (in {START_TIMEOUT_S} s)")
            ready, _ = self.ray.wait(list(self.waiting), num_returns=1, timeout=0.2)
            if ready:
                self.answered(ready[0])
        try:
            return self.ray.get(self.idle[0].model_info.remote())
        except self.ray.exceptions.RayError as exc:
            raise EngineError(f"{source}: the cluster worker stopped before rendering: {_reason(exc)}") from None


def _look_up(segments, job: RenderJob, info, cache, finished) -> list[PlannedSegment]:
    """The segments the cache lacks (keys made with the workers' model, device and precision)."""
    todo = []
    for segment in segments:
        voice = job.voices.get(segment.voice)
        if voice is None:
            name = "the default voice" if segment.voice is None else f"voice {segment.voice!r}"
            finished(SegmentResult(segment, FAILED, error=f"line {segment.line}: {name} is not set up in the cast"))
            continue
        try:
            key = segment_key(segment, voice, info, job.generation, job.decoder)
        except VoiceError as exc:  # a clip that is gone
            finished(SegmentResult(segment, FAILED, error=str(exc)))
            continue
        hit = cache.get(key) if (cache is not None and job.use_cache) else None
        if hit is not None and hit.sample_rate == SAMPLE_RATE:
            finished(cached_result(segment, hit, key, info.source))
        else:
            todo.append(segment)
    return todo


def _distribute(pool: _Pool, todo, job: RenderJob, cache, finished, events: JobEvents) -> None:
    """Hand `todo` out to the pool's workers, largest first, retrying what a dead worker had (said as
    progress). A worker that failed gets work again only once it answers (Ray restarts it, model and all);
    until then its segments go to the others."""
    ray = pool.ray
    queue = deque(sorted(todo, key=lambda s: len(s.model_text), reverse=True))
    attempts = {s.index: 0 for s in todo}
    running: dict = {}  # task ref -> _Task

    def hand_out() -> None:
        while pool.idle and queue:
            worker = pool.idle.popleft()
            batch = [queue.popleft() for _ in range(min(SEGMENTS_PER_TASK, len(queue)))]
            for segment in batch:
                attempts[segment.index] += 1
                if events.segment_started:
                    events.segment_started(segment.index)
            ref = worker.render.remote(batch, job.voices, job.generation, job.decoder)
            running[ref] = _Task(worker, batch)

    def lost(task: _Task, exc: Exception) -> None:
        reason = _reason(exc)
        again = 0
        for segment in reversed(task.segments):
            if attempts[segment.index] >= MAX_ATTEMPTS:
                finished(SegmentResult(segment, FAILED, error=f"failed on the cluster {MAX_ATTEMPTS} times; "
                                                               f"last: {reason}"))
            else:
                queue.appendleft(segment)
                again += 1
        if events.model_loading:
            events.model_loading(f"a cluster worker stopped ({reason}); {again} segment(s) go to another worker")
        pool.probe(task.worker)

    hand_out()
    while running or (queue and not pool.stalled()):
        if job.cancel.is_set():
            raise _CancelledOnCluster()
        ready, _ = ray.wait([*running, *pool.waiting], num_returns=1, timeout=0.2)
        if not ready:
            continue
        ref = ready[0]
        if ref in pool.waiting:
            pool.answered(ref)
        else:
            task = running.pop(ref)
            try:
                answers = ray.get(ref)
            except ray.exceptions.RayError as exc:
                lost(task, exc)
            else:
                for result, stored in answers:
                    if cache is not None and stored is not None and result.state == DONE:
                        rate, meta = stored
                        cache.put(result.key, result.samples, rate, meta)
                    finished(result)
                pool.idle.append(task.worker)
                pool.last_answer = time.monotonic()
        hand_out()
    for segment in queue:  # no worker can take them
        finished(SegmentResult(segment, FAILED, error="no cluster worker is left to render it (each one died or "
                                                      f"did not answer for {START_TIMEOUT_S} s)"))


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
