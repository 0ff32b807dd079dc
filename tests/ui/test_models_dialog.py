"""The model manager dialog against the local fake hub: real threads, real HTTP, real files on disk."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.engine import models
from studio.engine.devices import DetectedDevice
from studio.engine.models import KNOWN_MODELS, NOT_DOWNLOADED, PARTIAL, READY, DownloadError
from studio.ui import models_dialog as models_dialog_module
from studio.ui.models_dialog import COL_EMOTIONS, COL_NAME, COL_STATE, COL_VRAM, ModelManagerDialog
from studio.ui.render_settings import MachineSettings
from tests.engine.test_models import REPO, FakeHub, _repo_files, closed_port_endpoint

DOWNLOAD_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def models_root(tmp_path, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv(models.MODELS_ENV, str(root))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # The same answer on every machine, and no torch import just to open the dialog.
    monkeypatch.setattr(models_dialog_module, "detect_device", lambda: DetectedDevice("cpu", "CPU"))
    return root


@pytest.fixture
def no_modal(monkeypatch):
    """Fail loudly if anything opens a modal box the test did not ask for (it would hang offscreen)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected modal message box: {args[1:3]}")

    for name in ("question", "warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, refuse)


@pytest.fixture
def hub(tiny_checkpoints):
    with FakeHub({REPO: _repo_files(tiny_checkpoints["custom_voice"])}) as server:
        yield server


@pytest.fixture
def make_dialog(qtbot):
    dialogs = []

    def make(**kwargs) -> ModelManagerDialog:
        dialog = ModelManagerDialog(kwargs.pop("machine", MachineSettings()), **kwargs)
        qtbot.addWidget(dialog)
        dialog.show()
        dialogs.append(dialog)
        return dialog

    yield make
    for dialog in dialogs:
        dialog.shutdown()
        assert dialog.downloading is None


def _answer(monkeypatch, button):
    asked = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def _state(dialog, name):
    return dialog.table.item(dialog._row_of(name), COL_STATE).text()


def _download(qtbot, dialog, repo=REPO):
    dialog.select(repo)
    with qtbot.waitSignal(dialog.download_ended, timeout=DOWNLOAD_TIMEOUT_MS) as ended:
        dialog.download_button.click()
    return ended.args[1]


def test_lists_known_models_with_sizes_memory_and_capabilities(make_dialog, no_modal, monkeypatch):
    dialog = make_dialog()
    names = [dialog.table.item(row, COL_NAME).text() for row in range(dialog.table.rowCount())]
    assert names == [m.repo_id for m in KNOWN_MODELS]
    assert all(_state(dialog, m.repo_id) == NOT_DOWNLOADED for m in KNOWN_MODELS)
    assert dialog.download_button.text() == "Download" and dialog.download_button.isEnabled()
    assert not dialog.use_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert "free" in dialog.disk_label.text() and str(models.models_dir()) in dialog.disk_label.text()

    # Emotions: yes/no with the capability table's reason as the tooltip.
    small = dialog.table.item(dialog._row_of("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"), COL_EMOTIONS)
    assert small.text() == "no" and "0.6B" in small.toolTip()
    assert dialog.table.item(dialog._row_of("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign"), COL_EMOTIONS).text() == "yes"

    # The memory column follows the precision (auto on the CPU is fp32).
    big = "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign"
    vram = dialog.table.horizontalHeaderItem(COL_VRAM)
    assert vram.text() == "RAM (fp32)"
    fp32 = dialog.table.item(dialog._row_of(big), COL_VRAM).text()
    dialog.precision_combo.setCurrentText("bf16")
    assert vram.text() == "RAM (bf16)"
    bf16 = dialog.table.item(dialog._row_of(big), COL_VRAM).text()
    assert bf16 == models.format_bytes(dialog.entry(big).vram_bytes("bfloat16")) and bf16 != fp32
    assert "12 GB card" in dialog.resident_note.text()


def test_device_section_shows_the_detected_gpu(qtbot, make_dialog, no_modal, monkeypatch):
    gpu = DetectedDevice("cuda", "NVIDIA GeForce RTX 3060", 3_000_000_000)
    monkeypatch.setattr(models_dialog_module, "detect_device", lambda: gpu)
    machine = MachineSettings(device="auto")
    dialog = make_dialog(machine=machine)
    assert "NVIDIA GeForce RTX 3060" in dialog.device_label.text() and "3.0 GB VRAM" in dialog.device_label.text()
    assert dialog.table.horizontalHeaderItem(COL_VRAM).text() == "VRAM (bf16)"  # auto on CUDA
    # A model that does not fit this (small, pretend) card is flagged.
    too_big = dialog.table.item(dialog._row_of("Qwen/Qwen3-TTS-12Hz-1.7B-Base"), COL_VRAM)
    assert "this GPU has 3.0 GB" in too_big.toolTip()
    dialog.device_combo.setCurrentText("mps")
    assert machine.device == "mps" and "not available" in dialog.device_label.text()
    dialog.device_combo.setCurrentText("cpu")
    assert dialog.table.horizontalHeaderItem(COL_VRAM).text() == "RAM (fp32)"


def test_download_shows_progress_ends_ready_and_can_be_used(qtbot, make_dialog, hub, no_modal, models_root):
    hub.throttle = 4_000_000  # bytes per second: about a second for the tiny checkpoint
    dialog = make_dialog(endpoint=hub.endpoint)
    values, labels, states = [], [], []

    def seen(event):
        values.append(dialog.progress_bar.value())
        labels.append(dialog.progress_label.text())
        states.append(_state(dialog, REPO))

    dialog.download_progress.connect(seen)
    assert _download(qtbot, dialog) == "done"
    downloading = [label for label in labels if "ETA" in label]
    assert downloading and " of " in downloading[-1] and "/s" in downloading[-1]
    assert "MB" in downloading[-1] and "file " in downloading[-1]
    assert len(set(values)) > 3 and values == sorted(values) and values[-1] == dialog.progress_bar.maximum()
    assert any(s.startswith("downloading") for s in states)

    assert _state(dialog, REPO) == READY and "downloaded" in dialog.progress_label.text()
    assert not dialog.message_label.isVisible()
    assert not dialog.download_button.isEnabled() and dialog.use_button.isEnabled()
    folder = models_root / "Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice"
    assert dialog.entry(REPO).folder == folder and folder.is_dir()
    with qtbot.waitSignal(dialog.model_chosen) as chosen:
        dialog.use_button.click()
    assert chosen.args == [str(folder)]
    assert dialog.table.item(dialog._row_of(REPO), COL_NAME).font().bold()

    # The tokenizer row is ready for nothing: it is not a speech model, so it cannot be "used".
    dialog.select("Qwen/Qwen3-TTS-Tokenizer-12Hz")
    assert not dialog.use_button.isEnabled()


def test_cancel_leaves_a_partial_that_resumes(qtbot, make_dialog, hub, no_modal):
    hub.throttle = 1_000_000
    dialog = make_dialog(endpoint=hub.endpoint)

    def cancel_half_way(event):
        if event.bytes_done > 1_000_000:
            dialog.cancel_button.click()

    dialog.download_progress.connect(cancel_half_way)
    assert _download(qtbot, dialog) == "cancelled"
    dialog.download_progress.disconnect(cancel_half_way)
    assert _state(dialog, REPO).startswith(PARTIAL) and dialog.entry(REPO).state == PARTIAL
    assert dialog.download_button.text() == "Resume" and dialog.download_button.isEnabled()
    assert "kept" in dialog.progress_label.text() and not dialog.cancel_button.isEnabled()
    assert dialog.delete_button.isEnabled()  # a partial download can be deleted too

    hub.throttle = None
    hub.reset_counts()
    assert _download(qtbot, dialog) == "done"
    assert _state(dialog, REPO) == READY
    assert any(r and r != "bytes=0-" for _, _, r in hub.requests), "the resume did not continue with a Range request"


def test_one_download_at_a_time(qtbot, make_dialog, hub, no_modal):
    hub.throttle = 1_000_000
    dialog = make_dialog(endpoint=hub.endpoint)
    dialog.select(REPO)
    assert dialog.start_download()
    dialog.select("Qwen/Qwen3-TTS-12Hz-1.7B-Base")
    assert not dialog.download_button.isEnabled()
    assert not dialog.start_download("Qwen/Qwen3-TTS-12Hz-1.7B-Base")
    assert "one download at a time" in dialog.message_label.text()
    with qtbot.waitSignal(dialog.download_ended, timeout=DOWNLOAD_TIMEOUT_MS):
        dialog.cancel_download()


def test_offline_shows_the_error_inline_with_the_local_folder_hint(qtbot, make_dialog, no_modal):
    dialog = make_dialog(endpoint=closed_port_endpoint())
    assert _download(qtbot, dialog) == "failed"
    text = dialog.message_label.text()
    assert dialog.message_label.isVisible()
    assert "cannot reach" in text and "Add local folder" in text
    assert len(text.splitlines()) == 1 and "models add-local" not in text  # the button, not the CLI
    assert _state(dialog, REPO) == NOT_DOWNLOADED and dialog.download_button.isEnabled()
    assert dialog.downloading is None


@pytest.mark.parametrize("error", [DownloadError("x: cannot write (No space left on device)"), KeyError("boom")])
def test_any_download_failure_is_reported_with_the_hint(qtbot, make_dialog, no_modal, monkeypatch, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(models_dialog_module, "download_model", fail)
    dialog = make_dialog()
    assert _download(qtbot, dialog) == "failed"
    first, hint = dialog.message_label.text().splitlines()
    assert ("No space left" in first or "KeyError" in first) and "Add local folder" in hint
    assert dialog.downloading is None and dialog.download_button.isEnabled()


def test_add_local_folder_validates_and_can_be_used_and_forgotten(qtbot, make_dialog, no_modal, tmp_path,
                                                                  tiny_checkpoints, monkeypatch):
    dialog = make_dialog()
    not_a_model = tmp_path / "holiday-photos"
    not_a_model.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(not_a_model))
    dialog.add_local_button.click()
    assert "no config.json" in dialog.message_label.text()
    assert dialog.table.rowCount() == len(KNOWN_MODELS)

    broken = tmp_path / "broken"
    broken.mkdir()
    source = tiny_checkpoints["base"]
    for path in source.rglob("*"):
        target = broken / path.relative_to(source)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif path.name != "generation_config.json":
            target.write_bytes(path.read_bytes())
    assert dialog.add_local_folder(broken) is None
    assert "missing generation_config.json" in dialog.message_label.text()

    entry = dialog.add_local_folder(source)
    assert entry is not None and dialog.table.rowCount() == len(KNOWN_MODELS) + 1
    assert dialog.selected_entry().name == str(source.resolve()) and _state(dialog, str(source.resolve())) == READY
    assert dialog.table.item(dialog._row_of(entry.name), COL_EMOTIONS).text() == "no"  # a Base model
    with qtbot.waitSignal(dialog.model_chosen) as chosen:
        dialog.use_button.click()
    assert chosen.args == [str(source.resolve())]

    assert dialog.delete_button.text() == "Forget"
    dialog.delete_button.click()
    assert dialog.table.rowCount() == len(KNOWN_MODELS) and source.is_dir()


def test_delete_asks_and_removes(qtbot, make_dialog, hub, monkeypatch, models_root):
    dialog = make_dialog(endpoint=hub.endpoint)
    assert _download(qtbot, dialog) == "done"
    used = dialog.disk_label.text()
    asked = _answer(monkeypatch, QMessageBox.StandardButton.No)
    dialog.delete_button.click()
    assert asked and "frees" in asked[0] and "MB" in asked[0]
    assert _state(dialog, REPO) == READY

    _answer(monkeypatch, QMessageBox.StandardButton.Yes)
    dialog.delete_button.click()
    assert _state(dialog, REPO) == NOT_DOWNLOADED
    assert "freed" in dialog.message_label.text() and "MB" in dialog.message_label.text()
    assert not (models_root / "Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice").exists()
    assert dialog.disk_label.text() != used
    assert dialog.download_button.text() == "Download" and not dialog.delete_button.isEnabled()


def test_closing_while_downloading_asks_and_leaves_no_thread(qtbot, make_dialog, hub, monkeypatch):
    hub.throttle = 500_000
    dialog = make_dialog(endpoint=hub.endpoint)
    dialog.select(REPO)
    with qtbot.waitSignal(dialog.download_progress, timeout=DOWNLOAD_TIMEOUT_MS):
        dialog.start_download()
    task = dialog._download

    asked = _answer(monkeypatch, QMessageBox.StandardButton.No)
    dialog.close()
    assert asked and dialog.isVisible() and task.alive and dialog.downloading == REPO

    _answer(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(dialog.download_ended, timeout=DOWNLOAD_TIMEOUT_MS) as ended:
        dialog.reject()  # Esc and Close come here too
    assert ended.args == [REPO, "cancelled"]
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert not task.alive and dialog.downloading is None
    assert dialog.result() == QDialogCode.Rejected
    assert {e.name: e.state for e in models.list_models()}[REPO] == PARTIAL  # kept for a resume


QDialogCode = ModelManagerDialog.DialogCode


def test_the_window_opens_the_dialog_and_uses_the_chosen_model(make_window, monkeypatch, tmp_path):
    from studio.ui import models_dialog

    window = make_window()
    seen = {}

    def fake_exec(self):
        seen["dialog"] = self
        self.model_chosen.emit(str(tmp_path / "chosen"))
        return 0

    monkeypatch.setattr(models_dialog.ModelManagerDialog, "exec", fake_exec)
    window.manage_models()
    assert window.project.render.model == str(tmp_path / "chosen")
    assert window.isWindowModified()
    seen["dialog"].shutdown()


def test_an_almost_checkpoint_is_named_in_one_message(make_dialog, no_modal, tmp_path, tiny_checkpoints):
    import shutil

    from studio.engine.tiny import build_tiny_checkpoint

    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_checkpoints["custom_voice"], truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    dialog = make_dialog()

    assert dialog.add_local_folder(truncated) is None
    message = dialog.message_label.text()
    assert message.startswith(f"Cannot add this folder: {weights}: truncated") and len(message.splitlines()) == 1

    # A sharded folder is added; when a shard goes missing later, its row says which one.
    sharded = build_tiny_checkpoint(tmp_path / "sharded", model_type="base", shards=2)
    entry = dialog.add_local_folder(sharded)
    assert entry is not None and _state(dialog, str(sharded.resolve())) == READY
    (sharded / "model-00001-of-00002.safetensors").unlink()
    dialog.refresh()
    row = dialog._row_of(str(sharded.resolve()))
    assert dialog.table.item(row, COL_STATE).text() == "invalid"
    assert dialog.table.item(row, COL_STATE).toolTip() == (
        "incomplete Qwen3-TTS checkpoint, missing model-00001-of-00002.safetensors "
        "(listed in model.safetensors.index.json)"
    )
