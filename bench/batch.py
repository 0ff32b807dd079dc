"""Batched decoding against one segment at a time, at a published size, side by side in one run.

    python -m bench.batch [--device cuda] [--size full|0.6b|tiny] [--segments 8] [--frames 12] [--batches 2,4,8]

The talker is Qwen3-TTS's own model at the size's published dimensions with random weights, built on the
device (as in bench/decode_loop.py; no checkpoint is written). Every segment is a synthetic talker call
(random prompt embeddings, end of speech held off, so each makes exactly --frames frames) with its own
seed. Timed, in one process and in this order: the fast decoder one segment after another (what a render
does with --batch 1), then the batched decoder at each batch size, whose aggregate frames per second is
compared with the sequential one. Every batched run's codes are checked against the batched decoder
rendering each segment alone: the identity tests/engine/test_batch_decode.py asserts on tiny
checkpoints, here at full size. Codes only: prompt building and the audio decoder are per segment in
both and left out.
"""

from __future__ import annotations

import argparse
import sys
import time


def _calls(model, count: int, frames: int):
    import dataclasses

    import torch

    from bench.decode_loop import synthetic_call

    base = synthetic_call(model, frames)
    calls = []
    for n in range(count):  # each segment its own prompt: the base prompt's embeddings rolled along
        calls.append(dataclasses.replace(base, inputs_embeds=torch.roll(base.inputs_embeds, n, dims=1)))
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="full", choices=("full", "0.6b", "tiny"))
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--frames", type=int, default=12, help="frames per segment (default: 12)")
    parser.add_argument("--batches", default="2,4,8", help="batch sizes to time (default: 2,4,8)")
    args = parser.parse_args(argv)
    import torch

    from bench.__main__ import machine_description
    from bench.decode_loop import build_talker
    from studio.engine.batch_decode import BatchDecoder, BatchJob
    from studio.engine.decoder_options import DecoderOptions
    from studio.engine.fast_decode import FastDecoder

    print(f"machine: {machine_description()}", flush=True)
    started = time.perf_counter()
    model = build_talker(args.size, args.device)
    print(f"talker built on {args.device} in {time.perf_counter() - started:.0f} s", flush=True)
    calls = _calls(model, args.segments, args.frames)
    seeds = [1000 + n for n in range(args.segments)]
    total_frames = args.segments * args.frames

    fast = FastDecoder(model, DecoderOptions("fast"))
    list(fast.frames(calls[0]))  # warm-up
    started = time.perf_counter()
    for call, seed in zip(calls, seeds, strict=True):
        torch.manual_seed(seed)
        frames = list(fast.frames(call))
        assert len(frames) == args.frames
    sequential = time.perf_counter() - started
    print(f"  sequential (fast decoder, one segment at a time): {sequential:.1f} s", flush=True)

    batched = BatchDecoder(model)

    def run(batch: int, indices) -> tuple[float, dict]:
        jobs = [BatchJob(n, calls[n], seeds[n]) for n in indices]
        started = time.perf_counter()
        out = {job.key: frames for job, frames in batched.run(jobs, batch=batch)}
        return time.perf_counter() - started, out

    alone_seconds, alone = 0.0, {}
    for n in range(args.segments):
        seconds, out = run(1, [n])
        alone_seconds += seconds
        alone.update(out)
    print(f"  batched decoder, each segment alone: {alone_seconds:.1f} s", flush=True)
    rows = [("sequential (fast decoder)", sequential, None), ("batched decoder, batch 1", alone_seconds, True)]
    for batch in (int(b) for b in args.batches.split(",")):
        seconds, out = run(batch, range(args.segments))
        identical = all(torch.equal(torch.stack(out[n]), torch.stack(alone[n])) for n in range(args.segments))
        print(f"  batch {batch}: {seconds:.1f} s, codes identical to alone: {identical}", flush=True)
        rows.append((f"batched decoder, batch {batch}", seconds, identical))

    print(f"\n{args.segments} segments x {args.frames} frames, {args.size} size on {args.device}, "
          f"{next(model.parameters()).dtype}:")
    print("| run | seconds | frames/s | throughput vs sequential | each segment as alone |")
    print("|---|---|---|---|---|")
    for name, seconds, identical in rows:
        same = "" if identical is None else ("yes" if identical else "NO")
        print(f"| {name} | {seconds:.1f} | {total_frames / seconds:.2f} | {sequential / seconds:.2f}x | {same} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
