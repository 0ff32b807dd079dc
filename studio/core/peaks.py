"""A min/max pyramid for drawing long waveforms.

Drawing an hour of 24 kHz audio means 86 million samples; a screen has a few thousand columns. Each
level of the pyramid stores the min and max of blocks of samples, every level 4x coarser than the one
below, so a view of any width reads at most a few thousand values from the finest level that still
has at least one block per pixel. Appends update only the blocks they touch.
"""

from __future__ import annotations

import numpy as np

BASE_BLOCK = 64
FACTOR = 4
LEVELS = 8  # blocks of 64 .. 64 * 4**7 = 1,048,576 samples (about 44 s at 24 kHz)


class _Column:
    """A growable float32 array (one per level and per min/max)."""

    def __init__(self) -> None:
        self.data = np.zeros(1024, dtype=np.float32)
        self.length = 0

    def set_tail(self, start: int, values: np.ndarray) -> None:
        end = start + len(values)
        if end > len(self.data):
            grown = np.zeros(max(end, 2 * len(self.data)), dtype=np.float32)
            grown[: self.length] = self.data[: self.length]
            self.data = grown
        self.data[start:end] = values
        self.length = max(self.length, end)

    def view(self) -> np.ndarray:
        return self.data[: self.length]


class PeakPyramid:
    def __init__(self) -> None:
        self._mins = [_Column() for _ in range(LEVELS)]
        self._maxs = [_Column() for _ in range(LEVELS)]
        self._samples = 0

    def __len__(self) -> int:
        return self._samples

    @staticmethod
    def block_size(level: int) -> int:
        return BASE_BLOCK * FACTOR**level

    def update(self, samples: np.ndarray, old_length: int) -> None:
        """Account for samples[old_length:] having been appended (`samples` is the whole signal).

        The last block of each level may have been partial before; it is recomputed.
        """
        total = len(samples)
        if total <= old_length:
            return
        first_block = old_length // BASE_BLOCK
        start = first_block * BASE_BLOCK
        chunk = samples[start:total]
        n_blocks = -(-len(chunk) // BASE_BLOCK)
        padded_len = n_blocks * BASE_BLOCK
        if padded_len != len(chunk):
            # Pad with the block's last value so the padding never widens the block's range.
            chunk = np.concatenate([chunk, np.full(padded_len - len(chunk), chunk[-1], dtype=np.float32)])
        blocks = chunk.reshape(n_blocks, BASE_BLOCK)
        self._mins[0].set_tail(first_block, blocks.min(axis=1))
        self._maxs[0].set_tail(first_block, blocks.max(axis=1))
        for level in range(1, LEVELS):
            below_min, below_max = self._mins[level - 1].view(), self._maxs[level - 1].view()
            first = first_block // FACTOR ** level
            lo = first * FACTOR
            tail_min, tail_max = below_min[lo:], below_max[lo:]
            n = -(-len(tail_min) // FACTOR)
            pad = n * FACTOR - len(tail_min)
            if pad:
                tail_min = np.concatenate([tail_min, np.full(pad, tail_min[-1], dtype=np.float32)])
                tail_max = np.concatenate([tail_max, np.full(pad, tail_max[-1], dtype=np.float32)])
            self._mins[level].set_tail(first, tail_min.reshape(n, FACTOR).min(axis=1))
            self._maxs[level].set_tail(first, tail_max.reshape(n, FACTOR).max(axis=1))
        self._samples = total

    def envelope(
        self, samples: np.ndarray, start: int, end: int, columns: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x sample positions, mins, maxs) describing samples[start:end] in about `columns` columns.

        When a column covers fewer samples than the finest block, the raw samples are returned as
        both min and max, so zooming in all the way shows the exact waveform.
        """
        start = max(0, start)
        end = min(end, self._samples)
        if end <= start or columns <= 0:
            empty = np.zeros(0, dtype=np.float32)
            return empty, empty, empty
        per_column = (end - start) / columns
        if per_column < BASE_BLOCK:
            raw = np.asarray(samples[start:end], dtype=np.float32)
            x = np.arange(start, end, dtype=np.float64)
            return x, raw, raw
        level = 0
        while level + 1 < LEVELS and self.block_size(level + 1) <= per_column:
            level += 1
        size = self.block_size(level)
        first, last = start // size, -(-end // size)
        mins = self._mins[level].view()[first:last]
        maxs = self._maxs[level].view()[first:last]
        x = (np.arange(first, first + len(mins), dtype=np.float64) + 0.5) * size
        return x, mins, maxs
