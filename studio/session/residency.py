"""Which models stay loaded: as many as fit a memory budget, the least recently used evicted first.

A mixed cast needs several checkpoints (a designed narrator on VoiceDesign, a cloned guest on Base, a
preset on CustomVoice). Loading one takes seconds to a minute, so the render keeps as many resident as
the budget allows and the render order (see pipeline.order_for_budget) groups segments so that a tight
budget still loads each model once. Not thread-safe: it lives on the one thread that renders.
"""

from __future__ import annotations

import gc
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.engine.errors import EngineError
from studio.engine.loader import LoadedModel, load_model
from studio.engine.synth import Synthesizer
from studio.session.checkpoints import describe_source

# Of the memory free when a render starts, the share models may take: the rest is for activations,
# the KV cache, the UI and whatever else the user runs.
BUDGET_SHARE_OF_FREE = 0.6


def _available_ram_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def default_budget_bytes(device: str, resident_bytes: int = 0) -> int:
    """What the models may take on `device`: a share of the free memory plus what they hold already."""
    free = None
    if device.startswith("cuda"):
        try:
            import torch

            free = torch.cuda.mem_get_info(torch.device(device))[0]
        except Exception:  # noqa: BLE001 - no CUDA after all: fall back to RAM
            free = None
    if free is None:
        free = _available_ram_bytes()
    return int(free * BUDGET_SHARE_OF_FREE) + resident_bytes


def measured_bytes(loaded: LoadedModel) -> int:
    """Bytes of a loaded model's weights and buffers, as they sit on the device."""
    model = loaded.tts.model
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class Resident:
    synth: Synthesizer
    bytes: int


class ModelResidency:
    """Loaded models by source, least recently used first.

    `budget_bytes` None means automatic (a share of the memory free on the device). One model is always
    allowed, however large: a budget that fits none means "one at a time", not "nothing renders".
    """

    def __init__(
        self,
        *,
        device: str = "auto",
        cpu_threads: int | None = None,
        budget_bytes: int | None = None,
        prompt_cache_dir: Path | None = None,
        fingerprint_memo: Path | None = None,
        loader: Callable[..., LoadedModel] = load_model,
    ) -> None:
        self.device = device
        self.cpu_threads = cpu_threads
        self.budget_bytes = budget_bytes
        self.prompt_cache_dir = prompt_cache_dir
        self.fingerprint_memo = fingerprint_memo
        self._loader = loader
        self._resident: OrderedDict[str, Resident] = OrderedDict()
        self.loads: list[str] = []  # every load, in order: what a render cost in model swaps
        self.evictions: list[str] = []

    @property
    def resident(self) -> list[str]:
        return list(self._resident)

    @property
    def resident_bytes(self) -> int:
        return sum(r.bytes for r in self._resident.values())

    def settings_match(self, device: str, cpu_threads: int | None) -> bool:
        return (device, cpu_threads) == (self.device, self.cpu_threads)

    def budget(self) -> int:
        if self.budget_bytes is not None:
            return self.budget_bytes
        if self._resident:
            device = next(iter(self._resident.values())).synth.loaded.info.device
        else:
            # "auto" is the device a load would pick: a GPU's free VRAM, not the RAM, decides the order.
            from studio.engine.loader import pick_device

            try:
                device = pick_device(self.device)
            except EngineError:
                device = "cpu"
        return default_budget_bytes(device, self.resident_bytes)

    def estimate_bytes(self, source: str) -> int:
        """A model's size before it is loaded: its safetensors parameter count at four bytes each."""
        from studio.engine.models import count_parameters

        described = describe_source(source)
        if described is None:
            return 0
        try:
            return count_parameters(described.folder) * 4
        except (OSError, ValueError):
            return 0

    def fits_together(self, sources: list[str]) -> bool:
        """Whether all of `sources` could be resident at once within the budget."""
        total = 0
        for source in sources:
            held = self._resident.get(source)
            total += held.bytes if held is not None else self.estimate_bytes(source)
        return total <= self.budget()

    def acquire(self, source: str, *, progress: Callable[[str], None] | None = None) -> Synthesizer:
        """The synthesizer for `source`, loading it (and evicting others to make room) when needed."""
        held = self._resident.get(source)
        if held is not None:
            self._resident.move_to_end(source)
            return held.synth
        needed = self.estimate_bytes(source)
        budget = self.budget()
        while self._resident and self.resident_bytes + needed > budget:
            self._evict_oldest()
        loaded = self._loader(
            source, device=self.device, cpu_threads=self.cpu_threads, progress=progress,
            fingerprint_memo=self.fingerprint_memo,
        )
        synth = Synthesizer(loaded, prompt_cache_dir=self.prompt_cache_dir)
        self._resident[source] = Resident(synth, measured_bytes(loaded))
        self.loads.append(source)
        return synth

    def _evict_oldest(self) -> None:
        source, _ = self._resident.popitem(last=False)
        self.evictions.append(source)
        self._free()

    @staticmethod
    def _free() -> None:
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def clear(self) -> None:
        self._resident.clear()
        self._free()
