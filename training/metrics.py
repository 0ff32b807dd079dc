"""What a run records per step: metrics.csv (always) and TensorBoard scalars (when installed)."""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from training.run_folder import METRICS_COLUMNS, RunFolder

if TYPE_CHECKING:
    import torch


def peak_memory_gb(device: torch.device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


class MetricsLog:
    """TensorBoard scalars (when tensorboard is installed) and metrics.csv, main process only."""

    COLUMNS = METRICS_COLUMNS

    def __init__(self, paths: RunFolder, start_step: int, warn: Callable[[str], None]) -> None:
        self.csv_path = paths.metrics
        self._keep_rows(start_step)
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            warn("tensorboard is not installed: metrics go to metrics.csv only (pip install tensorboard)")
        else:
            # purge_step drops what an interrupted run logged after the step we resume from.
            self.writer = SummaryWriter(str(paths.tensorboard), purge_step=start_step + 1 if start_step else None)

    def _keep_rows(self, start_step: int) -> None:
        rows = []
        if self.csv_path.is_file() and start_step > 0:
            with self.csv_path.open(newline="", encoding="utf-8") as handle:
                rows = [
                    r for r in csv.DictReader(handle) if r.get("step", "").isdigit() and int(r["step"]) <= start_step
                ]
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with self.csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        with self.csv_path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=self.COLUMNS, extrasaction="ignore").writerow(
                {"step": step, "time": round(time.time(), 3), **metrics}
            )
        if self.writer is not None:
            for name in ("loss", "talker_loss", "code_predictor_loss", "lr", "grad_norm", "steps_per_s", "peak_mem_gb"):
                value = metrics.get(name)
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(f"train/{name}", value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

