"""Content-addressed render cache: the key is a hash of everything that changes a segment's audio.

An entry is two files: the raw float32 samples and a small JSON record holding their length and
SHA-256. The samples are written first and the record last, each atomically, so the record is the
commit marker: an entry without a valid record, or whose samples do not match it, is treated as a
miss, removed, and rendered again. A corrupt cache therefore costs time, never wrong audio.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import atomic_write_bytes, atomic_write_text
from studio.core.limits import read_json_limited
from studio.core.plan import canonical_json

CACHE_FORMAT = 1


def cache_key(fields: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of `fields` (every input that changes the audio)."""
    return hashlib.sha256(canonical_json({"format": CACHE_FORMAT, **fields}).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAudio:
    samples: np.ndarray  # float32, mono
    sample_rate: int
    meta: dict[str, Any]


class RenderCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.f32", folder / f"{key}.json"

    def get(self, key: str) -> CachedAudio | None:
        data_path, record_path = self._paths(key)
        try:
            record = read_json_limited(record_path, what="cache record")
            data = data_path.read_bytes()
        except (OSError, ValueError):
            # Missing is a plain miss; unreadable or half-written is a corrupt entry.
            if record_path.exists() or data_path.exists():
                self.discard(key)
            return None
        try:
            valid = (
                record["format"] == CACHE_FORMAT
                and len(data) == 4 * int(record["samples"])
                and hashlib.sha256(data).hexdigest() == record["sha256"]
                and int(record["sample_rate"]) > 0
            )
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            self.discard(key)
            return None
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32, copy=True)
        return CachedAudio(samples, int(record["sample_rate"]), dict(record.get("meta", {})))

    def put(self, key: str, samples: np.ndarray, sample_rate: int, meta: Mapping[str, Any] | None = None) -> None:
        data_path, record_path = self._paths(key)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
        atomic_write_bytes(data_path, data)
        record = {
            "format": CACHE_FORMAT,
            "samples": len(data) // 4,
            "sample_rate": int(sample_rate),
            "sha256": hashlib.sha256(data).hexdigest(),
            "meta": dict(meta or {}),
        }
        atomic_write_text(record_path, json.dumps(record, ensure_ascii=False))

    def discard(self, key: str) -> None:
        for path in self._paths(key):
            path.unlink(missing_ok=True)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None
