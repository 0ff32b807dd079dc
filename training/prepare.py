"""Encode a validated run's audio into 12 Hz speech-tokenizer codes.

Usage::

    python -m training.prepare RUN_DIR --tokenizer DIR_OR_ID [--batch-size N] [--device auto|cpu|cuda]

``--tokenizer`` is a Qwen3-TTS checkpoint folder (its ``speech_tokenizer/`` subfolder is used), a
speech-tokenizer folder, or a hub id of either. Reads ``RUN_DIR/validation.json`` (training.validate)
and encodes every usable item's prepared 24 kHz audio, in batches, to a (frames, 16) code matrix.

Written into the run folder:

- ``codes/<prepared audio stem>.safetensors``: one tensor ``codes``, int16 (the 12 Hz codebooks
  have 2048 entries, so int16 holds them at a quarter of int64's size; widen to int64 before
  embedding), shape (n_frames, num_quantizers). Its metadata records ``format``, the prepared audio's
  ``audio_sha256`` and the ``tokenizer`` fingerprint, so codes made from other audio or by another
  tokenizer are never mistaken for done work.
- ``prepared.jsonl``, written when every item is encoded (its presence means the step is complete):
  one line per item: ``audio`` (original), ``text``, ``codes`` (relative to the run folder),
  ``n_frames``, ``seconds``, ``prepared_audio``, ``ref_audio``, ``prepared_ref_audio``.

Resumable: an item whose code file exists and checks out is skipped on a rerun; a missing, unreadable
or stale one is encoded again. ``RUN_DIR/STOP`` stops between batches (exit 3). Events: ``start``
(with ``skipped`` and ``to_encode``), one ``progress`` per item (``done`` counts skipped items too),
``warning`` for each code file that had to be redone, ``done``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import atomic_write_bytes, atomic_write_text
from studio.core.cli_args import ArgumentError, OneLineArgumentParser
from studio.core.plan import SAMPLE_RATE
from training.protocol import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    CommandError,
    Emitter,
    Eta,
    clear_stop,
    report_error,
    setup_logging,
    stop_requested,
)
from training.run_folder import RunFolder

log = logging.getLogger("training.prepare")

PROG = "training.prepare"
CODES_FORMAT = "qwen3-tts-12hz-codes/1"
TOKENIZER_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
_VALIDATE_HINT = "run python -m training.validate DATASET --out RUN_DIR first"


@dataclass(frozen=True)
class TokenizerSpec:
    """What the resume check needs to know about the tokenizer, read from its config without loading it."""

    folder: Path
    fingerprint: str
    num_quantizers: int
    codebook_size: int
    samples_per_frame: int


@dataclass
class Item:
    audio: str
    text: str
    prepared_audio: Path
    audio_sha256: str
    codes: Path
    ref_audio: str | None
    prepared_ref_audio: str | None
    n_samples: int = 0

    def frames(self, spec: TokenizerSpec) -> int:
        return math.ceil(self.n_samples / spec.samples_per_frame)


class Stopped(Exception):
    def __init__(self, encoded: int, items: int) -> None:
        super().__init__(f"stopped with {encoded} of {items} items encoded")
        self.encoded = encoded
        self.items = items


def resolve_tokenizer(source: str, *, memo_file: Path | None = None) -> TokenizerSpec:
    """The speech tokenizer named by `source` (checkpoint or tokenizer folder, or hub id)."""
    from studio.engine.loader import EngineError, checkpoint_fingerprint, resolve_folder

    try:
        folder = resolve_folder(source, progress=log.info)
    except EngineError as exc:
        raise CommandError(
            str(exc), hint="pass a Qwen3-TTS checkpoint folder, its speech_tokenizer folder or a hub id"
        ) from None
    if (folder / "speech_tokenizer" / "config.json").is_file():
        folder = folder / "speech_tokenizer"
    missing = [name for name in TOKENIZER_FILES if not (folder / name).is_file()]
    if missing:
        raise CommandError(
            f"{folder}: not a speech tokenizer folder (missing {', '.join(missing)})",
            hint="pass a Qwen3-TTS checkpoint folder or its speech_tokenizer folder",
        )
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"{folder / 'config.json'}: unreadable ({exc})") from None
    if not isinstance(config, dict) or config.get("model_type") != "qwen3_tts_tokenizer_12hz":
        found = config.get("model_type") if isinstance(config, dict) else None
        raise CommandError(
            f"{folder / 'config.json'}: model_type is {found!r}, not the 12 Hz tokenizer (qwen3_tts_tokenizer_12hz)",
            hint="the studio fine-tunes 12Hz checkpoints only",
        )
    encoder = config.get("encoder_config") or {}
    if memo_file is not None:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
    return TokenizerSpec(
        folder=folder,
        fingerprint=checkpoint_fingerprint(folder, memo_file),
        num_quantizers=int(config.get("encoder_valid_num_quantizers", 16)),
        codebook_size=int(encoder.get("codebook_size", 2048)),
        samples_per_frame=int(config.get("encode_downsample_rate", 1920)),
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_items(run_dir: Path) -> list[Item]:
    """The usable items of RUN_DIR/validation.json; CommandError when there is nothing to do."""
    import soundfile as sf

    report_path = RunFolder.at(run_dir).report
    if not run_dir.is_dir():
        raise CommandError(f"{run_dir}: no such run folder", hint=_VALIDATE_HINT)
    if not report_path.is_file():
        raise CommandError(f"{report_path}: not found", hint=_VALIDATE_HINT)
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        rows = report["items"]
        if not isinstance(rows, list):
            raise TypeError("items is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"{report_path}: unreadable ({exc})", hint="run training.validate again") from None
    items = []
    stems: set[str] = set()
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row.get("usable"):
            continue
        prepared = row.get("prepared_audio")
        if not isinstance(prepared, str) or not isinstance(row.get("text"), str):
            raise CommandError(
                f"{report_path}: item {number} has no prepared_audio or text", hint="run training.validate again"
            )
        path = run_dir / prepared
        stem = Path(prepared).stem
        if stem in stems:
            raise CommandError(f"{report_path}: item {number} repeats {prepared}", hint="run training.validate again")
        stems.add(stem)
        try:
            info = sf.info(str(path))
        except Exception as exc:  # noqa: BLE001 - missing or damaged: either way the run folder is broken
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CommandError(
                f"{path}: prepared audio unreadable ({reason})", hint="run training.validate again"
            ) from None
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            raise CommandError(
                f"{path}: prepared audio is {info.samplerate} Hz with {info.channels} channels, not 24 kHz mono",
                hint="run training.validate again",
            )
        items.append(
            Item(
                audio=str(row.get("audio", "")),
                text=row["text"],
                prepared_audio=path,
                audio_sha256=str(row.get("prepared_sha256") or "") or _file_sha256(path),
                codes=RunFolder.at(run_dir).codes / f"{stem}.safetensors",
                ref_audio=row.get("ref_audio"),
                prepared_ref_audio=row.get("prepared_ref_audio"),
                n_samples=int(info.frames),
            )
        )
    if not items:
        raise CommandError(
            f"{report_path}: no usable items", hint="fix the problems validate reported, then validate again"
        )
    return items


def check_codes(item: Item, spec: TokenizerSpec) -> str | None:
    """None when `item`'s code file is complete and current, else why it must be (re)made."""
    from safetensors import safe_open

    if not item.codes.is_file():
        return "missing"
    try:
        with safe_open(str(item.codes), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            codes = handle.get_tensor("codes")
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file fails in many ways
        return f"unreadable ({type(exc).__name__})"
    if metadata.get("format") != CODES_FORMAT:
        return "unreadable (not a codes file)"
    if metadata.get("audio_sha256") != item.audio_sha256:
        return "stale (made from other audio)"
    if metadata.get("tokenizer") != spec.fingerprint:
        return "stale (made by another tokenizer)"
    expected = (item.frames(spec), spec.num_quantizers)
    if codes.dtype != np.int16 or codes.shape != expected:
        return f"unreadable (shape {codes.shape} {codes.dtype}, expected {expected} int16)"
    if codes.size and (codes.min() < 0 or codes.max() >= spec.codebook_size):
        return "unreadable (codes out of range)"
    return None


def _codes_bytes(codes: np.ndarray, item: Item, spec: TokenizerSpec) -> bytes:
    from safetensors.numpy import save

    metadata = {"format": CODES_FORMAT, "audio_sha256": item.audio_sha256, "tokenizer": spec.fingerprint}
    return save({"codes": np.ascontiguousarray(codes)}, metadata=metadata)


def read_codes(path: Path) -> np.ndarray:
    """A code file's matrix, (n_frames, num_quantizers) int16."""
    from safetensors.numpy import load_file

    return load_file(str(path))["codes"]


class Encoder:
    """The speech tokenizer, loaded once, encoding lists of 24 kHz mono clips."""

    def __init__(self, spec: TokenizerSpec, device: str) -> None:
        import torch

        from studio.engine.qwen_import import import_qwen_tts

        self.spec = spec
        self.device = device
        log.info("loading the speech tokenizer from %s on %s", spec.folder, device)
        qwen_tts = import_qwen_tts()
        # Its configs log "encoder_config is None, initializing with defaults" at INFO for every load,
        # which reads like a problem in the wizard's log view and is not one.
        logging.getLogger("qwen_tts").setLevel(logging.WARNING)
        try:
            # float32 on every device: the codes are nearest-codebook decisions, and bf16 rounding moves
            # borderline frames to other entries; the encoder is small next to the talker anyway.
            tokenizer = qwen_tts.Qwen3TTSTokenizer.from_pretrained(str(spec.folder), dtype=torch.float32)
            tokenizer.model.to(device).eval()
        except Exception as exc:  # noqa: BLE001 - transformers raises many types; the user needs one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"{spec.folder}: the speech tokenizer failed to load ({first[:200]})") from None
        tokenizer.device = torch.device(device)
        self.tokenizer = tokenizer

    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        step = self.spec.samples_per_frame
        # The encoder is causal, so right-padding a batch changes nothing but the last, partial frame
        # of the shorter clips, which then sees batch zeros instead of the tokenizer's own padding.
        # Padding every clip to whole frames first makes each clip's codes the same in any batch, so a
        # resumed run reproduces exactly what an uninterrupted one would have written.
        padded = [np.pad(clip, (0, -len(clip) % step)) for clip in clips]
        output = self.tokenizer.encode(padded, sr=SAMPLE_RATE)
        return [codes.detach().to("cpu").numpy() for codes in output.audio_codes]


def prepare_run(
    run_dir: Path,
    spec: TokenizerSpec,
    *,
    emitter: Emitter,
    batch_size: int = 8,
    device: str = "cpu",
    should_stop: Callable[[], bool] | None = None,
    encoder: Encoder | None = None,
) -> dict[str, Any]:
    """Encode the run's usable items; return the summary that `done` carries.

    Raises Stopped when `should_stop` returns True between batches (everything encoded so far is kept).
    """
    import soundfile as sf

    run_dir = Path(run_dir)
    items = load_items(run_dir)
    folder = RunFolder.at(run_dir)
    folder.codes.mkdir(exist_ok=True)
    index_path = folder.index
    # The index exists only for a complete run: a partial or stale one must not look finished.
    index_path.unlink(missing_ok=True)

    pending: list[Item] = []
    redo: list[tuple[Item, str]] = []
    for item in items:
        reason = check_codes(item, spec)
        if reason is None:
            continue
        if reason != "missing":
            redo.append((item, reason))
        pending.append(item)
    total = len(items)
    skipped = total - len(pending)
    emitter.start(
        total=total,
        what="prepare",
        run_dir=str(run_dir.absolute()),
        tokenizer=str(spec.folder),
        device=device,
        skipped=skipped,
        to_encode=len(pending),
    )
    log.info("%d items: %d already encoded, %d to encode on %s", total, skipped, len(pending), device)
    for item, reason in redo:
        emitter.warning(f"{item.codes.relative_to(run_dir)}: {reason}; encoding again", item=item.audio)
    done = skipped
    emitter.progress(done, total, eta_s=None if pending else 0.0)
    eta = None
    for start in range(0, len(pending), batch_size):
        if should_stop is not None and should_stop():
            raise Stopped(done, total)
        if encoder is None:
            encoder = Encoder(spec, device)
        if eta is None:
            eta = Eta(total)  # started after the model load, which says nothing about the time per item
        batch = pending[start : start + batch_size]
        clips = []
        for item in batch:
            samples, rate = sf.read(str(item.prepared_audio), dtype="float32", always_2d=False)
            if rate != SAMPLE_RATE or samples.ndim != 1:
                raise CommandError(f"{item.prepared_audio}: not 24 kHz mono", hint="run training.validate again")
            clips.append(samples)
        try:
            encoded = encoder.encode(clips)
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise CommandError(
                    f"out of memory encoding a batch of {len(batch)} clips on {device}",
                    hint="lower --batch-size",
                ) from None
            raise
        for item, codes in zip(batch, encoded, strict=True):
            expected = (item.frames(spec), spec.num_quantizers)
            if codes.shape != expected:
                raise RuntimeError(f"{item.prepared_audio}: encoder gave codes of shape {codes.shape}, not {expected}")
            if codes.size and (codes.min() < 0 or codes.max() >= min(spec.codebook_size, 1 << 15)):
                raise RuntimeError(f"{item.prepared_audio}: codes outside the codebook (0..{spec.codebook_size - 1})")
            atomic_write_bytes(item.codes, _codes_bytes(codes.astype(np.int16), item, spec))
            done += 1
            emitter.progress(done, total, item=item.audio, eta_s=eta(done, baseline=skipped))

    lines = []
    frames = 0
    for item in items:
        n_frames = item.frames(spec)
        frames += n_frames
        lines.append(
            json.dumps(
                {
                    "audio": item.audio,
                    "text": item.text,
                    "codes": item.codes.relative_to(run_dir).as_posix(),
                    "n_frames": n_frames,
                    "seconds": round(item.n_samples / SAMPLE_RATE, 3),
                    "prepared_audio": item.prepared_audio.relative_to(run_dir).as_posix(),
                    "ref_audio": item.ref_audio,
                    "prepared_ref_audio": item.prepared_ref_audio,
                },
                ensure_ascii=False,
            )
        )
    # Code files of items a later validation dropped would otherwise linger and confuse a reader.
    keep = {item.codes.name for item in items}
    for path in folder.codes.glob("*.safetensors"):
        if path.name not in keep:
            path.unlink()
    atomic_write_text(index_path, "\n".join(lines) + "\n")
    return {
        "items": total,
        "encoded": len(pending),
        "skipped": skipped,
        "frames": frames,
        "seconds": round(sum(item.n_samples for item in items) / SAMPLE_RATE, 3),
        "index": str(index_path.absolute()),
    }




def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive.__name__ = "positive integer"  # argparse names the type in its message


def main(argv: Sequence[str] | None = None) -> int:
    emitter = Emitter.for_process()
    setup_logging()
    parser = OneLineArgumentParser(
        prog=f"python -m {PROG}", description="Encode a validated run's audio to 12 Hz codes.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by training.validate")
    parser.add_argument("--tokenizer", required=True, metavar="DIR_OR_ID", help="checkpoint or speech tokenizer")
    parser.add_argument("--batch-size", type=_positive, default=8, metavar="N", help="clips per batch (default 8)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: auto")
    parser.add_argument("--cpu-threads", type=_positive, default=None, metavar="N", help="torch threads on CPU")
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        return report_error(emitter, PROG, CommandError(str(exc), hint=f"see python -m {PROG} --help"))
    run_dir: Path = args.run_dir
    try:
        # Cheap checks first, before torch is imported, so a typo fails in a fraction of a second.
        load_items(run_dir)
        spec = resolve_tokenizer(args.tokenizer, memo_file=RunFolder.at(run_dir).fingerprints)
        from studio.engine.loader import EngineError, pick_device, set_cpu_threads

        try:
            device = pick_device(args.device)
        except EngineError as exc:
            raise CommandError(str(exc), hint="use --device cpu") from None
        if device == "cpu":
            set_cpu_threads(args.cpu_threads)
        summary = prepare_run(
            run_dir,
            spec,
            emitter=emitter,
            batch_size=args.batch_size,
            device=device,
            should_stop=lambda: stop_requested(run_dir),
        )
    except CommandError as exc:
        return report_error(emitter, PROG, exc)
    except Stopped as stop:
        clear_stop(run_dir)
        emitter.done(stopped=True, encoded=stop.encoded, items=stop.items)
        log.info("stopped on request; rerun the same command to continue")
        return EXIT_STOPPED
    except KeyboardInterrupt:
        emitter.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: say so on the protocol, keep the traceback in the log
        log.exception("prepare failed")
        emitter.error(f"internal error: {type(exc).__name__}: {exc}", hint="please report this with the log")
        return EXIT_INTERNAL
    log.info("%d items ready (%d encoded, %d skipped)", summary["items"], summary["encoded"], summary["skipped"])
    emitter.done(**summary)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
