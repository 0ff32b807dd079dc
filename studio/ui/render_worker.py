"""The render worker: one long-lived QObject on a QThread that owns the model and renders jobs in order.

The model is loaded once and kept, so every later job starts generating at once, and every model call
happens on this one thread (qwen-tts and torch are not re-entrant). The UI thread talks to it only
through queued signals. Every signal carries the job id (and segment index), so results of a job the
user already replaced are recognised and dropped. Cancel is a threading.Event checked between
segments and between chunks.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from studio.core.cache import RenderCache
from studio.core.plan import PlannedSegment
from studio.core.project import GenerationParams
from studio.core.voice import VoiceSpec
from studio.engine.loader import EngineError, LoadedModel, load_model
from studio.engine.render import RenderCallbacks, RenderOptions, SegmentResult, render_by_model
from studio.engine.synth import Cancelled, Synthesizer


def _freeze_heap() -> None:
    """Exempt what is loaded now (modules, the model's Python objects) from the cyclic collector.

    A full collection walks every tracked object; with torch, transformers and a model loaded that is
    millions of them, and the thread that triggers it holds the interpreter for tens of milliseconds,
    which the UI thread feels as a stall while a render streams in. Frozen objects are never scanned.
    """
    import gc

    gc.collect()
    gc.freeze()


@dataclass
class RenderJob:
    job_id: int
    model: str
    segments: list[PlannedSegment]
    voices: dict[str | None, VoiceSpec]
    cache_dir: Path | None
    device: str = "auto"
    cpu_threads: int | None = None
    prompt_cache_dir: Path | None = None
    generation: GenerationParams = field(default_factory=GenerationParams)
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class JobOutcome:
    job_id: int
    results: list[SegmentResult]
    sample_rate: int
    cancelled: bool = False
    error: str | None = None  # the whole job failed (e.g. the model did not load)


class RenderWorker(QObject):
    """Lives on the render thread. Signals are emitted from that thread and arrive queued in the UI."""

    model_loading = Signal(int, str)  # job_id, message
    model_loaded = Signal(int, object)  # job_id, ModelInfo
    segment_started = Signal(int, int)  # job_id, segment index
    chunk_rendered = Signal(int, int, object)  # job_id, segment index, AudioChunk
    segment_finished = Signal(int, int, object)  # job_id, segment index, SegmentResult
    job_finished = Signal(int, object)  # job_id, JobOutcome

    def __init__(self) -> None:
        super().__init__()
        self._loaded: LoadedModel | None = None
        self._loaded_key: tuple[str, str, int | None] | None = None

    def _model_for(self, job: RenderJob, model: str) -> LoadedModel:
        key = (model, job.device, job.cpu_threads)
        if self._loaded is None or self._loaded_key != key:
            # One model resident at a time: drop the old one before loading the next.
            self._loaded = None
            self._loaded_key = None
            self._free_device_memory()
            self._loaded = load_model(
                model,
                device=job.device,
                cpu_threads=job.cpu_threads,
                progress=lambda message: self.model_loading.emit(job.job_id, message),
            )
            self._loaded_key = key
            _freeze_heap()
        return self._loaded

    @staticmethod
    def _free_device_memory() -> None:
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

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

    @Slot(object)
    def run_job(self, job: RenderJob) -> None:
        results: list[SegmentResult] = []
        sample_rate = 24000
        synths: dict[str, Synthesizer] = {}

        def synth_for(model: str) -> Synthesizer:
            nonlocal sample_rate
            loaded = self._model_for(job, model)
            if model not in synths or synths[model].loaded is not loaded:
                synths[model] = Synthesizer(loaded, prompt_cache_dir=job.prompt_cache_dir)
                self.model_loaded.emit(job.job_id, loaded.info)
            sample_rate = synths[model].sample_rate
            return synths[model]

        try:
            callbacks = RenderCallbacks(
                segment_started=lambda index: self.segment_started.emit(job.job_id, index),
                chunk_ready=lambda index, chunk: self.chunk_rendered.emit(job.job_id, index, chunk),
                segment_finished=lambda result: (
                    results.append(result),
                    self.segment_finished.emit(job.job_id, result.segment.index, result),
                ),
            )
            render_by_model(
                job.segments,
                default_model=job.model,
                synth_for=synth_for,
                voices=job.voices,
                cache=RenderCache(job.cache_dir) if job.cache_dir else None,
                options=RenderOptions(generation=job.generation),
                cancel=job.cancel,
                callbacks=callbacks,
            )
        except Cancelled:
            results.sort(key=lambda r: r.segment.index)
            self.job_finished.emit(job.job_id, JobOutcome(job.job_id, results, sample_rate, cancelled=True))
            return
        except EngineError as exc:
            self.job_finished.emit(job.job_id, JobOutcome(job.job_id, results, sample_rate, error=str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - the thread must survive to serve the next job
            traceback.print_exc()
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.job_finished.emit(job.job_id, JobOutcome(job.job_id, results, sample_rate, error=message))
            return
        results.sort(key=lambda r: r.segment.index)
        self.job_finished.emit(job.job_id, JobOutcome(job.job_id, results, sample_rate))


class RenderController(QObject):
    """UI-thread owner of the render thread: submits jobs, cancels them, shuts the thread down."""

    _submit = Signal(object)
    _prewarm = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("render-thread")
        self.worker = RenderWorker()
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run_job)
        self._prewarm.connect(self.worker.prewarm)
        self._next_id = 0
        self._active: dict[int, RenderJob] = {}
        self.worker.job_finished.connect(self._on_worker_job_finished)

    def prewarm(self) -> None:
        if not self.thread.isRunning():
            self.thread.start()
        self._prewarm.emit()

    def submit(self, **job_fields) -> RenderJob:
        """Queue a job; it runs after any job already queued. Returns it (with its id and cancel event)."""
        if not self.thread.isRunning():
            # Started on first use: a window that never renders never owns a running thread.
            self.thread.start()
        self._next_id += 1
        job = RenderJob(job_id=self._next_id, **job_fields)
        self._active[job.job_id] = job
        self._submit.emit(job)
        return job

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
