# ruff: noqa: F811 - the fixtures imported from test_finetune_wizard are requested by name as arguments
"""What a new user hit in the fine-tune wizard, each checked where the user sees it (issue 18, item 7).

- the Base model field: an installed Base checkpoint, or empty with a placeholder (never dataclasses.MISSING);
- Done / Cancel / close after training: the trained voice is added to the library, or the user is asked;
- the loss plot: readable tick labels and a step axis from 0, also with a single point;
- after Stop the bar shows where training stopped, and says so;
- while a per-epoch sample renders the page says so, and the time left is held rather than frozen unexplained.

The training progress tests follow a ScriptedTraining: a stand-in process (a sleeping Python) whose
events.jsonl the test writes line by line, so the page reads them through the wizard's real file
follower at moments the test chooses. The Done tests use a run really trained by the training commands
on the tiny Base checkpoint.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWizard

from studio.core.voice_library import VoiceLibrary
from studio.ui.wizard.base import PAGE_FINISH, PAGE_SETTINGS, PAGE_TRAIN
from studio.ui.wizard.lossplot import LossPlot
from tests.training.conftest import run_command
from tests.ui.test_finetune_wizard import (  # noqa: F401 - fixtures
    GOOD,
    SPEAKER,
    library,
    make_recordings,
    make_wizard,
    no_sound,
)
from training.run_folder import Launch, RunFolder, process_start_time

SHOTS = Path("/tmp")


def screenshot(widget, name: str) -> None:
    QApplication.processEvents()
    widget.grab().save(str(SHOTS / f"wizard_{name}.png"))


class MessageBoxAnswers:
    """Answers the message boxes the wizard opens, in order, by button text; records what each said.

    A box that opens when no answer is left is closed with Escape and recorded, so a test that expects
    no question fails on `texts` instead of hanging in the box's event loop.
    """

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.texts: list[str] = []
        self._timer = QTimer()
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()

    def _on_timer_timeout(self) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or not box.isVisible():
            return
        self.texts.append(f"{box.text()}\n{box.informativeText()}")
        screenshot(box, f"box_{len(self.texts)}")
        if not self.answers:
            box.reject()
            return
        wanted = self.answers.pop(0)
        for button in box.buttons():
            if button.text().replace("&", "") == wanted:
                button.click()
                return
        names = [b.text() for b in box.buttons()]
        box.reject()
        raise AssertionError(f"no button {wanted!r} in the box; it has {names}")

    def stop(self) -> None:
        self._timer.stop()


# --- the Base model field --------------------------------------------------------------------------------


def _show_page(wizard, page_id: int) -> None:
    """Open the wizard on `page_id` (QWizard initializes the page itself, as when the user gets there)."""
    wizard.setStartId(page_id)
    wizard.restart()
    assert wizard.currentId() == page_id


def _settings_shown(wizard, tmp_path):
    wizard.ctx.run_dir = tmp_path / "run"
    _show_page(wizard, PAGE_SETTINGS)
    return wizard.settings_page


def test_base_model_field_holds_an_installed_base_checkpoint(make_wizard, tmp_path, tiny_checkpoints):
    from studio.engine.models import register_local_folder

    # Installed in the model manager (this test's private data folder): a CustomVoice one and a Base one.
    register_local_folder(tiny_checkpoints["custom_voice"])
    register_local_folder(tiny_checkpoints["base"])
    wizard = make_wizard()
    settings = _settings_shown(wizard, tmp_path)
    shown = settings.base_combo.lineEdit().text()
    assert "MISSING" not in shown
    assert shown == str(tiny_checkpoints["base"])
    offered = [settings.base_combo.itemText(i) for i in range(settings.base_combo.count())]
    assert offered == [str(tiny_checkpoints["base"])]  # never a CustomVoice checkpoint
    screenshot(wizard, "settings_installed_base")


def test_base_model_field_without_a_base_checkpoint_is_empty_and_says_what_to_pick(make_wizard, tmp_path):
    wizard = make_wizard()
    settings = _settings_shown(wizard, tmp_path)
    edit = settings.base_combo.lineEdit()
    assert edit.text() == "" and "MISSING" not in edit.text()
    # It says what to pick and where to get one.
    hint = edit.placeholderText()
    assert "no Base model installed" in hint and "Browse" in hint and "Models" in hint
    assert not settings.isComplete()
    screenshot(wizard, "settings_no_base")


# --- the loss plot ---------------------------------------------------------------------------------------


def _significant_digits(label: str) -> int:
    return len(re.sub(r"[^0-9]", "", label.split("e")[0]).lstrip("0"))


def test_loss_plot_with_one_point_has_a_readable_range(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    plot.show()
    plot.add(1, 14.18828964233402)
    qtbot.wait(20)
    (x0, x1), (y0, y1) = plot.view_range()
    assert x0 == 0 and 1 < x1 <= 12, (x0, x1)  # from step 0, a handful of steps wide
    assert y0 < 14.18828964233402 < y1 and y1 - y0 >= 0.5, (y0, y1)
    left, bottom = plot.tick_labels("left"), plot.tick_labels("bottom")
    assert left and all(_significant_digits(label) <= 4 for label in left), left
    assert bottom and not any(label.startswith("-") for label in bottom), bottom
    screenshot(plot, "loss_one_point")

    # Dragging the view never shows steps before 0 either.
    plot.setXRange(-5, 5, padding=0)
    assert plot.view_range()[0][0] >= 0
    plot.close()


def test_loss_plot_axis_follows_the_steps(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    plot.show()
    plot.load([(step, 10.0 / step + 1e-9 * step) for step in range(1, 301)])
    qtbot.wait(20)
    (x0, x1), (y0, y1) = plot.view_range()
    assert x0 == 0 and 300 <= x1 <= 320
    assert y0 < 10.0 / 300 and y1 > 10.0
    assert all(_significant_digits(label) <= 4 for label in plot.tick_labels("left"))
    plot.close()


# --- progress while training, after Stop, while a sample renders -------------------------------------------


class ScriptedTraining:
    """A stand-in for training.sft (named as such): a live process, and the events the test writes for it."""

    def __init__(self, run_dir: Path, **config) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        folder = RunFolder.at(run_dir)
        folder.config.write_text(json.dumps({"base_model": "base", "speaker": SPEAKER, **config}))
        folder.events.write_bytes(b"")
        self.events = folder.events
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        launch = Launch(
            pid=self.process.pid,
            start_time=process_start_time(self.process.pid),
            command=["training.sft"],
            events_offset=0,
            log_offset=0,
            started=time.time(),
        )
        folder.launch.write_text(json.dumps(launch.to_json()))

    def emit(self, event: str, **fields) -> None:
        with self.events.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")

    def step(self, step: int, total: int, eta_s: float | None, epoch: int, epochs: int) -> None:
        self.emit("step", step=step, total=total, loss=2.0 + 1.0 / step, eta_s=eta_s, epoch=epoch, epochs=epochs,
                  steps_per_s=2.0)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def scripted(make_wizard, tmp_path):
    """A wizard on the train page, following a ScriptedTraining; the stand-in process ends at teardown."""
    made: list[ScriptedTraining] = []

    def make(**config):
        wizard = make_wizard()
        training = ScriptedTraining(tmp_path / "run", **config)
        made.append(training)
        wizard.ctx.run_dir = training.run_dir
        # The page's own reattach path (a run training in the background, reopened).
        _show_page(wizard, PAGE_TRAIN)
        assert wizard.train_page.running and wizard.train_page.stop_button.isEnabled()
        return wizard, wizard.train_page, training

    yield make
    for training in made:
        training.end()


def _start(training: ScriptedTraining, *, total: int, per_epoch: int, epochs: int, resumed=None) -> None:
    training.emit("start", what="sft", total=total, speaker=SPEAKER, items=per_epoch * 2, epochs=epochs,
                  steps_per_epoch=per_epoch, device="cpu", precision="fp32", processes=1, resumed_from=resumed)


def test_after_stop_the_bar_shows_where_training_stopped(qtbot, scripted):
    wizard, train, training = scripted()
    _start(training, total=20, per_epoch=5, epochs=4)
    for step in range(1, 5):
        training.step(step, 20, eta_s=40.0 - 2 * step, epoch=1, epochs=4)
    qtbot.waitUntil(lambda: train.step == 4, timeout=5000)
    train.stop_button.click()
    assert train.progress.label.text() == "stopping after this step…"
    training.emit("checkpoint", path=str(training.run_dir / "checkpoints" / "step-000004"), step=4, kind="state")
    training.emit("done", stopped=True, step=4, total=20, loss=2.25, samples=[],
                  checkpoint=str(training.run_dir / "checkpoints" / "step-000004"))
    training.end()
    qtbot.waitUntil(lambda: not train.running, timeout=5000)
    bar = train.progress.bar
    assert (bar.value(), bar.maximum()) == (4, 20)
    assert bar.text() == "4 / 20 steps — stopped"
    assert train.progress.label.text() == "stopped"
    assert "Stopped at step 4" in train.status.text()
    screenshot(wizard, "train_stopped")


def test_a_rendering_sample_is_shown_and_the_time_left_is_held(qtbot, scripted):
    wizard, train, training = scripted()
    now = [1000.0]
    train._clock = lambda: now[0]
    label = train.progress.label
    _start(training, total=8, per_epoch=4, epochs=2)
    for step in range(1, 4):
        training.step(step, 8, eta_s=100.0 - 10 * step, epoch=1, epochs=2)
    qtbot.waitUntil(lambda: train.step == 3, timeout=5000)
    assert label.text() == "ETA 1m10s"
    # Between steps the time left counts down (the page's own timer redraws it).
    now[0] += 20
    qtbot.waitUntil(lambda: label.text() == "ETA 50s", timeout=3000)

    # The last step of epoch 1: training.sft now renders that epoch's sample.
    training.step(4, 8, eta_s=60.0, epoch=1, epochs=2)
    qtbot.waitUntil(lambda: train.step == 4, timeout=5000)
    assert label.text() == "rendering the sample of epoch 1… (then ETA 1m00s)"
    screenshot(wizard, "train_rendering_sample")
    now[0] += 45  # a slow sample: the estimate (which covers steps only) waits for it
    qtbot.wait(1300)
    assert label.text() == "rendering the sample of epoch 1… (then ETA 1m00s)"

    # The sample is written: counting resumes from where it was held.
    training.emit("checkpoint", path=str(training.run_dir / "samples" / "epoch-001.wav"), kind="sample", epoch=1,
                  seconds=45.0)
    qtbot.waitUntil(lambda: label.text() == "ETA 1m00s", timeout=5000)
    now[0] += 15
    qtbot.waitUntil(lambda: label.text() == "ETA 45s", timeout=3000)

    # After the last step: its sample, then the export, never "done" before the process has finished.
    for step in range(5, 9):
        training.step(step, 8, eta_s=max(0.0, 8.0 - step), epoch=2, epochs=2)
    qtbot.waitUntil(lambda: train.step == 8, timeout=5000)
    assert label.text() == "rendering the sample of epoch 2…"
    training.emit("checkpoint", path=str(training.run_dir / "samples" / "epoch-002.wav"), kind="sample", epoch=2,
                  seconds=1.0)
    qtbot.waitUntil(lambda: label.text() == "saving the fine-tuned voice…", timeout=5000)
    assert train.progress.bar.value() == 8
    training.emit("done", step=8, total=8, export=str(training.run_dir / "export" / SPEAKER), samples=[])
    training.end()
    qtbot.waitUntil(lambda: not train.running, timeout=5000)
    assert label.text() == "done"


def test_without_samples_the_epoch_end_is_an_ordinary_step(qtbot, scripted):
    wizard, train, training = scripted(sample_every_epoch=False)
    train._clock = lambda: 500.0
    _start(training, total=8, per_epoch=4, epochs=2)
    training.step(4, 8, eta_s=30.0, epoch=1, epochs=2)
    qtbot.waitUntil(lambda: train.step == 4, timeout=5000)
    assert train.progress.label.text() == "ETA 30s"


# --- the trained voice on Done, Cancel and close ---------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run_template(tmp_path_factory, tiny_checkpoints):
    """A run folder really validated, prepared and trained (2 steps) by the training commands; copied per test."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:
        # Module-scoped, so set up before the per-test private folders: the commands get their own.
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            env.setenv(name, str(root / name.lower()))
        return _train(root, tiny_checkpoints)


