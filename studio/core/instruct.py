"""The instruct text: voice identity first, then the delivery of this one segment.

The identity lock rests on this ordering. A designed voice's description is repeated word for word in
every segment's instruct, and the emotion and directives only ever follow it, so changing a segment
from a whisper to a shout changes the delivery clause and nothing that describes who is speaking.
"""

from __future__ import annotations

from collections.abc import Mapping

# Directives the engine consumes itself; they are not delivery instructions for the model.
ENGINE_DIRECTIVES = frozenset({"language"})


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    return text if text[-1] in ".!?。！？" else text + "."


def delivery_directives(directives: Mapping[str, str]) -> dict[str, str]:
    """The directives that describe delivery (everything but what the engine consumes), in order."""
    return {key: value for key, value in directives.items() if key not in ENGINE_DIRECTIVES}


def build_instruct(
    *, identity: str | None, emotion: str | None, directives: Mapping[str, str] | None = None
) -> str:
    """Compose the instruct for one segment; "" when there is nothing to say.

    >>> build_instruct(identity="A deep, raspy voice", emotion="Whispering", directives={"pace": "slow"})
    'A deep, raspy voice. Delivery: Whispering; pace: slow.'
    """
    parts = []
    if identity and identity.strip():
        parts.append(_sentence(identity))
    delivery = []
    if emotion and emotion.strip():
        delivery.append(" ".join(emotion.split()))
    for key, value in delivery_directives(directives or {}).items():
        delivery.append(f"{key}: {' '.join(value.split())}")
    if delivery:
        parts.append(_sentence("Delivery: " + "; ".join(delivery)))
    return " ".join(parts)
