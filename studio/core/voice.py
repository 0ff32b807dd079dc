"""Voice identities: who speaks, independent of how a segment is delivered.

A VoiceSpec is plain data. Its `fingerprint` covers everything about the voice that changes audio
(for a cloned voice, the reference clip's bytes, not its path), so the render cache re-renders when
a voice changes and never when it is merely renamed or moved.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from studio.core.plan import canonical_json

VOICE_KINDS = ("design", "preset", "clone")

# Which tts_model_type serves which kind of voice.
MODEL_TYPE_FOR_KIND = {"design": "voice_design", "preset": "custom_voice", "clone": "base"}


class VoiceError(ValueError):
    """A voice that is incomplete or whose files cannot be read."""


def file_sha256(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise VoiceError(f"{path}: cannot read the clip ({exc.strerror})") from None


@dataclass(frozen=True)
class VoiceSpec:
    kind: str
    description: str | None = None  # design: the identity text, repeated verbatim in every instruct
    speaker: str | None = None  # preset: a CustomVoice speaker name
    ref_audio: str | None = None  # clone: the reference clip
    ref_text: str | None = None  # clone: its transcript (not needed in x-vector-only mode)
    x_vector_only: bool = False
    # clone: (emotion, clip, transcript) of the same speaker delivering an emotion. A segment with that
    # emotion keeps the identity clip's speaker embedding (who speaks) and takes this clip's codes and
    # text as the in-context example (how it is said).
    emotion_refs: tuple[tuple[str, str, str], ...] = ()
    model: str | None = None  # the checkpoint this voice needs; None: the project's model

    def __post_init__(self) -> None:
        if self.kind not in VOICE_KINDS:
            raise VoiceError(f"unknown voice kind {self.kind!r} (expected one of {', '.join(VOICE_KINDS)})")
        if self.kind == "design" and not (self.description and self.description.strip()):
            raise VoiceError("a designed voice needs a description")
        if self.kind == "preset" and not (self.speaker and self.speaker.strip()):
            raise VoiceError("a preset voice needs a speaker name")
        if self.kind == "clone":
            if not self.ref_audio:
                raise VoiceError("a cloned voice needs a reference clip")
            if not self.x_vector_only and not (self.ref_text and self.ref_text.strip()):
                raise VoiceError("a cloned voice needs the reference clip's transcript (or x-vector-only mode)")
        if self.emotion_refs and self.kind != "clone":
            raise VoiceError("emotion reference clips belong to cloned voices")
        for emotion, clip, text in self.emotion_refs:
            if not emotion.strip() or not clip or not text.strip():
                raise VoiceError(f"emotion clip {emotion!r} needs an emotion, a clip and its transcript")

    @property
    def model_type(self) -> str:
        return MODEL_TYPE_FOR_KIND[self.kind]

    def emotion_ref(self, emotion: str | None) -> tuple[str, str] | None:
        """(clip, transcript) for an emotion, matched case-insensitively; None when there is none."""
        if emotion is None:
            return None
        wanted = " ".join(emotion.split()).lower()
        for name, clip, text in self.emotion_refs:
            if " ".join(name.split()).lower() == wanted:
                return clip, text
        return None

    @classmethod
    def design(cls, description: str) -> VoiceSpec:
        return cls("design", description=description)

    @classmethod
    def preset(cls, speaker: str) -> VoiceSpec:
        return cls("preset", speaker=speaker)

    @classmethod
    def clone(cls, ref_audio: str | Path, ref_text: str | None, *, x_vector_only: bool = False) -> VoiceSpec:
        return cls("clone", ref_audio=str(ref_audio), ref_text=ref_text, x_vector_only=x_vector_only)

    def fingerprint(self) -> str:
        content: dict = {"kind": self.kind}
        if self.kind == "design":
            content["description"] = self.description
        elif self.kind == "preset":
            content["speaker"] = self.speaker.lower()
        else:
            content.update(
                ref_audio_sha256=file_sha256(self.ref_audio),
                ref_text=self.ref_text,
                x_vector_only=self.x_vector_only,
                emotions=sorted(
                    [name.lower(), file_sha256(clip), text] for name, clip, text in self.emotion_refs
                ),
            )
        if self.model:
            content["model"] = self.model
        return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()

    def describe(self) -> str:
        if self.kind == "design":
            return f"designed: {self.description}"
        if self.kind == "preset":
            return f"preset speaker {self.speaker}"
        return f"cloned from {Path(self.ref_audio).name}" + (" (x-vector only)" if self.x_vector_only else "")
