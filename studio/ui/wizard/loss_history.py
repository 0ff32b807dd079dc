"""The loss curve's data: loss per optimizer step and its smoothed line (no Qt)."""

from __future__ import annotations

import bisect
import math


class LossHistory:
    """Loss per optimizer step, with an exponential moving average for the smoothed curve.

    The average is TensorBoard's debiased EMA: weight `smoothing` on the past, divided by
    (1 - smoothing ** n) so the curve starts at the first point instead of climbing from zero.
    Non-finite losses (written as null by the protocol) are counted but never plotted: one NaN would
    otherwise poison every later smoothed value.
    """

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.nonfinite = 0
        self._ema = 0.0

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else 0

    def clear(self) -> None:
        self.steps.clear()
        self.losses.clear()
        self.smoothed.clear()
        self.nonfinite = 0
        self._ema = 0.0

    def truncate(self, after_step: int) -> None:
        """Forget steps after `after_step` (a resume redoes them)."""
        keep = next((i for i, s in enumerate(self.steps) if s > after_step), len(self.steps))
        if keep == len(self.steps):
            return
        steps, losses = self.steps[:keep], self.losses[:keep]
        self.clear()
        for step, loss in zip(steps, losses, strict=True):
            self.add(step, loss)

    def add(self, step: int, loss: float | None) -> None:
        if self.steps and step <= self.steps[-1]:
            # The same step again: a reattach replaying what metrics.csv already had (a no-op), or a
            # resume redoing steps a crash lost (the newest value wins, and what came after it goes).
            at = bisect.bisect_left(self.steps, step)
            if at == len(self.steps) - 1 and self.steps[at] == step and self.losses[at] == loss:
                return
            self.truncate(step - 1)
        if loss is None or not math.isfinite(loss):
            self.nonfinite += 1
            return
        self.steps.append(int(step))
        self.losses.append(float(loss))
        self._ema = self.smoothing * self._ema + (1.0 - self.smoothing) * float(loss)
        self.smoothed.append(self._ema / (1.0 - self.smoothing ** len(self.steps)))
