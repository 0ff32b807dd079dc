"""What a fine-tuning run learns from: the base model folder, the prepared items, and the batches built
from them (the prompt layout, the label shift, the data order). No torch at import time.

``build_batch`` places each label at the position whose output predicts it, so the label shift is done
exactly once and explicitly (the package's own loss helpers shift again, which is the published script's
off-by-one).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.config import SFTConfig
from training.protocol import CommandError
from training.run_folder import RunFolder

if TYPE_CHECKING:
    import torch

log = logging.getLogger("training.sft")

IGNORE_INDEX = -100
PREPARE_HINT = "run python -m training.prepare RUN_DIR --tokenizer BASE_MODEL first"


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

    index = RunFolder.at(run_dir).index
    if not index.is_file():
        raise CommandError(f"{index}: not found", hint=PREPARE_HINT)
    try:
        lines = index.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{index}: unreadable ({exc})", hint=PREPARE_HINT) from None
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
            raise CommandError(f"{index}: line {number} is damaged ({exc})", hint=PREPARE_HINT) from None
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
        raise CommandError(f"{index}: no items", hint=PREPARE_HINT)
    return items




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

