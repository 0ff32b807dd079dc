"""The pronunciation dictionary through the real render path and cache (tiny VoiceDesign checkpoint): the
model reads the respelling, and an edit re-renders exactly the lines that contain its term."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio.core.project import GenerationParams, Project
from studio.core.pronunciation import Pronunciation
from studio.core.voice import VoiceSpec
from studio.engine import synth as synth_module
from studio.engine.render import DONE
from studio.session.pipeline import RenderJob, run_job
from studio.session.render_plan import plan_project
from studio.session.residency import ModelResidency

SCRIPT = "Mr Nguyen arrived.\nThe rain stopped.\n[Whispering] nguyen smiled.\nNguyenville is far.\n"


@pytest.fixture
def read_by_model(monkeypatch):
    """The text of every request the synthesizer was given (a spy on the real method)."""
    texts: list[str] = []
    real = synth_module.Synthesizer.stream

    def stream(self, request, **kwargs):
        texts.append(request.text)
        return real(self, request, **kwargs)

    monkeypatch.setattr(synth_module.Synthesizer, "stream", stream)
    return texts


def render(project: Project, checkpoint, cache_dir) -> dict[int, bool]:
    """Render the project; returns line -> whether its segment came from the cache."""
    voice = VoiceSpec.design("A calm narrator")
    job = RenderJob(job_id=1, segments=plan_project(project, source="test"), voices={None: voice},
                    models={None: str(checkpoint)}, cache_dir=cache_dir, generation=GenerationParams(max_new_tokens=6))
    outcome = run_job(job, ModelResidency(device="cpu", cpu_threads=2))
    assert outcome.error is None and all(r.state == DONE for r in outcome.results)
    return {r.segment.line: r.cached for r in outcome.results}


def test_the_model_reads_the_respelling_and_an_edit_rerenders_only_the_lines_with_the_term(
        tiny_checkpoints, tmp_path, read_by_model):
    checkpoint, cache = tiny_checkpoints["voice_design"], tmp_path / "cache"
    project = Project(script=SCRIPT)
    assert render(project, checkpoint, cache) == {1: False, 2: False, 3: False, 4: False}

    project.pronunciations = [Pronunciation("Nguyen", "Win")]
    read_by_model.clear()
    # Whole word, any case: lines 1 and 3 change; "Nguyenville" (line 4) and line 2 come from the cache.
    assert render(project, checkpoint, cache) == {1: False, 2: True, 3: False, 4: True}
    assert read_by_model == ["Mr Win arrived.", "Win smiled."]

    project.pronunciations = [replace(project.pronunciations[0], say="Nwin")]  # the entry is edited
    read_by_model.clear()
    assert render(project, checkpoint, cache) == {1: False, 2: True, 3: False, 4: True}
    assert read_by_model == ["Mr Nwin arrived.", "Nwin smiled."]

    project.pronunciations = []  # removed: back to the audio rendered first, all from the cache
    read_by_model.clear()
    assert render(project, checkpoint, cache) == {1: True, 2: True, 3: True, 4: True}
    assert read_by_model == []


def test_the_plan_keeps_the_written_text_for_subtitles_and_scopes_entries_by_voice():
    project = Project(script="[voice: Ann]Hi Nguyen.\n[voice: Bob]Hi Nguyen.")
    project.pronunciations = [Pronunciation("Nguyen", "Win", voice="Bob")]
    ann, bob = plan_project(project, source="test", check_cast=False)
    assert (ann.text, ann.spoken, ann.model_text) == ("Hi Nguyen.", None, "Hi Nguyen.")
    assert (bob.text, bob.spoken, bob.model_text) == ("Hi Nguyen.", "Hi Win.", "Hi Win.")
