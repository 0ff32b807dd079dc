"""Check a speech dataset and prepare its audio for fine-tuning.

Usage::

    python -m training.validate DATASET --out RUN_DIR

DATASET is one of three layouts:

- a folder of audio files (searched recursively), each with a same-named ``.txt`` transcript;
- an LJSpeech-style ``metadata.csv`` (or the folder holding it): ``id|text`` or
  ``id|text|normalized_text`` per line, audio in ``wavs/<id>.wav``. When the normalized column is
  present and not empty it is used: it spells out what is actually spoken ("Doctor", not "Dr.");
- a ``.jsonl`` file (or a folder holding exactly one): ``{"audio": ..., "text": ..., "ref_audio": ...}``
  per line, ``ref_audio`` optional; relative paths resolve against the JSONL's folder.

Every item is checked (missing file, unreadable audio, empty transcript, duration, clipping, silence,
duplicates) and each usable one is converted to 24 kHz mono float WAV under ``RUN_DIR/audio/``
(reference clips under ``RUN_DIR/ref/``). The dataset itself is only read. The result is
``RUN_DIR/validation.json``::

    {"version": 1, "dataset": str, "layout": "folder" | "ljspeech" | "jsonl", "sample_rate": 24000,
     "items": [{"audio": str, "text": str, "usable": bool, "problems": [str], "notes": [str],
                "source": str, "seconds": float | null, "sample_rate": int | null, "channels": int | null,
                "prepared_audio": str | null, "prepared_sha256": str | null,
                "ref_audio": str | null, "prepared_ref_audio": str | null}],
     "totals": {"items": int, "usable": int, "hours": float, "seconds": float, "problems": {kind: int}}}

``audio`` and ``ref_audio`` are absolute paths to the originals; ``prepared_*`` paths are relative to
the run folder (``prepared_sha256`` hashes the prepared file's bytes). A problem makes an item
unusable; a note does not. Each problem starts with its kind ("too short", "clipping", ...),
optionally followed by ": " and details; ``totals.problems`` counts items by kind. ``hours`` and
``seconds`` count usable audio only. Items keep the manifest's order (``metadata.csv``, JSONL) or
sorted relative path order (folder layout).

Exit code 0 when at least one item is usable, 2 otherwise or on bad input (see training.protocol).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import atomic_write_bytes, atomic_write_text
from studio.core.cli_args import ArgumentError, OneLineArgumentParser
from studio.core.owned import FileLedger, NotOwnedError
from studio.core.plan import SAMPLE_RATE
from training.dataset_layouts import (
    check_entries_outside,
    find_layout,
)
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
from training.run_folder import AUDIO_DIR, REF_DIR, REPORT_NAME, RunFolder

log = logging.getLogger("training.validate")

PROG = "training.validate"
REPORT_VERSION = 1
MIN_SECONDS = 1.0
MAX_SECONDS = 30.0


# Clipping. A peak-normalised recording touches full scale at a single sample per peak, which is
# harmless; clipping flattens the wave into plateaus. So only runs of at least CLIP_RUN consecutive
# samples at or beyond CLIP_LEVEL count, and the clip is rejected once they make up CLIP_FRACTION of
# all samples: one in a thousand is about 24 flattened samples per second at 24 kHz, where clipping
# on speech becomes audible, and the codec would faithfully learn the distortion.
CLIP_LEVEL = 0.999
CLIP_RUN = 3
CLIP_FRACTION = 0.001

# Silence, measured on 20 ms frames of the 24 kHz mono signal. A frame is silent when its RMS is under
# SILENCE_ABS_DB (a quiet room's noise floor sits around -60 dBFS, quiet speech consonants near
# -45) or more than SILENCE_REL_DB below the clip's loudest frame (so a hot recording's hiss still
# counts as silence). A read sentence, with its lead-in, trailing pause and gaps between phrases, is
# rarely more than about 60 % silent; at SILENCE_FRACTION the clip is mostly room tone, and training
# on it teaches the model long pauses.
SILENCE_FRAME_S = 0.02
SILENCE_ABS_DB = -50.0
SILENCE_REL_DB = 40.0
SILENCE_FRACTION = 0.8


@dataclass
class AudioFacts:
    sample_rate: int | None = None
    channels: int | None = None
    seconds: float | None = None
    mono: np.ndarray | None = None  # 24 kHz mono float32, only when the audio passed every check
    digest: str | None = None  # hash of the decoded samples: duplicates regardless of file format


def _soundfile_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # libsndfile messages repeat the path ("Error opening '/x/y.wav': Format not recognised."),
    # which the report already carries.
    if "': " in text:
        text = text.split("': ", 1)[1]
    return text.rstrip(".")


def clipped_fraction(samples: np.ndarray) -> float:
    """Share of samples (frames x channels) inside flat runs at full scale."""
    if samples.size == 0:
        return 0.0
    clipped = 0
    for channel in np.atleast_2d(samples.T):
        hot = np.abs(channel) >= CLIP_LEVEL
        if not hot.any():
            continue
        edges = np.diff(np.concatenate(([0], hot.view(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        lengths = ends - starts
        clipped += int(lengths[lengths >= CLIP_RUN].sum())
    return clipped / samples.size


def silent_fraction(mono: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    frame = max(1, int(round(SILENCE_FRAME_S * sample_rate)))
    count = max(1, len(mono) // frame)
    # The trailing partial frame is dropped; a clip shorter than one frame is one frame.
    frames = mono[: count * frame].reshape(count, frame) if len(mono) >= frame else mono[None, :]
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    db = 20.0 * np.log10(np.maximum(rms, 1e-10))
    threshold = max(SILENCE_ABS_DB, float(db.max()) - SILENCE_REL_DB)
    return float(np.mean(db < threshold))


def _channels_word(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels} channels")


def to_mono_24k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return mono


def inspect_audio(path: Path, *, reference: bool = False) -> tuple[AudioFacts, list[str], list[str]]:
    """Facts about one audio file, its problems and notes.

    A `reference` clip (JSONL ref_audio) only has to exist and decode: it sets who speaks, not what
    the model learns to say, so its length and quality are the user's call.
    """
    import soundfile as sf

    facts = AudioFacts()
    if not path.is_file():
        return facts, [f"missing audio: {path} does not exist"], []
    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - a corrupt file can fail in many ways; all mean "unreadable"
        return facts, [f"unreadable audio: {_soundfile_reason(exc)}"], []
    facts.sample_rate = int(info.samplerate)
    facts.channels = int(info.channels)
    if info.samplerate <= 0 or info.channels <= 0:
        return facts, ["unreadable audio: no sample rate or channels in the header"], []
    facts.seconds = float(info.frames) / float(info.samplerate)
    if not reference:
        # Checked from the header, before decoding: an hour-long file is rejected without being loaded.
        if facts.seconds < MIN_SECONDS:
            return facts, [f"too short: {facts.seconds:.2f} s, the minimum is {MIN_SECONDS:g} s"], []
        if facts.seconds > MAX_SECONDS:
            return facts, [f"too long: {facts.seconds:.2f} s, the maximum is {MAX_SECONDS:g} s"], []
    try:
        samples, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - see above
        return facts, [f"unreadable audio: {_soundfile_reason(exc)}"], []
    if samples.shape[0] == 0:
        return facts, ["unreadable audio: no samples"], []
    if not np.isfinite(samples).all():
        return facts, ["corrupt audio: samples that are not finite numbers"], []
    facts.seconds = samples.shape[0] / float(sample_rate)
    digest = hashlib.sha256()
    digest.update(f"{sample_rate}:{samples.shape[1]}:".encode())
    digest.update(samples.tobytes())
    facts.digest = digest.hexdigest()

    problems: list[str] = []
    notes: list[str] = []
    mono = to_mono_24k(samples, int(sample_rate))
    if not reference:
        clip = clipped_fraction(samples)
        if clip >= CLIP_FRACTION:
            problems.append(f"clipping: {clip:.1%} of the samples are flattened at full scale")
        silence = silent_fraction(mono)
        if silence >= SILENCE_FRACTION:
            problems.append(f"mostly silence: {silence:.0%} of the clip is silent")
    if sample_rate != SAMPLE_RATE or samples.shape[1] != 1:
        notes.append(f"converted from {sample_rate} Hz {_channels_word(samples.shape[1])}")
    if not problems:
        facts.mono = mono
    return facts, problems, notes


def problem_kind(problem: str) -> str:
    return problem.split(":", 1)[0].strip()


def _safe_name(path: Path) -> str:
    return re.sub(r"[^\w.-]+", "_", path.stem)[:60] or "audio"


def _wav_bytes(mono: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    # Float samples: the resampled signal may overshoot full scale slightly, and a 16-bit copy would
    # requantise 24-bit sources.
    sf.write(buffer, mono, SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _claim(ledger: FileLedger, rel: str) -> Path:
    try:
        return ledger.claim(rel)
    except NotOwnedError as exc:
        raise CommandError(
            str(exc), hint="the run folder holds files of yours; choose an empty folder or one this studio made"
        ) from None


class Stopped(Exception):
    pass


def validate_dataset(
    dataset: Path,
    out_dir: Path,
    *,
    emitter: Emitter,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Validate `dataset` into `out_dir` and return the report (also written to validation.json).

    Raises CommandError for a dataset that cannot be read at all and Stopped when `should_stop`
    returns True between items.
    """
    dataset = Path(dataset)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"{out_dir}: exists and is not a folder", hint="pass a folder for --out")
    layout = find_layout(dataset, out_dir)
    entries = layout.entries
    check_entries_outside(entries, out_dir)
    ledger = FileLedger(out_dir)
    total = len(entries)
    emitter.start(total=total, what="validate", dataset=str(dataset.absolute()), layout=layout.kind)
    log.info("%s: %s layout, %d items", dataset, layout.kind, total)

    folder = RunFolder.at(out_dir)
    audio_dir, ref_dir = folder.audio, folder.ref
    audio_dir.mkdir(parents=True, exist_ok=True)
    eta = Eta(total)
    items: list[dict[str, Any]] = []
    first_audio: dict[str, str] = {}  # sample hash -> audio of the first usable item with it
    first_text: dict[str, str] = {}  # transcript (case-folded) -> audio of the first usable item with it
    refs: dict[Path, tuple[str | None, list[str]]] = {}  # original -> (prepared, problems)
    written_audio: set[str] = set()
    written_refs: set[str] = set()

    for index, entry in enumerate(entries, start=1):
        if should_stop is not None and should_stop():
            raise Stopped
        problems = list(entry.problems)
        notes: list[str] = []
        facts = AudioFacts()
        if entry.audio_known:
            facts, audio_problems, audio_notes = inspect_audio(entry.audio)
            problems += audio_problems
            notes += audio_notes
        if entry.text_known and not entry.text:
            problems.append("empty transcript")

        prepared_ref = None
        if entry.ref_audio is not None:
            if entry.ref_audio not in refs:
                ref_facts, ref_problems, _ = inspect_audio(entry.ref_audio, reference=True)
                ref_problems = [f"ref_audio: {p}" for p in ref_problems]
                prepared = None
                if not ref_problems:
                    name = f"{len(written_refs) + 1:03d}_{_safe_name(entry.ref_audio)}.wav"
                    ref_dir.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(_claim(ledger, f"{REF_DIR}/{name}"), _wav_bytes(ref_facts.mono))
                    written_refs.add(name)
                    prepared = f"{REF_DIR}/{name}"
                refs[entry.ref_audio] = (prepared, ref_problems)
            prepared_ref, ref_problems = refs[entry.ref_audio]
            problems += ref_problems

        if not problems and facts.digest is not None:
            if facts.digest in first_audio:
                problems.append(f"duplicate audio: same samples as {first_audio[facts.digest]}")
        text_key = entry.text.casefold()
        if not problems:
            first_audio[facts.digest] = str(entry.audio)
            if text_key in first_text:
                # A retake of the same sentence is valid data, but often a copy-paste slip in the manifest.
                notes.append(f"same transcript as {first_text[text_key]}")
            else:
                first_text[text_key] = str(entry.audio)

        prepared_audio = prepared_sha256 = None
        if not problems and facts.mono is not None:
            name = f"{index:05d}_{_safe_name(entry.audio)}.wav"
            data = _wav_bytes(facts.mono)
            atomic_write_bytes(_claim(ledger, f"{AUDIO_DIR}/{name}"), data)
            written_audio.add(name)
            prepared_audio = f"{AUDIO_DIR}/{name}"
            # training.prepare keys its resume check on this: codes made from other audio are redone.
            prepared_sha256 = hashlib.sha256(data).hexdigest()

        item = {
            "audio": str(entry.audio),
            "text": entry.text,
            "usable": not problems,
            "problems": problems,
            "notes": notes,
            "source": entry.source,
            "seconds": round(facts.seconds, 3) if facts.seconds is not None else None,
            "sample_rate": facts.sample_rate,
            "channels": facts.channels,
            "prepared_audio": prepared_audio,
            "prepared_sha256": prepared_sha256,
            "ref_audio": str(entry.ref_audio) if entry.ref_audio is not None else None,
            "prepared_ref_audio": prepared_ref,
        }
        items.append(item)
        if problems:
            emitter.warning(f"{entry.source}: {'; '.join(problems)}", item=str(entry.audio))
        emitter.progress(index, total, item=str(entry.audio), eta_s=eta(index))

    # Copies a previous run made that this one did not make again; never a file the ledger lacks.
    ledger.remove_except({f"{AUDIO_DIR}/{n}" for n in written_audio}, under=AUDIO_DIR)
    ledger.remove_except({f"{REF_DIR}/{n}" for n in written_refs}, under=REF_DIR)
    usable = [item for item in items if item["usable"]]
    seconds = float(sum(item["seconds"] or 0.0 for item in usable))
    kinds = Counter(kind for item in items for kind in {problem_kind(p) for p in item["problems"]})
    report = {
        "version": REPORT_VERSION,
        "dataset": str(dataset.absolute()),
        "layout": layout.kind,
        "sample_rate": SAMPLE_RATE,
        "items": items,
        "totals": {
            "items": len(items),
            "usable": len(usable),
            "hours": round(seconds / 3600.0, 6),
            "seconds": round(seconds, 3),
            "problems": dict(sorted(kinds.items())),
        },
    }
    atomic_write_text(_claim(ledger, REPORT_NAME), json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    emitter = Emitter.for_process()
    setup_logging()
    parser = OneLineArgumentParser(
        prog=f"python -m {PROG}", description="Check a speech dataset and prepare it for fine-tuning.")
    parser.add_argument("dataset", type=Path, help="folder of audio + .txt, metadata.csv, or .jsonl")
    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder to write into")
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        return report_error(emitter, PROG, CommandError(str(exc), hint=f"see python -m {PROG} --help"))
    try:
        report = validate_dataset(args.dataset, args.out, emitter=emitter, should_stop=lambda: stop_requested(args.out))
    except CommandError as exc:
        return report_error(emitter, PROG, exc)
    except Stopped:
        clear_stop(args.out)
        emitter.done(stopped=True)
        log.info("stopped on request; nothing written")
        return EXIT_STOPPED
    except KeyboardInterrupt:
        emitter.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: say so on the protocol, keep the traceback in the log
        log.exception("validation failed")
        emitter.error(f"internal error: {type(exc).__name__}: {exc}", hint="please report this with the log")
        return EXIT_INTERNAL
    totals = report["totals"]
    report_path = str((args.out / REPORT_NAME).absolute())
    log.info("%d of %d items usable, %.2f minutes", totals["usable"], totals["items"], totals["seconds"] / 60)
    if totals["usable"] == 0:
        return report_error(
            emitter,
            PROG,
            CommandError(
                f"{args.dataset}: no usable items ({totals['items']} checked)",
                hint=f"see the problems listed in {report_path}",
            ),
        )
    emitter.done(report=report_path, **{k: totals[k] for k in ("items", "usable", "hours", "seconds")})
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
