"""Checkpoint folder or hub id -> a loaded Qwen3-TTS model, its device, dtype and what it can do.

Every failure a user can cause (a missing folder, a hub id with no network, a folder that is not a
Qwen3-TTS checkpoint) is an EngineError with a one-line message. Loading reads safetensors only and
never runs code from the checkpoint (no trust_remote_code): the model classes come from qwen-tts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What a checkpoint folder must hold is checked (checkpoint_files) before `Qwen3TTSModel.from_pretrained`
# runs, so the user gets "missing speech_tokenizer/config.json" rather than a transformers traceback.
from studio.engine.checkpoint_files import validate_checkpoint
from studio.engine.errors import DownloadError, EngineError
from studio.engine.models.catalogue import instruct_honoured
from studio.engine.models.store import local_folder_for

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelInfo:
    source: str  # what the user asked for: a folder or a hub id
    folder: str  # the resolved local folder
    model_type: str  # voice_design | custom_voice | base
    size: str  # "1b7" or "0b6", as qwen-tts names it
    languages: tuple[str, ...]
    speakers: tuple[str, ...]
    sample_rate: int
    device: str
    dtype: str
    attention: str
    parameters: int
    revision: str  # content fingerprint; part of every render cache key

    @property
    def instruct_honoured(self) -> bool:
        # One capability table for the whole studio: the model catalogue's.
        return instruct_honoured(self.model_type, self.size)

    def summary(self) -> str:
        millions = self.parameters / 1e6
        return f"{self.model_type} {self.size} ({millions:.0f} M parameters) on {self.device}, {self.dtype}"


@dataclass
class LoadedModel:
    tts: Any  # qwen_tts.Qwen3TTSModel
    info: ModelInfo


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"device {requested!r} was requested but CUDA is not available")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise EngineError("device 'mps' was requested but MPS is not available")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str):
    import torch

    # bf16 halves memory and doubles matmul speed on CUDA; CPUs and MPS are safer and often faster
    # in float32 for this model's small per-step matrices.
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def pick_attention() -> str:
    if importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def set_cpu_threads(threads: int | None) -> None:
    """Threads torch uses on the CPU; None means all cores."""
    import torch

    torch.set_num_threads(max(1, threads or os.cpu_count() or 1))


def _looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.match(source)) and not source.startswith((".", "/", "~"))


def resolve_folder(source: str, *, progress: Callable[[str], None] | None = None) -> Path:
    """A local folder for `source`: the folder itself, or the hub model (downloaded if needed)."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise EngineError(f"{source}: is a file, not a checkpoint folder")
        return path
    if not _looks_like_hub_id(source):
        raise EngineError(f"{source}: no such model folder")
    # A model downloaded by the studio lives in the studio's own models folder.
    managed = local_folder_for(source)
    if managed is not None:
        return Path(managed)
    # A copy already in huggingface_hub's cache (fetched by another tool) is used as it is; no network.
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: fall through to a download
        pass
    if progress:
        progress(f"downloading {source} from the hub")
    # The studio's one download path: into the models folder, resumable, checked, like the model manager's.
    from studio.engine.models.download import download_model

    try:
        return download_model(source)
    except DownloadError as exc:
        reason = str(exc)
        if reason.startswith(f"{source}: "):
            reason = reason[len(source) + 2:]
        reason = reason.split("; ")[0]
        raise EngineError(
            f"{source}: not downloaded yet and the hub cannot be reached ({reason[:160]}); "
            "download it with the model manager or pass a local checkpoint folder"
        ) from None


def _file_sha256(path: Path, memo: dict[str, str]) -> str:
    stat = path.stat()
    memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if memo_key not in memo:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        memo[memo_key] = digest.hexdigest()
    return memo[memo_key]


def checkpoint_fingerprint(folder: Path, memo_file: Path | None = None) -> str:
    """A hash of the checkpoint's content: configs, tokenizer files and weights.

    Hashing multi-GB weights takes seconds, so weight hashes are memoised by path, size and mtime.
    """
    memo: dict[str, str] = {}
    if memo_file is not None and memo_file.is_file():
        try:
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            memo = {}
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(path.relative_to(folder)).encode("utf-8"))
        digest.update(_file_sha256(path, memo).encode("ascii"))
    if memo_file is not None:
        from studio.core.atomic import atomic_write_text

        memo_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(memo_file, json.dumps(memo))
    return digest.hexdigest()


