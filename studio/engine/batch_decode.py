"""Batched decoding: several segments' codec frames generated together, each exactly as it would be alone.

A batch shares the weight reads of every projection and MLP (the cost of a decode step on a CPU or a GPU
is mostly reading the weights), so N segments decode in much less than N times the time of one. What a
batch must not do is make a segment's audio depend on its neighbours: the render cache, resuming a
render and sharding it over workers all rely on a segment (its seed) giving the same audio whatever was
rendered beside it. Three things would break that, and each is avoided here:

- Random numbers: every segment draws from its own generator, seeded with its seed, in the order its
  own frames need them (a shared generator would hand each row numbers that depend on the other rows).
- Matrix products: a CPU BLAS computes a row of `x @ W.T` differently depending on how many rows the
  call has (MKL handles rows in blocks of four, and a remainder of 1-3 rows, or a single row, takes other
  kernels). Every step therefore runs with the rows padded with zeros to a multiple of ROW_BLOCK, the
  same for a batch of one, so a row always goes through the same kernel.
- Attention: each row attends over its own cache, of its own length, in a call of its own, as it would
  alone (batched scaled_dot_product_attention does not give each row the bits a single-row call gives).
  The prompt of each segment is run on its own too, with the shapes it has alone.

Token choice per row follows `sampling` (transformers' semantics) on that row's logits alone. Rows join
as others finish (a finished segment's slot takes the next one), so the batch stays full until the work
runs out. tests/engine/test_batch_decode.py checks the identity on tiny checkpoints; bench/batch.py
measures the gain and checks it at full size. Both on a CPU (MKL): a GPU's libraries choose kernels by
shape in their own ways, and the identity there is not yet checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from studio.engine.fast_decode import (
    TalkerCall,
    finish_layer,
    frame_embedding,
    layer_qkv,
    rotary_tables,
    take_model_parts,
)
from studio.engine.sampling import SamplerSettings, choose, penalise_repeats, warp

# Rows per block of the CPU BLAS's small-matrix kernels (see the module docstring): every step runs a
# multiple of this many rows.
ROW_BLOCK = 4
# The most segments an automatic batch holds. On a CPU the gain flattens once a step's arithmetic, not its
# weight reads, is the cost (bench/batch.py); a GPU has arithmetic to spare.
AUTO_LIMIT = {"cpu": 8, "cuda": 16}


def automatic_batch(stack_bytes_per_position: int, positions: int, jobs: int, device: torch.device) -> int:
    """How many segments to decode together: as many as the work has, up to AUTO_LIMIT, while their caches
    (`stack_bytes_per_position` x `positions` each) fit in half the device's free memory."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
    else:
        import os

        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    fits = max(1, (free // 2) // max(1, stack_bytes_per_position * positions))
    return int(max(1, min(jobs, fits, AUTO_LIMIT.get(device.type, 8))))


@dataclass
class BatchJob:
    """One segment for the batch: the caller's key, the captured talker call, and its seed."""

    key: object
    call: TalkerCall
    seed: int
    context: object = None  # reference codes before the first frame (ICL cloning), for the audio decoder


class _Stack:
    """A decoder stack (talker or code predictor) with one key/value cache per batch slot."""

    def __init__(self, layers, norm, rotary, *, multimodal: bool, slots: int, capacity: int, dtype, device):
        self.layers = list(layers)
        self.norm = norm
        attn = self.layers[0].self_attn
        self.head_dim, self.scaling = attn.head_dim, attn.scaling
        self.kv_heads = attn.k_proj.out_features // self.head_dim
        self._rotary, self._multimodal = rotary, multimodal
        self.slots, self.dtype, self.device = slots, dtype, device
        self.capacity = 0
        self.keys = self.values = self.cos = self.sin = None
        self.reserve(capacity)

    def reserve(self, capacity: int) -> None:
        """Room for `capacity` positions per slot: the caches grow (what they hold is kept), never shrink.
        A position's rotary angle does not depend on the table's length, so growing changes no result."""
        if capacity <= self.capacity:
            return
        shape = (len(self.layers), self.slots, self.kv_heads, capacity, self.head_dim)
        keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        values = torch.zeros(shape, dtype=self.dtype, device=self.device)
        if self.keys is not None:
            keys[..., : self.capacity, :] = self.keys
            values[..., : self.capacity, :] = self.values
        self.keys, self.values = keys, values
        self.cos, self.sin = rotary_tables(self._rotary, capacity, multimodal=self._multimodal, dtype=self.dtype,
                                           device=self.device)
        self.capacity = capacity

    def run(self, x: torch.Tensor, slots: list[int | None], starts: list[int]) -> torch.Tensor:
        """Rows x (R, T, H): row i is slot slots[i] (None: padding) at positions
        starts[i]..starts[i]+T-1. Caches the rows' keys and returns the normed outputs (R, T, H)."""
        rows, length = x.shape[0], x.shape[1]
        live = [i for i, slot in enumerate(slots) if slot is not None]
        index = torch.tensor([starts[i] if slots[i] is not None else 0 for i in range(rows)], device=x.device)
        where = index[:, None] + torch.arange(length, device=x.device)[None]  # (R, T)
        cos, sin = self.cos[where][:, None], self.sin[where][:, None]  # (R, 1, T, D)
        for n, layer in enumerate(self.layers):
            q, k, v = layer_qkv(layer, x, cos, sin, self.head_dim)
            attended = torch.zeros_like(q)
            for i in live:
                slot, start = slots[i], starts[i]
                end = start + length
                self.keys[n, slot, :, start:end] = k[i]
                self.values[n, slot, :, start:end] = v[i]
                attended[i : i + 1] = F.scaled_dot_product_attention(
                    q[i : i + 1], self.keys[n, slot : slot + 1, :, :end], self.values[n, slot : slot + 1, :, :end],
                    is_causal=length > 1 and start == 0, scale=self.scaling, enable_gqa=True,
                )
            x = finish_layer(layer, x, attended)
        return self.norm(x)


def _positions(job: BatchJob) -> int:
    """Cache positions a job can fill: its prompt and its frame cap."""
    return job.call.inputs_embeds.shape[1] + job.call.max_new_tokens


def _padded(rows: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """`rows` (each (1, T, H)) stacked and padded with zero rows to a multiple of ROW_BLOCK."""
    count = -(-len(rows) // ROW_BLOCK) * ROW_BLOCK
    pad = [torch.zeros_like(like)] * (count - len(rows))
    return torch.cat([*rows, *pad], dim=0)


@dataclass
class _Row:
    job: BatchJob
    slot: int
    generator: torch.Generator
    seen: torch.Tensor  # (1, V) bool: first-codebook tokens generated so far
    length: int  # prompt positions
    # Made once per segment, on the device, as the one-segment loop makes them: what the talker may not
    # choose (before and after min_new_tokens), and the text fed one position per frame.
    forbidden: torch.Tensor
    eos_forbidden: torch.Tensor
    trailing: torch.Tensor  # (1, S, H)
    pad: torch.Tensor  # (1, 1, H)
    generated: int = 0
    token: torch.Tensor | None = None  # (1,) the talker's latest token
    hidden: torch.Tensor | None = None  # (1, 1, H) the talker's latest hidden state
    frames: list = field(default_factory=list)  # CPU copies, for the caller
    frame: torch.Tensor | None = None  # (1, 16) the latest frame, on the device


class BatchDecoder:
    """Decodes BatchJobs `batch` at a time with one loaded qwen-tts model (see the module docstring)."""

    def __init__(self, model) -> None:
        take_model_parts(self, model)
        talker, predictor = model.talker, model.talker.code_predictor
        self._talker_parts = (talker.model.layers, talker.model.norm, talker.model.rotary_emb)
        self._predictor_parts = (predictor.model.layers, predictor.model.norm, predictor.model.rotary_emb)
        # For tests: when a dict, receives per job key the talker's output for each of its steps, the bits a
        # token is chosen from (equal tokens can hide different logits; equal bits cannot).
        self.trace: dict | None = None
        self.last_batch = 0  # the batch size of the latest run (automatic or asked for)

    def run(self, jobs: Iterable[BatchJob], *, batch: int | None, count: int | None = None,
            halted: Callable[[], bool] | None = None) -> Iterator[tuple[BatchJob, list[torch.Tensor]]]:
        """Decode every job, `batch` at a time (None: `automatic_batch` for `count` jobs), and yield (job,
        frames) as each segment ends (end of speech or its frame cap): frames are (16,) int64 CPU tensors,
        as the fast decoder gives them. `jobs` is read as rows free up, so it may prepare each job only
        then (a book's prompts are not all held at once). Stops, yielding nothing more, when `halted()`."""
        with torch.inference_mode():
            yield from self._run(iter(jobs), batch, count, halted)

    def slots_for(self, first: BatchJob, batch: int | None, count: int | None) -> int:
        """The batch `run` uses: `batch`, or the automatic one for `count` jobs like `first`, never more
        than `count`."""
        count = count if count is not None else 1 << 30
        if batch is None:
            talker = self._talker_parts[0]
            per_position = 2 * len(talker) * talker[0].self_attn.k_proj.out_features * self.dtype.itemsize
            batch = automatic_batch(per_position, _positions(first), count, self.device)
        return max(1, min(int(batch), count))

    def _run(self, jobs: Iterator[BatchJob], batch: int | None, count: int | None,
             halted) -> Iterator[tuple[BatchJob, list[torch.Tensor]]]:
        first = next(jobs, None)
        if first is None:
            return
        slots = self.slots_for(first, batch, count)
        self.last_batch = slots
        talker = _Stack(*self._talker_parts, multimodal=True, slots=slots, capacity=_positions(first),
                        dtype=self.dtype, device=self.device)
        predictor = _Stack(*self._predictor_parts, multimodal=False, slots=slots, capacity=self.groups,
                           dtype=self.dtype, device=self.device)
        waiting: BatchJob | None = first
        free = list(range(slots))
        active: list[_Row] = []
        while waiting is not None or active:
            while waiting is not None and free:
                talker.reserve(_positions(waiting))
                row = self._admit(waiting, free.pop(0), talker)
                waiting = next(jobs, None)
                if self._finished(row):
                    free.insert(0, row.slot)
                    yield row.job, row.frames
                else:
                    active.append(row)
            if halted is not None and halted():
                return
            self._frame_step(active, predictor)
            self._talker_step(active, talker)
            for row in [r for r in active if self._finished(r)]:
                active.remove(row)
                free.append(row.slot)
                free.sort()
                yield row.job, row.frames

    def _admit(self, job: BatchJob, slot: int, talker: _Stack) -> _Row:
        """Start a job in `slot`: its prompt, run alone, and its first token."""
        call = job.call
        generator = torch.Generator(device=self.device)
        generator.manual_seed(job.seed)
        forbidden = torch.zeros(1, self.vocab, dtype=torch.bool, device=self.device)
        forbidden[0, list(call.suppress_tokens)] = True
        eos_forbidden = forbidden.clone()
        eos_forbidden[0, call.eos_token_id] = True
        row = _Row(job, slot, generator, torch.zeros(1, self.vocab, dtype=torch.bool, device=self.device),
                   length=call.inputs_embeds.shape[1], forbidden=forbidden, eos_forbidden=eos_forbidden,
                   trailing=call.trailing_text_hidden.to(self.device, self.dtype),
                   pad=call.tts_pad_embed.to(self.device, self.dtype))
        # The prompt runs alone, unpadded: it has these shapes whatever else is in the batch.
        hidden = talker.run(call.inputs_embeds.to(self.device, self.dtype), [slot], [0])
        row.hidden = hidden[:, -1:]
        row.token = self._next_token(row, row.hidden)
        return row

    def _finished(self, row: _Row) -> bool:
        call = row.job.call
        return int(row.token) == call.eos_token_id or row.generated + 1 >= call.max_new_tokens

    def _next_token(self, row: _Row, hidden: torch.Tensor) -> torch.Tensor:
        call = row.job.call
        if self.trace is not None:
            self.trace.setdefault(row.job.key, []).append(hidden.detach().clone())
        logits = penalise_repeats(self.codec_head(hidden[:, -1]).float(), row.seen, call.talker.repetition_penalty)
        mask = row.eos_forbidden if row.generated < call.min_new_tokens else row.forbidden
        token = choose(warp(logits.masked_fill(mask, float("-inf")), call.talker), call.talker, row.generator)
        row.seen.scatter_(1, token[:, None], True)
        return token

    def _codes(self, rows: list[_Row], hidden: torch.Tensor, settings: list[SamplerSettings], step: int):
        """Each live row's token of code group `step` + 1 from the predictor's output (R, T, H)."""
        scores = self.predictor_heads[step](hidden[:, -1]).float()
        return torch.cat([choose(warp(scores[i : i + 1], settings[i]), settings[i], row.generator)
                          for i, row in enumerate(rows)])

    def _frame_step(self, rows: list[_Row], predictor: _Stack) -> None:
        """Complete each row's current frame: the code predictor's 15 codes after the talker's token."""
        if not rows:
            return
        slots = [r.slot for r in rows]
        slots += [None] * (-len(rows) % ROW_BLOCK)
        firsts = torch.cat([r.token for r in rows])
        x = torch.cat((torch.cat([r.hidden for r in rows]), self.codec_embedding(firsts)[:, None]), dim=1)
        hidden = predictor.run(self.projection(_padded(list(x.split(1)), x[:1])), slots, [0] * len(slots))
        settings = [r.job.call.predictor for r in rows]
        codes = []
        for step in range(self.groups - 1):
            token = self._codes(rows, hidden, settings, step)
            codes.append(token)
            if step + 1 < self.groups - 1:
                embedded = self.predictor_embeddings[step](token)[:, None]
                hidden = predictor.run(self.projection(_padded(list(embedded.split(1)), embedded[:1])), slots,
                                       [step + 2] * len(slots))
        frames = torch.cat((firsts[:, None], torch.stack(codes, dim=1)), dim=1)  # (rows, 16)
        for row, frame in zip(rows, frames, strict=True):
            row.frame = frame[None]
            row.frames.append(frame.cpu())

    def _talker_step(self, rows: list[_Row], talker: _Stack) -> None:
        """Feed each row's finished frame (and its next text position) to the talker; choose its next token."""
        if not rows:
            return
        inputs = []
        for row in rows:
            embedding = frame_embedding(self.codec_embedding, self.predictor_embeddings, row.frame)
            used = row.generated
            text = row.trailing[:, used : used + 1] if used < row.trailing.shape[1] else row.pad
            inputs.append(embedding + text)
        slots = [r.slot for r in rows] + [None] * (-len(rows) % ROW_BLOCK)
        starts = [r.length + r.generated for r in rows] + [0] * (-len(rows) % ROW_BLOCK)
        hidden = talker.run(_padded(inputs, inputs[0]), slots, starts)
        for i, row in enumerate(rows):
            row.generated += 1
            row.hidden = hidden[i : i + 1]
            row.token = self._next_token(row, row.hidden)

