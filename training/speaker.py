"""The new speaker's voice: the speaker embedding averaged over the run's clips, and the per-epoch samples
spoken with it."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.plan import SAMPLE_RATE
from training.config import SFTConfig
from training.data import BaseModel, PreparedItem
from training.protocol import CommandError
from training.run_folder import RunFolder

if TYPE_CHECKING:
    import torch

# Enough clips to average out one recording's room and mood; beyond this the mean hardly moves, while
# every clip costs a speaker-encoder pass before training can start.
MAX_SPEAKER_CLIPS = 128


def speaker_clips(items: Sequence[PreparedItem], limit: int = MAX_SPEAKER_CLIPS) -> list[Path]:
    """The distinct clips the speaker embedding is averaged over, evenly spread when there are many."""
    unique = list(dict.fromkeys(item.speaker_clip for item in items))
    if len(unique) <= limit:
        return unique
    picks = np.linspace(0, len(unique) - 1, limit).round().astype(int)
    return [unique[i] for i in dict.fromkeys(picks.tolist())]



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


def load_or_compute_embedding(paths: RunFolder, base: BaseModel, model: Any, clips: Sequence[Path], *, save: bool):
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


def read_saved_embedding(paths: RunFolder) -> torch.Tensor:
    from safetensors.torch import load_file

    if not paths.embedding.is_file():
        raise CommandError(f"{paths.embedding}: not found", hint="train first: python -m training.sft --config ...")
    try:
        return load_file(str(paths.embedding))["embedding"]
    except Exception as exc:  # noqa: BLE001
        raise CommandError(f"{paths.embedding}: unreadable ({type(exc).__name__})", hint="train again") from None



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

