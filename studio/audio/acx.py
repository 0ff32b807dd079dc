"""ACX audiobook requirements: check a chapter's audio against them, and master audio so it meets them.

ACX (Audible's self-publishing platform) publishes these submission requirements, one file per chapter:
RMS between -23 and -18 dBFS, peaks no higher than -3 dBFS, a noise floor no higher than -60 dBFS RMS,
0.5-1 s of room tone at the start and 1-5 s at the end, 44.1 kHz, mono or stereo used consistently, and
MP3 at 192 kbps or more, constant bit rate. The studio renders 24 kHz mono float32; `master_acx` turns
that into 44.1 kHz audio that passes `check_acx`. The MP3 encoding itself is done by the exporter, so the
bit-rate rule, and the rules that span several files, are reported as notes rather than checks.

What "measured" means (full scale is 1.0, dBFS = 20*log10(level); stereo is measured over all samples of
both channels together):

- RMS: of every sample in the file, silence included. ACX's own measurement is whole-file, so a chapter
  with long pauses measures lower than its speech; excluding silence would pass files that ACX rejects.
- Peak: the largest |sample| (sample peak, not true peak). Inter-sample peaks can be a little higher, and
  MP3 encoding adds overshoot, which is why mastering aims 0.5 dB under the -3 dBFS limit.
- Noise floor: the RMS of the quietest 0.5 s window (windows 0.1 s apart); a file shorter than 0.5 s is
  one window. All-zero windows are digital silence, -inf dBFS: it passes and is shown "silent (-inf dBFS)".
- Room tone at the start/end: the length of the leading/trailing run of 10 ms blocks whose RMS stays
  below the room-tone threshold: 10 dB above the measured noise floor, but no lower than -50 dBFS (the
  -60 dBFS noise limit plus a 10 dB margin) and no higher than -40 dBFS (so quiet speech never counts as
  room tone). Measured to the 10 ms block; passes within [0.5, 1] s at the start and [1, 5] s at the end.
- Sample rate: passes at exactly 44100 Hz.

Mastering (`master_acx`): trim the input's own leading/trailing room tone; resample to 44.1 kHz (soxr HQ)
*before* setting levels, so that the limiter sees the final samples (interpolation creates new peaks
between the old ones); lay a bed of very quiet seeded white noise (-75 dBFS RMS) under the whole file,
padded with `head_seconds` and `tail_seconds` of it, because ACX reviewers reject digital silence; set
the gain so the whole padded file reaches `rms_dbfs`; and run a look-ahead limiter (see `_limit`) so no
sample exceeds `peak_dbfs`, re-applying makeup gain and limiting until the RMS is on target. It does
not clean up noise inside the speech's own pauses: a noisy recording stays noisy there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ACX_RATE = 44100
RMS_RANGE_DBFS = (-23.0, -18.0)
PEAK_MAX_DBFS = -3.0
NOISE_MAX_DBFS = -60.0
HEAD_RANGE_S = (0.5, 1.0)
TAIL_RANGE_S = (1.0, 5.0)
ACX_NOTES = (
    "Encode as MP3 at 192 kbps or higher, constant bit rate (CBR).",
    "Each file holds one chapter or section; use mono or stereo consistently across all files.",
)

BLOCK_S = 0.01  # room-tone resolution
NOISE_WINDOW_BLOCKS = 50  # 0.5 s
NOISE_HOP_BLOCKS = 10  # 0.1 s
ROOM_TONE_MARGIN_DB = 10.0
ROOM_TONE_THRESHOLD_DBFS = (-50.0, -40.0)
ROOM_NOISE_DBFS = -75.0  # well under the -60 dBFS limit, well above digital silence
ROOM_NOISE_SEED = 0xAC5
ATTACK_S = 0.005  # limiter look-ahead: gain reduction ramps in over this time before a peak
RELEASE_S = 0.05  # limiter release time constant
_CHUNK = 1 << 20  # samples per step when walking long files, to bound the float64 temporaries


@dataclass(frozen=True)
class AcxCheck:
    """One ACX requirement: what was measured, what is required, and whether it passed."""

    name: str
    passed: bool
    measured: str
    required: str
    value: float | None = None  # the measured number (dBFS, s or Hz); None for -inf

    def line(self) -> str:
        return f"{self.name}: {self.measured} ({self.required}): {'pass' if self.passed else 'fail'}"


@dataclass(frozen=True)
class AcxReport:
    """The checks of one file against the ACX requirements, plus notes on rules checked elsewhere."""

    checks: tuple[AcxCheck, ...]
    notes: tuple[str, ...] = field(default=ACX_NOTES)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.passed)

    def lines(self) -> list[str]:
        """One human line per check, then one "Note: ..." line per note."""
        return [c.line() for c in self.checks] + [f"Note: {n}" for n in self.notes]

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "checks": [
                {"name": c.name, "passed": c.passed, "measured": c.measured, "required": c.required, "value": c.value}
                for c in self.checks
            ],
            "notes": list(self.notes),
        }


# --- measuring -------------------------------------------------------------------------------------------


def _frames(samples: np.ndarray) -> np.ndarray:
    """`samples` as (frames, channels) floats, without copying when it already is."""
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"expected mono (n,) or (n, channels) audio, got shape {np.shape(samples)}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return x


def _db(power: float) -> float:
    """dBFS of a mean power (mean square); -inf for zero."""
    return 10 * math.log10(power) if power > 0 else -math.inf


def _sum_squares(x: np.ndarray) -> float:
    # float64 in chunks: float32 accumulation over an hour of samples loses the last dB digits.
    total = 0.0
    for s in range(0, len(x), _CHUNK):
        part = x[s : s + _CHUNK].astype(np.float64)
        total += float(np.einsum("ij,ij->", part, part))
    return total


def _peak(x: np.ndarray) -> float:
    return max((float(np.abs(x[s : s + _CHUNK]).max()) for s in range(0, len(x), _CHUNK)), default=0.0)


def _block_size(sample_rate: int) -> int:
    return max(1, round(sample_rate * BLOCK_S))


def _block_power(x: np.ndarray, width: int, *, from_end: bool = False) -> np.ndarray:
    """Mean power of consecutive blocks of `width` frames, aligned to the start (or the end) of `x`;
    the partial block at the other end is left out."""
    count = len(x) // width
    start = len(x) - count * width if from_end else 0
    out = np.empty(count)
    step = max(1, _CHUNK // width)
    for b in range(0, count, step):
        e = min(count, b + step)
        part = x[start + b * width : start + e * width].astype(np.float64)
        out[b:e] = np.square(part).reshape(e - b, -1).mean(axis=1)
    return out


def _noise_floor_power(blocks: np.ndarray, x: np.ndarray) -> float:
    if len(blocks) < NOISE_WINDOW_BLOCKS:
        return _sum_squares(x) / x.size if x.size else 0.0
    # Summed window by window (not as a difference of cumulative sums) so digital silence stays exactly 0.
    windows = np.lib.stride_tricks.sliding_window_view(blocks, NOISE_WINDOW_BLOCKS)[::NOISE_HOP_BLOCKS]
    return float(windows.mean(axis=1).min())


def _room_tone_threshold_db(noise_floor_db: float) -> float:
    low, high = ROOM_TONE_THRESHOLD_DBFS
    return min(max(noise_floor_db + ROOM_TONE_MARGIN_DB, low), high)


def _quiet_run(blocks: np.ndarray, threshold_db: float) -> int | None:
    """How many leading blocks stay below `threshold_db`; None when all of them do."""
    loud = np.flatnonzero(blocks >= 10 ** (threshold_db / 10))
    return int(loud[0]) if loud.size else None


def _fmt_db(value: float) -> str:
    return f"{value:.1f} dBFS" if math.isfinite(value) else "silent (-inf dBFS)"


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def check_acx(samples: np.ndarray, sample_rate: int) -> AcxReport:
    """Measure `samples` (mono (n,) or (n, channels)) against the ACX requirements; see the module doc."""
    x = _frames(samples)
    n = len(x)
    duration = n / sample_rate if sample_rate > 0 else 0.0
    rms_db = _db(_sum_squares(x) / x.size) if x.size else -math.inf
    peak_db = 20 * math.log10(p) if (p := _peak(x)) > 0 else -math.inf

    width = _block_size(sample_rate)
    head_blocks = _block_power(x, width)
    floor_db = _db(_noise_floor_power(head_blocks, x))
    threshold = _room_tone_threshold_db(floor_db)
    run = _quiet_run(head_blocks, threshold)
    head = duration if run is None else run * width / sample_rate
    run = _quiet_run(_block_power(x, width, from_end=True)[::-1], threshold)
    tail = duration if run is None else run * width / sample_rate

    low, high = RMS_RANGE_DBFS
    checks = (
        AcxCheck("RMS", low <= rms_db <= high, _fmt_db(rms_db), f"between {low:g} and {high:g} dBFS", _finite(rms_db)),
        AcxCheck(
            "Peak", peak_db <= PEAK_MAX_DBFS, _fmt_db(peak_db), f"at most {PEAK_MAX_DBFS:g} dBFS", _finite(peak_db)
        ),
        AcxCheck(
            "Noise floor",
            floor_db <= NOISE_MAX_DBFS,
            _fmt_db(floor_db),
            f"at most {NOISE_MAX_DBFS:g} dBFS",
            _finite(floor_db),
        ),
        AcxCheck(
            "Room tone at the start",
            HEAD_RANGE_S[0] <= head <= HEAD_RANGE_S[1],
            f"{head:.2f} s",
            f"{HEAD_RANGE_S[0]:g} to {HEAD_RANGE_S[1]:g} s",
            round(head, 3),
        ),
        AcxCheck(
            "Room tone at the end",
            TAIL_RANGE_S[0] <= tail <= TAIL_RANGE_S[1],
            f"{tail:.2f} s",
            f"{TAIL_RANGE_S[0]:g} to {TAIL_RANGE_S[1]:g} s",
            round(tail, 3),
        ),
        AcxCheck("Sample rate", sample_rate == ACX_RATE, f"{sample_rate} Hz", f"{ACX_RATE} Hz", float(sample_rate)),
    )
    return AcxReport(checks)


# --- limiting --------------------------------------------------------------------------------------------


def _running_max_ahead(values: np.ndarray, width: int, count: int) -> np.ndarray:
    """out[i] = max(values[i : i + width]) for i < count (van Herk/Gil-Werman: O(n) whatever the width);
    `values` must hold at least count + width - 1 items."""
    padded = np.zeros(-(-max(len(values), count + width - 1) // width) * width)
    padded[: len(values)] = values
    blocks = padded.reshape(-1, width)
    prefix = np.maximum.accumulate(blocks, axis=1).ravel()
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.maximum(suffix[:count], prefix[width - 1 : width - 1 + count])


def _release(held: np.ndarray, decay: float, previous: float) -> np.ndarray:
    """out[i] = max(held[i], decay * out[i-1]), with out[-1] = previous, without a Python loop.

    Unrolled, out[i] = max over k <= i of held[k] * decay**(i-k): in logs, i*log(decay) plus a running
    maximum of log(held[k]) - k*log(decay), which numpy computes in one pass."""
    c = math.log(decay)
    k = np.arange(len(held))
    with np.errstate(divide="ignore"):
        logs = np.log(held) - k * c
    start = math.log(previous) + c if previous > 0 else -math.inf
    best = np.maximum(np.maximum.accumulate(logs), start)
    return np.exp(best + k * c)


def _limit(
    x: np.ndarray,
    gain: float,
    ceiling: float,
    sample_rate: int,
    *,
    add: np.ndarray | None = None,
    chunk: int = _CHUNK,
) -> np.ndarray:
    """`gain * x (+ add)` through a look-ahead peak limiter: float32, no sample above `ceiling`.

    Works on the gain reduction in dB, per frame (channels share one gain, so the stereo image holds):
    1. needed[n]: the reduction that brings frame n down to the ceiling (0 for most frames);
    2. look-ahead: the most needed anywhere in the next ATTACK_S, so the reduction is in place in time;
    3. release: the reduction decays exponentially (time constant RELEASE_S) instead of snapping back;
    4. smoothing: a moving average over the past ATTACK_S, which turns the step into a 5 ms ramp. Every
       value averaged is at least needed[n] (each covers n in its look-ahead), so the ceiling still holds.
    The file is walked in chunks that carry the release state and the smoothing history across."""
    look = max(1, round(ATTACK_S * sample_rate))
    decay = math.exp(-1.0 / (RELEASE_S * sample_rate))
    n = len(x)
    out = np.empty(x.shape, dtype=np.float32)
    history = None  # released reduction of the `look` frames before this chunk
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        seg = x[s : e + look].astype(np.float64) * gain
        if add is not None:
            seg += add[s : e + look]
        level = np.abs(seg).max(axis=1)
        with np.errstate(divide="ignore"):
            needed = np.maximum(20 * np.log10(level / ceiling), 0.0)
        ahead = _running_max_ahead(needed, look + 1, e - s)
        if history is None:
            # As if the file were preceded by `look` quiet frames: their look-ahead already sees the first
            # frames, so a peak at the very start is ramped into (from before the file) rather than missed.
            history = np.maximum.accumulate(np.concatenate((needed[:look], np.zeros(max(0, look - len(needed))))))
        released = _release(ahead, decay, history[-1])
        run = np.concatenate((history, released))
        sums = np.cumsum(np.concatenate(([0.0], run)))
        smooth = (sums[look + 1 :] - sums[: -look - 1]) / (look + 1)
        history = run[-look:]
        out[s:e] = seg[: e - s] * (10 ** (-smooth / 20))[:, None]
    # The cumulative sums round at the last bit; the clip only ever touches those rounding errors.
    np.clip(out, -ceiling, ceiling, out=out)
    return out


# --- mastering -------------------------------------------------------------------------------------------


def _speech_span(x: np.ndarray, sample_rate: int, threshold_db: float) -> tuple[int, int] | None:
    """Frames [start, end) between the leading and trailing room tone (10 ms blocks under threshold_db)."""
    width = _block_size(sample_rate)
    head = _quiet_run(_block_power(x, width), threshold_db)
    tail = _quiet_run(_block_power(x, width, from_end=True)[::-1], threshold_db)
    if head is None or tail is None:
        return None
    return head * width, len(x) - tail * width


def master_acx(
    samples: np.ndarray,
    sample_rate: int,
    *,
    rms_dbfs: float = -20.0,
    peak_dbfs: float = -3.5,
    head_seconds: float = 0.75,
    tail_seconds: float = 2.0,
) -> tuple[np.ndarray, int, int]:
    """Master `samples` to the ACX requirements: returns (float32 audio at 44.1 kHz, 44100, shift), mono in
    -> mono out. `shift` is how far the input's sample 0 moved, in input samples (room tone added at the
    head minus room tone trimmed there): a word at input sample n is at (n + shift) * 44100 / sample_rate.
    Raises ValueError for audio that is all room tone (nothing to bring up to speech level)."""
    if not rms_dbfs < peak_dbfs <= 0:
        raise ValueError(f"need rms_dbfs < peak_dbfs <= 0, got {rms_dbfs} and {peak_dbfs}")
    if head_seconds < 0 or tail_seconds < 0:
        raise ValueError("head_seconds and tail_seconds cannot be negative")
    mono = np.ndim(samples) == 1
    x = _frames(samples)
    channels = x.shape[1]

    # 1. Trim the input's own room tone. What counts as room tone is judged at the level it will have
    # after the gain (a quiet onset of a loud file ends up under -50 dBFS and would read as room tone).
    floor_db = _db(_noise_floor_power(_block_power(x, _block_size(sample_rate)), x))
    threshold = _room_tone_threshold_db(floor_db)
    span = _speech_span(x, sample_rate, threshold)
    if span is None:
        raise ValueError("nothing to master: the audio is all room tone")
    speech = x[span[0] : span[1]]
    seconds = len(speech) / sample_rate + head_seconds + tail_seconds
    gain_db = rms_dbfs - _db(_sum_squares(speech) / (channels * sample_rate * seconds))
    # 1 dB to spare so blocks right at the threshold do not flicker between room tone and speech.
    span = _speech_span(x, sample_rate, max(threshold, ROOM_TONE_THRESHOLD_DBFS[0] + 1.0 - gain_db))
    if span is None:
        raise ValueError("nothing to master: the audio is all room tone")
    speech = np.ascontiguousarray(x[span[0] : span[1]], dtype=np.float32)

    # 2. Resample first, so the limiter below works on the samples that are delivered.
    if sample_rate != ACX_RATE:
        import soxr

        speech = soxr.resample(speech, sample_rate, ACX_RATE, quality="HQ").astype(np.float32, copy=False)
        if speech.ndim == 1:
            speech = speech[:, None]

    # 3. The room-tone bed, deterministic so the same input always masters to the same bytes.
    head, tail = round(head_seconds * ACX_RATE), round(tail_seconds * ACX_RATE)
    total = head + len(speech) + tail
    out = np.random.default_rng(ROOM_NOISE_SEED).standard_normal((total, channels), dtype=np.float32)
    out *= np.float32(10 ** (ROOM_NOISE_DBFS / 20))
    bed = out[head : head + len(speech)]
    pads = _sum_squares(out[:head]) + _sum_squares(out[head + len(speech) :])
    bed_energy = _sum_squares(bed)

    # 4. Gain for the whole padded file, then limit; limiting takes energy off the peaks, so make up the
    # difference and limit again (twice more at most: it settles fast for speech).
    target = 10 ** (rms_dbfs / 10) * total * channels
    wanted = max(target - pads - bed_energy, 1e-30)  # the energy the speech must carry
    signal = _sum_squares(speech)
    gain = math.sqrt(wanted / signal)
    ceiling = 10 ** (peak_dbfs / 20)
    for _ in range(3):
        limited = _limit(speech, gain, ceiling, ACX_RATE, add=bed)
        reached = _sum_squares(limited) + pads
        if abs(_db(reached / target)) < 0.05:
            break
        carried = max(reached - pads - bed_energy, 1e-30)
        gain *= math.sqrt(wanted / carried)
    out[head : head + len(speech)] = limited
    shift = round(head_seconds * sample_rate) - span[0]
    return (out[:, 0] if mono else out), ACX_RATE, shift
