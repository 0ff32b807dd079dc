"""The studio's own decode loop for the talker and the code predictor (the "fast" decoder).

qwen-tts generates with Hugging Face `generate` twice over: per codec frame, one `generate` step of the
talker, inside whose forward a whole second `generate()` of the code predictor makes the other 15 codes,
both with dynamic caches that grow by concatenation. This module runs the same model weights in a plain
loop instead:

- the prompt is the one qwen-tts builds: its `generate` is called and stopped at the talker's
  `generate`, whose arguments (prompt embeddings, the text still to be read, the sampling settings) are
  taken as they are, so every voice kind (designed, preset, cloned with ICL or x-vector only,
  fine-tuned) gets exactly the reference prompt;
- key/value caches are preallocated, for the talker to the segment's frame cap, for the code predictor
  to its 16 positions, and written in place;
- attention is PyTorch's scaled_dot_product_attention straight over the cache (never FlashAttention-2);
- tokens are chosen on the device with transformers' semantics (see `sampling`), and the only host
  synchronisation per frame is the end-of-speech check and handing the frame to the caller;
- each frame is yielded the moment the code predictor has completed it, before the talker's next step.

The layers' own modules (projections, norms, MLPs) do the arithmetic, so in fp32 eager mode the fast loop
computes what the reference computes up to the order of floating-point operations inside attention;
tests/engine/test_fast_decode.py checks the codes frame by frame under greedy decoding.

Compiling (`torch.compile`) and int8 weights are options of `FastDecoder`; see `fast_options`.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from studio.engine.decoder_options import DecoderOptions
from studio.engine.sampling import SamplerSettings, choose, penalise_repeats, warp


def _serve(work: queue.SimpleQueue) -> None:
    """The decoder thread: runs what is queued, in order, until None. Holds no reference to the decoder,
    so dropping the decoder ends it."""
    while (run := work.get()) is not None:
        try:
            run()
        except Exception:  # the jobs report their own errors; this keeps the thread for the next one
            logging.getLogger(__name__).exception("fast decoder job failed")
        del run  # the finished job's closure (and the decoder it holds) must not live on in this frame


class _Captured(Exception):
    """Stops qwen-tts's generate at the talker call once its arguments are taken."""


@dataclass
class TalkerCall:
    """What qwen-tts's generate hands the talker's generate: the prompt and how to sample."""

    inputs_embeds: torch.Tensor  # (1, P, H) the prompt
    trailing_text_hidden: torch.Tensor  # (1, S, H) text embeddings fed one per generated frame
    tts_pad_embed: torch.Tensor  # (1, 1, H) fed once the trailing text is used up
    talker: SamplerSettings
    predictor: SamplerSettings
    max_new_tokens: int
    min_new_tokens: int
    eos_token_id: int
    suppress_tokens: tuple[int, ...]


