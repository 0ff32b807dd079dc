"""`render --decoder fast|reference`, `--greedy`, `--compile`, `--int8`, through the real engine (tiny checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from studio import cli
from studio.engine.decoder_options import DecoderOptions
from studio.settings import update_settings

SCRIPT = "Hello there.\n"


def _render(capsys, tiny_checkpoints, tmp_path, name: str, *flags: str) -> tuple[np.ndarray, str]:
    """One in-process render into its own output and cache folders (so no run is another's cache hit);
    returns the exported samples and stderr."""
    script = tmp_path / "line.txt"
    script.write_text(SCRIPT)
    out = tmp_path / f"out-{name}"
    code = cli.main(["render", str(script), "--model", str(tiny_checkpoints["voice_design"]),
                     "--voice-design", "A calm narrator", "--out", str(out), "--cache", str(tmp_path / f"cache-{name}"),
                     "--device", "cpu", "--threads", "2", "--max-new-tokens", "10", "--seed", "3", *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "cached" not in captured.out
    (wav,) = out.glob("line_*.wav")
    samples, rate = soundfile.read(wav, dtype="int16")
    assert rate == 24000 and samples.any()
    return samples, captured.err


def _decoder_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("decoder: ")]


def test_greedy_fast_and_reference_render_the_same_samples(tiny_checkpoints, tmp_path, capsys, fast_loop_runs):
    reference, err_reference = _render(capsys, tiny_checkpoints, tmp_path, "ref", "--greedy", "--decoder", "reference")
    assert fast_loop_runs == []  # qwen-tts's generate made these frames
    fast, err_fast = _render(capsys, tiny_checkpoints, tmp_path, "fast", "--greedy", "--decoder", "fast",
                             "--batch", "1")
    assert fast_loop_runs == [DecoderOptions("fast")]
    batched, err_batched = _render(capsys, tiny_checkpoints, tmp_path, "batched", "--greedy")  # --batch auto
    assert fast_loop_runs == [DecoderOptions("fast")]  # the batched decoder made these
    assert _decoder_lines(err_reference) == ["decoder: reference (qwen-tts generate), greedy (no sampling)"]
    assert _decoder_lines(err_fast) == ["decoder: fast, greedy (no sampling)"]
    assert _decoder_lines(err_batched) == ["decoder: fast, batched (automatic size), greedy (no sampling)"]
    # The studio's loops reproduce qwen-tts's codes when nothing is sampled: the same audio, sample for sample.
    np.testing.assert_array_equal(fast, reference)
    np.testing.assert_array_equal(batched, reference)


def test_the_machine_setting_is_the_default_and_greedy_changes_only_that_run(tiny_checkpoints, tmp_path, capsys,
                                                                             fast_loop_runs):
    update_settings(decoder="reference")  # the machine's choice, used when --decoder is not given
    sampled, err_sampled = _render(capsys, tiny_checkpoints, tmp_path, "sampled")
    greedy, err_greedy = _render(capsys, tiny_checkpoints, tmp_path, "greedy", "--greedy")
    assert fast_loop_runs == []
    assert _decoder_lines(err_sampled) == ["decoder: reference (qwen-tts generate)"]
    assert _decoder_lines(err_greedy) == ["decoder: reference (qwen-tts generate), greedy (no sampling)"]
    # One seed: with sampling (the project's temperature) and without it, the model says different things.
    assert len(sampled) != len(greedy) or not np.array_equal(sampled, greedy)


def test_flags_override_the_machine_settings_one_by_one():
    from studio.cli.main import _build_parser
    from studio.cli.render import _decoder_options
    from studio.settings import Settings

    def options(settings: Settings, *flags: str) -> DecoderOptions:
        return _decoder_options(_build_parser().parse_args(["render", "x.txt", "--out", "o", *flags]), settings)

    assert options(Settings()) == DecoderOptions("fast", compile=False, int8=False)
    machine = Settings(decoder="fast", compile_decoder=True, int8_decoder=True)
    assert options(machine) == DecoderOptions("fast", compile=True, int8=True)
    assert options(machine, "--no-compile") == DecoderOptions("fast", compile=False, int8=True)
    assert options(machine, "--no-int8") == DecoderOptions("fast", compile=True, int8=False)
    assert options(Settings(), "--compile", "--int8") == DecoderOptions("fast", compile=True, int8=True)
    # The reference path has neither: settings made for the fast loop are not an error, only left out.
    assert options(machine, "--decoder", "reference") == DecoderOptions("reference")
    assert options(Settings(decoder="reference"), "--decoder", "fast") == DecoderOptions("fast")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--decoder", "bogus"], "argument --decoder: invalid choice: 'bogus'"),
        (["--decoder", "reference", "--int8"], "--int8 needs the fast decoder"),
        (["--decoder", "reference", "--compile"], "--compile needs the fast decoder"),
    ],
)
def test_a_bad_decoder_choice_is_one_line_and_exit_2(tiny_checkpoints, tmp_path, capsys, flags, message):
    script = tmp_path / "line.txt"
    script.write_text(SCRIPT)
    code = cli.main(["render", str(script), "--model", str(tiny_checkpoints["voice_design"]), "--voice-design", "x",
                     "--out", str(tmp_path / "out"), *flags])
    out, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
