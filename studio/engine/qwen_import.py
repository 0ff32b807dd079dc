"""Import qwen_tts quietly.

Importing qwen_tts pulls in its 25 Hz tokenizer, which the 12 Hz models never use, and that import
prints a flash-attn banner on stdout, runs the `sox` binary (a "not found" line on stderr when SoX is
absent) and logs a SoX warning. On the command line that noise lands in the middle of the render's
own output, so the import runs with both file descriptors pointed at a temporary file, and whatever
was printed is kept at debug level in the log instead.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from types import ModuleType

log = logging.getLogger(__name__)


def import_qwen_tts() -> ModuleType:
    if "qwen_tts" in sys.modules:
        return sys.modules["qwen_tts"]
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    sox_logger = logging.getLogger("sox")
    previous_level = sox_logger.level
    sox_logger.setLevel(logging.ERROR)
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            import qwen_tts
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sox_logger.setLevel(previous_level)
        sink.seek(0)
        printed = sink.read().decode("utf-8", "replace").strip()
    if printed:
        log.debug("qwen_tts import printed: %s", printed)
    return qwen_tts
