"""Fine-tune a Qwen3-TTS Base checkpoint on one speaker and export it as a CustomVoice checkpoint.

Usage::

    python -m training.sft --config RUN_DIR/run.json [--export-only]
    accelerate launch --num_processes N -m training.sft --config RUN_DIR/run.json

The folder holding ``run.json`` is the run folder: ``training.validate`` and ``training.prepare`` have
filled it with ``prepared.jsonl``, ``codes/`` and the 24 kHz audio. Everything this command writes goes
under the output folder (``output_dir``, default the run folder itself):

- ``checkpoints/step-NNNNNN/``: talker weights, AdamW moments and RNG states in safetensors, step,
  schedule and optimizer settings in ``state.json`` (training.checkpoint_state; never a pickle); written
  every ``checkpoint_every`` steps, on a stop request and at the end, the ``keep_checkpoints`` newest
  kept. A rerun resumes from the newest one by itself; when that one is damaged (truncated, missing a
  file, bad JSON) it says so in a ``warning`` and resumes from the next older one, or from the start.
- ``speaker_embedding.safetensors``: the target speaker embedding (see below), computed once per run.
- ``samples/epoch-NNN.wav``: ``sample_text`` spoken as the new speaker with the weights at the end of
  epoch NNN (and at the last step when ``max_steps`` ends training inside an epoch).
- ``tensorboard/`` (TensorBoard scalars, when the tensorboard package is installed) and ``metrics.csv``
  (the same numbers, one row per step, always).
- ``export/<speaker>/``: the CustomVoice checkpoint (training.export), written when training ends and
  by ``--export-only`` (from the newest checkpoint, without loading the model).

``run.json`` (an object; only ``base_model`` and ``speaker`` are required)::

    base_model             checkpoint folder or hub id of a Qwen3-TTS 12Hz *Base* model
    speaker                the new speaker's name: lower-case letters, digits, "_" and "-"
    epochs                 3
    learning_rate          1e-7 (see DEFAULT_LEARNING_RATE for why this low)
    lr_schedule            "cosine" | "linear": decay after the warm-up, never reaching 0
    warmup_steps           null = 5 % of the optimizer steps (at most 100)
    batch_size             2 items per micro-batch (per process)
    gradient_accumulation  4 micro-batches per optimizer step
    max_grad_norm          1.0 (gradients are clipped to this global norm)
    weight_decay           0.01 (AdamW; not applied to biases and norm scales)
    precision              "auto" (bf16 autocast on CUDA with bf16 support, else fp32) | "bf16" | "fp32"
    device                 "auto" | "cpu" | "cuda"
    seed                   0 (data order, initialisation of anything random, sample generation)
    checkpoint_every       100 optimizer steps
    keep_checkpoints       2 newest checkpoints kept (each holds the fp32 talker weights and the AdamW
                           moments, 4 + 8 bytes per weight: roughly 20 GB for 1.7B, 7 GB for 0.6B)
    sample_every_epoch     true
    sample_text            the sentence each sample speaks
    sample_max_new_tokens  null = a cap derived from the sample text's length
    language               "auto" or one of the base model's languages: the language tag trained into
                           the prompt; render with the same language (auto: the published recipe's)
    max_steps              null, or a cap on the optimizer steps (short trial runs, tests)
    freeze_text_embedding  true: the 151936-row text embedding stays as it is (see _trainable)
    gradient_checkpointing false: true recomputes activations in the backward pass (slower, much less memory)
    cpu_threads            null = all cores (CPU runs only)
    output_dir             null = the run folder; relative paths are taken from the run folder

Events (training.protocol): ``start`` (``total`` optimizer steps, ``resumed_from`` step or null,
``steps_per_epoch``, ``items``, ``device``, ``precision``, ``processes``, ...), one ``step`` per optimizer step
(``loss``, ``talker_loss``, ``code_predictor_loss``, ``lr``, ``grad_norm``, ``steps_per_s``, ``eta_s``,
``peak_mem_gb``, ``epoch``, ``epochs``), ``checkpoint`` with ``kind`` "state" (a checkpoint folder),
"sample" (an epoch's WAV) or "export" (the exported checkpoint), ``warning``, and ``done`` (``step``,
``export``, ``speaker``, ``samples``, ``checkpoint``; on a stop request ``stopped: true``, exit code 3).
Bad input, a missing or damaged prepared file, a missing base model, running out of memory and a full
disk while saving a checkpoint give an ``error`` event with a hint and exit code 2.

Several GPUs: every process runs this same code; each takes its share of each epoch's batches,
DistributedDataParallel averages the gradients, and only the main process writes events and files
(each process's RNG states reach it over the process group); every process reads the checkpoint it
resumes from. Run for real in the tests with two CPU processes (gloo) under the launcher command the
wizard builds (``accelerate launch --multi_gpu``): losses and weights match one process with the same
global batch. Not tried on several GPUs. training.distributed refuses launches the machine cannot run
(more processes than GPUs, a missing backend). On a stop request every process exits with 3, which the
launcher reports as its own failure (exit 1): the ``done`` event with ``stopped: true`` is what tells a
stop from a crash.

The loss is the published recipe's: the talker's cross-entropy on the first codebook plus 0.3 times
the code predictor's cross-entropy on codebooks 2..16, with the label shift done exactly once and
explicitly (``build_batch`` places each label at the position whose output predicts it; the package's
own loss helpers shift again, which is the published script's off-by-one).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.cli_args import ArgumentError, OneLineArgumentParser
from training.checkpoint_state import (
    CHECKPOINT_PATTERN,
    NO_SPACE,
    STATE_NAME,
    CheckpointDamaged,
    Manifest,
    clean_staging,
    commit,
    describe_save_error,
    gather_rng,
    load_checkpoint,
    read_manifest,
    retire,
    write_checkpoint,
)
from training.distributed import Machine, check_processes, cpu_threads_per_process, launched_processes
from training.protocol import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    CommandError,
    Emitter,
    Eta,
    clear_stop,
    report_error,
    setup_logging,
    stop_requested,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger("training.sft")

PROG = "training.sft"
CONFIG_NAME = "run.json"
INDEX_NAME = "prepared.jsonl"
SAMPLE_RATE = 24000
IGNORE_INDEX = -100
SUBTALKER_WEIGHT = 0.3  # the published recipe's weight of the code-predictor loss
CHECKPOINTS_DIR = "checkpoints"
EMBEDDING_NAME = "speaker_embedding.safetensors"
METRICS_NAME = "metrics.csv"
# Enough clips to average out one recording's room and mood; beyond this the mean hardly moves, while
# every clip costs a speaker-encoder pass before training can start.
MAX_SPEAKER_CLIPS = 128
# Non-finite gradients this many steps in a row mean the run has diverged, not hit one bad batch.
MAX_BAD_STEPS = 5

# Users of the published script report speech speeding up over the epochs and speaker similarity
# dropping at 2e-6 to 4e-6, and better results at 1e-7 to 1e-8. That script also keeps the weights
# themselves in bf16, where an update smaller than about 1/256 of a weight rounds away, so a nominal
# rate there moves the model *less* than the same rate here: we keep fp32 master weights (bf16 only
# in autocast), where every update lands. 1e-7, the top of the range users found good, is therefore
# already a real (gentle) fine-tune; the wizard should offer 1e-8 to 1e-6 and say so. (Inference in
# bf16 rounds the exported weights the same way, so on a GPU the smallest updates still vanish there.)
DEFAULT_LEARNING_RATE = 1e-7
DEFAULT_SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog, and then it takes a well deserved nap."
_SPEAKER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_PREPARE_HINT = "run python -m training.prepare RUN_DIR --tokenizer BASE_MODEL first"
_OOM_HINT = (
    "lower batch_size (raise gradient_accumulation to keep the effective batch), set gradient_checkpointing "
    "to true, or use the 0.6B base model"
)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def _opt(default: Any, kind: str, *, minimum: float | None = None, choices: tuple[str, ...] = (), none: bool = False):
    return field(default=default, metadata={"kind": kind, "minimum": minimum, "choices": choices, "none": none})


@dataclass(frozen=True)
class SFTConfig:
    """The settings of one fine-tuning run, read from ``run.json`` (see the module docstring)."""

    base_model: str = field(metadata={"kind": "str"})
    speaker: str = field(metadata={"kind": "str"})
    epochs: int = _opt(3, "int", minimum=1)
    learning_rate: float = _opt(DEFAULT_LEARNING_RATE, "float", minimum=0.0)
    lr_schedule: str = _opt("cosine", "choice", choices=("cosine", "linear"))
    warmup_steps: int | None = _opt(None, "int", minimum=0, none=True)
    batch_size: int = _opt(2, "int", minimum=1)
    gradient_accumulation: int = _opt(4, "int", minimum=1)
    max_grad_norm: float = _opt(1.0, "float", minimum=0.0)
    weight_decay: float = _opt(0.01, "float", minimum=0.0)
    precision: str = _opt("auto", "choice", choices=("auto", "bf16", "fp32"))
    device: str = _opt("auto", "choice", choices=("auto", "cpu", "cuda"))
    seed: int = _opt(0, "int", minimum=0)
    checkpoint_every: int = _opt(100, "int", minimum=1)
    keep_checkpoints: int = _opt(2, "int", minimum=1)
    sample_every_epoch: bool = _opt(True, "bool")
    sample_text: str = _opt(DEFAULT_SAMPLE_TEXT, "str")
    sample_max_new_tokens: int | None = _opt(None, "int", minimum=2, none=True)
    language: str = _opt("auto", "str")
    max_steps: int | None = _opt(None, "int", minimum=1, none=True)
    freeze_text_embedding: bool = _opt(True, "bool")
    gradient_checkpointing: bool = _opt(False, "bool")
    cpu_threads: int | None = _opt(None, "int", minimum=1, none=True)
    output_dir: str | None = _opt(None, "str", none=True)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# Settings a resumed run must share with the checkpoint it resumes: they fix the step count, the data
# order or what the saved optimizer state means. The rest (device, precision, checkpoint cadence,
# samples, output names) may change between runs.
RESUME_FIELDS = (
    "base_model",
    "epochs",
    "learning_rate",
    "lr_schedule",
    "warmup_steps",
    "batch_size",
    "gradient_accumulation",
    "weight_decay",
    "seed",
    "language",
    "max_steps",
    "freeze_text_embedding",
)

_KIND_TEXT = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
}


def _check_value(name: str, value: Any, meta: dict[str, Any]) -> Any:
    kind = meta["kind"]
    if value is None:
        if meta.get("none"):
            return None
        raise ValueError(f"must be {_KIND_TEXT.get(kind, 'set')}, not null")
    minimum = meta.get("minimum")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, not {json.dumps(value)}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"must be a number, not {json.dumps(value)}")
        value = float(value)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {json.dumps(value)}")
    elif kind in ("str", "choice"):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be a non-empty string, not {json.dumps(value)}")
        value = value.strip()
        if kind == "choice" and value not in meta["choices"]:
            raise ValueError(f"must be one of {', '.join(meta['choices'])}, not {json.dumps(value)}")
    if minimum is not None and kind in ("int", "float"):
        strict = kind == "float" and name in ("learning_rate", "max_grad_norm")
        if value < minimum or (strict and value <= minimum):
            bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
            raise ValueError(f"must be {bound}, not {json.dumps(value)}")
    return value


def load_config(path: str | os.PathLike[str]) -> SFTConfig:
    """Read and check ``run.json``; every problem is a CommandError naming the file and the field."""
    path = Path(path)
    hint = "write the run settings there (the fine-tune wizard does); see python -m training.sft --help"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{path}: not found", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: unreadable ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CommandError(f"{path}: must hold a JSON object, not {type(data).__name__}")
    known = {f.name: f for f in fields(SFTConfig)}
    for key in data:
        if key not in known:
            raise CommandError(f"{path}: unknown field {key!r}", hint=f"known fields: {', '.join(known)}")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        if name not in data:
            if spec.default is MISSING:
                raise CommandError(f"{path}: field {name!r} is required", hint=hint)
            continue
        try:
            values[name] = _check_value(name, data[name], dict(spec.metadata))
        except ValueError as exc:
            raise CommandError(
                f"{path}: field {name!r} {exc}", hint=f"fix {name} in {path.name} or leave it out"
            ) from None
    speaker = values["speaker"].lower()
    if not _SPEAKER_NAME.match(speaker):
        raise CommandError(
            f"{path}: field 'speaker' {values['speaker']!r} is not a usable speaker name",
            hint="use 1 to 48 letters a-z, digits, '_' or '-', starting with a letter or digit",
        )
    values["speaker"] = speaker
    values["language"] = values.get("language", "auto").lower()
    return SFTConfig(**values)


@dataclass(frozen=True)
class RunPaths:
    run_dir: Path
    output: Path

    @classmethod
    def for_config(cls, config_path: Path, config: SFTConfig) -> RunPaths:
        run_dir = config_path.parent
        output = run_dir if config.output_dir is None else run_dir / config.output_dir
        return cls(run_dir=run_dir, output=output)

    @property
    def index(self) -> Path:
        return self.run_dir / INDEX_NAME

    @property
    def checkpoints(self) -> Path:
        return self.output / CHECKPOINTS_DIR

    @property
    def samples(self) -> Path:
        return self.output / "samples"

    @property
    def tensorboard(self) -> Path:
        return self.output / "tensorboard"

    @property
    def metrics(self) -> Path:
        return self.output / METRICS_NAME

    @property
    def embedding(self) -> Path:
        return self.output / EMBEDDING_NAME

    def export(self, speaker: str) -> Path:
        return self.output / "export" / speaker


# ---------------------------------------------------------------------------------------------
# Inputs: base model folder and prepared data (cheap checks, no torch)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseModel:
    folder: Path
    config: dict[str, Any]

    @property
    def talker(self) -> dict[str, Any]:
        return self.config["talker_config"]

    @property
    def num_code_groups(self) -> int:
        return int(self.talker.get("num_code_groups", 16))

    @property
    def codebook_size(self) -> int:
        return int(self.talker["code_predictor_config"]["vocab_size"])


def resolve_base(config: SFTConfig, config_path: Path) -> BaseModel:
    from studio.engine.loader import EngineError, resolve_folder, validate_checkpoint

    source = config.base_model
    local = Path(source).expanduser()
    if not local.is_absolute() and (config_path.parent / local).exists():
        source = str(config_path.parent / local)
    try:
        folder = resolve_folder(source, progress=log.info)
        base_config = validate_checkpoint(folder)
    except EngineError as exc:
        raise CommandError(
            f"field 'base_model': {exc}", hint="pass a downloaded Qwen3-TTS 12Hz Base checkpoint folder or its hub id"
        ) from None
    kind = base_config.get("tts_model_type")
    if kind != "base":
        raise CommandError(
            f"field 'base_model': {folder} is a {kind} checkpoint, not a Base one",
            hint="fine-tuning starts from Qwen3-TTS-12Hz-1.7B-Base or -0.6B-Base (it needs their speaker encoder)",
        )
    languages = base_config["talker_config"].get("codec_language_id") or {}
    if config.language != "auto" and config.language not in languages:
        raise CommandError(
            f"field 'language': {config.language!r} is not a language of {folder}",
            hint=f"use auto or one of: {', '.join(sorted(languages))}",
        )
    return BaseModel(folder=folder, config=base_config)


@dataclass
class PreparedItem:
    text: str
    codes: np.ndarray  # (frames, num_code_groups) int16, as training.prepare wrote it
    audio: Path  # prepared 24 kHz clip
    speaker_clip: Path  # prepared ref_audio when given, else the item's own audio
    tokenizer: str  # fingerprint of the speech tokenizer that made the codes
    text_ids: list[int] = field(default_factory=list)


def load_prepared(run_dir: Path, base: BaseModel) -> list[PreparedItem]:
    """Every prepared item with its codes, checked; CommandError names the first bad file."""
    from safetensors import safe_open

    index = run_dir / INDEX_NAME
    if not index.is_file():
        raise CommandError(f"{index}: not found", hint=_PREPARE_HINT)
    try:
        lines = index.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{index}: unreadable ({exc})", hint=_PREPARE_HINT) from None
    redo = "run python -m training.prepare RUN_DIR --tokenizer BASE_MODEL again; it re-encodes damaged code files"
    items = []
    groups, codebook = base.num_code_groups, base.codebook_size
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, codes_rel, audio_rel = row["text"], row["codes"], row["prepared_audio"]
            if not (isinstance(text, str) and isinstance(codes_rel, str) and isinstance(audio_rel, str)):
                raise TypeError("text, codes and prepared_audio must be strings")
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{index}: line {number} is damaged ({exc})", hint=_PREPARE_HINT) from None
        path = run_dir / codes_rel
        if not path.is_file():
            raise CommandError(f"{path}: prepared code file missing", hint=redo)
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                codes = handle.get_tensor("codes")
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file fails in many ways
            raise CommandError(f"{path}: prepared code file unreadable ({type(exc).__name__})", hint=redo) from None
        if codes.ndim != 2 or codes.shape[1] != groups or codes.shape[0] < 1:
            raise CommandError(f"{path}: codes have shape {codes.shape}, expected (frames, {groups})", hint=redo)
        if codes.min() < 0 or codes.max() >= codebook:
            raise CommandError(
                f"{path}: codes outside the base model's codebook (0..{codebook - 1})",
                hint="prepare the run with the base model's own speech tokenizer",
            )
        audio = run_dir / audio_rel
        ref_rel = row.get("prepared_ref_audio")
        clip = run_dir / ref_rel if isinstance(ref_rel, str) and ref_rel else audio
        if not clip.is_file():
            raise CommandError(
                f"{clip}: prepared audio missing", hint="run training.validate and training.prepare again"
            )
        items.append(
            PreparedItem(
                text=text,
                codes=np.asarray(codes),
                audio=audio,
                speaker_clip=clip,
                tokenizer=str(metadata.get("tokenizer", "")),
            )
        )
    if not items:
        raise CommandError(f"{index}: no items", hint=_PREPARE_HINT)
    return items


def speaker_clips(items: Sequence[PreparedItem], limit: int = MAX_SPEAKER_CLIPS) -> list[Path]:
    """The distinct clips the speaker embedding is averaged over, evenly spread when there are many."""
    unique = list(dict.fromkeys(item.speaker_clip for item in items))
    if len(unique) <= limit:
        return unique
    picks = np.linspace(0, len(unique) - 1, limit).round().astype(int)
    return [unique[i] for i in dict.fromkeys(picks.tolist())]


# ---------------------------------------------------------------------------------------------
# Batches, forward pass and losses
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTokens:
    """The ids that frame every training sequence, read from the base config."""

    tts_pad: int
    tts_bos: int
    tts_eos: int
    codec_prefix: tuple[int, ...]  # the "think" tags (and the language id) before the speaker slot
    codec_pad: int
    codec_bos: int
    codec_eos: int

    @classmethod
    def from_config(cls, config: dict[str, Any], language: str = "auto") -> PromptTokens:
        talker = config["talker_config"]
        if language == "auto":
            prefix = (talker["codec_nothink_id"], talker["codec_think_bos_id"], talker["codec_think_eos_id"])
        else:
            prefix = (
                talker["codec_think_id"],
                talker["codec_think_bos_id"],
                talker["codec_language_id"][language],
                talker["codec_think_eos_id"],
            )
        return cls(
            tts_pad=config["tts_pad_token_id"],
            tts_bos=config["tts_bos_token_id"],
            tts_eos=config["tts_eos_token_id"],
            codec_prefix=tuple(int(x) for x in prefix),
            codec_pad=talker["codec_pad_id"],
            codec_bos=talker["codec_bos_id"],
            codec_eos=talker["codec_eos_token_id"],
        )


def tokenize_text(processor: Any, text: str, config: dict[str, Any]) -> list[int]:
    """The ids the package feeds for `text`: the role prefix (3 ids) and the text, without the 5-id tail.

    The package tokenises the whole chat prompt and slices it by position ([:3] role, [3:-5] text); doing
    the same here keeps training and generation on identical token boundaries.
    """
    prompt = f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n"
    ids = [int(x) for x in processor(text=prompt, return_tensors="pt")["input_ids"].reshape(-1).tolist()]
    if len(ids) < 9 or ids[0] != config["im_start_token_id"] or ids[-5] != config["im_end_token_id"]:
        raise CommandError(
            f"the base model's tokenizer splits the prompt for {text[:40]!r} unexpectedly",
            hint="the base checkpoint's tokenizer files do not match its config",
        )
    return ids[:-5]


def sequence_layout(n_text: int, n_frames: int, prefix_len: int) -> dict[str, int]:
    """Where things sit in one training sequence (what `build_batch` writes, spelled out for tests).

    It mirrors the prompt `Qwen3TTSForConditionalGeneration.generate` builds in non-streaming mode:
    3 role tokens; the codec prefix over tts_pad; the speaker slot over tts_pad; codec_pad over
    tts_bos; the text over codec_pad; tts_eos over codec_pad; codec_bos over tts_pad; then one position
    per audio frame (all 16 codebooks summed) over tts_pad. The end-of-speech frame is never an input.
    """
    speaker = 3 + prefix_len
    text = speaker + 2
    bos = text + n_text + 1
    first_frame = bos + 1
    return {"speaker": speaker, "text": text, "bos": bos, "first_frame": first_frame, "length": first_frame + n_frames}


def build_batch(samples: Sequence[tuple[Sequence[int], np.ndarray]], tokens: PromptTokens) -> dict[str, torch.Tensor]:
    """Right-padded tensors for (prompt ids, codes) pairs; see `sequence_layout`.

    The label shift happens here, once: ``labels[p]`` is what the talker's output at position p must
    predict, i.e. the first-codebook token *fed at position p + 1* (frame 0 after codec_bos, frame
    t + 1 after frame t, end-of-speech after the last frame). ``target_codes[p]`` holds all codebooks
    of that same frame for the code predictor, which starts from the talker's hidden state at p.
    """
    import torch

    groups = samples[0][1].shape[1]
    layouts = []
    for ids, codes in samples:
        layouts.append(sequence_layout(len(ids) - 3, codes.shape[0], len(tokens.codec_prefix)))
    batch, length = len(samples), max(layout["length"] for layout in layouts)

    def zeros(*shape: int, dtype=torch.long) -> torch.Tensor:
        return torch.zeros((batch, length, *shape), dtype=dtype)

    text_ids, codec_ids = zeros(), zeros()
    text_mask, codec_mask, speaker_mask, frame_mask, cp_mask = (zeros(dtype=torch.bool) for _ in range(5))
    frame_codes, target_codes = zeros(groups), zeros(groups)
    labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
    attention = zeros()
    for row, ((ids, codes), lay) in enumerate(zip(samples, layouts, strict=True)):
        codes_t = torch.as_tensor(np.asarray(codes, dtype=np.int64))
        n_frames, end = codes_t.shape[0], lay["length"]
        spk, txt, bos, first = lay["speaker"], lay["text"], lay["bos"], lay["first_frame"]
        # Text channel: role, tts_pad up to the speaker slot, tts_bos, the text, tts_eos, then tts_pad.
        text_ids[row, :3] = torch.as_tensor(list(ids[:3]))
        text_ids[row, 3 : spk + 1] = tokens.tts_pad
        text_ids[row, spk + 1] = tokens.tts_bos
        text_ids[row, txt : bos - 1] = torch.as_tensor(list(ids[3:]), dtype=torch.long)
        text_ids[row, bos - 1] = tokens.tts_eos
        text_ids[row, bos:end] = tokens.tts_pad
        text_mask[row, :end] = True
        # Codec channel: prefix tags, (speaker), codec_pad over tts_bos and the text, codec_bos, frames.
        codec_ids[row, 3:spk] = torch.as_tensor(tokens.codec_prefix)
        codec_ids[row, spk + 1 : bos] = tokens.codec_pad
        codec_ids[row, bos] = tokens.codec_bos
        codec_ids[row, first:end] = codes_t[:, 0]
        codec_mask[row, 3:end] = True
        codec_mask[row, spk] = False
        speaker_mask[row, spk] = True
        frame_codes[row, first:end] = codes_t
        frame_mask[row, first:end] = True
        # Targets: the output at p predicts the frame fed at p + 1; after the last frame, end of speech.
        labels[row, bos : end - 1] = codes_t[:, 0]
        labels[row, end - 1] = tokens.codec_eos
        target_codes[row, bos : bos + n_frames] = codes_t
        cp_mask[row, bos : bos + n_frames] = True
        attention[row, :end] = 1
    return {
        "text_ids": text_ids,
        "text_mask": text_mask,
        "codec_ids": codec_ids,
        "codec_mask": codec_mask,
        "speaker_mask": speaker_mask,
        "frame_codes": frame_codes,
        "frame_mask": frame_mask,
        "labels": labels,
        "target_codes": target_codes,
        "cp_mask": cp_mask,
        "attention_mask": attention,
    }


def talker_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of already-aligned pairs: row i of `logits` is scored against `labels[i]`, no shift."""
    import torch.nn.functional as F  # noqa: N812

    return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)


