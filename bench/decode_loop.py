"""The fast decoder's loop alone at a published size, eager against compiled, with no checkpoint on disk.

    python -m bench.decode_loop [--device cuda] [--size full|0.6b] [--frames N]

bench/decode.py measures the whole path (prompt building, the reference decoder, streaming audio) on a
checkpoint it writes first; at the 1.7B size that build takes minutes, which a short loan of a GPU
machine cannot spare. This measures what the fast decoder itself costs per frame: the talker
(Qwen3-TTS's own classes at the size's published dimensions, random weights, built straight on the
device) is run by `FastDecoder` eager and compiled (CUDA graphs on a GPU), side by side in one run, on
the decoder's own thread as the app runs it. The prompt is random embeddings of a realistic length and
end-of-speech is held off, so every run makes all its frames. Not included: building the prompt
(tokenising, the voice) and the speech-tokenizer decode of the audio (bench/decode.py has both).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

PROMPT_POSITIONS = 60  # about what a designed voice's instruction plus a sentence of text comes to
FRAME_SECONDS = 0.08  # one 12.5 Hz codec frame


def build_talker(size: str, device: str):
    """The TTS model of `size` (VoiceDesign layout) with random weights, in the device's dtype."""
    import torch
    from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSConfig
    from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSForConditionalGeneration

    from studio.engine.loader import pick_dtype
    from studio.engine.tiny import checkpoint_configs

    model_cfg, _ = checkpoint_configs("voice_design", size)
    torch.manual_seed(0)
    # Built on the device: torch's default initialisation there takes seconds at 1.7B, and the rotary
    # tables are computed as in a real load (a meta-device model would leave them empty).
    with torch.device(device):
        model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**model_cfg))
    return model.to(pick_dtype(device)).eval()


def synthetic_call(model, frames: int):
    import torch

    from studio.engine.fast_decode import TalkerCall
    from studio.engine.sampling import SamplerSettings

    talker = model.talker
    param = next(talker.parameters())
    generator = torch.Generator(device=param.device).manual_seed(1)
    ids = torch.randint(0, talker.config.vocab_size - 1024, (1, PROMPT_POSITIONS + 2 * frames),
                        generator=generator, device=param.device)
    embedded = talker.get_input_embeddings()(ids)  # embeddings at the scale the layers see
    sampler = SamplerSettings(temperature=0.9, top_k=50, repetition_penalty=1.05)
    return TalkerCall(
        inputs_embeds=embedded[:, :PROMPT_POSITIONS], trailing_text_hidden=embedded[:, PROMPT_POSITIONS:],
        tts_pad_embed=embedded[:, :1], talker=sampler, predictor=SamplerSettings(temperature=0.9, top_k=50),
        max_new_tokens=frames + 1, min_new_tokens=frames + 1,  # end of speech held off: every run is full length
        eos_token_id=talker.config.codec_eos_token_id, suppress_tokens=(),
    )


def timed_run(decoder, call) -> tuple[float, list[float]]:
    """Seconds to the first frame (prefill and one frame) and each later frame's time, as streamed."""
    from studio.engine.streaming import threaded_frames

    def produce(emit, halted) -> None:
        for frame in decoder.frames(call, halted=halted):
            emit(frame)

    stamps = [time.perf_counter()]
    for _ in threaded_frames(produce, eos=call.eos_token_id, cancel=None, start=decoder.run_on_decoder_thread):
        stamps.append(time.perf_counter())  # each frame is on the host (a CPU tensor): the GPU's work is in
    return stamps[1] - stamps[0], [b - a for a, b in zip(stamps[1:-1], stamps[2:], strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="full", choices=("full", "0.6b", "tiny"))
    parser.add_argument("--frames", type=int, default=126, help="frames per run (default: 126, about 10 s)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    from bench.__main__ import machine_description
    from bench.decode import bytes_per_frame, memory_bandwidth
    from studio.engine.decoder_options import DecoderOptions
    from studio.engine.fast_decode import FastDecoder

    print(f"machine: {machine_description()}", flush=True)
    started = time.perf_counter()
    model = build_talker(args.size, args.device)
    params = sum(p.numel() for p in model.talker.parameters())
    print(f"talker built on {args.device} in {time.perf_counter() - started:.0f} s: {params / 1e9:.2f} B "
          f"parameters, {next(model.parameters()).dtype}", flush=True)
    bandwidth = memory_bandwidth(args.device)
    floor = bytes_per_frame(model, int8=False) / bandwidth
    call = synthetic_call(model, args.frames)
    decoders = {}
    for name, options in (("eager", DecoderOptions("fast")), ("compiled", DecoderOptions("fast", compile=True))):
        started = time.perf_counter()
        decoders[name] = FastDecoder(model, options, progress=lambda message: print(f"  {message}", flush=True))
        print(f"  {name}: ready in {time.perf_counter() - started:.0f} s ({decoders[name].compile_status})",
              flush=True)
        timed_run(decoders[name], synthetic_call(model, 8))  # warm-up: kernels, allocator, graph recording
    first: dict[str, list[float]] = {name: [] for name in decoders}
    per_frame: dict[str, list[float]] = {name: [] for name in decoders}
    for round_ in range(args.repeats):
        for name, decoder in decoders.items():  # alternated, so drift in the machine hits both alike
            prefill, gaps = timed_run(decoder, call)
            first[name].append(prefill)
            per_frame[name].append(statistics.median(gaps))
        print(f"  round {round_ + 1}: " + ", ".join(f"{n} {per_frame[n][-1] * 1000:.1f} ms/frame" for n in decoders),
              flush=True)
    print(f"\nfast decoder loop, {args.size} size, {args.frames} frames, median of {args.repeats} runs "
          f"(floor: {floor * 1000:.2f} ms per frame = weights read once at {bandwidth / 1e9:.0f} GB/s):")
    eager = statistics.median(per_frame["eager"])
    for name in decoders:
        frame = statistics.median(per_frame[name])
        print(f"| {name} | {frame * 1000:.1f} ms/frame | RTF {frame / FRAME_SECONDS:.3f} (codes only) | "
              f"first frame {statistics.median(first[name]) * 1000:.0f} ms | {eager / frame:.2f}x eager | "
              f"{frame / floor:.1f}x the floor |")
    if args.device.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