def _train(root: Path, tiny_checkpoints) -> Path:
    dataset = make_recordings(root / "recordings", GOOD)
    run_dir = root / "run"
    assert run_command("training.validate", dataset, "--out", run_dir).rc == 0
    prepared = run_command("training.prepare", run_dir, "--tokenizer", tiny_checkpoints["base"], "--cpu-threads", "2")
    assert prepared.rc == 0, prepared.stderr
    config = {
        "base_model": str(tiny_checkpoints["base"]),
        "speaker": SPEAKER,
        "epochs": 1,
        "batch_size": 2,
        "gradient_accumulation": 1,
        "max_steps": 2,
        "sample_max_new_tokens": 6,
        "device": "cpu",
        "cpu_threads": 2,
    }
    (run_dir / "run.json").write_text(json.dumps(config))
    trained = run_command("training.sft", "--config", run_dir / "run.json", timeout=600)
    assert trained.rc == 0, trained.stderr[-2000:]
    assert (run_dir / "export" / SPEAKER / "config.json").is_file()
    return run_dir


@pytest.fixture
def trained_run(trained_run_template, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run_template, run_dir)
    return run_dir


def _saved_profiles(library: VoiceLibrary) -> list:
    """The profiles as read back from the library folder on disk (a fresh reader, not the wizard's)."""
    return VoiceLibrary(library.folder).profiles()


