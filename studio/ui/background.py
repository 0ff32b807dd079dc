"""The UI's one way to run work off the main thread (besides the render worker, which owns the model).

Like Anki's ``run_in_background(task, on_done)``: a callable runs on a worker thread; its result, its
exception and anything it reports along the way arrive on the main thread, through a queued signal,
as plain callbacks. The work itself knows nothing of Qt: it gets a BackgroundTask whose
``cancel_event`` it may pass to Qt-free code (``download_model(cancel=...)``) and whose ``report``
forwards progress.

Stale results: a task started with a ``key`` supersedes the running task of the same key; the older
one is asked to stop (its cancel event is set) and whatever it still delivers is dropped. ``discard()``
drops a single task's results the same way. ``cancel()`` only asks the work to stop: its outcome (often
an exception such as DownloadCancelled) is still delivered, so the caller can tidy up.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

_DONE, _ERROR, _PROGRESS = "done", "error", "progress"


class BackgroundTask:
    """One piece of background work, as the caller and the work itself see it."""

    def __init__(self, task_id: int, key: str | None):
        self.id = task_id
        self.key = key
        self.cancel_event = threading.Event()
        self.finished = False
        self._discarded = False
        self._runner: BackgroundRunner | None = None
        self._thread: threading.Thread | None = None
        self._on_progress: Callable[[Any], None] | None = None

    def cancel(self) -> None:
        """Ask the work to stop (it sees cancel_event); its outcome is still delivered."""
        self.cancel_event.set()

    def discard(self) -> None:
        """Ask the work to stop and drop everything it still delivers."""
        self._discarded = True
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def discarded(self) -> bool:
        return self._discarded

    @property
    def alive(self) -> bool:
        """Whether the worker thread is still running."""
        return self._thread is not None and self._thread.is_alive()

    def report(self, payload: Any) -> None:
        """Called by the work on its thread: `on_progress(payload)` follows on the main thread."""
        runner = self._runner
        if runner is not None and self._on_progress is not None and not self._discarded:
            runner._delivered.emit(self, _PROGRESS, payload)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread to end (teardown); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


class BackgroundRunner(QObject):
    """Starts BackgroundTasks and delivers their outcomes on the thread this object lives in (the main one)."""

    # Emitted on worker threads; the queued connection makes the slot run on this object's thread.
    _delivered = Signal(object, str, object)  # task, kind, payload

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._running: dict[int, BackgroundTask] = {}
        self._by_key: dict[str, BackgroundTask] = {}
        self._callbacks: dict[int, tuple[Callable[[Any], None] | None, Callable[[BaseException], None] | None]] = {}
        self._delivered.connect(self._on_delivered, Qt.ConnectionType.QueuedConnection)

    def run(
        self,
        work: Callable[[BackgroundTask], Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        key: str | None = None,
    ) -> BackgroundTask:
        """Run `work(task)` on a new thread; `on_done(result)` or `on_error(exception)` follow on this thread.

        With `key`, a task of the same key still running is discarded first (see the module docstring).
        An exception without `on_error` is re-raised on this thread, so it is never silently lost.
        """
        if key is not None and key in self._by_key:
            self._by_key.pop(key).discard()
        task = BackgroundTask(next(self._ids), key)
        task._runner = self
        task._on_progress = on_progress
        self._running[task.id] = task
        self._callbacks[task.id] = (on_done, on_error)
        if key is not None:
            self._by_key[key] = task

        def body() -> None:
            try:
                result = work(task)
            except BaseException as exc:  # noqa: BLE001 - every outcome goes to the main thread
                self._delivered.emit(task, _ERROR, exc)
            else:
                self._delivered.emit(task, _DONE, result)

        task._thread = threading.Thread(target=body, name=f"background-{key or task.id}", daemon=True)
        task._thread.start()
        return task

    def task(self, key: str) -> BackgroundTask | None:
        """The running task of `key`, if any."""
        return self._by_key.get(key)

    @property
    def running(self) -> list[BackgroundTask]:
        return list(self._running.values())

    def shutdown(self, timeout: float | None = None) -> bool:
        """Discard every task and wait for their threads (window teardown); True when all have ended."""
        tasks = list(self._running.values())
        for task in tasks:
            task.discard()
        return all(task.join(timeout) for task in tasks)

    @Slot(object, str, object)
    def _on_delivered(self, task: BackgroundTask, kind: str, payload: Any) -> None:
        if kind == _PROGRESS:
            if not task.discarded and task._on_progress is not None and not task.finished:
                task._on_progress(payload)
            return
        task.finished = True
        self._running.pop(task.id, None)
        on_done, on_error = self._callbacks.pop(task.id, (None, None))
        if task.key is not None and self._by_key.get(task.key) is task:
            del self._by_key[task.key]
        if task._thread is not None:
            task._thread.join()  # the body has emitted its last signal: the join is immediate
        if task.discarded:
            return
        if kind == _DONE:
            if on_done is not None:
                on_done(payload)
        elif on_error is not None:
            on_error(payload)
        else:
            raise payload
