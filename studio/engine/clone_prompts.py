"""Voice-clone prompts: computed once per clip and model, kept in memory and on disk as safetensors.

A clone prompt is the reference clip's speaker embedding (who speaks) and, in ICL mode, its codec
frames and transcript (how the example sounds). Computing it runs the speaker encoder and the speech
tokenizer's encoder over the clip, so it is cached: in memory for the session and as a safetensors file
keyed by the clip's content, its transcript, the mode and the model's revision (the embedding depends on
the weights), so a later session reuses it too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.plan import canonical_json
from studio.core.reference_clip import check_reference_clip
from studio.core.voice import VoiceError, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipPrompt:
    """One clip's prompt parts as plain tensors (torch), independent of the qwen-tts item class."""

    ref_code: object | None  # torch.LongTensor (T, 16) or None in x-vector-only mode
    ref_spk_embedding: object  # torch.FloatTensor (D,)
    ref_text: str | None
    x_vector_only: bool


class ClonePromptCache:
    def __init__(self, loaded, folder: Path | None = None) -> None:
        self.loaded = loaded
        self.folder = Path(folder) if folder else None
        self._memory: dict[str, ClipPrompt] = {}
        self.computed = 0  # how many prompts were actually computed (not loaded): for tests and benchmarks

    def _key(self, clip: str, text: str | None, x_vector_only: bool) -> str:
        payload = canonical_json({
            "clip": file_sha256(clip),
            "text": None if x_vector_only else text,
            "x_vector_only": x_vector_only,
            "model": self.loaded.info.revision,
        })
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, clip: str, text: str | None, *, x_vector_only: bool) -> ClipPrompt:
        """The clip's prompt; raises ReferenceClipError (a VoiceError) naming a clip the model cannot use."""
        check_reference_clip(clip)  # remembered per file version, so this costs a stat after the first time
        key = self._key(clip, text, x_vector_only)
        if key in self._memory:
            return self._memory[key]
        prompt = self._load(key)
        if prompt is None:
            prompt = self._compute(clip, text, x_vector_only)
            self._store(key, prompt)
        self._memory[key] = prompt
        return prompt

    def _compute(self, clip: str, text: str | None, x_vector_only: bool) -> ClipPrompt:
        import soundfile

        try:
            audio, rate = soundfile.read(clip, dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise VoiceError(f"{clip}: cannot read the reference clip ({exc})") from None
        items = self.loaded.tts.create_voice_clone_prompt(
            ref_audio=(audio.mean(axis=1), int(rate)),
            ref_text=None if x_vector_only else text,
            x_vector_only_mode=x_vector_only,
        )
        self.computed += 1
        item = items[0]
        return ClipPrompt(item.ref_code, item.ref_spk_embedding, item.ref_text, bool(item.x_vector_only_mode))

    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.safetensors"

    def _load(self, key: str) -> ClipPrompt | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads(handle.metadata()["prompt"])
                embedding = handle.get_tensor("ref_spk_embedding")
                code = handle.get_tensor("ref_code") if "ref_code" in handle.keys() else None
        except Exception as exc:  # noqa: BLE001 - a damaged cache file is recomputed, never fatal
            log.warning("ignoring unreadable clone prompt %s (%s)", path, exc)
            return None
        device = self.loaded.tts.device
        return ClipPrompt(
            None if code is None else code.to(device),
            embedding.to(device=device, dtype=self.loaded.tts.model.dtype),
            meta.get("ref_text"),
            bool(meta.get("x_vector_only")),
        )

    def _store(self, key: str, prompt: ClipPrompt) -> None:
        path = self._path(key)
        if path is None:
            return
        from safetensors.torch import save_file

        from studio.core.atomic import atomic_write_bytes

        tensors = {"ref_spk_embedding": prompt.ref_spk_embedding.detach().float().cpu().contiguous()}
        if prompt.ref_code is not None:
            tensors["ref_code"] = prompt.ref_code.detach().cpu().contiguous()
        meta = {"prompt": json.dumps({"ref_text": prompt.ref_text, "x_vector_only": prompt.x_vector_only})}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp-write")
        save_file(tensors, str(tmp), metadata=meta)
        atomic_write_bytes(path, tmp.read_bytes())
        tmp.unlink(missing_ok=True)


def to_array(tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()
