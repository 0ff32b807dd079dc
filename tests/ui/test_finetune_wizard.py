"""The fine-tune wizard, walked page by page with the real training subprocesses on the tiny base checkpoint."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QTimer

from studio.audio.playback import PlaybackUnavailable
from studio.core.voice_library import default_voice_library
from studio.ui.wizard import FineTuneWizard, training_command
from studio.ui.wizard import widgets as wizard_widgets
from studio.ui.wizard.base import (
    PAGE_FINISH,
    PAGE_PREPARE,
    PAGE_SETTINGS,
    PAGE_TRAIN,
    PAGE_VALIDATION,
)
from studio.ui.wizard.finetune import KEEP_TRAINING, STOP_TRAINING, page_for
from studio.ui.wizard.loss_history import LossHistory
from studio.ui.wizard.runner import LineBuffer
from tests.training.conftest import CLIPS, SR, build_dataset, harmonic, run_command, tree_hashes
from training.protocol import FINISHED, STOPPED, parse_line
from training.run_folder import inspect_run, process_alive, read_from, read_launch

GOOD = ("a_good", "b_good", "c_stereo48k", "d_good16k", "m_retake")
BROKEN = ("f_corrupt", "h_short")
SPEAKER = "tester"
# Subprocess start-up (torch, the tiny model) takes seconds on a busy two-core machine.
STEP_TIMEOUT_MS = 180_000


def make_recordings(root: Path, names: tuple[str, ...], extra: int = 0) -> Path:
    """A folder-layout dataset of the named clips plus `extra` more good ones (more training steps)."""
    data = build_dataset(root, "folder", tuple(c for c in CLIPS if c.name in names))
    for i in range(extra):
        sf.write(data.root / f"n_extra{i}.wav", harmonic(1.5 + 0.25 * i, 150.0 + 20 * i, seed=20 + i), SR)
        (data.root / f"n_extra{i}.txt").write_text(f"Extra sentence number {i + 1} for a longer epoch.\n")
    return data.arg


@pytest.fixture
def no_sound(monkeypatch):
    """The wizard sees no sound card, whatever this machine has."""

    def no_device():
        raise PlaybackUnavailable("no audio output device found; rendering and export still work")

    monkeypatch.setattr(wizard_widgets, "default_output_device", no_device)


@pytest.fixture
def library(tmp_path, monkeypatch):
    monkeypatch.setenv("QWEN_TTS_STUDIO_VOICES", str(tmp_path / "voices"))
    return default_voice_library()


@pytest.fixture
def make_wizard(qtbot, no_sound, library, tmp_path):
    """Wizards for one test; at teardown no step is left running and no training process survives."""
    made: list[FineTuneWizard] = []

    def make(run_dir: Path | None = None) -> FineTuneWizard:
        if run_dir is None:
            wizard = FineTuneWizard(runs_root=tmp_path / "runs")
        else:
            wizard = FineTuneWizard.open_run(run_dir, runs_root=tmp_path / "runs")
        wizard.show()
        made.append(wizard)
        return wizard

    yield make
    leftovers = []
    for wizard in made:
        launch = read_launch(wizard.run_dir) if wizard.run_dir else None
        wizard.shutdown()
        assert not wizard.validation_page.runner.running and not wizard.prepare_page.runner.running
        if launch is not None and launch.alive():
            leftovers.append(launch.pid)
            wizard.train_page.run.terminate()
            import psutil

            psutil.Process(launch.pid).kill()
        wizard.hide()
        wizard.deleteLater()
    qtbot.wait(10)
    assert not leftovers, f"training processes left running: {leftovers}"


class FreezeAtFirstStep(threading.Thread):
    """Suspends the real training process the moment its first step event is in events.jsonl.

    The tiny model trains a step in about 25 ms, so a whole run ends before any click can land. Freezing
    the process (SIGSTOP) between two steps gives the Stop button a defined moment to act in; after
    `resume()` it is the same process carrying on, honouring the STOP file at its next step.
    """

    def __init__(self, run_dir: Path) -> None:
        super().__init__(daemon=True)
        self.launch = read_launch(run_dir)
        assert self.launch is not None, "training was not started"
        self.events = run_dir / "events.jsonl"
        self.frozen = False
        self.start()

    def run(self) -> None:
        import psutil

        deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
        while time.monotonic() < deadline and self.launch.alive():
            data = read_from(self.events, self.launch.events_offset)
            if any((parse_line(line) or {}).get("event") == "step" for line in data.split(b"\n")):
                psutil.Process(self.launch.pid).suspend()
                self.frozen = True
                return
            time.sleep(0.001)

    def wait_frozen(self) -> None:
        self.join(STEP_TIMEOUT_MS / 1000)
        assert self.frozen, "training ended before its first step could be caught"

    def resume(self) -> None:
        import psutil

        psutil.Process(self.launch.pid).resume()


def wait_until_idle(qtbot, runner_running, timeout=STEP_TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: not runner_running(), timeout=timeout)


def fill_settings(wizard: FineTuneWizard, base: Path, **overrides) -> None:
    page = wizard.settings_page
    page.base_combo.setEditText(str(base))
    page.speaker_edit.setText(SPEAKER)
    page.epochs_spin.setValue(1)
    page.batch_spin.setValue(overrides.get("batch_size", 2))
    page.device_combo.setCurrentText("cpu")
    page.accumulation_spin.setValue(1)
    page.checkpoint_spin.setValue(100)
    page.sample_tokens_spin.setValue(6)
    page.threads_spin.setValue(2)


# --- pieces --------------------------------------------------------------------------------------------------


def test_line_buffer_holds_partial_lines_and_split_characters():
    buffer = LineBuffer()
    event = json.dumps(
        {"event": "step", "t": 1.0, "step": 1, "total": 2, "loss": 1.5, "text": "é"}, ensure_ascii=False
    ).encode()
    cut = event.index("é".encode()) + 1  # inside the two bytes of é
    assert buffer.feed(event[:cut]) == []
    assert buffer.feed(event[cut:] + b"\nnext") == [event.decode()]
    assert buffer.flush() == ["next"] and buffer.flush() == []


def test_loss_history_smooths_and_forgets_redone_steps():
    history = LossHistory(smoothing=0.5)
    for step, loss in enumerate([4.0, 2.0, None, 1.0], start=1):
        history.add(step, loss)
    assert history.steps == [1, 2, 4] and history.nonfinite == 1
    # Debiased: the first smoothed value is the first loss, not 0.5 of it.
    assert history.smoothed[0] == 4.0
    assert history.smoothed[1] == pytest.approx((0.5 * 0.5 * 4 + 0.5 * 2) / (1 - 0.25))
    history.add(2, 3.0)  # a resume redoing step 2 replaces it and what came after
    assert history.steps == [1, 2] and history.losses == [4.0, 3.0]


def test_training_command_uses_accelerate_for_several_gpus():
    single = training_command("training.sft", ["--config", "r/run.json"])
    assert single == [sys.executable, "-m", "studio", "--run-training", "training.sft", "--config", "r/run.json"]
    multi = training_command("training.sft", ["--config", "r/run.json"], processes=2)
    launcher = [sys.executable, "-m", "studio", "--run-training", "accelerate.commands.launch"]
    assert multi[:5] == launcher
    # accelerate starts the very same single-process command once per GPU (it really does: see
    # test_two_gpus_in_the_settings_train_in_two_processes and tests/training/test_sft_distributed.py).
    options = multi[5 : -len(single) - 1]
    assert multi[-len(single) - 1 :] == ["--no_python", *single]
    assert options[options.index("--num_processes") + 1] == "2"
    # Without --multi_gpu, accelerate launch runs one process on a machine with fewer than two GPUs.
    assert "--multi_gpu" in options and options[options.index("--main_process_port") + 1] == "0"


def test_training_command_in_a_frozen_build_runs_the_executable(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/qwen-tts-studio/qwen-tts-studio")
    assert training_command("training.prepare", ["--run", "r"]) == [
        "/opt/qwen-tts-studio/qwen-tts-studio",
        "--run-training",
        "training.prepare",
        "--run",
        "r",
    ]


# --- the whole path --------------------------------------------------------------------------------------------


def test_walk_the_wizard_end_to_end(qtbot, make_wizard, tmp_path, tiny_checkpoints, library):
    # 16 usable items: 8 steps an epoch at batch size 2, capped at 6 by the settings page.
    dataset = make_recordings(tmp_path / "recordings", GOOD + BROKEN, extra=11)
    originals = tree_hashes(dataset)
    run_dir = tmp_path / "run"
    wizard = make_wizard()
    assert wizard.minimumWidth() >= 800 and wizard.minimumHeight() >= 600

    # 1 -> 2: validation runs and lists exactly the broken items as left out.
    wizard.dataset_page.set_paths(dataset, run_dir)
    wizard.next()
    assert wizard.currentId() == PAGE_VALIDATION
    page = wizard.validation_page
    wait_until_idle(qtbot, lambda: page.runner.running)
    assert page.isComplete(), page.error.message
    assert sorted(page.problem_rows()) == ["f_corrupt.wav", "h_short.wav"]
    notes = {page.table.item(r, 0).text() for r in range(page.table.rowCount())} - set(page.problem_rows())
    assert notes == {"c_stereo48k.wav", "d_good16k.flac", "m_retake.wav"}  # usable, with a note
    assert "16 of 18 items usable" in page.totals.text().replace("<b>", "").replace("</b>", "")
    assert page.progress.bar.value() == page.progress.bar.maximum() == 18
    page.table.selectRow(0)
    assert not page.play_button.isEnabled() and "no audio output device" in page.play_button.toolTip()
    page.show_all.setChecked(True)
    assert page.table.rowCount() == 18

    # 3: settings, through the page's own widgets; Show command lists what will run.
    wizard.next()
    assert wizard.currentId() == PAGE_SETTINGS
    settings = wizard.settings_page
    assert settings.lr_combo.currentText() == "1e-7"
    fill_settings(wizard, tiny_checkpoints["base"])
    settings.max_steps_spin.setValue(6)
    settings.command_button.click()
    text = settings.command_dialog.text.toPlainText()
    assert f"--run-training training.sft --config {run_dir / 'run.json'}" in text and '"speaker": "tester"' in text
    settings.command_dialog.close()

    # 4: prepare.
    wizard.next()
    assert wizard.currentId() == PAGE_PREPARE
    config = json.loads((run_dir / "run.json").read_text())
    assert (config["speaker"], config["batch_size"], config["epochs"], config["learning_rate"]) == (SPEAKER, 2, 1, 1e-7)
    prepare = wizard.prepare_page
    wait_until_idle(qtbot, lambda: prepare.runner.running)
    assert prepare.isComplete(), prepare.error.message
    assert prepare.progress.bar.value() == prepare.progress.bar.maximum() == 16
    assert (run_dir / "prepared.jsonl").is_file()

    # 5: training starts by itself; loss points arrive in the plot.
    train = wizard.train_page
    events: list[dict] = []
    train.run.event_received.connect(events.append)
    wizard.next()
    assert wizard.currentId() == PAGE_TRAIN and train.running
    assert not train.isComplete() and not wizard.button(wizard.WizardButton.BackButton).isEnabled()
    freezer = FreezeAtFirstStep(run_dir)
    freezer.wait_frozen()
    qtbot.waitUntil(lambda: len(train.plot.history) >= 1, timeout=STEP_TIMEOUT_MS)
    steps, losses = train.plot.raw_points()
    assert len(steps) >= 1 and all(math.isfinite(v) for v in losses)
    assert train.progress.bar.maximum() == 6 and "ETA" in train.progress.label.text()
    assert "loss" in train.facts.text() and "epoch 1/1" in train.facts.text()

    # Stop: the step in flight finishes and is saved.
    train.stop_button.click()
    assert not train.stop_button.isEnabled() and (run_dir / "STOP").exists()
    freezer.resume()
    wait_until_idle(qtbot, lambda: train.running)
    assert train.outcome.status == STOPPED, (train.outcome, train.log.lines()[-20:])
    stopped_at = train.step
    assert 1 <= stopped_at < 6
    # The bar shows where training stopped, not a full bar.
    bar = train.progress.bar
    assert (bar.value(), bar.maximum()) == (stopped_at, 6)
    assert bar.text() == f"{stopped_at} / 6 steps — stopped" and train.progress.label.text() == "stopped"
    assert (run_dir / "checkpoints" / f"step-{stopped_at:06d}").is_dir()
    assert not (run_dir / "STOP").exists()
    assert train.resume_button.isEnabled() and not train.isComplete()
    assert wizard.button(wizard.WizardButton.BackButton).isEnabled()

    # Resume: the same command continues from the saved step.
    events.clear()
    train.resume_button.click()
    assert train.running
    wait_until_idle(qtbot, lambda: train.running)
    assert train.outcome.status == FINISHED, (train.outcome, train.log.lines()[-20:])
    start = next(e for e in events if e["event"] == "start")
    first = next(e for e in events if e["event"] == "step")
    assert start["resumed_from"] == stopped_at and first["step"] == stopped_at + 1
    assert train.plot.history.steps == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(v) for v in train.plot.smoothed_points()[1])
    assert train.isComplete()

    # 6: samples to listen to, and the voice registered in the library.
    wizard.next()
    assert wizard.currentId() == PAGE_FINISH
    finish = wizard.finish_page
    assert finish.samples.count() == 1 and "epoch-001.wav" in finish.samples.item(0).text()
    assert not finish.play_button.isEnabled()
    finish.name_edit.setText("Tester")
    finish.register_button.click()
    assert wizard.registered_profile is not None, finish.error.message
    profile = library.get("Tester")
    assert profile.voice.kind == "preset" and profile.voice.speaker == SPEAKER
    assert Path(profile.voice.model) == run_dir / "export" / SPEAKER
    assert tree_hashes(dataset) == originals

    from studio.engine.loader import load_model

    loaded = load_model(profile.voice.model, device="cpu", cpu_threads=2)
    assert loaded.info.model_type == "custom_voice" and loaded.info.speakers == (SPEAKER,)

    # Reopening the finished run lands on the last page, with the plot restored from metrics.csv.
    wizard.accept()
    again = make_wizard(run_dir)
    assert again.currentId() == PAGE_FINISH
    assert again.train_page.plot.history.steps == [1, 2, 3, 4, 5, 6]
    assert not again.finish_page.register_button.isEnabled()  # already registered


def test_a_dataset_with_nothing_usable_stops_at_the_report(qtbot, make_wizard, tmp_path):
    dataset = make_recordings(tmp_path / "recordings", ("f_corrupt", "g_empty_text", "h_short"))
    wizard = make_wizard()
    wizard.dataset_page.set_paths(dataset, tmp_path / "run")
    wizard.next()
    page = wizard.validation_page
    wait_until_idle(qtbot, lambda: page.runner.running)
    assert not page.isComplete()
    assert page.error.isVisible() and "no usable items" in page.error.message
    assert "Traceback" not in page.error.text()
    assert sorted(page.problem_rows()) == ["f_corrupt.wav", "g_empty_text.wav", "h_short.wav"]
    wizard.next()
    assert wizard.currentId() == PAGE_VALIDATION
    # The user can go back and choose other recordings.
    wizard.back()
    assert wizard.currentId() == 0


@pytest.fixture
def prepared_run(tmp_path, tiny_checkpoints):
    """A run folder validated and prepared by the commands themselves, with run.json written."""
    dataset = make_recordings(tmp_path / "recordings", GOOD, extra=3)
    run_dir = tmp_path / "run"
    assert run_command("training.validate", dataset, "--out", run_dir).rc == 0
    prepared = run_command("training.prepare", run_dir, "--tokenizer", tiny_checkpoints["base"], "--cpu-threads", "2")
    assert prepared.rc == 0, prepared.stderr
    config = {
        "base_model": str(tiny_checkpoints["base"]),
        "speaker": SPEAKER,
        "epochs": 1,
        "batch_size": 1,
        "gradient_accumulation": 1,
        "sample_max_new_tokens": 6,
        "device": "cpu",
        "cpu_threads": 2,
    }
    (run_dir / "run.json").write_text(json.dumps(config))
    return run_dir


def test_close_keeps_training_then_reopen_reattaches_and_close_stops(qtbot, make_wizard, prepared_run, monkeypatch):
    run_dir = prepared_run
    assert page_for(inspect_run(run_dir)) == PAGE_PREPARE
    wizard = make_wizard(run_dir)
    assert wizard.currentId() == PAGE_PREPARE and wizard.prepare_page.isComplete()
    assert wizard.settings_page.batch_spin.value() == 1  # the settings page shows run.json
    wizard.next()
    train = wizard.train_page
    assert train.running
    freezer = FreezeAtFirstStep(run_dir)
    freezer.wait_frozen()
    qtbot.waitUntil(lambda: len(train.plot.history) >= 1, timeout=STEP_TIMEOUT_MS)

    # Close, keeping the training: the window goes, the process does not.
    monkeypatch.setattr(wizard, "ask_close_while_training", lambda: KEEP_TRAINING)
    wizard.reject()
    assert not wizard.isVisible()
    launch = read_launch(run_dir)
    assert launch is not None and launch.alive()

    # Reopen: straight to the train page, following the same process, history back from metrics.csv.
    again = make_wizard(run_dir)
    assert again.currentId() == PAGE_TRAIN
    train = again.train_page
    assert train.running and train.run.pid == launch.pid
    assert len(train.plot.history) >= 1 and train.total == 8
    assert not again.button(again.WizardButton.BackButton).isEnabled()

    # Close again, stopping it: the wizard waits for the process to end; nothing is left behind.
    monkeypatch.setattr(again, "ask_close_while_training", lambda: STOP_TRAINING)
    # The process carries on only once the wizard has asked it to stop, so the stop lands mid-run.
    QTimer.singleShot(300, freezer.resume)
    again.reject()
    assert not again.isVisible() and not again.training_running
    assert not process_alive(launch.pid, launch.start_time)
    assert train.outcome is not None and train.outcome.status == STOPPED
    assert 1 <= train.step < 8 and (run_dir / "checkpoints" / f"step-{train.step:06d}").is_dir()
    assert not (run_dir / "STOP").exists()
    assert np.isfinite(train.plot.raw_points()[1]).all()


def test_the_window_opens_the_wizard_from_the_tools_menu(make_window):
    window = make_window()
    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    action = next(a for a in tools.actions() if "Fine-tune" in a.text())
    action.trigger()
    wizard = window.finetune_wizard
    assert wizard.isVisible() and wizard.currentId() == wizard.startId()
    wizard.close()


@pytest.mark.slow
def test_two_gpus_in_the_settings_train_in_two_processes(qtbot, make_wizard, prepared_run):
    """The GPUs setting starts accelerate's launcher, which really runs two training processes (CPU, gloo)."""
    wizard = make_wizard(prepared_run)
    assert wizard.currentId() == PAGE_PREPARE
    wizard.back()
    settings = wizard.settings_page
    assert wizard.currentId() == PAGE_SETTINGS and settings.device_combo.currentText() == "cpu"
    settings.gpus_spin.setValue(2)
    settings.threads_spin.setValue(1)
    wizard.next()
    prepare = wizard.prepare_page
    wait_until_idle(qtbot, lambda: prepare.runner.running)
    assert prepare.isComplete(), prepare.error.message
    train = wizard.train_page
    events: list[dict] = []
    shown: list[str] = []
    train.run.event_received.connect(events.append)
    # Connected after the page's own slot: what the page shows once it has handled each event.
    train.run.event_received.connect(lambda _event: shown.append(train.status.text()))
    wizard.next()
    assert train.running
    launch = read_launch(prepared_run)
    assert launch.command == training_command("training.sft", ["--config", str(prepared_run / "run.json")], processes=2)
    wait_until_idle(qtbot, lambda: train.running)

    assert train.outcome.status == FINISHED, (train.outcome, train.log.lines()[-20:])
    start = next(e for e in events if e["event"] == "start")
    # 8 items, one per micro-batch: 4 steps when two processes share each epoch.
    assert start["processes"] == 2 and start["total"] == 4
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]
    assert "(fp32) in 2 processes: 8 items, 4 steps per epoch" in shown[events.index(start)]
    state = json.loads((prepared_run / "checkpoints" / "step-000004" / "state.json").read_text())
    assert state["processes"] == 2
    assert (prepared_run / "export" / SPEAKER / "model.safetensors").is_file()


@pytest.mark.parametrize("case", ["truncated", "tokenizer_25hz"])
def test_a_broken_base_model_is_one_message_on_the_settings_page(qtbot, make_wizard, tmp_path, tiny_checkpoints,
                                                                  case):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_checkpoints["base"], base)
    if case == "truncated":
        weights = base / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
        expected = f"{weights}: truncated"
    else:
        config = json.loads((base / "config.json").read_text())
        (base / "config.json").write_text(json.dumps({**config, "tokenizer_type": "qwen3_tts_tokenizer_25hz"}))
        expected = f"{base / 'config.json'}: tokenizer_type is 'qwen3_tts_tokenizer_25hz'; the studio runs 12 Hz"
    wizard = make_wizard()
    wizard.dataset_page.set_paths(tmp_path / "recordings", tmp_path / "run")
    settings = wizard.settings_page
    fill_settings(wizard, base)

    assert settings.validatePage() is False
    assert expected in settings.error.message and len(settings.error.message.splitlines()) == 1
    assert not (tmp_path / "run" / "run.json").exists()
