"""Fine-tuning checkpoints without pickle: tensors in safetensors, everything else in JSON.

(Over 600 lines on purpose: the writer and the bounds-checking reader of one format belong side by side,
so that a field added to one is seen in the other.)

A run folder comes from anywhere (a shared drive, a colleague's upload, a backup), and unpickling a
file runs whatever code it names. So nothing here ever calls ``torch.load``, ``pickle.load`` or
accelerate's ``load_state``: a checkpoint is plain data, read by parsers that cannot execute it.

``checkpoints/step-NNNNNN/``::

    model.safetensors      the talker's state_dict ("talker.…" keys), fp32 master weights
    optimizer.safetensors  the AdamW state tensors: "state.<param index>.<name>" (step, exp_avg, exp_avg_sq)
    rng.safetensors        each process's RNG states as uint8 tensors: "<rank>.torch", "<rank>.cuda",
                           "<rank>.numpy", "<rank>.python"
    state.json             ``format`` (2), step, epoch, totals, the run's config, the optimizer's param
                           groups (learning rate, betas, ...), the scheduler's counters, and the byte size
                           of each file above (a truncated copy is caught before anything is loaded)

state.json is written last and the folder is staged as ``.step-NNNNNN.partial``, every file fsynced,
then renamed into place, so a checkpoint folder is complete or absent; a crash leaves only a staging
folder, which :func:`clean_staging` removes at the next start. Checkpoints of format 1 (accelerate's
``save_state``: ``optimizer.bin``, ``random_states_0.pkl``, ``custom_checkpoint_0.pkl``) hold pickles
and are refused with one line, never opened; their ``model.safetensors`` can still be exported.
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import re
import shutil
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.atomic import fsync_dir
from studio.core.limits import read_json_limited
from training.protocol import CommandError
from training.run_folder import CHECKPOINT_LEFTOVER, CHECKPOINT_PATTERN, STATE_NAME

if TYPE_CHECKING:
    import torch

FORMAT = 2
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
TENSOR_FILES = (MODEL_FILE, OPTIMIZER_FILE, RNG_FILE)
_OPTIMIZER_KEY = re.compile(r"^state\.(\d+)\.([A-Za-z_][A-Za-z0-9_]*)$")
_RNG_KEY = re.compile(r"^(\d+)\.(torch|cuda|numpy|python)$")
# errno values that mean "the disk (or the quota, or the file-size limit) is full".
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header

_DTYPE_NAMES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}
_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
# numpy's MT19937: 624 32-bit words, then pos, has_gauss (int64) and cached_gaussian (float64).
_NUMPY_RNG_BYTES = 624 * 4 + 8 + 8 + 8
# Python's random: version (int64), 625 32-bit words, then gauss_next as (present, value).
_PYTHON_RNG_BYTES = 8 + 625 * 4 + 1 + 8


class CheckpointDamaged(Exception):
    """A checkpoint's own files are missing, truncated or malformed; str() is one line naming the file."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> int:
    """Write `tensors` as a safetensors file, one tensor at a time, fsynced; returns the file's size.

    safetensors' own ``save_file`` builds the bytes of every tensor in memory first (a second copy of
    the model and its AdamW moments) and reports a full disk as a SafetensorError with the errno only in
    its text. Here each tensor reaches the CPU as it is written, and a full disk is an OSError with its
    errno, as everywhere else. The layout is the safetensors format: readers are safetensors' own.
    """
    import torch

    header: dict[str, Any] = {}
    offset = 0
    for name, tensor in tensors.items():
        dtype = _DTYPE_NAMES.get(str(tensor.dtype).removeprefix("torch."))
        if dtype is None:
            raise TypeError(f"{name}: dtype {tensor.dtype} cannot be checkpointed")
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    with open(path, "xb") as handle:
        handle.write(struct.pack("<Q", len(blob)))
        handle.write(blob)
        for tensor in tensors.values():
            data = tensor.detach().to("cpu").contiguous().reshape(-1)
            if data.numel():
                handle.write(memoryview(data.view(torch.uint8).numpy()))
        handle.flush()
        os.fsync(handle.fileno())
    return 8 + len(blob) + offset


