"""Which checkpoint each voice renders with, decided from config.json alone (no model is loaded).

A voice names its checkpoint (`VoiceSpec.model`) or leaves the choice to the studio ("automatic"):
then the project's model serves it when it is of the right type, else the best installed model of
that type (1.7B before 0.6B, since only the 1.7B VoiceDesign/CustomVoice models follow instructions).
What a checkpoint can do (type, size, speakers, languages) is read from its config.json, the same
fields qwen-tts reads when it loads the model, so the pre-flight check agrees with the real model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.core.limits import read_json_limited
from studio.core.voice import VoiceSpec

MODEL_TYPE_LABELS = {"voice_design": "VoiceDesign", "custom_voice": "CustomVoice", "base": "Base"}
SIZE_LABELS = {"1b7": "1.7B", "0b6": "0.6B"}
_CONFIG_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder the studio can render with, described from its config.json."""

    source: str  # what the loader takes: a folder, or a hub id the model manager downloaded
    folder: Path
    model_type: str | None
    size: str | None
    speakers: tuple[str, ...]  # lower case, as qwen-tts compares them
    languages: tuple[str, ...]  # "auto" and the non-dialect codec languages, as qwen-tts lists them
    parameters: int | None = None  # from the safetensors headers, when known

    @property
    def label(self) -> str:
        kind = MODEL_TYPE_LABELS.get(self.model_type or "", self.model_type or "unknown type")
        size = SIZE_LABELS.get(self.size or "", self.size or "")
        return f"{kind} {size}".strip()

    def memory_bytes(self) -> int | None:
        """Resident size when loaded for rendering (weights in bf16/fp32 are not known here: fp32, the
        larger, so a budget is never exceeded by the estimate being low)."""
        return None if self.parameters is None else self.parameters * 4


def describe_folder(source: str, folder: Path) -> Checkpoint | None:
    """A Checkpoint for a folder holding a Qwen3-TTS config.json, or None when it holds none."""
    try:
        config = read_json_limited(folder / "config.json", _CONFIG_LIMIT, what="model config")
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    talker = config.get("talker_config") if isinstance(config.get("talker_config"), dict) else {}
    speakers = talker.get("spk_id") if isinstance(talker.get("spk_id"), dict) else {}
    languages = talker.get("codec_language_id") if isinstance(talker.get("codec_language_id"), dict) else {}
    model_type = config.get("tts_model_type")
    size = config.get("tts_model_size")
    return Checkpoint(
        source=source,
        folder=folder,
        model_type=model_type if isinstance(model_type, str) else None,
        size=size if isinstance(size, str) else None,
        speakers=tuple(sorted(str(name).lower() for name in speakers)),
        languages=("auto", *sorted(str(name).lower() for name in languages if "dialect" not in str(name))),
    )


def describe_source(source: str) -> Checkpoint | None:
    """A folder path, or a hub id the model manager has downloaded; None when neither is on this machine.

    Nothing is downloaded here: the pre-flight check must not wait on the network.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return describe_folder(source, path)
    from studio.engine.models import local_folder_for

    try:
        folder = local_folder_for(source)
    except Exception:  # noqa: BLE001 - not a hub id either: simply not installed
        folder = None
    return describe_folder(source, Path(folder)) if folder is not None else None


def installed_checkpoints() -> list[Checkpoint]:
    """Every ready text-to-speech checkpoint in the model manager (downloads and registered folders)."""
    from studio.engine.models import READY, list_models

    found = []
    for entry in list_models():
        if entry.kind != "tts" or entry.state != READY:
            continue
        described = describe_folder(entry.name if entry.origin == "hub" else entry.source, entry.folder)
        if described is not None:
            found.append(Checkpoint(**{**described.__dict__, "parameters": entry.parameters}))
    return found


def _preference(checkpoint: Checkpoint) -> tuple:
    # Larger first (only the 1.7B models honour instructions), then a stable order by name.
    return (0 if checkpoint.size == "1b7" else 1, checkpoint.source)


def choose_checkpoint(
    voice: VoiceSpec, *, preferred: str | None, installed: Sequence[Checkpoint]
) -> str | None:
    """The checkpoint a voice renders with: its own choice, else the preferred (project) model when it
    is of the voice's type, else the best installed one of that type; None when there is none."""
    if voice.model:
        return voice.model
    wanted = voice.model_type
    if preferred:
        described = next((c for c in installed if c.source == preferred), None) or describe_source(preferred)
        if described is not None and described.model_type == wanted:
            return preferred
    candidates = sorted((c for c in installed if c.model_type == wanted), key=_preference)
    if voice.kind == "preset":
        # A preset speaker lives in some CustomVoice checkpoints only (fine-tuned ones add their own).
        candidates = [c for c in candidates if voice.speaker.lower() in c.speakers] or candidates
    return candidates[0].source if candidates else None
