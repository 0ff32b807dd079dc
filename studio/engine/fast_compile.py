"""Compiling the fast decoder's two hot steps, checked against eager before they are trusted.

Two graphs per loaded model: the talker's one-position step over its static cache, and the code
predictor's whole 15-token loop (prefill of two positions, fourteen steps, sampling on the device),
unrolled into one graph. Both have the same shapes at every frame, so on CUDA they are captured as CUDA
graphs (mode "reduce-overhead") and replayed: one launch per step instead of hundreds of small kernels,
which is where the stock path loses most of its time on a GPU.

On the CPU only the predictor loop is compiled. Measured at the published 1.7B size on two cores
(float32): the compiled predictor loop takes 417 ms per frame against 500 eager, but the compiled
talker step 612 to 976 ms against 426 eager; its matrix products cost the same (the same MKL calls),
and inductor's generated code around them (masked attention over the static cache, norms, rotary) adds
about 175 ms. The talker step is one matrix product per weight and nothing to fuse, so it stays eager.

Compiled code is cached on disk by inductor (its FX graph cache, in the studio's cache folder), so a
second start compiles much faster. Anything going wrong (no C++ compiler, an unsupported op, a graph
that computes something else) leaves the decoder eager: the compiled steps must reproduce an eager
frame (same codes under greedy choice, hidden states within float tolerance) before they replace it.
"""

from __future__ import annotations

import logging
import os
import time

import torch

from studio.engine.sampling import SamplerSettings

log = logging.getLogger(__name__)

_GREEDY = SamplerSettings(do_sample=False)


def _inductor_cache_dir() -> None:
    from studio import paths

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(paths.cache_dir() / "torch-compile"))


def _owned(graphed):
    """`graphed` with its output copied out of the CUDA graph's memory pool. Under inference, torch treats
    every call of a compiled function as a new iteration and may reuse the previous one's outputs for
    the next: the predictor's codes would be overwritten by the talker's next step (seen on an H200:
    "accessing tensor output of CUDAGraphs that has been overwritten by a subsequent run"). The copies
    are a hidden state and 15 codes per call; on the CPU, where nothing is reused, they cost as little."""

    def call(*args):
        return graphed(*args).clone()

    return call


def _probe_frame(decoder, talker_step, predict) -> tuple[torch.Tensor, torch.Tensor]:
    """A frame computed from a fixed four-position prompt: the talker's hidden state after one step and
    the 15 codes the predictor picks greedily after it."""
    stack = decoder.talker_stack
    ids = torch.arange(4, device=decoder.device)[None] % decoder.vocab
    prompt = decoder.codec_embedding(ids)
    hidden = stack.forward(prompt, 0)
    first = torch.zeros(1, dtype=torch.long, device=decoder.device)
    codes = predict(hidden[:, -1:], first, _GREEDY)
    frame = torch.cat((first[:, None], codes), dim=1)
    position = torch.full((1,), 4, dtype=torch.long, device=decoder.device)
    hidden = talker_step(decoder.talker_input(frame, prompt[:, :1]), position)
    return hidden.float().clone(), codes.clone()


def compile_steps(decoder, *, progress=None) -> str:
    """Replace `decoder`'s talker step and predictor loop by compiled ones that match eager; says what
    happened in a few words ("compiled in 41 s", or "eager: <why>")."""
    say = progress or (lambda _message: None)
    _inductor_cache_dir()
    cuda = decoder.device.type == "cuda"
    mode = "reduce-overhead" if cuda else None  # reduce-overhead = CUDA graphs
    started = time.perf_counter()
    say("compiling the decoder (once per model; later starts reuse the compiled code)")
    try:
        step = (_owned(torch.compile(decoder.talker_stack.step, fullgraph=True, dynamic=False, mode=mode)) if cuda
                else decoder._eager_talker_step)
        predict = _owned(torch.compile(decoder.predict_codes, fullgraph=True, dynamic=False, mode=mode))
        with torch.inference_mode():
            eager_hidden, eager_codes = _probe_frame(decoder, decoder.talker_stack.step, decoder.predict_codes)
            # Twice: a CUDA graph is recorded on an early call and replayed after; the replay is what runs.
            for _ in range(2 if cuda else 1):
                hidden, codes = _probe_frame(decoder, step, predict)
    except Exception as exc:  # noqa: BLE001 - any failure to compile means: run eager
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        log.warning("the decoder stays eager: compiling failed (%s: %s)", type(exc).__name__, reason)
        return f"eager: compiling failed ({type(exc).__name__})"
    scale = float(eager_hidden.abs().max()) or 1.0
    error = float((hidden - eager_hidden).abs().max()) / scale
    tolerance = 2e-2 if decoder.dtype in (torch.bfloat16, torch.float16) else 1e-4
    if not torch.equal(codes, eager_codes) or error > tolerance:
        log.warning("the decoder stays eager: the compiled frame differs (relative error %.2g)", error)
        return "eager: the compiled frame differed from eager"
    decoder._talker_step = step
    decoder._predict = predict
    seconds = time.perf_counter() - started
    what = "" if cuda else " (the code predictor's loop; the talker step stays eager on the CPU)"
    say(f"decoder compiled in {seconds:.0f} s{what}")
    return f"compiled in {seconds:.0f} s{what}"