def code_predictor_loss(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """`logits` (frames, G - 1, V): column j predicts codebook j + 1 of the frame in `codes` (frames, G)."""
    import torch.nn.functional as F  # noqa: N812

    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), codes[:, 1:].reshape(-1))


def sft_forward(
    talker: Any, batch: dict[str, torch.Tensor], speaker_embedding: torch.Tensor, *, keep_logits: bool = False
) -> dict[str, torch.Tensor]:
    """Losses (and, for tests, logits) of one batch through the talker and its code predictor."""
    import torch

    dtype = talker.get_input_embeddings().weight.dtype

    def mask(name: str) -> torch.Tensor:
        return batch[name].unsqueeze(-1).to(dtype)

    codec_table = talker.get_input_embeddings()
    cp_tables = talker.code_predictor.get_input_embeddings()
    groups = batch["frame_codes"].shape[-1]
    # generate() projects text embeddings before adding them; the published script once skipped the
    # projection (harmless only where text and talker widths happen to match).
    embeds = talker.text_projection(talker.get_text_embeddings()(batch["text_ids"])) * mask("text_mask")
    embeds = embeds + codec_table(batch["codec_ids"]) * mask("codec_mask")
    embeds = embeds + speaker_embedding.to(embeds.dtype).view(1, 1, -1) * mask("speaker_mask")
    frame_mask = mask("frame_mask")
    for i in range(1, groups):
        embeds = embeds + cp_tables[i - 1](batch["frame_codes"][..., i]) * frame_mask

    size, length = batch["text_ids"].shape
    positions = torch.arange(length, device=embeds.device).view(1, 1, length).expand(3, size, length)
    hidden = talker.model(
        inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=positions, use_cache=False
    ).last_hidden_state

    labelled = batch["labels"] != IGNORE_INDEX
    logits = talker.codec_head(hidden[labelled])
    labels = batch["labels"][labelled]
    main_loss = talker_loss(logits, labels)

    # The code predictor sees, per frame, the talker state that predicted the frame's first codebook,
    # then codebooks 1..G-1 of that frame, and predicts codebooks 2..G: generate()'s order exactly.
    codes = batch["target_codes"][batch["cp_mask"]]
    parts = [hidden[batch["cp_mask"]].unsqueeze(1), codec_table(codes[:, :1])]
    parts += [cp_tables[i - 1](codes[:, i : i + 1]) for i in range(1, groups - 1)]
    cp_logits = talker.code_predictor.forward_finetune(inputs_embeds=torch.cat(parts, dim=1), use_cache=False).logits
    cp_loss = code_predictor_loss(cp_logits, codes)

    out = {"loss": main_loss + SUBTALKER_WEIGHT * cp_loss, "talker_loss": main_loss, "code_predictor_loss": cp_loss}
    if keep_logits:
        out.update(talker_logits=logits, talker_labels=labels, cp_logits=cp_logits, cp_codes=codes)
    return out


