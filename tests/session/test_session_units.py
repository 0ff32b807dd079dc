"""The render session's rules, one at a time: checkpoint choice, pre-flight, streaming order, restore, LRU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core.plan import PlannedSegment, plan_segments
from studio.core.script import ScriptModel
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.render import DONE, FAILED, SegmentResult
from studio.session.checkpoints import Checkpoint, choose_checkpoint, describe_source
from studio.session.pipeline import RenderJob
from studio.session.preflight import FIX_MODELS, FIX_SCRIPT, FIX_VOICES, check_plan, renderable
from studio.session.render_session import RenderSession, SegmentState
from studio.session.residency import ModelResidency


def _checkpoint(source, model_type, size="1b7", speakers=()):
    return Checkpoint(source=source, folder=Path(source), model_type=model_type, size=size, speakers=speakers,
                      languages=("auto", "english"))


def test_a_voice_gets_its_own_model_else_the_project_model_of_its_type_else_the_best_installed():
    installed = [_checkpoint("vd-small", "voice_design", "0b6"), _checkpoint("vd-big", "voice_design"),
                 _checkpoint("cv-a", "custom_voice", speakers=("serena",)),
                 _checkpoint("cv-b", "custom_voice", speakers=("ryan",)), _checkpoint("base", "base")]
    designed = VoiceSpec.design("a narrator")
    assert choose_checkpoint(designed, preferred=None, installed=installed) == "vd-big"  # 1.7B first
    assert choose_checkpoint(designed, preferred="vd-small", installed=installed) == "vd-small"  # the project's
    assert choose_checkpoint(designed, preferred="base", installed=installed) == "vd-big"  # wrong type: not it
    assert choose_checkpoint(VoiceSpec.preset("Ryan"), preferred=None, installed=installed) == "cv-b"
    assert choose_checkpoint(VoiceSpec("design", description="x", model="mine"), preferred="vd-small",
                             installed=installed) == "mine"
    assert choose_checkpoint(VoiceSpec.clone("a.wav", "t"), preferred=None, installed=installed[:2]) is None


def test_a_checkpoint_is_described_from_its_config_as_qwen_tts_reads_it(tiny_checkpoints):
    described = describe_source(str(tiny_checkpoints["custom_voice"]))
    assert (described.model_type, described.size, described.label) == ("custom_voice", "1b7", "CustomVoice 1.7B")
    assert "ryan" in described.speakers and "auto" in described.languages
    assert "beijing_dialect" not in described.languages  # qwen-tts lists no dialects as languages
    assert describe_source("/no/such/folder") is None


def test_preflight_names_every_kind_of_problem_with_its_lines_and_where_to_fix_it(tiny_checkpoints, tmp_path):
    # (A [language: ...] tag carries on to the lines after it, so the Klingon line comes last.)
    script = ("Plain line.\n[voice: Gone]Hi.\n[voice: Host]Hello.\n[voice: Teller]Once.\n"
              "[voice: Guest]Me.\n[voice: Wrong]Oops.\n[voice: Teller][language: klingon]Qapla'.\n")
    segments = plan_segments(parse_script(script))
    voices = {
        "Host": VoiceSpec.preset("nobody"),
        "Teller": VoiceSpec.design("an old storyteller"),
        "Guest": VoiceSpec.clone(tmp_path / "missing.wav", "t"),
        "Wrong": VoiceSpec.design("x"),
    }
    models = {"Host": str(tiny_checkpoints["custom_voice"]), "Teller": str(tiny_checkpoints["voice_design"]),
              "Guest": str(tiny_checkpoints["base"]), "Wrong": str(tiny_checkpoints["base"])}
    problems = check_plan(segments, voices=voices, models=models,
                          voice_errors={"Gone": "cast member 'Gone': no voice profile 'gone-1' in the library"})
    summary = [(p.line, p.cast_name, p.where, p.lines) for p in problems]
    assert summary == [
        (1, None, FIX_VOICES, (1,)),  # no default voice: chosen in Voices
        (2, "Gone", FIX_VOICES, (2,)),
        (3, "Host", FIX_VOICES, (3,)),  # speaker not in the model
        (5, "Guest", FIX_VOICES, (5,)),  # unreadable clip
        (6, "Wrong", FIX_VOICES, (6,)),  # designed voice on a Base model
        (7, "Teller", FIX_SCRIPT, (7,)),  # only the Klingon line
    ]
    texts = [p.what for p in problems]
    assert "speaker 'nobody' is not in" in texts[2] and "language 'klingon'" in texts[5]
    assert "missing.wav" in texts[3] and "needs a VoiceDesign model, but" in texts[4]
    # Line 4 (the Teller in a supported language) is the only one that can render.
    assert [s.line for s in renderable(segments, problems)] == [4]
    # No model at all for a voice is a Models problem.
    (only,) = check_plan(plan_segments(parse_script("[voice: A]x")), voices={"A": VoiceSpec.design("d")},
                         models={"A": None})
    assert only.where == FIX_MODELS and "none is installed" in only.what


def _result(segment: PlannedSegment, n: int, *, state=DONE) -> SegmentResult:
    samples = np.full(n, segment.index + 1, np.float32) if state == DONE else None
    return SegmentResult(segment, state, samples=samples, model="m" if segment.kind == "speech" else "")


def _started_session(text: str):
    model = ScriptModel(text)
    segments = plan_segments(parse_script(text))
    session = RenderSession()
    job = RenderJob(job_id=session.next_job_id(), segments=[], voices={}, models={}, cache_dir=None)
    session.start(job, segments, model.lines(), full=True)
    return session, job, segments, model


def test_the_mix_streams_in_script_order_whatever_order_segments_finish_in():
    session, job, (a, b, c), _ = _started_session("One.\nTwo.\nThree.")
    # A grouped render finished the third segment first: it waits.
    assert session.chunk(job.job_id, c.index, np.ones(5, np.float32)) == []
    assert session.segment_finished(job.job_id, _result(c, 5)) == []
    # The first streams as it renders, then closes with an empty piece spanning what it streamed.
    [chunk] = session.chunk(job.job_id, a.index, np.ones(3, np.float32))
    assert chunk.segment is None and len(chunk.samples) == 3
    [closing] = session.segment_finished(job.job_id, _result(a, 3))
    assert (closing.segment, len(closing.samples), closing.start, closing.end) == (a, 0, 0, 3)
    # The second finishes: it and the held third join the mix, whole, in order, end to end.
    pieces = session.segment_finished(job.job_id, _result(b, 4))
    assert [(p.segment, p.start, p.end, len(p.samples)) for p in pieces] == [(b, 3, 7, 4), (c, 7, 12, 5)]
    # Events of another job are not this one's.
    assert session.chunk(job.job_id + 1, a.index, np.ones(2, np.float32)) == []


def test_a_failed_segment_that_streamed_makes_the_mix_rebuild_and_is_left_out():
    session, job, (a, b), model = _started_session("One.\nTwo.")
    session.chunk(job.job_id, a.index, np.ones(3, np.float32))
    assert session.segment_finished(job.job_id, _result(a, 0, state=FAILED)) == []
    [piece] = session.segment_finished(job.job_id, _result(b, 4))
    assert (piece.start, piece.end) == (3, 7)  # after the failed segment's streamed audio...
    end = session.job_finished(job.job_id, _outcome(job, [_result(a, 0, state=FAILED), _result(b, 4)]))
    assert end.kind == "failed" and end.show_mix  # ...which is why the mix is rebuilt at the end
    lines = model.lines()
    assert [r.segment.line for r in session.mix_results(lines, [1, 1])] == [2]
    assert session.lines[lines[0].id].overall() == SegmentState.FAILED


def _outcome(job, results):
    from studio.session.pipeline import JobOutcome

    return JobOutcome(job.job_id, results, 24000)


def _probed(text: str):
    model = ScriptModel(text)
    segments = plan_segments(parse_script(text))
    session = RenderSession()
    probe = RenderJob(job_id=session.next_job_id(), segments=segments, voices={}, models={}, cache_dir=None)
    session.begin_probe(probe, model.lines())
    return session, probe, model, [_result(s, 2) for s in segments]


def test_restore_shows_every_line_found_in_the_cache_and_only_once():
    session, probe, model, found = _probed("One.\nTwo.\nThree.")
    lines = model.lines()
    assert session.restore(probe.job_id, found, lines, [1, 1, 1]) == 3
    assert [session.current_render(ln).overall() for ln in lines] == [SegmentState.CACHED] * 3
    assert [r.segment.line for r in session.mix_results(lines, [1, 1, 1])] == [1, 2, 3]
    # The same answer again (or one for a project that is no longer open) changes nothing.
    assert session.restore(probe.job_id, found, lines, [1, 1, 1]) == 0


def test_restore_gives_no_line_another_lines_audio_after_a_move():
    session, probe, model, found = _probed("One.\nTwo.\nThree.")
    model.move_line(0, 2)  # the user dragged line 1 to the end while the lookup ran
    lines = model.lines()
    assert [ln.text for ln in lines] == ["Two.", "Three.", "One."]
    assert session.restore(probe.job_id, found, lines, [1, 1, 1]) == 0
    assert all(session.current_render(ln) is None for ln in lines)


def test_restore_skips_a_line_edited_after_the_lookup_began():
    session, probe, model, found = _probed("One.\nTwo.")
    model.replace(model.position(1, 0), "Two.", "Two, edited.")
    lines = model.lines()
    assert session.restore(probe.job_id, found, lines, [1, 1]) == 1
    assert session.current_render(lines[0]) is not None and session.current_render(lines[1]) is None


def test_restore_needs_every_segment_of_a_line():
    session, probe, model, found = _probed("One. [pause 0.5s] Two.\nThree.")
    lines = model.lines()
    # The cache had the pause and "One." but not "Two.": that line is still to render.
    partial = [r for r in found if r.segment.text != "Two."]
    assert session.restore(probe.job_id, partial, lines, [3, 1]) == 1
    assert session.current_render(lines[0]) is None and session.current_render(lines[1]) is not None


def test_the_least_recently_used_model_is_evicted_first(loaded_models, tiny_checkpoints):
    from studio.session.residency import measured_bytes

    loads = []

    def load(source, **_options):
        loads.append(Path(source).name)
        return loaded_models(Path(source).name)

    vd, base, cv = (str(tiny_checkpoints[k]) for k in ("voice_design", "base", "custom_voice"))
    probe = ModelResidency(loader=load)
    largest_other = max([probe.estimate_bytes(base), probe.estimate_bytes(cv)]
                        + [measured_bytes(loaded_models(k)) for k in ("base", "custom_voice")])
    # Room for the VoiceDesign model and any one other, never for all three.
    residency = ModelResidency(budget_bytes=measured_bytes(loaded_models("voice_design")) + largest_other,
                               loader=load)
    for source in (vd, base, vd, cv):
        residency.acquire(source)
    assert loads == ["voice_design", "base", "custom_voice"]
    assert residency.evictions == [base]  # the VoiceDesign model was used more recently
    assert residency.resident == [vd, cv]
