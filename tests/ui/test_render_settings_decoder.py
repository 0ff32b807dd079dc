"""Render Settings → Advanced: the decoder (per machine) and greedy decoding (per project), as far as the render."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio.core.project import GenerationParams, Project
from studio.engine.decoder_options import DecoderOptions
from studio.engine.render import DONE
from studio.settings import load_settings
from studio.ui import window_dialogs
from studio.ui.render_settings import MachineSettings, RenderSettingsDialog
from tests.ui.test_render_in_window import render_and_wait


def _choose(dialog: RenderSettingsDialog, decoder: str) -> None:
    dialog.decoder_combo.setCurrentIndex(dialog.decoder_combo.findData(decoder))


def test_the_advanced_choices_edit_the_machine_and_greedy_keeps_the_temperature(qtbot):
    project = Project()
    project.render.generation = GenerationParams(temperature=0.7, top_k=30)
    machine = MachineSettings()
    dialog = RenderSettingsDialog(project, machine)
    qtbot.addWidget(dialog)
    assert dialog.decoder_combo.currentText() == "Fast (studio loop)"
    # All defaults: folded away until asked for.
    assert not dialog.advanced_button.isChecked() and not dialog.decoder_combo.isVisibleTo(dialog)
    dialog.advanced_button.click()
    assert dialog.decoder_combo.isVisibleTo(dialog) and dialog.greedy_check.isVisibleTo(dialog)
    assert not dialog.greedy_check.isChecked() and dialog.int8_check.isEnabled()
    assert "cached on disk" in dialog.compile_check.toolTip()
    _choose(dialog, "reference")
    # Compiling and int8 weights are the studio loop's: nothing to choose for qwen-tts's generate.
    assert not dialog.int8_check.isEnabled() and not dialog.compile_check.isEnabled()
    _choose(dialog, "fast")
    assert dialog.int8_check.isEnabled() and dialog.compile_check.isEnabled()
    dialog.compile_check.setChecked(True)
    dialog.int8_check.setChecked(True)
    dialog.greedy_check.setChecked(True)
    dialog.accept()
    assert (machine.decoder, machine.compile_decoder, machine.int8_decoder) == ("fast", True, True)
    assert machine.decoder_options() == DecoderOptions("fast", compile=True, int8=True)
    changes = machine.changes()  # what the window writes to the settings file
    assert (changes["decoder"], changes["compile_decoder"], changes["int8_decoder"]) == ("fast", True, True)
    assert project.render.generation == GenerationParams(temperature=0.0, top_k=30)
    assert dialog.sampling_temperature == 0.7

    # Opened again (the window hands back the temperature greedy replaced): unticking restores it.
    again = RenderSettingsDialog(project, machine, sampling_temperature=dialog.sampling_temperature)
    qtbot.addWidget(again)
    assert again.greedy_check.isChecked() and again.compile_check.isChecked() and again.int8_check.isChecked()
    assert again.greedy_check.isVisibleTo(again)  # choices in force are never folded out of sight
    again.greedy_check.setChecked(False)
    _choose(again, "reference")
    again.accept()
    assert project.render.generation == GenerationParams(temperature=0.7, top_k=30)
    assert machine.decoder_options() == DecoderOptions("reference")
    assert machine.compile_decoder and machine.int8_decoder  # kept for switching back

    # A project that was greedy when it was opened has no temperature to go back to: the default one.
    greedy = Project()
    greedy.render.generation = GenerationParams(temperature=0.0)
    third = RenderSettingsDialog(greedy, machine)
    qtbot.addWidget(third)
    assert third.greedy_check.isChecked()
    third.greedy_check.setChecked(False)
    third.accept()
    assert greedy.render.generation.temperature == GenerationParams().temperature == 0.9


def _user_picks(monkeypatch, *, decoder: str, int8: bool, greedy: bool) -> None:
    """The window's Render Settings dialog, answered as a user would, then OK (never left open)."""

    class Answered(RenderSettingsDialog):
        def exec(self):
            _choose(self, decoder)
            self.int8_check.setChecked(int8)
            self.greedy_check.setChecked(greedy)
            self.accept()
            return self.result()

    monkeypatch.setattr(window_dialogs, "RenderSettingsDialog", Answered)


def test_the_choices_are_saved_and_the_next_render_job_decodes_with_them(qtbot, tiny_window, make_window, monkeypatch,
                                                                         fast_loop_runs):
    window = tiny_window("Hello there.\n")
    window.project.render.generation = replace(window.project.render.generation, temperature=0.7)
    jobs = []
    real_submit = window.renderer.submit

    def submit(job, machine):
        jobs.append(job)
        return real_submit(job, machine)

    monkeypatch.setattr(window.renderer, "submit", submit)

    _user_picks(monkeypatch, decoder="fast", int8=True, greedy=True)
    assert window.edit_render_settings()
    kept = load_settings()
    assert (kept.decoder, kept.compile_decoder, kept.int8_decoder) == ("fast", False, True)
    assert window.project.render.generation.temperature == 0.0 and window.isWindowModified()
    outcome = render_and_wait(qtbot, window)
    assert outcome.error is None and [r.state for r in outcome.results] == [DONE]
    assert jobs[-1].decoder == DecoderOptions("fast", int8=True) and jobs[-1].generation.temperature == 0.0
    assert fast_loop_runs == [DecoderOptions("fast", int8=True)]  # what the engine decoded with

    _user_picks(monkeypatch, decoder="reference", int8=True, greedy=False)
    assert window.edit_render_settings()
    assert load_settings().decoder == "reference"
    assert window.project.render.generation.temperature == 0.7  # the one greedy replaced, back
    outcome = render_and_wait(qtbot, window)
    assert [r.state for r in outcome.results] == [DONE] and not outcome.results[0].cached
    assert jobs[-1].decoder == DecoderOptions("reference") and jobs[-1].generation.temperature == 0.7
    assert len(fast_loop_runs) == 1  # qwen-tts's generate rendered this one

    # The next start reads them back.
    assert make_window().machine.decoder_options() == DecoderOptions("reference")


