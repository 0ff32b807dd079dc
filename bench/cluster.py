"""One project rendered three ways, side by side in one run: one segment at a time, batched, and on Ray.

    python -m bench.cluster [--checkpoint DIR] [--lines 8] [--frames 12] [--workers 2] [--worker-threads 1]

The whole render path (prompts, decoding, audio) through studio.session: `run_job` with --batch 1 (the
streaming fast decoder), `run_job` with --batch auto (the batched decoder), and `run_job_on_cluster` on a
Ray started in this process with --workers actors of --worker-threads torch threads each (timed with
their start and model load: a cluster render starts its workers). No render cache. The checkpoint
defaults to the 0.6B CustomVoice one `python -m bench --full-size` builds into its cache folder (2.4 GB:
two workers and the driver each load it), else a tiny one is built. Each run's audio is compared with the batched run's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CHECKPOINT = Path(tempfile.gettempdir()) / "qtts-bench-cache" / "decode-custom_voice-0.6b"


def _checkpoint(given: Path | None) -> Path:
    if given is not None:
        return given
    if (DEFAULT_CHECKPOINT / "config.json").is_file():
        return DEFAULT_CHECKPOINT
    from studio.engine.tiny import build_tiny_checkpoint

    folder = Path(tempfile.mkdtemp(prefix="qtts-bench-cluster-")) / "tiny-custom_voice"
    build_tiny_checkpoint(folder, model_type="custom_voice", seed=0)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--lines", type=int, default=8)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the local runs")
    args = parser.parse_args(argv)
    import json

    import numpy as np
    import ray

    from bench.__main__ import machine_description
    from studio.core.plan import plan_segments
    from studio.core.project import GenerationParams
    from studio.core.tags import parse_script
    from studio.core.voice import VoiceSpec
    from studio.session.cluster import ClusterOptions, run_job_on_cluster
    from studio.session.pipeline import RenderJob, run_job
    from studio.session.residency import ModelResidency

    checkpoint = _checkpoint(args.checkpoint)
    speaker = next(iter(json.loads((checkpoint / "config.json").read_text())["talker_config"]["spk_id"]))
    print(f"machine: {machine_description()}\ncheckpoint: {checkpoint} (speaker {speaker})", flush=True)
    script = "".join(f"Line {n}: the lighthouse keeper climbed the stairs one more time.\n"
                     for n in range(1, args.lines + 1))
    voice = VoiceSpec("preset", speaker=speaker, model=str(checkpoint))

    def job(batch: int) -> RenderJob:
        return RenderJob(job_id=1, segments=plan_segments(parse_script(script)), voices={None: voice},
                         models={None: str(checkpoint)}, cache_dir=None,
                         generation=GenerationParams(max_new_tokens=args.frames + 1), batch=batch)

    residency = ModelResidency(device="cpu", cpu_threads=args.threads)
    started = time.perf_counter()
    run_job(job(1), residency)  # the model loaded, and one warm-up render
    print(f"  model loaded and warmed up in {time.perf_counter() - started:.0f} s", flush=True)
    runs = {}
    for name, batch in (("one at a time (--batch 1)", 1), ("batched (--batch auto)", 0)):
        started = time.perf_counter()
        outcome = run_job(job(batch), residency)
        runs[name] = (time.perf_counter() - started, outcome)
        print(f"  {name}: {runs[name][0]:.1f} s", flush=True)
    residency.clear()

    ray.init(num_cpus=args.workers * args.worker_threads, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    options = ClusterOptions(workers=args.workers, cpu_threads=args.worker_threads, device="cpu")
    try:
        started = time.perf_counter()
        name = f"Ray, {args.workers} local workers x {args.worker_threads} thread(s), start included"
        outcome = run_job_on_cluster(job(0), options)
        runs[name] = (time.perf_counter() - started, outcome)
        print(f"  {name}: {runs[name][0]:.1f} s", flush=True)
    finally:
        ray.shutdown()

    sequential = runs["one at a time (--batch 1)"][0]
    batched = runs["batched (--batch auto)"][1]
    frames = args.lines * args.frames
    print(f"\n{args.lines} lines x {args.frames} frames, {checkpoint.name}, local runs with {args.threads} threads:")
    print("| run | seconds | frames/s | throughput vs one at a time | audio = batched run's |")
    print("|---|---|---|---|---|")
    for name, (seconds, outcome) in runs.items():
        same = all(np.array_equal(a.samples, b.samples) for a, b in zip(outcome.results, batched.results, strict=True))
        print(f"| {name} | {seconds:.1f} | {frames / seconds:.2f} | {sequential / seconds:.2f}x | "
              f"{'yes' if same else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
