"""Run by test_playback.py in a subprocess whose HOME holds an .asoundrc routing ALSA's default device
to a file: renders two segments with the real engine and plays them through a real sounddevice stream,
starting playback after the first segment while the second is still being generated.

argv: CHECKPOINT_DIR OUT_DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from studio.audio.buffers import GrowingAudio
from studio.audio.playback import Player, default_output_device
from studio.core.project import GenerationParams
from studio.core.voice import VoiceSpec
from studio.engine.loader import load_model
from studio.engine.synth import Synthesizer, SynthRequest


def main() -> int:
    checkpoint, out = Path(sys.argv[1]), Path(sys.argv[2])
    synth = Synthesizer(load_model(str(checkpoint), device="cpu", cpu_threads=2))
    voice = VoiceSpec.design("A calm narrator")
    audio = GrowingAudio(synth.sample_rate)
    finished = []
    device = default_output_device()
    # The capture device takes 24 kHz as is, so what reaches ALSA can be compared sample for sample.
    player = Player(audio, device=device, device_rate=synth.sample_rate, on_finished=lambda: finished.append(1))
    events = []
    for index, text in enumerate(("First segment.", "Second segment.")):
        request = SynthRequest(text, voice, seed=index, generation=GenerationParams(max_new_tokens=12))
        for chunk in synth.stream(request):
            audio.append(chunk.samples)
        events.append(f"rendered {index}")
        if index == 0:
            player.play()
            events.append("play")
    player.rendering_done = True
    deadline = time.monotonic() + 30
    while not finished and time.monotonic() < deadline:
        time.sleep(0.05)
    events.append("finished" if finished else "timeout")
    player.close()
    np.save(out / "expected.npy", np.asarray(audio.view()))
    (out / "events.txt").write_text("\n".join(events) + f"\nposition {player.position}\n")
    return 0 if finished else 1


if __name__ == "__main__":
    sys.exit(main())
