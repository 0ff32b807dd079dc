"""Exports: timestamped names, never overwriting, WAV length == manifest duration, cues on segment times."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
import soundfile

from studio.audio.export import ExportError, ExportSegment, export_render

RATE = 24000
WHEN = datetime(2026, 11, 25, 9, 30, 5)


def segments():
    tone = (0.3 * np.sin(np.arange(30000) / 9)).astype(np.float32)
    return [
        ExportSegment(0, "speech", 1, "Hello there.", "Soft", None, tone, False, 11),
        ExportSegment(1, "pause", 1, "", None, None, np.zeros(12000, np.float32), False, 0),
        ExportSegment(2, "speech", 2, "Bye.", None, "Wolf", tone[:18000], True, 12),
    ]


def test_files_manifest_and_cues(tmp_path):
    result = export_render(segments(), sample_rate=RATE, folder=tmp_path, name="story", when=WHEN)
    assert result.audio.name == "story_20261125_093005.wav"
    assert {p.name for p in tmp_path.iterdir()} == {
        "story_20261125_093005.wav", "story_20261125_093005.srt", "story_20261125_093005.vtt",
        "story_20261125_093005.json",
    }
    audio, rate = soundfile.read(result.audio, dtype="float32")
    manifest = json.loads(result.manifest.read_text())
    assert rate == RATE == manifest["sample_rate"]
    assert len(audio) == 60000 and manifest["duration"] == len(audio) / RATE
    assert manifest["wav"] == str(result.audio) and manifest["srt"] == str(result.srt)
    starts_ends = [(s["start"], s["end"]) for s in manifest["segments"]]
    assert starts_ends == [(0.0, 1.25), (1.25, 1.75), (1.75, 2.5)]
    assert [s["cached"] for s in manifest["segments"]] == [False, False, True]
    assert manifest["segments"][2]["voice"] == "Wolf" and manifest["segments"][0]["emotion"] == "Soft"
    assert result.srt.read_text() == (
        "1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n2\n00:00:01,750 --> 00:00:02,500\nBye.\n"
    )
    assert "00:00:01.750 --> 00:00:02.500\nBye." in result.vtt.read_text()
    # The audio is the segments in order, at 16-bit precision.
    expected = np.concatenate([s.samples for s in segments()])
    assert np.abs(audio - expected).max() < 1e-4


def test_never_overwrites(tmp_path):
    (tmp_path / "story_20261125_093005.srt").write_text("the user's own file")
    first = export_render(segments(), sample_rate=RATE, folder=tmp_path, name="story", when=WHEN)
    second = export_render(segments(), sample_rate=RATE, folder=tmp_path, name="story", when=WHEN)
    assert first.audio.name == "story_20261125_093005_2.wav"
    assert second.audio.name == "story_20261125_093005_3.wav"
    assert (tmp_path / "story_20261125_093005.srt").read_text() == "the user's own file"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]


def test_flac_and_stems(tmp_path):
    result = export_render(segments(), sample_rate=RATE, folder=tmp_path, name="s", when=WHEN,
                           audio_format="flac", stems=True)
    assert result.audio.suffix == ".flac" and soundfile.info(result.audio).format == "FLAC"
    assert [p.name for p in result.stems] == ["0001_line1.flac", "0003_line2.flac"]
    assert "wav" not in result.document and result.document["audio"] == str(result.audio)


def test_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot create the output folder"):
        export_render(segments(), sample_rate=RATE, folder=blocker / "sub", name="s", when=WHEN)


def test_loudness_normalisation_reaches_the_target(tmp_path):
    import pyloudnorm

    result = export_render(segments(), sample_rate=RATE, folder=tmp_path, name="s", when=WHEN, loudness_lufs=-20.0)
    audio, rate = soundfile.read(result.audio, dtype="float64")
    reached = pyloudnorm.Meter(rate).integrated_loudness(audio)
    assert abs(reached - (-20.0)) < 0.1
    assert result.document["loudness"]["applied"] and not result.document["loudness"]["peak_limited"]


def test_loudness_gain_never_clips(tmp_path):
    result = export_render(segments(), sample_rate=RATE, folder=tmp_path, name="s", when=WHEN, loudness_lufs=0.0)
    audio, _ = soundfile.read(result.audio, dtype="float64")
    assert np.abs(audio).max() <= 0.999 + 1e-4
    assert result.document["loudness"]["peak_limited"]


def test_stems_carry_the_same_loudness_gain_as_the_mix(tmp_path):
    plain = export_render(segments(), sample_rate=RATE, folder=tmp_path / "plain", name="s", when=WHEN, stems=True)
    loud = export_render(segments(), sample_rate=RATE, folder=tmp_path / "loud", name="s", when=WHEN, stems=True,
                         loudness_lufs=-14.0)
    mix_plain, _ = soundfile.read(plain.audio, dtype="float64")
    mix_loud, _ = soundfile.read(loud.audio, dtype="float64")
    gain = np.abs(mix_loud).max() / np.abs(mix_plain).max()
    record = loud.document["loudness"]
    assert gain == pytest.approx(10 ** ((record["reached_lufs"] - record["measured_lufs"]) / 20), rel=1e-3)
    assert gain > 1.1  # the target is above the test tone's loudness
    for before, after in zip(plain.stems, loud.stems, strict=True):
        stem_plain, _ = soundfile.read(before, dtype="float64")
        stem_loud, _ = soundfile.read(after, dtype="float64")
        np.testing.assert_allclose(stem_loud, stem_plain * gain, atol=2e-4)
    # The stems of a normalised export add up to the normalised mix where they sit.
    first, _ = soundfile.read(loud.stems[0], dtype="float64")
    np.testing.assert_allclose(mix_loud[: len(first)], first, atol=1e-4)