def write_json(path: Path, data: Any) -> int:
    text = json.dumps(data, indent=2, allow_nan=True) + "\n"
    raw = text.encode("utf-8")
    with open(path, "xb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    return len(raw)


def read_header(path: Path, expected_size: int | None = None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The tensors a safetensors file holds (name -> dtype, shape), after checking it is whole."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise CheckpointDamaged(path, f"truncated ({size} bytes, not even a header)")
            (length,) = struct.unpack("<Q", head)
            if length > _MAX_HEADER or 8 + length > size:
                raise CheckpointDamaged(path, f"truncated or not a safetensors file ({size} bytes)")
            raw = handle.read(length)
    except FileNotFoundError:
        raise CheckpointDamaged(path, "missing") from None
    except OSError as exc:
        raise CheckpointDamaged(path, f"unreadable ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not an object")
        tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
        spans = []
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
            if dtype not in _DTYPE_SIZES or any(d < 0 for d in shape):
                raise ValueError(f"tensor {name!r} has dtype {dtype} and shape {shape}")
            nbytes = _DTYPE_SIZES[dtype] * math.prod(shape)
            if not (isinstance(begin, int) and isinstance(end, int)) or end - begin != nbytes:
                raise ValueError(f"tensor {name!r} has the wrong byte span")
            tensors[name] = (dtype, shape)
            spans.append((begin, end))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointDamaged(path, f"not a valid safetensors file ({exc})") from None
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise CheckpointDamaged(path, "not a valid safetensors file (tensor data overlaps or has gaps)")
        position = end
    described = 8 + length + position
    if size != described:
        kind = "truncated" if size < described else "longer than its header says"
        raise CheckpointDamaged(path, f"{kind} ({size} bytes, the header describes {described})")
    if expected_size is not None and size != expected_size:
        raise CheckpointDamaged(path, f"is {size} bytes, state.json says {expected_size}")
    return tensors


# ---------------------------------------------------------------------------------------------
# What goes in: optimizer, scheduler, RNG
# ---------------------------------------------------------------------------------------------


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json_value(v) for v in value)
    return False


def split_optimizer(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state_dict as (tensors for safetensors, the rest for JSON)."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{int(index)}.{name}"] = value
            elif _is_json_value(value):
                plain.setdefault(str(int(index)), {})[name] = value
            else:
                raise TypeError(f"optimizer state {index}.{name} is a {type(value).__name__}")
    groups = []
    for group in state["param_groups"]:
        bad = [k for k, v in group.items() if not _is_json_value(v)]
        if bad:
            raise TypeError(f"optimizer param group setting {bad[0]} is not plain data")
        groups.append(dict(group))
    return tensors, {"param_groups": groups, "state": plain}


def _scheduler_json(state: Mapping[str, Any]) -> dict[str, Any]:
    bad = [k for k, v in state.items() if not _is_json_value(v)]
    if bad:
        raise TypeError(f"scheduler setting {bad[0]} is not plain data")
    return dict(state)


def _u8(raw: bytes) -> torch.Tensor:
    import torch

    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()


def capture_rng(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's RNG states (torch CPU, CUDA device, numpy, Python) as uint8 tensors."""
    import torch

    states = {"torch": torch.get_rng_state().clone()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device).clone()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    states["numpy"] = _u8(np.asarray(keys, dtype="<u4").tobytes() + struct.pack("<qqd", pos, has_gauss, cached))
    version, words, gauss = random.getstate()
    states["python"] = _u8(
        struct.pack("<q", version)
        + np.asarray(words, dtype="<u4").tobytes()
        + struct.pack("<?d", gauss is not None, gauss or 0.0)
    )
    return states


def restore_rng(states: Mapping[str, torch.Tensor], device: torch.device, path: Path) -> None:
    import torch

    def raw(name: str, size: int) -> bytes:
        if name not in states:
            raise CheckpointDamaged(path, f"no {name} RNG state for this process")
        data = states[name]
        if data.dtype != torch.uint8 or data.numel() != size:
            raise CheckpointDamaged(path, f"RNG state {name!r} has {data.numel()} values, expected {size}")
        return data.numpy().tobytes()

    cpu = raw("torch", torch.get_rng_state().numel())
    if device.type == "cuda" and "cuda" in states:
        cuda = raw("cuda", torch.cuda.get_rng_state(device).numel())
        torch.cuda.set_rng_state(torch.frombuffer(bytearray(cuda), dtype=torch.uint8), device)
    numpy_raw, python_raw = raw("numpy", _NUMPY_RNG_BYTES), raw("python", _PYTHON_RNG_BYTES)
    torch.set_rng_state(torch.frombuffer(bytearray(cpu), dtype=torch.uint8))
    keys = np.frombuffer(numpy_raw[: 624 * 4], dtype="<u4").astype(np.uint32)
    pos, has_gauss, cached = struct.unpack("<qqd", numpy_raw[624 * 4 :])
    np.random.set_state(("MT19937", keys, pos, has_gauss, cached))
    (version,) = struct.unpack("<q", python_raw[:8])
    words = tuple(int(w) for w in np.frombuffer(python_raw[8 : 8 + 625 * 4], dtype="<u4"))
    present, gauss = struct.unpack("<?d", python_raw[8 + 625 * 4 :])
    random.setstate((version, words, gauss if present else None))


def gather_rng(accelerator: Any) -> dict[str, torch.Tensor]:
    """Every process's RNG states under "<rank>.<name>" (a collective call: every process makes it).

    Only the main process writes a checkpoint, yet each process has its own RNG streams; gathered as
    tensors, they travel over the process group without pickling.
    """
    local = capture_rng(accelerator.device)
    world = accelerator.num_processes
    if world == 1:
        return {f"0.{name}": value for name, value in local.items()}
    out = {}
    for name, value in local.items():
        every = accelerator.gather(value.to(accelerator.device).unsqueeze(0)).to("cpu").reshape(world, -1)
        for rank in range(world):
            out[f"{rank}.{name}"] = every[rank].clone()
    return out


# ---------------------------------------------------------------------------------------------
# Writing a checkpoint
# ---------------------------------------------------------------------------------------------


def write_checkpoint(
    staging: Path,
    *,
    info: Mapping[str, Any],
    model_state: Mapping[str, torch.Tensor],
    optimizer_state: Mapping[str, Any],
    scheduler_state: Mapping[str, Any],
    rng: Mapping[str, torch.Tensor],
) -> None:
    """Write a complete checkpoint into the new folder `staging` (then :func:`commit` it)."""
    optimizer_tensors, optimizer_json = split_optimizer(optimizer_state)
    scheduler_json = _scheduler_json(scheduler_state)
    staging.mkdir(parents=True)
    sizes = {
        MODEL_FILE: write_safetensors(staging / MODEL_FILE, model_state),
        OPTIMIZER_FILE: write_safetensors(staging / OPTIMIZER_FILE, optimizer_tensors),
        RNG_FILE: write_safetensors(staging / RNG_FILE, rng),
    }
    state = {
        "format": FORMAT,
        **info,
        "files": sizes,
        "optimizer": optimizer_json,
        "scheduler": scheduler_json,
    }
    write_json(staging / STATE_NAME, state)
    for path in staging.iterdir():
        os.chmod(path, 0o644)
    fsync_dir(staging)


def commit(staging: Path, final: Path) -> None:
    """Put the finished `staging` folder in place of `final`: the old one or the new one, never a mix."""
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staging, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def retire(checkpoint: Path) -> None:
    """Delete a checkpoint folder so that no moment of the deletion leaves a torn `step-N` behind.

    The folder is renamed out of the checkpoint names first (one atomic rename), then removed; a kill
    in between leaves a `.step-N.deleting` that the next start-up removes.
    """
    doomed = checkpoint.with_name(f".{checkpoint.name}.deleting")
    try:
        os.replace(checkpoint, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def clean_staging(folder: Path) -> list[Path]:
    """Remove what interrupted saves left in the checkpoints folder; returns what was removed.

    A ``.step-N.partial`` is a save that never finished. A ``.step-N.old`` is a checkpoint that was
    being replaced by a newer save of the same step: put back when the replacement never arrived. A
    ``.step-N.deleting`` is a pruned checkpoint whose removal was interrupted.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        match = CHECKPOINT_LEFTOVER.match(entry.name)
        if not match:
            continue
        final = folder / match.group(1)
        if match.group(2) == "old" and not final.exists():
            try:
                os.replace(entry, final)
                continue
            except OSError:
                pass
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def describe_save_error(exc: OSError, final: Path) -> CommandError:
    """One line for the protocol about a checkpoint that could not be written."""
    reason = exc.strerror or str(exc)
    if exc.errno in NO_SPACE:
        return CommandError(
            f"no space left on device while saving checkpoint {final} ({reason}); free space and resume",
            hint="free disk space (or lower keep_checkpoints), then rerun the same command: it resumes from "
            "the last complete checkpoint",
        )
    where = f" ({exc.filename})" if exc.filename else ""
    return CommandError(
        f"could not save checkpoint {final}: {reason}{where}",
        hint="check that the output folder is writable, then rerun the same command to resume",
    )


# ---------------------------------------------------------------------------------------------
# Reading a checkpoint
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """A checkpoint whose files are all present, whole and well-formed (nothing loaded yet)."""

    folder: Path
    state: dict[str, Any]
    headers: dict[str, dict[str, tuple[str, tuple[int, ...]]]]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def _pickled_files(folder: Path) -> list[str]:
    names = []
    for pattern in ("*.bin", "*.pkl", "*.pt", "*.pth"):
        names += sorted(p.name for p in folder.glob(pattern))
    return names


def read_manifest(folder: Path) -> Manifest:
    """Check a checkpoint without loading it.

    Raises CheckpointDamaged (a file missing, truncated or malformed: an older checkpoint may serve)
    or CommandError (a checkpoint this version must not load: pickled state of format 1, or a newer
    format).
    """
    path = folder / STATE_NAME
    try:
        # The run folder may come from elsewhere: its JSON is read within size and nesting limits.
        state = read_json_limited(path, what="checkpoint state")
    except FileNotFoundError:
        raise CheckpointDamaged(path, "missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointDamaged(path, f"unreadable ({exc})") from None
    except ValueError as exc:
        raise CheckpointDamaged(path, f"not valid JSON ({exc})") from None
    if not isinstance(state, dict):
        raise CheckpointDamaged(path, "does not hold a JSON object")
    version = state.get("format", 1)
    if version == 1 or (isinstance(version, int) and version < FORMAT):
        pickles = ", ".join(_pickled_files(folder)) or "optimizer.bin, random_states_0.pkl"
        raise CommandError(
            f"checkpoint {folder} was written by an older version and holds pickled state ({pickles}), "
            "which is never loaded: a tampered run folder could run code",
            hint=f"start a new run (delete {folder.parent}), finish this one with the older version, or "
            "export its weights with --export-only",
        )
    if version != FORMAT:
        raise CommandError(
            f"checkpoint {folder} has format {version!r}, this version reads format {FORMAT}",
            hint="resume it with the newer version that wrote it",
        )
    try:
        step = state["step"]
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step is {step!r}")
        match = CHECKPOINT_PATTERN.match(folder.name)
        if match and int(match.group(1)) != step:
            raise ValueError(f"step {step} in a folder named {folder.name}")
        files = state["files"]
        if not isinstance(files, dict) or set(files) != set(TENSOR_FILES):
            raise ValueError(f"files should list {', '.join(TENSOR_FILES)}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in files.values()):
            raise ValueError("file sizes must be integers")
        optimizer = state["optimizer"]
        groups, plain = optimizer["param_groups"], optimizer["state"]
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise ValueError("optimizer param_groups must be a list of objects")
        for group in groups:
            params = group.get("params")
            if not isinstance(params, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in params):
                raise ValueError("optimizer param group without its parameter indices")
            if not all(_is_json_value(v) for v in group.values()):
                raise ValueError("optimizer param group holds a nested object")
        if not isinstance(plain, dict) or not all(
            k.isdigit() and isinstance(v, dict) and all(_is_json_value(x) for x in v.values()) for k, v in plain.items()
        ):
            raise ValueError("optimizer state must map parameter indices to plain values")
        if not isinstance(state["scheduler"], dict) or not all(_is_json_value(v) for v in state["scheduler"].values()):
            raise ValueError("scheduler must be an object of plain values")
        processes = state.get("processes", 1)
        if not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes is {processes!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointDamaged(path, f"malformed ({type(exc).__name__}: {exc})") from None

    headers = {name: read_header(folder / name, files[name]) for name in TENSOR_FILES}
    for key in headers[OPTIMIZER_FILE]:
        if not _OPTIMIZER_KEY.match(key):
            raise CheckpointDamaged(folder / OPTIMIZER_FILE, f"unexpected tensor {key!r}")
    for key, (dtype, _) in headers[RNG_FILE].items():
        if not _RNG_KEY.match(key) or dtype != "U8":
            raise CheckpointDamaged(folder / RNG_FILE, f"unexpected tensor {key!r} ({dtype})")
    missing = [r for r in range(processes) if f"{r}.torch" not in headers[RNG_FILE]]
    if missing:
        raise CheckpointDamaged(folder / RNG_FILE, f"no RNG state for process {missing[0]}")
    return Manifest(folder=folder, state=state, headers=headers)


def _torch_dtype_name(tensor: torch.Tensor) -> str:
    return _DTYPE_NAMES.get(str(tensor.dtype).removeprefix("torch."), str(tensor.dtype))


def _check_fits(manifest: Manifest, model_state: Mapping[str, torch.Tensor], optimizer: Any, scheduler: Any) -> None:
    """CommandError when a well-formed checkpoint does not belong to this model (nothing is changed yet)."""
    folder = manifest.folder
    hint = f"resume with the base model and settings it was trained with, or delete {folder.parent} to start over"
    saved = manifest.headers[MODEL_FILE]
    if set(saved) != set(model_state):
        extra = sorted(set(saved) - set(model_state))
        lacking = sorted(set(model_state) - set(saved))
        what = f"has {extra[0]!r}, which the model lacks" if extra else f"lacks {lacking[0]!r}"
        raise CommandError(f"checkpoint {folder} does not fit the model: it {what}", hint=hint)
    for key, tensor in model_state.items():
        if saved[key] != (_torch_dtype_name(tensor), tuple(tensor.shape)):
            raise CommandError(
                f"checkpoint {folder} does not fit the model: {key} is {saved[key][0]} {list(saved[key][1])}, "
                f"the model's {_torch_dtype_name(tensor)} {list(tensor.shape)}",
                hint=hint,
            )
    current = optimizer.state_dict()["param_groups"]
    groups = manifest.state["optimizer"]["param_groups"]
    count = sum(len(g["params"]) for g in current)
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in current] or [
        p for g in groups for p in g["params"]
    ] != list(range(count)):
        raise CommandError(f"checkpoint {folder} does not fit the optimizer's parameter groups", hint=hint)
    for group, now in zip(groups, current, strict=True):
        for key, value in now.items():
            if key != "params" and key in group and not _same_kind(group[key], value):
                raise CommandError(f"checkpoint {folder}: optimizer setting {key} is {group[key]!r}", hint=hint)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    indices = [int(k) for k in manifest.state["optimizer"]["state"]]
    for key, (_, shape) in manifest.headers[OPTIMIZER_FILE].items():
        match = _OPTIMIZER_KEY.match(key)
        index, name = int(match.group(1)), match.group(2)
        if index >= len(params) or (name != "step" and shape != tuple(params[index].shape)):
            raise CommandError(f"checkpoint {folder} does not fit the optimizer: {key} has shape {list(shape)}")
    if any(index >= len(params) for index in indices):
        raise CommandError(f"checkpoint {folder} does not fit the optimizer: state for parameter {max(indices)}")
    schedule, now = manifest.state["scheduler"], scheduler.state_dict()
    if (
        not isinstance(schedule.get("last_epoch"), int)
        or any(f is not None for f in schedule.get("lr_lambdas", []) or [])
        or any(k in schedule and not _same_kind(schedule[k], v) for k, v in now.items())
    ):
        raise CommandError(f"checkpoint {folder} does not fit the learning-rate schedule", hint=hint)


def _same_kind(saved: Any, current: Any) -> bool:
    """Whether a JSON value can stand where the optimizer or scheduler holds `current`."""
    if current is None or saved is None:
        return True  # "unset" settings such as foreach and fused
    if isinstance(current, bool) or isinstance(saved, bool):
        return isinstance(current, bool) and isinstance(saved, bool)
    if isinstance(current, (int, float)):
        return isinstance(saved, (int, float))
    if isinstance(current, (list, tuple)):
        return isinstance(saved, list) and len(saved) == len(current)
    return isinstance(saved, type(current))


def _optimizer_state(manifest: Manifest, optimizer: Any) -> dict[str, Any]:
    from safetensors import safe_open

    saved = manifest.state["optimizer"]
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in saved["state"].items()}
    with safe_open(str(manifest.folder / OPTIMIZER_FILE), framework="pt", device="cpu") as handle:
        for key in handle.keys():
            match = _OPTIMIZER_KEY.match(key)
            state.setdefault(int(match.group(1)), {})[match.group(2)] = handle.get_tensor(key)
    groups = []
    for group, current in zip(saved["param_groups"], optimizer.state_dict()["param_groups"], strict=True):
        # Only settings the optimizer knows, each back in the type it uses (JSON has no tuples for betas);
        # one a newer torch added keeps its current value.
        groups.append(
            {k: tuple(group[k]) if isinstance(v, tuple) and k in group else group.get(k, v) for k, v in current.items()}
        )
    return {"state": state, "param_groups": groups}


def _scheduler_state(manifest: Manifest, scheduler: Any) -> dict[str, Any]:
    # Only the counters the scheduler itself saves: load_state_dict sets whatever it is given as attributes.
    saved, current = manifest.state["scheduler"], scheduler.state_dict()
    return {k: saved.get(k, v) for k, v in current.items()}


def load_checkpoint(
    manifest: Manifest, *, module: Any, optimizer: Any, scheduler: Any, rank: int, device: torch.device
) -> None:
    """Restore weights, optimizer, schedule and this process's RNG from a checked checkpoint.

    Everything is read with safetensors and json only. A checkpoint that does not fit the model is a
    CommandError before anything changes; a read failure after the checks (the disk failing under us)
    is a CommandError naming the file.
    """
    import torch
    from safetensors import safe_open

    folder = manifest.folder
    model_state = module.state_dict()
    _check_fits(manifest, model_state, optimizer, scheduler)
    current = folder / OPTIMIZER_FILE
    try:
        optimizer_state = _optimizer_state(manifest, optimizer)
        current = folder / RNG_FILE
        with safe_open(str(current), framework="pt", device="cpu") as handle:
            prefix = f"{rank}."
            rng = {k[len(prefix) :]: handle.get_tensor(k) for k in handle.keys() if k.startswith(prefix)}
        current = folder / MODEL_FILE
        with safe_open(str(current), framework="pt", device="cpu") as handle, torch.no_grad():
            for key, tensor in model_state.items():
                tensor.copy_(handle.get_tensor(key))
        current = folder / STATE_NAME
        optimizer.load_state_dict(optimizer_state)
        scheduler.load_state_dict(_scheduler_state(manifest, scheduler))
        current = folder / RNG_FILE
        restore_rng(rng, device, current)
    except CheckpointDamaged as exc:
        raise CommandError(str(exc), hint=f"delete {folder} to resume from an older checkpoint") from None
    except Exception as exc:  # noqa: BLE001 - an I/O error or a value torch rejects, after the checks passed
        raise CommandError(
            f"{current}: could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            hint=f"delete {folder} to resume from an older checkpoint",
        ) from None