def _close_with(wizard, how: str) -> None:
    if how == "done":
        wizard.button(QWizard.WizardButton.FinishButton).click()
    elif how == "cancel":
        wizard.button(QWizard.WizardButton.CancelButton).click()
    else:
        wizard.close()


def test_done_asks_and_adds_the_trained_voice(qtbot, make_wizard, trained_run, library):
    wizard = make_wizard(trained_run)
    assert wizard.currentId() == PAGE_FINISH
    screenshot(wizard, "finish_page")
    registered = []
    wizard.voice_registered.connect(registered.append)
    answers = MessageBoxAnswers("Add to voices")
    _close_with(wizard, "done")
    answers.stop()
    assert len(answers.texts) == 1 and answers.texts[0].startswith(f"Add “{SPEAKER} (fine-tuned)” to your voices?")
    assert not wizard.isVisible()
    [profile] = _saved_profiles(library)
    assert profile.name == f"{SPEAKER} (fine-tuned)"
    assert profile.voice.kind == "preset" and profile.voice.speaker == SPEAKER
    assert Path(profile.voice.model) == trained_run / "export" / SPEAKER
    assert [p.id for p in registered] == [profile.id]


def test_done_keeps_the_name_typed_on_the_last_page(qtbot, make_wizard, trained_run, library):
    wizard = make_wizard(trained_run)
    wizard.finish_page.name_edit.setText("Narrator")
    answers = MessageBoxAnswers("Add to voices")
    _close_with(wizard, "done")
    answers.stop()
    assert answers.texts[0].startswith("Add “Narrator” to your voices?")
    assert [p.name for p in _saved_profiles(library)] == ["Narrator"]


