"""Exporting a fine-tuned voice onto a full disk: one clear error, nothing half-written (issue #13)."""

from __future__ import annotations

import pytest
import torch

from tests.filesystems import small_disk
from training.export import ExportWriteError, export_custom_voice, read_base_weights


def test_a_full_disk_during_export_is_a_write_error_and_leaves_nothing(tiny_checkpoints, tmp_path):
    base = tiny_checkpoints["base"]
    weights = read_base_weights(base)
    rows = next(v for k, v in weights.items() if k.endswith("codec_embedding.weight")).shape[1]
    with small_disk(tmp_path / "disk", "1m") as disk:  # smaller than the tiny model's weights
        with pytest.raises(ExportWriteError, match=r"cannot write the exported checkpoint \(No space left on device\)"):
            export_custom_voice(base, disk / "voices" / "ada", speaker="ada", speaker_embedding=torch.zeros(rows),
                                trained={})
        assert [p.name for p in (disk / "voices").iterdir()] == []
