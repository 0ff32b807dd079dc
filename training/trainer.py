"""The training loop of ``python -m training.sft``: setup, optimizer steps, checkpoints, stop and export.

Several GPUs: every process runs this same code; each takes its share of each epoch's batches,
DistributedDataParallel averages the gradients, and only the main process writes events and files
(each process's RNG states reach it over the process group); every process reads the checkpoint it
resumes from.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.checkpoint_state import (
    CheckpointDamaged,
    Manifest,
    clean_staging,
    commit,
    describe_save_error,
    gather_rng,
    load_checkpoint,
    read_manifest,
    retire,
    write_checkpoint,
)
from training.config import RESUME_FIELDS, SFTConfig
from training.data import (
    BaseModel,
    PreparedItem,
    PromptTokens,
    build_batch,
    epoch_batches,
    load_prepared,
    tokenize_text,
)
from training.distributed import Machine, check_processes, cpu_threads_per_process, launched_processes
from training.loss import sft_module
from training.metrics import MetricsLog, peak_memory_gb
from training.optim import lr_factor, parameter_groups, warmup_steps_for
from training.protocol import CommandError, Emitter, Eta
from training.run_export import export_from_checkpoint
from training.run_folder import RunFolder
from training.speaker import generate_sample, load_or_compute_embedding, speaker_clips

if TYPE_CHECKING:
    import torch

log = logging.getLogger("training.sft")

# Non-finite gradients this many steps in a row mean the run has diverged, not hit one bad batch.
MAX_BAD_STEPS = 5
OOM_HINT = (
    "lower batch_size (raise gradient_accumulation to keep the effective batch), set gradient_checkpointing "
    "to true, or use the 0.6B base model"
)


class Stopped(Exception):
    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__("stopped on request")
        self.summary = summary


def is_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@dataclass
class Trainer:
    config: SFTConfig
    paths: RunFolder
    base: BaseModel
    emitter: Emitter
    should_stop: Callable[[], bool]

    def run(self) -> dict[str, Any]:
        """Train to the last step (or a stop request: Stopped), save, export; returns the done summary."""
        self._start_processes()
        self.items = self._read_items()
        # A checkpoint the settings no longer fit is refused before minutes go into loading the model.
        resume = self._pick_checkpoint(len(self.items), self.world)
        self._build_model()
        self._build_optimizer()
        start_step = self._resume(resume)
        self._announce(start_step, resume)
        step, loss = self._train(start_step)
        if self.last_saved != step:
            self._save(step, (step - 1) // self.steps_per_epoch if step else 0)
        return self._finish(step, loss)

    # -- setup --------------------------------------------------------------------------------

    def _accelerator(self):
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        cfg = self.config
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise CommandError("field 'device': cuda was requested but CUDA is not available", hint="use auto or cpu")
        check_processes(launched_processes(), cfg.device, Machine.probe())
        cpu = cfg.device == "cpu" or not torch.cuda.is_available()
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if not cpu and torch.cuda.is_bf16_supported() else "fp32"
        if precision == "bf16" and cpu:
            raise CommandError("field 'precision': bf16 is for CUDA runs", hint="use auto or fp32 on the CPU")
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise CommandError("field 'precision': this GPU has no bf16 support", hint="use auto or fp32")
        self.precision = precision
        # gradient_accumulation_steps stays 1: accumulation is done by hand (no_sync + one optimizer step
        # per group), so the last, shorter group of an epoch is weighted by its own size.
        return Accelerator(
            mixed_precision="bf16" if precision == "bf16" else "no",
            cpu=cpu,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        )

    def _load_model(self, device: torch.device):
        import torch

        from studio.engine.loader import prepare_for_generation
        from studio.engine.qwen_import import import_qwen_tts

        qwen_tts = import_qwen_tts()
        logging.getLogger("qwen_tts").setLevel(logging.WARNING)
        try:
            # fp32 master weights on every device (bf16 lives in autocast); sdpa, never a hard-coded
            # flash_attention_2, which fails to load wherever flash-attn is not installed.
            tts = qwen_tts.Qwen3TTSModel.from_pretrained(
                str(self.base.folder), dtype=torch.float32, attn_implementation="sdpa", use_safetensors=True
            )
        except Exception as exc:  # noqa: BLE001 - transformers raises many types; the user needs one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"field 'base_model': {self.base.folder} failed to load ({type(exc).__name__}: {first[:200]})",
                hint="download the checkpoint again",
            ) from None
        tts.model.to(device)
        tts.device = device
        # Samples pass their own frame cap; the base's generation_config.json says 8192.
        prepare_for_generation(tts)
        tokenizer = tts.model.speech_tokenizer
        tokenizer.model.to(device)
        tokenizer.device = device
        return tts

    # -- main loop ----------------------------------------------------------------------------


    def _start_processes(self) -> None:
        from accelerate.utils import set_seed

        self.accelerator = self._accelerator()
        self.main = self.accelerator.is_main_process
        self.device = self.accelerator.device
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        if self.device.type == "cpu":
            from studio.engine.loader import set_cpu_threads

            set_cpu_threads(cpu_threads_per_process(self.config.cpu_threads, self.world))
        set_seed(self.config.seed)

    def _read_items(self) -> list[PreparedItem]:
        items = load_prepared(self.paths.run_dir, self.base)
        self._check_tokenizer(items)
        if self.main:
            for stale in clean_staging(self.paths.checkpoints):
                log.info("removed %s, left by an interrupted save", stale)
        return items

    def _build_model(self) -> None:
        """The base model loaded, the items tokenised, the speaker embedding ready, the talker wrapped."""
        cfg, paths, accelerator = self.config, self.paths, self.accelerator
        self.tts = tts = self._load_model(self.device)
        for item in self.items:
            item.text_ids = tokenize_text(tts.processor, item.text, self.base.config)
        self.tokens = PromptTokens.from_config(self.base.config, cfg.language)
        self.clips = clips = speaker_clips(self.items)
        if self.main:
            embedding, computed = load_or_compute_embedding(paths, self.base, tts.model, clips, save=True)
            if computed:
                log.info("speaker embedding averaged over %d clips", len(clips))
        accelerator.wait_for_everyone()
        if not self.main:
            embedding, _ = load_or_compute_embedding(paths, self.base, tts.model, clips, save=False)
        self.embedding = embedding
        # Only the talker trains; the speaker encoder has done its one job.
        tts.model.speaker_encoder = None
        self.talker = tts.model.talker
        if cfg.gradient_checkpointing:
            self.talker.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.module = sft_module(self.talker, embedding.to(self.device))

    def _build_optimizer(self) -> None:
        """The step counts, AdamW and its schedule, and the model wrapped for the process group."""
        import torch

        cfg = self.config
        batches_per_epoch = len(epoch_batches(len(self.items), cfg.batch_size, cfg.seed, 0, self.rank, self.world))
        self.steps_per_epoch = math.ceil(batches_per_epoch / cfg.gradient_accumulation)
        total = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        self.total = total
        self.warmup = warmup = warmup_steps_for(cfg, total)
        optimizer = torch.optim.AdamW(parameter_groups(self.talker, cfg), lr=cfg.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: lr_factor(e + 1, total, warmup, cfg.lr_schedule)
        )
        self.model, self.optimizer = self.accelerator.prepare(self.module, optimizer)
        # The scheduler is not prepared: accelerate would step it once per process per optimizer step.

    def _resume(self, resume: Manifest | None) -> int:
        """Load the checkpoint picked to resume from (if any); returns the step training continues after."""
        self.last_saved = None
        if resume is None:
            return 0
        module = self.accelerator.unwrap_model(self.model)
        load_checkpoint(
            resume,
            module=module,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            rank=self.rank,
            device=self.device,
        )
        log.info("resuming from %s (step %d)", resume.folder, resume.step)
        self.last_saved = resume.step
        return resume.step

    def _announce(self, start_step: int, resume: Manifest | None) -> None:
        cfg, paths = self.config, self.paths
        self.emitter.start(
            total=self.total,
            what="sft",
            run_dir=str(paths.run_dir.absolute()),
            output_dir=str(paths.output.absolute()),
            base_model=str(self.base.folder),
            speaker=cfg.speaker,
            items=len(self.items),
            speaker_clips=len(self.clips),
            epochs=cfg.epochs,
            steps_per_epoch=self.steps_per_epoch,
            batch_size=cfg.batch_size,
            gradient_accumulation=cfg.gradient_accumulation,
            learning_rate=cfg.learning_rate,
            warmup_steps=self.warmup,
            device=str(self.device),
            precision=self.precision,
            processes=self.world,
            resumed_from=start_step if resume is not None else None,
            checkpoint=str(resume.folder) if resume is not None else None,
        )

    # -- main loop ----------------------------------------------------------------------------

    def _train(self, start_step: int) -> tuple[int, float | None]:
        """Optimizer steps from `start_step` to the last one; returns (last step, its loss)."""
        import torch

        cfg = self.config
        metrics_log = MetricsLog(self.paths, start_step, self.emitter.warning) if self.main else None
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        step, loss = start_step, None
        if cfg.sample_every_epoch and 0 < step and step % self.steps_per_epoch == 0:
            self._sample_if_missing(step // self.steps_per_epoch)
        progress = _Progress(Eta(self.total), start_step)
        try:
            while step < self.total:
                epoch = step // self.steps_per_epoch
                for group in self._epoch_groups(epoch)[step % self.steps_per_epoch :]:
                    self._check_stop(step, start_step, loss)
                    started = time.perf_counter()
                    metrics = self._train_group(group, step)
                    step += 1
                    loss = progress.record(step, metrics, time.perf_counter() - started)
                    metrics.update(peak_mem_gb=round(peak_memory_gb(self.device), 3), epoch=epoch + 1)
                    self.emitter.step(step, self.total, epochs=cfg.epochs, **metrics)
                    if metrics_log is not None:
                        metrics_log.log(step, metrics)
                    if step % cfg.checkpoint_every == 0 or step == self.total:
                        self._save(step, epoch)
                        if metrics_log is not None:
                            metrics_log.flush()
                    if step >= self.total:
                        break
                if cfg.sample_every_epoch and (step % self.steps_per_epoch == 0 or step == self.total):
                    self._sample(epoch + 1)
        finally:
            if metrics_log is not None:
                metrics_log.close()
        return step, loss

    def _epoch_groups(self, epoch: int) -> list[list[list[int]]]:
        """This process's batches of `epoch`, grouped by optimizer step."""
        cfg = self.config
        batches = epoch_batches(len(self.items), cfg.batch_size, cfg.seed, epoch, self.rank, self.world)
        n = cfg.gradient_accumulation
        return [batches[i : i + n] for i in range(0, len(batches), n)]

    def _check_stop(self, step: int, start_step: int, loss: float | None) -> None:
        """Raise Stopped when a stop was requested: the main process decides for all of them."""
        from accelerate.utils import broadcast_object_list

        flag = [bool(self.main and self.should_stop())]
        if self.world > 1:
            broadcast_object_list(flag)
        if flag[0]:
            raise Stopped(self._stop(step, start_step, loss))

    def _finish(self, step: int, loss: float | None) -> dict[str, Any]:
        """Export the last checkpoint (main process) and return the summary of the done event."""
        cfg = self.config
        summary = {
            "step": step,
            "total": self.total,
            "loss": loss,
            "speaker": cfg.speaker,
            "samples": self._all_samples(),
            "checkpoint": str(self._checkpoint_dir(step)),
        }
        if self.main:
            result = export_from_checkpoint(cfg, self.paths, self.base, self._checkpoint_dir(step), self.embedding)
            self.emitter.checkpoint(result.folder, step=step, kind="export", speaker=cfg.speaker, slot=result.slot)
            summary.update(export=str(result.folder), slot=result.slot)
        self.accelerator.wait_for_everyone()
        return summary

    def _check_tokenizer(self, items: Sequence[PreparedItem]) -> None:
        from studio.engine.loader import checkpoint_fingerprint

        tokenizer_dir = self.base.folder / "speech_tokenizer"
        fingerprint = checkpoint_fingerprint(tokenizer_dir, self.paths.fingerprints)
        foreign = sum(1 for item in items if item.tokenizer and item.tokenizer != fingerprint)
        if foreign:
            self.emitter.warning(
                f"{foreign} of {len(items)} items were encoded by another speech tokenizer than {tokenizer_dir}; "
                "if it is not a copy of the same tokenizer, prepare the run with the base model"
            )

    def _pick_checkpoint(self, n_items: int, world: int) -> Manifest | None:
        """The newest checkpoint whose files are whole, checked against run.json; None to start afresh.

        The main process decides (warning about each damaged one it passes over) and tells the others,
        so that every process resumes from the same step.
        """
        from accelerate.utils import broadcast_object_list

        main, folder = self.accelerator.is_main_process, self.paths.checkpoints
        damaged: list[Path] = []
        pick: Path | None = None
        if main:
            for _, candidate in reversed(self.paths.list_checkpoints()):
                try:
                    read_manifest(candidate)
                except CheckpointDamaged as exc:
                    self.emitter.warning(f"checkpoint {candidate.name} is damaged: {exc}", item=str(exc.path))
                    damaged.append(candidate)
                    continue
                except CommandError:
                    pass  # refused below, by every process alike
                pick = candidate
                break
        if world > 1:
            box = [str(pick) if pick is not None else None]
            broadcast_object_list(box)
            pick = Path(box[0]) if box[0] is not None else None
        if damaged:
            if pick is not None:
                self.emitter.warning(f"resuming from the older checkpoint {pick.name} instead")
            else:
                self.emitter.warning(f"no usable checkpoint left in {folder}: training starts from the beginning")
        if pick is None:
            manifest = None
        else:
            try:
                manifest = read_manifest(pick)
            except CheckpointDamaged as exc:  # another process found it whole a moment ago
                raise CommandError(str(exc), hint=f"delete {pick} to resume from an older checkpoint") from None
            self._check_resume(manifest.state, pick, n_items, world)
        # The run now retrains the steps past the one it resumes; a damaged folder left in their place
        # would count as one of the keep_checkpoints newest and push a good one out.
        for old in damaged:
            retire(old)
            log.info("removed the damaged checkpoint %s", old)
        return manifest

    def _check_resume(self, state: dict[str, Any], folder: Path, n_items: int, world: int) -> None:
        saved = state.get("config") or {}
        current = self.config.to_json()
        for name in RESUME_FIELDS:
            if name in saved and saved[name] != current[name]:
                was, now = json.dumps(saved[name]), json.dumps(current[name])
                raise CommandError(
                    f"{folder} was made with {name} {was}, run.json now says {now}",
                    hint=f"restore {name}, or delete {folder.parent} to start over",
                )
        for name, now in (("items", n_items), ("processes", world)):
            if state.get(name, now) != now:
                raise CommandError(
                    f"{folder} was made with {state[name]} {name}, this run has {now}",
                    hint=f"resume with the same data and number of processes, or delete {folder.parent} to start over",
                )

    def _train_group(self, group: list[list[int]], step: int) -> dict[str, Any]:
        import torch

        accelerator, model = self.accelerator, self.model
        model.train()
        sums = torch.zeros(3, device=accelerator.device)
        try:
            for j, indices in enumerate(group):
                batch = build_batch([(self.items[i].text_ids, self.items[i].codes) for i in indices], self.tokens)
                batch = {k: v.to(accelerator.device, non_blocking=True) for k, v in batch.items()}
                # Gradients are all-reduced once per optimizer step, on the group's last micro-batch.
                sync = j == len(group) - 1
                with nullcontext() if sync else accelerator.no_sync(model):
                    out = model(batch)
                    accelerator.backward(out["loss"] / len(group))
                sums += torch.stack([out["loss"], out["talker_loss"], out["code_predictor_loss"]]).detach().float()
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)
        except Exception as exc:
            if is_oom(exc):
                raise CommandError(
                    f"out of memory at step {step + 1} (batch_size {self.config.batch_size}) on {accelerator.device}",
                    hint=OOM_HINT,
                ) from None
            raise
        grad_norm = float(grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        skipped = not math.isfinite(grad_norm)
        if skipped:
            # One bad batch must not write NaN into every weight; the step still counts so that the
            # data position and the schedule stay where a clean run would have them.
            self.emitter.warning(f"non-finite gradients at step {step + 1}; the update was skipped")
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        means = accelerator.reduce(sums / len(group), reduction="mean").tolist()
        return {
            "loss": means[0],
            "talker_loss": means[1],
            "code_predictor_loss": means[2],
            "lr": lr,
            "grad_norm": grad_norm,
            "skipped": skipped,
        }

    # -- checkpoints, stop, samples -----------------------------------------------------------

    def _checkpoint_dir(self, step: int) -> Path:
        return self.paths.checkpoint(step)

    def _save(self, step: int, epoch: int) -> None:
        from accelerate.utils import broadcast_object_list

        accelerator, paths, main = self.accelerator, self.paths, self.accelerator.is_main_process
        final = self._checkpoint_dir(step)
        rng = gather_rng(accelerator)  # every process's, for the main process to write
        failure: list[Any] = [None]
        if main:
            staging = paths.checkpoint_staging(step)
            info = {
                "step": step,
                "epoch": epoch + 1,
                "total": self.total,
                "steps_per_epoch": self.steps_per_epoch,
                "items": len(self.items),
                "processes": accelerator.num_processes,
                "config": self.config.to_json(),
                "saved_at": time.time(),
            }
            try:
                shutil.rmtree(staging, ignore_errors=True)
                paths.checkpoints.mkdir(parents=True, exist_ok=True)
                write_checkpoint(
                    staging,
                    info=info,
                    model_state=accelerator.unwrap_model(self.model).state_dict(),
                    optimizer_state=self.optimizer.state_dict(),
                    scheduler_state=self.scheduler.state_dict(),
                    rng=rng,
                )
                commit(staging, final)
            except OSError as exc:
                # Nothing half-written may stay behind to be taken for a checkpoint later.
                shutil.rmtree(staging, ignore_errors=True)
                error = describe_save_error(exc, final)
                failure = [(error.message, error.hint)]
            else:
                for _, old in paths.list_checkpoints()[: -self.config.keep_checkpoints]:
                    retire(old)
                log.info("saved %s", final)
                self.emitter.checkpoint(final, step=step, kind="state")
        if accelerator.num_processes > 1:
            broadcast_object_list(failure)
        if failure[0] is not None:
            message, hint = failure[0]
            raise CommandError(message, hint=hint)
        self.last_saved = step

    def _stop(self, step: int, start_step: int, loss: float | None) -> dict[str, Any]:
        if step > start_step and self.last_saved != step:
            self._save(step, (step - 1) // self.steps_per_epoch)
        latest = self.paths.list_checkpoints()
        return {
            "stopped": True,
            "step": step,
            "total": self.total,
            "loss": loss,
            "samples": self._all_samples(),
            "checkpoint": str(latest[-1][1]) if latest else None,
        }

    def _all_samples(self) -> list[str]:
        # Earlier runs of a resumed training wrote the first epochs' samples; the wizard wants them all.
        return [str(p) for p in self.paths.list_samples()]

    def _sample_if_missing(self, epoch: int) -> None:
        if not self.paths.sample(epoch).is_file():
            self._sample(epoch)

    def _sample(self, epoch: int) -> None:
        accelerator = self.accelerator
        if accelerator.is_main_process:
            path = self.paths.sample(epoch)
            seconds = generate_sample(
                self.tts,
                self.embedding,
                self.config,
                path,
                seed=self.config.seed,
            )
            self.emitter.checkpoint(path, step=None, kind="sample", epoch=epoch, seconds=round(seconds, 3))
        accelerator.wait_for_everyone()



class _Progress:
    """Per-step bookkeeping of the loop: speed, ETA and the run of non-finite steps (divergence)."""

    def __init__(self, eta: Eta, start_step: int) -> None:
        self.eta, self.start_step = eta, start_step
        self.seconds = 0.0
        self.bad_steps = 0

    def record(self, step: int, metrics: dict[str, Any], seconds: float) -> float:
        """Fold one finished step into `metrics` (speed, ETA); returns its loss."""
        self.seconds += seconds
        self.bad_steps = self.bad_steps + 1 if metrics.pop("skipped") else 0
        if self.bad_steps >= MAX_BAD_STEPS:
            raise CommandError(
                f"training diverged: non-finite gradients for {self.bad_steps} steps in a row (step {step})",
                hint="lower learning_rate, or resume from an earlier checkpoint",
            )
        metrics.update(
            steps_per_s=round((step - self.start_step) / self.seconds, 4) if self.seconds else None,
            eta_s=self.eta(step, baseline=self.start_step),
        )
        return metrics["loss"]
