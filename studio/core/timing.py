"""Segment timing on the render's sample clock, and SRT / WebVTT subtitles.

Times are kept as sample counts at the render's sample rate and only turned into seconds for output,
so segment boundaries add up exactly: the last segment ends on the last sample of the WAV.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TimedSegment:
    index: int
    kind: str  # "speech" or "pause"
    line: int
    text: str  # empty for pauses
    start_sample: int
    end_sample: int

    def start(self, sample_rate: int) -> float:
        return self.start_sample / sample_rate

    def end(self, sample_rate: int) -> float:
        return self.end_sample / sample_rate


def lay_out(lengths: Iterable[tuple[str, int, str, int]]) -> list[TimedSegment]:
    """(kind, line, text, n_samples) in order -> contiguous segments starting at sample 0."""
    out: list[TimedSegment] = []
    cursor = 0
    for index, (kind, line, text, n_samples) in enumerate(lengths):
        if n_samples < 0:
            raise ValueError(f"segment {index} has a negative length")
        out.append(TimedSegment(index, kind, line, text, cursor, cursor + n_samples))
        cursor += n_samples
    return out


def _milliseconds(sample: int, sample_rate: int) -> int:
    # Integer arithmetic so a cue never drifts from the sample it belongs to.
    return (sample * 1000 + sample_rate // 2) // sample_rate


def format_timestamp(ms: int, *, decimal: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal}{millis:03d}"


def _speech_cues(segments: Sequence[TimedSegment], sample_rate: int) -> list[tuple[int, int, str]]:
    return [
        (_milliseconds(s.start_sample, sample_rate), _milliseconds(s.end_sample, sample_rate), s.text)
        for s in segments
        if s.kind == "speech" and s.end_sample > s.start_sample
    ]


def _cue_text(text: str) -> str:
    # A blank line ends a cue in both formats, and "-->" would be read as a timing line.
    return text.replace("-->", "->").strip() or " "


def to_srt(segments: Sequence[TimedSegment], sample_rate: int) -> str:
    blocks = []
    for number, (start, end, text) in enumerate(_speech_cues(segments, sample_rate), start=1):
        timing = f"{format_timestamp(start, decimal=',')} --> {format_timestamp(end, decimal=',')}"
        blocks.append(f"{number}\n{timing}\n{_cue_text(text)}\n")
    return "\n".join(blocks)


def to_vtt(segments: Sequence[TimedSegment], sample_rate: int) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in _speech_cues(segments, sample_rate):
        timing = f"{format_timestamp(start, decimal='.')} --> {format_timestamp(end, decimal='.')}"
        blocks.append(f"{timing}\n{_cue_text(text)}\n")
    return "\n".join(blocks)