def capture_talker_call(model, generate_kwargs: dict) -> TalkerCall:
    """Run qwen-tts's `model.generate(**generate_kwargs)` up to the talker's generate and return its inputs."""
    taken: dict = {}

    def take(**kwargs):
        taken.update(kwargs)
        raise _Captured()

    model.talker.generate = take  # an instance attribute shadows the method for this call only
    try:
        with torch.inference_mode():
            model.generate(**generate_kwargs)
    except _Captured:
        pass
    finally:
        del model.talker.generate
    if not taken:
        raise RuntimeError("qwen-tts's generate did not reach the talker")
    mask = taken["attention_mask"]
    if mask.shape[0] != 1 or not bool(mask.all()):
        raise ValueError("the fast decoder generates one unpadded request at a time")
    sample = bool(taken["do_sample"])
    return TalkerCall(
        inputs_embeds=taken["inputs_embeds"],
        trailing_text_hidden=taken["trailing_text_hidden"],
        tts_pad_embed=taken["tts_pad_embed"],
        talker=SamplerSettings(sample, float(taken["temperature"]), int(taken["top_k"] or 0),
                               float(taken["top_p"]), float(taken["repetition_penalty"])),
        predictor=SamplerSettings(bool(taken["subtalker_dosample"]), float(taken["subtalker_temperature"]),
                                  int(taken["subtalker_top_k"] or 0), float(taken["subtalker_top_p"])),
        max_new_tokens=int(taken["max_new_tokens"]),
        min_new_tokens=int(taken["min_new_tokens"]),
        eos_token_id=int(taken["eos_token_id"]),
        suppress_tokens=tuple(int(t) for t in taken["suppress_tokens"]),
    )


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_tables(rotary, capacity: int, *, multimodal: bool, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (capacity, head_dim) for positions 0..capacity-1. The talker's multimodal rotary embedding
    gives the same angle in all three sections for speech (all three position ids are equal), so a plain
    table reproduces it."""
    positions = torch.arange(capacity, device=device)[None]
    probe = torch.zeros(1, dtype=dtype, device=device)
    if multimodal:
        cos, sin = rotary(probe, positions[None].expand(3, 1, -1))
        return cos[0, 0], sin[0, 0]
    cos, sin = rotary(probe, positions)
    return cos[0], sin[0]


def layer_qkv(layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, head_dim: int):
    """A layer's normed, rotated queries and keys and its values for `x` (B, T, H), heads first."""
    attn = layer.self_attn
    h = layer.input_layernorm(x)
    shape = (x.shape[0], x.shape[1], -1, head_dim)
    q = attn.q_norm(attn.q_proj(h).view(shape)).transpose(1, 2)
    k = attn.k_norm(attn.k_proj(h).view(shape)).transpose(1, 2)
    v = attn.v_proj(h).view(shape).transpose(1, 2)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin, v


def finish_layer(layer, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
    """The residual after attention (B, heads, T, D), then the MLP block."""
    x = x + layer.self_attn.o_proj(attended.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))
    return x + layer.mlp(layer.post_attention_layernorm(x))


def frame_embedding(codec_embedding, predictor_embeddings, frame: torch.Tensor) -> torch.Tensor:
    """The talker's input for a frame's 16 codes (1, 16) -> (1, 1, H): the sum of their embeddings."""
    parts = [codec_embedding(frame[:, :1])]
    parts += [embed(frame[:, i + 1 : i + 2]) for i, embed in enumerate(predictor_embeddings)]
    return torch.cat(parts, dim=1).sum(1, keepdim=True)


class DecoderStack:
    """A stack of qwen-tts decoder layers run over a preallocated key/value cache.

    Talker and code-predictor layers share one shape (pre-norm attention with per-head q/k norms and
    rotary positions, then a gated MLP), so one class serves both. `cos`/`sin` are tables indexed by
    position; the talker's multimodal rotary embedding gives the same angle in all three sections for
    speech (all three position ids are equal), so a plain table reproduces it.
    """

    def __init__(self, layers, norm, rotary, *, multimodal_rope: bool, capacity: int, dtype, device) -> None:
        self.layers = list(layers)
        self.norm = norm
        attn = self.layers[0].self_attn
        self.head_dim = attn.head_dim
        self.scaling = attn.scaling
        self.kv_heads = attn.k_proj.out_features // self.head_dim
        self._rotary = rotary
        self._multimodal = multimodal_rope
        self.dtype, self.device = dtype, device
        self.capacity = 0
        self.keys = self.values = None
        self.cos = self.sin = None
        self.reserve(capacity)

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` positions (the cache and rotary tables grow, never shrink)."""
        if capacity <= self.capacity:
            return
        # Whole blocks of 512 positions (41 s of speech): a compiled step is specialised to the cache's
        # size, so growing in blocks keeps recompiles rare.
        capacity = -(-capacity // 512) * 512 if capacity > 64 else capacity
        shape = (len(self.layers), 1, self.kv_heads, capacity, self.head_dim)
        self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.cos, self.sin = rotary_tables(self._rotary, capacity, multimodal=self._multimodal, dtype=self.dtype,
                                           device=self.device)
        self.capacity = capacity
        self.positions = torch.arange(capacity, device=self.device)
        if self.device.type == "cuda":
            from torch import _dynamo

            # A CUDA graph replays fixed addresses: the caches and tables it reads and writes must be
            # known to stay put, or torch.compile copies them in and out (or skips the graph) each step.
            for tensor in (self.keys, self.values, self.cos, self.sin, self.positions):
                _dynamo.mark_static_address(tensor)

    def _projections(self, layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        return layer_qkv(layer, x, cos, sin, self.head_dim)

    _rest_of_layer = staticmethod(finish_layer)

    def step(self, x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """One position (1, 1, H) at `position` (a (1,) tensor) -> normed output (1, 1, H).

        The same arithmetic as `forward`, with shapes that do not change from step to step (attention
        covers the whole cache, masked past `position`), so a compiled graph or a CUDA graph of it is
        replayed unchanged for every frame."""
        cos, sin = self.cos.index_select(0, position), self.sin.index_select(0, position)
        visible = (self.positions <= position)[None, :]  # (1, capacity): one query row
        for i, layer in enumerate(self.layers):
            q, k, v = self._projections(layer, x, cos, sin)
            self.keys[i].index_copy_(2, position, k)
            self.values[i].index_copy_(2, position, v)
            attended = F.scaled_dot_product_attention(q, self.keys[i], self.values[i], attn_mask=visible,
                                                      scale=self.scaling, enable_gqa=True)
            x = self._rest_of_layer(layer, x, attended)
        return self.norm(x)

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Hidden states (1, T, H) at positions start..start+T-1 -> normed outputs; caches their keys."""
        end = start + x.shape[1]
        cos, sin = self.cos[start:end], self.sin[start:end]
        for i, layer in enumerate(self.layers):
            q, k, v = self._projections(layer, x, cos, sin)
            self.keys[i, :, :, start:end] = k
            self.values[i, :, :, start:end] = v
            attended = F.scaled_dot_product_attention(
                q, self.keys[i, :, :, :end], self.values[i, :, :, :end],
                is_causal=x.shape[1] > 1 and start == 0, scale=self.scaling, enable_gqa=True,
            )
            x = self._rest_of_layer(layer, x, attended)
        return self.norm(x)


def take_model_parts(decoder, model) -> None:
    """What a decode loop runs of a qwen-tts model, as attributes of `decoder`: the device and precision,
    the codec and code-predictor embeddings and heads, the projection between them, the group count and
    the vocabulary size."""
    talker = model.talker
    predictor = talker.code_predictor
    decoder.model = model
    param = next(talker.parameters())
    decoder.device, decoder.dtype = param.device, param.dtype
    decoder.codec_embedding = talker.get_input_embeddings()
    decoder.predictor_embeddings = predictor.get_input_embeddings()
    decoder.projection = predictor.small_to_mtp_projection
    decoder.groups = talker.config.num_code_groups
    decoder.vocab = talker.config.vocab_size
    decoder.codec_head, decoder.predictor_heads = talker.codec_head, predictor.lm_head


class FastDecoder:
    """Generates codec frames for one loaded qwen-tts model with the studio's own loop.

    Built once per loaded model and options, reused for every segment. Its work (the compile probe and
    every segment's frames) runs on one long-lived thread of its own (`run_on_decoder_thread`): torch
    keeps CUDA graphs per thread (cudagraph trees live in thread-local state), so compiled steps recorded
    on one thread would be recorded again, in a new memory pool, on every new thread. Segments queue on
    that thread one after another; the static caches are shared and never used by two at once.
    """

    def __init__(self, model, options: DecoderOptions | None = None, *, progress=None) -> None:
        self.options = options or DecoderOptions()
        take_model_parts(self, model)
        talker, predictor = model.talker, model.talker.code_predictor
        talker_layers, predictor_layers = talker.model.layers, predictor.model.layers
        if self.options.int8:
            if self.device.type != "cpu":
                raise ValueError("int8 weights are for the CPU; on a GPU the model runs in bfloat16")
            if progress:
                progress("preparing int8 weights for the decoder (once per loaded model)")
            talker_layers, predictor_layers, self.codec_head, self.predictor_heads, self.projection = (
                int8_copy(m) for m in (talker_layers, predictor_layers, self.codec_head, self.predictor_heads,
                                       self.projection))
        self.talker_stack = DecoderStack(
            talker_layers, talker.model.norm, talker.model.rotary_emb, multimodal_rope=True,
            capacity=512, dtype=self.dtype, device=self.device,
        )
        self.predictor_stack = DecoderStack(
            predictor_layers, predictor.model.norm, predictor.model.rotary_emb, multimodal_rope=False,
            capacity=self.groups, dtype=self.dtype, device=self.device,
        )
        self._predict = self.predict_codes
        self._talker_step = self._eager_talker_step
        # For tests: a list that receives, per chosen token in order, the gap between its two best
        # processed logits (a tie decided by float rounding explains a divergence from the reference).
        self.margins: list[float] | None = None
        self.compile_status = "not compiled"
        # A daemon thread, not an executor's: a render abandoned at exit must not hold the process open.
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=_serve, args=(self._work,), name="fast-decoder", daemon=True)
        self._thread.start()
        weakref.finalize(self, self._work.put, None)  # the thread ends with its decoder
        if self.options.compile:
            from studio.engine.fast_compile import compile_steps

            done: Future = Future()

            def compile_here() -> None:
                try:
                    done.set_result(compile_steps(self, progress=progress))
                except BaseException as exc:  # noqa: BLE001 - raised again in the building thread
                    done.set_exception(exc)

            self.run_on_decoder_thread(compile_here)
            self.compile_status = done.result()

    def run_on_decoder_thread(self, run: Callable[[], None]) -> None:
        """Queue `run` for the decoder's thread; it runs after whatever was queued before it."""
        self._work.put(run)

    # --- one frame -------------------------------------------------------------------------------------

    def predict_codes(self, past_hidden: torch.Tensor, first: torch.Tensor, settings: SamplerSettings) -> torch.Tensor:
        """The 15 codes after `first` (1,) for the talker's last hidden state (1, 1, H) -> (1, 15)."""
        stack = self.predictor_stack
        x = torch.cat((past_hidden, self.codec_embedding(first)[:, None]), dim=1)
        hidden = stack.forward(self.projection(x), 0)
        codes = []
        for step in range(self.groups - 1):
            scores = warp(self.predictor_heads[step](hidden[:, -1]).float(), settings)
            self._note_margin(scores)
            token = choose(scores, settings)
            codes.append(token)
            if step + 1 < self.groups - 1:
                embedded = self.predictor_embeddings[step](token)[:, None]
                hidden = stack.forward(self.projection(embedded), step + 2)
        return torch.stack(codes, dim=1)

    def _note_margin(self, scores: torch.Tensor) -> None:
        if self.margins is not None:
            best = torch.topk(scores[0], 2).values
            self.margins.append(float(best[0] - best[1]))

    def frame_embedding(self, frame: torch.Tensor) -> torch.Tensor:
        return frame_embedding(self.codec_embedding, self.predictor_embeddings, frame)

    def talker_input(self, frame: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.frame_embedding(frame) + text

    def _eager_talker_step(self, x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        return self.talker_stack.forward(x, int(position))

    # --- a whole segment -------------------------------------------------------------------------------

    def frames(self, call: TalkerCall, *, halted=None) -> Iterator[torch.Tensor]:
        """Yield each frame's 16 codes (a CPU int64 tensor) until end of speech, the frame cap, or `halted()`."""
        with torch.inference_mode():
            yield from self._frames(call, halted)

    def _frames(self, call: TalkerCall, halted) -> Iterator[torch.Tensor]:
        prompt = call.inputs_embeds.to(self.device, self.dtype)
        trailing = call.trailing_text_hidden.to(self.device, self.dtype)
        pad = call.tts_pad_embed.to(self.device, self.dtype)
        length = prompt.shape[1]
        stack = self.talker_stack
        stack.reserve(length + call.max_new_tokens)
        forbidden = torch.zeros(1, self.vocab, dtype=torch.bool, device=self.device)
        forbidden[0, list(call.suppress_tokens)] = True
        eos_forbidden = forbidden.clone()
        eos_forbidden[0, call.eos_token_id] = True
        seen = torch.zeros(1, self.vocab, dtype=torch.bool, device=self.device)
        position = torch.zeros(1, dtype=torch.long, device=self.device)

        def next_token(hidden: torch.Tensor, generated: int) -> torch.Tensor:
            logits = penalise_repeats(self.codec_head(hidden[:, -1]).float(), seen, call.talker.repetition_penalty)
            mask = eos_forbidden if generated < call.min_new_tokens else forbidden
            scores = warp(logits.masked_fill(mask, float("-inf")), call.talker)
            self._note_margin(scores)
            token = choose(scores, call.talker)
            seen.scatter_(1, token[:, None], True)
            return token

        hidden = stack.forward(prompt, 0)
        token = next_token(hidden, 0)
        for generated in range(1, call.max_new_tokens):
            if int(token) == call.eos_token_id or (halted is not None and halted()):
                return
            frame = torch.cat((token[:, None], self._predict(hidden[:, -1:], token, call.predictor)), dim=1)
            yield frame[0].cpu()
            text = trailing[:, generated - 1 : generated] if generated - 1 < trailing.shape[1] else pad
            position.fill_(length + generated - 1)
            hidden = self._talker_step(self.talker_input(frame, text), position)
            token = next_token(hidden, generated)


def int8_copy(module):
    """A copy of `module` whose nn.Linear layers hold int8 weights (per output channel) and quantise their
    input per call: torch's dynamic quantisation, which runs on fbgemm/oneDNN int8 kernels on x86 CPUs.
    The model's own weights stay as they were, so the reference path is unchanged. A list of layers is
    copied one layer at a time, so the float copy in flight is one layer, not the whole talker."""
    import copy
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if isinstance(module, torch.nn.ModuleList):
        return torch.nn.ModuleList([int8_copy(layer) for layer in module])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces the move of this API to torchao
        return quantize_dynamic(copy.deepcopy(module), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                dtype=torch.qint8, inplace=True)
