"""The settings of one fine-tuning run (``run.json``): the dataclass, its defaults and its checks.

Light on purpose (standard library and training.protocol only): the fine-tune wizard judges its settings
page with the very same :func:`config_from_dict` that ``python -m training.sft`` runs, without importing
torch, so the page and the command never disagree about a field.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from training.protocol import CommandError
from training.run_folder import CONFIG_NAME

# Users of the published script report speech speeding up over the epochs and speaker similarity
# dropping at 2e-6 to 4e-6, and better results at 1e-7 to 1e-8. That script also keeps the weights
# themselves in bf16, where an update smaller than about 1/256 of a weight rounds away, so a nominal
# rate there moves the model *less* than the same rate here: we keep fp32 master weights (bf16 only
# in autocast), where every update lands. 1e-7, the top of the range users found good, is therefore
# already a real (gentle) fine-tune; the wizard should offer 1e-8 to 1e-6 and say so. (Inference in
# bf16 rounds the exported weights the same way, so on a GPU the smallest updates still vanish there.)
DEFAULT_LEARNING_RATE = 1e-7
DEFAULT_SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog, and then it takes a well deserved nap."
SPEAKER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_HINT = "write the run settings there (the fine-tune wizard does); see python -m training.sft --help"


def _opt(default: Any, kind: str, *, minimum: float | None = None, choices: tuple[str, ...] = (), none: bool = False):
    return field(default=default, metadata={"kind": kind, "minimum": minimum, "choices": choices, "none": none})


@dataclass(frozen=True)
class SFTConfig:
    """The settings of one fine-tuning run, read from ``run.json`` (see the module docstring)."""

    base_model: str = field(metadata={"kind": "str"})
    speaker: str = field(metadata={"kind": "str"})
    epochs: int = _opt(3, "int", minimum=1)
    learning_rate: float = _opt(DEFAULT_LEARNING_RATE, "float", minimum=0.0)
    lr_schedule: str = _opt("cosine", "choice", choices=("cosine", "linear"))
    warmup_steps: int | None = _opt(None, "int", minimum=0, none=True)
    batch_size: int = _opt(2, "int", minimum=1)
    gradient_accumulation: int = _opt(4, "int", minimum=1)
    max_grad_norm: float = _opt(1.0, "float", minimum=0.0)
    weight_decay: float = _opt(0.01, "float", minimum=0.0)
    precision: str = _opt("auto", "choice", choices=("auto", "bf16", "fp32"))
    device: str = _opt("auto", "choice", choices=("auto", "cpu", "cuda"))
    seed: int = _opt(0, "int", minimum=0)
    checkpoint_every: int = _opt(100, "int", minimum=1)
    keep_checkpoints: int = _opt(2, "int", minimum=1)
    sample_every_epoch: bool = _opt(True, "bool")
    sample_text: str = _opt(DEFAULT_SAMPLE_TEXT, "str")
    sample_max_new_tokens: int | None = _opt(None, "int", minimum=2, none=True)
    language: str = _opt("auto", "str")
    max_steps: int | None = _opt(None, "int", minimum=1, none=True)
    freeze_text_embedding: bool = _opt(True, "bool")
    gradient_checkpointing: bool = _opt(False, "bool")
    cpu_threads: int | None = _opt(None, "int", minimum=1, none=True)
    output_dir: str | None = _opt(None, "str", none=True)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def config_defaults() -> dict[str, Any]:
    """The default of every field that has one (base_model and speaker have none)."""
    return {f.name: f.default for f in fields(SFTConfig) if f.default is not MISSING}


# Settings a resumed run must share with the checkpoint it resumes: they fix the step count, the data
# order or what the saved optimizer state means. The rest (device, precision, checkpoint cadence,
# samples, output names) may change between runs.
RESUME_FIELDS = (
    "base_model",
    "epochs",
    "learning_rate",
    "lr_schedule",
    "warmup_steps",
    "batch_size",
    "gradient_accumulation",
    "weight_decay",
    "seed",
    "language",
    "max_steps",
    "freeze_text_embedding",
)

_KIND_TEXT = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
}


def _check_value(name: str, value: Any, meta: dict[str, Any]) -> Any:
    kind = meta["kind"]
    if value is None:
        if meta.get("none"):
            return None
        raise ValueError(f"must be {_KIND_TEXT.get(kind, 'set')}, not null")
    minimum = meta.get("minimum")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, not {json.dumps(value)}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"must be a number, not {json.dumps(value)}")
        value = float(value)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {json.dumps(value)}")
    elif kind in ("str", "choice"):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be a non-empty string, not {json.dumps(value)}")
        value = value.strip()
        if kind == "choice" and value not in meta["choices"]:
            raise ValueError(f"must be one of {', '.join(meta['choices'])}, not {json.dumps(value)}")
    if minimum is not None and kind in ("int", "float"):
        strict = kind == "float" and name in ("learning_rate", "max_grad_norm")
        if value < minimum or (strict and value <= minimum):
            bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
            raise ValueError(f"must be {bound}, not {json.dumps(value)}")
    return value



def config_from_dict(data: Any, *, source: str = CONFIG_NAME) -> SFTConfig:
    """Check run settings (``run.json``'s object) and return them parsed.

    Every problem is a CommandError whose message starts with `source` and names the field.
    """
    if not isinstance(data, Mapping):
        raise CommandError(f"{source}: must hold a JSON object, not {type(data).__name__}")
    known = {f.name: f for f in fields(SFTConfig)}
    for key in data:
        if key not in known:
            raise CommandError(f"{source}: unknown field {key!r}", hint=f"known fields: {', '.join(known)}")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        if name not in data:
            if spec.default is MISSING:
                raise CommandError(f"{source}: field {name!r} is required", hint=_HINT)
            continue
        try:
            values[name] = _check_value(name, data[name], dict(spec.metadata))
        except ValueError as exc:
            raise CommandError(
                f"{source}: field {name!r} {exc}", hint=f"fix {name} in {Path(source).name} or leave it out"
            ) from None
    speaker = values["speaker"].lower()
    if not SPEAKER_NAME.match(speaker):
        raise CommandError(
            f"{source}: field 'speaker' {values['speaker']!r} is not a usable speaker name",
            hint="use 1 to 48 letters a-z, digits, '_' or '-', starting with a letter or digit",
        )
    values["speaker"] = speaker
    values["language"] = values.get("language", "auto").lower()
    return SFTConfig(**values)


def load_config(path: str | os.PathLike[str]) -> SFTConfig:
    """Read and check ``run.json``; every problem is a CommandError naming the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{path}: not found", hint=_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: unreadable ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{path}: not valid JSON ({exc})") from None
    return config_from_dict(data, source=str(path))
