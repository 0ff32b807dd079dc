"""Random weights for ``studio.engine.tiny``: drawn tensor by tensor and streamed into safetensors files.

Nothing here depends on how transformers initialises a freshly built model: every saved tensor of a
meta-device module is drawn from a seeded generator by a per-key rule, edited by an optional
transform and written straight to disk, so the bytes depend only on the seed and this code and a
1.9-billion-parameter build never holds more than one tensor in memory.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.tiny_sizes import CheckpointSize

if TYPE_CHECKING:
    import torch


class TinyCheckpointError(Exception):
    """A request that cannot be built (bad type or size, occupied output folder, no disk room)."""


@dataclass(frozen=True)
class _Const:
    value: float


# What a weight rule may answer for one tensor: a standard deviation for a normal draw, a constant
# fill, or None for "1 / sqrt(fan_in)" (vectors: ones, which suits every norm weight).
_Rule = Callable[[str, "torch.Tensor"], "float | _Const | None"]
# A last edit of one drawn float32 tensor, by key, before it is cast and written.
_Transform = Callable[[str, "torch.Tensor"], "torch.Tensor"]


def _fan_in(tensor: torch.Tensor, transposed_stride: int | None) -> int:
    shape = tuple(tensor.shape)
    if len(shape) == 2:
        return shape[1]
    if transposed_stride is not None:
        # ConvTranspose1d weight is (in, out, k); each output sample sees in * k / stride inputs.
        return max(1, shape[0] * shape[2] // transposed_stride)
    # Conv1d weight is (out, in / groups, k).
    return max(1, shape[1] * shape[2])


def _draw(key: str, like: torch.Tensor, gen: torch.Generator, rule: _Rule, stride: int | None) -> torch.Tensor:
    """One float32 tensor shaped like ``like`` (which may live on the meta device)."""
    import torch

    shape = tuple(like.shape)
    leaf = key.rsplit(".", 1)[-1]
    if not like.is_floating_point():
        return torch.zeros(shape, dtype=like.dtype)
    if leaf in ("running_var", "cluster_usage", "initialized"):
        return torch.ones(shape)
    if leaf in ("bias", "running_mean", "alpha", "beta"):
        # Snake alpha/beta are stored as logs: zero means a plain x + sin^2(x).
        return torch.zeros(shape)
    spec = rule(key, like)
    if isinstance(spec, _Const):
        return torch.full(shape, spec.value)
    if like.dim() == 1:
        return torch.ones(shape)
    std = spec if spec is not None else 1.0 / math.sqrt(_fan_in(like, stride))
    return torch.randn(shape, generator=gen, dtype=torch.float32).mul_(std)


def _write_random_weights(
    module: torch.nn.Module,
    path: Path,
    gen: torch.Generator,
    rule: _Rule,
    *,
    dtype: torch.dtype,
    transform: _Transform | None = None,
    shards: int = 1,
) -> None:
    """Draw every saved tensor of ``module`` from ``gen`` and stream it into a safetensors file.

    With ``shards`` > 1 the tensors go, in the same order and with the same bytes, into
    ``model-0000N-of-0000M.safetensors`` files beside ``path`` plus a ``model.safetensors.index.json``
    naming each tensor's file, as sharded Hugging Face checkpoints (community fine-tunes) hold them.

    ``module`` is built on the meta device: only its key names and shapes are used. Everything is
    filled explicitly, in state-dict order, so the bytes depend only on the seed and this code,
    never on how transformers happens to initialise a freshly constructed model. One tensor at a
    time is in memory, which is what keeps a 1.9-billion-parameter build at about 2 GB of RAM (the
    largest tensor, the 151936 x 2048 text embedding, drawn in float32 and cast).
    """
    import torch

    strides = {
        f"{name}.weight": int(sub.stride[0])
        for name, sub in module.named_modules()
        if isinstance(sub, torch.nn.ConvTranspose1d)
    }
    state = module.state_dict()
    layout = [(key, tuple(t.shape), dtype if t.is_floating_point() else t.dtype) for key, t in state.items()]

    def tensors() -> Iterator[torch.Tensor]:
        for key, like in state.items():
            value = _draw(key, like, gen, rule, strides.get(key))
            if transform is not None:
                value = transform(key, value)
            yield value.to(dtype) if value.is_floating_point() else value

    if shards <= 1:
        _write_safetensors(path, layout, tensors())
    else:
        _write_shards(path, layout, tensors(), shards)


def _tts_rule(size: CheckpointSize) -> _Rule:
    def rule(key: str, tensor: torch.Tensor) -> float | _Const | None:
        if key.endswith("codec_head.weight"):
            return size.codec_head_std
        if key.startswith("speaker_encoder."):
            # Conv stacks with ReLUs: fan-in scaling keeps the x-vector away from zero.
            return None
        # The transformer init the published code assumes (initializer_range).
        return 0.02

    return rule


def _speech_tokenizer_rule(size: CheckpointSize) -> _Rule:
    def rule(key: str, tensor: torch.Tensor) -> float | _Const | None:
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "scale":
            # Layer scales start at 0.01 in a fresh model, which mutes the transformer blocks.
            return _Const(size.dec_layer_scale)
        if leaf == "gamma":
            # ConvNeXt gamma starts at 1e-6: the blocks would be identities.
            return _Const(size.dec_convnext_gamma)
        if leaf in ("embedding_sum", "embed_sum"):
            # Codebooks start at zero: every code would decode to silence.
            return 1.0
        return None

    return rule


def _final_conv_key(keys: Iterable[str]) -> str:
    # decoder.decoder is [conv, upsampling blocks..., snake, conv]: the waveform comes out of the
    # highest-numbered top-level conv.
    pattern = re.compile(r"decoder\.decoder\.(\d+)\.conv\.weight")
    indexed = {int(m.group(1)): k for k in keys if (m := pattern.fullmatch(k))}
    return indexed[max(indexed)]


def _speech_decoder_transform(keys: Iterable[str], size: CheckpointSize) -> _Transform:
    """Scale the decoder's residual branches, and make its last conv DC-free at a set output level."""
    final = _final_conv_key(keys)

    def transform(key: str, value: torch.Tensor) -> torch.Tensor:
        if key.startswith("decoder.decoder.") and key.endswith(".conv2.conv.weight"):
            return value * size.dec_residual_gain
        if key == final:
            # Snake activations add a positive sin^2 term; zero-sum taps keep it from becoming DC offset.
            return (value - value.mean(dim=-1, keepdim=True)) * size.dec_output_gain
        return value

    return transform


