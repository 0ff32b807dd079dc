"""The fast loop's token choice against transformers' own logits processors (what the reference uses).

Two checks per setting: the distribution (after repetition penalty, temperature, top-k, top-p) equals the
one transformers' processors give, to float rounding and with the same support; and tokens drawn with
the exponential race appear with those probabilities (a chi-square test over many draws).
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from studio.engine.sampling import SamplerSettings, choose, penalise_repeats, warp

VOCAB = 64
SEEN = [3, 7, 8, 20, 41]  # tokens generated earlier (the repetition penalty's history)

SETTINGS = [
    SamplerSettings(True, 0.9, 50, 1.0, 1.05),  # qwen-tts's defaults
    SamplerSettings(True, 0.7, 0, 0.8, 1.3),  # top-p alone, strong penalty
    SamplerSettings(True, 1.3, 5, 0.5, 1.0),  # top-k then top-p
    SamplerSettings(True, 1.0, 12, 1.0, 1.0),  # top-k alone at temperature 1
]


def fixed_logits() -> torch.Tensor:
    # Both signs, so the penalty's two branches (divide positive, multiply negative) are both exercised.
    return torch.randn(1, VOCAB, generator=torch.Generator().manual_seed(7)) * 3


def transformers_probabilities(logits: torch.Tensor, settings: SamplerSettings) -> torch.Tensor:
    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(settings.temperature))
    if settings.top_k:
        processors.append(TopKLogitsWarper(settings.top_k))
    if settings.top_p < 1.0:
        processors.append(TopPLogitsWarper(settings.top_p))
    scores = processors(torch.tensor([SEEN]), logits.clone())
    return torch.softmax(scores, dim=-1)[0]


def our_scores(logits: torch.Tensor, settings: SamplerSettings) -> torch.Tensor:
    seen = torch.zeros(1, VOCAB, dtype=torch.bool)
    seen[0, SEEN] = True
    return warp(penalise_repeats(logits, seen, settings.repetition_penalty), settings)


def _name(s: SamplerSettings) -> str:
    return f"t{s.temperature}-k{s.top_k}-p{s.top_p}-r{s.repetition_penalty}"


@pytest.mark.parametrize("settings", SETTINGS, ids=_name)
def test_the_distribution_is_transformers_and_draws_follow_it(settings):
    logits = fixed_logits()
    expected = transformers_probabilities(logits, settings)
    scores = our_scores(logits, settings)
    ours = torch.softmax(scores, dim=-1)[0]
    assert torch.equal(ours > 0, expected > 0), "a different set of tokens can be drawn"
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)

    draws = 40000
    torch.manual_seed(1)
    tokens = choose(scores.expand(draws, -1), settings)
    counts = torch.bincount(tokens, minlength=VOCAB).double()
    assert counts[expected == 0].sum() == 0, "a token outside top-k / top-p was drawn"
    allowed = expected > 0
    expected_counts = expected[allowed].double() * draws
    chi_square = float(((counts[allowed] - expected_counts) ** 2 / expected_counts).sum())
    dof = int(allowed.sum()) - 1
    # Chi-square with `dof` degrees of freedom has mean dof and variance 2 dof; six standard deviations
    # above the mean is far beyond chance (a wrong temperature or a missing penalty lands far above it).
    assert chi_square < dof + 6 * math.sqrt(2 * max(dof, 1)), (chi_square, dof)


def test_a_sampler_that_skips_the_penalty_is_caught():
    # The statistical check has teeth: draws from the unpenalised distribution fail it.
    settings = SamplerSettings(True, 1.0, 0, 1.0, 1.2)
    logits = fixed_logits()
    logits[0, SEEN] = 2.0  # the history holds likely tokens, so the penalty matters
    expected = transformers_probabilities(logits, settings)
    wrong = warp(logits, settings)
    torch.manual_seed(1)
    counts = torch.bincount(choose(wrong.expand(40000, -1), settings), minlength=VOCAB).double()
    expected_counts = expected.double() * 40000
    chi_square = float(((counts - expected_counts) ** 2 / expected_counts).sum())
    dof = VOCAB - 1
    assert chi_square > dof + 6 * math.sqrt(2 * dof)


def test_greedy_takes_the_first_best_token_after_the_penalty_like_transformers():
    greedy = SamplerSettings(do_sample=False, repetition_penalty=1.05)
    logits = torch.zeros(1, VOCAB)
    logits[0, 5] = logits[0, 9] = 2.0  # a tie: transformers' argmax takes the first
    logits[0, 3] = 2.05  # the best, but generated before: 2.05 / 1.05 < 2.0
    seen = torch.zeros(1, VOCAB, dtype=torch.bool)
    seen[0, 3] = True
    scores = warp(penalise_repeats(logits, seen, greedy.repetition_penalty), greedy)
    assert int(choose(scores, greedy)) == 5
    # Greedy ignores temperature and top-k/top-p, as transformers does when do_sample is off.
    assert torch.equal(scores, penalise_repeats(logits, seen, 1.05))
