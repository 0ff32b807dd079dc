"""Exporting a run: the newest whole checkpoint's talker weights and the speaker embedding, written as a
CustomVoice checkpoint by training.export (at the end of training, and by ``--export-only``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.config import SFTConfig
from training.data import BaseModel
from training.protocol import CommandError, Emitter
from training.run_folder import STATE_NAME, RunFolder
from training.speaker import read_saved_embedding

if TYPE_CHECKING:
    import torch


def read_state(checkpoint: Path) -> dict[str, Any]:
    try:
        state = json.loads((checkpoint / STATE_NAME).read_text(encoding="utf-8"))
        int(state["step"])
        return state
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(
            f"{checkpoint / STATE_NAME}: unreadable ({exc})", hint=f"delete {checkpoint} to resume from an older one"
        ) from None


def checkpoint_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The trained talker tensors of a checkpoint, under the full model's key names ("talker.…")."""
    from safetensors.torch import load_file

    path = checkpoint / "model.safetensors"
    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise CommandError(
            f"{path}: unreadable ({type(exc).__name__})", hint=f"delete {checkpoint} and resume"
        ) from None
    # DDP saves its wrapped module's keys under "module.".
    return {k.removeprefix("module."): v for k, v in state.items() if k.removeprefix("module.").startswith("talker.")}



def export_from_checkpoint(
    config: SFTConfig, paths: RunFolder, base: BaseModel, checkpoint: Path, embedding, weights=None
):
    from training.export import ExportError, ExportWriteError, export_custom_voice

    state = read_state(checkpoint)
    info = {
        "base_model": str(base.folder),
        "speaker": config.speaker,
        "step": int(state["step"]),
        "total": state.get("total"),
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "language": config.language,
        "items": state.get("items"),
        "run_dir": str(paths.run_dir.absolute()),
        "exported_at": time.time(),
    }
    try:
        return export_custom_voice(
            base.folder,
            paths.export(config.speaker),
            speaker=config.speaker,
            speaker_embedding=embedding,
            trained=checkpoint_weights(checkpoint) if weights is None else weights,
            info=info,
        )
    except ExportWriteError as exc:
        raise CommandError(str(exc), hint="free space, then export with --export-only") from None
    except ExportError as exc:
        raise CommandError(str(exc), hint="check that run.json names the base model the run was trained from") from None


def export_only(config: SFTConfig, paths: RunFolder, base: BaseModel, emitter: Emitter) -> dict[str, Any]:
    found = paths.list_checkpoints()
    if not found:
        raise CommandError(
            f"{paths.checkpoints}: no checkpoint to export", hint="train first: python -m training.sft --config ..."
        )
    embedding = read_saved_embedding(paths)
    for number, (step, folder) in enumerate(reversed(found)):  # noqa: B007 - the pick is used below
        try:
            # Only state.json and model.safetensors are read, so an older (pickled) checkpoint exports too.
            read_state(folder)
            weights = checkpoint_weights(folder)
            break
        except CommandError as exc:
            if number == len(found) - 1:
                raise
            emitter.warning(f"checkpoint {folder.name} is damaged: {exc.message}; exporting an older one")
    emitter.start(total=1, what="sft-export", run_dir=str(paths.run_dir.absolute()), checkpoint=str(folder), step=step)
    result = export_from_checkpoint(config, paths, base, folder, embedding, weights)
    emitter.checkpoint(result.folder, step=step, kind="export", speaker=config.speaker, slot=result.slot)
    return {
        "export": str(result.folder),
        "speaker": config.speaker,
        "slot": result.slot,
        "step": step,
        "checkpoint": str(folder),
    }


