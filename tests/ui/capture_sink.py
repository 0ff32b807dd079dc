"""ALSA's file plugin pipes what the application plays into this program (`file "|python capture_sink.py OUT"`):
it keeps only the non-zero float32 samples, appended to OUT as they arrive.

ALSA's null device has no clock, so PortAudio pulls blocks as fast as it can and pads with silence
whenever the player has nothing queued: gigabytes of zeros during a render. Dropping them here keeps the
test's disk and memory small; every sample the player actually played is non-zero in these tests.
"""

from __future__ import annotations

import sys

import numpy as np


def main() -> int:
    out = open(sys.argv[1], "ab", buffering=0)  # noqa: SIM115 - held for the life of the process
    stdin = sys.stdin.buffer
    pending = b""
    while True:
        data = stdin.read1(1 << 20)
        if not data:
            return 0
        data = pending + data
        usable = len(data) - len(data) % 4
        pending = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<f4")
        kept = samples[samples != 0]
        if kept.size:
            out.write(kept.tobytes())


if __name__ == "__main__":
    sys.exit(main())
