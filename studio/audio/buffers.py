"""Sample storage shared by the renderer (producer), the waveform and playback.

`GrowingAudio` holds a render's samples as they arrive. `RingBuffer` is the fixed-size single-producer
single-consumer queue that sits between playback's feeder thread and the audio callback.
"""

from __future__ import annotations

import threading

import numpy as np


class GrowingAudio:
    """Append-only float32 mono samples with amortised O(1) appends and cheap random reads.

    Readers on other threads may read while one writer appends: the writer fills the new samples
    before publishing the new length, and a reallocation swaps in a complete copy, so a reader always
    sees a consistent prefix.
    """

    def __init__(self, sample_rate: int, capacity: int = 1 << 16) -> None:
        self.sample_rate = sample_rate
        self._data = np.zeros(max(1, capacity), dtype=np.float32)
        self._length = 0
        self._lock = threading.Lock()  # writers only; readers never block

    def __len__(self) -> int:
        return self._length

    @property
    def seconds(self) -> float:
        return self._length / self.sample_rate

    def append(self, samples: np.ndarray) -> tuple[int, int]:
        """Append; returns the (start, end) sample range the new samples occupy."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            start = self._length
            end = start + len(samples)
            if end > len(self._data):
                grown = np.zeros(max(end, 2 * len(self._data)), dtype=np.float32)
                grown[:start] = self._data[:start]
                self._data = grown
            self._data[start:end] = samples
            self._length = end
        return start, end

    def clear(self) -> None:
        with self._lock:
            self._length = 0

    def view(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """A read-only view of samples [start, end) (clipped to what exists)."""
        # Length first: any array read afterwards holds at least that many valid samples.
        length = self._length
        data = self._data
        end = length if end is None else min(end, length)
        start = max(0, min(start, end))
        view = data[start:end]
        view.flags.writeable = False
        return view


class TimelineAudio:
    """Audio placed on a timeline with silence around it: runs of one compact GrowingAudio, each at its own
    timeline position; everything between them is silence that takes no memory.

    A project's mix while only some lines are rendered: a long script's unrendered lines are silent spans
    as long as their estimates (a 90-hour draft would otherwise be 30 GB of zeros). Reads look like
    GrowingAudio's (`view`, `len`, `sample_rate`), so the player and the waveform take either.
    """

    def __init__(self, compact: GrowingAudio, length: int, runs) -> None:
        """`runs`: (timeline start, start in `compact`, length) each, in timeline order, not overlapping."""
        self.compact = compact
        self.sample_rate = compact.sample_rate
        table = np.asarray(list(runs), dtype=np.int64).reshape(-1, 3)
        self.run_starts = table[:, 0].copy()
        self.run_sources = table[:, 1].copy()
        self.run_lengths = table[:, 2].copy()
        self.run_ends = self.run_starts + self.run_lengths
        self._length = int(length)

    def __len__(self) -> int:
        return self._length

    @property
    def seconds(self) -> float:
        return self._length / self.sample_rate

    def runs_overlapping(self, start: int, end: int) -> range:
        """Indexes of the runs that overlap timeline samples [start, end)."""
        first = int(np.searchsorted(self.run_ends, start, side="right"))
        last = int(np.searchsorted(self.run_starts, end, side="left"))
        return range(first, max(first, last))

    def view(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Samples [start, end) of the timeline (clipped to its length): a new array, silence where no run is."""
        end = self._length if end is None else min(end, self._length)
        start = max(0, min(start, end))
        out = np.zeros(end - start, dtype=np.float32)
        source = self.compact.view()
        for i in self.runs_overlapping(start, end):
            run_start, run_source = int(self.run_starts[i]), int(self.run_sources[i])
            lo, hi = max(start, run_start), min(end, int(self.run_ends[i]))
            out[lo - start : hi - start] = source[run_source + lo - run_start : run_source + hi - run_start]
        out.flags.writeable = False
        return out


class RingBuffer:
    """Lock-free single-producer single-consumer float32 ring.

    The producer only advances `_write`, the consumer only advances `_read`; each index is a plain
    Python int whose assignment is atomic, so neither side ever waits for the other. This is what
    lets the audio callback copy without taking a lock.
    """

    def __init__(self, capacity: int) -> None:
        self._buffer = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        self._write = 0
        self._read = 0

    def available(self) -> int:
        return self._write - self._read

    def free(self) -> int:
        return self.capacity - self.available()

    def write(self, samples: np.ndarray) -> int:
        """Producer side: copy in as many samples as fit; returns how many were written."""
        n = min(len(samples), self.free())
        if n <= 0:
            return 0
        start = self._write % self.capacity
        first = min(n, self.capacity - start)
        self._buffer[start : start + first] = samples[:first]
        if n > first:
            self._buffer[: n - first] = samples[first:n]
        self._write += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Consumer side: fill `out` from the ring (zeros past what is available); returns samples read."""
        n = min(len(out), self.available())
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buffer[start : start + first]
        if n > first:
            out[first:n] = self._buffer[: n - first]
        if n < len(out):
            out[n:] = 0.0
        self._read += n
        return n

    def reset(self) -> None:
        """Drop everything queued. Only safe while the consumer is not reading (stream paused)."""
        self._read = self._write
