"""From parsed script items to the segments a render produces, with seeds and length expectations.

Everything here is deterministic: the same project always plans the same segments with the same
seeds, which is what makes renders reproducible and the render cache effective.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from studio.core.pronunciation import Lexicon
from studio.core.tags import PauseItem, ScriptItem

CODEC_FRAMES_PER_SECOND = 12.5
# What every Qwen3-TTS 12Hz speech tokenizer decodes to (and what training resamples to): one constant for
# the whole studio; a model that reports another rate on load is refused (session.pipeline).
SAMPLE_RATE = 24000

# Speaking rates used to predict a segment's length from its text. Qwen3-TTS speaks English at
# roughly 14 to 16 characters per second and Chinese/Japanese at 4 to 6 characters per second; the
# predictions only have to be good to a factor of two, since they guard against runaway or
# truncated output (a known Qwen3-TTS failure), not against natural variation.
_CHARS_PER_SECOND_ALPHABETIC = 15.0
_CHARS_PER_SECOND_IDEOGRAPHIC = 5.0
# Below this many seconds a prediction is too noisy to flag anything.
_MIN_EXPECTED_SECONDS = 1.0
_RUNAWAY_FACTOR = 3.0
_TRUNCATED_FACTOR = 1 / 3
# max_new_tokens: room for a slow delivery ([Slow], [pause]-like hesitations) without letting a
# missing end-of-speech token run for minutes.
_CAP_FACTOR = 3.0
_CAP_MIN_FRAMES = 40
_CAP_MAX_FRAMES = 2048


@dataclass(frozen=True)
class PlannedSegment:
    index: int
    kind: str  # "speech" | "pause"
    line: int
    text: str = ""
    emotion: str | None = None
    directives: Mapping[str, str] = field(default_factory=dict)
    voice: str | None = None  # cast name; None: the project's default voice
    language: str = "auto"
    seed: int = 0
    take: int = 0
    locked: bool = False
    seconds: float = 0.0  # pauses only
    # What the model reads when the pronunciation dictionary rewrote `text` (None: `text` itself); `text`
    # stays as written for subtitles and the timeline.
    spoken: str | None = None

    @property
    def model_text(self) -> str:
        return self.text if self.spoken is None else self.spoken


_ASCII_SPACES = "".join(chr(c) for c in range(128) if chr(c).isspace())


def _is_ideographic(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


def expected_seconds(text: str) -> float:
    """A rough prediction of how long speaking `text` takes."""
    if text.isascii():  # no ideographs; counting in C is what keeps a 100,000-line timeline quick
        return (len(text) - sum(map(text.count, _ASCII_SPACES))) / _CHARS_PER_SECOND_ALPHABETIC
    ideographic = sum(1 for ch in text if _is_ideographic(ch))
    other = sum(1 for ch in text if not ch.isspace()) - ideographic
    return ideographic / _CHARS_PER_SECOND_IDEOGRAPHIC + other / _CHARS_PER_SECOND_ALPHABETIC


def max_new_tokens_for(text: str) -> int:
    """The codec-frame cap for a segment: generous for its text, never unbounded."""
    frames = math.ceil(expected_seconds(text) * _CAP_FACTOR * CODEC_FRAMES_PER_SECOND)
    return max(_CAP_MIN_FRAMES, min(_CAP_MAX_FRAMES, frames))


def length_warning(text: str, seconds: float, *, hit_token_cap: bool = False) -> str | None:
    """A warning when audio is far longer or shorter than its text predicts, else None."""
    if hit_token_cap:
        return "generation stopped at the frame cap without an end of speech: the audio may be runaway or cut"
    expected = max(expected_seconds(text), _MIN_EXPECTED_SECONDS)
    if seconds > expected * _RUNAWAY_FACTOR:
        return f"{seconds:.1f} s of audio for text expected to take about {expected:.1f} s: possibly runaway output"
    if seconds < expected * _TRUNCATED_FACTOR:
        return f"{seconds:.1f} s of audio for text expected to take about {expected:.1f} s: possibly truncated"
    return None


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def segment_seed(project_seed: int, *, text: str, emotion, directives, voice, language: str, take: int) -> int:
    """A seed from the project seed and the segment's content.

    Depending on content rather than position means inserting a line above does not re-roll every
    segment below it, and the same text in the same delivery renders the same way wherever it sits.
    """
    payload = canonical_json(
        {
            "seed": project_seed,
            "text": text,
            "emotion": emotion,
            "directives": dict(directives),
            "voice": voice,
            "language": language,
            "take": take,
        }
    )
    return int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def first_unknown_voice(items: Sequence[ScriptItem], cast: Mapping) -> ScriptItem | None:
    """The first item whose [voice: Name] is not in a (non-empty) cast, or None.

    An empty cast means the project does not use cast names, so any name is left to the caller's voice.
    """
    if not cast:
        return None
    return next((i for i in items if getattr(i, "voice", None) is not None and i.voice not in cast), None)


def plan_segments(
    items: Sequence[ScriptItem],
    *,
    language: str = "auto",
    seed: int = 0,
    default_voice: str | None = None,
    takes: Mapping[int, int] | None = None,
    locked_lines: frozenset[int] | set[int] = frozenset(),
    voice_seeds: Mapping[str, int] | None = None,
    lexicon: Lexicon | None = None,
) -> list[PlannedSegment]:
    """Turn parsed items into planned segments. `takes` maps a line to its chosen take; `voice_seeds`
    maps a cast name to a pinned seed that replaces the project seed for that voice's segments;
    `lexicon` (the pronunciation dictionary) rewrites what the model reads."""
    takes = takes or {}
    voice_seeds = voice_seeds or {}
    out: list[PlannedSegment] = []
    for index, item in enumerate(items):
        take = takes.get(item.line, 0)
        locked = item.line in locked_lines
        if isinstance(item, PauseItem):
            out.append(PlannedSegment(index, "pause", item.line, seconds=item.seconds, take=take, locked=locked))
            continue
        effective_language = item.directives.get("language", language).strip().lower() or "auto"
        voice = item.voice if item.voice is not None else default_voice
        spoken = lexicon.spoken(item.text, voice=voice, language=effective_language) if lexicon else item.text
        out.append(
            PlannedSegment(
                index=index,
                kind="speech",
                line=item.line,
                text=item.text,
                emotion=item.emotion,
                directives=dict(item.directives),
                voice=voice,
                language=effective_language,
                seed=segment_seed(
                    voice_seeds.get(voice, seed) if voice is not None else seed,
                    text=item.text,
                    emotion=item.emotion,
                    directives=item.directives,
                    voice=voice,
                    language=effective_language,
                    take=take,
                ),
                take=take,
                locked=locked,
                spoken=None if spoken == item.text else spoken,
            )
        )
    return out
