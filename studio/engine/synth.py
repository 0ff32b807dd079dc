"""One synthesis request -> an iterator of audio chunks (the streaming-first engine interface).

Callers consume `Synthesizer.stream(request)` chunk by chunk and never assume how many chunks a
segment has. Today qwen-tts generates a whole segment at once, so a segment arrives as one chunk;
intra-segment streaming will yield more, earlier chunks through this same interface.

Nothing here knows about threads: cancellation is a `threading.Event` checked between chunks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.instruct import build_instruct, delivery_directives
from studio.core.plan import CODEC_FRAMES_PER_SECOND, max_new_tokens_for
from studio.core.project import GenerationParams
from studio.core.reference_clip import check_voice_clips
from studio.core.voice import VoiceError, VoiceSpec
from studio.engine.clone_prompts import ClonePromptCache
from studio.engine.decoder_options import DecoderOptions
from studio.engine.loader import EngineError, LoadedModel
from studio.engine.streaming import Cancelled, ChunkDecoder, StreamingSettings, generate_frames

__all__ = ["AudioChunk", "Cancelled", "DecoderOptions", "StreamingSettings", "SynthReport", "SynthRequest",
           "Synthesizer"]

_MODEL_TYPE_NAMES = {"voice_design": "VoiceDesign", "custom_voice": "CustomVoice", "base": "Base"}
_VOICE_KIND_NAMES = {"design": "designed", "preset": "preset", "clone": "cloned"}


@dataclass(frozen=True)
class SynthRequest:
    text: str
    voice: VoiceSpec
    language: str = "auto"
    emotion: str | None = None
    directives: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    generation: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True)
class AudioChunk:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    index: int  # 0-based within the segment
    final: bool


@dataclass
class SynthReport:
    """What happened to a request, filled in while its chunks are produced."""

    instruct: str = ""
    emotion_applied: bool = True
    # False when the segment has delivery directives ("[pace: slow]") that this voice's model cannot
    # take: a Base model has no instruct input, a 0.6B CustomVoice ignores it.
    directives_applied: bool = True
    max_new_tokens: int = 0
    frames: int = 0

    @property
    def hit_token_cap(self) -> bool:
        # The decoded audio of a generation cut at max_new_tokens holds max_new_tokens - 1 frames
        # (measured on qwen-tts 0.1.1), so reaching that many frames means there was no end of speech.
        return self.max_new_tokens > 0 and self.frames >= self.max_new_tokens - 1


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class Synthesizer:
    """Generates audio for requests with one loaded model. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        prompt_cache_dir: Path | None = None,
        streaming: StreamingSettings | None = None,
    ) -> None:
        self.loaded = loaded
        self.streaming = streaming or StreamingSettings()
        self.prompts = ClonePromptCache(loaded, prompt_cache_dir)
        self._fast = None  # the FastDecoder, built on first use with the options it was built for
        self._batch = None  # the BatchDecoder, built on first batched render

    @property
    def sample_rate(self) -> int:
        return self.loaded.info.sample_rate

    def check_request(self, request: SynthRequest) -> None:
        """Raise EngineError if this model cannot serve `request` (voice kind, speaker, language)."""
        info = self.loaded.info
        if request.voice.model_type != info.model_type:
            wanted = _MODEL_TYPE_NAMES[request.voice.model_type]
            found = _MODEL_TYPE_NAMES.get(info.model_type, info.model_type)
            raise EngineError(
                f"a {_VOICE_KIND_NAMES[request.voice.kind]} voice needs a {wanted} checkpoint, "
                f"but {info.source} is a {found} model"
            )
        if request.voice.kind == "preset" and request.voice.speaker.lower() not in info.speakers:
            raise EngineError(
                f"speaker {request.voice.speaker!r} is not in {info.source} (it has: {', '.join(info.speakers)})"
            )
        language = request.language.lower()
        if language != "auto" and info.languages and language not in info.languages:
            raise EngineError(
                f"language {request.language!r} is not supported by {info.source} "
                f"(supported: {', '.join(info.languages)})"
            )
        if not request.text.strip():
            raise EngineError("nothing to say: the segment text is empty")
        try:
            # The clips this request would hand to the model: a bad one is named here, not by a
            # tensor-shape error from inside qwen-tts.
            check_voice_clips(request.voice, request.emotion)
        except VoiceError as exc:
            raise EngineError(str(exc)) from None

    def _generation_kwargs(self, request: SynthRequest, report: SynthReport) -> dict:
        gen = request.generation
        report.max_new_tokens = gen.max_new_tokens or max_new_tokens_for(request.text)
        return {
            "temperature": gen.temperature,
            "top_k": gen.top_k,
            "top_p": gen.top_p,
            "repetition_penalty": gen.repetition_penalty,
            "max_new_tokens": report.max_new_tokens,
            # A temperature of 0 means "no sampling"; qwen-tts would divide by it otherwise.
            "do_sample": gen.temperature > 0,
            "subtalker_dosample": gen.temperature > 0,
        }

    def clone_prompt(self, voice: VoiceSpec, emotion: str | None = None) -> tuple[list, bool]:
        """The prompt items for a cloned voice delivering `emotion`, and whether that emotion is applied.

        With an emotion reference clip, the identity clip's speaker embedding is combined with the
        emotion clip's codes and transcript: the embedding fixes who speaks, the in-context example
        carries the delivery. Without one, the identity prompt is used and the emotion is not applied
        (a Base model has no instruct input to carry it).
        """
        from qwen_tts import VoiceClonePromptItem

        identity = self.prompts.get(voice.ref_audio, voice.ref_text, x_vector_only=voice.x_vector_only)
        ref = voice.emotion_ref(emotion)
        if ref is None:
            item = VoiceClonePromptItem(
                ref_code=identity.ref_code,
                ref_spk_embedding=identity.ref_spk_embedding,
                x_vector_only_mode=identity.x_vector_only,
                icl_mode=not identity.x_vector_only,
                ref_text=identity.ref_text,
            )
            return [item], emotion is None
        clip, text = ref
        delivery = self.prompts.get(clip, text, x_vector_only=False)
        item = VoiceClonePromptItem(
            ref_code=delivery.ref_code,
            ref_spk_embedding=identity.ref_spk_embedding,
            x_vector_only_mode=False,
            icl_mode=True,
            ref_text=delivery.ref_text,
        )
        return [item], True

    def stream(
        self,
        request: SynthRequest,
        *,
        cancel: threading.Event | None = None,
        report: SynthReport | None = None,
        decoder: DecoderOptions | None = None,
    ) -> Iterator[AudioChunk]:
        """Yield the request's audio chunk by chunk. Raises Cancelled if `cancel` is set between chunks.

        `decoder` picks how frames are generated (default: the fast loop, eager, model precision)."""
        decoder = decoder or DecoderOptions()
        report = report if report is not None else SynthReport()
        prompt, language, kwargs = self._prepare(request, report, cancel)
        if self.streaming.enabled or decoder.fast:
            yield from self._stream_chunks(request, prompt, language, kwargs, report, cancel, decoder)
            return
        samples, rate = self._one_shot(request, prompt, language, kwargs, report)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        yield AudioChunk(samples=samples, sample_rate=rate, index=0, final=True)

    def generate_codes(
        self,
        request: SynthRequest,
        *,
        decoder: DecoderOptions | None = None,
        cancel: threading.Event | None = None,
        report: SynthReport | None = None,
    ) -> Iterator:
        """The request's codec frames ((16,) int64 tensors) as generated, without decoding them to audio:
        what the benchmarks time and the decoder-identity tests compare."""
        decoder = decoder or DecoderOptions()
        report = report if report is not None else SynthReport()
        prompt, language, kwargs = self._prepare(request, report, cancel)
        generate_kwargs, _context = self.model_generate_kwargs(request, prompt, language, kwargs, report)
        for frame in self._frames(generate_kwargs, cancel, decoder):
            report.frames += 1
            yield frame

    def _prepare(self, request: SynthRequest, report: SynthReport, cancel) -> tuple[list | None, str, dict]:
        """Check the request, fill in the report's instruct and honesty flags, seed the generators.
        Returns the clone prompt (or None), the language and the generation keywords."""
        self.check_request(request)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        voice = request.voice
        kwargs = self._generation_kwargs(request, report)
        prompt = None
        has_directives = bool(delivery_directives(request.directives))
        if voice.kind == "clone":
            report.instruct = ""
            prompt, report.emotion_applied = self.clone_prompt(voice, request.emotion)
            report.directives_applied = not has_directives
        else:
            identity = voice.description if voice.kind == "design" else None
            report.instruct = build_instruct(identity=identity, emotion=request.emotion, directives=request.directives)
            report.emotion_applied = request.emotion is None or self.loaded.info.instruct_honoured
            report.directives_applied = not has_directives or self.loaded.info.instruct_honoured
        _seed_everything(request.seed)
        return prompt, request.language.lower(), kwargs

    def _one_shot(self, request, prompt, language, kwargs, report) -> tuple[np.ndarray, int]:
        """The whole segment through qwen-tts's own generate_* (no streaming)."""
        tts = self.loaded.tts
        voice = request.voice
        if voice.kind == "clone":
            wavs, rate = tts.generate_voice_clone(
                text=request.text, language=language, voice_clone_prompt=prompt, **kwargs
            )
        elif voice.kind == "design":
            wavs, rate = tts.generate_voice_design(
                text=request.text, instruct=report.instruct, language=language, **kwargs
            )
        else:
            wavs, rate = tts.generate_custom_voice(
                text=request.text, speaker=voice.speaker, language=language, instruct=report.instruct, **kwargs
            )
        samples = np.asarray(wavs[0], dtype=np.float32).reshape(-1)
        report.frames = round(len(samples) / int(rate / CODEC_FRAMES_PER_SECOND))
        return samples, int(rate)

    def model_generate_kwargs(self, request, prompt, language, kwargs, report) -> tuple[dict, object]:
        """The keyword arguments qwen-tts's generate_* would pass to the model, built the same way.

        Returns them and the reference codes that precede the generated frames (ICL cloning), which
        the decoder needs as left context.
        """
        tts = self.loaded.tts
        voice = request.voice
        input_ids = tts._tokenize_texts([tts._build_assistant_text(request.text)])
        # qwen-tts's own defaults per call: generate_voice_clone feeds text streaming-style,
        # generate_voice_design and generate_custom_voice all at once.
        out = dict(input_ids=input_ids, languages=[language], non_streaming_mode=voice.kind != "clone",
                   **tts._merge_generate_kwargs(**kwargs))
        context = None
        if voice.kind == "clone":
            prompt_dict = tts._prompt_items_to_voice_clone_prompt(prompt)
            ref_text = prompt[0].ref_text
            out["voice_clone_prompt"] = prompt_dict
            out["ref_ids"] = [tts._tokenize_texts([tts._build_ref_text(ref_text)])[0] if ref_text else None]
            context = prompt_dict["ref_code"][0]
        else:
            instruct = report.instruct
            out["instruct_ids"] = [tts._tokenize_texts([tts._build_instruct_text(instruct)])[0] if instruct else None]
            if voice.kind == "preset":
                out["speakers"] = [voice.speaker]
        return out, context

    def fast_decoder(self, options: DecoderOptions, *, progress: Callable[[str], None] | None = None):
        """The studio's decode loop for this model with `options`, built once and kept while they hold.
        Raises EngineError when the options do not suit the model's device (int8 on a GPU)."""
        from studio.engine.fast_decode import FastDecoder

        if self._fast is None or self._fast.options != options:
            self._fast = None  # free the old one's caches (and int8 copies) before building the next
            try:
                self._fast = FastDecoder(self.loaded.tts.model, options, progress=progress)
            except ValueError as exc:
                raise EngineError(f"{self.loaded.info.source}: {exc}") from None
        return self._fast

    def _frames(self, generate_kwargs: dict, cancel, decoder: DecoderOptions):
        model = self.loaded.tts.model
        if not decoder.fast:
            return generate_frames(model, generate_kwargs, cancel=cancel)
        from studio.engine.fast_decode import capture_talker_call
        from studio.engine.streaming import threaded_frames

        fast = self.fast_decoder(decoder)
        call = capture_talker_call(model, generate_kwargs)

        def produce(emit, halted) -> None:
            for frame in fast.frames(call, halted=halted):
                emit(frame)

        return threaded_frames(produce, eos=call.eos_token_id, cancel=cancel, start=fast.run_on_decoder_thread)

    def batch_job(self, request: SynthRequest, key: object, report: SynthReport):
        """`request` made ready for batched decoding (`run_batch`) under `key`: checked, its instruct and
        honesty flags in `report`, its prompt built by qwen-tts. Raises as `stream` would for a bad request."""
        from studio.engine.batch_decode import BatchJob
        from studio.engine.fast_decode import capture_talker_call

        prompt, language, kwargs = self._prepare(request, report, None)
        generate_kwargs, context = self.model_generate_kwargs(request, prompt, language, kwargs, report)
        return BatchJob(key, capture_talker_call(self.loaded.tts.model, generate_kwargs), request.seed,
                        context=context)

    @property
    def last_batch(self) -> int:
        """The batch size of the latest `run_batch` (0 before any)."""
        return self._batch.last_batch if self._batch is not None else 0

    def run_batch(self, jobs: Iterable, *, batch: int | None, count: int | None = None,
                  cancel: threading.Event | None = None) -> Iterator[tuple[object, np.ndarray, int]]:
        """Decode `jobs` (from `batch_job`; read as the batch has room, so they may be made then) `batch` at
        a time (None: automatic for `count` jobs; studio.engine.batch_decode) and yield (key, samples,
        frames) as each segment ends, so not in order. A segment's audio is what it gets in a batch of one.
        Raises Cancelled when `cancel` is set (checked between steps)."""
        from studio.engine.batch_decode import BatchDecoder

        model = self.loaded.tts.model
        if self._batch is None:
            self._batch = BatchDecoder(model)
        halted = (lambda: cancel.is_set()) if cancel is not None else None
        for job, frames in self._batch.run(jobs, batch=batch, count=count, halted=halted):
            # Decoded in the chunks a streamed render decodes (each with its left context), so equal codes
            # give the streamed render's samples exactly.
            chunks = ChunkDecoder(model.speech_tokenizer, self._chunking(), context=job.context)
            pieces = []
            for frame in frames:
                chunks.add(frame)
                if chunks.ready():
                    pieces.append(chunks.decode())
            pieces.append(chunks.decode())
            yield job.key, np.concatenate(pieces), len(frames)
        if cancel is not None and cancel.is_set():
            raise Cancelled()

    def _chunking(self) -> StreamingSettings:
        # Without streaming (a setting for slow decoders), the fast loop's frames are decoded once at the end.
        if self.streaming.enabled:
            return self.streaming
        return StreamingSettings(first_chunk_frames=1 << 30, chunk_frames=1 << 30)

    def _stream_chunks(self, request, prompt, language, kwargs, report, cancel, decoder) -> Iterator[AudioChunk]:
        tts = self.loaded.tts
        generate_kwargs, context = self.model_generate_kwargs(request, prompt, language, kwargs, report)
        chunks = ChunkDecoder(tts.model.speech_tokenizer, self._chunking(), context=context)
        rate = self.sample_rate
        index = 0
        for frame in self._frames(generate_kwargs, cancel, decoder):
            chunks.add(frame)
            report.frames += 1
            if chunks.ready():
                yield AudioChunk(chunks.decode(), rate, index, final=False)
                index += 1
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        yield AudioChunk(chunks.decode(), rate, index, final=True)
