"""SRT and WebVTT cues sit exactly on their segments' samples, for any render (property-based; issue #15)."""

from __future__ import annotations

import re
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.timing import lay_out, to_srt, to_vtt

# Speech text as the grammar leaves it: one line, whitespace collapsed, no control characters.
speech_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
).map(lambda t: " ".join(t.split())).filter(bool)
segment = st.one_of(
    st.tuples(st.just("speech"), speech_text, st.integers(0, 24000 * 600)),
    st.tuples(st.just("pause"), st.just(""), st.integers(1, 24000 * 10)),
)
rates = st.sampled_from([24000, 44100, 48000, 16000])
_TIMING = re.compile(r"(\d\d):(\d\d):(\d\d)([,.])(\d\d\d) --> (\d\d):(\d\d):(\d\d)([,.])(\d\d\d)")


def _ms(hours, minutes, seconds, millis) -> int:
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def _parse(text: str, *, vtt: bool) -> list[tuple[int, int, str]]:
    blocks = [b for b in text.split("\n\n") if b.strip()]
    if vtt:
        assert blocks[0].strip() == "WEBVTT"
        blocks = blocks[1:]
    cues = []
    for number, block in enumerate(blocks, start=1):
        lines = block.rstrip("\n").split("\n")
        if not vtt:
            assert lines[0] == str(number)
            lines = lines[1:]
        match = _TIMING.fullmatch(lines[0])
        assert match, lines[0]
        g = match.groups()
        assert g[3] == g[8] == ("." if vtt else ",")
        cues.append((_ms(*g[0:3], g[4]), _ms(*g[5:8], g[9]), "\n".join(lines[1:])))
    return cues


def _nearest_ms(sample: int, rate: int) -> int:
    exact = Fraction(sample * 1000, rate)
    return int(exact + Fraction(1, 2))  # half a millisecond rounds up


@settings(max_examples=200, deadline=None)
@given(st.lists(segment, max_size=25), rates)
def test_every_speech_segment_gets_one_cue_on_its_own_samples(segments, rate):
    timed = lay_out((kind, i + 1, text, n) for i, (kind, text, n) in enumerate(segments))
    expected = [
        (_nearest_ms(t.start_sample, rate), _nearest_ms(t.end_sample, rate), t.text.replace("-->", "->").strip())
        for t in timed if t.kind == "speech" and t.end_sample > t.start_sample
    ]
    for vtt, render in ((False, to_srt), (True, to_vtt)):
        cues = _parse(render(timed, rate), vtt=vtt)
        assert cues == expected
        # In order, never overlapping, and never past the end of the audio.
        total_ms = _nearest_ms(sum(n for _, _, n in segments), rate)
        for (start, end, _), following in zip(cues, [*cues[1:], (total_ms, total_ms, "")][: len(cues)], strict=True):
            assert start <= end <= following[0] <= total_ms


@given(st.lists(st.integers(0, 10**7), max_size=30))
def test_segments_are_laid_end_to_end_from_sample_zero(lengths):
    timed = lay_out(("speech", 1, "x", n) for n in lengths)
    assert [t.start_sample for t in timed] == [sum(lengths[:i]) for i in range(len(lengths))]
    assert [t.end_sample - t.start_sample for t in timed] == lengths
