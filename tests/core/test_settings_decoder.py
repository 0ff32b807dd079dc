"""The decoder choice in the per-machine settings: stored, read back, checked field by field."""

from __future__ import annotations

import json
import logging

import pytest

from studio.engine.decoder_options import DecoderOptions
from studio.settings import Settings, load_settings, save_settings, update_settings


def test_the_decoder_choice_round_trips_through_the_file(tmp_path):
    path = tmp_path / "settings.json"
    assert Settings().decoder_options() == DecoderOptions("fast", compile=False, int8=False)
    chosen = Settings(decoder="fast", compile_decoder=True, int8_decoder=True, cpu_threads=3)
    assert save_settings(chosen, path)
    on_disk = json.loads(path.read_text())
    assert (on_disk["decoder"], on_disk["compile_decoder"], on_disk["int8_decoder"]) == ("fast", True, True)
    again = load_settings(path)
    assert again == chosen and again.load_warnings == ()
    assert again.decoder_options() == DecoderOptions("fast", compile=True, int8=True)

    update_settings(path, decoder="reference")
    reference = load_settings(path)
    assert reference.decoder == "reference" and reference.compile_decoder and reference.int8_decoder
    # Compiling and int8 are the fast loop's: kept for switching back, not handed to the reference path.
    assert reference.decoder_options() == DecoderOptions("reference", compile=False, int8=False)


def test_a_bad_decoder_value_falls_back_with_a_warning_naming_the_field(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "decoder": "turbo", "compile_decoder": "yes",
                                "int8_decoder": 1, "cpu_threads": 2}))
    with caplog.at_level(logging.WARNING, logger="studio.settings"):
        settings = load_settings(path)
    assert (settings.decoder, settings.compile_decoder, settings.int8_decoder) == ("fast", False, False)
    assert settings.cpu_threads == 2  # the good field beside them is kept
    assert len(settings.load_warnings) == len(caplog.records) == 3
    decoder, compile_, int8 = settings.load_warnings
    assert "decoder:" in decoder and "'turbo'" in decoder and "fast, reference" in decoder
    assert "compile_decoder:" in compile_ and "int8_decoder:" in int8
    assert all(str(path) in w for w in settings.load_warnings)


def test_update_refuses_an_unknown_decoder_from_code(tmp_path):
    path = tmp_path / "settings.json"
    with pytest.raises(ValueError, match="decoder: expected one of fast, reference"):
        update_settings(path, decoder="turbo")
    with pytest.raises(ValueError, match="int8_decoder"):
        update_settings(path, int8_decoder="on")
    assert not path.exists()


@pytest.mark.parametrize("bad", [-1, 65, 2.5, True, "4"])
def test_a_bad_batch_size_falls_back_to_one_line_at_a_time(tmp_path, bad):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "batch": bad}))
    settings = load_settings(path)
    assert settings.batch == 1
    [warning] = settings.load_warnings
    assert "batch:" in warning and "0 (automatic) to 64" in warning


def test_a_batch_size_is_kept(tmp_path):
    path = tmp_path / "settings.json"
    update_settings(path, batch=0)
    assert load_settings(path).batch == 0
    update_settings(path, batch=8)
    assert load_settings(path).batch == 8