def test_lines_decoded_together_are_saved_and_the_window_renders_them_batched(qtbot, tiny_window, monkeypatch,
                                                                               fast_loop_runs):
    import numpy as np

    from studio.engine import batch_decode

    window = tiny_window("One.\nTwo is a longer line.\n[pause 0.2s]\nThree.\n")

    class Answered(RenderSettingsDialog):
        def exec(self):
            assert self.batch_spin.value() == 1 and self.batch_spin.isEnabled()
            self.advanced_button.click()
            self.batch_spin.setValue(3)
            self.accept()
            return self.result()

    monkeypatch.setattr(window_dialogs, "RenderSettingsDialog", Answered)
    assert window.edit_render_settings()
    assert load_settings().batch == 3 and window.machine.batch == 3
    batches = []
    real_run = batch_decode.BatchDecoder.run

    def run(self, jobs, *, batch, count=None, halted=None):
        batches.append((batch, count))
        return real_run(self, jobs, batch=batch, count=count, halted=halted)

    monkeypatch.setattr(batch_decode.BatchDecoder, "run", run)
    outcome = render_and_wait(qtbot, window)
    assert outcome.error is None and [r.state for r in outcome.results] == [DONE] * 4
    assert batches == [(3, 3)] and fast_loop_runs == []  # the three lines went to the batched decoder together
    np.testing.assert_array_equal(window.waveform.audio.view(), np.concatenate([r.samples for r in outcome.results]))


def test_render_on_is_saved_and_explains_ray_when_it_is_missing(qtbot, monkeypatch):
    import importlib.util

    machine = MachineSettings()
    dialog = RenderSettingsDialog(Project(), machine)
    qtbot.addWidget(dialog)
    assert dialog.cluster_combo.currentText() == "This computer" and not dialog.cluster_edit.isVisibleTo(dialog)
    assert not dialog.cluster_hint.isVisibleTo(dialog)  # Ray is installed here: nothing to explain
    dialog.cluster_combo.setCurrentIndex(2)
    assert dialog.cluster_edit.isVisibleTo(dialog)
    dialog.cluster_edit.setText(" 10.0.0.5:6379 ")
    dialog.accept()
    assert machine.cluster == "10.0.0.5:6379" and machine.changes()["cluster"] == "10.0.0.5:6379"
    again = RenderSettingsDialog(Project(), machine)
    qtbot.addWidget(again)
    assert again.cluster_combo.currentIndex() == 2 and again.cluster_edit.text() == "10.0.0.5:6379"

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real_find_spec(name, *a))
    without = RenderSettingsDialog(Project(), MachineSettings(cluster="auto"))
    qtbot.addWidget(without)
    assert without.cluster_combo.currentIndex() == 0  # nothing to render with: back to this computer
    items = without.cluster_combo.model()
    assert not items.item(1).isEnabled() and not items.item(2).isEnabled()
    assert without.cluster_hint.isVisibleTo(without)
    assert "pip install 'qwen-tts-studio[cluster]'" in without.cluster_hint.text()
    # Laid out where a user sees it, the hint has its own line: it overlaps neither the choice nor the rows below.
    without.show()
    qtbot.waitExposed(without)
    hint = without.cluster_hint.geometry()
    assert hint.height() >= without.cluster_hint.sizeHint().height()
    assert not hint.intersects(without.cluster_combo.geometry())
    assert not hint.intersects(without.advanced_button.geometry())


@pytest.mark.slow
def test_render_all_on_a_ray_started_here_plays_like_a_local_render(qtbot, tiny_window, monkeypatch):
    import numpy as np
    import ray

    from studio.session import cluster

    window = tiny_window("One.\nTwo is a longer line.\n[pause 0.2s]\nThree.\n")
    calls = []
    real = cluster.run_job_on_cluster
    monkeypatch.setattr(cluster, "run_job_on_cluster", lambda job, options, events=None, **kw: calls.append(options)
                        or real(job, options, events, **kw))
    window.machine.cluster = "auto"
    try:
        outcome = render_and_wait(qtbot, window)
    finally:
        ray.shutdown()
    assert [o.address for o in calls] == ["auto"]
    assert outcome.error is None and [r.state for r in outcome.results] == [DONE] * 4
    np.testing.assert_array_equal(window.waveform.audio.view(), np.concatenate([r.samples for r in outcome.results]))
    assert window.last_export is not None and window.last_export.audio.is_file()
