"""The frozen build's entry point: the same `main` as the `qwen-tts-studio` console script.

`--run-training MODULE ...` (the wizard's subprocesses) and `--self-test` are dispatched by
studio.cli.main itself, so a frozen build needs nothing here beyond freeze_support: the torch data
loaders of a training step may start worker processes, which on Windows re-run this executable.
"""

import multiprocessing
import sys

from studio.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
