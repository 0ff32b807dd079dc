"""Qt-free render building blocks: instruct text, segment planning and seeds, timing, subtitles, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.core.cache import RenderCache, cache_key
from studio.core.instruct import build_instruct
from studio.core.plan import expected_seconds, length_warning, max_new_tokens_for, plan_segments
from studio.core.tags import parse_script
from studio.core.timing import format_timestamp, lay_out, to_srt, to_vtt

# --- instruct ---------------------------------------------------------------------------------------


def test_identity_comes_first_and_never_changes_with_emotion():
    identity = "A deep, raspy voice of a tired cowboy"
    whisper = build_instruct(identity=identity, emotion="Whispering")
    shout = build_instruct(identity=identity, emotion="Shouting", directives={"pace": "fast"})
    assert whisper == "A deep, raspy voice of a tired cowboy. Delivery: Whispering."
    assert shout == "A deep, raspy voice of a tired cowboy. Delivery: Shouting; pace: fast."
    assert whisper.split(" Delivery:")[0] == shout.split(" Delivery:")[0]


def test_instruct_without_identity_or_delivery():
    assert build_instruct(identity=None, emotion=None) == ""
    assert build_instruct(identity="  ", emotion="Sad") == "Delivery: Sad."
    assert build_instruct(identity="Calm narrator.", emotion=None) == "Calm narrator."


def test_language_directive_is_not_a_delivery_instruction():
    assert build_instruct(identity=None, emotion="Soft", directives={"language": "German"}) == "Delivery: Soft."


# --- planning -----------------------------------------------------------------------------------------


def plan(text, **kwargs):
    return plan_segments(parse_script(text), **kwargs)


def test_language_directive_overrides_project_language_for_later_segments():
    segments = plan("One.\n[language: German]Zwei.\nDrei.", language="english")
    assert [s.language for s in segments] == ["english", "german", "german"]


def test_seeds_are_deterministic_and_content_based():
    a = plan("Hello.\n[Sad]Bye.", seed=7)
    b = plan("Inserted line.\nHello.\n[Sad]Bye.", seed=7)
    assert [s.seed for s in a] == [s.seed for s in b[1:]]
    assert plan("Hello.", seed=7)[0].seed != plan("Hello.", seed=8)[0].seed
    assert plan("[Sad]Hello.", seed=7)[0].seed != plan("Hello.", seed=7)[0].seed


def test_new_take_changes_only_that_lines_seed():
    base = plan("One.\nTwo.", seed=1)
    retake = plan("One.\nTwo.", seed=1, takes={2: 1})
    assert base[0].seed == retake[0].seed and base[1].seed != retake[1].seed
    assert retake[1].take == 1


def test_pauses_locked_lines_and_default_voice():
    segments = plan("A [pause 2s] B\n[voice: Wolf]C", default_voice="Narrator", locked_lines={2})
    assert [(s.kind, s.voice, s.locked) for s in segments] == [
        ("speech", "Narrator", False), ("pause", None, False), ("speech", "Narrator", False), ("speech", "Wolf", True)
    ]
    assert segments[1].seconds == 2.0


def test_length_expectations():
    assert expected_seconds("Hello there, how are you?") == pytest.approx(21 / 15)
    assert expected_seconds("你好世界") == pytest.approx(4 / 5)
    assert max_new_tokens_for("Hi.") == 40
    assert max_new_tokens_for("word " * 2000) == 2048
    text = "A sentence of a normal length for speech."  # about 2.3 s
    assert length_warning(text, 2.5) is None
    assert "runaway" in length_warning(text, 30.0)
    assert "truncated" in length_warning(text, 0.3)
    assert "frame cap" in length_warning(text, 2.5, hit_token_cap=True)


# --- timing and subtitles ------------------------------------------------------------------------------


def test_lay_out_is_contiguous():
    segments = lay_out([("speech", 1, "a", 100), ("pause", 1, "", 50), ("speech", 2, "b", 25)])
    assert [(s.start_sample, s.end_sample) for s in segments] == [(0, 100), (100, 150), (150, 175)]


def test_timestamps():
    assert format_timestamp(3_723_045, decimal=",") == "01:02:03,045"


def test_srt_and_vtt_cue_only_speech_at_exact_times():
    segments = lay_out([("speech", 1, "Hello.", 36000), ("pause", 1, "", 24000), ("speech", 2, "a --> b", 12000)])
    assert to_srt(segments, 24000) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n00:00:02,500 --> 00:00:03,000\na -> b\n"
    )
    assert to_vtt(segments, 24000) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n\n00:00:02.500 --> 00:00:03.000\na -> b\n"
    )


# --- cache ---------------------------------------------------------------------------------------------


def test_cache_key_covers_every_field_and_ignores_order():
    fields = {"text": "a", "emotion": None, "seed": 1}
    assert cache_key(fields) == cache_key(dict(reversed(list(fields.items()))))
    assert cache_key(fields) != cache_key({**fields, "seed": 2})


def test_cache_round_trip(tmp_path):
    cache = RenderCache(tmp_path)
    samples = np.linspace(-1, 1, 1000, dtype=np.float32)
    key = cache_key({"x": 1})
    assert cache.get(key) is None
    cache.put(key, samples, 24000, {"seed": 5})
    hit = cache.get(key)
    assert hit is not None and hit.sample_rate == 24000 and hit.meta == {"seed": 5}
    np.testing.assert_array_equal(hit.samples, samples)


@pytest.mark.parametrize("damage", ["truncate_data", "flip_byte", "bad_record", "drop_record"])
def test_corrupt_entries_are_misses_and_removed(tmp_path, damage):
    cache = RenderCache(tmp_path)
    key = cache_key({"x": 2})
    cache.put(key, np.ones(100, dtype=np.float32), 24000)
    data_path = next(tmp_path.rglob("*.f32"))
    record_path = next(tmp_path.rglob("*.json"))
    if damage == "truncate_data":
        data_path.write_bytes(data_path.read_bytes()[:-4])
    elif damage == "flip_byte":
        raw = bytearray(data_path.read_bytes())
        raw[10] ^= 0xFF
        data_path.write_bytes(bytes(raw))
    elif damage == "bad_record":
        record_path.write_text("{not json", encoding="utf-8")
    else:
        record_path.unlink()
    assert cache.get(key) is None
    assert not data_path.exists() and not record_path.exists()


def test_cache_record_is_plain_json(tmp_path):
    cache = RenderCache(tmp_path)
    cache.put(cache_key({"y": 1}), np.zeros(3, dtype=np.float32), 24000)
    record = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert record["samples"] == 3 and record["sample_rate"] == 24000
