"""Fast decode at full size: the reference path against the studio's own loop, side by side.

For each published size (1.7B VoiceDesign, 0.6B CustomVoice, random weights at the real dimensions) the
contenders generate the same request in turn, round after round:

- reference: qwen-tts's generate (Hugging Face generate for talker and code predictor, dynamic caches);
- fast: the studio's loop (studio/engine/fast_decode.py), eager, in the model's precision;
- fast compiled: the same with the talker step and the 15-step predictor loop compiled (CUDA graphs on
  a GPU);
- fast int8 (CPU only): int8 weights for every linear layer of talker and predictor.

Per contender: the time per frame (codes only, after the first frame; the first, which includes the
prompt's prefill, is reported apart), the time to the first audio and the real-time factor when
streaming (audio decoded in chunks as in the app). The floor is the time to read every weight a frame
needs once (the talker once, the code predictor's layers 15 times) at this machine's measured memory
bandwidth: no decoder can beat it.
"""

from __future__ import annotations

import gc
import statistics
import time
from pathlib import Path

SIZES = (
    ("1.7B", "voice_design", "full"),
    ("0.6B", "custom_voice", "0.6b"),
)


def checkpoint_for(cache_dir: Path, model_type: str, size: str) -> Path:
    from studio.engine.tiny import build_tiny_checkpoint

    if (model_type, size) == ("voice_design", "full"):
        from bench.__main__ import full_size_checkpoint

        return full_size_checkpoint(cache_dir)[0]  # the one the other full-size figures use
    folder = cache_dir / f"decode-{model_type}-{size}"
    if not (folder / "config.json").is_file():
        print(f"  building a {size} {model_type} checkpoint into {folder} (once)", flush=True)
        build_tiny_checkpoint(folder, model_type=model_type, seed=1, size=size)
    return folder


def memory_bandwidth(device: str) -> float:
    """Bytes per second of a large tensor copy (one read and one write per byte), best of five."""
    import torch

    source = torch.empty(256 * 2**20, dtype=torch.float32, device=device).fill_(1.0)  # 1 GiB
    target = torch.empty_like(source)
    best = float("inf")
    for _ in range(5):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        target.copy_(source)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * source.numel() * source.element_size() / best


def _bytes(module, *, int8: bool) -> int:
    import torch

    total = 0
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            total += sub.weight.numel() * (1 if int8 else sub.weight.element_size())
        elif isinstance(sub, torch.nn.modules.normalization.RMSNorm) or type(sub).__name__.endswith("RMSNorm"):
            total += sub.weight.numel() * sub.weight.element_size()
    return total


def bytes_per_frame(model, *, int8: bool) -> int:
    """Weights one frame reads: the talker's layers and head once, the predictor's layers and input
    projection 15 times, each of its 15 heads once (embeddings are single rows and do not count)."""
    talker = model.talker
    predictor = talker.code_predictor
    groups = talker.config.num_code_groups - 1
    talker_bytes = _bytes(talker.model.layers, int8=int8) + _bytes(talker.codec_head, int8=int8)
    predictor_pass = _bytes(predictor.model.layers, int8=int8) + _bytes(predictor.small_to_mtp_projection, int8=int8)
    return talker_bytes + groups * predictor_pass + _bytes(predictor.lm_head, int8=int8)


def int8_logit_change(synth, int8_synth, request) -> tuple[float, float]:
    """How far int8 weights move the talker's logits for a real prompt: the largest change relative to
    the largest float32 logit, and the share of the float32 probability mass on the top token that int8
    keeps there."""
    import torch

    from studio.engine.decoder_options import DecoderOptions
    from studio.engine.fast_decode import capture_talker_call
    from studio.engine.synth import SynthReport

    report = SynthReport()
    prompt, language, kwargs = synth._prepare(request, report, None)
    generate_kwargs, _ = synth.model_generate_kwargs(request, prompt, language, kwargs, report)
    call = capture_talker_call(synth.loaded.tts.model, generate_kwargs)
    logits = {}
    for owner, options in ((synth, DecoderOptions("fast")), (int8_synth, DecoderOptions("fast", int8=True))):
        decoder = owner.fast_decoder(options)
        with torch.inference_mode():
            hidden = decoder.talker_stack.forward(call.inputs_embeds, 0)
            logits[options.int8] = decoder.codec_head(hidden[:, -1]).float()
    exact, rough = logits[False], logits[True]
    relative = float((rough - exact).abs().max() / exact.abs().max())
    top = int(exact.argmax())
    kept = float(torch.softmax(rough, -1)[0, top] / torch.softmax(exact, -1)[0, top])
    return relative, kept


