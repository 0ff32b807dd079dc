"""ACX checks measure what the math says and fail on each broken rule; mastering produces files that pass."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import soxr

from studio.audio.acx import _limit, check_acx, master_acx

ACX = 44100
STUDIO = 24000
NAMES = ("RMS", "Peak", "Noise floor", "Room tone at the start", "Room tone at the end", "Sample rate")


def sine(rate: int, seconds: float, rms_db: float, lead: float = 0.7, trail: float = 2.5, noise_db=None, seed=0):
    """A 441 Hz sine (100 samples a period at 44.1 kHz, so the sample peak is the amplitude) with
    `lead`/`trail` seconds of silence, optionally with white noise at `noise_db` throughout."""
    amplitude = math.sqrt(2) * 10 ** (rms_db / 20)
    t = np.arange(round(seconds * rate)) / rate
    x = np.concatenate(
        [np.zeros(round(lead * rate)), amplitude * np.sin(2 * np.pi * 441 * t), np.zeros(round(trail * rate))]
    )
    if noise_db is not None:
        x += np.random.default_rng(seed).standard_normal(len(x)) * 10 ** (noise_db / 20)
    return x.astype(np.float32)


def failing(report) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def check(report, name):
    return next(c for c in report.checks if c.name == name)


# --- measurement ------------------------------------------------------------------------------------------


def test_measured_values_match_the_math():
    # A bug that leaves silence out of the RMS (ACX measures the whole file) reads -20.0 here, not -21.2;
    # one that counts room tone from the wrong end, or by the wrong block size, misses 0.70 s / 2.50 s.
    x = sine(ACX, 10.0, -20.0)
    report = check_acx(x, ACX)
    expected_rms = -20.0 + 10 * math.log10(10.0 / 13.2)
    assert check(report, "RMS").value == pytest.approx(expected_rms, abs=0.1)
    assert check(report, "Peak").value == pytest.approx(20 * math.log10(math.sqrt(2) * 0.1), abs=0.1)
    assert check(report, "Noise floor").measured == "silent (-inf dBFS)"
    assert check(report, "Noise floor").passed
    assert check(report, "Room tone at the start").value == pytest.approx(0.7, abs=0.02)
    assert check(report, "Room tone at the end").value == pytest.approx(2.5, abs=0.02)
    assert check(report, "Sample rate").measured == "44100 Hz"
    assert tuple(c.name for c in report.checks) == NAMES
    assert report.passed
    assert report.lines()[0] == f"RMS: {expected_rms:.1f} dBFS (between -23 and -18 dBFS): pass"
    assert any("192 kbps" in line for line in report.lines())
    # The manifest must stay strict JSON (no NaN/Infinity for the digital-silence floor).
    manifest = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert manifest["passed"] is True and len(manifest["checks"]) == 6


def test_the_noise_floor_is_the_quietest_half_second():
    # Noise at -65 dBFS under everything: a floor taken as the average or the loudest window reads the
    # sine instead; the quietest 0.5 s window is pure noise.
    report = check_acx(sine(ACX, 10.0, -20.0, noise_db=-65.0), ACX)
    assert check(report, "Noise floor").value == pytest.approx(-65.0, abs=0.3)
    assert report.passed


def test_stereo_is_measured_over_both_channels():
    x = sine(ACX, 10.0, -20.0)
    stereo = np.stack([x, np.zeros_like(x)], axis=1)  # one silent channel halves the power: -3 dB
    report = check_acx(stereo, ACX)
    assert check(report, "RMS").value == pytest.approx(check(check_acx(x, ACX), "RMS").value - 3.01, abs=0.05)


# --- each failure on its own --------------------------------------------------------------------------------


def test_too_loud_fails_rms_only():
    assert failing(check_acx(sine(ACX, 10.0, -14.0, noise_db=-70.0), ACX)) == {"RMS"}


def test_too_quiet_fails_rms_only():
    assert failing(check_acx(sine(ACX, 10.0, -25.0, noise_db=-70.0), ACX)) == {"RMS"}


def test_a_peak_at_minus_one_dbfs_fails_peak_only():
    x = sine(ACX, 10.0, -19.5, noise_db=-70.0)
    x[ACX * 5] = 10 ** (-1 / 20)  # one click
    report = check_acx(x, ACX)
    assert failing(report) == {"Peak"}
    assert check(report, "Peak").value == pytest.approx(-1.0, abs=0.01)


def test_white_noise_at_minus_fifty_fails_the_noise_floor_only():
    # The room-tone threshold follows the floor up (to -40 dBFS), so a noisy file still has its room tone
    # measured: a fixed -50 dBFS threshold would also fail both room-tone checks here, at random lengths.
    report = check_acx(sine(ACX, 10.0, -19.5, noise_db=-50.0), ACX)
    assert failing(report) == {"Noise floor"}
    assert check(report, "Noise floor").value == pytest.approx(-50.0, abs=0.3)
    assert check(report, "Room tone at the start").value == pytest.approx(0.7, abs=0.02)


def test_no_room_tone_fails_both_room_tone_checks():
    report = check_acx(sine(ACX, 10.0, -20.0, lead=0.0, trail=0.0), ACX)
    # Without room tone the quietest half second is speech, so the noise floor fails with it.
    assert failing(report) == {"Room tone at the start", "Room tone at the end", "Noise floor"}
    assert check(report, "Room tone at the start").measured == "0.00 s"


def test_too_much_head_fails_the_start_only():
    assert failing(check_acx(sine(ACX, 10.0, -20.0, lead=1.5, noise_db=-70.0), ACX)) == {"Room tone at the start"}


def test_too_much_tail_fails_the_end_only():
    report = check_acx(sine(ACX, 20.0, -19.5, trail=6.0, noise_db=-70.0), ACX)
    assert failing(report) == {"Room tone at the end"}
    assert check(report, "Room tone at the end").value == pytest.approx(6.0, abs=0.02)


def test_the_studio_rate_fails_the_sample_rate_only():
    report = check_acx(sine(STUDIO, 10.0, -20.0, noise_db=-70.0), STUDIO)
    assert failing(report) == {"Sample rate"}
    assert check(report, "Sample rate").measured == "24000 Hz"


# --- the limiter ------------------------------------------------------------------------------------------


def reference_limit(x, gain, ceiling, rate):
    """The limiter's four steps written as plain loops, to hold the vectorised version to."""
    look = max(1, round(0.005 * rate))
    decay = math.exp(-1 / (0.05 * rate))
    # Preceded by `look` silent frames, dropped at the end: the ramp into a peak at the very start
    # begins before the file.
    z = np.concatenate([np.zeros((look, x.shape[1])), x.astype(np.float64) * gain])
    level = np.abs(z).max(axis=1)
    needed = np.array([max(20 * math.log10(v / ceiling), 0.0) if v > 0 else 0.0 for v in level])
    ahead = np.array([needed[i : i + look + 1].max() for i in range(len(z))])
    released = np.empty(len(z))
    previous = 0.0
    for i, v in enumerate(ahead):
        previous = released[i] = max(v, decay * previous)
    padded = np.concatenate([np.zeros(look), released])
    smooth = np.array([padded[i : i + look + 1].mean() for i in range(len(z))])
    return (z * (10 ** (-smooth / 20))[:, None])[look:]