def test_done_without_adding_leaves_the_library_alone_but_asks(qtbot, make_wizard, trained_run, library):
    wizard = make_wizard(trained_run)
    answers = MessageBoxAnswers("Don't add")
    _close_with(wizard, "done")
    answers.stop()
    assert len(answers.texts) == 1 and not wizard.isVisible()
    assert _saved_profiles(library) == []


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_leaving_the_train_page_after_training_asks_too(qtbot, make_wizard, trained_run, library, how):
    wizard = make_wizard(trained_run)
    wizard.back()
    assert wizard.currentId() == PAGE_TRAIN and wizard.train_page.isComplete()
    # Cancel in the box keeps the wizard open, with nothing added.
    answers = MessageBoxAnswers("Cancel")
    _close_with(wizard, how)
    assert wizard.isVisible() and _saved_profiles(library) == []
    answers.answers.append("Add to voices")
    _close_with(wizard, how)
    answers.stop()
    assert len(answers.texts) == 2 and not wizard.isVisible()
    assert [p.name for p in _saved_profiles(library)] == [f"{SPEAKER} (fine-tuned)"]


def test_a_registered_voice_closes_without_a_question(qtbot, make_wizard, trained_run, library):
    wizard = make_wizard(trained_run)
    wizard.finish_page.register_button.click()
    assert len(_saved_profiles(library)) == 1
    answers = MessageBoxAnswers()
    _close_with(wizard, "done")
    answers.stop()
    assert answers.texts == [] and not wizard.isVisible()
    assert len(_saved_profiles(library)) == 1


def test_a_voice_that_cannot_be_added_keeps_the_wizard_open_with_a_message(qtbot, make_wizard, trained_run,
                                                                          tmp_path, monkeypatch):
    blocked = tmp_path / "voices-is-a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("QWEN_TTS_STUDIO_VOICES", str(blocked))
    wizard = make_wizard(trained_run)
    wizard.back()
    answers = MessageBoxAnswers("Add to voices", "OK")
    _close_with(wizard, "cancel")
    answers.stop()
    assert len(answers.texts) == 2, answers.texts
    assert str(blocked) in answers.texts[1] and "could not be added" in answers.texts[1]
    assert wizard.isVisible() and wizard.currentId() == PAGE_FINISH
    assert blocked.read_text() == "not a folder"