def _sft_module(talker: Any, speaker_embedding: torch.Tensor) -> torch.nn.Module:
    """The talker plus the fixed speaker embedding as one module, so DDP wraps what forward() runs."""
    import torch

    class TalkerSFT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.talker = talker
            # Not persistent: it lives in speaker_embedding.safetensors, computed once per run.
            self.register_buffer("speaker_embedding", speaker_embedding.detach().clone(), persistent=False)

        def forward(self, batch: dict[str, torch.Tensor], keep_logits: bool = False) -> dict[str, torch.Tensor]:
            return sft_forward(self.talker, batch, self.speaker_embedding, keep_logits=keep_logits)

    return TalkerSFT()


def _trainable(talker: Any, config: SFTConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: decay for matrices, none for biases and norm scales.

    The text embedding (151936 x 2048 in the published models, 311 M parameters) is frozen by default:
    one speaker's transcripts touch a sliver of its rows, yet its gradients and AdamW moments would
    cost about 3.7 GB, and the voice lives in the codec side, not in how words are embedded.
    """
    if config.freeze_text_embedding:
        talker.get_text_embeddings().weight.requires_grad_(False)
    decay, no_decay = [], []
    for _, param in talker.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate multiplier for optimizer step `step` (1-based) of `total`.

    Linear warm-up to the full rate at step `warmup`, then cosine or linear decay that stays above 0
    at the last step, so no step is spent at a rate of 0.
    """
    if warmup > 0 and step <= warmup:
        return step / warmup
    progress = (step - warmup) / max(1, total - warmup + 1)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps_for(config: SFTConfig, total: int) -> int:
    if config.warmup_steps is not None:
        return config.warmup_steps
    return min(100, round(0.05 * total))


def epoch_batches(
    n_items: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """This process's batches (item indices) for `epoch`: a fixed shuffle per (seed, epoch).

    The order depends on nothing else, so a resumed run sees exactly the batches the interrupted one
    would have. With several processes, process r takes every world-th batch from r on, wrapping
    around so that all of them do the same number of steps.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n_items)
    batches = [order[i : i + batch_size].tolist() for i in range(0, n_items, batch_size)]
    per_process = math.ceil(len(batches) / world)
    return [batches[(rank + world * i) % len(batches)] for i in range(per_process)]


# ---------------------------------------------------------------------------------------------
# Speaker embedding
# ---------------------------------------------------------------------------------------------


def clip_embedding(model: Any, clip: Path) -> torch.Tensor:
    """The Base model's speaker-encoder x-vector of one 24 kHz mono clip, float32 on the CPU."""
    import soundfile as sf
    import torch

    audio, rate = sf.read(str(clip), dtype="float32", always_2d=False)
    if rate != SAMPLE_RATE or audio.ndim != 1:
        raise CommandError(f"{clip}: not 24 kHz mono", hint="run training.validate again")
    with torch.inference_mode():
        vector = model.extract_speaker_embedding(np.ascontiguousarray(audio), SAMPLE_RATE)
    return vector.detach().to("cpu", torch.float32).reshape(-1).clone()


def average_speaker_embedding(model: Any, clips: Sequence[Path]) -> torch.Tensor:
    """The mean x-vector over `clips`, one encoder pass each.

    The published script kept the embedding of whatever clip the first shuffled batch held, so the
    exported voice depended on the shuffle; the mean over the dataset is stable and less coloured by
    any one recording.
    """
    import torch

    if not clips:
        raise ValueError("no clips to average")
    return torch.stack([clip_embedding(model, clip) for clip in clips]).mean(dim=0)


def _clips_key(run_dir: Path, clips: Sequence[Path]) -> str:
    return json.dumps([os.path.relpath(c, run_dir) for c in clips])


def load_or_compute_embedding(paths: RunPaths, base: BaseModel, model: Any, clips: Sequence[Path], *, save: bool):
    """The run's speaker embedding: the saved one when it was made from the same clips, else computed."""
    from safetensors.torch import load_file, save_file

    key = _clips_key(paths.run_dir, clips)
    if paths.embedding.is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(paths.embedding), framework="pt") as handle:
                meta = handle.metadata() or {}
            if meta.get("clips") == key and meta.get("base") == str(base.folder):
                return load_file(str(paths.embedding))["embedding"], False
        except Exception:  # noqa: BLE001 - a damaged cache is simply recomputed
            pass
    vector = average_speaker_embedding(model, clips)
    if save:
        paths.output.mkdir(parents=True, exist_ok=True)
        tmp = paths.embedding.with_name(f".{paths.embedding.name}.tmp")
        save_file({"embedding": vector.contiguous()}, str(tmp), metadata={"clips": key, "base": str(base.folder)})
        os.chmod(tmp, 0o644)
        os.replace(tmp, paths.embedding)
    return vector, True


def read_saved_embedding(paths: RunPaths) -> torch.Tensor:
    from safetensors.torch import load_file

    if not paths.embedding.is_file():
        raise CommandError(f"{paths.embedding}: not found", hint="train first: python -m training.sft --config ...")
    try:
        return load_file(str(paths.embedding))["embedding"]
    except Exception as exc:  # noqa: BLE001
        raise CommandError(f"{paths.embedding}: unreadable ({type(exc).__name__})", hint="train again") from None


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Checkpoint folders, oldest first (whole or not: a folder is only renamed into place complete, so
    one that is not was damaged later, and resuming says so instead of passing it over in silence)."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = CHECKPOINT_PATTERN.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


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


# ---------------------------------------------------------------------------------------------
# The training run
# ---------------------------------------------------------------------------------------------


class Stopped(Exception):
    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__("stopped on request")
        self.summary = summary


def _is_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _peak_memory_gb(device: torch.device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


class MetricsLog:
    """TensorBoard scalars (when tensorboard is installed) and metrics.csv, main process only."""

    COLUMNS = (
        "step",
        "epoch",
        "loss",
        "talker_loss",
        "code_predictor_loss",
        "lr",
        "grad_norm",
        "steps_per_s",
        "peak_mem_gb",
        "time",
    )

    def __init__(self, paths: RunPaths, start_step: int, warn: Callable[[str], None]) -> None:
        self.csv_path = paths.metrics
        self._keep_rows(start_step)
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            warn("tensorboard is not installed: metrics go to metrics.csv only (pip install tensorboard)")
        else:
            # purge_step drops what an interrupted run logged after the step we resume from.
            self.writer = SummaryWriter(str(paths.tensorboard), purge_step=start_step + 1 if start_step else None)

    def _keep_rows(self, start_step: int) -> None:
        rows = []
        if self.csv_path.is_file() and start_step > 0:
            with self.csv_path.open(newline="", encoding="utf-8") as handle:
                rows = [
                    r for r in csv.DictReader(handle) if r.get("step", "").isdigit() and int(r["step"]) <= start_step
                ]
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with self.csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        with self.csv_path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=self.COLUMNS, extrasaction="ignore").writerow(
                {"step": step, "time": round(time.time(), 3), **metrics}
            )
        if self.writer is not None:
            for name in ("loss", "talker_loss", "code_predictor_loss", "lr", "grad_norm", "steps_per_s", "peak_mem_gb"):
                value = metrics.get(name)
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(f"train/{name}", value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Trainer:
    config: SFTConfig
    paths: RunPaths
    base: BaseModel
    emitter: Emitter
    should_stop: Callable[[], bool]

    # -- setup --------------------------------------------------------------------------------

    def _accelerator(self):
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        cfg = self.config
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise CommandError("field 'device': cuda was requested but CUDA is not available", hint="use auto or cpu")
        check_processes(launched_processes(), cfg.device, Machine.probe())
        cpu = cfg.device == "cpu" or not torch.cuda.is_available()
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if not cpu and torch.cuda.is_bf16_supported() else "fp32"
        if precision == "bf16" and cpu:
            raise CommandError("field 'precision': bf16 is for CUDA runs", hint="use auto or fp32 on the CPU")
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise CommandError("field 'precision': this GPU has no bf16 support", hint="use auto or fp32")
        self.precision = precision
        # gradient_accumulation_steps stays 1: accumulation is done by hand (no_sync + one optimizer step
        # per group), so the last, shorter group of an epoch is weighted by its own size.
        return Accelerator(
            mixed_precision="bf16" if precision == "bf16" else "no",
            cpu=cpu,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        )

    def _load_model(self, device: torch.device):
        import torch

        from studio.engine.loader import prepare_for_generation
        from studio.engine.qwen_import import import_qwen_tts

        qwen_tts = import_qwen_tts()
        logging.getLogger("qwen_tts").setLevel(logging.WARNING)
        try:
            # fp32 master weights on every device (bf16 lives in autocast); sdpa, never a hard-coded
            # flash_attention_2, which fails to load wherever flash-attn is not installed.
            tts = qwen_tts.Qwen3TTSModel.from_pretrained(
                str(self.base.folder), dtype=torch.float32, attn_implementation="sdpa", use_safetensors=True
            )
        except Exception as exc:  # noqa: BLE001 - transformers raises many types; the user needs one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"field 'base_model': {self.base.folder} failed to load ({type(exc).__name__}: {first[:200]})",
                hint="download the checkpoint again",
            ) from None
        tts.model.to(device)
        tts.device = device
        # Samples pass their own frame cap; the base's generation_config.json says 8192.
        prepare_for_generation(tts)
        tokenizer = tts.model.speech_tokenizer
        tokenizer.model.to(device)
        tokenizer.device = device
        return tts

    # -- main loop ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        import torch
        from accelerate.utils import broadcast_object_list, set_seed

        cfg, paths = self.config, self.paths
        accelerator = self._accelerator()
        self.accelerator = accelerator
        main = accelerator.is_main_process
        device = accelerator.device
        if device.type == "cpu":
            from studio.engine.loader import set_cpu_threads

            set_cpu_threads(cpu_threads_per_process(cfg.cpu_threads, accelerator.num_processes))
        set_seed(cfg.seed)

        items = load_prepared(paths.run_dir, self.base)
        self._check_tokenizer(items)
        world, rank = accelerator.num_processes, accelerator.process_index
        if main:
            for stale in clean_staging(paths.checkpoints):
                log.info("removed %s, left by an interrupted save", stale)
        # A checkpoint the settings no longer fit is refused before minutes go into loading the model.
        resume = self._pick_checkpoint(len(items), world)
        tts = self._load_model(device)
        for item in items:
            item.text_ids = tokenize_text(tts.processor, item.text, self.base.config)
        tokens = PromptTokens.from_config(self.base.config, cfg.language)

        clips = speaker_clips(items)
        if main:
            embedding, computed = load_or_compute_embedding(paths, self.base, tts.model, clips, save=True)
            if computed:
                log.info("speaker embedding averaged over %d clips", len(clips))
        accelerator.wait_for_everyone()
        if not main:
            embedding, _ = load_or_compute_embedding(paths, self.base, tts.model, clips, save=False)
        # Only the talker trains; the speaker encoder has done its one job.
        tts.model.speaker_encoder = None
        talker = tts.model.talker
        if cfg.gradient_checkpointing:
            talker.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        module = _sft_module(talker, embedding.to(device))

        batches_per_epoch = len(epoch_batches(len(items), cfg.batch_size, cfg.seed, 0, rank, world))
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.gradient_accumulation)
        total = steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        warmup = warmup_steps_for(cfg, total)

        optimizer = torch.optim.AdamW(_trainable(talker, cfg), lr=cfg.learning_rate)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: lr_factor(e + 1, total, warmup, cfg.lr_schedule)
        )
        model, optimizer = accelerator.prepare(module, optimizer)
        # The scheduler is not prepared: accelerate would step it once per process per optimizer step.

        start_step, resumed = 0, None
        if resume is not None:
            module = accelerator.unwrap_model(model)
            load_checkpoint(resume, module=module, optimizer=optimizer, scheduler=scheduler, rank=rank, device=device)
            start_step, resumed = resume.step, resume.folder
            log.info("resuming from %s (step %d)", resume.folder, start_step)

        self.emitter.start(
            total=total,
            what="sft",
            run_dir=str(paths.run_dir.absolute()),
            output_dir=str(paths.output.absolute()),
            base_model=str(self.base.folder),
            speaker=cfg.speaker,
            items=len(items),
            speaker_clips=len(clips),
            epochs=cfg.epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=cfg.batch_size,
            gradient_accumulation=cfg.gradient_accumulation,
            learning_rate=cfg.learning_rate,
            warmup_steps=warmup,
            device=str(device),
            precision=self.precision,
            processes=world,
            resumed_from=start_step if resumed is not None else None,
            checkpoint=str(resumed) if resumed is not None else None,
        )
        metrics_log = MetricsLog(paths, start_step, lambda m: self.emitter.warning(m)) if main else None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        self.tts, self.model, self.optimizer, self.scheduler = tts, model, optimizer, scheduler
        self.items, self.tokens, self.embedding, self.total = items, tokens, embedding, total
        self.steps_per_epoch, self.last_saved = steps_per_epoch, start_step if resumed is not None else None

        step, loss = start_step, None
        if cfg.sample_every_epoch and 0 < step and step % steps_per_epoch == 0:
            self._sample_if_missing(step // steps_per_epoch)
        eta = Eta(total)
        train_seconds, bad_steps = 0.0, 0
        try:
            while step < total:
                epoch = step // steps_per_epoch
                batches = epoch_batches(len(items), cfg.batch_size, cfg.seed, epoch, rank, world)
                groups = [
                    batches[i : i + cfg.gradient_accumulation]
                    for i in range(0, len(batches), cfg.gradient_accumulation)
                ]
                for group in groups[step % steps_per_epoch :]:
                    flag = [bool(main and self.should_stop())]
                    if world > 1:
                        broadcast_object_list(flag)
                    if flag[0]:
                        raise Stopped(self._stop(step, start_step, loss))
                    started = time.perf_counter()
                    metrics = self._train_group(group, step)
                    train_seconds += time.perf_counter() - started
                    step += 1
                    bad_steps = bad_steps + 1 if metrics.pop("skipped") else 0
                    if bad_steps >= MAX_BAD_STEPS:
                        raise CommandError(
                            f"training diverged: non-finite gradients for {bad_steps} steps in a row (step {step})",
                            hint="lower learning_rate, or resume from an earlier checkpoint",
                        )
                    loss = metrics["loss"]
                    metrics.update(
                        steps_per_s=round((step - start_step) / train_seconds, 4) if train_seconds else None,
                        eta_s=eta(step, baseline=start_step),
                        peak_mem_gb=round(_peak_memory_gb(device), 3),
                        epoch=epoch + 1,
                    )
                    self.emitter.step(step, total, epochs=cfg.epochs, **metrics)
                    if metrics_log is not None:
                        metrics_log.log(step, metrics)
                    if step % cfg.checkpoint_every == 0 or step == total:
                        self._save(step, epoch)
                        if metrics_log is not None:
                            metrics_log.flush()
                    if step >= total:
                        break
                if cfg.sample_every_epoch and (step % steps_per_epoch == 0 or step == total):
                    self._sample(epoch + 1)
        finally:
            if metrics_log is not None:
                metrics_log.close()
        if self.last_saved != step:
            self._save(step, (step - 1) // steps_per_epoch if step else 0)
        summary = {
            "step": step,
            "total": total,
            "loss": loss,
            "speaker": cfg.speaker,
            "samples": self._all_samples(),
            "checkpoint": str(self._checkpoint_dir(step)),
        }
        if main:
            result = export_from_checkpoint(cfg, paths, self.base, self._checkpoint_dir(step), self.embedding)
            self.emitter.checkpoint(result.folder, step=step, kind="export", speaker=cfg.speaker, slot=result.slot)
            summary.update(export=str(result.folder), slot=result.slot)
        accelerator.wait_for_everyone()
        return summary

    def _check_tokenizer(self, items: Sequence[PreparedItem]) -> None:
        from studio.engine.loader import checkpoint_fingerprint

        tokenizer_dir = self.base.folder / "speech_tokenizer"
        fingerprint = checkpoint_fingerprint(tokenizer_dir, self.paths.run_dir / ".fingerprints.json")
        foreign = sum(1 for item in items if item.tokenizer and item.tokenizer != fingerprint)
        if foreign:
            self.emitter.warning(
                f"{foreign} of {len(items)} items were encoded by another speech tokenizer than {tokenizer_dir}; "
                "if it is not a copy of the same tokenizer, prepare the run with the base model"
            )

    def _pick_checkpoint(self, n_items: int, world: int) -> Manifest | None:
        """The newest checkpoint whose files are whole, checked against run.json; None to start afresh.

        The main process decides (warning about each damaged one it passes over) and tells the others,
        so that every process resumes from the same step.
        """
        from accelerate.utils import broadcast_object_list

        main, folder = self.accelerator.is_main_process, self.paths.checkpoints
        damaged: list[Path] = []
        pick: Path | None = None
        if main:
            for _, candidate in reversed(list_checkpoints(folder)):
                try:
                    read_manifest(candidate)
                except CheckpointDamaged as exc:
                    self.emitter.warning(f"checkpoint {candidate.name} is damaged: {exc}", item=str(exc.path))
                    damaged.append(candidate)
                    continue
                except CommandError:
                    pass  # refused below, by every process alike
                pick = candidate
                break
        if world > 1:
            box = [str(pick) if pick is not None else None]
            broadcast_object_list(box)
            pick = Path(box[0]) if box[0] is not None else None
        if damaged:
            if pick is not None:
                self.emitter.warning(f"resuming from the older checkpoint {pick.name} instead")
            else:
                self.emitter.warning(f"no usable checkpoint left in {folder}: training starts from the beginning")
        if pick is None:
            manifest = None
        else:
            try:
                manifest = read_manifest(pick)
            except CheckpointDamaged as exc:  # another process found it whole a moment ago
                raise CommandError(str(exc), hint=f"delete {pick} to resume from an older checkpoint") from None
            self._check_resume(manifest.state, pick, n_items, world)
        # The run now retrains the steps past the one it resumes; a damaged folder left in their place
        # would count as one of the keep_checkpoints newest and push a good one out.
        for old in damaged:
            retire(old)
            log.info("removed the damaged checkpoint %s", old)
        return manifest

    def _check_resume(self, state: dict[str, Any], folder: Path, n_items: int, world: int) -> None:
        saved = state.get("config") or {}
        current = self.config.to_json()
        for name in RESUME_FIELDS:
            if name in saved and saved[name] != current[name]:
                was, now = json.dumps(saved[name]), json.dumps(current[name])
                raise CommandError(
                    f"{folder} was made with {name} {was}, run.json now says {now}",
                    hint=f"restore {name}, or delete {folder.parent} to start over",
                )
        for name, now in (("items", n_items), ("processes", world)):
            if state.get(name, now) != now:
                raise CommandError(
                    f"{folder} was made with {state[name]} {name}, this run has {now}",
                    hint=f"resume with the same data and number of processes, or delete {folder.parent} to start over",
                )

    def _train_group(self, group: list[list[int]], step: int) -> dict[str, Any]:
        import torch

        accelerator, model = self.accelerator, self.model
        model.train()
        sums = torch.zeros(3, device=accelerator.device)
        try:
            for j, indices in enumerate(group):
                batch = build_batch([(self.items[i].text_ids, self.items[i].codes) for i in indices], self.tokens)
                batch = {k: v.to(accelerator.device, non_blocking=True) for k, v in batch.items()}
                # Gradients are all-reduced once per optimizer step, on the group's last micro-batch.
                sync = j == len(group) - 1
                with nullcontext() if sync else accelerator.no_sync(model):
                    out = model(batch)
                    accelerator.backward(out["loss"] / len(group))
                sums += torch.stack([out["loss"], out["talker_loss"], out["code_predictor_loss"]]).detach().float()
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)
        except Exception as exc:
            if _is_oom(exc):
                raise CommandError(
                    f"out of memory at step {step + 1} (batch_size {self.config.batch_size}) on {accelerator.device}",
                    hint=_OOM_HINT,
                ) from None
            raise
        grad_norm = float(grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        skipped = not math.isfinite(grad_norm)
        if skipped:
            # One bad batch must not write NaN into every weight; the step still counts so that the
            # data position and the schedule stay where a clean run would have them.
            self.emitter.warning(f"non-finite gradients at step {step + 1}; the update was skipped")
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        means = accelerator.reduce(sums / len(group), reduction="mean").tolist()
        return {
            "loss": means[0],
            "talker_loss": means[1],
            "code_predictor_loss": means[2],
            "lr": lr,
            "grad_norm": grad_norm,
            "skipped": skipped,
        }

    # -- checkpoints, stop, samples -----------------------------------------------------------

    def _checkpoint_dir(self, step: int) -> Path:
        return self.paths.checkpoints / f"step-{step:06d}"

    def _save(self, step: int, epoch: int) -> None:
        from accelerate.utils import broadcast_object_list

        accelerator, paths, main = self.accelerator, self.paths, self.accelerator.is_main_process
        final = self._checkpoint_dir(step)
        rng = gather_rng(accelerator)  # every process's, for the main process to write
        failure: list[Any] = [None]
        if main:
            staging = paths.checkpoints / f".{final.name}.partial"
            info = {
                "step": step,
                "epoch": epoch + 1,
                "total": self.total,
                "steps_per_epoch": self.steps_per_epoch,
                "items": len(self.items),
                "processes": accelerator.num_processes,
                "config": self.config.to_json(),
                "saved_at": time.time(),
            }
            try:
                shutil.rmtree(staging, ignore_errors=True)
                paths.checkpoints.mkdir(parents=True, exist_ok=True)
                write_checkpoint(
                    staging,
                    info=info,
                    model_state=accelerator.unwrap_model(self.model).state_dict(),
                    optimizer_state=self.optimizer.state_dict(),
                    scheduler_state=self.scheduler.state_dict(),
                    rng=rng,
                )
                commit(staging, final)
            except OSError as exc:
                # Nothing half-written may stay behind to be taken for a checkpoint later.
                shutil.rmtree(staging, ignore_errors=True)
                error = describe_save_error(exc, final)
                failure = [(error.message, error.hint)]
            else:
                for _, old in list_checkpoints(paths.checkpoints)[: -self.config.keep_checkpoints]:
                    retire(old)
                log.info("saved %s", final)
                self.emitter.checkpoint(final, step=step, kind="state")
        if accelerator.num_processes > 1:
            broadcast_object_list(failure)
        if failure[0] is not None:
            message, hint = failure[0]
            raise CommandError(message, hint=hint)
        self.last_saved = step

    def _stop(self, step: int, start_step: int, loss: float | None) -> dict[str, Any]:
        if step > start_step and self.last_saved != step:
            self._save(step, (step - 1) // self.steps_per_epoch)
        latest = list_checkpoints(self.paths.checkpoints)
        return {
            "stopped": True,
            "step": step,
            "total": self.total,
            "loss": loss,
            "samples": self._all_samples(),
            "checkpoint": str(latest[-1][1]) if latest else None,
        }

    def _all_samples(self) -> list[str]:
        # Earlier runs of a resumed training wrote the first epochs' samples; the wizard wants them all.
        return sorted(str(p) for p in self.paths.samples.glob("epoch-*.wav"))

    def _sample_if_missing(self, epoch: int) -> None:
        if not (self.paths.samples / f"epoch-{epoch:03d}.wav").is_file():
            self._sample(epoch)

    def _sample(self, epoch: int) -> None:
        accelerator = self.accelerator
        if accelerator.is_main_process:
            path = self.paths.samples / f"epoch-{epoch:03d}.wav"
            seconds = generate_sample(
                self.tts,
                self.embedding,
                self.config,
                path,
                seed=self.config.seed,
            )
            self.emitter.checkpoint(path, step=None, kind="sample", epoch=epoch, seconds=round(seconds, 3))
        accelerator.wait_for_everyone()


def generate_sample(tts: Any, embedding: torch.Tensor, config: SFTConfig, path: Path, *, seed: int) -> float:
    """Speak ``config.sample_text`` as the new speaker with the talker's current weights; return seconds.

    The Base model's x-vector-only path feeds the embedding at the very position where the exported
    CustomVoice model feeds the speaker's codec-embedding row, so this is what the export would say.
    Sampling runs under a forked RNG with a fixed seed: every epoch's sample draws the same random
    numbers (so differences come from the weights) and training's RNG stream is left untouched.
    """
    import soundfile as sf
    import torch

    from studio.core.atomic import atomic_write_bytes
    from studio.core.plan import max_new_tokens_for

    model = tts.model
    defaults = dict(tts.generate_defaults or {})
    allowed = (
        "do_sample",
        "top_k",
        "top_p",
        "temperature",
        "repetition_penalty",
        "subtalker_dosample",
        "subtalker_top_k",
        "subtalker_top_p",
        "subtalker_temperature",
    )
    kwargs = {k: defaults[k] for k in allowed if k in defaults}
    kwargs["max_new_tokens"] = config.sample_max_new_tokens or max_new_tokens_for(config.sample_text)
    prompt = f"<|im_start|>assistant\n{config.sample_text}<|im_end|>\n<|im_start|>assistant\n"
    input_ids = tts.processor(text=prompt, return_tensors="pt")["input_ids"].to(model.talker.device)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    voice = {
        "ref_code": None,
        "ref_spk_embedding": [embedding],
        "x_vector_only_mode": [True],
        "icl_mode": [False],
    }
    was_training = model.talker.training
    model.talker.eval()
    devices = [model.talker.device] if model.talker.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            codes, _ = model.generate(
                input_ids=[input_ids],
                languages=[config.language],
                voice_clone_prompt=voice,
                non_streaming_mode=True,
                **kwargs,
            )
            wavs, rate = model.speech_tokenizer.decode([{"audio_codes": codes[0]}])
    finally:
        model.talker.train(was_training)
    wav = np.clip(np.asarray(wavs[0], dtype=np.float32).reshape(-1), -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, wav, int(rate), format="WAV", subtype="PCM_16")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return wav.size / int(rate)


def export_from_checkpoint(
    config: SFTConfig, paths: RunPaths, base: BaseModel, checkpoint: Path, embedding, weights=None
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


def export_only(config: SFTConfig, paths: RunPaths, base: BaseModel, emitter: Emitter) -> dict[str, Any]:
    found = list_checkpoints(paths.checkpoints)
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


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------




def _is_main_process() -> bool:
    # Known before accelerate starts: `accelerate launch` and torchrun set RANK for every process.
    return os.environ.get("RANK", "0") == "0"


def main(argv: Sequence[str] | None = None) -> int:
    main_process = _is_main_process()
    emitter = Emitter.for_process(enabled=main_process)
    setup_logging()
    # Five INFO lines per checkpoint from accelerate drown the log view; ours says it in one.
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    if not main_process:
        logging.getLogger().setLevel(logging.WARNING)
    parser = OneLineArgumentParser(
        prog=f"python -m {PROG}",
        description="Fine-tune a Qwen3-TTS Base checkpoint on a prepared run and export a CustomVoice speaker.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, type=Path, metavar="RUN_DIR/run.json", help="run settings")
    parser.add_argument("--export-only", action="store_true", help="export the newest checkpoint, do not train")
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        return report_error(emitter, PROG, CommandError(str(exc), hint=f"see python -m {PROG} --help"))
    config_path: Path = args.config
    run_dir = config_path.parent
    try:
        # Cheap checks first, before torch is imported, so a typo fails in a fraction of a second.
        config = load_config(config_path)
        paths = RunPaths.for_config(config_path, config)
        base = resolve_base(config, config_path)
        if args.export_only:
            summary = export_only(config, paths, base, emitter)
        else:
            load_prepared(run_dir, base)
            trainer = Trainer(config, paths, base, emitter, should_stop=lambda: stop_requested(run_dir))
            summary = trainer.run()
    except CommandError as exc:
        if not main_process:
            return EXIT_BAD_INPUT
        # A stop request is answered by this run ending: left in place (say the save it asked for hit
        # a full disk), it would stop the resumed run before its first step.
        clear_stop(run_dir)
        return report_error(emitter, PROG, exc)
    except Stopped as stop:
        if main_process:
            clear_stop(run_dir)
        emitter.done(**stop.summary)
        log.info("stopped on request at step %s; rerun the same command to continue", stop.summary.get("step"))
        return EXIT_STOPPED
    except KeyboardInterrupt:
        emitter.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: say so on the protocol, keep the traceback in the log
        if _is_oom(exc):
            return report_error(emitter, PROG, CommandError(f"out of memory ({type(exc).__name__})", hint=_OOM_HINT))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            # A full disk outside a checkpoint save (metrics, samples) is the user's to fix too, not a bug.
            full = f"no space left on device writing {exc.filename or 'a file'}; free space and resume"
            if main_process:
                clear_stop(run_dir)
            return report_error(emitter, PROG, CommandError(full))
        log.exception("sft failed")
        emitter.error(f"internal error: {type(exc).__name__}: {exc}", hint="please report this with the log")
        return EXIT_INTERNAL
    # A stop request that arrived after the last step check is moot now; left in place it would stop
    # whatever command runs in this folder next.
    if not args.export_only:
        clear_stop(run_dir)
    emitter.done(**summary)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
