"""How the codec frames are generated: qwen-tts's own `generate` ("reference") or the studio's loop ("fast").

A per-machine choice (studio.settings), torch-free so the command line can parse it before importing
the engine. What each option costs and gains is measured in bench/RESULTS.md ("Fast decode").
"""

from __future__ import annotations

from dataclasses import dataclass

DECODERS = ("fast", "reference")


@dataclass(frozen=True)
class DecoderOptions:
    decoder: str = "fast"  # "fast": studio.engine.fast_decode; "reference": qwen-tts's generate
    compile: bool = False  # fast only: torch.compile the talker step and the code-predictor loop
    int8: bool = False  # fast only, CPU only, experimental: int8 weights for the linear layers

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder: expected one of {', '.join(DECODERS)}, not {self.decoder!r}")

    @property
    def fast(self) -> bool:
        return self.decoder == "fast"

    def cache_tag(self) -> str | None:
        """What the render cache key records of the decoder: only int8, which changes the logits.

        The fast loop in the model's precision samples from the reference's distribution (checked against
        transformers' processors) and picks the reference's codes under greedy decoding, so a cached render
        from either path is a render of the same request, and each reuses the other's. That keeps every
        key made before the fast decoder existed: an upgrade must not make a project's rendered (and
        locked) lines disappear. A fresh render of one seed can still differ between the paths, which
        draw their random numbers differently. Compiling does not enter the key either: compiled steps
        are checked against eager at their first frame and agree to float rounding."""
        return "int8" if self.fast and self.int8 else None

    def batched(self, batch: int) -> bool:
        """Whether a render asking for `batch` segments at a time (0: automatic) uses the batched decoder
        (studio.engine.batch_decode): the fast loop in the model's precision, uncompiled; compiled steps and
        int8 weights belong to the one-segment loop, which such a render uses instead."""
        return batch != 1 and self.fast and not self.compile and not self.int8

    def describe(self, batch: int = 1) -> str:
        if not self.fast:
            return "reference (qwen-tts generate)"
        if self.batched(batch):
            return "fast, batched (" + ("automatic size" if batch == 0 else f"{batch} segments at a time") + ")"
        extras = [name for name, on in (("compiled", self.compile), ("int8", self.int8)) if on]
        return "fast" + (f" ({', '.join(extras)})" if extras else "")
