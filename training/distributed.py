"""Fine-tuning in several processes: what a launch needs, checked before any process group starts.

``accelerate launch --multi_gpu --num_processes N`` (the command the wizard builds for N "GPUs") starts N
copies of ``training.sft`` under torchrun, each with ``WORLD_SIZE`` and ``RANK`` set. Each copy checks
here, before accelerate opens the process group, that the machine can run N of them: on CUDA one GPU
per process and the NCCL backend, on the CPU (``device: "cpu"``) the gloo backend. A launch that does
not fit ends in one error line (every process raises the same one; only the main process reports it),
instead of several ranks failing on "invalid device ordinal" or a hung rendezvous.

``device: "auto"`` on a machine without CUDA trains on the CPU; with more than one process that is
refused rather than quietly run as N CPU processes competing for the same cores: the wizard's setting is
a number of GPUs. ``device: "cpu"`` says the user means CPU processes (tests, machines without a GPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from training.protocol import CommandError

_ONE = "set GPUs to 1"


@dataclass(frozen=True)
class Machine:
    """What this machine offers a multi-process launch (read from torch by ``Machine.probe``)."""

    cuda_devices: int
    distributed: bool  # torch.distributed is built in
    nccl: bool
    gloo: bool

    @classmethod
    def probe(cls) -> Machine:
        import torch

        cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        dist = torch.distributed.is_available()
        return cls(
            cuda_devices=cuda,
            distributed=dist,
            nccl=dist and torch.distributed.is_nccl_available(),
            gloo=dist and torch.distributed.is_gloo_available(),
        )


def launched_processes() -> int:
    """How many processes this launch started (1 when not started by accelerate launch or torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def check_processes(processes: int, device: str, machine: Machine) -> None:
    """Raise CommandError when `processes` copies of the training cannot run on `machine` with `device`."""
    if processes <= 1:
        return
    if not machine.distributed:
        raise CommandError(
            f"training in {processes} processes needs torch.distributed, which this PyTorch build does not have",
            hint=_ONE,
        )
    if device == "cpu":
        if not machine.gloo:
            raise CommandError(
                f"training in {processes} CPU processes needs the gloo backend, which this PyTorch build lacks",
                hint=_ONE,
            )
        return
    if machine.cuda_devices == 0:
        raise CommandError(
            f"{processes} GPUs were asked for, but this machine has no CUDA GPU",
            hint=f"{_ONE}, or set device to cpu to train in {processes} CPU processes",
        )
    if processes > machine.cuda_devices:
        raise CommandError(
            f"{processes} GPUs were asked for, but this machine has {machine.cuda_devices}",
            hint=f"set GPUs to at most {machine.cuda_devices}",
        )
    if not machine.nccl:
        raise CommandError(
            f"training on {processes} GPUs needs the NCCL backend, which this PyTorch build lacks", hint=_ONE
        )


def cpu_threads_per_process(configured: int | None, processes: int) -> int | None:
    """CPU threads for each process: the configured number, else the cores shared out between processes."""
    if configured is not None or processes <= 1:
        return configured
    return max(1, (os.cpu_count() or 1) // processes)
