"""Batched decoding (issue #21): segments decoded together, each exactly as it would be alone.

Through the real engine on tiny checkpoints, CPU. "Alone" is the same render with the segment by itself;
the batched runs admit segments mid-run as others end, so every segment meets different neighbours.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

from studio.core.cache import RenderCache
from studio.core.plan import plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine import batch_decode
from studio.engine.render import DONE, FAILED, RenderCallbacks, RenderOptions, render_segments
from studio.engine.synth import Cancelled, Synthesizer, SynthReport, SynthRequest

SCRIPT = ("Hello there.\n[Whispering]A much longer line that goes on for a while, with commas.\nShort.\n"
          "[pause 0.3s]\n[Angry]Fourth line here.\nFive.\n")


def _options(batch: int, tokens: int = 14) -> RenderOptions:
    return RenderOptions(generation=GenerationParams(max_new_tokens=tokens), batch=batch)


def _render(loaded, voice, segments, batch, **kwargs):
    return render_segments(segments, synth=Synthesizer(loaded), voices={None: voice}, cache=kwargs.pop("cache", None),
                           options=kwargs.pop("options", _options(batch)), **kwargs)


def _segments():
    return plan_segments(parse_script(SCRIPT))


@pytest.mark.parametrize("kind", ["voice_design", "base"])
def test_each_segment_is_bit_identical_to_rendering_it_alone(loaded_models, clone_voice, kind):
    loaded = loaded_models(kind)
    voice = VoiceSpec.design("A calm voice") if kind == "voice_design" else clone_voice
    segments = _segments()
    alone = [_render(loaded, voice, [segment], batch=4)[0] for segment in segments]
    for batch in (2, 4):
        together = _render(loaded, voice, segments, batch=batch)
        assert [r.state for r in together] == [DONE] * len(segments)
        for mine, single in zip(together, alone, strict=True):
            assert mine.segment.index == single.segment.index
            np.testing.assert_array_equal(mine.samples, single.samples)
    # Not trivially so: the lines differ from one another.
    speech = [r.samples for r in alone if r.segment.kind == "speech"]
    assert not np.array_equal(speech[0][:1000], speech[2][:1000])


def test_every_step_computes_the_same_bits_as_alone(loaded_models):
    """Equal tokens can hide different logits (a different BLAS kernel for a different number of rows);
    the talker's outputs themselves must be equal, bit for bit, at every step."""
    loaded = loaded_models("voice_design")
    synth = Synthesizer(loaded)
    voice = VoiceSpec.design("A calm voice")
    requests = [SynthRequest(text=text, voice=voice, language="english", seed=40 + i,
                             generation=GenerationParams(max_new_tokens=6 + 4 * i))
                for i, text in enumerate(["One.", "Two is longer than one.", "Three.", "Four, and more.", "Five."])]

    def traced(group, batch):
        decoder = batch_decode.BatchDecoder(loaded.tts.model)
        decoder.trace = {}
        synth._batch = decoder
        jobs = [synth.batch_job(requests[i], i, SynthReport()) for i in group]
        list(synth.run_batch(jobs, batch=batch))
        return decoder.trace

    alone = {i: traced([i], 1)[i] for i in range(len(requests))}
    together = traced(range(len(requests)), 3)
    for i, steps in alone.items():
        assert len(together[i]) == len(steps)
        assert all(torch.equal(a, b) for a, b in zip(together[i], steps, strict=True)), f"request {i}"


def test_each_segment_has_its_own_random_stream(loaded_models):
    """Two copies of one segment in one batch get the same audio: a shared generator would give them
    different draws. Another seed gives other audio."""
    loaded = loaded_models("voice_design")
    [segment] = plan_segments(parse_script("The same line twice."))
    twin = dataclasses.replace(segment, index=1)
    other = dataclasses.replace(segment, index=2, seed=segment.seed + 1)
    first, second, third = _render(loaded, VoiceSpec.design("A calm voice"), [segment, twin, other], batch=3)
    np.testing.assert_array_equal(first.samples, second.samples)
    assert not np.array_equal(first.samples, third.samples)