def test_the_vectorised_limiter_matches_the_loops_across_chunks():
    # Catches an off-by-one in the running maximum, a wrong release recursion, and state lost between chunks
    # (chunk=700 puts several boundaries inside the release tails of the spikes).
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal((4000, 2))).astype(np.float32)
    x[[0, 500, 1390, 1400, 2699, 3990], :] = [[0.8, 0], [0.9, -0.1], [-1.0, 0.3], [0.7, 0.7], [0.1, 0.95], [0.99, 0]]
    got = _limit(x, 1.3, 0.6, 8000, chunk=700)
    np.testing.assert_allclose(got, reference_limit(x, 1.3, 0.6, 8000), atol=2e-6)
    np.testing.assert_array_equal(got, _limit(x, 1.3, 0.6, 8000))
    assert np.abs(got).max() <= 0.6


def test_the_limiter_ramps_before_a_peak_and_recovers_after():
    # A hard clipper leaves the samples next to the click alone; a limiter without look-ahead lets the
    # click through; one whose release never recovers leaves the rest of the file turned down.
    rate = ACX
    t = np.arange(rate) / rate
    x = (0.1 * np.sin(2 * np.pi * 441 * t))[:, None].astype(np.float32)
    x[rate // 2] = 1.0
    y = _limit(x, 1.0, 0.5, rate)
    gain = np.ones(rate)
    nonzero = np.abs(x[:, 0]) > 1e-3
    gain[nonzero] = y[nonzero, 0] / x[nonzero, 0]
    assert np.abs(y).max() <= 0.5
    assert y[rate // 2, 0] == pytest.approx(0.5, abs=1e-4)  # exactly at the ceiling, no more reduction
    before = slice(rate // 2 - round(0.006 * rate), rate // 2 - round(0.0055 * rate))
    assert np.all(gain[before][nonzero[before]] == pytest.approx(1.0, abs=1e-6))  # attack within 5 ms
    assert 0.5 < gain[rate // 2 - round(0.002 * rate)] < 1.0  # ramping down ahead of the click
    assert gain[rate // 2 + round(0.02 * rate)] < 0.99  # still releasing 20 ms later
    after = slice(rate // 2 + round(0.4 * rate), rate)
    assert np.all(20 * np.log10(gain[after][nonzero[after]]) > -0.01)  # recovered by 0.4 s


# --- mastering --------------------------------------------------------------------------------------------


CLICKS = (2.0, 5.5)  # seconds into the speech


def speech_like(rms_db: float, *, rate=STUDIO, seconds=8.0, lead=0.33, trail=0.2, click=None, seed=7):
    """Syllable-rate modulated harmonic bursts with pauses (room noise at -70 dBFS) and two sharp clicks,
    scaled so the speech part has `rms_db`; returns (audio, first speech sample)."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    voice = sum(
        a * np.sin(2 * np.pi * f * t + p)
        for a, f, p in zip((1, 0.6, 0.3, 0.15), (140, 280, 700, 2100), rng.uniform(0, 6, 4), strict=True)
    )
    words = (np.sin(2 * np.pi * 0.7 * t) > -0.4) * np.sin(np.pi * (t * 3.3 % 1)) ** 2  # words and syllables
    x = voice * words
    x *= 10 ** (rms_db / 20) / np.sqrt(np.mean(x**2))
    peak = click if click is not None else 10 ** ((rms_db + 22) / 20)
    for i, at in enumerate(CLICKS):
        x[round(at * rate) : round(at * rate) + 24] = peak * (-1) ** i
    x = np.concatenate([np.zeros(round(lead * rate)), x, np.zeros(round(trail * rate))])
    x += rng.standard_normal(len(x)) * 10 ** (-70 / 20)
    return x.astype(np.float32), round(lead * rate)


def lag_of(reference: np.ndarray, other: np.ndarray) -> int:
    """How many samples later `reference` appears in `other` (FFT cross-correlation)."""
    n = 1 << (len(reference) + len(other)).bit_length()
    cc = np.fft.irfft(np.fft.rfft(other, n) * np.conj(np.fft.rfft(reference, n)), n)
    lag = int(np.argmax(cc))
    return lag - n if lag > n // 2 else lag


def block_db(x: np.ndarray, width: int) -> np.ndarray:
    count = len(x) // width
    return 10 * np.log10(np.mean(x[: count * width].astype(np.float64).reshape(count, width) ** 2, axis=1) + 1e-20)


@pytest.mark.parametrize(("rms_db", "click"), [(-32.0, None), (-15.0, 0.98)], ids=["too-quiet", "too-loud"])
def test_mastering_passes_acx_without_flattening_the_speech(rms_db, click):
    x, start = speech_like(rms_db, click=click)
    assert not check_acx(x, STUDIO).passed
    y, rate, shift = master_acx(x, STUDIO)
    report = check_acx(y, rate)
    assert report.passed, report.lines()
    assert rate == ACX and y.dtype == np.float32 and y.ndim == 1
    assert 20 * np.log10(np.abs(y).max()) <= -3.5 + 0.01
    assert check(report, "RMS").value == pytest.approx(-20.0, abs=0.1)  # the padding was counted in the gain
    assert check(report, "Room tone at the start").value == pytest.approx(0.75, abs=0.03)
    assert check(report, "Room tone at the end").value == pytest.approx(2.0, abs=0.03)
    floor = check(report, "Noise floor").value
    assert floor is not None and -90.0 < floor < -60.0  # room tone, not digital silence

    # Back at 24 kHz and lined up with the input, the speech is the same waveform, a fixed gain apart.
    back = soxr.resample(y, ACX, STUDIO, quality="HQ")
    speech = x[start : start + round(8.0 * STUDIO)].astype(np.float64)
    lag = lag_of(speech, back)
    assert lag == pytest.approx(round(0.75 * STUDIO), abs=round(0.05 * STUDIO))
    # The shift mastering reports (which moves subtitles and chapter marks) is where the speech really went.
    assert lag == pytest.approx(start + shift, abs=round(0.002 * STUDIO))
    mastered = back[lag : lag + len(speech)].astype(np.float64)
    assert np.corrcoef(speech, mastered)[0, 1] > 0.99
    # Its level is what the whole-file target implies once the head and tail room tone are counted in.
    whole = len(y) / ACX
    predicted = -20.0 + 10 * math.log10(whole / 8.0)
    assert 10 * math.log10(np.mean(mastered**2)) == pytest.approx(predicted, abs=1.0)
    # Not flattened: 50 ms block levels move by the one gain everywhere away from the clicks.
    width = round(0.05 * STUDIO)
    change = block_db(mastered, width) - block_db(speech, width)
    times = np.arange(len(change)) * 0.05
    away = np.all([(times < at - 0.06) | (times > at + 0.35) for at in CLICKS], axis=0)
    loud = block_db(speech, width) > rms_db - 20
    kept = change[away & loud]
    assert np.max(np.abs(kept - np.median(kept))) < 0.3
    # The clicks themselves were limited, not just scaled (the quiet input needs ~6 dB off them).
    if click is None:
        near = ~away & loud
        assert np.min(change[near]) < np.median(kept) - 3


def test_mastering_is_deterministic():
    x, _ = speech_like(-30.0)
    first, _, _ = master_acx(x, STUDIO)
    second, _, _ = master_acx(x.copy(), STUDIO)
    assert np.array_equal(first, second)


def test_mastering_keeps_stereo_and_skips_resampling_at_44k():
    x, _ = speech_like(-26.0, rate=ACX)
    stereo = np.stack([x, 0.5 * x], axis=1)
    y, rate, _shift = master_acx(stereo, ACX, head_seconds=0.6, tail_seconds=3.0)
    assert y.shape[1] == 2 and rate == ACX
    report = check_acx(y, rate)
    assert report.passed, report.lines()
    assert check(report, "Room tone at the start").value == pytest.approx(0.6, abs=0.03)
    assert check(report, "Room tone at the end").value == pytest.approx(3.0, abs=0.03)
    # One gain for both channels: the image stays where it was.
    speech = np.abs(y[:, 0]) > 0.1  # well above the room-tone bed, which differs between the channels
    np.testing.assert_allclose(y[speech, 1] / y[speech, 0], 0.5, atol=0.01)


def test_mastering_refuses_silence():
    with pytest.raises(ValueError, match="room tone"):
        master_acx(np.zeros(STUDIO * 3, dtype=np.float32), STUDIO)


def test_mastering_speed_for_ten_minutes(capsys):
    x, _ = speech_like(-28.0, seconds=20.0, lead=0.0, trail=0.0)
    x = np.concatenate([np.zeros(STUDIO // 2, np.float32), np.tile(x, 30), np.zeros(STUDIO // 2, np.float32)])
    started = time.perf_counter()
    y, rate, _shift = master_acx(x, STUDIO)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nmastering {len(x) / STUDIO / 60:.1f} min of {STUDIO} Hz audio took {elapsed:.2f} s")
    assert check_acx(y, rate).passed
