"""Which device "auto" means on this machine, described for people (the model manager shows it)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from studio.core.units import format_bytes


@dataclass(frozen=True)
class DetectedDevice:
    """What device "auto" picks on this machine, and what it is."""

    device: str  # cuda | mps | cpu
    name: str  # the GPU's name, or a short description
    total_memory: int | None = None  # bytes of GPU memory (CUDA only)
    note: str = ""  # why detection fell back to the CPU, if it did

    def describe(self) -> str:
        if self.device == "cuda":
            memory = f", {format_bytes(self.total_memory)} VRAM" if self.total_memory else ""
            return f"CUDA: {self.name}{memory}"
        if self.device == "mps":
            return f"MPS: {self.name}"
        return f"CPU ({self.note})" if self.note else "CPU (no CUDA or MPS GPU found)"


@functools.cache
def _detect_once() -> DetectedDevice:
    try:
        import torch

        from studio.engine.loader import pick_device

        device = pick_device("auto")
        if device == "cuda":
            props = torch.cuda.get_device_properties(0)
            return DetectedDevice("cuda", props.name, int(props.total_memory))
        if device == "mps":
            return DetectedDevice("mps", "Apple GPU")
        return DetectedDevice("cpu", "CPU")
    except ImportError:
        return DetectedDevice("cpu", "CPU", note="torch is not installed")
    except Exception as exc:  # a broken CUDA driver must not stop the dialog from opening
        return DetectedDevice("cpu", "CPU", note=f"GPU detection failed: {str(exc).splitlines()[0][:80]}")


def detect_device() -> DetectedDevice:
    """The device "auto" resolves to. Importing torch takes seconds, so it is done once per process."""
    return _detect_once()
