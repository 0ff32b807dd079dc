"""The min/max pyramid agrees with brute force at every level, however the audio was appended."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.peaks import BASE_BLOCK, PeakPyramid


def brute(samples, size):
    n = -(-len(samples) // size)
    mins = np.array([samples[i * size:(i + 1) * size].min() for i in range(n)], dtype=np.float32)
    maxs = np.array([samples[i * size:(i + 1) * size].max() for i in range(n)], dtype=np.float32)
    return mins, maxs


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=30_000), min_size=1, max_size=6), st.integers(0, 2**31 - 1))
def test_incremental_appends_match_brute_force(chunk_sizes, seed):
    rng = np.random.default_rng(seed)
    signal = rng.uniform(-1, 1, sum(chunk_sizes)).astype(np.float32)
    pyramid = PeakPyramid()
    length = 0
    for size in chunk_sizes:
        pyramid.update(signal[: length + size], length)
        length += size
    for level in range(4):
        size = pyramid.block_size(level)
        mins, maxs = brute(signal, size)
        got_min, got_max = pyramid._mins[level].view(), pyramid._maxs[level].view()
        np.testing.assert_array_equal(got_min[: len(mins)], mins)
        np.testing.assert_array_equal(got_max[: len(maxs)], maxs)


def test_envelope_picks_a_coarse_level_for_wide_views_and_raw_samples_when_zoomed_in():
    signal = np.sin(np.arange(24000 * 60) / 50).astype(np.float32)
    pyramid = PeakPyramid()
    pyramid.update(signal, 0)
    x, mins, maxs = pyramid.envelope(signal, 0, len(signal), 1000)
    assert 1000 <= len(x) <= 4000
    assert mins.min() == signal.min() and maxs.max() == signal.max()
    x, mins, maxs = pyramid.envelope(signal, 100, 100 + BASE_BLOCK * 10, 1000)
    np.testing.assert_array_equal(mins, signal[100:100 + BASE_BLOCK * 10])
    assert x[0] == 100