def test_a_batched_render_caches_reports_and_resumes(loaded_models, tmp_path):
    loaded = loaded_models("voice_design")
    cache = RenderCache(tmp_path / "cache")
    segments = _segments()
    chunks, finished, started = {}, [], []
    callbacks = RenderCallbacks(segment_started=started.append,
                                chunk_ready=lambda i, chunk: chunks.setdefault(i, []).append(chunk),
                                segment_finished=lambda r: finished.append(r.segment.index))
    first = _render(loaded, VoiceSpec.design("A calm voice"), segments, batch=3, cache=cache, callbacks=callbacks)
    assert sorted(started) == sorted(finished) == [s.index for s in segments]
    for result in first:  # each segment's audio arrives whole, once
        [chunk] = chunks[result.segment.index]
        assert chunk.final and np.array_equal(chunk.samples, result.samples)
    again = _render(loaded, VoiceSpec.design("A calm voice"), segments, batch=3, cache=cache)
    assert all(r.cached for r in again if r.segment.kind == "speech")
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_a_segment_without_a_voice_fails_alone(loaded_models):
    loaded = loaded_models("voice_design")
    segments = plan_segments(parse_script("One.\n[voice: Ghost]Boo.\n[voice: Ann]Three."))
    voice = VoiceSpec.design("A calm voice")
    results = render_segments(segments, synth=Synthesizer(loaded), voices={None: voice, "Ann": voice}, cache=None,
                              options=_options(3))
    assert [r.state for r in results] == [DONE, FAILED, DONE]
    assert "voice 'Ghost'" in results[1].error


def test_out_of_memory_halves_the_batch_and_keeps_what_finished(loaded_models, monkeypatch):
    loaded = loaded_models("voice_design")
    segments = _segments()
    expected = _render(loaded, VoiceSpec.design("A calm voice"), segments, batch=4)
    batches = []
    real = batch_decode.BatchDecoder.run

    def run(self, jobs, *, batch, count=None, halted=None):
        batches.append(batch)
        for n, item in enumerate(real(self, jobs, batch=batch, count=count, halted=halted)):
            if batch == 4 and n == 1:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            yield item

    monkeypatch.setattr(batch_decode.BatchDecoder, "run", run)
    results = _render(loaded, VoiceSpec.design("A calm voice"), segments, batch=4)
    assert batches == [4, 2]
    for mine, theirs in zip(results, expected, strict=True):
        assert mine.state == DONE
        np.testing.assert_array_equal(mine.samples, theirs.samples)


def test_cancelling_stops_the_batch(loaded_models, tmp_path):
    loaded = loaded_models("voice_design")
    cancel = threading.Event()
    cache = RenderCache(tmp_path / "cache")
    finished = []

    def on_finished(result):
        finished.append(result)
        if result.segment.kind == "speech":
            cancel.set()

    with pytest.raises(Cancelled):
        _render(loaded, VoiceSpec.design("A calm voice"), _segments(), batch=2, cache=cache, cancel=cancel,
                callbacks=RenderCallbacks(segment_finished=on_finished))
    # The first two segments end at the same step (their frame cap); nothing is decoded after it.
    speech = [r for r in finished if r.segment.kind == "speech"]
    assert [r.segment.line for r in speech] == [1, 2]
    assert all(cache.get(r.key) is not None for r in speech)


def test_prompts_are_made_as_the_batch_has_room(loaded_models, monkeypatch):
    """A book's thousands of prompts are not all held at once: a job is prepared when a row can take it
    (one ahead), so when the first segments finish, the last ones are not prepared yet."""
    loaded = loaded_models("voice_design")
    prepared, seen_at_first_finish = [], []
    real = Synthesizer.batch_job

    def batch_job(self, request, key, report):
        prepared.append(key)
        return real(self, request, key, report)

    monkeypatch.setattr(Synthesizer, "batch_job", batch_job)

    def finished(result):
        if result.segment.kind == "speech" and not seen_at_first_finish:
            seen_at_first_finish.append(len(prepared))

    segments = _segments()
    results = _render(loaded, VoiceSpec.design("A calm voice"), segments, batch=2,
                      callbacks=RenderCallbacks(segment_finished=finished))
    assert all(r.state == DONE for r in results)
    speech = [s.index for s in segments if s.kind == "speech"]
    assert sorted(prepared) == speech
    assert seen_at_first_finish == [3]  # two rows and the next in line, of five