def bench_fast_decode(table, cache_dir: Path, *, device: str, frames: int | None, repeats: int,
                      sizes: tuple[str, ...] = ("1.7B", "0.6B")) -> None:
    bandwidth = memory_bandwidth("cuda" if device.startswith("cuda") else "cpu")
    print(f"  memory bandwidth (1 GiB copy): {bandwidth / 1e9:.1f} GB/s", flush=True)
    for label, model_type, size in SIZES:
        if label in sizes:
            _bench_size(table, cache_dir, label, model_type, size, device=device, frames=frames, repeats=repeats,
                        bandwidth=bandwidth)
            gc.collect()


def _bench_size(table, cache_dir: Path, label: str, model_type: str, size: str, *, device: str,  # noqa: C901
                frames: int | None, repeats: int, bandwidth: float) -> None:

    from bench.__main__ import device_name
    from studio.core.project import GenerationParams
    from studio.core.voice import VoiceSpec
    from studio.engine.decoder_options import DecoderOptions
    from studio.engine.loader import load_model
    from studio.engine.synth import Synthesizer, SynthRequest

    section_started = time.perf_counter()
    folder = checkpoint_for(cache_dir, model_type, size)
    loaded = load_model(str(folder), device=device)
    info = loaded.info
    on_cpu = info.device == "cpu"
    count = frames or (16 if on_cpu else 126)
    voice = VoiceSpec.design("An old storyteller with a warm, low voice") if model_type == "voice_design" \
        else VoiceSpec.preset("ryan")
    text = "The storm had been building over the valley since noon, and nobody wanted to go out."
    contenders = {"reference": DecoderOptions("reference"), "fast": DecoderOptions("fast"),
                  "fast compiled": DecoderOptions("fast", compile=True)}
    if on_cpu:
        contenders["fast int8"] = DecoderOptions("fast", int8=True)
    # One synthesizer per contender over the same loaded model: a synthesizer keeps one fast decoder (the
    # app uses one set of options at a time), and switching would rebuild (requantise, recompile) it.
    synths = {name: Synthesizer(loaded) for name in contenders}
    build: dict[str, str] = {}
    for name, options in contenders.items():
        if options.fast:
            started = time.perf_counter()
            decoder = synths[name].fast_decoder(options, progress=lambda m, name=name: print(f"  {label} {name}: {m}",
                                                                                      flush=True))
            build[name] = f"{time.perf_counter() - started:.0f} s"
            if options.compile:
                build[name] += f" ({decoder.compile_status})"

    def request(n: int, seed: int) -> SynthRequest:
        return SynthRequest(text, voice, seed=seed, generation=GenerationParams(max_new_tokens=n + 1))

    def codes_run(name: str, options) -> tuple[float, float]:
        """Seconds to the first frame (the prompt's prefill and one frame) and per frame after it. Random
        weights sample end-of-speech now and then; a run that ends early is retried with the next seed."""
        for seed in range(1, 9):
            stamps = [time.perf_counter()]
            for _ in synths[name].generate_codes(request(count, seed), decoder=options):
                stamps.append(time.perf_counter())
            if len(stamps) - 1 >= count - 1:
                return stamps[1] - stamps[0], (stamps[-1] - stamps[1]) / (len(stamps) - 2)
        raise RuntimeError(f"{options.describe()}: every seed ended speech early")

    def stream_run(name: str, options) -> tuple[float, float]:
        """Seconds to the first audio and the real-time factor, streaming as the app does."""
        for seed in range(1, 9):
            started = time.perf_counter()
            first = None
            samples = 0
            for chunk in synths[name].stream(request(count, seed), decoder=options):
                if first is None:
                    first = time.perf_counter() - started
                samples += len(chunk.samples)
            if samples >= (count - 1) * 1920:
                return first, (time.perf_counter() - started) / (samples / info.sample_rate)
        raise RuntimeError(f"{options.describe()}: every seed ended speech early")

    per_frame: dict[str, list[float]] = {name: [] for name in contenders}
    first_frame: dict[str, list[float]] = {name: [] for name in contenders}
    first_audio: dict[str, list[float]] = {name: [] for name in contenders}
    rtf: dict[str, list[float]] = {name: [] for name in contenders}
    for name, options in contenders.items():  # warm-up: allocator, kernels, the compiled graphs' sampling
        list(synths[name].generate_codes(request(3, 1), decoder=options))
        list(synths[name].stream(request(5, 1), decoder=options))
    for round_ in range(repeats):
        for name, options in contenders.items():
            prefill, frame = codes_run(name, options)
            first_frame[name].append(prefill)
            per_frame[name].append(frame)
            first, factor = stream_run(name, options)
            first_audio[name].append(first)
            rtf[name].append(factor)
        print(f"  {label} round {round_ + 1}/{repeats}: " + ", ".join(
            f"{n} {per_frame[n][-1] * 1000:.0f} ms/frame" for n in contenders), flush=True)
    median = {name: statistics.median(values) for name, values in per_frame.items()}
    reference = median["reference"]
    floor = {int8: bytes_per_frame(loaded.tts.model, int8=int8) / bandwidth for int8 in (False, True)}
    where = f"{device_name(info.device)}, {info.dtype}"
    runs = f"median of {repeats}" if repeats > 1 else "one run"
    for name, options in contenders.items():
        floor_s = floor[options.int8]
        detail = (f"{median[name] * 1000:.0f} ms per frame ({runs}, {count} frames; the first frame, with "
                  f"the prompt, after {statistics.median(first_frame[name]) * 1000:.0f} ms); "
                  f"first audio {statistics.median(first_audio[name]) * 1000:.0f} ms, "
                  f"RTF {statistics.median(rtf[name]):.2f} streaming; {median[name] / floor_s:.1f}x the floor")
        if name in build:
            detail += f"; built in {build[name]}"
        if on_cpu:
            target = {"fast compiled": ">= 1.3x", "fast int8": ">= 2.5x"}.get(name, "")
        else:
            target = "RTF <= 0.25, first audio <= 200 ms" if name == "fast compiled" and label == "1.7B" else ""
        table.add(f"decode {label} on {where}: {name} (speed-up over reference)",
                  f"{reference / median[name]:.2f}x", detail, target)
    floor_note = (f"{bytes_per_frame(loaded.tts.model, int8=False) / 1e9:.2f} GB per frame in "
                  f"{info.dtype} = {floor[False] * 1000:.0f} ms")
    if on_cpu:
        floor_note += (f"; int8: {bytes_per_frame(loaded.tts.model, int8=True) / 1e9:.2f} GB = "
                       f"{floor[True] * 1000:.0f} ms")
    table.add(f"decode {label}: memory floor per frame", f"{floor[False] * 1000:.0f} ms",
              f"{floor_note}, at {bandwidth / 1e9:.1f} GB/s (1 GiB copy, read + write)")
    if on_cpu:
        relative, kept = int8_logit_change(synths["fast"], synths["fast int8"], request(count, 1))
        table.add(f"decode {label}: int8 logits against float32", f"{relative:.2%}",
                  f"largest change of a talker logit, relative to the largest logit, on the prompt's last "
                  f"position; int8 keeps {kept:.1%} of float32's probability on its top token")
    print(f"  {label}: section took {time.perf_counter() - section_started:.0f} s", flush=True)
