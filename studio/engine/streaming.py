"""Intra-segment streaming: codec frames as the talker produces them, decoded to audio in chunks.

qwen-tts has no streaming generation: `generate_*` returns a whole segment's audio. But the talker's
forward pass at decode step k computes the complete 16 codes of frame k - 1 (its first codebook token
was sampled at the previous step; the code predictor fills in the other 15 inside forward). A forward
hook on the talker therefore sees every frame the moment it exists. That is the reference path; the
fast decoder (fast_decode.py) yields frames from its own loop instead. Either way generation runs in a
helper thread (`threaded_frames`), so the decode of one chunk overlaps the generation of the next;
frames cross a queue to the caller, which decodes them in chunks: a small first chunk so the first
audio arrives early, then larger ones, which cost less decoder overhead per second of audio.

The speech-tokenizer decoder is causal (causal convolutions and a sliding-window causal transformer);
decoding a chunk together with the frames before it (left context) and dropping the context's samples
reproduces a one-shot decode up to the receptive field that the context does not cover. qwen-tts's
own one-shot decode does the same with 300-frame chunks and 25 frames of context; a larger context
trades decoder time for closeness (measured in tests/engine/test_streaming.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


class Cancelled(Exception):
    """A request was cancelled (between chunks, or between talker steps when streaming)."""


@dataclass(frozen=True)
class StreamingSettings:
    enabled: bool = True
    first_chunk_frames: int = 4  # 320 ms of audio: enough to start playback, small enough to be quick
    chunk_frames: int = 12  # about 1 s per later chunk
    # Frames of left context per chunk. The decoder's transformer attends over a sliding window of 72
    # frames per layer; one full window made the joined chunks match a one-shot decode to 2e-3
    # spectral difference on the tiny test decoder (100 frames: to float rounding, 1e-6), against
    # 6e-2 with the 25 frames qwen-tts uses in its own chunked decode. The published decoder has 8
    # such layers, so distant frames still reach further in principle; see tests/engine/test_streaming.py.
    left_context_frames: int = 72


class _Abort(Exception):
    """Raised inside the talker's forward hook to stop generation when the caller cancels."""


_DONE = object()


def _new_thread(run) -> None:
    threading.Thread(target=run, name="talker-generate", daemon=True).start()


def threaded_frames(produce, *, eos: int, cancel: threading.Event | None, start=_new_thread) -> Iterator:
    """Run `produce(emit, halted)` in a thread and yield what it emits: each frame's codes, a (16,) tensor.

    The producer calls `emit(frame)` per frame and should return soon after `halted()` turns true (the
    caller stopped reading, or cancelled). Generation thus runs ahead while the caller decodes audio: the
    speech-tokenizer decode of one chunk overlaps the generation of the next. Stops at the end-of-speech
    code. Cancelling raises Cancelled in the caller. `start(run)` runs the producer elsewhere: by default
    on a new thread; the fast decoder passes its own long-lived one.
    """
    import torch

    frames: queue.Queue = queue.Queue()
    stop = threading.Event()

    def halted() -> bool:
        return stop.is_set() or (cancel is not None and cancel.is_set())

    finished = threading.Event()

    def run() -> None:
        try:
            with torch.inference_mode():
                produce(frames.put, halted)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, which re-raises it
            frames.put(exc)
            return
        finally:
            finished.set()
        frames.put(_DONE)

    start(run)
    try:
        while True:
            item = frames.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if int(item[0]) == eos:
                return
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            yield item
    finally:
        stop.set()
        finished.wait()  # the producer's step in flight ends before the next segment may use the model


def generate_frames(model, generate_kwargs: dict, *, cancel: threading.Event | None) -> Iterator:
    """The reference path: `model.generate(**generate_kwargs)` with a forward hook on the talker that
    emits each frame as its forward pass completes it (see the module docstring)."""

    def produce(emit, halted) -> None:
        def on_forward(_module, _args, output) -> None:
            if halted():
                raise _Abort()
            codes = output.hidden_states[1] if output.hidden_states is not None else None
            if codes is not None:  # None during the prefill pass
                emit(codes[0].detach().clone())

        handle = model.talker.register_forward_hook(on_forward)
        try:
            model.generate(**generate_kwargs)
        except _Abort:
            pass
        finally:
            handle.remove()

    return threaded_frames(produce, eos=model.config.talker_config.codec_eos_token_id, cancel=cancel)


class ChunkDecoder:
    """Decodes a growing sequence of frames chunk by chunk with left context."""

    def __init__(self, speech_tokenizer, settings: StreamingSettings, *, context=None) -> None:
        self.tokenizer = speech_tokenizer
        self.settings = settings
        self.samples_per_frame = int(speech_tokenizer.get_decode_upsample_rate())
        # Frames before the first generated one (ICL reference codes) count as left context.
        self._context = [] if context is None else [row for row in context]
        self._frames: list = []
        self._decoded = 0  # frames of _frames already turned into audio

    def add(self, frame) -> None:
        self._frames.append(frame)

    @property
    def pending(self) -> int:
        return len(self._frames) - self._decoded

    def ready(self) -> bool:
        want = self.settings.first_chunk_frames if self._decoded == 0 else self.settings.chunk_frames
        return self.pending >= want

    def decode(self) -> np.ndarray:
        """Audio for every frame not yet decoded."""
        import torch

        if not self.pending:
            return np.zeros(0, dtype=np.float32)
        history = self._context + self._frames
        end = len(self._context) + len(self._frames)
        start = len(self._context) + self._decoded
        left = min(self.settings.left_context_frames, start)
        codes = torch.stack(history[start - left : end])
        wavs, _rate = self.tokenizer.decode([{"audio_codes": codes}])
        audio = np.asarray(wavs[0], dtype=np.float32).reshape(-1)[left * self.samples_per_frame :]
        self._decoded = len(self._frames)
        return audio
