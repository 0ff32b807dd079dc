"""Fine-tune a Qwen3-TTS Base checkpoint on one speaker and export it as a CustomVoice checkpoint.

Usage::

    python -m training.sft --config RUN_DIR/run.json [--export-only]
    accelerate launch --num_processes N -m training.sft --config RUN_DIR/run.json

The folder holding ``run.json`` is the run folder: ``training.validate`` and ``training.prepare`` have
filled it with ``prepared.jsonl``, ``codes/`` and the 24 kHz audio. Everything this command writes goes
under the output folder (``output_dir``, default the run folder itself):

- ``checkpoints/step-NNNNNN/``: talker weights, AdamW moments and RNG states in safetensors, step,
  schedule and optimizer settings in ``state.json`` (training.checkpoint_state; never a pickle); written
  every ``checkpoint_every`` steps, on a stop request and at the end, the ``keep_checkpoints`` newest
  kept. A rerun resumes from the newest one by itself; when that one is damaged (truncated, missing a
  file, bad JSON) it says so in a ``warning`` and resumes from the next older one, or from the start.
- ``speaker_embedding.safetensors``: the target speaker embedding (see below), computed once per run.
- ``samples/epoch-NNN.wav``: ``sample_text`` spoken as the new speaker with the weights at the end of
  epoch NNN (and at the last step when ``max_steps`` ends training inside an epoch).
- ``tensorboard/`` (TensorBoard scalars, when the tensorboard package is installed) and ``metrics.csv``
  (the same numbers, one row per step, always).
- ``export/<speaker>/``: the CustomVoice checkpoint (training.export), written when training ends and
  by ``--export-only`` (from the newest checkpoint, without loading the model).

``run.json`` (an object; only ``base_model`` and ``speaker`` are required)::

    base_model             checkpoint folder or hub id of a Qwen3-TTS 12Hz *Base* model
    speaker                the new speaker's name: lower-case letters, digits, "_" and "-"
    epochs                 3
    learning_rate          1e-7 (see DEFAULT_LEARNING_RATE for why this low)
    lr_schedule            "cosine" | "linear": decay after the warm-up, never reaching 0
    warmup_steps           null = 5 % of the optimizer steps (at most 100)
    batch_size             2 items per micro-batch (per process)
    gradient_accumulation  4 micro-batches per optimizer step
    max_grad_norm          1.0 (gradients are clipped to this global norm)
    weight_decay           0.01 (AdamW; not applied to biases and norm scales)
    precision              "auto" (bf16 autocast on CUDA with bf16 support, else fp32) | "bf16" | "fp32"
    device                 "auto" | "cpu" | "cuda"
    seed                   0 (data order, initialisation of anything random, sample generation)
    checkpoint_every       100 optimizer steps
    keep_checkpoints       2 newest checkpoints kept (each holds the fp32 talker weights and the AdamW
                           moments, 4 + 8 bytes per weight: roughly 20 GB for 1.7B, 7 GB for 0.6B)
    sample_every_epoch     true
    sample_text            the sentence each sample speaks
    sample_max_new_tokens  null = a cap derived from the sample text's length
    language               "auto" or one of the base model's languages: the language tag trained into
                           the prompt; render with the same language (auto: the published recipe's)
    max_steps              null, or a cap on the optimizer steps (short trial runs, tests)
    freeze_text_embedding  true: the 151936-row text embedding stays as it is (see _trainable)
    gradient_checkpointing false: true recomputes activations in the backward pass (slower, much less memory)
    cpu_threads            null = all cores (CPU runs only)
    output_dir             null = the run folder; relative paths are taken from the run folder

Events (training.protocol): ``start`` (``total`` optimizer steps, ``resumed_from`` step or null,
``steps_per_epoch``, ``items``, ``device``, ``precision``, ``processes``, ...), one ``step`` per optimizer step
(``loss``, ``talker_loss``, ``code_predictor_loss``, ``lr``, ``grad_norm``, ``steps_per_s``, ``eta_s``,
``peak_mem_gb``, ``epoch``, ``epochs``), ``checkpoint`` with ``kind`` "state" (a checkpoint folder),
"sample" (an epoch's WAV) or "export" (the exported checkpoint), ``warning``, and ``done`` (``step``,
``export``, ``speaker``, ``samples``, ``checkpoint``; on a stop request ``stopped: true``, exit code 3).
Bad input, a missing or damaged prepared file, a missing base model, running out of memory and a full
disk while saving a checkpoint give an ``error`` event with a hint and exit code 2.

Several GPUs: every process runs this same code; each takes its share of each epoch's batches,
DistributedDataParallel averages the gradients, and only the main process writes events and files
(each process's RNG states reach it over the process group); every process reads the checkpoint it
resumes from. Run for real in the tests with two CPU processes (gloo) under the launcher command the
wizard builds (``accelerate launch --multi_gpu``): losses and weights match one process with the same
global batch. Not tried on several GPUs. training.distributed refuses launches the machine cannot run
(more processes than GPUs, a missing backend). On a stop request every process exits with 3, which the
launcher reports as its own failure (exit 1): the ``done`` event with ``stopped: true`` is what tells a
stop from a crash.

Modules: training.config (run.json), training.run_folder (the folder's layout), training.data (inputs and
batches), training.loss, training.optim, training.speaker (embedding and samples), training.metrics,
training.checkpoint_state, training.run_export and training.trainer (the loop); this one is the command.

The loss is the published recipe's: the talker's cross-entropy on the first codebook plus 0.3 times
the code predictor's cross-entropy on codebooks 2..16, with the label shift done exactly once and
explicitly (``build_batch`` places each label at the position whose output predicts it; the package's
own loss helpers shift again, which is the published script's off-by-one).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from studio.core.cli_args import ArgumentError, OneLineArgumentParser
from training.checkpoint_state import NO_SPACE
from training.config import load_config
from training.data import load_prepared, resolve_base
from training.protocol import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    CommandError,
    Emitter,
    clear_stop,
    report_error,
    setup_logging,
    stop_requested,
)
from training.run_export import export_only
from training.run_folder import RunFolder
from training.trainer import OOM_HINT, Stopped, Trainer, is_oom

log = logging.getLogger("training.sft")

PROG = "training.sft"


def _is_main_process() -> bool:
    # Known before accelerate starts: `accelerate launch` and torchrun set RANK for every process.
    return os.environ.get("RANK", "0") == "0"


def main(argv: Sequence[str] | None = None) -> int:
    main_process = _is_main_process()
    emitter = Emitter.for_process(enabled=main_process)
    setup_logging()
    # Five INFO lines per checkpoint from accelerate drown the log view; ours says it in one.
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    if not main_process:
        logging.getLogger().setLevel(logging.WARNING)
    parser = OneLineArgumentParser(
        prog=f"python -m {PROG}",
        description="Fine-tune a Qwen3-TTS Base checkpoint on a prepared run and export a CustomVoice speaker.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, type=Path, metavar="RUN_DIR/run.json", help="run settings")
    parser.add_argument("--export-only", action="store_true", help="export the newest checkpoint, do not train")
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        return report_error(emitter, PROG, CommandError(str(exc), hint=f"see python -m {PROG} --help"))
    config_path: Path = args.config
    run_dir = config_path.parent
    try:
        # Cheap checks first, before torch is imported, so a typo fails in a fraction of a second.
        config = load_config(config_path)
        paths = RunFolder.for_config(config_path, config)
        base = resolve_base(config, config_path)
        if args.export_only:
            summary = export_only(config, paths, base, emitter)
        else:
            load_prepared(run_dir, base)
            trainer = Trainer(config, paths, base, emitter, should_stop=lambda: stop_requested(run_dir))
            summary = trainer.run()
    except CommandError as exc:
        if not main_process:
            return EXIT_BAD_INPUT
        # A stop request is answered by this run ending: left in place (say the save it asked for hit
        # a full disk), it would stop the resumed run before its first step.
        clear_stop(run_dir)
        return report_error(emitter, PROG, exc)
    except Stopped as stop:
        if main_process:
            clear_stop(run_dir)
        emitter.done(**stop.summary)
        log.info("stopped on request at step %s; rerun the same command to continue", stop.summary.get("step"))
        return EXIT_STOPPED
    except KeyboardInterrupt:
        emitter.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: say so on the protocol, keep the traceback in the log
        if is_oom(exc):
            return report_error(emitter, PROG, CommandError(f"out of memory ({type(exc).__name__})", hint=OOM_HINT))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            # A full disk outside a checkpoint save (metrics, samples) is the user's to fix too, not a bug.
            full = f"no space left on device writing {exc.filename or 'a file'}; free space and resume"
            if main_process:
                clear_stop(run_dir)
            return report_error(emitter, PROG, CommandError(full))
        log.exception("sft failed")
        emitter.error(f"internal error: {type(exc).__name__}: {exc}", hint="please report this with the log")
        return EXIT_INTERNAL
    # A stop request that arrived after the last step check is moot now; left in place it would stop
    # whatever command runs in this folder next.
    if not args.export_only:
        clear_stop(run_dir)
    emitter.done(**summary)
    _leave_process_group()
    return EXIT_OK


def _leave_process_group() -> None:
    """End this process's part in the process group once the run is done. Left to interpreter exit, a
    gloo thread still joinable can abort the process ("terminate called without an active exception",
    SIGABRT), which the launcher then reports as a failed run although training had finished. Only on
    success: every process got here, so none waits on another that died."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