class _CapRequired(dict):
    """generation_config.json's defaults, all but the frame cap: looking up max_new_tokens raises.

    The published checkpoints say max_new_tokens 8192 (about eleven minutes of audio), and qwen-tts
    takes any value a generate_* call leaves out from there. A call that forgot its cap would run for
    minutes whenever the model misses its end of speech, so every call must bring its own.
    """

    def __getitem__(self, key: str) -> Any:
        if key == "max_new_tokens":
            raise EngineError(_no_cap_message(super().get(key)))
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


def _no_cap_message(published: Any) -> str:
    said = f" (generation_config.json says {published})" if published is not None else ""
    return f"a generate call without its own max_new_tokens{said}: every call must cap its frames"


def prepare_for_generation(tts: Any) -> None:
    """Make a loaded qwen-tts model safe and quiet to generate with, whatever its generation_config.json says.

    - Every generate call must pass max_new_tokens: the wrapper's defaults and the model's own
      ``generate`` refuse a call without one (EngineError) instead of running up to 8192 frames.
    - The published talker configs have no pad_token_id, so transformers logs "Setting pad_token_id to
      eos_token_id" on every generate call; it is set to that same value here, which changes nothing else.
    """
    import functools

    tts.generate_defaults = _CapRequired(tts.generate_defaults or {})
    model = tts.model
    generate = model.generate
    if not getattr(generate, "_studio_requires_cap", False):

        @functools.wraps(generate)
        def capped(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("max_new_tokens") is None:
                raise EngineError(_no_cap_message(dict.get(tts.generate_defaults, "max_new_tokens")))
            return generate(*args, **kwargs)

        capped._studio_requires_cap = True  # type: ignore[attr-defined]
        model.generate = capped
    # The package passes end-of-speech as the talker's eos_token_id on every call; transformers pads
    # with it when no pad id is configured.
    talker_generation = getattr(model.talker, "generation_config", None)
    if talker_generation is not None and talker_generation.pad_token_id is None:
        talker_generation.pad_token_id = model.config.talker_config.codec_eos_token_id


@dataclass(frozen=True)
class ModelKeyParts:
    """What a render cache key takes from a model (engine.render.segment_key): the same for a load and
    for a cache lookup that loads nothing (a reopened project), because both come from key_parts."""

    source: str
    revision: str
    dtype: str
    device: str


def key_parts(source: str, folder: Path, device: str, fingerprint_memo: Path | None = None) -> ModelKeyParts:
    """The key parts of `source` (found at `folder`) loaded on `device` ("auto" resolved as a load would)."""
    resolved = pick_device(device)
    return ModelKeyParts(
        source=source,
        revision=checkpoint_fingerprint(folder, fingerprint_memo),
        dtype=str(pick_dtype(resolved)).replace("torch.", ""),
        device=resolved,
    )


def load_model(
    source: str,
    *,
    device: str = "auto",
    cpu_threads: int | None = None,
    fingerprint_memo: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadedModel:
    """Load a checkpoint for generation. Raises EngineError with a one-line message on failure."""
    folder = resolve_folder(source, progress=progress)
    validate_checkpoint(folder)
    parts = key_parts(source, folder, device, fingerprint_memo)
    device = parts.device
    dtype = pick_dtype(device)
    attention = pick_attention()
    if device == "cpu":
        set_cpu_threads(cpu_threads)
    if progress:
        progress(f"loading {folder.name} on {device}")
    import torch

    from studio.engine.qwen_import import import_qwen_tts

    Qwen3TTSModel = import_qwen_tts().Qwen3TTSModel  # noqa: N806

    from transformers.utils import logging as transformers_logging

    # A sharded checkpoint would draw transformers' "Loading checkpoint shards" bar on stderr, in the
    # middle of the command line's own output; the studio reports loading itself.
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tts = Qwen3TTSModel.from_pretrained(
                str(folder), dtype=dtype, attn_implementation=attention, use_safetensors=True
            )
        tts.model.to(device)
        tts.model.eval()
        tts.device = torch.device(device)
        prepare_for_generation(tts)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"{folder}: the checkpoint failed to load ({type(exc).__name__}: {first[:200]})") from None
    model = tts.model
    info = ModelInfo(
        source=source,
        folder=str(folder),
        model_type=str(model.tts_model_type),
        size=str(model.tts_model_size),
        languages=tuple(sorted(str(x).lower() for x in (tts.get_supported_languages() or ()))),
        speakers=tuple(sorted(str(x).lower() for x in (tts.get_supported_speakers() or ()))),
        sample_rate=int(model.speech_tokenizer.get_output_sample_rate()),
        device=device,
        dtype=parts.dtype,
        attention=attention,
        parameters=sum(p.numel() for p in model.parameters()),
        revision=parts.revision,
    )
    log.info("loaded %s (%s)", source, info.summary())
    return LoadedModel(tts=tts, info=info)
