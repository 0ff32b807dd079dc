"""The bundled sample project, cast for the models this machine has, so it renders in one click.

The file (``resources/sample/sample.qtts``) casts two designed voices and names no model: the studio
picks the installed checkpoint of each voice's type (studio.session.checkpoints.choose_checkpoint). On a
machine with only CustomVoice models the two voices become two of that model's preset speakers instead.
A Base model alone cannot render it: Base models only clone recordings, and the sample carries none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from studio.core.project import CastEntry, Project, load_project
from studio.core.voice import VoiceSpec
from studio.resources import resource_path
from studio.session.checkpoints import Checkpoint

SAMPLE_FILE = resource_path("sample", "sample.qtts")
# Preset speakers tried first for the sample's two voices (a low and a bright one), when the model has them.
_PREFERRED_SPEAKERS = ("uncle_fu", "ryan", "serena", "vivian", "aiden")


class SampleUnavailable(RuntimeError):
    """The sample cannot render with the installed models; str() says what to install."""


def _best(installed: Sequence[Checkpoint], model_type: str) -> Checkpoint | None:
    matching = [c for c in installed if c.model_type == model_type]
    return sorted(matching, key=lambda c: (0 if c.size == "1b7" else 1, c.source))[0] if matching else None


def sample_project(installed: Sequence[Checkpoint]) -> Project:
    """The sample project, its voices chosen for `installed`; raises SampleUnavailable when no installed
    model can speak them."""
    project = load_project(SAMPLE_FILE)
    if _best(installed, "voice_design") is not None:
        return project
    custom = _best(installed, "custom_voice")
    if custom is not None and custom.speakers:
        speakers = [s for s in _PREFERRED_SPEAKERS if s in custom.speakers]
        speakers += [s for s in custom.speakers if s not in speakers]
        names = list(project.cast)
        cast = {name: CastEntry(voice=VoiceSpec.preset(speakers[i % len(speakers)])) for i, name in enumerate(names)}
        return replace(project, cast=cast)
    have = ", ".join(sorted({c.label for c in installed})) or "no model"
    raise SampleUnavailable(
        f"The sample project needs a VoiceDesign or CustomVoice model, and this machine has {have} "
        "(a Base model only clones recordings). Get one with Render → Models…, e.g. "
        "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign.")
