"""What the optimizer trains and at which rate: AdamW parameter groups and the learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

from training.config import SFTConfig


def parameter_groups(talker: Any, config: SFTConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: decay for matrices, none for biases and norm scales.

    The text embedding (151936 x 2048 in the published models, 311 M parameters) is frozen by default:
    one speaker's transcripts touch a sliver of its rows, yet its gradients and AdamW moments would
    cost about 3.7 GB, and the voice lives in the codec side, not in how words are embedded.
    """
    if config.freeze_text_embedding:
        talker.get_text_embeddings().weight.requires_grad_(False)
    decay, no_decay = [], []
    for _, param in talker.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate multiplier for optimizer step `step` (1-based) of `total`.

    Linear warm-up to the full rate at step `warmup`, then cosine or linear decay that stays above 0
    at the last step, so no step is spent at a rate of 0.
    """
    if warmup > 0 and step <= warmup:
        return step / warmup
    progress = (step - warmup) / max(1, total - warmup + 1)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps_for(config: SFTConfig, total: int) -> int:
    if config.warmup_steps is not None:
        return config.warmup_steps
    return min(100, round(0.05 * total))

