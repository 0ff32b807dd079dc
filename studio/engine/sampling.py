"""Token selection for the fast decode loop, with the semantics of transformers' logits processors.

The reference path (qwen-tts's `generate`, which is Hugging Face `generate`) turns logits into a token
with a chain of processors; the fast loop must pick from the same distribution, or "fast" would be a
different voice. What the talker's chain does, in transformers 4.57's order:

- repetition penalty over the first-codebook tokens generated so far (`logit / p` when positive,
  `logit * p` when negative), applied whether or not sampling is on;
- min-new-tokens: end-of-speech is impossible for the first `min_new_tokens` tokens;
- suppressed tokens (the top 1024 of the codec vocabulary except end-of-speech) are impossible;
- when sampling: temperature, then top-k (keep every logit >= the k-th largest, ties included), then
  top-p when below 1 (drop the smallest tokens whose cumulative probability stays <= 1 - p);
- sampling draws from the softmax; greedy takes the first maximum.

The code predictor's chain is only the sampling part (its generation config is empty). Everything here
works on tensors of fixed shape, so it can run inside a compiled graph: sampling uses the exponential
race (argmax of p / E with E ~ Exp(1) picks index i with probability p_i, like torch.multinomial) rather
than multinomial, which breaks a CUDA graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplerSettings:
    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0


def penalise_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """`logits` (B, V) with the tokens marked in `seen` (B, V bool) made less likely by `penalty`."""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalised, logits)


def warp(scores: torch.Tensor, settings: SamplerSettings) -> torch.Tensor:
    """Temperature, top-k and top-p as transformers applies them when sampling (no-ops otherwise)."""
    if not settings.do_sample:
        return scores
    if settings.temperature != 1.0:
        scores = scores / settings.temperature
    if settings.top_k:
        k = min(max(int(settings.top_k), 1), scores.shape[-1])
        kth = torch.topk(scores, k).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if settings.top_p < 1.0:
        ascending, order = torch.sort(scores, descending=False)
        cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= (1 - settings.top_p)
        drop[..., -1:] = False  # keep at least one token
        scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return scores


def choose(scores: torch.Tensor, settings: SamplerSettings, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of processed `scores` (B, V) -> (B,) int64, drawn from `generator` (a segment's own
    stream, in batched decoding) or else the global torch RNG."""
    if not settings.do_sample:
        return torch.argmax(scores, dim=-1)
    probs = torch.softmax(scores, dim=-1)
    race = torch.empty_like(probs).exponential_(1, generator=generator)
    return torch.argmax(probs / race, dim=-1)

