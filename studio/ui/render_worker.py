"""The render worker: one long-lived QObject on a QThread that owns the loaded models and renders jobs.

What a job is and how it runs is the session's (studio.session.pipeline); this module only gives it a
thread. The models stay loaded between jobs (studio.session.residency, within a memory budget), so every
later job starts generating at once, and every model call happens on this one thread (qwen-tts and
torch are not re-entrant). The UI thread talks to it only
through queued signals. Every signal carries the job id (and segment index), so results of a job the
user already replaced are recognised and dropped. Cancel is a threading.Event checked between
segments and between chunks.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from studio.engine.loader import load_model
from studio.session.pipeline import SAMPLE_RATE, JobEvents, JobOutcome, RenderJob, cached_results, run_job
from studio.session.residency import ModelResidency


def _freeze_heap() -> None:
    """Exempt what is loaded now (modules, the model's Python objects) from the cyclic collector.

    A full collection walks every tracked object; with torch, transformers and a model loaded that is
    millions of them, and the thread that triggers it holds the interpreter for tens of milliseconds,
    which the UI thread feels as a stall while a render streams in. Frozen objects are never scanned.
    """
    import gc

    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class RenderMachine:
    """Where models run: per-machine settings the worker's residency is built for."""

    device: str = "auto"
    cpu_threads: int | None = None
    budget_bytes: int | None = None  # None: automatic (a share of the free memory)
    prompt_cache_dir: Path | None = None
    fingerprint_memo: Path | None = None
    cluster: str = ""  # "": render here; "auto" or a Ray address: on Ray workers (studio.session.cluster)


class RenderWorker(QObject):
    """Lives on the render thread. Signals are emitted from that thread and arrive queued in the UI."""

    model_loading = Signal(int, str)  # job_id, message
    model_loaded = Signal(int, object)  # job_id, ModelInfo
    segment_started = Signal(int, int)  # job_id, segment index
    chunk_rendered = Signal(int, int, object)  # job_id, segment index, AudioChunk
    segment_finished = Signal(int, int, object)  # job_id, segment index, SegmentResult
    job_finished = Signal(int, object)  # job_id, JobOutcome
    cache_probed = Signal(int, object)  # job_id, list[SegmentResult] found in the cache

    def __init__(self) -> None:
        super().__init__()
        self.residency: ModelResidency | None = None
        self._machine: RenderMachine | None = None

    def _residency_for(self, machine: RenderMachine) -> ModelResidency:
        if self.residency is None or self._machine != machine:
            if self.residency is not None:
                self.residency.clear()  # another device or thread count: drop what was loaded for the old one
            self.residency = ModelResidency(
                device=machine.device, cpu_threads=machine.cpu_threads, budget_bytes=machine.budget_bytes,
                prompt_cache_dir=machine.prompt_cache_dir, fingerprint_memo=machine.fingerprint_memo,
                loader=_load_and_freeze,
            )
            self._machine = machine
        return self.residency

    @Slot()
    def prewarm(self) -> None:
        """Import torch and qwen-tts on this thread before the first render needs them.

        Those imports take seconds and hold the interpreter in long stretches of C code, which the
        UI would feel as stalls; done right after start-up they happen while the user is still
        reading the script, not while a render streams in.
        """
        import torch  # noqa: F401

        from studio.engine.qwen_import import import_qwen_tts

        import_qwen_tts()
        _freeze_heap()

    @Slot(object, object)
    def run_job(self, job: RenderJob, machine: RenderMachine) -> None:
        job_id = job.job_id
        events = JobEvents(
            model_loading=lambda message: self.model_loading.emit(job_id, message),
            model_loaded=lambda info: self.model_loaded.emit(job_id, info),
            segment_started=lambda index: self.segment_started.emit(job_id, index),
            chunk_ready=lambda index, chunk: self.chunk_rendered.emit(job_id, index, chunk),
            segment_finished=lambda result: self.segment_finished.emit(job_id, result.segment.index, result),
        )
        try:
            if machine.cluster:
                from studio.session.cluster import ClusterOptions, run_job_on_cluster

                options = ClusterOptions(address=machine.cluster, cpu_threads=machine.cpu_threads or 2,
                                         device=machine.device)
                outcome = run_job_on_cluster(job, options, events)
            else:
                outcome = run_job(job, self._residency_for(machine), events)
        except Exception as exc:  # noqa: BLE001 - the thread must survive to serve the next job
            traceback.print_exc()
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            outcome = JobOutcome(job_id, [], SAMPLE_RATE, error=message)
        self.job_finished.emit(job_id, outcome)

    @Slot(object, object)
    def probe_cache(self, job: RenderJob, machine: RenderMachine) -> None:
        """Find what `job` would take from the cache, without loading a model (a reopened project)."""
        try:
            found = cached_results(job, device=machine.device, fingerprint_memo=machine.fingerprint_memo)
        except Exception:  # noqa: BLE001 - showing cached audio is a convenience; rendering still works
            traceback.print_exc()
            found = []
        self.cache_probed.emit(job.job_id, found)


def _load_and_freeze(*args, **kwargs):
    loaded = load_model(*args, **kwargs)
    _freeze_heap()
    return loaded


class RenderController(QObject):
    """UI-thread owner of the render thread: submits jobs, cancels them, shuts the thread down."""

    _submit = Signal(object, object)
    _probe = Signal(object, object)
    _prewarm = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("render-thread")
        self.worker = RenderWorker()
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run_job)
        self._probe.connect(self.worker.probe_cache)
        self._prewarm.connect(self.worker.prewarm)
        self._active: dict[int, RenderJob] = {}
        self.worker.job_finished.connect(self._on_worker_job_finished)

    def prewarm(self) -> None:
        if not self.thread.isRunning():
            self.thread.start()
        self._prewarm.emit()

    def _ensure_running(self) -> None:
        if not self.thread.isRunning():
            # Started on first use: a window that never renders never owns a running thread.
            self.thread.start()

    def submit(self, job: RenderJob, machine: RenderMachine) -> RenderJob:
        """Queue a job; it runs after any job already queued."""
        self._ensure_running()
        self._active[job.job_id] = job
        self._submit.emit(job, machine)
        return job

    def probe(self, job: RenderJob, machine: RenderMachine) -> None:
        """Queue a cache lookup for `job` (results arrive as worker.cache_probed)."""
        self._ensure_running()
        self._probe.emit(job, machine)

    def cancel_all(self) -> None:
        for job in self._active.values():
            job.cancel.set()

    @property
    def busy(self) -> bool:
        return bool(self._active)

    def _on_worker_job_finished(self, job_id: int, _outcome: JobOutcome) -> None:
        self._active.pop(job_id, None)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel everything and stop the thread; True when it ended within the timeout."""
        self.cancel_all()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