# safetensors' names for the dtypes a checkpoint here can hold.
_SAFETENSORS_DTYPES = {
    "float32": "F32",
    "bfloat16": "BF16",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "bool": "BOOL",
}


def _write_safetensors(
    path: Path, layout: Sequence[tuple[str, tuple[int, ...], torch.dtype]], tensors: Iterable[torch.Tensor]
) -> None:
    """Write a safetensors file whose tensors arrive one by one, in ``layout`` order.

    ``safetensors.torch.save_file`` needs every tensor in memory at once and then copies each into a
    bytes object, two full copies of a multi-gigabyte checkpoint. The format is simple enough to
    stream: an 8-byte little-endian header length, a JSON header with each tensor's dtype, shape and
    byte range, then the raw little-endian data in that order.
    """
    import torch

    header: dict[str, Any] = {}
    offset = 0
    for key, shape, dtype in layout:
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        header[key] = {
            "dtype": _SAFETENSORS_DTYPES[str(dtype).replace("torch.", "")],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    # transformers refuses safetensors files whose metadata does not say they hold torch tensors.
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Space padding to 8 bytes keeps the data section aligned for readers that memory-map it.
    encoded += b" " * (-len(encoded) % 8)

    free = shutil.disk_usage(path.parent).free
    if free < offset + len(encoded):
        raise TinyCheckpointError(
            f"{path.parent}: {offset / 1e9:.1f} GB of weights to write but only {free / 1e9:.1f} GB free"
        )
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for (key, shape, dtype), tensor in zip(layout, tensors, strict=True):
            if tuple(tensor.shape) != shape or tensor.dtype != dtype:
                raise RuntimeError(f"{key}: drew {tuple(tensor.shape)} {tensor.dtype}, expected {shape} {dtype}")
            # A byte view of the tensor's own memory: no copy beyond the one contiguous() may make.
            handle.write(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)


def _nbytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    import torch

    return math.prod(shape) * torch.empty((), dtype=dtype).element_size()


def shard_name(number: int, count: int) -> str:
    """The file name transformers gives shard ``number`` (1-based) of ``count``."""
    return f"model-{number:05d}-of-{count:05d}.safetensors"


def _write_shards(
    path: Path, layout: Sequence[tuple[str, tuple[int, ...], torch.dtype]], tensors: Iterator[torch.Tensor], count: int
) -> None:
    """Split ``layout`` into ``count`` runs of about equal bytes, one shard file each, plus the index."""
    sizes = [_nbytes(shape, dtype) for _, shape, dtype in layout]
    total = sum(sizes)
    count = max(1, min(count, len(layout)))
    groups: list[list[int]] = [[] for _ in range(count)]
    shard, done = 0, 0
    for index, nbytes in enumerate(sizes):
        later = count - 1 - shard
        # The next shard starts once this one holds its share of the bytes, or when the tensors left
        # are just enough to give every later shard one.
        if groups[shard] and (done >= total * (shard + 1) / count or len(layout) - index <= later):
            shard += 1
        groups[shard].append(index)
        done += nbytes
    weight_map: dict[str, str] = {}
    for number, members in enumerate(groups, start=1):
        name = shard_name(number, count)
        part = [layout[i] for i in members]
        _write_safetensors(path.parent / name, part, itertools.islice(tensors, len(part)))
        weight_map.update({key: name for key, _, _ in part})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path.parent / f"{path.name}.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")

